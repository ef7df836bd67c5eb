//! Push mode against a scripted server: the terminal polls `/push`, runs the command it
//! gets without a session, posts `/result`, polls again at once, and waits a period when
//! there is nothing to do; batches answer per transaction.

use acs_simulator::{CallbackSink, Model};
use serde_json::json;

use crate::enrollment::Rig;

#[tokio::test]
async fn the_terminal_polls_runs_the_command_and_posts_the_result() {
    let rig = Rig::new(Model::IdFace).await;
    let server = CallbackSink::start().await.unwrap();
    server.respond_with_json(
        200,
        &json!({"verb": "POST", "endpoint": "create_objects", "contentType": "application/json",
                "body": {"object": "users", "values": [{"id": 9, "name": "Pushed", "registration": "P9"}]}}),
    );
    let address = format!("{}:{}", server.host(), server.port());
    let cfg = json!({"push_server": {"push_remote_address": address, "push_request_period": "30"}});
    assert_eq!(rig.post("set_configuration", cfg).await.0, 200);

    // poll → command, result, poll again at once (empty: nothing to do).
    let seen = server.wait_for(3).await;
    assert_eq!(seen[0].path, "/push");
    let query = seen[0].query.clone().unwrap_or_default();
    let device_id = rig.sim.device().identity().device_id;
    assert!(
        query.starts_with(&format!("deviceId={device_id}&uuid=")),
        "{query}"
    );
    assert_eq!(query.len(), format!("deviceId={device_id}&uuid=").len() + 8);
    assert_eq!(seen[1].path, "/result");
    assert_eq!(seen[1].json, Some(json!({"response": {"ids": [9]}})));
    assert_eq!(seen[2].path, "/push");
    assert!(rig.sim.device().user_exists(9), "the command ran");
    let journal = rig.sim.journal().entries();
    assert!(
        journal
            .iter()
            .any(|e| e.method == "PUSH" && e.command == "create_objects" && e.status == 200)
    );

    // Nothing more until a period has passed; then a batch, answered per transaction.
    server.respond_with_json(
        200,
        &json!({"transactions": [
            {"transactionid": 1, "verb": "POST", "endpoint": "load_objects",
             "body": {"object": "users", "fields": ["name"], "where": {"users": {"id": 9}}}},
            {"transactionid": 2, "verb": "POST", "endpoint": "format_disk", "body": {}},
        ]}),
    );
    rig.sim.scheduler().wait_for_sleepers(1).await;
    assert_eq!(server.received().len(), 3);
    rig.sim
        .scheduler()
        .advance(std::time::Duration::from_secs(30));
    let seen = server.wait_for(5).await;
    assert_eq!(seen[3].path, "/push");
    assert_eq!(
        seen[4].json,
        Some(json!({"transactions_results": [
            {"transactionid": 1, "success": true, "response": {"users": [{"name": "Pushed"}]}},
            {"transactionid": 2, "success": false, "error": "Unknown command: format_disk"},
        ]}))
    );
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn a_malformed_command_is_answered_with_an_error() {
    let rig = Rig::new(Model::IdAccess).await;
    let server = CallbackSink::start().await.unwrap();
    server.respond_with_json(200, &json!({"verb": "POST", "body": {}}));
    let address = format!("http://{}:{}/", server.host(), server.port());
    let cfg = json!({"push_server": {"push_remote_address": address}});
    assert_eq!(rig.post("set_configuration", cfg).await.0, 200);
    let seen = server.wait_for(2).await;
    assert_eq!(seen[1].path, "/result");
    assert_eq!(
        seen[1].json,
        Some(json!({"error": "Invalid push command: endpoint must be a non-empty string"}))
    );
    rig.sim.shutdown().await;
}
