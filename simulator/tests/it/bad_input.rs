//! Bad input: every malformed request gets the device's error envelope and status, never a
//! panic or a 500, and leaves the stored data exactly as it was.

use axum::http::{Method, StatusCode};
use proptest::prelude::*;
use serde_json::{Value as Json, json};

use crate::support::{TestDevice, pct};

async fn seeded() -> (TestDevice, String) {
    let d = TestDevice::idface();
    let s = d.login().await;
    let r = d
        .post(
            "create_objects",
            Some(&s),
            &json!({"object": "users", "values": [{"id": 1, "name": "Ana"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = d
        .post(
            "create_objects",
            Some(&s),
            &json!({"object": "cards", "values": [{"value": 77, "user_id": 1}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    (d, s)
}

type Rows = Vec<serde_json::Map<String, Json>>;

/// Every stored user and card.
fn stored(d: &TestDevice) -> (Rows, Rows) {
    (
        d.sim.device().rows("users").unwrap(),
        d.sim.device().rows("cards").unwrap(),
    )
}

fn assert_envelope(body: &Json, text: &str) {
    assert_eq!(body, &json!({"error": text, "code": 1}));
}

async fn raw(d: &TestDevice, command: &str, session: &str, body: &[u8]) -> crate::support::Reply {
    d.send(
        Method::POST,
        &format!("/{command}.fcgi?session={}", pct(session)),
        &[("content-type", "application/json")],
        body.to_vec(),
    )
    .await
}

#[tokio::test]
async fn malformed_json_is_refused_without_changes() {
    let (d, s) = seeded().await;
    let before = stored(&d);
    for body in [
        &b"{\"object\": \"users\""[..],
        b"not json",
        b"{\"object\":\"users\",}",
        b"\xff\xfe",
    ] {
        let r = raw(&d, "destroy_objects", &s, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let j = r.json();
        assert!(
            j["error"].as_str().unwrap().starts_with("Invalid JSON"),
            "{j}"
        );
        assert_eq!(j["code"], 1);
    }
    let nested = "[".repeat(10_000) + &"]".repeat(10_000);
    let r = raw(&d, "load_objects", &s, nested.as_bytes()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(stored(&d), before);
}

#[tokio::test]
async fn wrong_types_use_the_firmware_wording() {
    let (d, s) = seeded().await;
    let before = stored(&d);
    let cases = [
        (
            "create_objects",
            json!({"object": "users", "values": {"name": "x"}}),
            "Invalid member 'values' (array expected, got object)",
        ),
        (
            "create_objects",
            json!({"object": "users", "values": [{"name": 5}]}),
            "Invalid member 'name' (string expected, got int)",
        ),
        (
            "create_objects",
            json!({"object": "cards", "values": [{"value": "77", "user_id": 1}]}),
            "Invalid member 'value' (int64 expected, got string)",
        ),
        (
            "modify_objects",
            json!({"object": "users", "values": [{"name": "x"}]}),
            "Invalid member 'values' (object expected, got array)",
        ),
        (
            "load_objects",
            json!({"object": 3}),
            "Invalid member 'object' (string expected, got int)",
        ),
        (
            "load_objects",
            json!({}),
            "Invalid member 'object' (string expected, got undefined)",
        ),
        (
            "set_system_time",
            json!({"day": 10, "month": 11, "year": 2025, "hour": 11, "second": 0}),
            "Invalid member 'minute' (int expected, got undefined)",
        ),
        (
            "set_system_time",
            json!({"day": 10, "month": 11, "year": 2025, "hour": 11, "minute": "15", "second": 0}),
            "Invalid member 'minute' (int expected, got string)",
        ),
        (
            "set_configuration",
            json!({"general": {"online": 1}}),
            "Invalid data (string expected)",
        ),
        (
            "login",
            json!({"login": "admin"}),
            "Invalid member 'password' (string expected, got undefined)",
        ),
    ];
    for (command, body, text) in cases {
        let r = d.post(command, Some(&s), &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{command} {body}");
        assert_envelope(&r.json(), text);
    }
    assert_eq!(stored(&d), before);
}

#[tokio::test]
async fn absurd_integers_are_refused_exactly() {
    let (d, s) = seeded().await;
    let before = stored(&d);
    for value in [
        "18446744073709551616",
        "1e30",
        "-9223372036854775809",
        "3.5",
    ] {
        let body = format!(r#"{{"object":"cards","values":[{{"value":{value},"user_id":1}}]}}"#);
        let r = raw(&d, "create_objects", &s, body.as_bytes()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{value}");
        assert_envelope(
            &r.json(),
            "Invalid member 'value' (int64 expected, got double)",
        );
    }
    let r = raw(
        &d,
        "create_objects",
        &s,
        br#"{"object":"cards","values":[{"value":18446744073709551615,"user_id":1}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = raw(
        &d,
        "load_objects",
        &s,
        br#"{"object":"cards","where":{"cards":{"value":18446744073709551615}}}"#,
    )
    .await;
    assert!(String::from_utf8_lossy(&r.bytes).contains("\"value\":18446744073709551615"));
    assert_eq!(stored(&d).0, before.0);
}

#[tokio::test]
async fn unknown_tables_columns_and_commands() {
    let (d, s) = seeded().await;
    let r = d
        .post("load_objects", Some(&s), &json!({"object": "nope"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_envelope(&r.json(), "no such table: nope");
    let r = d
        .post(
            "load_objects",
            Some(&s),
            &json!({"object": "users", "where": {"users": {"nope": 1}}}),
        )
        .await;
    assert_envelope(&r.json(), "no such column: users.nope");
    let r = d
        .post(
            "create_objects",
            Some(&s),
            &json!({"object": "users", "values": [{"nope": 1}]}),
        )
        .await;
    assert_envelope(&r.json(), "table users has no column named nope");
    let r = d.post("count_objects", Some(&s), &json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_envelope(&r.json(), "Unknown command: count_objects");
    // A command's name and the query are read decoded, as a web server does.
    let r = d
        .send(
            Method::POST,
            &format!("/load%5Fobjects.fcgi?sess%69on={}", pct(&s)),
            &[("content-type", "application/json")],
            br#"{"object": "users"}"#.to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert!(r.json()["users"].is_array());
    let r = d
        .send(Method::POST, "/nope%20x.fcgi", &[], Vec::new())
        .await;
    assert_envelope(&r.json(), "Unknown command: nope x");
    let r = d.send(Method::GET, "/index.html", &[], Vec::new()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.content_type.unwrap().starts_with("application/json"));
    // A path of no segment or of several names no command either.
    for (path, message) in [
        ("/", "Unknown command: "),
        ("/a/login.fcgi", "Unknown command: a/login"),
        ("/login.fcgi/", "Unknown command: login.fcgi/"),
    ] {
        let r = d.send(Method::POST, path, &[], Vec::new()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_envelope(&r.json(), message);
    }
    // A command the model lacks fails like an unknown one.
    let access = TestDevice::new(acs_simulator::Model::IdAccess);
    let s2 = access.login().await;
    let r = access.post("user_list_images", Some(&s2), &json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn oversized_bodies_and_bad_images() {
    let (d, s) = seeded().await;
    let before = stored(&d);
    let big = vec![b' '; 2 * 1024 * 1024 + 1];
    let r = raw(&d, "create_objects", &s, &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json()["code"], 1);
    let set = format!(
        "/user_set_image.fcgi?session={}&user_id=1&match=0&timestamp=1",
        pct(&s)
    );
    let r = d
        .send(
            Method::POST,
            &set,
            &[("content-type", "application/octet-stream")],
            b"GIF89a....".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_envelope(
        &r.json(),
        "Image file not recognized. Image should be either JPG or PNG.",
    );
    let mut truncated = crate::support::jpeg(1);
    truncated.truncate(200);
    let r = d.send(Method::POST, &set, &[], truncated).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let missing = format!(
        "/user_set_image.fcgi?session={}&user_id=1&timestamp=1",
        pct(&s)
    );
    let r = d
        .send(Method::POST, &missing, &[], crate::support::jpeg(1))
        .await;
    assert_envelope(
        &r.json(),
        "Invalid member 'match' (int expected, got undefined)",
    );
    let unknown_user = format!(
        "/user_set_image.fcgi?session={}&user_id=99&match=0&timestamp=1",
        pct(&s)
    );
    let r = d
        .send(Method::POST, &unknown_user, &[], crate::support::jpeg(1))
        .await;
    assert_envelope(&r.json(), "User does not exist");
    assert!(d.sim.device().list_images().is_empty());
    assert_eq!(stored(&d), before);
}

#[tokio::test]
async fn failed_batches_store_nothing() {
    let (d, s) = seeded().await;
    let before = stored(&d);
    let r = d
        .post("create_objects", Some(&s), &json!({"object": "cards", "values": [{"value": 1, "user_id": 1}, {"value": 77, "user_id": 1}]}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_envelope(&r.json(), "UNIQUE constraint failed: cards.value");
    let r = d
        .post(
            "modify_objects",
            Some(&s),
            &json!({"object": "cards", "values": {"user_id": 42}}),
        )
        .await;
    assert_envelope(&r.json(), "FOREIGN KEY constraint failed");
    assert_eq!(stored(&d), before);
}

#[tokio::test]
async fn writes_without_a_session_are_refused_as_such_whatever_their_body() {
    // A create reads its rows before it waits its turn and before its session is checked:
    // a body of rows, of another shape or not JSON at all is still refused for the
    // session, and nothing is stored.
    let (d, _) = seeded().await;
    let before = stored(&d);
    let rows = br#"{"object": "users", "values": [{"id": 5, "name": "Eva"}, {"name": "Ivo"}]}"#;
    for command in [
        "create_objects",
        "create_or_modify_objects",
        "modify_objects",
    ] {
        for body in [
            &rows[..],
            b"{\"object\": \"users\", \"values\": 7}",
            b"{not json",
        ] {
            let r = raw(&d, command, "not-a-session", body).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{command}");
            assert_envelope(
                &r.json(),
                &format!("Invalid access level for command {command}"),
            );
        }
    }
    assert_eq!(stored(&d), before);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    /// Arbitrary bytes to any command: never a 500, always JSON with the envelope on error.
    #[test]
    fn arbitrary_bodies_never_break_the_device(
        command in prop::sample::select(vec!["load_objects", "create_objects", "modify_objects", "destroy_objects",
            "create_or_modify_objects", "set_configuration", "get_configuration", "set_system_time",
            "execute_actions", "user_set_image", "user_destroy_image", "login", "change_login", "user_get_image_list"]),
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            "[ -~]{0,64}".prop_map(String::into_bytes),
            Just(br#"{"object":"users","where":[{"field":"id","connector":") OR ((("}, {"field":"id"}]}"#.to_vec()),
        ],
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (d, s) = seeded().await;
            let before = stored(&d);
            let r = raw(&d, command, &s, &body).await;
            prop_assert!(r.status.as_u16() < 500, "status {}", r.status);
            if r.status != StatusCode::OK {
                let j = r.json();
                prop_assert!(j["error"].is_string() && j["code"] == 1, "{}", j);
                if command != "change_login" {
                    prop_assert_eq!(stored(&d), before);
                }
            }
            Ok(())
        })?;
    }
}
