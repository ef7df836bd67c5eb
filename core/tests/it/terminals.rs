//! Terminals and doors as the integrator registers and changes them: addresses and models
//! are checked, the device is probed (login, `system_information`) and its result shown, a
//! device is registered once in all tenants (409), and doors and terminals are changed in
//! place with `PUT` and `PATCH`. A terminal registered while its device was offline gets
//! its device id from the sync engine, which refuses to sync a device another terminal has.

use std::time::Duration;

use acs_core::sync::{SyncEngine, SyncOptions};
use acs_simulator::{RunningSimulator, Simulator, TimeMode};
use serde_json::{Value as Json, json};

use crate::api_support::{Api, OFFLINE, venue};
use crate::bounded::board_until;

async fn simulator(seed: u64) -> RunningSimulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    Simulator::builder()
        .time_mode(TimeMode::Scaled(0.0))
        .seed(seed)
        .spawn(listener)
        .await
        .expect("simulator")
}

fn device_id(sim: &RunningSimulator) -> i64 {
    sim.device().identity().device_id
}

/// A terminal body at `facility` reaching `address` with `password`.
fn terminal(facility: u64, address: &str, password: &str) -> Json {
    json!({"facility_id": facility, "model": "idface", "address": address,
           "login": "admin", "password": password})
}

/// POSTs a terminal as the tenant of `key`.
async fn register_as(api: &Api, key: &str, body: &Json) -> crate::api_support::Reply {
    api.send_as(Some(key), "POST", "/v1/terminals", Some(body), None)
        .await
}

/// A site and a facility of the tenant of `key`: the facility.
async fn facility_as(api: &Api, key: &str) -> u64 {
    let post = |path: &'static str, body: Json| async move {
        api.send_as(Some(key), "POST", path, Some(&body), None)
            .await
            .id()
    };
    let site = post("/v1/sites", json!({"name": "S", "timezone": "UTC"})).await;
    post("/v1/facilities", json!({"site_id": site, "name": "F"})).await
}

#[tokio::test]
async fn addresses_models_and_passwords_are_checked_naming_the_field() {
    let api = Api::start().await;
    let (_, facility, door, _) = venue(&api).await;
    let base = terminal(facility, OFFLINE, "pw");
    let with = |member: &str, value: Json| {
        let mut body = base.clone();
        body[member] = value;
        body
    };
    for (body, field) in [
        (with("address", json!("not a url")), "address"),
        (with("address", json!("10.0.0.5")), "address"),
        (with("address", json!("ftp://10.0.0.5")), "address"),
        (
            with("address", json!("http://admin:pw@10.0.0.5")),
            "address",
        ),
        (with("address", json!("http://10.0.0.5:99999")), "address"),
        (with("address", json!("")), "address"),
        (with("model", json!("toaster")), "model"),
        (with("model", json!("")), "model"),
        (with("login", json!("  ")), "login"),
        (with("password", json!("x".repeat(201))), "password"),
        (with("operating_mode", json!("turbo")), "operating_mode"),
        (with("door_ids", json!([door, 999_999])), "door_ids[1]"),
        (with("facility_id", json!(999_999)), "facility_id"),
    ] {
        api.post("/v1/terminals", body)
            .await
            .problem(422, Some(field));
    }
    let mut missing = base.clone();
    missing.as_object_mut().expect("object").remove("password");
    api.post("/v1/terminals", missing)
        .await
        .problem(422, Some("password"));
    // Nothing was stored; the venue's terminal is the only one.
    let listed = api.get("/v1/terminals").await;
    assert_eq!(listed.json["items"].as_array().map(Vec::len), Some(1));

    // Known models in any spelling; an https URL with a host name and a path.
    let ok = api
        .post("/v1/terminals", with("model", json!("iDFace Max")))
        .await;
    assert_eq!(ok.status, 201, "{}", ok.json);
    assert_eq!(ok.json["model"], "idface-max");
    for model in ["idface", "idaccess", "idflex", "terminal"] {
        let ok = api.post("/v1/terminals", with("model", json!(model))).await;
        assert_eq!(ok.json["model"], model, "{}", ok.json);
    }
}

