//! Helpers shared by the simulator's two test binaries, `it` and `browser`: each includes
//! this file as a module with `#[path]` (a directory without `main.rs`, so Cargo does not
//! make a test target of it).

use acs_simulator::Device;
use serde_json::{Map, Value as Json, json};

/// Card 4,294,967,396 (facility code 1, number 100: 1 × 2³² + 100), held by user 1.
pub(crate) const CARD: u64 = 4_294_967_396;

/// Seeds user 1 ("Ana") holding [`CARD`], under access rule 10 ("Always") in time zone 1,
/// the factory's "always": a presentation of the card is granted.
pub(crate) fn seed_card_holder(device: &Device) {
    let row = |v: Json| -> Map<String, Json> { v.as_object().cloned().expect("object") };
    device
        .seed_rows("users", &[row(json!({"id": 1, "name": "Ana"}))])
        .unwrap();
    device
        .seed_rows("cards", &[row(json!({"value": CARD, "user_id": 1}))])
        .unwrap();
    device
        .seed_rows(
            "access_rules",
            &[row(
                json!({"id": 10, "name": "Always", "type": 1, "priority": 0}),
            )],
        )
        .unwrap();
    device
        .seed_rows(
            "user_access_rules",
            &[row(json!({"user_id": 1, "access_rule_id": 10}))],
        )
        .unwrap();
    device
        .seed_rows(
            "access_rule_time_zones",
            &[row(json!({"access_rule_id": 10, "time_zone_id": 1}))],
        )
        .unwrap();
}

/// Sends `request` and reads its reply as JSON.
pub(crate) async fn json_reply(request: reqwest::RequestBuilder) -> Json {
    request.send().await.unwrap().json().await.unwrap()
}
