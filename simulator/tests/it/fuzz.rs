//! Fuzz campaigns over the simulator's whole HTTP surface (RELIABILITY.md, "Bad input"): JSON
//! bodies mutated from valid requests of every command, random query strings, random,
//! truncated, corrupted and oversized image bytes, the `/_sim/` control API, and the
//! online-mode reply parser (`online::parse_result`, which validates what a server answers).
//!
//! For every input: no panic, never a 5xx, an error is the device's envelope
//! `{"error": "<text>", "code": 1}` as JSON, and a refused request leaves the stored data
//! (tables, photos, configuration: the `--state` snapshot) exactly as it was.
//!
//! `cargo test` runs a few hundred inputs per campaign; `ACS_FUZZ_CASES=100000` runs the
//! documented campaign with the same code (RELIABILITY.md), `ACS_FUZZ_SEED` varies the
//! seed. The runs are deterministic: a fixed seed, no failure persistence. The campaign
//! runner and the JSON mutations are `acs_testkit`'s, shared with the core's campaigns.

use std::cell::RefCell;
use std::time::Duration;

use acs_simulator::{Scheduler, TimeMode, persist};
use acs_testkit::{Vocabulary, arb_byte_edit, campaign, excerpt, json_or_fail, mutate};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use proptest::prelude::*;
use proptest::test_runner::TestCaseResult;
use serde_json::{Value as Json, json};

use crate::support::{Reply, TestDevice, call, jpeg, pct};

// ----- generated JSON -------------------------------------------------------------------

/// Member names the firmware reads, and a few it does not.
const KEYS: &[&str] = &[
    "object",
    "values",
    "where",
    "fields",
    "order",
    "limit",
    "offset",
    "join",
    "users",
    "cards",
    "id",
    "name",
    "registration",
    "user_id",
    "value",
    "match",
    "user_images",
    "image",
    "timestamp",
    "user_ids",
    "all",
    "dangling",
    "actions",
    "action",
    "parameters",
    "general",
    "monitor",
    "online",
    "online_client",
    "hostname",
    "port",
    "login",
    "password",
    "day",
    "month",
    "year",
    "hour",
    "minute",
    "second",
    "type",
    "sync",
    "save",
    "auto",
    "countdown",
    "field",
    "operator",
    "connector",
    "begin_time",
    "end_time",
    "qrcodes",
    "pins",
    "access_rules",
    "user_access_rules",
    "face_templates",
    "templates",
    "devices",
    "get_timestamp",
    "portal_id",
    "msg",
    "panic_finger",
    "card",
    "face_of",
    "seconds",
    "push_server",
    "push_remote_address",
    "push_request_timeout",
    "push_request_period",
    "request_timeout",
    "message",
    "timeout",
    "frequency",
    "duty_cycle",
    "gpio",
    "keep_network_info",
    "x",
];

/// Interesting strings: table, column, operator and action names, injections, nothing.
const WORDS: &[&str] = &[
    "users",
    "cards",
    "nope",
    "=",
    "<",
    ">=",
    "!=",
    "IN",
    "LIKE",
    "AND",
    "OR",
    "ascending",
    "descending",
    "id",
    "name",
    "user_id",
    "value",
    "admin",
    "door",
    "sec_box",
    "catra",
    "id=1",
    "reason=3",
    "\u{0}",
    "' OR 1=1 --",
    "%",
    "face",
    "card",
    "biometry",
    "COUNT(*)",
    "users.id",
    "",
    " ",
    "1",
    "-1",
    "1e400",
    "18446744073709551615",
    "18446744073709551616",
    "\u{202e}",
    "😀",
];

/// What the mutations are made of: the firmware's member names, interesting strings, and
/// integers at the edges of its ranges (32-bit fields, the conformance suite's reserved ids).
const VOCABULARY: Vocabulary = Vocabulary {
    keys: KEYS,
    words: WORDS,
    integers: &[
        0,
        1,
        -1,
        2,
        77,
        99,
        i32::MAX as i64,
        i32::MAX as i64 + 1,
        i32::MIN as i64,
        i64::MAX,
        i64::MIN,
        989_999_999,
        1_010_000_000,
    ],
};

// ----- the device under test ------------------------------------------------------------

