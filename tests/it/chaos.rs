//! A seeded chaos run: the core (integrator API, receiver, sync engine) over a simulated
//! fleet while entitlements change and the terminals misbehave – added latency beyond the
//! driver's timeout, 5xx answers, dropped and duplicated callbacks, power cycles, reboots,
//! expired sessions, clock skew, a terminal wiped back to its factory state (its tables
//! emptied, its access log counting from 1 again) – and the scripted person presents
//! cards, producing access events. At the end, with every fault off and every terminal
//! powered, the engine must converge: each terminal's tables are exactly the core's image
//! for it (users' times written with the device clock's measured skew), every access log a
//! terminal wrote is recorded once by the core (a log id a wiped terminal used again counts
//! once per row that carried it), and every recorded time is translated back to the site's
//! wall time by the measured skew.
//!
//! `cargo test` runs a short fixed run; a longer one (RELIABILITY.md, "Faults"):
//! `ACS_CHAOS_SEED=1 ACS_CHAOS_STEPS=1000 cargo test -p acs-e2e --test it chaos -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use acs_core::card::WiegandCard;
use acs_core::domain::desired::Coverage;
use acs_core::domain::{TenantId, TerminalId};
use acs_core::store::SqliteStore;
use acs_core::sync::apply::on_device;
use acs_core::sync::image::{DeviceImage, SubjectImage, device_image};
use acs_core::sync::{SyncEngine, SyncOptions, SyncStatus};
use acs_core::terminal::ClientOptions;
use acs_core::{Clock, Core};
use acs_simulator::{Fleet, Presentation, RunningFleet, Selection, Simulator, TimeMode};
use jiff::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value as Json, json};

/// 2026-05-04 08:00 UTC, a Monday (10:00 in Madrid).
const START: &str = "2026-05-04T08:00:00Z";
const TERMINALS: usize = 8;
/// Steps of the run inside `cargo test`.
const DEFAULT_STEPS: usize = 150;
const DEFAULT_SEED: u64 = 2026;
/// How long convergence may take once the faults are off (real time).
const CONVERGE_WITHIN: Duration = Duration::from_secs(60);
const FACE: &[u8] = include_bytes!("../../fixtures/images/face-a.jpg");

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An integrator's client of the served API.
struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Json>) -> (u16, Json) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let reply = req.send().await.expect("the API answers");
        let status = reply.status().as_u16();
        let bytes = reply.bytes().await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Json::Null))
    }

    async fn post(&self, path: &str, body: Json) -> (u16, Json) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// Creates and returns the new id (the setup must succeed).
    async fn create(&self, path: &str, body: Json) -> u64 {
        let (status, reply) = self.post(path, body).await;
        assert!((200..300).contains(&status), "{path}: {status} {reply}");
        reply["id"].as_u64().expect("an id")
    }

    /// The new id when the API accepted the request (a random step may be refused).
    async fn try_create(&self, path: &str, body: Json) -> Option<u64> {
        let (status, reply) = self.post(path, body).await;
        (status == 201 || status == 200)
            .then(|| reply["id"].as_u64())
            .flatten()
    }

    async fn delete(&self, path: &str) -> bool {
        self.send(reqwest::Method::DELETE, path, None).await.0 == 204
    }
}

/// What the integrator has created, to pick random subjects from.
#[derive(Default)]
struct World {
    people: Vec<u64>,
    cards: Vec<(u64, u64)>,
    members: Vec<u64>,
    attendees: Vec<(u64, u64)>,
    accesses: Vec<u64>,
    events: Vec<u64>,
    doors: Vec<u64>,
    schedule: u64,
    next_card: u32,
}

/// The running system under test.
struct Rig {
    core: Core,
    tenant: TenantId,
    api: Api,
    fleet: RunningFleet,
    engine: SyncEngine,
    /// Core terminal id of each fleet index.
    terminals: Vec<u64>,
    /// Factory rows of each device, table by table, before the core touched them.
    factory: Vec<Tables>,
    _stop: tokio_util::sync::DropGuard,
}

impl Rig {
    /// Sets faults on every terminal (the `/_sim/faults` vocabulary).
    async fn faults(&self, request: Json) {
        self.fleet
            .control(&Selection::All, "faults", &request)
            .await
            .expect("faults set");
    }

    /// Moves the core's clock `minutes` ahead; the new time.
    fn advance_clock(&self, minutes: i64) -> Timestamp {
        let later = self
            .core
            .now()
            .checked_add(jiff::SignedDuration::from_mins(minutes))
            .expect("instant");
        self.core.clock().set(later);
        later
    }

    /// Stops the sync engine, then the fleet.
    async fn shutdown(self) {
        self.engine.shutdown().await;
        self.fleet.shutdown().await;
    }
}

