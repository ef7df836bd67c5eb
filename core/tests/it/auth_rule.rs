//! One auth-type rule on every path (docs/domain.md §8.2 rule 8): at a door that declares
//! no auth types, an access created as the OpenAPI document shows it (`doors:
//! [{door_id}]`), a membership and an attendance are granted alike by `/v1/decisions`, by
//! the terminal the sync engine fills, and by a cloud key; a request that could never grant
//! anything is refused naming the field; an access past its `valid_to` reads `expired`.

use std::time::Duration;

use acs_core::sync::{SyncEngine, SyncOptions};
use acs_simulator::{Presentation, RunningSimulator, Simulator, TimeMode};
use serde_json::{Value as Json, json};

use crate::api_support::{Api, OFFLINE, venue};
use crate::bounded::board_until;

/// Card 123,`number` as the terminal stores it (facility × 2^32 + number).
fn card_value(number: u32) -> u64 {
    (123_u64 << 32) + u64::from(number)
}

/// A person `acs_id` with card 123,`number`.
async fn person_with_card(api: &Api, acs_id: &str, number: u32) -> u64 {
    let person = api
        .post("/v1/people", json!({"acs_id": acs_id, "name": acs_id}))
        .await
        .id();
    api.post(
        &format!("/v1/people/{person}/credentials"),
        json!({"kind": "card", "facility_code": 123, "card_number": number}),
    )
    .await
    .id();
    person
}