/// One simulated terminal with a user, a card and a photo, reset to that state after
/// every accepted request.
struct Fixture {
    d: TestDevice,
    router: axum::Router,
    rt: tokio::runtime::Runtime,
    session: RefCell<String>,
    seeded: Json,
}

impl Fixture {
    fn new() -> Fixture {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let d = TestDevice::idface();
        let device = d.sim.device();
        for (table, row) in [
            (
                "users",
                json!({"id": 1, "name": "Ana", "registration": "R1"}),
            ),
            ("users", json!({"id": 2, "name": "Bo"})),
            ("cards", json!({"value": 77, "user_id": 1})),
        ] {
            device
                .seed_rows(table, &[row.as_object().cloned().expect("object")])
                .expect("seeded");
        }
        device
            .set_user_image(1, false, 1, &jpeg(1))
            .expect("photo stored");
        let session = rt.block_on(d.login());
        let seeded = persist::snapshot(device);
        let router = d.sim.router();
        Fixture {
            d,
            router,
            rt,
            session: RefCell::new(session),
            seeded,
        }
    }

    fn session(&self) -> String {
        self.session.borrow().clone()
    }

    /// Sends a request; `None` when `uri` is not a valid request target at all.
    fn send(&self, method: Method, uri: &str, ct: Option<&str>, body: Vec<u8>) -> Option<Reply> {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let req = req.body(Body::from(body)).ok()?;
        Some(self.rt.block_on(call(&self.router, req)))
    }

    /// Sends and checks the reply: below 500; an error is the envelope and changed nothing.
    fn check(&self, method: Method, uri: &str, ct: Option<&str>, body: Vec<u8>) -> TestCaseResult {
        let before = persist::snapshot(self.d.sim.device());
        let Some(r) = self.send(method, uri, ct, body) else {
            return Ok(());
        };
        let text = excerpt(&r.bytes);
        prop_assert!(r.status.as_u16() < 500, "{} {uri}: {text}", r.status);
        if r.status != StatusCode::OK {
            prop_assert!(
                r.content_type
                    .as_deref()
                    .is_some_and(|c| c.starts_with("application/json")),
                "{} {uri}: content type {:?}",
                r.status,
                r.content_type
            );
            let j = json_or_fail(&r.bytes, uri)?;
            prop_assert!(
                j.as_object().is_some_and(|o| o.len() == 2)
                    && j["error"].as_str().is_some_and(|e| !e.is_empty())
                    && j["code"] == 1,
                "{} {uri}: not the envelope: {text}",
                r.status
            );
            prop_assert!(
                persist::snapshot(self.d.sim.device()) == before,
                "{} {uri}: refused ({text}) but the stored data changed",
                r.status
            );
        }
        self.timers_stay_bounded()?;
        self.reset();
        Ok(())
    }

    /// The waits the configuration arms are bounded and can be waited on: a
    /// `push_request_period` near u64::MAX once panicked the push task. Each wait is
    /// started (its deadline computed) on both kinds of scheduler clock, then abandoned.
    fn timers_stay_bounded(&self) -> TestCaseResult {
        let Some(push) = acs_simulator::push::settings(self.d.sim.device()) else {
            return Ok(());
        };
        prop_assert!(push.period >= Duration::from_secs(1));
        prop_assert!(push.period <= Duration::from_secs(86_400), "{push:?}");
        prop_assert!(push.timeout <= Duration::from_secs(60), "{push:?}");
        let manual = Scheduler::manual();
        manual.advance(Duration::from_secs(1));
        for scheduler in [Scheduler::new(TimeMode::Scaled(1.0)), manual] {
            for wait in [push.period, push.timeout] {
                let started = self.rt.block_on(async {
                    tokio::time::timeout(Duration::ZERO, scheduler.sleep(wait)).await
                });
                prop_assert!(started.is_err(), "a {wait:?} wait ended at once");
            }
        }
        Ok(())
    }

    /// Back to the seeded tables, photos, configuration, credentials and a live session.
    fn reset(&self) {
        let device = self.d.sim.device();
        if persist::snapshot(device) != self.seeded {
            persist::restore(device, &self.seeded).expect("restored");
        }
        if !device.session_is_valid(&self.session()) {
            device.change_login("admin", "admin").expect("credentials");
            let s = self.rt.block_on(self.d.login());
            *self.session.borrow_mut() = s;
        }
    }
}

