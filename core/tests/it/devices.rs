//! The core with simulated terminals end to end: enrollment on one terminal (sync card,
//! async face) ends as a credential that then works on another terminal, and what people
//! present at terminals comes back through the receiver as access events carrying the
//! `acs_id`; online terminals are answered by the core.

use std::time::Duration;

use acs_core::sync::{SyncEngine, SyncOptions};
use acs_simulator::journal::Body;
use acs_simulator::{Fleet, Presentation, RunningFleet, Simulator, TimeMode};
use serde_json::{Value as Json, json};

use crate::api_support::{Api, FACE};
use crate::bounded::{board_until, bounded};

const CARD: u64 = 528_281_023_086;

struct Rig {
    api: Api,
    fleet: RunningFleet,
    engine: SyncEngine,
    terminals: Vec<u64>,
}

/// Two terminals at one door (the second in `mode`), the receiver, and the engine
/// pointing the terminals at it.
async fn rig(second_mode: &str) -> Rig {
    let api = Api::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(acs_core::receiver::serve(
        listener,
        api.core.clone(),
        std::future::pending(),
    ));
    let fleet = Fleet::builder(2)
        .template(Simulator::builder().time_mode(TimeMode::Scaled(0.0)))
        .seed(90)
        .spawn()
        .await
        .expect("fleet");
    let site = api
        .post(
            "/v1/sites",
            json!({"name": "S", "timezone": "Europe/Madrid"}),
        )
        .await
        .id();
    let facility = api
        .post("/v1/facilities", json!({"site_id": site, "name": "F"}))
        .await
        .id();
    let door = api
        .post(
            "/v1/doors",
            json!({"facility_id": facility, "name": "D",
            "supported_auth_types": {"in": ["face", "card"], "out": []}}),
        )
        .await
        .id();
    let mut terminals = Vec::new();
    for (i, mode) in [(0, "standalone"), (1, second_mode)] {
        terminals.push(
            api.post(
                "/v1/terminals",
                json!({"facility_id": facility, "model": "idface",
                "address": fleet.device(i).expect("device").base_url(), "login": "admin",
                "password": "admin", "operating_mode": mode, "door_ids": [door]}),
            )
            .await
            .id(),
        );
    }
    let engine = SyncEngine::spawn(
        api.core.clone(),
        SyncOptions {
            retry_initial: Duration::from_millis(20),
            retry_max: Duration::from_millis(200),
            receiver: Some(("127.0.0.1".into(), port)),
            ..SyncOptions::default()
        },
    );
    Rig {
        api,
        fleet,
        engine,
        terminals,
    }
}

/// The next access event that came from a terminal's access log.
async fn terminal_event(
    events: &mut tokio::sync::broadcast::Receiver<acs_core::app::StreamedEvent>,
) -> Json {
    bounded("an access event from a terminal", async {
        loop {
            let e = events.recv().await.expect("an access event");
            if e.event.data["source"] == "terminal" {
                break e.event.data;
            }
        }
    })
    .await
}

impl Rig {
    /// Waits until both terminals hold `people` people and are in sync.
    async fn converged(&self, people: usize) {
        let terminals = self.terminals.clone();
        board_until(
            self.engine.board(),
            format_args!("terminals {terminals:?} in sync with {people} people"),
            |board| {
                terminals.iter().all(|t| {
                    board.iter().any(|((_, id), s)| {
                        id.get() == *t && s.in_sync && s.pending == 0 && s.people == people
                    })
                })
            },
        )
        .await;
    }

    /// A member with card 123,45678 who is let in once at terminal 0, the event recorded;
    /// the event stream, subscribed before the presentation.
    async fn member_let_in_once(
        &self,
        acs_id: &str,
        name: &str,
    ) -> tokio::sync::broadcast::Receiver<acs_core::app::StreamedEvent> {
        self.member_with_card(acs_id, name).await;
        self.converged(1).await;
        let mut events = self.api.core.subscribe();
        let granted = self
            .device(0)
            .identify(&Presentation::Card(CARD))
            .await
            .expect("decided");
        assert_eq!(granted.decision.event, 7);
        terminal_event(&mut events).await;
        assert_eq!(events_from_terminals(&self.api).await, 1);
        events
    }