#[tokio::test]
async fn the_device_is_probed_and_the_reply_says_what_was_found() {
    let api = Api::start().await;
    let (_, facility, _, _) = venue(&api).await;
    let sim = simulator(41).await;

    let found = api
        .post(
            "/v1/terminals",
            terminal(facility, &sim.base_url(), "admin"),
        )
        .await;
    assert_eq!(found.status, 201, "{}", found.json);
    assert_eq!(found.json["probe"]["ok"], true, "{}", found.json);
    assert_eq!(found.json["probe"]["device_id"], device_id(&sim));
    assert_eq!(found.json["device_id"], device_id(&sim));
    assert!(
        found.json["probe"]["serial"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let shown = api.get(&format!("/v1/terminals/{}", found.id())).await;
    assert_eq!(shown.json["device_id"], device_id(&sim));
    assert!(shown.json.get("probe").is_none(), "{}", shown.json);
    assert!(shown.json.get("password").is_none(), "{}", shown.json);

    // A wrong password is the terminal's refusal, not an offline device.
    let refused = api
        .post(
            "/v1/terminals",
            terminal(facility, &sim.base_url(), "wrong"),
        )
        .await;
    refused.problem(422, Some("password"));

    // Something that is no terminal: the core's own API answers 404 to login.fcgi.
    api.post("/v1/terminals", terminal(facility, &api.base, "admin"))
        .await
        .problem(422, Some("address"));

    // Nothing answering: registered with its device unknown, and why.
    let offline = api
        .post("/v1/terminals", terminal(facility, OFFLINE, "admin"))
        .await;
    assert_eq!(offline.status, 201, "{}", offline.json);
    assert_eq!(offline.json["probe"]["ok"], false);
    assert!(
        offline.json["probe"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("unreachable")),
        "{}",
        offline.json
    );
    assert_eq!(offline.json["device_id"], Json::Null);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_device_is_registered_once_in_all_tenants() {
    let api = Api::start().await;
    let (_, facility, _, _) = venue(&api).await;
    let other = api.other_tenant("globex").await;
    let other_facility = facility_as(&api, &other).await;
    let sim = simulator(42).await;
    let body = terminal(facility, &sim.base_url(), "admin");

    let first = api.post("/v1/terminals", body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.json);
    let again = api.post("/v1/terminals", body).await;
    again.problem(409, Some("address"));
    assert!(
        again.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("terminal {}", first.id()))),
        "{}",
        again.json
    );
    // Another tenant is refused too, without learning whose it is.
    let elsewhere = register_as(
        &api,
        &other,
        &terminal(other_facility, &sim.base_url(), "admin"),
    )
    .await;
    elsewhere.problem(409, Some("address"));
    assert!(
        !elsewhere.json["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("terminal {}", first.id())),
        "{}",
        elsewhere.json
    );
    // Once the first terminal is gone the device can be registered elsewhere.
    assert_eq!(
        api.delete(&format!("/v1/terminals/{}", first.id()))
            .await
            .status,
        204
    );
    let moved = register_as(
        &api,
        &other,
        &terminal(other_facility, &sim.base_url(), "admin"),
    )
    .await;
    assert_eq!(moved.status, 201, "{}", moved.json);
    sim.shutdown().await;
}

#[tokio::test]
async fn doors_change_in_place() {
    let api = Api::start().await;
    let (_, facility, door, _) = venue(&api).await;
    let path = format!("/v1/doors/{door}");

    let renamed = api.patch(&path, json!({"name": "Front"})).await;
    assert_eq!(renamed.status, 200, "{}", renamed.json);
    assert_eq!(renamed.json["name"], "Front");
    assert_eq!(renamed.json["supported_auth_types"]["out"], json!(["card"]));
    let replaced = api
        .put(
            &path,
            json!({"facility_id": facility, "name": "Back",
                   "supported_auth_types": {"in": ["card", "pin"]}}),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.json);
    assert_eq!(
        replaced.json["supported_auth_types"],
        json!({"in": ["card", "pin"], "out": []})
    );
    assert_eq!(api.get(&path).await.json, replaced.json);

    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"facility_id": 999_999}), "facility_id"),
        (
            json!({"supported_auth_types": {"in": ["retina"]}}),
            "supported_auth_types.in[0]",
        ),
        (json!({"colour": "red"}), "colour"),
    ] {
        api.patch(&path, body).await.problem(422, Some(field));
    }
    api.put(&path, json!({"name": "No facility"}))
        .await
        .problem(422, Some("facility_id"));
    api.patch("/v1/doors/999999", json!({"name": "x"}))
        .await
        .problem(404, None);
    assert_eq!(api.get(&path).await.json, replaced.json, "unchanged");

    // A door an access lists stays in its site.
    let person = api.post("/v1/people", json!({"acs_id": "E-1"})).await.id();
    api.post(
        "/v1/accesses",
        json!({"name": "A", "kind": "permanent", "person_ids": [person],
               "doors": [{"door_id": door}]}),
    )
    .await
    .id();
    let (_, elsewhere, _, _) = venue(&api).await;
    api.patch(&path, json!({"facility_id": elsewhere}))
        .await
        .problem(422, Some("facility_id"));
}