/// Normalised rows per table (sorted; duplicates kept so they show).
type Tables = BTreeMap<&'static str, Vec<String>>;

const TABLES: &[&str] = &[
    "users",
    "cards",
    "pins",
    "qrcodes",
    "templates",
    "user_access_rules",
    "access_rules",
    "access_rule_time_zones",
    "time_zones",
    "time_spans",
    "holidays",
];

fn text(v: Option<&Json>) -> String {
    match v {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn normalise(table: &str, row: &Map<String, Json>) -> String {
    let cols: &[&str] = match table {
        "users" => &["id", "registration", "name", "begin_time", "end_time"],
        "cards" | "pins" | "qrcodes" => &["user_id", "value"],
        "templates" => &["user_id", "template"],
        "user_access_rules" => &["user_id", "access_rule_id"],
        "access_rules" => &["id", "name", "type", "priority"],
        "access_rule_time_zones" => &["access_rule_id", "time_zone_id"],
        "time_zones" => &["id", "name"],
        "time_spans" => &[
            "time_zone_id",
            "start",
            "end",
            "sun",
            "mon",
            "tue",
            "wed",
            "thu",
            "fri",
            "sat",
            "hol1",
            "hol2",
            "hol3",
        ],
        "holidays" => &["name", "start", "end", "hol1", "hol2", "hol3", "repeats"],
        _ => &[],
    };
    cols.iter()
        .map(|c| text(row.get(*c)))
        .collect::<Vec<_>>()
        .join("|")
}

fn device_tables(fleet: &RunningFleet, index: usize) -> (Tables, BTreeSet<i64>) {
    let device = fleet.device(index).expect("device").device();
    let mut tables = Tables::new();
    for table in TABLES {
        let mut rows: Vec<String> = device
            .rows(table)
            .expect("table")
            .iter()
            .map(|r| normalise(table, r))
            .collect();
        rows.sort();
        tables.insert(table, rows);
    }
    let faces = device.list_images().into_iter().map(|(u, _)| u).collect();
    (tables, faces)
}

/// The rows the image puts on the device (plus the factory rows) whose clock is `skew`
/// seconds ahead of the site's wall time, and who has a face.
fn expected_tables(image: &DeviceImage, factory: &Tables, skew: i64) -> (Tables, BTreeSet<i64>) {
    let mut tables = factory.clone();
    let mut faces = BTreeSet::new();
    let mut add = |table: &'static str, row: Json| {
        let Json::Object(map) = row else { return };
        tables
            .entry(table)
            .or_default()
            .push(normalise(table, &map));
    };
    for subject in image.values() {
        match subject {
            SubjectImage::User(u) => {
                add(
                    "users",
                    json!({"id": u.id, "registration": u.registration, "name": u.name,
                           "begin_time": on_device(u.begin_time, skew),
                           "end_time": on_device(u.end_time, skew)}),
                );
                for v in &u.cards {
                    add("cards", json!({"user_id": u.id, "value": v}));
                }
                for v in &u.pins {
                    add("pins", json!({"user_id": u.id, "value": v}));
                }
                for v in &u.qrcodes {
                    add("qrcodes", json!({"user_id": u.id, "value": v}));
                }
                for v in &u.templates {
                    add("templates", json!({"user_id": u.id, "template": v}));
                }
                for r in &u.rules {
                    add(
                        "user_access_rules",
                        json!({"user_id": u.id, "access_rule_id": r}),
                    );
                }
                if u.face.is_some() {
                    faces.insert(u.id);
                }
            }
            SubjectImage::Rule(r) => {
                add("time_zones", json!({"id": r.id, "name": r.name}));
                add(
                    "access_rules",
                    json!({"id": r.id, "name": r.name, "type": 1, "priority": 0}),
                );
                add(
                    "access_rule_time_zones",
                    json!({"access_rule_id": r.id, "time_zone_id": r.id}),
                );
                for s in &r.spans {
                    let f = |on: bool| i64::from(on);
                    add(
                        "time_spans",
                        json!({"time_zone_id": r.id, "start": s.start, "end": s.end,
                        "sun": f(s.days[0]), "mon": f(s.days[1]), "tue": f(s.days[2]),
                        "wed": f(s.days[3]), "thu": f(s.days[4]), "fri": f(s.days[5]),
                        "sat": f(s.days[6]), "hol1": f(s.holidays[0]),
                        "hol2": f(s.holidays[1]), "hol3": f(s.holidays[2])}),
                    );
                }
            }
            SubjectImage::Holidays { rows } => {
                for h in rows {
                    let f = |on: bool| i64::from(on);
                    add(
                        "holidays",
                        json!({"name": h.name, "start": h.start, "end": h.end,
                        "hol1": f(h.classes[0]), "hol2": f(h.classes[1]),
                        "hol3": f(h.classes[2]), "repeats": f(h.repeats)}),
                    );
                }
            }
            SubjectImage::Setup(_) | SubjectImage::Doubt { .. } => {}
        }
    }
    for rows in tables.values_mut() {
        rows.sort();
    }
    (tables, faces)
}

async fn start(seed: u64, n: usize) -> (Rig, World) {
    let start: Timestamp = START.parse().expect("instant");
    let store = Arc::new(SqliteStore::in_memory().expect("store"));
    let core = Core::with_clock(store, Clock::manual(start));
    let (tenant, key) = core.create_tenant("acme", "Acme").await.expect("tenant");
    let stop = tokio_util::sync::CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(acs_core::serve(
        listener,
        core.clone(),
        stop.clone().cancelled_owned(),
    ));
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let receiver_port = receiver.local_addr().expect("addr").port();
    tokio::spawn(acs_core::receiver::serve(
        receiver,
        core.clone(),
        stop.clone().cancelled_owned(),
    ));
    // Scheduler time runs 100× faster than real time: a 30 s latency is 300 ms.
    let fleet = Fleet::builder(n)
        .template(Simulator::builder().time_mode(TimeMode::Scaled(0.01)))
        .seed(seed)
        .spawn()
        .await
        .expect("fleet");
    let api = Api {
        base,
        key: key.secret,
        http: reqwest::Client::new(),
    };
    let site = api
        .create(
            "/v1/sites",
            json!({"name": "Madrid", "timezone": "Europe/Madrid"}),
        )
        .await;
    let mut world = World {
        next_card: 1,
        ..World::default()
    };
    world.schedule = api
        .create(
            "/v1/schedules",
            json!({"name": "Office", "weekly_spans": [
                {"weekdays": ["mon","tue","wed","thu","fri"], "start": "09:00", "end": "11:30"}]}),
        )
        .await;
    let mut facilities = Vec::new();
    for i in 0..2 {
        let facility = api
            .create(
                "/v1/facilities",
                json!({"site_id": site, "name": format!("F{i}")}),
            )
            .await;
        let door = api
            .create(
                "/v1/doors",
                json!({"facility_id": facility, "name": format!("D{i}"),
                       "supported_auth_types": {"in": ["card", "face"], "out": ["card"]}}),
            )
            .await;
        facilities.push((facility, door));
        world.doors.push(door);
    }
    for (i, (facility, hours)) in [(facilities[0].0, (0, 3)), (facilities[1].0, (1, 5))]
        .into_iter()
        .enumerate()
    {
        let at = |h: i64| {
            start
                .checked_add(jiff::SignedDuration::from_hours(h))
                .expect("instant")
                .to_string()
        };
        world.events.push(
            api.create(
                "/v1/events",
                json!({"facility_id": facility, "name": format!("E{i}"),
                       "starts_at": at(hours.0), "ends_at": at(hours.1)}),
            )
            .await,
        );
    }
    let mut terminals = Vec::new();
    let mut factory = Vec::new();
    for i in 0..n {
        let (facility, door) = facilities[i % 2];
        let url = fleet.device(i).expect("device").base_url();
        terminals.push(
            api.create(
                "/v1/terminals",
                json!({"facility_id": facility, "model": "idface", "address": url,
                       "login": "admin", "password": "admin", "door_ids": [door]}),
            )
            .await,
        );
        factory.push(device_tables(&fleet, i).0);
    }
    let engine = SyncEngine::spawn(
        core.clone(),
        SyncOptions {
            retry_initial: Duration::from_millis(10),
            retry_max: Duration::from_millis(100),
            client: ClientOptions {
                timeout: Duration::from_millis(200),
                ..ClientOptions::default()
            },
            receiver: Some(("127.0.0.1".into(), receiver_port)),
            ..SyncOptions::default()
        },
    );
    let rig = Rig {
        core,
        tenant: TenantId::new(tenant.id),
        api,
        fleet,
        engine,
        terminals,
        factory,
        _stop: stop.drop_guard(),
    };
    (rig, world)
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> Option<T> {
    (!items.is_empty()).then(|| items[rng.random_range(0..items.len())])
}

/// What the run produced, for the final checks.
#[derive(Default)]
struct Outcome {
    /// Access-log ids the terminals wrote, per fleet index, one set per life of the
    /// device's log (a wipe starts a new one, from id 1 again).
    logs: Vec<Vec<BTreeSet<i64>>>,
    /// How far the campaign moved the devices' clocks, in seconds (each move counted
    /// whole): how far a recorded time may be from the core's clock while the engine has
    /// not measured a move yet.
    clock_moved: i64,
    /// Which terminals are powered off.
    off: BTreeSet<usize>,
    /// Counts per kind of step, for the report.
    steps: BTreeMap<&'static str, usize>,
}

/// Gives `person` card `n` (facility code 77), remembered when the API accepts it.
async fn add_card(api: &Api, world: &mut World, person: u64, n: u32) {
    if let Some(card) = api
        .try_create(
            &format!("/v1/people/{person}/credentials"),
            json!({"kind": "card", "facility_code": 77, "card_number": n}),
        )
        .await
    {
        world.cards.push((card, u64::from(n)));
    }
}

/// One random step: an entitlement change, a fault, a presentation or the clock moving.
async fn step(rig: &Rig, world: &mut World, out: &mut Outcome, rng: &mut ChaCha8Rng) {
    let api = &rig.api;
    let kind = rng.random_range(0..100);
    let name: &'static str = match kind {
        0..=7 => {
            let n = world.next_card;
            world.next_card += 1;
            let mut body = json!({"acs_id": format!("P-{n}"), "name": format!("Person {n}")});
            // One person has a face: photos go through `user_set_image` (the device
            // refuses the same face for two people).
            if n == 1 {
                use base64::Engine as _;
                body["selfie"] = json!(base64::engine::general_purpose::STANDARD.encode(FACE));
            }
            if let Some(person) = api.try_create("/v1/people", body).await {
                world.people.push(person);
                add_card(api, world, person, n).await;
            }
            "person"
        }
        8..=11 => {
            if let Some(person) = pick(rng, &world.people) {
                let n = world.next_card;
                world.next_card += 1;
                add_card(api, world, person, n).await;
            }
            "card"
        }
        12..=13 => {
            if let Some((card, _)) = pick(rng, &world.cards) {
                api.post(&format!("/v1/credentials/{card}/revoke"), json!({}))
                    .await;
            }
            "revoke"
        }
        14..=21 => {
            if let Some(person) = pick(rng, &world.people)
                && let Some(m) = api
                    .try_create("/v1/members", json!({"person_id": person}))
                    .await
            {
                world.members.push(m);
            }
            "member"
        }
        22..=25 => {
            if let Some(m) = pick(rng, &world.members) {
                api.delete(&format!("/v1/members/{m}")).await;
                world.members.retain(|x| *x != m);
            }
            "unmember"
        }
        26..=31 => {
            if let (Some(person), Some(event)) =
                (pick(rng, &world.people), pick(rng, &world.events))
                && api
                    .try_create(
                        &format!("/v1/events/{event}/attendees"),
                        json!({"person_id": person}),
                    )
                    .await
                    .is_some()
            {
                world.attendees.push((event, person));
            }
            "attendee"
        }
        32..=33 => {
            if let Some((event, person)) = pick(rng, &world.attendees) {
                api.delete(&format!("/v1/events/{event}/attendees/{person}"))
                    .await;
                world.attendees.retain(|x| *x != (event, person));
            }
            "unattend"
        }
        34..=39 => {
            if let (Some(person), Some(door)) = (pick(rng, &world.people), pick(rng, &world.doors))
            {
                let mut body = json!({"name": "A", "kind": "permanent",
                    "doors": [{"door_id": door, "in_auth_types": ["card"]}],
                    "person_ids": [person]});
                if rng.random_bool(0.5) {
                    body["schedule_id"] = json!(world.schedule);
                }
                if let Some(a) = api.try_create("/v1/accesses", body).await {
                    world.accesses.push(a);
                }
            }
            "access"
        }
        40..=42 => {
            if let Some(a) = pick(rng, &world.accesses) {
                api.delete(&format!("/v1/accesses/{a}")).await;
                world.accesses.retain(|x| *x != a);
            }
            "unaccess"
        }
        43..=45 => {
            if let Some(person) = pick(rng, &world.people) {
                let verb = if rng.random_bool(0.5) {
                    "suspend"
                } else {
                    "unsuspend"
                };
                api.post(&format!("/v1/people/{person}/{verb}"), json!({}))
                    .await;
            }
            "suspend"
        }
        46..=63 => {
            // The scripted person presents a card (known or not) at a powered terminal.
            let on: Vec<usize> = (0..TERMINALS).filter(|i| !out.off.contains(i)).collect();
            if let Some(index) = pick(rng, &on) {
                let number = match pick(rng, &world.cards) {
                    Some((_, n)) if rng.random_bool(0.8) => n,
                    _ => 900_000 + rng.random_range(0..1000),
                };
                let value =
                    WiegandCard::new(77, u32::try_from(number).expect("small")).to_device_value();
                let logged = rig
                    .fleet
                    .device(index)
                    .expect("device")
                    .identify(&Presentation::Card(value))
                    .await
                    .expect("decided");
                let life = out.logs[index].last_mut().expect("a log");
                assert!(
                    life.insert(logged.log_id),
                    "log ids are unique in a log's life"
                );
            }
            "present"
        }
        64..=67 => {
            let by = rng.random_range(1..=40);
            rig.advance_clock(by);
            "clock"
        }
        _ => fault(rig, out, rng).await,
    };
    *out.steps.entry(name).or_default() += 1;
}

/// Toggles one fault on one random terminal.
async fn fault(rig: &Rig, out: &mut Outcome, rng: &mut ChaCha8Rng) -> &'static str {
    let index = rng.random_range(0..TERMINALS);
    let one = Selection::Indices(vec![index]);
    let control = |request: Json| async move {
        rig.fleet
            .control(&Selection::Indices(vec![index]), "faults", &request)
            .await
            .expect("control")
    };
    match rng.random_range(0..10) {
        0 => {
            // Nominal seconds: 0.5 s → 5 ms real; 40 s → 400 ms, beyond the 200 ms timeout.
            let latency = [0.0, 0.5, 5.0, 15.0, 40.0][rng.random_range(0..5)];
            control(json!({"latency_seconds": latency})).await;
            "latency"
        }
        1 => {
            let command = [
                "create_objects",
                "destroy_objects",
                "create_or_modify_objects",
                "load_objects",
                "login",
                "user_set_image",
                "set_configuration",
                "system_information",
            ][rng.random_range(0..8)];
            let status = [500, 502, 503][rng.random_range(0..3)];
            control(json!({"override": {"command": command, "status": status,
                "count": rng.random_range(1..4), "body": {"error": "busy", "code": 1}}}))
            .await;
            "5xx"
        }
        2 => {
            control(json!({"callbacks": {"drop_next": rng.random_range(1..4)}})).await;
            "drop callbacks"
        }
        3 => {
            control(json!({"callbacks": {"duplicate_next": rng.random_range(1..4)}})).await;
            "duplicate callbacks"
        }
        4 => {
            control(json!({"expire_sessions": true})).await;
            "expire sessions"
        }
        5 => {
            let skew = rng.random_range(-600..600);
            control(json!({"clock_skew_seconds": skew})).await;
            out.clock_moved += i64::abs(skew);
            "clock skew"
        }
        9 => {
            // Back to the factory state: tables, photos and configuration (the receiver's
            // address too) gone, the access log counting from 1 again. What the log held
            // and the core had not read yet would be lost with it, as on hardware; so that
            // every row stays accountable, the terminal is first brought up without faults
            // and, a couple of minutes on (a log catch-up due), the core has read its log.
            if out.off.remove(&index) {
                rig.fleet.power_on(&one).await.expect("on");
            }
            control(json!({"clear": true})).await;
            rig.advance_clock(2);
            log_recorded(rig, out, index).await;
            // A reset and the reboot after it take minutes on hardware, so the device's
            // clock moves on past everything it logged (by a day here, more than the
            // campaign's skews ever move it back): a row of the new log is never taken for
            // the old row with its id.
            let device = rig.fleet.device(index).expect("device").device();
            let logged = device
                .rows("access_logs")
                .expect("access logs")
                .iter()
                .filter_map(|r| r.get("time").and_then(Json::as_i64))
                .max();
            device.reset_to_factory();
            let now = device.system_snapshot().local_time;
            let ahead = logged.map_or(0, |t| (t - now).max(0)) + 86_400;
            device.skew_clock(ahead);
            out.clock_moved += ahead;
            out.logs[index].push(BTreeSet::new());
            "terminal wiped"
        }
        6 if out.off.contains(&index) => {
            rig.fleet.power_on(&one).await.expect("on");
            out.off.remove(&index);
            "power on"
        }
        6 => {
            rig.fleet.power_off(&one).await.expect("off");
            out.off.insert(index);
            "power off"
        }
        7 if !out.off.contains(&index) => {
            control(json!({"reboot": true})).await;
            "reboot"
        }
        _ => {
            control(json!({"clear": true})).await;
            "clear faults"
        }
    }
}

