//! A card encoded by the core travels through the simulator's HTTP API and comes back
//! exactly, including values beyond 2^53 (docs/device-api.md §0, §3.8).

use acs_core::card::WiegandCard;
use acs_simulator::Simulator;
use serde_json::{Value as Json, json};

async fn call(client: &reqwest::Client, url: String, body: Json) -> (u16, Json) {
    let reply = client
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("request reaches the simulator");
    let status = reply.status().as_u16();
    (status, reply.json().await.expect("JSON reply"))
}

#[tokio::test]
async fn wiegand_cards_round_trip_through_the_terminal_api() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = Simulator::builder().spawn(listener).await.unwrap();
    let base = sim.base_url();
    let client = reqwest::Client::new();

    let (status, login) = call(
        &client,
        format!("{base}/login.fcgi"),
        json!({"login": "admin", "password": "admin"}),
    )
    .await;
    assert_eq!(status, 200);
    let session: String = form_session(login["session"].as_str().unwrap());

    let (status, _) = call(
        &client,
        format!("{base}/create_objects.fcgi?session={session}"),
        json!({"object": "users", "values": [{"id": 1, "name": "Ana", "registration": "A-1"}]}),
    )
    .await;
    assert_eq!(status, 200);

    let cards = [
        WiegandCard::new(123, 45678),
        WiegandCard::new(u32::MAX, u32::MAX),
    ];
    let values: Vec<Json> = cards
        .iter()
        .map(|c| json!({"value": c.to_device_value(), "user_id": 1}))
        .collect();
    let (status, created) = call(
        &client,
        format!("{base}/create_objects.fcgi?session={session}"),
        json!({"object": "cards", "values": values}),
    )
    .await;
    assert_eq!(status, 200, "{created}");

    let (status, loaded) = call(
        &client,
        format!("{base}/load_objects.fcgi?session={session}"),
        json!({"object": "cards", "fields": ["value"], "order": ["value"]}),
    )
    .await;
    assert_eq!(status, 200);
    let back: Vec<WiegandCard> = loaded["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| WiegandCard::from_device_value(row["value"].as_u64().expect("exact u64")))
        .collect();
    assert_eq!(back, cards);
    assert_eq!(cards[0].to_device_value(), 528_281_023_086);
    sim.shutdown().await;
}

/// Percent-encodes a session token for the query string (tokens may contain `/`).
fn form_session(token: &str) -> String {
    form_urlencoded::byte_serialize(token.as_bytes()).collect()
}
