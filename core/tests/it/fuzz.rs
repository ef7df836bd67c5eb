//! Fuzz campaigns over the core's two HTTP surfaces (RELIABILITY.md, "Bad input"):
//!
//! - the integrator API: every operation of `openapi.json` (so new routes are covered
//!   without editing this file), with path ids, query strings, headers and JSON bodies
//!   mutated from valid requests;
//! - the device-facing receiver: form-encoded online requests and JSON monitor
//!   notifications, mutated from what a terminal sends, from its address and others.
//!
//! For every input: no panic, never a 5xx, an error in the surface's shape
//! (`application/problem+json` with a `urn:acs:problem:` type on the API, `{"error": …}`
//! on the receiver), and a refused request leaves the stored records, the access events
//! and the core's revision as they were.
//!
//! `cargo test` runs a few hundred inputs per campaign; `ACS_FUZZ_CASES=100000` runs the
//! documented campaign with the same code (RELIABILITY.md), `ACS_FUZZ_SEED` varies the
//! seed. Deterministic: a fixed seed, no failure persistence. The campaign runner and the
//! JSON mutations are `acs_testkit`'s, shared with the simulator's campaigns.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use acs_core::domain::{TenantId, TerminalId};
use acs_core::store::SqliteStore;
use acs_core::{Clock, Core};
use acs_testkit::{Vocabulary, arb_byte_edit, campaign, excerpt, json_or_fail, mutate};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use http_body_util::BodyExt as _;
use proptest::prelude::*;
use proptest::test_runner::TestCaseResult;
use serde_json::{Value as Json, json};
use tower::ServiceExt as _;

use crate::api_support::{START, face_b64};

// ----- generated JSON -------------------------------------------------------------------

/// Member names the API reads, and one it does not.
const KEYS: &[&str] = &[
    "name",
    "timezone",
    "site_id",
    "facility_id",
    "door_id",
    "door_ids",
    "model",
    "address",
    "login",
    "password",
    "operating_mode",
    "acs_id",
    "selfie",
    "kind",
    "pin",
    "facility_code",
    "card_number",
    "value",
    "qr",
    "token",
    "person_id",
    "member_ids",
    "group_ids",
    "holidays",
    "start",
    "end",
    "classes",
    "weekly_spans",
    "weekdays",
    "holiday_calendar_ids",
    "schedule_id",
    "starts_at",
    "ends_at",
    "doors",
    "in_auth_types",
    "out_auth_types",
    "effect",
    "valid_from",
    "valid_to",
    "reason",
    "label",
    "factors",
    "card",
    "face",
    "credential_id",
    "live",
    "direction",
    "at",
    "sync",
    "max_uses",
    "email",
    "phone",
    "supported_auth_types",
    "in",
    "out",
    "x",
];

/// Interesting strings: kinds, zones, times, dates, a loopback URL, injections, nothing.
const WORDS: &[&str] = &[
    "",
    " ",
    "idface",
    "Europe/Madrid",
    "Mars/Olympus",
    "UTC",
    "pin",
    "card",
    "face",
    "qr",
    "cloud_key",
    "mobile_key",
    "fingerprint",
    "permanent",
    "temporary",
    "permit",
    "deny",
    "mon",
    "sun",
    "00:00",
    "24:00",
    "25:61",
    "2026-05-04T08:00:00Z",
    "2026-13-40",
    "9999-12-31T23:59:59Z",
    "lost",
    "in",
    "out",
    "http://127.0.0.1:9",
    "\u{0}",
    "\u{202e}",
    "😀",
    "' OR 1=1 --",
    "<script>",
    "1",
    "-1",
    "1e400",
    "null",
];

/// What the mutations are made of: the API's member names, interesting strings, and
/// integers at the edges of its ranges (32-bit card numbers, 64-bit ids).
const VOCABULARY: Vocabulary = Vocabulary {
    keys: KEYS,
    words: WORDS,
    integers: &[
        0,
        1,
        -1,
        2,
        3,
        7,
        u32::MAX as i64,
        u32::MAX as i64 + 1,
        i64::MAX,
        i64::MIN,
    ],
};

// ----- the core under test --------------------------------------------------------------

