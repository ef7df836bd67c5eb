//! Terminal clocks (docs/domain.md §5.3): a Madrid site with terminals whose clocks read
//! UTC, the site's own wall time (UTC+2 in May), UTC-3, and the site's wall time skewed by
//! a fault. The engine measures each clock's skew and reports it; a person's validity is
//! written as the device-local reading of its instants, the device decides by it, and an
//! access logged at a terminal is recorded at the instant it happened. With
//! `set_clock_beyond`, the engine sets a skewed clock to the site's wall time instead.

use std::time::Duration;

use acs_core::sync::{SyncEngine, SyncOptions};
use acs_simulator::{ManualTime, Presentation, RunningSimulator, Simulator, TimeMode, TimeSource};
use jiff::Timestamp;
use serde_json::{Value as Json, json};

use crate::api_support::{Api, START};
use crate::bounded::{board_until, bounded};

/// 123,45678 as the terminal stores it.
const CARD: u64 = 528_281_023_086;
/// The person's validity ends here (16:00 on the Madrid wall clock).
const VALID_TO: &str = "2026-05-10T14:00:00Z";
/// Madrid's offset from UTC on these dates (CEST).
const MADRID: i64 = 7_200;

struct Rig {
    api: Api,
    device: RunningSimulator,
    /// The device's time source (UTC), moved together with the core's clock.
    time: ManualTime,
    engine: SyncEngine,
    terminal: u64,
}

fn epoch(at: &str) -> i64 {
    at.parse::<Timestamp>().expect("instant").as_second()
}

/// A Madrid site whose one terminal's clock reads UTC + `utc_offset` + `skew` (a clock
/// skew fault), its receiver, the engine, and a member with card 123,45678 valid until
/// [`VALID_TO`], converged.
async fn rig(utc_offset: i64, skew: i64, set_clock_beyond: Option<Duration>) -> Rig {
    let api = Api::start().await;
    let time = ManualTime::starting_at(epoch(START));
    let device = Simulator::builder()
        .time(TimeSource::Manual(time.clone()))
        .utc_offset(utc_offset)
        .time_mode(TimeMode::Scaled(0.0))
        .seed(70)
        .spawn(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind"),
        )
        .await
        .expect("simulator");
    device.device().skew_clock(skew);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(acs_core::receiver::serve(
        listener,
        api.core.clone(),
        std::future::pending(),
    ));
    let site = api
        .post(
            "/v1/sites",
            json!({"name": "Madrid", "timezone": "Europe/Madrid"}),
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
            "supported_auth_types": {"in": ["card"], "out": []}}),
        )
        .await
        .id();
    let terminal = api
        .post(
            "/v1/terminals",
            json!({"facility_id": facility, "model": "idface", "address": device.base_url(),
            "login": "admin", "password": "admin", "door_ids": [door]}),
        )
        .await
        .id();
    let person = api
        .post(
            "/v1/people",
            json!({"acs_id": "E-1", "name": "Ana", "valid_to": VALID_TO}),
        )
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
    let engine = SyncEngine::spawn(
        api.core.clone(),
        SyncOptions {
            retry_initial: Duration::from_millis(20),
            retry_max: Duration::from_millis(200),
            receiver: Some(("127.0.0.1".into(), port)),
            set_clock_beyond,
            ..SyncOptions::default()
        },
    );
    let rig = Rig {
        api,
        device,
        time,
        engine,
        terminal,
    };
    board_until(
        rig.engine.board(),
        format_args!("terminal {terminal} in sync with its member"),
        |board| {
            board.iter().any(|((_, t), s)| {
                t.get() == terminal && s.in_sync && s.pending == 0 && s.people == 1
            })
        },
    )
    .await;
    rig
}

impl Rig {
    /// Moves the core's clock and the device's time source to `at` together.
    fn set_now(&self, at: &str) {
        self.api.set_now(at);
        self.time.set(epoch(at));
    }

    fn user(&self) -> serde_json::Map<String, Json> {
        let users = self.device.device().rows("users").expect("users");
        assert_eq!(users.len(), 1, "{users:?}");
        users[0].clone()
    }

    /// A card presented now: the device's event code and the access event recorded.
    async fn present(&self) -> (i64, Json) {
        let mut events = self.api.core.subscribe();
        let logged = self
            .device
            .identify(&Presentation::Card(CARD))
            .await
            .expect("decided");
        let event = bounded("the access event of the presentation", async {
            loop {
                let e = events.recv().await.expect("an access event");
                if e.event.data["source"] == "terminal" {
                    break e.event.data;
                }
            }
        })
        .await;
        (logged.decision.event, event)
    }