/// A valid request of every command, as the mutations' starting points.
fn templates() -> Vec<(&'static str, Json)> {
    let photo = base64::engine::general_purpose::STANDARD.encode(jpeg(2));
    vec![
        (
            "load_objects",
            json!({"object": "users", "where": {"users": {"id": 1}}, "fields": ["id", "name"],
                   "order": ["id"], "limit": 10, "offset": 0}),
        ),
        (
            "load_objects",
            json!({"object": "cards", "where": [{"object": "cards", "field": "user_id",
                   "operator": "IN", "value": [1, 2]}, {"field": "value", "operator": ">",
                   "value": 0, "connector": "AND"}], "join": "LEFT"}),
        ),
        (
            "create_objects",
            json!({"object": "users", "values": [{"id": 3, "name": "Cy", "registration": "R3"}]}),
        ),
        (
            "create_objects",
            json!({"object": "cards", "values": [{"value": 78, "user_id": 2}]}),
        ),
        (
            "modify_objects",
            json!({"object": "users", "values": {"name": "Ana B"}, "where": {"users": {"id": 1}}}),
        ),
        (
            "destroy_objects",
            json!({"object": "cards", "where": {"cards": {"value": 77}}}),
        ),
        (
            "create_or_modify_objects",
            json!({"object": "users", "values": [{"id": 1, "name": "Ana"}]}),
        ),
        (
            "set_configuration",
            json!({"general": {"online": "0"}, "monitor": {"hostname": "127.0.0.1", "port": "9"}}),
        ),
        (
            "set_configuration",
            json!({"push_server": {"push_remote_address": "127.0.0.1:9",
                   "push_request_period": "18446744073709551615", "push_request_timeout": "4000"},
                   "monitor": {"request_timeout": "18446744073709551615"},
                   "online_client": {"request_timeout": "-1", "max_request_attempts": "4294967295"}}),
        ),
        (
            "get_configuration",
            json!({"push_server": ["push_remote_address", "push_request_timeout", "push_request_period"]}),
        ),
        (
            "get_configuration",
            json!({"general": ["online"], "monitor": ["hostname", "port"]}),
        ),
        (
            "set_system_time",
            json!({"day": 10, "month": 11, "year": 2025, "hour": 11, "minute": 15, "second": 0}),
        ),
        (
            "execute_actions",
            json!({"actions": [{"action": "sec_box", "parameters": "id=65793, reason=3"}]}),
        ),
        ("user_destroy_image", json!({"user_ids": [1]})),
        ("user_get_image_list", json!({"user_ids": [1, 2]})),
        ("user_get_image", json!({"user_id": 1, "get_timestamp": 1})),
        ("user_list_images", json!({"get_timestamp": 1})),
        (
            "user_set_image_list",
            json!({"match": false, "user_images": [{"user_id": 2, "timestamp": 5, "image": photo}]}),
        ),
        ("login", json!({"login": "admin", "password": "admin"})),
        (
            "change_login",
            json!({"login": "admin", "password": "admin"}),
        ),
        ("logout", json!({})),
        ("session_is_valid", json!({})),
        ("is_first_web_login", json!({})),
        ("user_hash_password", json!({"password": "1234"})),
        (
            "remote_enroll",
            json!({"type": "card", "user_id": 1, "save": false, "sync": true, "auto": true,
                   "countdown": 5, "msg": "hold the card"}),
        ),
        ("cancel_remote_enroll", json!({})),
        ("enroller_state", json!({})),
        ("system_information", json!({})),
        ("get_language", json!({})),
        ("face_template_count_distinct", json!({})),
        ("reboot", json!({})),
        ("doors_state", json!({})),
        (
            "message_to_screen",
            json!({"message": "Welcome", "timeout": 5000}),
        ),
        (
            "buzzer_buzz",
            json!({"frequency": 4000, "duty_cycle": 50, "timeout": 1000}),
        ),
        ("alarm_status", json!({})),
        ("gpio_state", json!({"gpio": 1})),
        (
            "reset_to_factory_default",
            json!({"keep_network_info": true}),
        ),
        ("template_sync_init", json!({})),
        ("no_such_command", json!({})),
    ]
}