/// Adds the access events of `events` that came from a terminal's log to `into`: event id
/// → (terminal, device log id).
fn count_terminal_logs(
    events: impl IntoIterator<Item = (u64, Json)>,
    into: &mut BTreeMap<u64, (u64, i64)>,
) {
    for (id, data) in events {
        if data["source"] == "terminal" {
            into.insert(
                id,
                (
                    data["terminal_id"].as_u64().expect("terminal"),
                    data["device_log_id"].as_i64().expect("log id"),
                ),
            );
        }
    }
}

/// Every access event recorded from a terminal's log: event id → (terminal, log id).
async fn recorded_logs(rig: &Rig) -> BTreeMap<u64, (u64, i64)> {
    let mut out = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = rig
            .core
            .access_events(rig.tenant, after, 500)
            .await
            .expect("events");
        let Some(last) = page.last() else { break };
        after = last.id;
        count_terminal_logs(page.into_iter().map(|e| (e.id, e.data)), &mut out);
    }
    out
}

/// Waits (bounded) until the core has recorded every access log terminal `index` wrote.
async fn log_recorded(rig: &Rig, out: &Outcome, index: usize) {
    let terminal = rig.terminals[index];
    let mut wanted: BTreeMap<i64, usize> = BTreeMap::new();
    for log in out.logs[index].iter().flatten() {
        *wanted.entry(*log).or_default() += 1;
    }
    let mut stream = rig.core.subscribe();
    let mut seen = BTreeMap::new();
    seen.extend(recorded_logs(rig).await);
    let done = |seen: &BTreeMap<u64, (u64, i64)>| {
        let mut have: BTreeMap<i64, usize> = BTreeMap::new();
        for (t, log) in seen.values() {
            if *t == terminal {
                *have.entry(*log).or_default() += 1;
            }
        }
        have == wanted
    };
    let waited = tokio::time::timeout(CONVERGE_WITHIN, async {
        while !done(&seen) {
            match stream.recv().await {
                Ok(e) => count_terminal_logs([(e.event.id, e.event.data)], &mut seen),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    seen.extend(recorded_logs(rig).await);
                }
                Err(e) => panic!("the event stream ended: {e}"),
            }
        }
    })
    .await;
    if waited.is_err() {
        let mut have: BTreeMap<i64, usize> = BTreeMap::new();
        for (t, log) in recorded_logs(rig).await.values() {
            if *t == terminal {
                *have.entry(*log).or_default() += 1;
            }
        }
        let status = rig
            .core
            .sync_board()
            .get(rig.tenant, TerminalId::new(terminal));
        panic!(
            "terminal {index}: the core did not record its access logs {wanted:?} before the \
             wipe; recorded {have:?}; {status:?}"
        );
    }
}