const DEVICE_ID: i64 = 4_408_801_109_375_138;

/// A tenant with one of every kind of object, its key, and the ids by kind.
struct World {
    core: Core,
    api: axum::Router,
    receiver: axum::Router,
    key: String,
    tenant: TenantId,
    ids: BTreeMap<&'static str, u64>,
    /// Newest access event id read, and how many were read.
    events: std::cell::Cell<(u64, usize)>,
}

/// What must not change when a request is refused.
#[derive(Debug, PartialEq)]
struct Stored {
    revision: u64,
    records: Vec<acs_core::store::Record>,
    /// Id of the newest access event.
    last_event: u64,
    /// Access events so far (to rebuild a grown world).
    events: usize,
}

struct Reply {
    status: u16,
    content_type: String,
    bytes: Vec<u8>,
}

async fn call(router: &axum::Router, req: Request<Body>, read_success: bool) -> Reply {
    let response = router.clone().oneshot(req).await.expect("infallible");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    // A success may be an endless stream (access events); only errors are read.
    let bytes = if status < 400 && !read_success {
        Vec::new()
    } else {
        response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .unwrap_or_default()
    };
    Reply {
        status,
        content_type,
        bytes,
    }
}

impl World {
    async fn new() -> World {
        let store = Arc::new(SqliteStore::in_memory().expect("store"));
        let core = Core::with_clock(store, Clock::manual(START.parse().expect("instant")));
        let (_, key) = core.create_tenant("acme", "Acme").await.expect("tenant");
        let tenant = core
            .authenticate(&key.secret)
            .await
            .expect("auth")
            .expect("caller")
            .tenant;
        let mut w = World {
            api: acs_core::http::router(core.clone()),
            receiver: acs_core::receiver::router(core.clone()),
            core,
            key: key.secret,
            tenant,
            ids: BTreeMap::new(),
            events: std::cell::Cell::new((0, 0)),
        };
        w.seed().await;
        w
    }

    /// A JSON POST to the API with the world's key.
    fn api_post(&self, path: &str, body: impl Into<Body>) -> Request<Body> {
        Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", "application/json")
            .body(body.into())
            .expect("request")
    }

    async fn post(&self, path: &str, body: Json) -> u64 {
        let req = self.api_post(path, body.to_string());
        let r = call(&self.api, req, true).await;
        let j: Json = serde_json::from_slice(&r.bytes).unwrap_or(Json::Null);
        assert!(r.status < 300, "{path}: {} {j}", r.status);
        j["id"].as_u64().unwrap_or(0)
    }

    async fn seed(&mut self) {
        let site = self
            .post(
                "/v1/sites",
                json!({"name": "Madrid", "timezone": "Europe/Madrid"}),
            )
            .await;
        let facility = self
            .post("/v1/facilities", json!({"site_id": site, "name": "Hall"}))
            .await;
        let door = self
            .post(
                "/v1/doors",
                json!({"facility_id": facility, "name": "Main", "supported_auth_types":
                       {"in": ["face", "card", "pin", "card_plus_pin", "qr", "cloud_key", "mobile_key"], "out": ["card"]}}),
            )
            .await;
        // Loopback, nothing listening: an enrollment fails fast and never leaves the host.
        let terminal = self
            .post(
                "/v1/terminals",
                json!({"facility_id": facility, "model": "idface", "address": "http://127.0.0.1:9",
                       "login": "admin", "password": "s3cret-device", "door_ids": [door]}),
            )
            .await;
        let person = self
            .post(
                "/v1/people",
                json!({"acs_id": "A-1", "name": "Ana", "selfie": face_b64()}),
            )
            .await;
        let credential = self
            .post(
                &format!("/v1/people/{person}/credentials"),
                json!({"kind": "card", "facility_code": 123, "card_number": 45678}),
            )
            .await;
        let phone = self
            .post(&format!("/v1/people/{person}/phones"), json!({}))
            .await;
        let group = self
            .post(
                "/v1/groups",
                json!({"name": "Staff", "member_ids": [person]}),
            )
            .await;
        let calendar = self
            .post(
                "/v1/holiday-calendars",
                json!({"name": "Holidays",
                  "holidays": [{"name": "Xmas", "start": "2026-12-25", "classes": [1]}]}),
            )
            .await;
        let schedule = self
            .post("/v1/schedules", json!({"name": "Always", "weekly_spans":
                  [{"weekdays": ["mon"], "start": "00:00", "end": "24:00"}], "holiday_calendar_ids": [calendar]}))
            .await;
        let event = self
            .post(
                "/v1/events",
                json!({"facility_id": facility,
                  "starts_at": "2026-05-04T18:00:00Z", "ends_at": "2026-05-04T19:00:00Z"}),
            )
            .await;
        let member = self.post("/v1/members", json!({"person_id": person})).await;
        let access = self
            .post(
                "/v1/accesses",
                json!({"name": "A", "kind": "permanent", "schedule_id": schedule,
                       "doors": [{"door_id": door, "in_auth_types": ["card"]}], "group_ids": [group]}),
            )
            .await;
        self.core
            .register_device(DEVICE_ID, self.tenant, TerminalId::new(terminal));
        self.ids = BTreeMap::from([
            ("site", site),
            ("facility", facility),
            ("door", door),
            ("terminal", terminal),
            ("person", person),
            ("credential", credential),
            ("phone", phone),
            ("group", group),
            ("calendar", calendar),
            ("schedule", schedule),
            ("event", event),
            ("member", member),
            ("access", access),
        ]);
    }

