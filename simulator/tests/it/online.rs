//! Online mode against a scripted server (a CallbackSink): Pro and Enterprise requests with
//! the documented keys, grant with actions, deny, a malformed reply, and the server going
//! down → contingency (local decision, operation_mode, device_is_alive probes) → back online.

use acs_simulator::{CallbackSink, Model, Presentation, online};
use serde_json::json;

use crate::enrollment::Rig;

/// A rig whose online server and monitor are both the sink; user 5 holds card 77 and
/// rule 1 (always allowed) so that a local decision grants.
async fn online_rig(local_identification: &str) -> Rig {
    let rig = Rig::new(Model::IdFace).await;
    let server = format!("{}:{}", rig.sink.host(), rig.sink.port());
    configure_online(&rig, &server, local_identification).await;
    rig
}

/// Points the rig's terminal at the online server `ip` ("host:port") with three attempts
/// per request, gives user 5 card 77 and rule 1 (always allowed).
async fn configure_online(rig: &Rig, ip: &str, local_identification: &str) {
    for (object, values) in [
        (
            "devices",
            json!([{"id": 9, "name": "Server", "ip": ip, "public_key": ""}]),
        ),
        ("cards", json!([{"value": 77, "user_id": 5}])),
        (
            "user_access_rules",
            json!([{"user_id": 5, "access_rule_id": 1}]),
        ),
    ] {
        assert_eq!(
            rig.post(
                "create_objects",
                json!({"object": object, "values": values})
            )
            .await
            .0,
            200
        );
    }
    let cfg = json!({"general": {"online": "1", "local_identification": local_identification},
                     "online_client": {"server_id": "9", "max_request_attempts": "3"}});
    assert_eq!(rig.post("set_configuration", cfg).await.0, 200);
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn keys(pairs: &[(String, String)]) -> Vec<&str> {
    pairs.iter().map(|(k, _)| k.as_str()).collect()
}

fn value<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

#[tokio::test]
async fn pro_mode_asks_new_user_identified_and_obeys_a_grant() {
    let rig = online_rig("1").await;
    rig.sink.respond_with_json(200, &json!({"result": {"event": 7, "user_id": 5, "user_name": "Ana", "user_image": false,
        "portal_id": 1, "message": "Welcome", "actions": [{"action": "sec_box", "parameters": "id=65793, reason=1"}]}}));
    let logged = rig.sim.identify(&Presentation::Card(77)).await.unwrap();
    assert_eq!(
        (logged.decision.event, logged.decision.user_id),
        (7, Some(5))
    );
    assert_eq!(
        logged.actuations.len(),
        1,
        "the server's sec_box action ran"
    );
    let screen = rig.sim.terminal().display.view(rig.sim.scheduler().now());
    assert_eq!(
        screen.text, "Welcome",
        "the server's message is on the screen"
    );
    let request = &rig.sink.received()[0];
    assert_eq!(request.path, "/new_user_identified.fcgi");
    assert_eq!(
        request.query.as_deref(),
        Some("session="),
        "empty session parameter like real firmware"
    );
    let f = form(&request.body);
    assert_eq!(
        keys(&f),
        vec![
            "block_read_data",
            "block_read_error",
            "card_value",
            "confidence",
            "device_id",
            "duress",
            "event",
            "face_mask",
            "identifier_id",
            "log_type_id",
            "password",
            "pin_value",
            "portal_id",
            "qrcode_value",
            "registration",
            "remote_interlock_state",
            "time",
            "user_has_image",
            "user_id",
            "user_name",
            "uuid"
        ]
    );
    assert_eq!(
        (
            value(&f, "event"),
            value(&f, "user_id"),
            value(&f, "card_value")
        ),
        ("8", "5", "77")
    );
    assert_eq!(value(&f, "uuid").len(), 8);
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn enterprise_mode_sends_new_card_and_obeys_a_denial() {
    let rig = online_rig("0").await;
    rig.sink
        .respond_with_json(200, &json!({"result": {"event": 6, "message": "Denied"}}));
    let logged = rig.sim.identify(&Presentation::Card(77)).await.unwrap();
    assert_eq!(logged.decision.event, 6);
    assert!(logged.actuations.is_empty());
    let request = &rig.sink.received()[0];
    assert_eq!(request.path, "/new_card.fcgi");
    let f = form(&request.body);
    assert_eq!(
        keys(&f),
        vec![
            "block_read_data",
            "block_read_error",
            "card_value",
            "device_id",
            "identifier_id",
            "panic",
            "portal_id",
            "time",
            "uuid"
        ]
    );
    assert_eq!(value(&f, "identifier_id"), "2003398144");
    let (_, logs) = rig
        .post(
            "load_objects",
            json!({"object": "access_logs", "fields": ["event", "card_value"]}),
        )
        .await;
    assert_eq!(
        logs,
        json!({"access_logs": [{"event": 6, "card_value": 77}]})
    );
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn a_malformed_reply_is_not_retried_and_logs_no_response() {
    let rig = online_rig("1").await;
    rig.sink
        .respond_with_json(200, &json!({"result": {"user_id": "5"}}));
    let logged = rig.sim.identify(&Presentation::Card(77)).await.unwrap();
    assert_eq!(logged.decision.event, 14);
    let online: Vec<_> = rig
        .sink
        .received()
        .into_iter()
        .filter(|r| r.path.ends_with(".fcgi"))
        .collect();
    assert_eq!(online.len(), 1, "one request, one logged error");
    assert!(!rig.sim.terminal().in_contingency());
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn a_reply_over_the_size_limit_counts_as_malformed() {
    let rig = online_rig("1").await;
    let message = "x".repeat(online::MAX_REPLY_BYTES);
    rig.sink.respond_with_json(
        200,
        &json!({"result": {"event": 7, "user_id": 5, "message": message}}),
    );
    let logged = rig.sim.identify(&Presentation::Card(77)).await.unwrap();
    assert_eq!(logged.decision.event, 14, "not obeyed");
    assert!(!rig.sim.terminal().in_contingency());
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn a_lost_server_means_contingency_until_device_is_alive_succeeds() {
    // The monitor is the rig's sink; the online server is a sink of its own, so that the
    // server's scripted failures never touch the monitor's pushes.
    let rig = Rig::new(Model::IdFace).await;
    let server = CallbackSink::start().await.unwrap();
    configure_online(&rig, &format!("{}:{}", server.host(), server.port()), "1").await;
    let monitor_pushes = |mode: i64| {
        rig.sink
            .received()
            .into_iter()
            .filter(|r| {
                r.path.ends_with("/operation_mode")
                    && r.json.as_ref().map(|j| &j["operation_mode"]["mode"]) == Some(&json!(mode))
            })
            .count()
    };

    // Down: all three attempts fail, so the terminal decides locally (rule 1 grants) and
    // reports CONTINGENCY.
    server.respond_with([500, 500, 500]);
    let logged = rig.sim.identify(&Presentation::Card(77)).await.unwrap();
    assert_eq!(
        (logged.decision.event, logged.decision.user_id),
        (7, Some(5)),
        "local decision"
    );
    assert!(rig.sim.terminal().in_contingency());
    assert_eq!(server.received().len(), 3);
    while monitor_pushes(1) == 0 {
        rig.sink.wait_for(rig.sink.received().len() + 1).await;
    }

    // While in contingency nothing is asked of the server.
    rig.sim.identify(&Presentation::Card(77)).await.unwrap();
    assert_eq!(server.received().len(), 3);

    // The first probe (two attempts) still fails …
    server.respond_with([503, 503]);
    rig.sim.scheduler().wait_for_sleepers(1).await;
    rig.sim.scheduler().advance(online::ALIVE_PERIOD);
    let probes = server.wait_for(5).await;
    assert!(
        probes[3..]
            .iter()
            .all(|r| r.path == "/device_is_alive.fcgi" && r.status == 503)
    );
    assert!(rig.sim.terminal().in_contingency());

    // … the next one succeeds: back online, DEFAULT reported, the server asked again.
    rig.sim.scheduler().wait_for_sleepers(1).await;
    rig.sim.scheduler().advance(online::ALIVE_PERIOD);
    let probes = server.wait_for(6).await;
    assert_eq!(probes[5].path, "/device_is_alive.fcgi");
    assert_eq!(probes[5].json, Some(json!({"access_logs": 2})));
    while monitor_pushes(0) == 0 {
        rig.sink.wait_for(rig.sink.received().len() + 1).await;
    }
    assert!(!rig.sim.terminal().in_contingency());

    server.respond_with_json(200, &json!({"result": {"event": 6, "message": "Denied"}}));
    let logged = rig.sim.identify(&Presentation::Card(77)).await.unwrap();
    assert_eq!(logged.decision.event, 6, "the server decides again");
    assert_eq!(server.received()[6].path, "/new_user_identified.fcgi");
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn enterprise_mode_sends_a_typed_id_and_password_to_new_user_id_and_password() {
    let rig = online_rig("0").await;
    rig.sink.respond_with_json(
        200,
        &json!({"result": {"event": 7, "user_id": 5, "message": "Hi"}}),
    );
    let logged = rig
        .sim
        .identify(&Presentation::IdAndPassword {
            user_id: 5,
            password: "2468".into(),
        })
        .await
        .unwrap();
    assert_eq!(logged.decision.event, 7);
    let request = &rig.sink.received()[0];
    assert_eq!(request.path, "/new_user_id_and_password.fcgi");
    let f = form(&request.body);
    assert_eq!(
        keys(&f),
        vec![
            "device_id",
            "identifier_id",
            "password",
            "portal_id",
            "time",
            "user_id",
            "uuid"
        ]
    );
    assert_eq!((value(&f, "user_id"), value(&f, "password")), ("5", "2468"));
    let transcript = rig.sim.journal().transcript();
    assert!(transcript.contains("new_user_id_and_password"), "journaled");
    assert!(
        !transcript.contains("2468"),
        "the journal never keeps a password"
    );
    rig.sim.shutdown().await;
}
