//! Callback delivery (retries, backoff, routing) and every fault kind, each shown to have
//! its effect, driven from the library handle and from the `/_sim/` control API.

use std::time::Duration;

use acs_simulator::{Backoff, CallbackFaults, Model, Override, RetryPolicy};
use serde_json::{Value as Json, json};

use crate::enrollment::Rig;

/// Starts an async card enrollment and lets the cooperative person present.
async fn async_card(rig: &Rig) {
    let (status, _) = rig
        .post("remote_enroll", json!({"type": "card", "user_id": 5}))
        .await;
    assert_eq!(status, 200);
    rig.sim.scheduler().wait_for_sleepers(1).await;
    rig.sim.scheduler().advance(Duration::from_secs(1));
}

async fn delivered_attempts(rig: &Rig, n: usize) -> Vec<acs_simulator::journal::CallbackAttempt> {
    let journal = rig.sim.journal().clone();
    tokio::time::timeout(Duration::from_secs(10), async move {
        loop {
            let c = journal.callbacks();
            if c.len() >= n {
                return c;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("callback attempts journaled")
}

#[tokio::test]
async fn firmware_default_is_three_attempts_then_drop() {
    let rig = Rig::new(Model::IdFace).await;
    rig.sink.respond_with([503, 503, 503]);
    async_card(&rig).await;
    let attempts = delivered_attempts(&rig, 3).await;
    assert_eq!(
        attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(attempts.iter().all(|a| a.outcome == Ok(503)));
    assert_eq!(rig.sink.received().len(), 3);
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn retried_with_backoff_after_503_then_200() {
    let rig = Rig::new(Model::IdFace).await;
    rig.sim.terminal().outbox.set_policy(RetryPolicy {
        attempts: 5,
        backoff: Backoff::Exponential {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(60),
        },
    });
    rig.sink.respond_with([503]);
    async_card(&rig).await;
    let first = rig.sink.wait_for(1).await;
    assert_eq!(first[0].status, 503);
    // The retry waits 2 s of scheduler time: nothing before the clock moves.
    rig.sim.scheduler().wait_for_sleepers(1).await;
    assert_eq!(rig.sink.received().len(), 1);
    rig.sim.scheduler().advance(Duration::from_secs(2));
    let got = rig.sink.wait_for(2).await;
    assert_eq!(got[1].status, 200);
    assert_eq!(got[0].json, got[1].json, "the same notification is re-sent");
    let attempts = delivered_attempts(&rig, 2).await;
    assert!(attempts[1].delivered());
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn online_mode_results_go_to_the_online_server() {
    let rig = Rig::new(Model::IdFace).await;
    let server = json!({"object": "devices", "values": [{"id": 77, "name": "Server", "ip": format!("{}:{}/acs", rig.sink.host(), rig.sink.port()), "public_key": ""}]});
    assert_eq!(rig.post("create_objects", server).await.0, 200);
    let cfg = json!({"general": {"online": "1", "local_identification": "1"}, "online_client": {"server_id": "77"}});
    assert_eq!(rig.post("set_configuration", cfg).await.0, 200);
    async_card(&rig).await;
    let got = rig.sink.wait_for(1).await;
    assert_eq!(got[0].path, "/acs/card_create.fcgi");
    let body = got[0].json.clone().unwrap();
    assert_eq!(body["user_id"], 5);
    assert!(body["card_value"].is_u64());
    assert_eq!(body["device_id"], rig.sim.device().identity().device_id);
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn callback_faults_drop_duplicate_and_reorder() {
    let rig = Rig::new(Model::IdFace).await;
    let outbox = &rig.sim.terminal().outbox;
    outbox.set_faults(CallbackFaults {
        drop_next: 1,
        ..CallbackFaults::default()
    });
    async_card(&rig).await;
    let dropped = delivered_attempts(&rig, 1).await;
    assert_eq!(dropped[0].outcome, Err("dropped by fault".into()));
    assert!(rig.sink.received().is_empty());

    outbox.set_faults(CallbackFaults {
        duplicate_next: 1,
        ..CallbackFaults::default()
    });
    async_card(&rig).await;
    let got = rig.sink.wait_for(2).await;
    assert_eq!(got[0].json, got[1].json);

    outbox.set_faults(CallbackFaults {
        reorder_next: true,
        ..CallbackFaults::default()
    });
    rig.sim.present(acs_simulator::Presentation::Card(111));
    async_card(&rig).await;
    rig.sim.present(acs_simulator::Presentation::Card(222));
    async_card(&rig).await;
    let got = rig.sink.wait_for(4).await;
    let values: Vec<u64> = got[2..]
        .iter()
        .map(|r| r.json.as_ref().unwrap()["card_value"].as_u64().unwrap())
        .collect();
    assert_eq!(values, vec![222, 111]);
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn callback_delay_waits_on_the_scheduler() {
    let rig = Rig::new(Model::IdFace).await;
    rig.sim.terminal().outbox.set_faults(CallbackFaults {
        delay: Duration::from_secs(10),
        ..CallbackFaults::default()
    });
    async_card(&rig).await;
    // Once the enrollment is over, the only wait left is the delivery's delay.
    rig.enrollment_finished().await;
    rig.sim.scheduler().wait_for_sleepers(1).await;
    assert!(rig.sink.received().is_empty());
    rig.sim.scheduler().advance(Duration::from_secs(10));
    assert_eq!(rig.sink.wait_for(1).await.len(), 1);
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn latency_and_overrides() {
    let rig = Rig::new(Model::IdFace).await;
    rig.sim.faults().add_override(Override {
        command: "load_objects".into(),
        remaining: 2,
        status: 503,
        body: json!({"error": "busy", "code": 1}),
    });
    for _ in 0..2 {
        assert_eq!(
            rig.post("load_objects", json!({"object": "users"})).await,
            (503, json!({"error": "busy", "code": 1}))
        );
    }
    assert_eq!(
        rig.post("load_objects", json!({"object": "users"})).await.0,
        200
    );

    rig.sim.faults().set_latency(Duration::from_secs(3));
    let url = format!("{}/session_is_valid.fcgi", rig.sim.base_url());
    let slow = tokio::spawn(async move { reqwest::get(url).await.unwrap().status().as_u16() });
    rig.sim.scheduler().wait_for_sleepers(1).await;
    assert!(!slow.is_finished());
    rig.sim.scheduler().advance(Duration::from_secs(3));
    assert_eq!(slow.await.unwrap(), 200);
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn expire_sessions_reboot_and_clock_skew_over_the_control_api() {
    let rig = Rig::new(Model::IdFace).await;
    let control = |path: &str, body: Json| {
        let url = format!("{}/_sim/{path}", rig.sim.base_url());
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Json>().await.unwrap())
        }
    };
    let before = rig.post("system_information", json!({})).await.1["time"]
        .as_i64()
        .unwrap();
    assert_eq!(
        control("faults", json!({"clock_skew_seconds": 3600}))
            .await
            .0,
        200
    );
    let after = rig.post("system_information", json!({})).await.1["time"]
        .as_i64()
        .unwrap();
    assert_eq!(after - before, 3600);

    assert_eq!(
        control("faults", json!({"expire_sessions": true})).await.0,
        200
    );
    assert_eq!(
        rig.post("load_objects", json!({"object": "users"})).await.0,
        401
    );

    assert_eq!(control("faults", json!({"reboot": true})).await.0, 200);
    assert_eq!(
        rig.sim.device().rows("users").unwrap().len(),
        1,
        "tables survive a reboot"
    );

    let (status, body) = control(
        "faults",
        json!({"override": {"command": "login.fcgi", "status": 500}}),
    )
    .await;
    assert_eq!((status, body), (200, json!({})));
    let login = reqwest::Client::new()
        .post(format!("{}/login.fcgi", rig.sim.base_url()))
        .json(&json!({"login": "admin", "password": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 500);
    assert_eq!(
        control("faults", json!({"latency_seconds": -1})).await.0,
        400
    );
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn power_off_refuses_connections_then_serves_on_the_same_address() {
    let rig = Rig::new(Model::IdFace).await;
    let addr = rig.sim.addr();
    assert!(rig.sim.power_off().await);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "connection refused while off"
    );
    assert!(rig.sim.power_on().await);
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    // Volatile state went with the power: the old session is gone, the tables are not.
    assert_eq!(
        rig.post("load_objects", json!({"object": "users"})).await.0,
        401
    );
    assert_eq!(rig.sim.device().rows("users").unwrap().len(), 1);

    // From the control API: off for 5 s of scheduler time, then back by itself.
    let url = format!("{}/_sim/faults", rig.sim.base_url());
    let r = reqwest::Client::new()
        .post(url)
        .json(&json!({"power_off_seconds": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    rig.sim.scheduler().wait_for_sleepers(1).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    rig.sim.scheduler().advance(Duration::from_secs(5));
    let back = tokio::time::timeout(Duration::from_secs(10), async {
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(back.is_ok(), "terminal came back on the same address");
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn control_api_drives_the_person_and_the_clock() {
    let rig = Rig::new(Model::IdFace).await;
    let base = rig.sim.base_url();
    let client = reqwest::Client::new();
    let post = |path: &'static str, body: Json| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let r = client
                .post(format!("{base}/_sim/{path}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Json>().await.unwrap())
        }
    };
    assert_eq!(
        post("present", json!({"card": 424242, "queue": true})).await,
        (200, json!({"queued": 1}))
    );
    assert_eq!(
        post("policy", json!({"policy": "absent"})).await,
        (200, json!({"policy": "absent"}))
    );
    assert_eq!(post("present", json!({"bogus": 1})).await.0, 400);
    assert_eq!(post("nope", json!({})).await.0, 404);
    let (status, _) = rig
        .post(
            "remote_enroll",
            json!({"type": "card", "user_id": 5, "save": true}),
        )
        .await;
    assert_eq!(status, 200);
    rig.sim.scheduler().wait_for_sleepers(1).await;
    let (status, state) = post("state", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(state["enroller"]["enroller_state"], "ENROLL_CARD_STATE");
    assert_eq!(state["scheduler"]["sleepers"], 1);
    assert_eq!(post("clock/advance", json!({"seconds": 1})).await.0, 200);
    tokio::time::timeout(Duration::from_secs(10), async {
        while rig.sim.device().rows("cards").unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("card saved");
    assert_eq!(rig.sim.device().rows("cards").unwrap()[0]["value"], 424242);
    let journal = client
        .get(format!("{base}/_sim/journal"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        journal
            .lines()
            .any(|l| l.contains("\"command\":\"remote_enroll\""))
    );
    assert!(
        !journal.contains("\"password\":\"admin\""),
        "passwords never reach the journal"
    );
    rig.sim.shutdown().await;
}