/// The core's decision on card 123,`number` presented at `door` (in).
async fn decide_card(api: &Api, door: u64, number: u32) -> Json {
    let reply = api
        .post(
            "/v1/decisions",
            json!({"door_id": door, "factors": [{"card": {"facility_code": 123, "card_number": number}}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json
}

/// A site, a facility and a door declaring no auth types: `(facility, door)`.
async fn bare_door(api: &Api) -> (u64, u64) {
    let site = api
        .post(
            "/v1/sites",
            json!({"name": "Madrid", "timezone": "Europe/Madrid"}),
        )
        .await
        .id();
    let facility = api
        .post("/v1/facilities", json!({"site_id": site, "name": "Hall"}))
        .await
        .id();
    let door = api
        .post(
            "/v1/doors",
            json!({"facility_id": facility, "name": "Main"}),
        )
        .await
        .id();
    (facility, door)
}

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

#[tokio::test]
async fn an_access_as_documented_grants_like_members_and_attendees_on_every_path() {
    let api = Api::start().await;
    let sim = simulator(22).await;
    let (facility, door) = bare_door(&api).await;
    let taken = api.get(&format!("/v1/doors/{door}")).await.json;
    assert_eq!(taken["auth_types"], json!({"in": [], "out": []}), "{taken}");

    let terminal = api
        .post(
            "/v1/terminals",
            json!({"facility_id": facility, "model": "idface", "address": sim.base_url(),
                   "login": "admin", "password": "admin", "door_ids": [door]}),
        )
        .await
        .id();
    // Served by an iDFace, the door takes what an iDFace reads and what the core checks.
    let taken = api.get(&format!("/v1/doors/{door}")).await.json;
    assert_eq!(taken["supported_auth_types"], json!({"in": [], "out": []}));
    let takes_in: Vec<&str> = taken["auth_types"]["in"]
        .as_array()
        .expect("auth types")
        .iter()
        .filter_map(Json::as_str)
        .collect();
    for expected in ["face", "card", "pin", "qr", "card_plus_pin", "cloud_key"] {
        assert!(takes_in.contains(&expected), "{expected} in {takes_in:?}");
    }
    assert!(!takes_in.contains(&"fingerprint"), "{takes_in:?}");

    let visitor = person_with_card(&api, "E-1", 1).await;
    let member = person_with_card(&api, "E-2", 2).await;
    let attendee = person_with_card(&api, "E-3", 3).await;
    person_with_card(&api, "E-4", 4).await;
    let access = api
        .post(
            "/v1/accesses",
            json!({"name": "Visitors", "kind": "permanent", "doors": [{"door_id": door}],
                   "person_ids": [visitor]}),
        )
        .await;
    assert_eq!(access.status, 201, "{}", access.json);
    assert_eq!(access.json["status"], "ready");
    assert_eq!(
        access.json["doors"][0]["in_auth_types"],
        taken["auth_types"]["in"]
    );
    assert_eq!(
        access.json["doors"][0]["out_auth_types"],
        taken["auth_types"]["out"]
    );
    api.post("/v1/members", json!({"person_id": member}))
        .await
        .id();
    let event = api
        .post(
            "/v1/events",
            json!({"facility_id": facility, "starts_at": "2026-05-04T07:00:00Z",
                   "ends_at": "2026-05-04T12:00:00Z"}),
        )
        .await
        .id();
    assert_eq!(
        api.post(
            &format!("/v1/events/{event}/attendees"),
            json!({"person_id": attendee})
        )
        .await
        .status,
        201
    );

    // The core's decisions.
    for number in 1..=3 {
        let decision = decide_card(&api, door, number).await;
        assert_eq!(decision["result"], "granted", "card {number}: {decision}");
    }
    let stranger = decide_card(&api, door, 4).await;
    assert_eq!(stranger["reason_code"], "no_entitlement", "{stranger}");

    // What the terminal was given, and what it decides with it.
    let engine = SyncEngine::spawn(
        api.core.clone(),
        SyncOptions {
            retry_initial: Duration::from_millis(20),
            retry_max: Duration::from_millis(200),
            ..SyncOptions::default()
        },
    );
    board_until(engine.board(), "three people on the terminal", |board| {
        board
            .iter()
            .any(|((_, t), s)| t.get() == terminal && s.in_sync && s.people == 3)
    })
    .await;
    for number in 1..=4 {
        let logged = sim
            .identify(&Presentation::Card(card_value(number)))
            .await
            .expect("decided");
        assert_eq!(
            logged.decision.event == 7,
            number != 4,
            "the terminal on card {number}: {:?}",
            logged.decision
        );
    }

    // Cloud keys of the visitor and the member open the door through the terminal.
    for person in [visitor, member] {
        let issued = api
            .post(
                &format!("/v1/people/{person}/credentials"),
                json!({"kind": "cloud_key", "pin": "4321"}),
            )
            .await;
        assert_eq!(issued.status, 201, "{}", issued.json);
        let token = issued.json["token"].as_str().expect("token");
        let before = sim.device().actuations().len();
        let opened = api
            .send_as(
                None,
                "POST",
                &format!("/public/cloud-keys/{token}/open"),
                Some(&json!({"pin": "4321", "door_id": door})),
                None,
            )
            .await;
        assert_eq!(opened.status, 200, "{}", opened.json);
        assert_eq!(opened.json["type"], "access.granted", "{}", opened.json);
        assert_eq!(sim.device().actuations().len(), before + 1);
    }
    engine.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_door_declaring_nothing_takes_what_its_terminals_models_read() {
    let api = Api::start().await;
    let (facility, door) = bare_door(&api).await;
    let ana = person_with_card(&api, "E-1", 1).await;
    api.post("/v1/members", json!({"person_id": ana}))
        .await
        .id();
    // No terminal serves the door: nothing can be presented there.
    let decision = decide_card(&api, door, 1).await;
    assert_eq!(
        decision["reason_code"], "auth_type_not_allowed",
        "{decision}"
    );
    api.post(
        "/v1/accesses",
        json!({"name": "Cards", "kind": "permanent", "person_ids": [ana],
               "doors": [{"door_id": door, "in_auth_types": ["card"]}]}),
    )
    .await
    .problem(422, Some("doors[0].in_auth_types"));

    // An iDAccess reads fingerprints, cards and PINs, not faces.
    let terminal = api
        .post(
            "/v1/terminals",
            json!({"facility_id": facility, "model": "idaccess", "address": OFFLINE,
                   "login": "admin", "password": "admin", "door_ids": [door]}),
        )
        .await;
    assert_eq!(terminal.status, 201, "{}", terminal.json);
    let decision = decide_card(&api, door, 1).await;
    assert_eq!(decision["result"], "granted", "{decision}");
    api.post(
        "/v1/accesses",
        json!({"name": "Faces", "kind": "permanent", "person_ids": [ana],
               "doors": [{"door_id": door, "in_auth_types": ["face"]}]}),
    )
    .await
    .problem(422, Some("doors[0].in_auth_types"));
    let fingers = api
        .post(
            "/v1/accesses",
            json!({"name": "Fingers", "kind": "permanent", "person_ids": [ana],
                   "doors": [{"door_id": door, "in_auth_types": ["fingerprint"], "out_auth_types": []}]}),
        )
        .await;
    assert_eq!(fingers.status, 201, "{}", fingers.json);
    assert_eq!(
        fingers.json["doors"][0],
        json!({"door_id": door, "lock_unlock": false, "in_auth_types": ["fingerprint"], "out_auth_types": []})
    );

    // A door that declares its types keeps them, whatever serves it.
    let declared = api
        .patch(
            &format!("/v1/doors/{door}"),
            json!({"supported_auth_types": {"in": ["pin"], "out": []}}),
        )
        .await;
    assert_eq!(declared.status, 200, "{}", declared.json);
    assert_eq!(
        declared.json["auth_types"],
        json!({"in": ["pin"], "out": []})
    );
    let decision = decide_card(&api, door, 1).await;
    assert_eq!(
        decision["reason_code"], "auth_type_not_allowed",
        "{decision}"
    );
    // The access listing fingerprints enables nothing the door still takes.
    let fingers = api
        .get(&format!("/v1/accesses/{}", fingers.id()))
        .await
        .json;
    assert_eq!(fingers["doors"][0]["in_auth_types"], json!([]));
}

#[tokio::test]
async fn a_request_that_could_never_grant_is_refused_naming_the_field() {
    let api = Api::start().await;
    let (_, _, door, _) = venue(&api).await;
    let ana = person_with_card(&api, "E-1", 1).await;
    let access = |doors: Json, extra: Json| {
        let mut body =
            json!({"name": "A", "kind": "permanent", "person_ids": [ana], "doors": doors});
        for (k, v) in extra.as_object().expect("members") {
            body[k] = v.clone();
        }
        body
    };
    let nothing = json!({"door_id": door, "in_auth_types": [], "out_auth_types": []});
    api.post("/v1/accesses", access(json!([nothing]), json!({})))
        .await
        .problem(422, Some("doors[0].in_auth_types"));
    let refused = api
        .post(
            "/v1/accesses",
            access(json!([{"door_id": door}, nothing]), json!({})),
        )
        .await;
    refused.problem(422, Some("doors[1].in_auth_types"));
    assert!(
        refused.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("could never grant")),
        "{}",
        refused.json
    );
    api.post(
        "/v1/accesses",
        access(
            json!([{"door_id": door}]),
            json!({"kind": "temporary", "valid_to": "2026-05-04T07:59:59Z"}),
        ),
    )
    .await
    .problem(422, Some("valid_to"));
    // A deny blocks whatever it lists.
    let deny = api
        .post(
            "/v1/accesses",
            access(json!([nothing]), json!({"effect": "deny"})),
        )
        .await;
    assert_eq!(deny.status, 201, "{}", deny.json);
    // One direction listed empty, the other the door's (`null` or missing).
    let in_only = api
        .post(
            "/v1/accesses",
            access(
                json!([{"door_id": door, "in_auth_types": null, "out_auth_types": []}]),
                json!({}),
            ),
        )
        .await;
    assert_eq!(in_only.status, 201, "{}", in_only.json);
    assert_eq!(in_only.json["doors"][0]["out_auth_types"], json!([]));
    assert_eq!(
        in_only.json["doors"][0]["in_auth_types"],
        json!([
            "face",
            "card",
            "pin",
            "qr",
            "cloud_key",
            "mobile_key",
            "card_plus_pin"
        ])
    );
    // A PUT is held to the same rule.
    api.put(
        &format!("/v1/accesses/{}", in_only.id()),
        access(json!([nothing]), json!({})),
    )
    .await
    .problem(422, Some("doors[0].in_auth_types"));
}

#[tokio::test]
async fn an_access_past_its_valid_to_reads_expired() {
    let api = Api::start().await;
    let (_, _, door, _) = venue(&api).await;
    let ana = person_with_card(&api, "E-1", 1).await;
    let access = api
        .post(
            "/v1/accesses",
            json!({"name": "Visit", "kind": "temporary", "valid_to": "2026-05-04T10:00:00Z",
                   "doors": [{"door_id": door, "in_auth_types": ["card"]}], "person_ids": [ana]}),
        )
        .await;
    assert_eq!(access.json["status"], "ready", "{}", access.json);
    let access = access.id();
    assert_eq!(decide_card(&api, door, 1).await["result"], "granted");

    api.set_now("2026-05-04T10:00:00Z");
    let shown = api.get(&format!("/v1/accesses/{access}")).await;
    assert_eq!(shown.json["status"], "expired", "{}", shown.json);
    let listed = api.get("/v1/accesses").await;
    assert_eq!(listed.json["items"][0]["status"], "expired");
    assert_eq!(
        decide_card(&api, door, 1).await["reason_code"],
        "not_in_schedule"
    );
    // Deleted is deleted, expired or not.
    assert_eq!(
        api.delete(&format!("/v1/accesses/{access}")).await.status,
        204
    );
    let shown = api.get(&format!("/v1/accesses/{access}")).await;
    assert_eq!(shown.json["status"], "deleted", "{}", shown.json);
}
