//! The core and its terminals end to end, through the public surfaces only: the
//! integrator API over HTTP, the receiver, the sync engine and simulated terminals. One
//! compact scenario per promise the core makes about terminals: a terminal wiped, partly
//! wiped, edited by hand or replaced by another device at its address converges again;
//! terminals at several UTC offsets (and a skewed clock) get validity times and give event
//! times right; one auth-type rule for the API, decisions and terminals; a device
//! registered once across tenants; a deleted terminal cleared, and registered again
//! without replaying its log; the sync loop recovering from a failing read.

use std::time::Duration;

use acs_core::store::SqliteStore;
use acs_core::sync::run::SyncFaults;
use acs_core::sync::{SyncEngine, SyncOptions, SyncStatus};
use acs_core::{Clock, Core};
use acs_simulator::{ManualTime, Presentation, RunningSimulator, Simulator, TimeMode, TimeSource};
use jiff::Timestamp;
use serde_json::{Value as Json, json};

/// 2026-05-04 08:00 UTC, a Monday.
const START: &str = "2026-05-04T08:00:00Z";
/// How long any wait may take.
const PATIENCE: Duration = Duration::from_secs(30);
/// Card 123,45678 as terminals store it.
const CARD: u64 = 528_281_023_086;

fn epoch(at: &str) -> i64 {
    at.parse::<Timestamp>().expect("instant").as_second()
}

/// The integrator API of one tenant.
struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Json>) -> (u16, Json) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = request.send().await.expect("reply");
        let status = reply.status().as_u16();
        (status, reply.json().await.unwrap_or(Json::Null))
    }

    async fn get(&self, path: &str) -> Json {
        let (status, body) = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn post(&self, path: &str, body: Json) -> (u16, Json) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// Creates a resource: its id.
    async fn create(&self, path: &str, body: Json) -> u64 {
        let (status, reply) = self.post(path, body).await;
        assert_eq!(status, 201, "POST {path}: {reply}");
        reply["id"].as_u64().expect("an id")
    }

    /// Access events recorded from terminals' logs.
    async fn terminal_events(&self) -> Vec<Json> {
        let page = self.get("/v1/access-events?limit=500").await;
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|e| e["source"] == "terminal")
            .cloned()
            .collect()
    }
}

/// The core (API, receiver, sync engine) on a manual clock, and the devices' shared time.
struct Rig {
    core: Core,
    api: Api,
    engine: SyncEngine,
    faults: SyncFaults,
    /// The simulated devices' UTC time, moved together with the core's clock.
    time: ManualTime,
    _stop: tokio_util::sync::DropGuard,
}

async fn rig() -> Rig {
    let core = Core::with_clock(
        std::sync::Arc::new(SqliteStore::in_memory().expect("store")),
        Clock::manual(START.parse().expect("instant")),
    );
    let (_, key) = core.create_tenant("acme", "Acme").await.expect("tenant");
    let stop = tokio_util::sync::CancellationToken::new();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", api.local_addr().expect("addr"));
    tokio::spawn(acs_core::serve(
        api,
        core.clone(),
        stop.clone().cancelled_owned(),
    ));
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = receiver.local_addr().expect("addr").port();
    tokio::spawn(acs_core::receiver::serve(
        receiver,
        core.clone(),
        stop.clone().cancelled_owned(),
    ));
    let faults = SyncFaults::default();
    let engine = SyncEngine::spawn(
        core.clone(),
        SyncOptions {
            retry_initial: Duration::from_millis(10),
            retry_max: Duration::from_millis(100),
            readback_every: Duration::from_secs(60),
            receiver: Some(("127.0.0.1".into(), port)),
            faults: faults.clone(),
            ..SyncOptions::default()
        },
    );
    Rig {
        core,
        api: Api {
            base,
            key: key.secret,
            http: reqwest::Client::new(),
        },
        engine,
        faults,
        time: ManualTime::starting_at(epoch(START)),
        _stop: stop.drop_guard(),
    }
}

impl Rig {
    /// A simulated terminal whose clock reads UTC + `utc_offset`, at `listener`'s address.
    async fn device_at(
        &self,
        listener: tokio::net::TcpListener,
        utc_offset: i64,
        seed: u64,
    ) -> RunningSimulator {
        Simulator::builder()
            .time(TimeSource::Manual(self.time.clone()))
            .utc_offset(utc_offset)
            .time_mode(TimeMode::Scaled(0.0))
            .seed(seed)
            .spawn(listener)
            .await
            .expect("simulator")
    }

    async fn device(&self, utc_offset: i64, seed: u64) -> RunningSimulator {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        self.device_at(listener, utc_offset, seed).await
    }

