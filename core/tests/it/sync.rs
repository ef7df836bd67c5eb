//! The sync engine against simulated fleets: members reach every terminal and leave them,
//! attendees reach only their facility's terminals and only during the event (manual
//! clock), expired temporary accesses leave the hardware, powered-off terminals and a
//! restarted engine converge without duplicates, drift on a device is repaired, and a task
//! whose reads of the core fail keeps trying (with backoff) until it converges.

use std::collections::BTreeSet;
use std::time::Duration;

use acs_core::sync::{SyncEngine, SyncOptions};
use acs_simulator::{Fleet, Presentation, RunningFleet, Simulator, TimeMode};
use serde_json::{Value as Json, json};

use crate::api_support::{Api, face_b64};
use crate::bounded::board_until;

/// 123,45678 as the terminal stores it.
const CARD: u64 = 528_281_023_086;

fn options() -> SyncOptions {
    SyncOptions {
        retry_initial: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        ..SyncOptions::default()
    }
}

async fn fleet(n: usize) -> RunningFleet {
    Fleet::builder(n)
        .template(Simulator::builder().time_mode(TimeMode::Scaled(0.0)))
        .seed(40)
        .spawn()
        .await
        .expect("fleet")
}

/// Registers terminal `index` of the fleet at `facility`, serving `door`.
async fn register(api: &Api, fleet: &RunningFleet, index: usize, facility: u64, door: u64) -> u64 {
    let url = fleet.device(index).expect("device").base_url();
    api.post(
        "/v1/terminals",
        json!({"facility_id": facility, "model": "idface", "address": url, "login": "admin",
               "password": "admin", "door_ids": [door]}),
    )
    .await
    .id()
}

/// A site with `facilities` facilities, one door each.
async fn site(api: &Api, facilities: usize) -> Vec<(u64, u64)> {
    let site = api
        .post(
            "/v1/sites",
            json!({"name": "Madrid", "timezone": "Europe/Madrid"}),
        )
        .await
        .id();
    let mut out = Vec::new();
    for i in 0..facilities {
        let facility = api
            .post(
                "/v1/facilities",
                json!({"site_id": site, "name": format!("F{i}")}),
            )
            .await
            .id();
        let door = api
            .post(
                "/v1/doors",
                json!({"facility_id": facility, "name": format!("D{i}"),
                "supported_auth_types": {"in": ["face", "card", "pin"], "out": ["card"]}}),
            )
            .await
            .id();
        out.push((facility, door));
    }
    out
}

/// A person with a selfie and card 123,45678.
async fn person(api: &Api, acs_id: &str) -> u64 {
    person_with_card(api, acs_id, 45678).await
}