    fn id(&self, kind: &str) -> u64 {
        self.ids.get(kind).copied().unwrap_or(1)
    }

    async fn stored(&self) -> Stored {
        let store = self.core.store();
        let records = store.records(self.tenant.get()).expect("records");
        // Only the events after the newest one seen so far are read: cheap per request.
        let (mut last, mut count) = self.events.get();
        loop {
            let page = store
                .access_events(self.tenant.get(), last, 500)
                .expect("events");
            let Some(newest) = page.last() else { break };
            last = newest.id;
            count += page.len();
        }
        self.events.set((last, count));
        Stored {
            revision: self.core.revision(),
            records,
            last_event: last,
            events: count,
        }
    }
}

/// A world in a runtime, rebuilt when it has grown or lost its key.
struct Fixture {
    rt: tokio::runtime::Runtime,
    world: RefCell<World>,
    /// Replies by status, for the campaign's report.
    statuses: RefCell<BTreeMap<u16, u32>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        eprintln!("  replies by status: {:?}", self.statuses.borrow());
    }
}

impl Fixture {
    fn new() -> Fixture {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let world = RefCell::new(rt.block_on(World::new()));
        Fixture {
            rt,
            world,
            statuses: RefCell::new(BTreeMap::new()),
        }
    }

    /// Sends `req` to the API or the receiver and checks the answer.
    fn check(
        &self,
        receiver: bool,
        build: impl FnOnce(&World) -> Option<Request<Body>>,
    ) -> TestCaseResult {
        let w = self.world.borrow();
        let Some(req) = build(&w) else {
            return Ok(());
        };
        let what = format!("{} {}", req.method(), req.uri());
        let (before, r, after) = self.rt.block_on(async {
            let before = w.stored().await;
            let router = if receiver { &w.receiver } else { &w.api };
            let r = call(router, req, false).await;
            let after = w.stored().await;
            (before, r, after)
        });
        *self.statuses.borrow_mut().entry(r.status).or_default() += 1;
        let text = excerpt(&r.bytes);
        // The seeded terminal is unreachable on purpose (nothing leaves the host): a valid
        // enrollment ends as a failed enrollment with 502, an upstream failure, not bad input.
        let upstream = r.status == 502
            && what.contains("/enrollments")
            && serde_json::from_slice::<Json>(&r.bytes).is_ok_and(|j| {
                j["type"] == "urn:acs:problem:terminal-unavailable"
                    && j["enrollment"]["status"] == "failed"
            });
        prop_assert!(r.status < 500 || upstream, "{what}: {} {text}", r.status);
        if r.status >= 400 && !upstream {
            let j = json_or_fail(&r.bytes, &what)?;
            if receiver {
                prop_assert!(
                    j["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{what}: {text}"
                );
            } else {
                prop_assert_eq!(
                    &r.content_type,
                    "application/problem+json",
                    "{}: {}",
                    what,
                    text
                );
                prop_assert!(
                    j["type"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("urn:acs:problem:"))
                        && j["status"] == r.status
                        && j["title"].is_string(),
                    "{what}: {text}"
                );
            }
            prop_assert!(
                before == after,
                "{what}: refused ({text}) but the stored data changed"
            );
        }
        let grown = after.records.len() > 150 || after.events > 2_000;
        drop(w);
        let (core, key) = {
            let w = self.world.borrow();
            (w.core.clone(), w.key.clone())
        };
        let key_alive = self
            .rt
            .block_on(async { core.authenticate(&key).await.ok().flatten().is_some() });
        if grown || !key_alive {
            let fresh = self.rt.block_on(World::new());
            *self.world.borrow_mut() = fresh;
        }
        Ok(())
    }
}

// ----- the integrator API ---------------------------------------------------------------

/// Every operation of the OpenAPI document: `(method, path template)`.
fn operations() -> Vec<(String, String)> {
    let doc: Json = serde_json::from_str(acs_core::http::OPENAPI).expect("openapi.json");
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("operations").keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops.push(("GET".into(), "/v1/nope".into()));
    ops.push(("POST".into(), "/nope".into()));
    ops
}

/// The kind of object a path's `{id}` names, from the segment before it.
fn kind_of(segment: &str) -> &'static str {
    match segment {
        "sites" => "site",
        "facilities" => "facility",
        "doors" => "door",
        "terminals" => "terminal",
        "people" => "person",
        "credentials" => "credential",
        "phones" => "phone",
        "groups" => "group",
        "holiday-calendars" => "calendar",
        "schedules" => "schedule",
        "events" => "event",
        "members" => "member",
        "accesses" => "access",
        _ => "other",
    }
}