// ----- campaigns ------------------------------------------------------------------------

#[test]
fn json_bodies_of_every_command() {
    let f = Fixture::new();
    let templates = templates();
    // Each template as written first, so that what the valid requests arm (the push
    // schedule of a period near u64::MAX, for one) is checked on every run.
    for (command, doc) in &templates {
        let uri = format!("/{command}.fcgi?session={}", pct(&f.session()));
        let body = doc.to_string().into_bytes();
        if let Err(e) = f.check(Method::POST, &uri, Some("application/json"), body) {
            panic!("{command} as written: {e}");
        }
    }
    let strategy = (
        0..templates.len(),
        VOCABULARY.edits(),
        arb_byte_edit(),
        any::<bool>(),
    );
    campaign(
        "simulator/json-bodies",
        400,
        strategy,
        |(which, edits, bytes, with_session)| {
            let (command, doc) = &templates[which];
            let body = mutate(doc.clone(), &edits, &bytes);
            let uri = if with_session {
                format!("/{command}.fcgi?session={}", pct(&f.session()))
            } else {
                format!("/{command}.fcgi")
            };
            f.check(Method::POST, &uri, Some("application/json"), body)
        },
    );
}

/// A query value: numbers at the edges, broken escapes, separators, long and odd text.
fn arb_query_value() -> BoxedStrategy<String> {
    prop_oneof![
        prop::sample::select(vec![
            "0",
            "1",
            "2",
            "99",
            "-1",
            "1.5",
            "1e3",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775809",
            "18446744073709551616",
            "",
            " 1 ",
            "%",
            "%zz",
            "%2",
            "%00",
            "+",
            "a+b",
            "true",
            "null",
            "[1]",
            "{}",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,40}",
        ".{0,12}",
        (1usize..9_000).prop_map(|n| "9".repeat(n)),
    ]
    .boxed()
}

#[test]
fn query_strings_of_every_command() {
    let f = Fixture::new();
    let commands: Vec<&'static str> = templates().into_iter().map(|(c, _)| c).collect();
    let keys = vec![
        "session",
        "user_id",
        "match",
        "timestamp",
        "get_timestamp",
        "limit",
        "x",
        "",
    ];
    let strategy = (
        prop::sample::select(commands),
        prop::sample::select(vec![
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::OPTIONS,
        ]),
        0u8..4,
        prop::collection::vec(
            (prop::sample::select(keys), arb_query_value(), any::<bool>()),
            0..6,
        ),
        prop::collection::vec(any::<u8>(), 0..32),
    );
    campaign(
        "simulator/query-strings",
        400,
        strategy,
        |(command, method, session, pairs, body)| {
            let mut query = match session {
                0 => String::new(),
                1 => format!("session={}&", pct(&f.session())),
                2 => format!("session={}&", f.session()),
                _ => "session=garbage&".to_owned(),
            };
            for (k, v, escaped) in pairs {
                let v = if escaped { pct(&v) } else { v };
                query.push_str(&format!("{k}={v}&"));
            }
            let uri = format!("/{command}.fcgi?{query}");
            f.check(method, &uri, None, body)
        },
    );
}

/// Image bytes: valid photos, truncated, corrupted, with patched dimensions, other formats,
/// noise behind a JPEG signature, and sizes around the 2 MiB limit.
fn arb_image() -> BoxedStrategy<Vec<u8>> {
    let dims = prop::sample::select(vec![0u16, 1, 15, 159, 160, 1920, 4096, 4097, 65535]);
    prop_oneof![
        2 => (1u8..5).prop_map(jpeg),
        3 => (1u8..5, any::<prop::sample::Index>()).prop_map(|(v, i)| {
            let mut b = jpeg(v);
            let keep = i.index(b.len());
            b.truncate(keep);
            b
        }),
        3 => (1u8..5, prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8))
            .prop_map(|(v, flips)| {
                let mut b = jpeg(v);
                for (i, x) in flips {
                    let at = i.index(b.len());
                    b[at] ^= x | 1;
                }
                b
            }),
        2 => (dims.clone(), dims).prop_map(|(w, h)| with_dimensions(&jpeg(3), w, h)),
        1 => prop::collection::vec(any::<u8>(), 0..512).prop_map(|tail| {
            let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0];
            b.extend(tail);
            b
        }),
        1 => prop::collection::vec(any::<u8>(), 0..256).prop_map(|tail| {
            let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
            b.extend(tail);
            b
        }),
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => prop::sample::select(vec![
            acs_simulator::device::images::MAX_IMAGE_BYTES,
            acs_simulator::device::images::MAX_IMAGE_BYTES + 1,
        ])
        .prop_map(|n| {
            let mut b = jpeg(4);
            b.resize(n, 0);
            b
        }),
    ]
    .boxed()
}

