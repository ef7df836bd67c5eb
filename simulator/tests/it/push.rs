//! Push mode against a scripted server: the terminal polls `/push`, runs the command it
//! gets without a session, posts `/result`, polls again at once, and waits a period when
//! there is nothing to do; batches answer per transaction; absurd periods are bounded.

use std::time::Duration;

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

#[tokio::test]
async fn an_absurd_period_or_timeout_is_bounded_and_the_loop_keeps_polling() {
    // A period near u64::MAX used to panic the push task (Duration arithmetic) once the
    // scheduler clock had moved; set through the device API like any client would.
    let rig = Rig::new(Model::IdFace).await;
    let server = CallbackSink::start().await.unwrap();
    rig.sim.scheduler().advance(Duration::from_secs(1));
    let address = format!("{}:{}", server.host(), server.port());
    let cfg = json!({"push_server": {"push_remote_address": address,
        "push_request_period": "18446744073709551615",
        "push_request_timeout": "18446744073709551615"}});
    assert_eq!(rig.post("set_configuration", cfg).await.0, 200);
    assert_eq!(polls(&server, 1).await[0].path, "/push");
    // Nothing to do: the terminal waits one period, which is at most a day.
    waiting(&rig).await;
    rig.sim.scheduler().advance(Duration::from_secs(86_399));
    tokio::task::yield_now().await;
    assert_eq!(server.received().len(), 1, "polled before the period ended");
    rig.sim.scheduler().advance(Duration::from_secs(1));
    assert_eq!(polls(&server, 2).await[1].path, "/push");
    // Junk is the factory value (5 s).
    let cfg = json!({"push_server": {"push_request_period": "-1e400"}});
    assert_eq!(rig.post("set_configuration", cfg).await.0, 200);
    waiting(&rig).await;
    rig.sim.scheduler().advance(Duration::from_secs(86_400));
    polls(&server, 3).await;
    waiting(&rig).await;
    rig.sim.scheduler().advance(Duration::from_secs(5));
    assert_eq!(polls(&server, 4).await[3].path, "/push");
    rig.sim.shutdown().await;
}

/// The first `n` polls; a dead push task stops polling, so this fails instead of waiting
/// for ever.
async fn polls(server: &CallbackSink, n: usize) -> Vec<acs_simulator::sink::Received> {
    tokio::time::timeout(Duration::from_secs(20), server.wait_for(n))
        .await
        .unwrap_or_else(|_| panic!("poll {n} never came: the push loop died"))
}

/// Returns once the push loop waits on the scheduler (bounded, like [`polls`]).
async fn waiting(rig: &Rig) {
    tokio::time::timeout(
        Duration::from_secs(20),
        rig.sim.scheduler().wait_for_sleepers(1),
    )
    .await
    .unwrap_or_else(|_| panic!("the push loop never waited: it died"));
}