    async fn sync_status(&self) -> Json {
        self.api
            .get(&format!("/v1/terminals/{}/sync", self.terminal))
            .await
            .json
    }
}

/// Every clock: the skew is measured and shown, the validity's end is written as the
/// device's reading of that instant, and presentations are recorded when they happened.
async fn check_clock(utc_offset: i64, skew: i64) {
    let rig = rig(utc_offset, skew, None).await;
    let expected_skew = utc_offset + skew - MADRID;
    let status = rig.sync_status().await;
    assert_eq!(status["clock_skew_seconds"], expected_skew, "{status}");
    let user = rig.user();
    assert_eq!(
        user["end_time"],
        json!(epoch(VALID_TO) + utc_offset + skew),
        "end_time is the device's reading at valid_to: {user:?}"
    );
    assert_eq!(user["begin_time"], json!(0));

    let at = "2026-05-10T13:59:00Z";
    rig.set_now(at);
    // The pass the move causes measures the clock again: it ends before the device's clock
    // moves alone below.
    let terminal = rig.terminal;
    board_until(rig.engine.board(), "the pass at 13:59", |board| {
        board.iter().any(|((_, t), s)| {
            t.get() == terminal && s.computed_at.as_deref() == Some("2026-05-10T13:59:00Z")
        })
    })
    .await;
    let (code, event) = rig.present().await;
    assert_eq!(code, 7, "granted a minute before valid_to");
    assert_eq!(event["result"], "granted", "{event}");
    assert_eq!(event["occurred_at"], at, "{event}");

    // Past valid_to on the device's clock (the core's clock stays, so the person stays on
    // the device): the device itself denies.
    rig.time.set(epoch("2026-05-10T14:01:00Z"));
    let (code, event) = rig.present().await;
    assert_ne!(code, 7, "denied a minute after valid_to");
    assert_eq!(event["result"], "denied", "{event}");
    assert_eq!(event["occurred_at"], "2026-05-10T14:01:00Z", "{event}");
    rig.engine.shutdown().await;
}

#[tokio::test]
async fn a_terminal_on_utc_at_a_madrid_site() {
    check_clock(0, 0).await;
}

#[tokio::test]
async fn a_terminal_on_the_sites_wall_time() {
    check_clock(MADRID, 0).await;
}

#[tokio::test]
async fn a_terminal_on_utc_minus_3_at_a_madrid_site() {
    check_clock(-10_800, 0).await;
}

#[tokio::test]
async fn a_terminal_whose_clock_is_skewed() {
    check_clock(MADRID, 95).await;
}

#[tokio::test]
async fn a_clock_skewed_after_the_first_contact_is_measured_again_and_times_rewritten() {
    let rig = rig(MADRID, 0, None).await;
    assert_eq!(rig.sync_status().await["clock_skew_seconds"], 0);
    rig.device.device().skew_clock(-3_600);
    // The next read-back (every 5 minutes) measures again.
    rig.set_now("2026-05-04T08:06:00Z");
    board_until(
        rig.engine.board(),
        "the new skew measured and the times rewritten",
        |board| {
            board.values().any(|s| {
                s.clock_skew_seconds == Some(-3_600)
                    && s.in_sync
                    && s.computed_at.as_deref() == Some("2026-05-04T08:06:00Z")
            })
        },
    )
    .await;
    assert_eq!(
        rig.user()["end_time"],
        json!(epoch(VALID_TO) + MADRID - 3_600)
    );
    rig.set_now("2026-05-04T09:00:00Z");
    let (code, event) = rig.present().await;
    assert_eq!(code, 7);
    assert_eq!(event["occurred_at"], "2026-05-04T09:00:00Z", "{event}");
    rig.engine.shutdown().await;
}

#[tokio::test]
async fn with_set_clock_beyond_a_skewed_clock_is_set_to_the_sites_wall_time() {
    let rig = rig(0, 0, Some(Duration::from_secs(60))).await;
    assert_eq!(rig.sync_status().await["clock_skew_seconds"], 0);
    assert_eq!(
        rig.device.device().system_snapshot().local_time,
        epoch(START) + MADRID,
        "the device's clock reads Madrid wall time"
    );
    assert_eq!(rig.user()["end_time"], json!(epoch(VALID_TO) + MADRID));
    rig.set_now("2026-05-04T09:00:00Z");
    let (code, event) = rig.present().await;
    assert_eq!(code, 7);
    assert_eq!(event["occurred_at"], "2026-05-04T09:00:00Z", "{event}");
    rig.engine.shutdown().await;
}