    /// A site in `zone` with a facility and a door taking cards and faces: the facility
    /// and the door.
    async fn place(&self, zone: &str) -> (u64, u64) {
        let site = self
            .api
            .create("/v1/sites", json!({"name": zone, "timezone": zone}))
            .await;
        let facility = self
            .api
            .create("/v1/facilities", json!({"site_id": site, "name": "F"}))
            .await;
        let door = self
            .api
            .create(
                "/v1/doors",
                json!({"facility_id": facility, "name": "D",
                       "supported_auth_types": {"in": ["card", "face"], "out": []}}),
            )
            .await;
        (facility, door)
    }

    async fn terminal(&self, (facility, door): (u64, u64), device: &RunningSimulator) -> u64 {
        self.api
            .create(
                "/v1/terminals",
                json!({"facility_id": facility, "model": "idface",
                       "address": device.base_url(), "login": "admin", "password": "admin",
                       "door_ids": [door]}),
            )
            .await
    }

    /// A member with card 123,`number` and the `extra` members of the person: their id.
    async fn member(&self, acs_id: &str, number: u32, extra: Json) -> u64 {
        let mut body = json!({"acs_id": acs_id, "name": acs_id});
        for (k, v) in extra.as_object().expect("members") {
            body[k] = v.clone();
        }
        let person = self.api.create("/v1/people", body).await;
        self.api
            .create(
                &format!("/v1/people/{person}/credentials"),
                json!({"kind": "card", "facility_code": 123, "card_number": number}),
            )
            .await;
        self.api
            .create("/v1/members", json!({"person_id": person}))
            .await;
        person
    }

    /// Waits (bounded) until terminal `id`'s status satisfies `done`.
    async fn until(&self, what: &str, id: u64, done: impl Fn(&SyncStatus) -> bool) {
        let waited = tokio::time::timeout(
            PATIENCE,
            self.engine
                .board()
                .wait_until(|board| board.iter().any(|((_, t), s)| t.get() == id && done(s))),
        )
        .await;
        if waited.is_err() {
            let status = self.api.get(&format!("/v1/terminals/{id}/sync")).await;
            panic!("terminal {id}: {what} did not happen; status {status}");
        }
    }

    /// Waits until terminal `id` has passed at the core's current instant and holds
    /// `people` people.
    async fn synced(&self, id: u64, people: usize) {
        let now = self.core.now().to_string();
        let revision = self.core.revision();
        self.until("convergence", id, |s| {
            s.in_sync
                && s.pending == 0
                && s.people == people
                && s.revision >= revision
                && s.computed_at.as_deref() == Some(now.as_str())
        })
        .await;
    }

    /// Moves the core's clock and the devices' time `minutes` on.
    fn later(&self, minutes: i64) {
        let at = self
            .core
            .now()
            .checked_add(jiff::SignedDuration::from_mins(minutes))
            .expect("instant");
        self.time.set(at.as_second());
        self.core.clock().set(at);
    }

    /// A card presented at `device`: the device's event code and the access event the core
    /// recorded from it.
    async fn present(&self, device: &RunningSimulator, card: u64) -> (i64, Json) {
        let mut events = self.core.subscribe();
        let logged = device
            .identify(&Presentation::Card(card))
            .await
            .expect("decided");
        let event = tokio::time::timeout(PATIENCE, async {
            loop {
                let e = events.recv().await.expect("an access event");
                if e.event.data["source"] == "terminal" {
                    break e.event.data;
                }
            }
        })
        .await
        .expect("the presentation is recorded");
        (logged.decision.event, event)
    }
}

/// What a device holds, table by table, normalised.
fn held(device: &RunningSimulator) -> (Vec<String>, Vec<u64>, usize) {
    let d = device.device();
    let users = d
        .rows("users")
        .expect("users")
        .iter()
        .map(|u| u["registration"].as_str().unwrap_or_default().to_owned())
        .collect();
    let cards = d
        .rows("cards")
        .expect("cards")
        .iter()
        .filter_map(|c| c["value"].as_u64())
        .collect();
    let links = d.rows("user_access_rules").expect("links").len();
    (users, cards, links)
}

fn members(request: &Json) -> acs_simulator::wire::Members<'_> {
    acs_simulator::wire::Members::of(request, "request").expect("members")
}