/// Whether terminal `id` has converged on `now` with every log up to `logs` read.
fn settled(status: &SyncStatus, revision: u64, now: &str, logs: i64) -> bool {
    status.in_sync
        && status.pending == 0
        && status.revision >= revision
        && status.computed_at.as_deref() == Some(now)
        && status.access_logs_read >= logs
}

async fn run(seed: u64, steps: usize) {
    let (rig, mut world) = start(seed, TERMINALS).await;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Outcome {
        logs: vec![vec![BTreeSet::new()]; TERMINALS],
        ..Outcome::default()
    };
    for _ in 0..steps {
        step(&rig, &mut world, &mut out, &mut rng).await;
        // Let the engine work between steps: wait for the next status change, briefly.
        let _ = tokio::time::timeout(
            Duration::from_millis(20),
            rig.engine.board().wait_until({
                let mut first = true;
                move |_| !std::mem::take(&mut first)
            }),
        )
        .await;
    }

    // Faults off, power on, then a last move of the clock: every terminal passes again
    // (and catches up on its access logs).
    rig.faults(json!({"clear": true})).await;
    let off: Vec<usize> = out.off.iter().copied().collect();
    if !off.is_empty() {
        rig.fleet
            .power_on(&Selection::Indices(off))
            .await
            .expect("power on");
    }
    let last = rig.advance_clock(10);
    rig.core.touch(rig.tenant);
    let revision = rig.core.revision();
    let now = last.to_string();
    // The cursor follows the device's current log.
    let expected_logs: Vec<i64> = out
        .logs
        .iter()
        .map(|lives| {
            lives
                .last()
                .and_then(|l| l.iter().max().copied())
                .unwrap_or(0)
        })
        .collect();
    let converged = tokio::time::timeout(
        CONVERGE_WITHIN,
        rig.engine.board().wait_until(|board| {
            rig.terminals.iter().enumerate().all(|(i, id)| {
                board.iter().any(|((_, t), s)| {
                    t.get() == *id && settled(s, revision, &now, expected_logs[i])
                })
            })
        }),
    )
    .await;
    if converged.is_err() {
        for (i, id) in rig.terminals.iter().enumerate() {
            let status = rig.core.sync_board().get(rig.tenant, TerminalId::new(*id));
            eprintln!("terminal {i} (logs up to {}): {status:?}", expected_logs[i]);
        }
        panic!("seed {seed}: no convergence within {CONVERGE_WITHIN:?} after the faults");
    }

    // Every terminal holds exactly its image, its users' times written with the skew the
    // engine measured.
    for (i, id) in rig.terminals.iter().enumerate() {
        let skew = rig
            .core
            .sync_board()
            .get(rig.tenant, TerminalId::new(*id))
            .and_then(|s| s.clock_skew_seconds)
            .unwrap_or_else(|| panic!("seed {seed}: terminal {i}: no clock skew measured"));
        let image = rig
            .core
            .read(rig.tenant, |s| {
                Coverage::of(s, TerminalId::new(*id)).map(|c| device_image(s, &c, last).0)
            })
            .await
            .expect("snapshot")
            .expect("a terminal of the tenant");
        let (want, want_faces) = expected_tables(&image, &rig.factory[i], skew);
        let (have, have_faces) = device_tables(&rig.fleet, i);
        for table in TABLES {
            let (have, want) = (&have[table], &want[table]);
            let extra: Vec<&String> = have.iter().filter(|r| !want.contains(r)).collect();
            let missing: Vec<&String> = want.iter().filter(|r| !have.contains(r)).collect();
            assert!(
                have == want,
                "seed {seed}: terminal {i}, table {table}: extra {extra:?}, missing {missing:?}, \
                 {} rows held, {} wanted",
                have.len(),
                want.len()
            );
        }
        assert_eq!(have_faces, want_faces, "seed {seed}: terminal {i}, faces");
    }

    // Every access log is recorded exactly once, at a time translated back to the site's
    // wall time: between the core's first and last instant, give or take the clock moves
    // not measured yet and the real time a run takes (untranslated, the device's clock
    // here is months away from the core's manual one).
    let (first, end): (Timestamp, Timestamp) = (START.parse().expect("instant"), last);
    let slack = jiff::SignedDuration::from_secs(out.clock_moved + 600);
    let mut recorded: BTreeMap<(u64, i64), usize> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = rig
            .core
            .access_events(rig.tenant, after, 500)
            .await
            .expect("events");
        let Some(last) = page.last() else { break };
        after = last.id;
        for e in &page {
            if e.data["source"] == "terminal" {
                let at: Timestamp = e.data["occurred_at"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .expect("occurred_at");
                assert!(
                    at >= first - slack && at <= end + slack,
                    "seed {seed}: an access log recorded at {at}, outside {first}..{end} \
                     by more than {slack:#}: {}",
                    e.data
                );
                let key = (
                    e.data["terminal_id"].as_u64().expect("terminal"),
                    e.data["device_log_id"].as_i64().expect("log id"),
                );
                *recorded.entry(key).or_default() += 1;
            }
        }
    }
    let mut wanted: BTreeMap<(u64, i64), usize> = BTreeMap::new();
    for (i, lives) in out.logs.iter().enumerate() {
        for log in lives.iter().flatten() {
            *wanted.entry((rig.terminals[i], *log)).or_default() += 1;
        }
    }
    assert_eq!(
        recorded, wanted,
        "seed {seed}: every access log recorded exactly once"
    );
    let people: usize = (0..TERMINALS)
        .map(|i| device_tables(&rig.fleet, i).0["users"].len())
        .sum();
    eprintln!(
        "chaos seed {seed}: {steps} steps {:?}; {} access logs recorded once; {people} users on {TERMINALS} terminals",
        out.steps,
        wanted.values().sum::<usize>()
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_converges_after_chaos_and_every_access_is_recorded_once() {
    let seed = env_or("ACS_CHAOS_SEED", DEFAULT_SEED);
    let steps = env_or("ACS_CHAOS_STEPS", DEFAULT_STEPS);
    run(seed, steps).await;
}

/// Waits (bounded) until terminal `index` of the rig satisfies `done`.
async fn wait_for(rig: &Rig, index: usize, done: impl Fn(&SyncStatus) -> bool) {
    let id = rig.terminals[index];
    tokio::time::timeout(
        CONVERGE_WITHIN,
        rig.engine
            .board()
            .wait_until(|board| board.iter().any(|((_, t), s)| t.get() == id && done(s))),
    )
    .await
    .expect("the terminal settles");
}

/// Access events recorded from terminal logs, as (terminal, device log id).
async fn terminal_events(rig: &Rig) -> Vec<(u64, i64)> {
    let page = rig
        .core
        .access_events(rig.tenant, 0, 1000)
        .await
        .expect("events");
    page.iter()
        .filter(|e| e.data["source"] == "terminal")
        .map(|e| {
            (
                e.data["terminal_id"].as_u64().expect("terminal"),
                e.data["device_log_id"].as_i64().expect("log id"),
            )
        })
        .collect()
}

/// Regression: the firmware drops a notification after three attempts, so an access log
/// whose `dao` never arrived was lost; the engine now reads the device's logs back.
#[tokio::test]
async fn an_access_log_whose_notification_was_dropped_is_recorded_from_the_device() {
    let (rig, _) = start(11, 1).await;
    wait_for(&rig, 0, |s| s.in_sync).await;
    let device = rig.fleet.device(0).expect("device");
    rig.faults(json!({"callbacks": {"drop_next": 1, "duplicate_next": 0}}))
        .await;
    let dropped = device
        .identify(&Presentation::Card(1))
        .await
        .expect("decided")
        .log_id;
    rig.faults(json!({"callbacks": {"duplicate_next": 1}}))
        .await;
    let doubled = device
        .identify(&Presentation::Card(2))
        .await
        .expect("decided")
        .log_id;
    // The catch-up is due a minute later on the core's clock.
    rig.advance_clock(2);
    wait_for(&rig, 0, |s| s.access_logs_read >= doubled).await;
    let mut events = terminal_events(&rig).await;
    events.sort();
    assert_eq!(
        events,
        vec![(rig.terminals[0], dropped), (rig.terminals[0], doubled)],
        "each log once"
    );
    rig.shutdown().await;
}

/// Regression: a person pushed halfway (their `users` row created, then a 5xx on their
/// cards) had no applied record, so when they lost the entitlement before the retry
/// succeeded nothing removed them: the device kept an orphan. The engine now records a
/// subject as in doubt before each step.
#[tokio::test]
async fn a_person_pushed_halfway_and_then_revoked_leaves_the_device() {
    let (rig, _) = start(12, 1).await;
    let api = &rig.api;
    // Someone else first, so the "always" rule is on the device already.
    let other = api.create("/v1/people", json!({"acs_id": "FULL-1"})).await;
    api.create(
        &format!("/v1/people/{other}/credentials"),
        json!({"kind": "card", "facility_code": 77, "card_number": 2}),
    )
    .await;
    api.create("/v1/members", json!({"person_id": other})).await;
    wait_for(&rig, 0, |s| s.in_sync && s.people == 1).await;
    let person = api.create("/v1/people", json!({"acs_id": "HALF-1"})).await;
    api.create(
        &format!("/v1/people/{person}/credentials"),
        json!({"kind": "card", "facility_code": 77, "card_number": 1}),
    )
    .await;
    rig.faults(
        json!({"override": {"command": "create_objects", "status": 503, "count": 100000,
                    "body": {"error": "busy", "code": 1}}}),
    )
    .await;
    let member = api
        .create("/v1/members", json!({"person_id": person}))
        .await;
    let device = rig.fleet.device(0).expect("device").device();
    tokio::time::timeout(
        CONVERGE_WITHIN,
        rig.engine
            .board()
            .wait_until(|_| device.rows("users").expect("users").len() == 2),
    )
    .await
    .expect("the users row is created before the cards fail");
    wait_for(&rig, 0, |s| !s.in_sync && s.last_error.is_some()).await;
    assert!(api.delete(&format!("/v1/members/{member}")).await);
    // A pass that knows the person is no longer wanted, while the faults last.
    let deleted = rig.core.revision();
    wait_for(&rig, 0, |s| s.revision >= deleted).await;
    rig.faults(json!({"clear": true})).await;
    let revision = rig.core.revision();
    wait_for(&rig, 0, |s| s.in_sync && s.revision >= revision).await;
    let users = device.rows("users").expect("users");
    assert_eq!(users.len(), 1, "no orphan left on the device: {users:?}");
    assert_eq!(users[0]["registration"], "FULL-1");
    let cards = device.rows("cards").expect("cards");
    assert_eq!(cards.len(), 1, "{cards:?}");
    assert_eq!(cards[0]["user_id"], json!(other));
    rig.shutdown().await;
}

/// Regression: a request the device read only after the core had moved on (sent just before
/// the core was killed, or held up in a starved device) put a user there that the core had
/// no record of, and nothing ever removed it. The read-back now records such users of
/// ours in doubt; users that are not the tenant's people are left alone.
#[tokio::test]
async fn a_user_of_ours_the_core_has_no_record_of_is_removed_at_the_read_back() {
    let (rig, _) = start(13, 1).await;
    wait_for(&rig, 0, |s| s.in_sync).await;
    let person = rig
        .api
        .create("/v1/people", json!({"acs_id": "STRAY-1"}))
        .await;
    let device = rig.fleet.device(0).expect("device").device();
    let row = |id: u64, registration: &str| {
        let Json::Object(map) = json!({"id": id, "registration": registration, "name": "x"}) else {
            unreachable!("an object")
        };
        map
    };
    device
        .seed_rows("users", &[row(person, "STRAY-1"), row(999_999, "not-ours")])
        .expect("seeded");
    // The read-back is due five minutes later on the core's clock.
    let later = rig.advance_clock(6);
    let id = rig.terminals[0];
    tokio::time::timeout(
        CONVERGE_WITHIN,
        rig.engine.board().wait_until(|board| {
            device.rows("users").expect("users").len() == 1
                && board.iter().any(|((_, t), s)| {
                    t.get() == id && s.in_sync && s.computed_at == Some(later.to_string())
                })
        }),
    )
    .await
    .expect("the stray user leaves");
    let users = device.rows("users").expect("users");
    assert_eq!(users[0]["registration"], "not-ours", "{users:?}");
    rig.shutdown().await;
}