    /// A member with card 123,45678: their id.
    async fn member_with_card(&self, acs_id: &str, name: &str) -> u64 {
        let person = self
            .api
            .post("/v1/people", json!({"acs_id": acs_id, "name": name}))
            .await
            .id();
        self.api
            .post(
                &format!("/v1/people/{person}/credentials"),
                json!({"kind": "card", "facility_code": 123, "card_number": 45678}),
            )
            .await
            .id();
        self.api
            .post("/v1/members", json!({"person_id": person}))
            .await
            .id();
        person
    }

    fn device(&self, i: usize) -> &acs_simulator::RunningSimulator {
        self.fleet.device(i).expect("device")
    }
}

#[tokio::test]
async fn a_card_enrolled_synchronously_on_one_terminal_opens_the_other() {
    let rig = rig("standalone").await;
    let person = rig
        .api
        .post("/v1/people", json!({"acs_id": "E-500", "name": "Ana"}))
        .await
        .id();
    rig.api
        .post("/v1/members", json!({"person_id": person}))
        .await
        .id();
    rig.converged(0).await;

    rig.device(0).present(Presentation::Card(CARD));
    let enrolled = rig
        .api
        .post(
            &format!("/v1/terminals/{}/enrollments", rig.terminals[0]),
            json!({"person_id": person, "kind": "card", "sync": true}),
        )
        .await;
    assert_eq!(enrolled.status, 201, "{}", enrolled.json);
    assert_eq!(enrolled.json["status"], "succeeded");
    let credential = enrolled.json["credential_id"].as_u64().expect("credential");
    let card = rig.api.get(&format!("/v1/credentials/{credential}")).await;
    assert_eq!(
        (
            card.json["facility_code"].clone(),
            card.json["card_number"].clone()
        ),
        (json!(123), json!(45678))
    );

    rig.converged(1).await;
    let mut events = rig.api.core.subscribe();
    let granted = rig
        .device(1)
        .identify(&Presentation::Card(CARD))
        .await
        .expect("decided");
    assert_eq!(
        granted.decision.event, 7,
        "the enrolled card opens the other terminal"
    );
    // The terminal's access log comes back as an access event with the acs_id.
    let event = terminal_event(&mut events).await;
    assert_eq!(event["acs_id"], "E-500", "{event}");
    assert_eq!(event["result"], "granted");
    assert_eq!(event["card"], "123,45678");
    assert_eq!(event["terminal_id"], rig.terminals[1]);
    rig.engine.shutdown().await;
}

#[tokio::test]
async fn a_face_enrolled_asynchronously_reaches_the_other_terminal_and_is_recognised() {
    let rig = rig("standalone").await;
    let person = rig
        .api
        .post("/v1/people", json!({"acs_id": "E-600"}))
        .await
        .id();
    rig.api
        .post("/v1/members", json!({"person_id": person}))
        .await
        .id();
    rig.converged(0).await;

    rig.device(0)
        .present(Presentation::FaceImage(FACE.to_vec()));
    let started = rig
        .api
        .post(
            &format!("/v1/terminals/{}/enrollments", rig.terminals[0]),
            json!({"person_id": person, "kind": "face", "sync": false}),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.json);
    assert_eq!(started.json["status"], "pending");
    let enrollment = started.json["id"].as_u64().expect("id");

    // The result arrives at the receiver; the new face reaches both terminals.
    rig.converged(1).await;
    let done = rig
        .api
        .get(&format!(
            "/v1/terminals/{}/enrollments/{enrollment}",
            rig.terminals[0]
        ))
        .await;
    assert_eq!(done.json["status"], "succeeded", "{}", done.json);
    let mut events = rig.api.core.subscribe();
    let seen = rig
        .device(1)
        .identify(&Presentation::FaceImage(FACE.to_vec()))
        .await
        .expect("decided");
    assert_eq!(
        seen.decision.event, 7,
        "the enrolled face is recognised on the other terminal"
    );
    let event = terminal_event(&mut events).await;
    assert_eq!(event["acs_id"], "E-600");
    assert_eq!(event["person_id"], person);

    // A second enrollment while none runs, then cancelled: nothing is stored.
    rig.device(0).set_policy(acs_simulator::Policy::Absent);
    let again = rig
        .api
        .post(
            &format!("/v1/terminals/{}/enrollments", rig.terminals[0]),
            json!({"person_id": person, "kind": "card", "sync": false}),
        )
        .await;
    let second = again.json["id"].as_u64().expect("id");
    rig.api
        .post(
            &format!("/v1/terminals/{}/enrollments", rig.terminals[0]),
            json!({"person_id": person, "kind": "card", "sync": false}),
        )
        .await
        .problem(409, None);
    let cancelled = rig
        .api
        .delete(&format!(
            "/v1/terminals/{}/enrollments/{second}",
            rig.terminals[0]
        ))
        .await;
    assert_eq!(cancelled.status, 204, "{}", cancelled.json);
    let credentials = rig
        .api
        .get(&format!("/v1/people/{person}/credentials"))
        .await
        .json;
    assert_eq!(
        credentials["items"].as_array().map(Vec::len),
        Some(1),
        "only the face"
    );
    rig.engine.shutdown().await;
}