#[tokio::test]
async fn a_terminal_wiped_partly_wiped_edited_or_replaced_converges_again() {
    let rig = rig().await;
    let place = rig.place("Europe/Madrid").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr");
    let device = rig.device_at(listener, 7_200, 1).await;
    let terminal = rig.terminal(place, &device).await;
    rig.member("E-1", 45678, json!({})).await;
    rig.synced(terminal, 1).await;
    let whole = held(&device);
    assert_eq!(whole, (vec!["E-1".to_owned()], vec![CARD], 1));

    // Wiped: back to the factory state.
    device.device().reset_to_factory();
    assert_eq!(held(&device).0.len(), 0);
    rig.later(2);
    rig.synced(terminal, 1).await;
    assert_eq!(held(&device), whole, "repaired after a wipe");

    // Partly wiped: its cards gone.
    device
        .device()
        .destroy_objects(members(&json!({"object": "cards"})))
        .expect("cards deleted by hand");
    rig.later(2);
    rig.synced(terminal, 1).await;
    assert_eq!(held(&device), whole, "repaired after a partial wipe");

    // Edited by hand: another registration and another card value.
    let d = device.device();
    d.modify_objects(members(&json!({"object": "users",
        "values": {"registration": "E-999"}, "where": {"users": {}}})))
        .expect("user edited by hand");
    d.modify_objects(members(&json!({"object": "cards",
        "values": {"value": 777_u64}, "where": {"cards": {}}})))
        .expect("card edited by hand");
    rig.later(2);
    rig.synced(terminal, 1).await;
    assert_eq!(held(&device), whole, "repaired after an edit by hand");

    // Replaced: another device answers at the address. It is neither read nor written
    // until the operator accepts it by changing the terminal; then it converges.
    let before = rig.api.get(&format!("/v1/terminals/{terminal}")).await["device_id"].clone();
    device.shutdown().await;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .expect("the same address again");
    let other = rig.device_at(listener, 7_200, 2).await;
    rig.later(2);
    rig.until("the other device refused", terminal, |s| {
        s.last_error
            .as_deref()
            .is_some_and(|e| e.contains("not its device"))
    })
    .await;
    assert_eq!(held(&other).0.len(), 0, "the other device is left alone");
    let (status, changed) = rig
        .api
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/terminals/{terminal}"),
            Some(json!({"address": format!("http://{address}")})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_ne!(
        changed["device_id"], before,
        "the new device is probed: {changed}"
    );
    rig.later(2);
    rig.synced(terminal, 1).await;
    assert_eq!(held(&other), whole, "the replacing device converges");
    rig.engine.shutdown().await;
}

#[tokio::test]
async fn terminals_at_three_utc_offsets_and_a_skewed_clock_keep_times_right() {
    let rig = rig().await;
    let valid_to = "2026-05-10T14:00:00Z";
    rig.member("E-2", 45678, json!({"valid_to": valid_to}))
        .await;
    // (site zone, its offset in May, the device clock's skew from it)
    let sites = [
        ("UTC", 0, 0),
        ("Asia/Kolkata", 19_800, 0),
        ("America/Sao_Paulo", -10_800, 0),
        ("Asia/Kolkata", 19_800, 95),
    ];
    let mut terminals = Vec::new();
    for (i, (zone, offset, skew)) in sites.into_iter().enumerate() {
        let device = rig.device(offset, 10 + i as u64).await;
        device.device().skew_clock(skew);
        let place = rig.place(zone).await;
        let terminal = rig.terminal(place, &device).await;
        terminals.push((terminal, device, offset, skew));
    }
    for (terminal, device, offset, skew) in &terminals {
        rig.synced(*terminal, 1).await;
        let status = rig.api.get(&format!("/v1/terminals/{terminal}/sync")).await;
        assert_eq!(status["clock_skew_seconds"], *skew, "{status}");
        let users = device.device().rows("users").expect("users");
        assert_eq!(
            users[0]["end_time"],
            json!(epoch(valid_to) + offset + skew),
            "valid_to as the device's clock reads it: {users:?}"
        );
    }
    let at = "2026-05-04T08:30:00Z";
    rig.later(30);
    for (terminal, device, _, _) in &terminals {
        rig.synced(*terminal, 1).await;
        let (code, event) = rig.present(device, CARD).await;
        assert_eq!(code, 7, "granted");
        assert_eq!(
            event["occurred_at"], at,
            "recorded when it happened: {event}"
        );
    }
    rig.engine.shutdown().await;
}

#[tokio::test]
async fn one_auth_type_rule_for_the_api_decisions_and_terminals() {
    let rig = rig().await;
    let site = rig
        .api
        .create(
            "/v1/sites",
            json!({"name": "S", "timezone": "Europe/Madrid"}),
        )
        .await;
    let facility = rig
        .api
        .create("/v1/facilities", json!({"site_id": site, "name": "F"}))
        .await;
    // The door takes cards only.
    let door = rig
        .api
        .create(
            "/v1/doors",
            json!({"facility_id": facility, "name": "D",
                   "supported_auth_types": {"in": ["card"], "out": []}}),
        )
        .await;
    let device = rig.device(7_200, 20).await;
    let terminal = rig.terminal((facility, door), &device).await;
    let person = rig.member("E-3", 45678, json!({})).await;
    let pin = rig
        .api
        .create(
            &format!("/v1/people/{person}/credentials"),
            json!({"kind": "pin", "pin": "8642"}),
        )
        .await;
    assert!(pin > 0);
    // An access granting what the door does not take is refused, naming the field.
    let (status, problem) = rig
        .api
        .post(
            "/v1/accesses",
            json!({"name": "Faces", "kind": "permanent", "person_ids": [person],
                   "doors": [{"door_id": door, "in_auth_types": ["face"]}]}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["field"], "doors[0].in_auth_types", "{problem}");
    // The decision and the terminal agree: the card opens, the PIN does not (the terminal
    // does not even hold it).
    let decide = |factor: Json| {
        rig.api.post(
            "/v1/decisions",
            json!({"door_id": door, "factors": [factor]}),
        )
    };
    let (_, by_card) = decide(json!({"card": {"facility_code": 123, "card_number": 45678}})).await;
    assert_eq!(by_card["result"], "granted", "{by_card}");
    let (_, by_pin) = decide(json!({"pin": "8642"})).await;
    assert_eq!(by_pin["result"], "denied", "{by_pin}");
    rig.synced(terminal, 1).await;
    assert_eq!(device.device().rows("pins").expect("pins").len(), 0);
    let (code, event) = rig.present(&device, CARD).await;
    assert_eq!((code, &event["result"]), (7, &json!("granted")), "{event}");
    rig.engine.shutdown().await;
}

#[tokio::test]
async fn a_device_is_registered_once_across_tenants() {
    let rig = rig().await;
    let device = rig.device(0, 30).await;
    let place = rig.place("UTC").await;
    rig.terminal(place, &device).await;
    let (_, key) = rig
        .core
        .create_tenant("other", "Other")
        .await
        .expect("tenant");
    let other = Api {
        base: rig.api.base.clone(),
        key: key.secret,
        http: reqwest::Client::new(),
    };
    let site = other
        .create("/v1/sites", json!({"name": "S", "timezone": "UTC"}))
        .await;
    let facility = other
        .create("/v1/facilities", json!({"site_id": site, "name": "F"}))
        .await;
    let (status, problem) = other
        .post(
            "/v1/terminals",
            json!({"facility_id": facility, "model": "idface", "address": device.base_url(),
                   "login": "admin", "password": "admin"}),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["field"], "address", "{problem}");
    rig.engine.shutdown().await;
}

#[tokio::test]
async fn a_deleted_terminal_is_cleared_and_registered_again_without_replaying_its_log() {
    let rig = rig().await;
    let place = rig.place("Europe/Madrid").await;
    let device = rig.device(7_200, 40).await;
    let terminal = rig.terminal(place, &device).await;
    rig.member("E-4", 45678, json!({})).await;
    rig.synced(terminal, 1).await;
    let (code, _) = rig.present(&device, CARD).await;
    assert_eq!(code, 7);
    assert_eq!(rig.api.terminal_events().await.len(), 1);

    let (status, body) = rig
        .api
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/terminals/{terminal}"),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let mut changes = device.device().subscribe_changes();
    tokio::time::timeout(PATIENCE, async {
        while !(held(&device).0.is_empty() && held(&device).1.is_empty()) {
            changes.changed().await.expect("the device lives");
        }
    })
    .await
    .expect("the deleted terminal's users and cards are cleared");

    // Registered again: its whole log is read, nothing recorded twice.
    let again = rig.terminal(place, &device).await;
    rig.synced(again, 1).await;
    rig.until("its log read", again, |s| s.access_logs_read >= 1)
        .await;
    assert_eq!(
        rig.api.terminal_events().await.len(),
        1,
        "the log is not replayed"
    );
    rig.engine.shutdown().await;
}

#[tokio::test]
async fn the_sync_loop_recovers_from_a_failing_read() {
    let rig = rig().await;
    let place = rig.place("Europe/Madrid").await;
    let device = rig.device(7_200, 50).await;
    let terminal = rig.terminal(place, &device).await;
    rig.synced(terminal, 0).await;
    rig.faults.fail_next_reads(3);
    rig.member("E-5", 45678, json!({})).await;
    rig.until("a failed read reported", terminal, |s| {
        s.last_error
            .as_deref()
            .is_some_and(|e| e.contains("could not be read"))
    })
    .await;
    rig.synced(terminal, 1).await;
    assert_eq!(held(&device).0, vec!["E-5".to_owned()]);
    rig.engine.shutdown().await;
}