#[tokio::test]
async fn terminals_change_in_place_and_are_probed_again() {
    let api = Api::start().await;
    let (_, facility, door, offline) = venue(&api).await;
    let (first, second) = (simulator(43).await, simulator(44).await);
    let path = format!("/v1/terminals/{offline}");

    // Without a way to reach the device, nothing is probed.
    let moded = api
        .patch(
            &path,
            json!({"operating_mode": "enterprise", "door_ids": []}),
        )
        .await;
    assert_eq!(moded.status, 200, "{}", moded.json);
    assert_eq!(moded.json["operating_mode"], "enterprise");
    assert_eq!(moded.json["door_ids"], json!([]));
    assert!(moded.json.get("probe").is_none(), "{}", moded.json);

    // The device comes online at another address.
    let found = api
        .patch(
            &path,
            json!({"address": first.base_url(), "password": "admin"}),
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.json);
    assert_eq!(found.json["probe"]["ok"], true, "{}", found.json);
    assert_eq!(found.json["device_id"], device_id(&first));

    // PUT replaces everything; without a password it keeps the stored one (the probe
    // logs in with it).
    let replaced = api
        .put(
            &path,
            json!({"facility_id": facility, "model": "idflex", "address": first.base_url(),
                   "login": "admin", "door_ids": [door]}),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.json);
    assert_eq!(replaced.json["model"], "idflex");
    assert_eq!(replaced.json["operating_mode"], "standalone");
    assert_eq!(replaced.json["door_ids"], json!([door]));
    assert_eq!(replaced.json["probe"]["ok"], true, "{}", replaced.json);

    // Bad input names the field and changes nothing.
    for (body, field) in [
        (json!({"address": "not a url"}), "address"),
        (json!({"model": "toaster"}), "model"),
        (json!({"password": "wrong"}), "password"),
        (json!({"door_ids": [999_999]}), "door_ids[0]"),
        (json!({"facility_id": 999_999}), "facility_id"),
    ] {
        api.patch(&path, body).await.problem(422, Some(field));
    }
    api.patch("/v1/terminals/999999", json!({"model": "idface"}))
        .await
        .problem(404, None);
    let unchanged = api.get(&path).await.json;
    assert_eq!(unchanged["model"], "idflex");
    assert_eq!(unchanged["device_id"], device_id(&first));

    // Another terminal cannot take the device; this one can move to another device.
    let other = api
        .post(
            "/v1/terminals",
            terminal(facility, &second.base_url(), "admin"),
        )
        .await;
    assert_eq!(other.status, 201, "{}", other.json);
    api.patch(
        &format!("/v1/terminals/{}", other.id()),
        json!({"address": first.base_url()}),
    )
    .await
    .problem(409, Some("address"));
    assert_eq!(
        api.delete(&format!("/v1/terminals/{}", other.id()))
            .await
            .status,
        204
    );
    let moved = api
        .patch(&path, json!({"address": second.base_url()}))
        .await;
    assert_eq!(
        moved.json["device_id"],
        device_id(&second),
        "{}",
        moved.json
    );

    // Offline at a new address: its device is unknown again.
    let gone = api.patch(&path, json!({"address": OFFLINE})).await;
    assert_eq!(gone.status, 200, "{}", gone.json);
    assert_eq!(gone.json["probe"]["ok"], false);
    assert_eq!(gone.json["device_id"], Json::Null);
    first.shutdown().await;
    second.shutdown().await;
}