/// A valid body for an operation (placeholders `$kind` are replaced by seeded ids).
fn template(method: &str, path: &str) -> Json {
    let t = |s: &str| -> Json { serde_json::from_str(s).expect("template") };
    match (method, path) {
        ("POST", "/v1/sites") => t(r#"{"name": "Lisbon", "timezone": "Europe/Lisbon"}"#),
        ("POST", "/v1/facilities") => t(r#"{"site_id": "$site", "name": "Annex"}"#),
        ("POST", "/v1/doors") => t(
            r#"{"facility_id": "$facility", "name": "Side", "supported_auth_types": {"in": ["card", "pin"], "out": ["card"]}}"#,
        ),
        ("POST", "/v1/terminals") => t(
            r#"{"facility_id": "$facility", "model": "idface", "address": "http://127.0.0.1:9", "login": "admin", "password": "pw", "door_ids": ["$door"]}"#,
        ),
        ("POST", "/v1/people") => t(r#"{"acs_id": "B-2", "name": "Bo"}"#),
        ("POST", "/v1/people/{id}/credentials") => t(r#"{"kind": "pin", "pin": "2468"}"#),
        ("POST", "/v1/people/{id}/phones") => json!({}),
        ("POST", "/v1/credentials/{id}/revoke") => t(r#"{"reason": "lost"}"#),
        ("POST", "/v1/groups") => t(r#"{"name": "Night", "member_ids": ["$person"]}"#),
        ("POST", "/v1/groups/{id}/members") => t(r#"{"person_id": "$person"}"#),
        ("POST", "/v1/holiday-calendars") => t(
            r#"{"name": "H2", "holidays": [{"name": "NY", "start": "2027-01-01", "classes": [1, 2]}]}"#,
        ),
        ("POST", "/v1/schedules") => t(
            r#"{"name": "Days", "weekly_spans": [{"weekdays": ["mon", "tue"], "start": "08:00", "end": "18:00"}], "holiday_calendar_ids": ["$calendar"]}"#,
        ),
        ("POST", "/v1/events") => t(
            r#"{"facility_id": "$facility", "starts_at": "2026-05-05T18:00:00Z", "ends_at": "2026-05-05T19:00:00Z"}"#,
        ),
        ("POST", "/v1/events/{id}/attendees") => t(r#"{"person_id": "$person"}"#),
        ("POST", "/v1/members") => t(r#"{"person_id": "$person"}"#),
        ("POST" | "PUT", p) if p.starts_with("/v1/accesses") => t(
            r#"{"name": "B", "kind": "permanent", "schedule_id": "$schedule", "doors": [{"door_id": "$door", "in_auth_types": ["pin"]}], "group_ids": ["$group"]}"#,
        ),
        ("POST", "/v1/decisions") => t(
            r#"{"door_id": "$door", "direction": "in", "factors": [{"card": {"facility_code": 123, "card_number": 45678}}]}"#,
        ),
        ("POST", "/v1/api-keys") => t(r#"{"label": "ci"}"#),
        ("POST", "/v1/terminals/{id}/enrollments") => {
            t(r#"{"person_id": "$person", "kind": "card", "sync": true}"#)
        }
        _ => json!({}),
    }
}

/// Replaces `"$kind"` placeholders with the world's ids.
fn fill(doc: &mut Json, w: &World) {
    match doc {
        Json::String(s) if s.starts_with('$') => *doc = json!(w.id(&s[1..])),
        Json::Array(a) => a.iter_mut().for_each(|v| fill(v, w)),
        Json::Object(m) => m.values_mut().for_each(|v| fill(v, w)),
        _ => {}
    }
}

/// What goes where a path has an id: the right object, another, or no number at all.
#[derive(Debug, Clone)]
enum PathId {
    Own,
    Number(u64),
    Text(String),
}

fn arb_path_id() -> impl Strategy<Value = PathId> {
    prop_oneof![
        6 => Just(PathId::Own),
        2 => prop::sample::select(vec![0u64, 1, 2, 99, 1 << 53, u64::MAX]).prop_map(PathId::Number),
        2 => prop::sample::select(vec![
            "abc", "-1", "1.5", "%20", "%00", "18446744073709551616", "0x10", "1e3", "%F0%9F%98%80",
            "..", "1;2", "+1",
        ])
        .prop_map(|s| PathId::Text(s.to_owned())),
    ]
}

fn arb_query() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    let value = prop_oneof![
        prop::sample::select(vec![
            "0",
            "1",
            "50",
            "500",
            "501",
            "-1",
            "abc",
            "",
            "18446744073709551616",
            "%zz",
            "1.5",
            "2026-05-04T08:00:00Z",
        ])
        .prop_map(str::to_owned),
        "[a-z0-9%+&=]{0,20}",
    ];
    prop::collection::vec(
        (
            prop::sample::select(vec!["limit", "after", "at", "kind", "x", "limit"]),
            value,
        ),
        0..3,
    )
}

#[derive(Debug, Clone)]
enum Auth {
    Own,
    None,
    Garbage(String),
}

#[test]
fn integrator_api() {
    let f = Fixture::new();
    let ops = operations();
    let strategy = (
        prop::sample::select(ops),
        prop::collection::vec(arb_path_id(), 2),
        arb_query(),
        VOCABULARY.edits(),
        arb_byte_edit(),
        prop_oneof![
            12 => Just(Auth::Own),
            1 => Just(Auth::None),
            1 => "[ -~]{0,40}".prop_map(Auth::Garbage),
        ],
        prop_oneof![
            8 => Just(Some("application/json")),
            1 => Just(None),
            1 => Just(Some("text/plain")),
        ],
        prop_oneof![
            8 => Just(None),
            1 => "[ -~]{1,20}".prop_map(Some),
            1 => (250usize..300).prop_map(|n| Some("k".repeat(n))),
        ],
    );
    campaign(
        "core/api",
        300,
        strategy,
        |((method, path), ids, query, edits, bytes, auth, ct, idem)| {
            f.check(false, |w| {
                let mut uri = String::new();
                let mut ids = ids.iter();
                let mut previous = "";
                for segment in path.split('/').skip(1) {
                    uri.push('/');
                    if segment.starts_with('{') {
                        let kind = if segment == "{person_id}" {
                            "person"
                        } else {
                            kind_of(previous)
                        };
                        match ids.next().unwrap_or(&PathId::Own) {
                            PathId::Own => uri.push_str(&w.id(kind).to_string()),
                            PathId::Number(n) => uri.push_str(&n.to_string()),
                            PathId::Text(t) => uri.push_str(t),
                        }
                    } else {
                        uri.push_str(segment);
                    }
                    previous = segment;
                }
                if !query.is_empty() {
                    uri.push('?');
                    let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    uri.push_str(&q.join("&"));
                }
                let mut doc = template(&method, &path);
                fill(&mut doc, w);
                let body = if method == "GET" && edits.is_empty() {
                    Vec::new()
                } else {
                    mutate(doc, &edits, &bytes)
                };
                let mut req = Request::builder().method(method.as_str()).uri(uri);
                match &auth {
                    Auth::Own => req = req.header("authorization", format!("Bearer {}", w.key)),
                    Auth::None => {}
                    Auth::Garbage(g) => req = req.header("authorization", g.as_str()),
                }
                if let Some(ct) = ct {
                    req = req.header("content-type", ct);
                }
                if let Some(k) = &idem {
                    req = req.header("idempotency-key", k.as_str());
                }
                req.body(Body::from(body)).ok()
            })
        },
    );
}

// ----- the device-facing receiver -------------------------------------------------------

const FORM_KEYS: &[&str] = &[
    "device_id",
    "identifier_id",
    "card_value",
    "qrcode_value",
    "user_id",
    "password",
    "portal_id",
    "time",
    "uuid",
    "event",
    "confidence",
    "pin_value",
    "registration",
    "user_name",
    "duress",
    "session",
    "x",
];

fn arb_form_value() -> BoxedStrategy<String> {
    prop_oneof![
        Just(DEVICE_ID.to_string()),
        prop::sample::select(vec![
            "0",
            "1",
            "-1",
            "7",
            "528982694",
            "1886544640",
            "1902473728",
            "1667851264",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "",
            "abc",
            "1.5",
            "%zz",
            "+",
            "1e3",
            "0x10",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        ".{0,16}",
        (1usize..5_000).prop_map(|n| "9".repeat(n)),
    ]
    .boxed()
}

#[test]
fn device_receiver() {
    let f = Fixture::new();
    let paths = vec![
        "/new_card.fcgi",
        "/new_user_identified.fcgi",
        "/new_qrcode.fcgi",
        "/new_user_id_and_password.fcgi",
        "/device_is_alive.fcgi",
        "/new_biometric_image.fcgi",
        "/new_rex_log.fcgi",
        "/nope.fcgi",
        "/api/notifications/dao",
        "/api/notifications/card",
        "/api/notifications/user_image",
        "/api/notifications/operation_mode",
        "/api/notifications/door",
        "/",
    ];
    let notification = json!({"device_id": DEVICE_ID, "object_changes": [{"object": "access_logs",
        "type": "inserted", "values": {"id": 1, "time": 1_777_881_600, "event": 7, "user_id": 1,
        "portal_id": 1, "card_value": 528_982_694}}]});
    let form = prop::collection::vec(
        (
            prop::sample::select(FORM_KEYS),
            arb_form_value(),
            any::<bool>(),
        ),
        0..8,
    );
    let strategy = (
        prop::sample::select(paths),
        prop_oneof![8 => form.prop_map(Ok), 2 => (VOCABULARY.edits(), arb_byte_edit()).prop_map(Err)],
        prop::collection::vec(any::<u8>(), 0..24),
        prop_oneof![9 => Just([127, 0, 0, 1]), 1 => Just([10, 0, 0, 9])],
        any::<u16>(),
        prop::sample::select(vec!["", "?session=", "?device_id=1", "?x=%zz&device_id="]),
    );
    campaign(
        "core/receiver",
        300,
        strategy,
        |(path, body, noise, ip, id, query)| {
            let body: Vec<u8> = match body {
                Ok(pairs) => {
                    let mut text = String::new();
                    for (k, v, escaped) in &pairs {
                        let v = if *escaped {
                            form_urlencoded::byte_serialize(v.as_bytes()).collect()
                        } else {
                            v.clone()
                        };
                        text.push_str(&format!("{k}={v}&"));
                    }
                    let mut b = text.into_bytes();
                    if noise.len() > 20 {
                        b.extend_from_slice(&noise);
                    }
                    b
                }
                Err((edits, bytes)) => mutate(notification.clone(), &edits, &bytes),
            };
            let log_id = id;
            f.check(true, move |_| {
                let body = if path.contains("notifications") && log_id % 2 == 0 {
                    // Fresh log ids so that valid notifications are recorded, not deduplicated.
                    String::from_utf8_lossy(&body)
                        .replace("\"id\":1,", &format!("\"id\":{log_id},"))
                        .into_bytes()
                } else {
                    body
                };
                let ct = if path.ends_with(".fcgi") {
                    "application/x-www-form-urlencoded"
                } else {
                    "application/json"
                };
                let mut req = Request::builder()
                    .method(Method::POST)
                    .uri(format!("{path}{query}"))
                    .header("content-type", ct)
                    .body(Body::from(body))
                    .ok()?;
                req.extensions_mut()
                    .insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
                Some(req)
            })
        },
    );
}

/// A POST to the receiver from a loopback peer (127.0.0.1:40000).
fn from_the_terminal(uri: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("content-type", content_type)
        .body(body.into())
        .expect("request");
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))));
    req
}

/// Found by the receiver campaign: an access log row without an id was answered 503 ("try
/// again"), so the terminal would retry a malformed row for ever, and a batch whose second
/// row was malformed kept its first. Now: 400 and nothing recorded.
#[tokio::test]
async fn a_malformed_access_log_row_is_refused_and_nothing_recorded() {
    let w = World::new().await;
    let before = w.stored().await;
    let good = json!({"id": 5, "time": 1_777_881_600, "event": 7, "user_id": 1, "portal_id": 1});
    for values in [json!(null), json!({"time": 1}), json!({"id": "x"})] {
        let doc = json!({"device_id": DEVICE_ID, "object_changes": [
            {"object": "access_logs", "type": "inserted", "values": good},
            {"object": "access_logs", "type": "inserted", "values": values}]});
        let req = from_the_terminal(
            "/api/notifications/dao",
            "application/json",
            doc.to_string(),
        );
        let r = call(&w.receiver, req, true).await;
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.bytes));
        assert_eq!(w.stored().await, before);
    }
}

/// Limits: a body over the limit gets each surface's own error shape (axum's default
/// rejection is plain text).
#[tokio::test]
async fn oversized_bodies_get_the_surface_error_shape() {
    let w = World::new().await;
    let before = w.stored().await;
    let big = vec![b' '; acs_core::receiver::MAX_BODY_BYTES + 1];
    let req = from_the_terminal("/new_card.fcgi", "application/x-www-form-urlencoded", big);
    let r = call(&w.receiver, req, true).await;
    assert_eq!(r.status, 413);
    let j: Json = serde_json::from_slice(&r.bytes).expect("JSON");
    assert!(
        j["error"].as_str().is_some_and(|e| e.contains("at most")),
        "{j}"
    );
    let big = vec![b' '; acs_core::http::MAX_BODY_BYTES + 1];
    let r = call(&w.api, w.api_post("/v1/people", big), true).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.content_type, "application/problem+json");
    assert_eq!(w.stored().await, before);
}

/// Limits: every string a client sends has a length limit answered with a field error.
#[tokio::test]
async fn long_strings_are_refused_naming_the_field() {
    let w = World::new().await;
    let before = w.stored().await;
    let long = "n".repeat(201);
    for (path, body, field) in [
        ("/v1/people", json!({"acs_id": "L-1", "name": long}), "name"),
        ("/v1/people", json!({"acs_id": "a".repeat(129)}), "acs_id"),
        ("/v1/groups", json!({"name": long}), "name"),
        (
            "/v1/terminals",
            json!({"facility_id": w.id("facility"), "model": "idface", "address": "http://127.0.0.1:9",
                   "login": "admin", "password": long, "door_ids": [w.id("door")]}),
            "password",
        ),
    ] {
        let r = call(&w.api, w.api_post(path, body.to_string()), true).await;
        let j: Json = serde_json::from_slice(&r.bytes).expect("JSON");
        assert_eq!(
            (r.status, j["field"].as_str()),
            (422, Some(field)),
            "{path} {j}"
        );
    }
    assert_eq!(w.stored().await, before);
}