/// A copy of `jpeg` whose frame header claims `w`×`h` pixels.
fn with_dimensions(jpeg: &[u8], w: u16, h: u16) -> Vec<u8> {
    let mut b = jpeg.to_vec();
    if let Some(at) = b
        .windows(2)
        .position(|p| p[0] == 0xFF && matches!(p[1], 0xC0..=0xC2))
    {
        b[at + 5..at + 7].copy_from_slice(&h.to_be_bytes());
        b[at + 7..at + 9].copy_from_slice(&w.to_be_bytes());
    }
    b
}

#[test]
fn image_bytes() {
    let f = Fixture::new();
    let strategy = (
        0u8..3,
        arb_image(),
        prop::sample::select(vec!["1", "2", "99", "-1", "x"]),
        prop::sample::select(vec!["0", "1", "", "2"]),
    );
    campaign(
        "simulator/images",
        200,
        strategy,
        |(how, image, user, matching)| {
            let s = pct(&f.session());
            match how {
            0 => f.check(
                Method::POST,
                &format!(
                    "/user_set_image.fcgi?session={s}&user_id={user}&match={matching}&timestamp=7"
                ),
                Some("application/octet-stream"),
                image,
            ),
            1 => f.check(
                Method::POST,
                &format!("/user_test_image.fcgi?session={s}"),
                Some("application/octet-stream"),
                image,
            ),
            _ => {
                let b64 = base64::engine::general_purpose::STANDARD.encode(&image);
                let body = json!({"match": matching == "1", "user_images": [
                    {"user_id": user.parse::<i64>().unwrap_or(2), "timestamp": 9, "image": b64}]});
                f.check(
                    Method::POST,
                    &format!("/user_set_image_list.fcgi?session={s}"),
                    Some("application/json"),
                    body.to_string().into_bytes(),
                )
            }
        }
        },
    );
}

#[test]
fn control_api() {
    // A device of its own: faults and policies set here would change what the other
    // campaigns' device answers.
    let f = Fixture::new();
    let paths = vec![
        "present",
        "policy",
        "cancel_enroll",
        "state",
        "clock/advance",
        "faults",
        "callback_policy",
        "power",
        "nope",
    ];
    let templates = vec![
        json!({"card": 77, "queue": true}),
        json!({"face_of": 1}),
        json!({"policy": "absent"}),
        json!({"seconds": 5}),
        json!({"latency_ms": 1}),
        json!({"policy": "firmware"}),
        json!({"on": true}),
    ];
    let strategy = (
        prop::sample::select(paths),
        prop::sample::select(templates),
        VOCABULARY.edits(),
        arb_byte_edit(),
    );
    campaign(
        "simulator/control",
        200,
        strategy,
        |(path, doc, edits, bytes)| {
            let body = mutate(doc, &edits, &bytes);
            let Some(r) = f.send(Method::POST, &format!("/_sim/{path}"), None, body) else {
                return Ok(());
            };
            let text = excerpt(&r.bytes);
            prop_assert!(r.status.as_u16() < 500, "{} /_sim/{path}: {text}", r.status);
            if r.status != StatusCode::OK {
                let j = json_or_fail(&r.bytes, &format!("/_sim/{path}"))?;
                prop_assert!(j["error"].is_string() && j["code"] == 1, "{text}");
            }
            f.d.sim.terminal().faults.clear();
            Ok(())
        },
    );
}