/// A person with a selfie and card 123,`number`.
async fn person_with_card(api: &Api, acs_id: &str, number: u32) -> u64 {
    let person = api
        .post(
            "/v1/people",
            json!({"acs_id": acs_id, "name": "Ana", "selfie": face_b64()}),
        )
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

/// The registrations of every user on the device.
pub(crate) fn users(fleet: &RunningFleet, index: usize) -> BTreeSet<String> {
    fleet
        .device(index)
        .expect("device")
        .device()
        .rows("users")
        .expect("users")
        .iter()
        .filter_map(|r| {
            r.get("registration")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .collect()
}

fn count(fleet: &RunningFleet, index: usize, table: &str) -> usize {
    fleet
        .device(index)
        .expect("device")
        .device()
        .rows(table)
        .expect(table)
        .len()
}

/// Waits until every terminal of the tenant reports in sync with `people` on it.
async fn converged(engine: &SyncEngine, terminals: &[(u64, usize)]) {
    board_until(
        engine.board(),
        format_args!("(terminal, people) {terminals:?} in sync"),
        |board| {
            terminals.iter().all(|(terminal, people)| {
                board.iter().any(|((_, t), s)| {
                    t.get() == *terminal && s.in_sync && s.pending == 0 && s.people == *people
                })
            })
        },
    )
    .await;
}

#[tokio::test]
async fn a_member_reaches_every_terminal_and_leaves_them_all() {
    let api = Api::start().await;
    let fleet = fleet(3).await;
    let places = site(&api, 2).await;
    let mut terminals = Vec::new();
    for i in 0..3 {
        let (facility, door) = places[i % 2];
        terminals.push(register(&api, &fleet, i, facility, door).await);
    }
    let engine = SyncEngine::spawn(api.core.clone(), options());
    let ana = person(&api, "E-1").await;
    converged(
        &engine,
        &terminals.iter().map(|t| (*t, 0)).collect::<Vec<_>>(),
    )
    .await;
    assert!(users(&fleet, 0).is_empty(), "enrolled is not distributed");

    let member = api
        .post("/v1/members", json!({"person_id": ana}))
        .await
        .id();
    converged(
        &engine,
        &terminals.iter().map(|t| (*t, 1)).collect::<Vec<_>>(),
    )
    .await;
    for i in 0..3 {
        assert_eq!(
            users(&fleet, i),
            BTreeSet::from(["E-1".to_owned()]),
            "terminal {i}"
        );
        let cards = fleet
            .device(i)
            .expect("device")
            .device()
            .rows("cards")
            .expect("cards");
        assert_eq!(cards.len(), 1);
        assert_eq!(cards[0]["value"], json!(CARD));
        assert_eq!(
            fleet
                .device(i)
                .expect("device")
                .device()
                .list_images()
                .len(),
            1,
            "the face"
        );
        let granted = fleet
            .device(i)
            .expect("device")
            .identify(&Presentation::Card(CARD))
            .await
            .expect("decided");
        assert_eq!(granted.decision.event, 7, "terminal {i} lets the member in");
    }
    let status = api
        .get(&format!("/v1/terminals/{}/sync", terminals[0]))
        .await;
    assert_eq!(status.json["in_sync"], true, "{}", status.json);
    assert_eq!(status.json["people"], 1);

    assert_eq!(
        api.delete(&format!("/v1/members/{member}")).await.status,
        204
    );
    converged(
        &engine,
        &terminals.iter().map(|t| (*t, 0)).collect::<Vec<_>>(),
    )
    .await;
    for i in 0..3 {
        assert!(users(&fleet, i).is_empty(), "terminal {i}");
        assert_eq!(count(&fleet, i, "cards"), 0);
        assert!(
            fleet
                .device(i)
                .expect("device")
                .device()
                .list_images()
                .is_empty()
        );
    }
    engine.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn an_attendee_is_on_the_facility_terminals_only_during_the_event() {
    let api = Api::start().await;
    let fleet = fleet(2).await;
    let places = site(&api, 2).await;
    let hall = register(&api, &fleet, 0, places[0].0, places[0].1).await;
    let office = register(&api, &fleet, 1, places[1].0, places[1].1).await;
    let engine = SyncEngine::spawn(api.core.clone(), options());
    let ana = person(&api, "E-2").await;
    let event = api
        .post(
            "/v1/events",
            json!({"facility_id": places[0].0,
            "starts_at": "2026-05-04T18:00:00Z", "ends_at": "2026-05-04T23:00:00Z"}),
        )
        .await
        .id();
    api.post(
        &format!("/v1/events/{event}/attendees"),
        json!({"person_id": ana}),
    )
    .await;
    converged(&engine, &[(hall, 0), (office, 0)]).await;
    assert!(users(&fleet, 0).is_empty(), "not before the event");

    api.set_now("2026-05-04T18:00:00Z");
    converged(&engine, &[(hall, 1), (office, 0)]).await;
    assert_eq!(users(&fleet, 0), BTreeSet::from(["E-2".to_owned()]));
    assert!(users(&fleet, 1).is_empty(), "only the event's facility");
    let hall_device = fleet.device(0).expect("hall");
    assert_eq!(
        hall_device
            .identify(&Presentation::Card(CARD))
            .await
            .expect("decided")
            .decision
            .event,
        7
    );

    api.set_now("2026-05-04T23:00:00Z");
    converged(&engine, &[(hall, 0), (office, 0)]).await;
    assert!(users(&fleet, 0).is_empty(), "gone after the event");
    let after = hall_device
        .identify(&Presentation::Card(CARD))
        .await
        .expect("decided");
    assert_ne!(after.decision.event, 7, "denied after the window");
    engine.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn an_expired_temporary_access_leaves_the_hardware() {
    let api = Api::start().await;
    let fleet = fleet(1).await;
    let places = site(&api, 1).await;
    let terminal = register(&api, &fleet, 0, places[0].0, places[0].1).await;
    let engine = SyncEngine::spawn(api.core.clone(), options());
    let ana = person(&api, "E-3").await;
    let schedule = api
        .post(
            "/v1/schedules",
            json!({"name": "Office", "weekly_spans": [
            {"weekdays": ["mon","tue","wed","thu","fri"], "start": "08:00", "end": "20:00"}]}),
        )
        .await
        .id();
    api.post(
        "/v1/accesses",
        json!({"name": "Visitor", "kind": "temporary",
        "valid_to": "2026-05-04T12:00:00Z", "schedule_id": schedule,
        "doors": [{"door_id": places[0].1, "in_auth_types": ["card"]}], "person_ids": [ana]}),
    )
    .await
    .id();
    converged(&engine, &[(terminal, 1)]).await;
    let device = fleet.device(0).expect("device").device();
    let spans = device.rows("time_spans").expect("spans");
    assert!(
        spans.iter().any(|s| s["time_zone_id"] == json!(schedule)
            && s["start"] == json!(28_800)
            && s["end"] == json!(71_999)
            && s["mon"] == json!(1)
            && s["sun"] == json!(0)),
        "the schedule is on the device: {spans:?}"
    );
    let rules = device.rows("user_access_rules").expect("links");
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0]["access_rule_id"],
        json!(schedule),
        "card access → the schedule's rule only"
    );

    api.set_now("2026-05-04T12:00:00Z");
    converged(&engine, &[(terminal, 0)]).await;
    assert!(users(&fleet, 0).is_empty());
    assert_eq!(
        count(&fleet, 0, "time_spans"),
        1,
        "only the factory span is left"
    );
    let denied = fleet
        .device(0)
        .expect("device")
        .identify(&Presentation::Card(CARD))
        .await
        .expect("decided");
    assert_eq!(
        denied.decision.event, 3,
        "a card presented after valid_to is not identified"
    );
    engine.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn offline_terminals_and_a_restarted_engine_converge_without_duplicates() {
    let api = Api::start().await;
    let fleet = fleet(2).await;
    let places = site(&api, 1).await;
    let a = register(&api, &fleet, 0, places[0].0, places[0].1).await;
    let b = register(&api, &fleet, 1, places[0].0, places[0].1).await;
    let engine = SyncEngine::spawn(api.core.clone(), options());
    converged(&engine, &[(a, 0), (b, 0)]).await;

    // Terminal B is off while people become members.
    fleet
        .power_off(&acs_simulator::Selection::Indices(vec![1]))
        .await
        .expect("off");
    let mut people = Vec::new();
    for i in 0..5 {
        let p = person_with_card(&api, &format!("M-{i}"), 1000 + i).await;
        api.post("/v1/members", json!({"person_id": p})).await.id();
        people.push(p);
    }
    converged(&engine, &[(a, 5)]).await;
    let status = api.get(&format!("/v1/terminals/{b}/sync")).await;
    assert_eq!(status.json["in_sync"], false, "{}", status.json);
    assert!(status.json["last_error"].is_string());

    // The engine restarts (applied state comes from the store) before B is back.
    engine.shutdown().await;
    let engine = SyncEngine::spawn(api.core.clone(), options());
    fleet
        .power_on(&acs_simulator::Selection::Indices(vec![1]))
        .await
        .expect("on");
    converged(&engine, &[(a, 5), (b, 5)]).await;
    for i in 0..2 {
        assert_eq!(users(&fleet, i).len(), 5, "terminal {i}");
        assert_eq!(
            count(&fleet, i, "cards"),
            5,
            "no duplicate cards on terminal {i}"
        );
        assert_eq!(count(&fleet, i, "user_access_rules"), 5);
    }
    // A pass after the restart pushed nothing again to A.
    let a_logins = fleet
        .device(0)
        .expect("a")
        .journal()
        .for_command("create_objects")
        .len();
    api.set_now("2026-05-04T09:00:00Z");
    converged(&engine, &[(a, 5), (b, 5)]).await;
    assert_eq!(
        fleet
            .device(0)
            .expect("a")
            .journal()
            .for_command("create_objects")
            .len(),
        a_logins
    );
    engine.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_user_deleted_on_the_device_by_hand_is_pushed_again() {
    let api = Api::start().await;
    let fleet = fleet(1).await;
    let places = site(&api, 1).await;
    let terminal = register(&api, &fleet, 0, places[0].0, places[0].1).await;
    let engine = SyncEngine::spawn(
        api.core.clone(),
        SyncOptions {
            readback_every: Duration::from_secs(60),
            ..options()
        },
    );
    let ana = person(&api, "E-4").await;
    api.post("/v1/members", json!({"person_id": ana}))
        .await
        .id();
    converged(&engine, &[(terminal, 1)]).await;

    let device = fleet.device(0).expect("device").device();
    device
        .destroy_objects(
            acs_simulator::wire::Members::of(
                &json!({"object": "users", "where": {"users": {"id": ana}}}),
                "request",
            )
            .expect("members"),
        )
        .expect("deleted by hand");
    assert!(users(&fleet, 0).is_empty());
    // The read-back is due a minute later on the core's clock.
    api.set_now("2026-05-04T08:01:00Z");
    board_until(engine.board(), "the user pushed again", |_| {
        users(&fleet, 0).len() == 1
    })
    .await;
    assert_eq!(users(&fleet, 0), BTreeSet::from(["E-4".to_owned()]));
    engine.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_card_the_device_holds_for_someone_else_moves_to_the_person_issued_it() {
    let api = Api::start().await;
    let fleet = fleet(1).await;
    let places = site(&api, 1).await;
    let terminal = register(&api, &fleet, 0, places[0].0, places[0].1).await;
    let engine = SyncEngine::spawn(api.core.clone(), options());
    let ana = person(&api, "E-6").await;
    api.post("/v1/members", json!({"person_id": ana}))
        .await
        .id();
    converged(&engine, &[(terminal, 1)]).await;
    let device = fleet.device(0).expect("device").device();
    let cards = || -> BTreeSet<(u64, u64)> {
        device
            .rows("cards")
            .expect("cards")
            .iter()
            .map(|r| {
                let value = r.get("value").and_then(Json::as_u64).expect("value");
                (
                    value,
                    r.get("user_id").and_then(Json::as_u64).expect("user"),
                )
            })
            .collect()
    };
    let first = (123 << 32) | 45678;
    assert_eq!(cards(), BTreeSet::from([(first, ana)]));
    // Someone put card 123,45679 on the device by hand, for a user of their own.
    let next = (123 << 32) | 45679;
    let create = |request: Json| {
        device
            .create_objects(acs_simulator::wire::Members::of(&request, "request").expect("members"))
    };
    create(json!({"object": "users",
        "values": [{"id": 9001, "name": "By hand", "registration": "X-1"}]}))
    .expect("user created by hand");
    create(json!({"object": "cards", "values": [{"value": next, "user_id": 9001}]}))
        .expect("card created by hand");
    // The core issues that card to Ana: the device's copy leaves the other user for her.
    api.post(
        &format!("/v1/people/{ana}/credentials"),
        json!({"kind": "card", "facility_code": 123, "card_number": 45679}),
    )
    .await
    .id();
    board_until(engine.board(), "the card moved to Ana", |_| {
        cards().contains(&(next, ana))
    })
    .await;
    assert_eq!(cards(), BTreeSet::from([(first, ana), (next, ana)]));
    engine.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_terminal_task_whose_reads_fail_says_so_and_recovers() {
    let api = Api::start().await;
    let fleet = fleet(1).await;
    let places = site(&api, 1).await;
    let (facility, door) = places[0];
    let terminal = register(&api, &fleet, 0, facility, door).await;
    let ana = person(&api, "E-9").await;
    api.post("/v1/members", json!({"person_id": ana}))
        .await
        .id();
    let options = options();
    // Every read of the terminal's image fails for a while: before, the task ended for
    // good and the terminal was never synced again.
    options.faults.fail_next_reads(5);
    let engine = SyncEngine::spawn(api.core.clone(), options);
    board_until(
        engine.board(),
        format_args!("terminal {terminal} reports the failed read"),
        |board| {
            board.iter().any(|((_, t), s)| {
                t.get() == terminal
                    && s.last_error
                        .as_deref()
                        .is_some_and(|e| e.contains("could not be read"))
            })
        },
    )
    .await;
    converged(&engine, &[(terminal, 1)]).await;
    assert_eq!(users(&fleet, 0), BTreeSet::from(["E-9".to_owned()]));
    engine.shutdown().await;
}

#[tokio::test]
async fn a_wiped_terminal_is_repaired_completely_at_the_next_read_back() {
    let api = Api::start().await;
    let fleet = fleet(1).await;
    let places = site(&api, 1).await;
    let terminal = register(&api, &fleet, 0, places[0].0, places[0].1).await;
    let engine = SyncEngine::spawn(
        api.core.clone(),
        SyncOptions {
            readback_every: Duration::from_secs(60),
            receiver: Some(("127.0.0.1".into(), 9)),
            ..options()
        },
    );
    let ana = person(&api, "E-5").await;
    api.post("/v1/members", json!({"person_id": ana}))
        .await
        .id();
    converged(&engine, &[(terminal, 1)]).await;
    let device = fleet.device(0).expect("device").device();
    let held = || {
        (
            users(&fleet, 0).len(),
            count(&fleet, 0, "cards"),
            count(&fleet, 0, "user_access_rules"),
            device.list_images().len(),
            device
                .config_value("monitor", "hostname")
                .unwrap_or_default(),
        )
    };
    let before = held();
    assert_eq!(
        (before.0, before.1, before.2, before.3),
        (1, 1, 1, 1),
        "user, card, rule link and photo"
    );
    assert_eq!(before.4, "127.0.0.1");
    // The terminal comes back empty (a factory reset); then only its cards are lost.
    device.reset_to_factory();
    assert_eq!(held().0, 0);
    api.set_now("2026-05-04T08:01:00Z");
    board_until(engine.board(), "the wiped terminal repaired", |_| {
        held() == before
    })
    .await;
    device
        .destroy_objects(
            acs_simulator::wire::Members::of(
                &json!({"object": "cards", "where": {"cards": {"user_id": ana}}}),
                "request",
            )
            .expect("members"),
        )
        .expect("cards deleted by hand");
    api.set_now("2026-05-04T08:02:00Z");
    board_until(engine.board(), "the partly wiped terminal repaired", |_| {
        held() == before
    })
    .await;
    engine.shutdown().await;
    fleet.shutdown().await;
}