#[tokio::test]
async fn the_engine_learns_an_offline_terminals_device_and_refuses_one_taken() {
    let api = Api::start().await;
    let sim = simulator(45).await;
    // Once it answers, its power can be switched.
    crate::bounded::http_client()
        .get(sim.base_url())
        .send()
        .await
        .expect("the simulator answers");
    assert!(sim.power_off().await, "powered off");
    // Tenant A registers the terminal while its device is off.
    let (_, facility, door, _) = venue(&api).await;
    let a = api
        .post(
            "/v1/terminals",
            json!({"facility_id": facility, "model": "idface", "address": sim.base_url(),
                   "login": "admin", "password": "admin", "door_ids": [door]}),
        )
        .await;
    assert_eq!(a.json["probe"]["ok"], false, "{}", a.json);
    let a = a.id();
    // Another tenant's terminal sits at an address the device will not answer at: it also
    // does not know its device yet.
    let other = api.other_tenant("globex").await;
    let other_facility = facility_as(&api, &other).await;
    let b = register_as(
        &api,
        &other,
        &terminal(other_facility, &sim.base_url(), "admin"),
    )
    .await;
    assert_eq!(b.json["probe"]["ok"], false, "{}", b.json);
    let person = api.post("/v1/people", json!({"acs_id": "E-1"})).await.id();
    api.post(
        &format!("/v1/people/{person}/credentials"),
        json!({"kind": "card", "facility_code": 123, "card_number": 1}),
    )
    .await
    .id();
    api.post("/v1/members", json!({"person_id": person}))
        .await
        .id();

    assert!(sim.power_on().await, "powered on");
    let engine = SyncEngine::spawn(
        api.core.clone(),
        SyncOptions {
            retry_initial: Duration::from_millis(20),
            retry_max: Duration::from_millis(200),
            ..SyncOptions::default()
        },
    );
    // One of the two claims the device first; the other is refused and syncs nothing.
    board_until(
        engine.board(),
        "one terminal in sync, the other refused",
        |board| {
            let in_sync = board.values().filter(|s| s.in_sync).count();
            let refused = board.values().any(|s| {
                s.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("already registered"))
            });
            in_sync == 1 && refused
        },
    )
    .await;
    let a_device = api.get(&format!("/v1/terminals/{a}")).await.json["device_id"].clone();
    let b_device = api
        .send_as(
            Some(&other),
            "GET",
            &format!("/v1/terminals/{}", b.id()),
            None,
            None,
        )
        .await
        .json["device_id"]
        .clone();
    let claimed: Vec<&Json> = [&a_device, &b_device]
        .into_iter()
        .filter(|d| !d.is_null())
        .collect();
    assert_eq!(claimed, [&json!(device_id(&sim))], "{a_device} {b_device}");
    // Only tenant A's member reached the device, and only if A claimed it.
    let users = sim.device().rows("users").expect("users");
    assert_eq!(users.len(), usize::from(!a_device.is_null()), "{users:?}");
    engine.shutdown().await;
    sim.shutdown().await;
}