/// An independent reading of docs/device-api.md §7.3: whether a reply is one the firmware
/// accepts.
fn acceptable(body: &[u8]) -> Option<i64> {
    let j: Json = serde_json::from_slice(body).ok()?;
    let r = j.get("result")?.as_object()?;
    let event = r
        .get("event")?
        .as_i64()
        .filter(|e| i32::try_from(*e).is_ok())?;
    let opt = |k: &str, ok: fn(&Json) -> bool| r.get(k).is_none_or(|v| v.is_null() || ok(v));
    // The firmware's user ids are signed 64-bit: a larger reply value is refused.
    let int64 = |v: &Json| v.is_i64();
    let int = |v: &Json| v.as_i64().is_some_and(|n| i32::try_from(n).is_ok());
    let ok = opt("user_id", int64)
        && opt("user_name", Json::is_string)
        && opt("portal_id", int)
        && opt("message", Json::is_string)
        && opt("actions", |a| {
            a.as_array().is_some_and(|a| {
                a.iter().all(|x| {
                    x.get("action").is_some_and(Json::is_string)
                        && x.get("parameters")
                            .is_none_or(|p| p.is_null() || p.is_string())
                })
            })
        });
    ok.then_some(event)
}

#[test]
fn online_server_replies() {
    let template = json!({"result": {"event": 7, "user_id": 1000, "user_name": "John Doe",
        "user_image": false, "portal_id": 1, "message": "Welcome",
        "actions": [{"action": "sec_box", "parameters": "id=65793, reason=1"}]}});
    let strategy = prop_oneof![
        8 => (VOCABULARY.edits(), arb_byte_edit()).prop_map(move |(e, b)| mutate(template.clone(), &e, &b)),
        1 => prop::collection::vec(any::<u8>(), 0..128),
        1 => "[ -~]{0,64}".prop_map(String::into_bytes),
    ];
    campaign("simulator/online-replies", 2_000, strategy, |body| {
        let parsed = acs_simulator::online::parse_result(&body);
        let expected = acceptable(&body);
        match (&parsed, expected) {
            (Ok(r), Some(event)) => prop_assert_eq!(r.event, event),
            (Err(e), None) => prop_assert!(!e.is_empty()),
            _ => prop_assert!(
                false,
                "parser {:?} but expected {:?} for {}",
                parsed,
                expected,
                String::from_utf8_lossy(&body)
            ),
        }
        Ok(())
    });
}

// ----- limits ---------------------------------------------------------------------------

#[tokio::test]
async fn rows_per_request_are_limited_with_a_clear_error() {
    use acs_simulator::device::MAX_ROWS_PER_REQUEST;
    let d = TestDevice::idface();
    let s = d.login().await;
    let users = |n: usize| -> Vec<Json> {
        (1..=n)
            .map(|i| json!({"id": i, "name": format!("U{i}")}))
            .collect()
    };
    for command in ["create_objects", "create_or_modify_objects"] {
        let r = d
            .post(
                command,
                Some(&s),
                &json!({"object": "users", "values": users(MAX_ROWS_PER_REQUEST + 1)}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{command}");
        assert_eq!(
            r.json(),
            json!({"error": format!("Too many values (at most {MAX_ROWS_PER_REQUEST} per request)"), "code": 1})
        );
    }
    assert!(d.sim.device().rows("users").expect("users").is_empty());
    let r = d
        .post(
            "create_objects",
            Some(&s),
            &json!({"object": "users", "values": users(MAX_ROWS_PER_REQUEST)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        d.sim.device().rows("users").expect("users").len(),
        MAX_ROWS_PER_REQUEST
    );
}

#[tokio::test]
async fn image_dimensions_beyond_the_limit_are_refused() {
    let d = TestDevice::idface();
    let s = d.login().await;
    d.sim
        .device()
        .seed_rows(
            "users",
            &[json!({"id": 1, "name": "Ana"})
                .as_object()
                .cloned()
                .expect("object")],
        )
        .expect("seeded");
    let huge = with_dimensions(&jpeg(1), 65_535, 65_535);
    let r = d
        .send(
            Method::POST,
            &format!(
                "/user_set_image.fcgi?session={}&user_id=1&match=0&timestamp=1",
                pct(&s)
            ),
            &[("content-type", "application/octet-stream")],
            huge,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("Image too large")),
        "{}",
        r.json()
    );
    assert!(d.sim.device().list_images().is_empty());
}