#[tokio::test]
async fn an_online_terminal_asks_the_core_and_the_core_decides() {
    let rig = rig("enterprise").await;
    let person = rig
        .api
        .post("/v1/people", json!({"acs_id": "E-700"}))
        .await
        .id();
    rig.api
        .post(
            &format!("/v1/people/{person}/credentials"),
            json!({"kind": "card", "facility_code": 123, "card_number": 45678}),
        )
        .await
        .id();
    rig.converged(0).await;
    let online = rig.device(1);
    // Nobody is entitled yet: the core denies.
    let denied = online
        .identify(&Presentation::Card(CARD))
        .await
        .expect("decided");
    assert_ne!(denied.decision.event, 7, "{:?}", denied.decision);
    rig.api
        .post("/v1/members", json!({"person_id": person}))
        .await
        .id();
    rig.converged(1).await;
    let granted = online
        .identify(&Presentation::Card(CARD))
        .await
        .expect("decided");
    assert_eq!(granted.decision.event, 7);
    assert_eq!(
        granted.decision.user_id,
        Some(i64::try_from(person).expect("id"))
    );
    let events: Vec<Json> = rig.api.get("/v1/access-events").await.json["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let online_events: Vec<&Json> = events.iter().filter(|e| e["source"] == "online").collect();
    assert_eq!(online_events.len(), 2, "{events:?}");
    assert_eq!(online_events[1]["acs_id"], "E-700");
    rig.engine.shutdown().await;
}

#[tokio::test]
async fn a_terminal_registered_again_does_not_replay_its_access_log() {
    let rig = rig("standalone").await;
    let _events = rig.member_let_in_once("E-501", "Bea").await;

    // The same device, deleted and registered again under a new terminal id: the catch-up
    // reads its whole access log again, and nothing is recorded twice.
    let old = rig.terminals[0];
    let deleted = rig
        .api
        .send_as(
            Some(&rig.api.key),
            "DELETE",
            &format!("/v1/terminals/{old}"),
            None,
            None,
        )
        .await;
    assert!(deleted.status < 300, "{}", deleted.json);
    let terminal = rig
        .api
        .get(&format!("/v1/terminals/{}", rig.terminals[1]))
        .await;
    let again = rig
        .api
        .post(
            "/v1/terminals",
            json!({"facility_id": terminal.json["facility_id"], "model": "idface",
            "address": rig.device(0).base_url(), "login": "admin", "password": "admin",
            "door_ids": terminal.json["door_ids"]}),
        )
        .await
        .id();
    board_until(
        rig.engine.board(),
        format_args!("terminal {again} in sync with its access log read"),
        |board| {
            board
                .iter()
                .any(|((_, id), s)| id.get() == again && s.in_sync && s.access_logs_read > 0)
        },
    )
    .await;
    assert_eq!(
        events_from_terminals(&rig.api).await,
        1,
        "the log was not replayed as new events"
    );
    rig.engine.shutdown().await;
}

/// How many recorded access events came from terminals' access logs.
async fn events_from_terminals(api: &Api) -> usize {
    api.get("/v1/access-events?limit=500").await.json["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|e| e["source"] == "terminal" || e["data"]["source"] == "terminal")
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn a_deleted_terminal_is_cleared_of_what_the_core_wrote() {
    let rig = rig("standalone").await;
    rig.member_with_card("E-502", "Cai").await;
    rig.converged(1).await;
    let device = rig.device(0).device();
    assert_eq!(device.rows("users").expect("users").len(), 1);
    assert_eq!(device.rows("cards").expect("cards").len(), 1);
    let core_rules = |device: &acs_simulator::Device| {
        device
            .rows("access_rules")
            .expect("rules")
            .iter()
            .filter(|r| r.get("id").and_then(Json::as_i64) >= Some(1_000_000_000))
            .count()
    };
    assert_eq!(core_rules(device), 1, "the core's rule");
    assert_ne!(
        device
            .config_value("monitor", "hostname")
            .unwrap_or_default(),
        ""
    );

    let old = rig.terminals[0];
    let deleted = rig
        .api
        .send_as(
            Some(&rig.api.key),
            "DELETE",
            &format!("/v1/terminals/{old}"),
            None,
            None,
        )
        .await;
    assert!(deleted.status < 300, "{}", deleted.json);
    device_until(device, "the deleted terminal's device cleared", || {
        device.rows("users").expect("users").is_empty()
            && device.rows("cards").expect("cards").is_empty()
            && core_rules(device) == 0
            && device
                .config_value("monitor", "hostname")
                .unwrap_or_default()
                .is_empty()
    })
    .await;
    // The other terminal keeps its person.
    assert_eq!(
        rig.device(1).device().rows("users").expect("users").len(),
        1
    );
    rig.engine.shutdown().await;
}

#[tokio::test]
async fn an_enrollment_with_save_leaves_the_card_on_the_terminal_at_once_and_once() {
    let rig = rig("standalone").await;
    let person = rig
        .api
        .post(
            "/v1/people",
            json!({"acs_id": "E-503", "name": "Dan", "selfie": crate::api_support::face_b64()}),
        )
        .await
        .id();
    rig.api
        .post("/v1/members", json!({"person_id": person}))
        .await
        .id();
    // The terminal must hold the person for `save`: their face puts them there.
    rig.converged(1).await;
    let card_removals = || {
        rig.device(0)
            .journal()
            .for_command("destroy_objects")
            .iter()
            .filter(|e| matches!(&e.request, Body::Json(j) if j["object"] == "cards"))
            .count()
    };
    let removals_before = card_removals();
    rig.device(0).present(Presentation::Card(CARD));
    let enrolled = rig
        .api
        .post(
            &format!("/v1/terminals/{}/enrollments", rig.terminals[0]),
            json!({"person_id": person, "kind": "card", "sync": true, "save": true}),
        )
        .await;
    assert_eq!(enrolled.status, 201, "{}", enrolled.json);
    let cards = |i: usize| {
        rig.device(i)
            .device()
            .rows("cards")
            .expect("cards")
            .iter()
            .filter(|c| c.get("value").and_then(Json::as_u64) == Some(CARD))
            .count()
    };
    assert_eq!(cards(0), 1, "kept by the terminal at once");
    // Both terminals synced a pass that saw the issued card (the board may still show a
    // pass from before it).
    let revision = rig.api.core.revision();
    let terminals = rig.terminals.clone();
    board_until(
        rig.engine.board(),
        "both terminals synced after the enrollment",
        |board| {
            terminals.iter().all(|t| {
                board.iter().any(|((_, id), s)| {
                    id.get() == *t && s.in_sync && s.pending == 0 && s.revision >= revision
                })
            })
        },
    )
    .await;
    assert_eq!(
        (cards(0), cards(1)),
        (1, 1),
        "once on each terminal after the sync"
    );
    // The sync pass that brought the issued card found it on terminal 0 and left it there:
    // taking it off to put it on again would lock the person out for a moment.
    assert_eq!(
        card_removals(),
        removals_before,
        "no card taken off terminal 0"
    );
    rig.engine.shutdown().await;
}

#[tokio::test]
async fn a_wiped_terminal_counting_its_log_from_one_again_loses_no_event() {
    let rig = rig("standalone").await;
    let mut events = rig.member_let_in_once("E-504", "Eve").await;
    // The terminal comes back empty: its access log starts at id 1 again.
    rig.device(0).device().reset_to_factory();
    rig.api.set_now("2026-05-04T08:06:00Z");
    board_until(rig.engine.board(), "the wiped terminal repaired", |_| {
        rig.device(0).device().rows("users").expect("users").len() == 1
    })
    .await;
    // A later presentation (rows are told apart by their content: a reused id with the
    // same person, event and second would read as the row already recorded).
    rig.device(0).device().skew_clock(120);
    let again = rig
        .device(0)
        .identify(&Presentation::Card(CARD))
        .await
        .expect("decided");
    assert_eq!(
        again.decision.event, 7,
        "the repaired terminal lets the member in"
    );
    let event = terminal_event(&mut events).await;
    assert_eq!(event["acs_id"], "E-504", "{event}");
    assert_eq!(
        events_from_terminals(&rig.api).await,
        2,
        "the new row with a reused id is a new event"
    );
    rig.engine.shutdown().await;
}

/// Waits (bounded) until `done` holds, looking again at every change of `device`.
async fn device_until(device: &acs_simulator::Device, what: &str, mut done: impl FnMut() -> bool) {
    let mut changes = device.subscribe_changes();
    bounded(what, async {
        while !done() {
            changes.changed().await.expect("the device lives");
        }
    })
    .await;
}

#[tokio::test]
async fn a_terminals_refusals_reach_the_access_events_with_their_reasons() {
    let rig = rig("standalone").await;
    rig.member_with_card("E-505", "Fay").await;
    rig.converged(1).await;
    // Someone the terminal holds by hand, with a card and no rule: known but refused.
    let device = rig.device(0).device();
    for request in [
        json!({"object": "users",
               "values": [{"id": 990_001, "name": "By hand", "registration": ""}]}),
        json!({"object": "cards", "values": [{"value": 777_000_123_u64, "user_id": 990_001}]}),
    ] {
        device
            .create_objects(acs_simulator::wire::Members::of(&request, "request").expect("members"))
            .expect("written by hand");
    }
    let mut events = rig.api.core.subscribe();
    for (card, event, reason) in [
        (555_000_001_u64, 3, "unknown_credential"),
        (777_000_123, 6, "no_entitlement"),
    ] {
        let refused = rig
            .device(0)
            .identify(&Presentation::Card(card))
            .await
            .expect("decided");
        assert_eq!(refused.decision.event, event, "card {card}");
        let recorded = terminal_event(&mut events).await;
        assert_eq!(recorded["result"], "denied", "{recorded}");
        assert_eq!(recorded["type"], "access.denied", "{recorded}");
        assert_eq!(recorded["reason_code"], reason, "{recorded}");
    }
    let denied = rig.api.get("/v1/access-events?result=denied").await.json;
    let reasons: Vec<&str> = denied["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["source"] == "terminal")
        .filter_map(|e| e["reason_code"].as_str())
        .collect();
    assert_eq!(reasons, ["unknown_credential", "no_entitlement"]);
    rig.engine.shutdown().await;
}

#[tokio::test]
async fn a_wiped_terminal_whose_new_log_passed_the_cursor_loses_no_event() {
    let rig = rig("standalone").await;
    rig.member_let_in_once("E-506", "Gil").await;
    // A catch-up reads the row: the cursor is at log id 1.
    let terminal = rig.terminals[0];
    rig.api.set_now("2026-05-04T08:02:00Z");
    let cursor_at = |n: i64| {
        move |board: &crate::bounded::Board| {
            board
                .iter()
                .any(|((_, id), s)| id.get() == terminal && s.access_logs_read == n)
        }
    };
    board_until(rig.engine.board(), "the cursor at 1", cursor_at(1)).await;
    // Wiped: no monitor settings, so nothing is pushed; two refusals fill ids 1 and 2.
    rig.device(0).device().reset_to_factory();
    rig.device(0).device().skew_clock(120);
    for _ in 0..2 {
        let refused = rig
            .device(0)
            .identify(&Presentation::Card(CARD))
            .await
            .expect("decided");
        assert_eq!(refused.decision.event, 3, "the wiped terminal knows nobody");
    }
    // The read-back repairs it and the catch-up, finding another row at its cursor, reads
    // the log from the start.
    rig.api.set_now("2026-05-04T08:08:00Z");
    board_until(rig.engine.board(), "the cursor at 2", cursor_at(2)).await;
    assert_eq!(
        events_from_terminals(&rig.api).await,
        3,
        "the first row, and both rows of the new log"
    );
    rig.engine.shutdown().await;
}
