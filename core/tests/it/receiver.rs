//! The device-facing receiver: monitor `dao` access logs become access events with the
//! `acs_id` (once, even when the terminal sends a row twice); online requests are answered
//! by the decision function in the firmware's reply shape; unregistered terminals, other
//! source addresses and malformed payloads are refused.

use acs_core::domain::TerminalId;
use serde_json::{Value as Json, json};

use crate::api_support::{Api, venue};

const DEVICE_ID: i64 = 4_408_801_109_375_138;

struct Rig {
    api: Api,
    receiver: String,
    door: u64,
    person: u64,
    client: reqwest::Client,
}

async fn rig(terminal_address: &str, mode: &str) -> Rig {
    let api = Api::start().await;
    let (_, facility, door, _) = venue(&api).await;
    let terminal = api
        .post(
            "/v1/terminals",
            json!({"facility_id": facility, "model": "idface",
            "address": terminal_address, "login": "admin", "password": "admin",
            "operating_mode": mode, "door_ids": [door]}),
        )
        .await
        .id();
    let person = api
        .post("/v1/people", json!({"acs_id": "E-77", "name": "Ana"}))
        .await
        .id();
    api.post(
        &format!("/v1/people/{person}/credentials"),
        json!({"kind": "card", "facility_code": 123, "card_number": 45678}),
    )
    .await
    .id();
    api.post("/v1/members", json!({"person_id": person}))
        .await
        .id();
    let tenant = api
        .core
        .authenticate(&api.key)
        .await
        .expect("auth")
        .expect("caller")
        .tenant;
    api.core
        .register_device(DEVICE_ID, tenant, TerminalId::new(terminal));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let receiver = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(acs_core::receiver::serve(
        listener,
        api.core.clone(),
        std::future::pending(),
    ));
    Rig {
        api,
        receiver,
        door,
        person,
        client: crate::bounded::http_client(),
    }
}

fn dao(log_id: i64, event: i64, user: u64) -> Json {
    json!({"object_changes": [{"object": "access_logs", "type": "inserted", "values": {
        "id": log_id.to_string(), "time": "1777881600", "event": event.to_string(),
        "device_id": DEVICE_ID.to_string(), "identifier_id": "2003398144",
        "user_id": user.to_string(), "portal_id": "1", "card_value": "528281023086"}}],
        "device_id": DEVICE_ID})
}

async fn events(api: &Api) -> Vec<Json> {
    api.get("/v1/access-events").await.json["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn access_logs_become_access_events_once() {
    let r = rig("http://127.0.0.1:9", "standalone").await;
    for _ in 0..2 {
        let reply = r
            .client
            .post(format!("{}/api/notifications/dao", r.receiver))
            .json(&dao(42, 7, r.person))
            .send()
            .await
            .expect("reply");
        assert_eq!(reply.status(), 200);
    }
    let events = events(&r.api).await;
    assert_eq!(
        events.len(),
        1,
        "the repeated row is recorded once: {events:?}"
    );
    let e = &events[0];
    assert_eq!(e["type"], "access.granted");
    assert_eq!(e["acs_id"], "E-77");
    assert_eq!(e["door_id"], r.door);
    assert_eq!(e["card"], "123,45678");
    assert_eq!(e["source"], "terminal");
    // 1777881600 is 2026-05-04 08:00 on the Madrid wall clock: 06:00 UTC.
    assert_eq!(e["occurred_at"], "2026-05-04T06:00:00Z");

    let other = r
        .client
        .post(format!("{}/api/notifications/dao", r.receiver))
        .json(&dao(43, 3, 0))
        .send()
        .await
        .expect("reply");
    assert_eq!(other.status(), 200);
    let events = crate::receiver::events(&r.api).await;
    assert_eq!(events[1]["reason_code"], "unknown_credential");
    assert_eq!(events[1]["acs_id"], Json::Null);
}

#[tokio::test]
async fn strangers_and_garbage_are_refused() {
    let r = rig("http://127.0.0.1:9", "standalone").await;
    let mut unknown = dao(1, 7, r.person);
    unknown["device_id"] = json!(1234);
    for (body, status) in [
        (unknown.to_string(), 403),
        ("{not json".to_owned(), 400),
        (json!({"device_id": DEVICE_ID}).to_string(), 400),
        (json!({"object_changes": []}).to_string(), 400),
    ] {
        let reply = r
            .client
            .post(format!("{}/api/notifications/dao", r.receiver))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("reply");
        assert_eq!(reply.status().as_u16(), status, "{body}");
    }
    assert!(events(&r.api).await.is_empty());

    // A registered device id from another address is refused too.
    let far = rig("http://127.0.0.2:9", "standalone").await;
    let reply = far
        .client
        .post(format!("{}/api/notifications/dao", far.receiver))
        .json(&dao(1, 7, far.person))
        .send()
        .await
        .expect("reply");
    assert_eq!(reply.status(), 403);
}

fn card_form(uuid: &str, value: u64) -> Vec<(&'static str, String)> {
    vec![
        ("block_read_data", String::new()),
        ("block_read_error", "0".into()),
        ("card_value", value.to_string()),
        ("device_id", DEVICE_ID.to_string()),
        ("identifier_id", "2003398144".into()),
        ("panic", "0".into()),
        ("portal_id", "1".into()),
        ("time", "1777881600".into()),
        ("uuid", uuid.into()),
    ]
}

#[tokio::test]
async fn online_requests_are_decided_in_the_firmware_shape() {
    let r = rig("http://127.0.0.1:9", "enterprise").await;
    let ask = |uuid: &'static str, value: u64| {
        r.client
            .post(format!("{}/new_card.fcgi?session=", r.receiver))
            .form(&card_form(uuid, value))
            .send()
    };
    let granted: Json = ask("0000abcd", 528_281_023_086)
        .await
        .expect("reply")
        .json()
        .await
        .expect("JSON");
    assert_eq!(granted["result"]["event"], 7, "{granted}");
    assert_eq!(granted["result"]["user_id"], r.person);
    assert_eq!(
        granted["result"]["actions"],
        json!([{"action": "sec_box", "parameters": "id=65793, reason=1"}])
    );
    // The terminal retried the same request: the same answer, one event.
    let again: Json = ask("0000abcd", 528_281_023_086)
        .await
        .expect("reply")
        .json()
        .await
        .expect("JSON");
    assert_eq!(again, granted);
    let unknown: Json = ask("0000abce", 99)
        .await
        .expect("reply")
        .json()
        .await
        .expect("JSON");
    assert_eq!(unknown["result"]["event"], 3, "{unknown}");
    assert!(unknown["result"].get("actions").is_none());
    let events = events(&r.api).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["acs_id"], "E-77");
    assert_eq!(events[0]["source"], "online");

    let alive = r
        .client
        .post(format!("{}/device_is_alive.fcgi?session=", r.receiver))
        .json(&json!({"access_logs": 3}))
        .send()
        .await
        .expect("reply");
    assert_eq!(alive.status(), 200);
}
