//! Webhooks end to end against a local receiver (127.0.0.1:0) that verifies every
//! signature (HMAC-SHA256 of `"{timestamp}.{body}"`, a five-minute replay window) and
//! processes each event id once: endpoints and their checks, delivery with the stable
//! event id, retries after the receiver fails, automatic disabling with the
//! `webhook.disabled` event, secret rotation, and the real `acs-core serve` killed with
//! SIGKILL while access events are produced – every committed event reaches the receiver,
//! none is processed twice.
//!
//! The SIGKILL test kills 3 times; `ACS_HOOK_KILLS=30` for a longer run.
//!
//! The in-process tests run the outbox's delivery task on the manual clock and move the
//! clock past each backoff instead of waiting for it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use acs_core::Core;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value as Json, json};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::api_process::{serve, tenant};
use crate::api_support::{Api, venue};
use crate::bounded::{PATIENCE, bounded, http_client};

/// One request the receiver got, as it judged it.
#[derive(Debug, Clone)]
struct Delivery {
    event_id: String,
    signature: String,
    timestamp: i64,
    body: Json,
    /// The status it answered.
    status: u16,
    /// A signature made with one of its secrets, within the replay window.
    verified: bool,
    /// An event id it had already processed (answered 200, not processed again).
    duplicate: bool,
}

/// The receiver's state: the secrets it accepts, failures to answer, processed events.
struct ReceiverState {
    secrets: Mutex<Vec<String>>,
    /// Requests still to fail with 500 (`usize::MAX`: every one).
    fail: AtomicUsize,
    /// Event id → body, once processed.
    processed: Mutex<HashMap<String, Json>>,
    /// Requests for an event already processed (acknowledged, not processed again).
    duplicates: AtomicUsize,
    /// Unix seconds now, for the replay window.
    now: Box<dyn Fn() -> i64 + Send + Sync>,
    report: mpsc::UnboundedSender<Delivery>,
}

/// A local webhook receiver.
struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
    deliveries: mpsc::UnboundedReceiver<Delivery>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (text.len() % 2 == 0)
        .then(|| {
            (0..text.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten()
}

/// Whether one `v1=` value of `signature` is the HMAC-SHA256 of `"{timestamp}.{body}"`
/// under `secret` (checked in constant time).
fn signed_with(secret: &str, signature: &str, timestamp: i64, body: &[u8]) -> bool {
    signature
        .split(' ')
        .filter_map(|v| v.strip_prefix("v1=").and_then(unhex))
        .any(|expected| {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
            mac.update(format!("{timestamp}.").as_bytes());
            mac.update(body);
            mac.verify_slice(&expected).is_ok()
        })
}

async fn receive(
    axum::extract::State(state): axum::extract::State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let event_id = header("acs-webhook-id");
    let signature = header("acs-webhook-signature");
    let timestamp: i64 = header("acs-webhook-timestamp").parse().unwrap_or(0);
    let fresh = ((state.now)() - timestamp).abs() <= 300;
    let verified = fresh
        && state
            .secrets
            .lock()
            .expect("secrets")
            .iter()
            .any(|s| signed_with(s, &signature, timestamp, &body));
    let json: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
    let failing = state
        .fail
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
            0 => None,
            usize::MAX => Some(usize::MAX),
            n => Some(n - 1),
        })
        .is_ok();
    let (status, duplicate) = if failing {
        (StatusCode::INTERNAL_SERVER_ERROR, false)
    } else if !verified || json["id"] != event_id.as_str() {
        (StatusCode::UNAUTHORIZED, false)
    } else {
        // The idempotency check: an event id seen before is acknowledged, not processed.
        let mut processed = state.processed.lock().expect("processed");
        let duplicate = processed.contains_key(&event_id);
        if duplicate {
            state.duplicates.fetch_add(1, Ordering::SeqCst);
        } else {
            processed.insert(event_id.clone(), json.clone());
        }
        (StatusCode::OK, duplicate)
    };
    let _ = state.report.send(Delivery {
        event_id,
        signature,
        timestamp,
        body: json,
        status: status.as_u16(),
        verified,
        duplicate,
    });
    status
}

impl Receiver {
    /// A receiver accepting `secrets`, judging timestamps against `now`.
    async fn start(now: impl Fn() -> i64 + Send + Sync + 'static) -> Receiver {
        let (report, deliveries) = mpsc::unbounded_channel();
        let state = Arc::new(ReceiverState {
            secrets: Mutex::new(Vec::new()),
            fail: AtomicUsize::new(0),
            processed: Mutex::default(),
            duplicates: AtomicUsize::new(0),
            now: Box::new(now),
            report,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Receiver {
            url,
            state,
            deliveries,
            _stop: stop,
        }
    }

    /// A receiver on `core`'s clock.
    async fn on_clock_of(core: &Core) -> Receiver {
        let core = core.clone();
        Receiver::start(move || core.now().as_second()).await
    }

    fn accept(&self, secrets: &[&str]) {
        *self.state.secrets.lock().expect("secrets") =
            secrets.iter().map(|s| (*s).to_owned()).collect();
    }

    fn fail(&self, requests: usize) {
        self.state.fail.store(requests, Ordering::SeqCst);
    }

    /// The next request.
    async fn next(&mut self) -> Delivery {
        bounded("a webhook request", self.deliveries.recv())
            .await
            .expect("the receiver runs")
    }

    /// The processed events: event id → body.
    fn processed(&self) -> HashMap<String, Json> {
        self.state.processed.lock().expect("processed").clone()
    }
}

/// Runs the outbox's delivery task for `api` until dropped.
struct DeliveryTask(tokio::task::JoinHandle<()>);

impl DeliveryTask {
    fn start(api: &Api) -> DeliveryTask {
        let dir = std::env::temp_dir().join(format!("acs-core-hooks-{}", std::process::id()));
        DeliveryTask(tokio::spawn(acs_core::notify::delivery::run(
            api.core.clone(),
            acs_core::notify::Senders::all(Arc::new(acs_core::notify::file::FileSender::new(&dir))),
        )))
    }
}

impl Drop for DeliveryTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Moves `api`'s clock past any backoff.
fn later(api: &Api) {
    let now = api.core.now();
    api.core.clock().set(now + SignedDuration::from_hours(2));
}

/// Creates an endpoint; its id and secret.
async fn endpoint(api: &Api, url: &str, types: &[&str]) -> (u64, String) {
    let reply = api
        .post("/v1/webhooks", json!({"url": url, "event_types": types}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    let secret = reply.json["secret"].as_str().expect("secret").to_owned();
    (reply.id(), secret)
}

/// A denied decision at `door` (an unknown card); the event as the API answered it.
async fn denied(api: &Api, door: u64, card: u32) -> Json {
    let reply = api
        .post(
            "/v1/decisions",
            json!({"door_id": door, "factors": [{"card": {"facility_code": 1, "card_number": card}}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["type"], "access.denied");
    reply.json
}

/// The delivery log once it holds `n` attempts: the receiver's answer reaches the test
/// before the core has recorded it, so the log is read again until it has.
async fn deliveries_once(api: &Api, endpoint: u64, n: usize) -> Vec<Json> {
    bounded(format!("{n} attempts in the delivery log"), async {
        loop {
            let log = deliveries(api, endpoint).await;
            if log.len() >= n {
                return log;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
}

async fn deliveries(api: &Api, endpoint: u64) -> Vec<Json> {
    let reply = api
        .get(&format!("/v1/webhooks/{endpoint}/deliveries?limit=500"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn endpoints_are_checked_and_kept_per_tenant() {
    let api = Api::start().await;
    for (body, field) in [
        (
            json!({"url": "ftp://example.com", "event_types": ["access.granted"]}),
            "url",
        ),
        (
            json!({"url": "https://", "event_types": ["access.granted"]}),
            "url",
        ),
        (
            json!({"url": "https://example.com", "event_types": ["access.granted", "door.exploded"]}),
            "event_types[1]",
        ),
        (
            json!({"url": "https://example.com", "event_types": []}),
            "event_types",
        ),
        (json!({"event_types": ["access.granted"]}), "url"),
    ] {
        api.post("/v1/webhooks", body)
            .await
            .problem(422, Some(field));
    }
    let created = api
        .post(
            "/v1/webhooks",
            json!({"url": "https://hooks.example.com/acs", "description": "SIEM",
                   "event_types": ["access.denied", "access.granted", "access.denied"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    let id = created.id();
    let secret = created.json["secret"].as_str().expect("secret");
    assert!(
        secret.starts_with("whsec_") && secret.len() > 30,
        "{secret}"
    );
    assert_eq!(
        created.json["event_types"],
        json!(["access.denied", "access.granted"])
    );
    assert_eq!(created.json["status"], "enabled");

    let shown = api.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(shown.status, 200);
    assert!(
        shown.json.get("secret").is_none(),
        "the secret is shown once"
    );
    assert_eq!(shown.json["description"], "SIEM");
    let listed = api.get("/v1/webhooks").await;
    assert_eq!(listed.json["items"].as_array().map(Vec::len), Some(1));

    let patched = api
        .patch(
            &format!("/v1/webhooks/{id}"),
            json!({"event_types": ["webhook.disabled"]}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.json);
    assert_eq!(patched.json["event_types"], json!(["webhook.disabled"]));
    api.patch(&format!("/v1/webhooks/{id}"), json!({"status": "paused"}))
        .await
        .problem(422, Some("status"));
    api.post(
        &format!("/v1/webhooks/{id}/rotate-secret"),
        json!({"keep_previous_seconds": -1}),
    )
    .await
    .problem(422, Some("keep_previous_seconds"));

    // Another tenant sees none of it.
    let other = api.other_tenant("other").await;
    for (method, path) in [
        ("GET", format!("/v1/webhooks/{id}")),
        ("DELETE", format!("/v1/webhooks/{id}")),
        ("GET", format!("/v1/webhooks/{id}/deliveries")),
        ("POST", format!("/v1/webhooks/{id}/rotate-secret")),
    ] {
        let body = (method == "POST").then(|| json!({}));
        api.send_as(Some(&other), method, &path, body.as_ref(), None)
            .await
            .problem(404, None);
    }
    let theirs = api
        .send_as(Some(&other), "GET", "/v1/webhooks", None, None)
        .await;
    assert_eq!(theirs.json["items"], json!([]));

    // A create repeated under one Idempotency-Key answers the same endpoint, secret
    // included; the key with another request is refused.
    let body = json!({"url": "https://hooks.example.com/again", "event_types": ["access.granted"]});
    let first = api
        .send_as(
            Some(&api.key),
            "POST",
            "/v1/webhooks",
            Some(&body),
            Some("hook-1"),
        )
        .await;
    let again = api
        .send_as(
            Some(&api.key),
            "POST",
            "/v1/webhooks",
            Some(&body),
            Some("hook-1"),
        )
        .await;
    assert_eq!((first.status, again.status), (201, 201), "{}", again.json);
    assert_eq!(first.json["id"], again.json["id"]);
    assert_eq!(first.json["secret"], again.json["secret"]);
    let other_body =
        json!({"url": "https://hooks.example.com/else", "event_types": ["access.granted"]});
    api.send_as(
        Some(&api.key),
        "POST",
        "/v1/webhooks",
        Some(&other_body),
        Some("hook-1"),
    )
    .await
    .problem(422, None);
    assert_eq!(
        api.get("/v1/webhooks").await.json["items"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(
        api.delete(&format!("/v1/webhooks/{}", first.id()))
            .await
            .status,
        204
    );

    assert_eq!(api.delete(&format!("/v1/webhooks/{id}")).await.status, 204);
    api.get(&format!("/v1/webhooks/{id}"))
        .await
        .problem(404, None);
}

#[tokio::test]
async fn access_events_reach_the_receiver_signed_with_a_stable_id() {
    let api = Api::start().await;
    let (_, _, door, _) = venue(&api).await;
    // An event before any endpoint exists goes nowhere.
    let early = denied(&api, door, 99).await;
    let mut receiver = Receiver::on_clock_of(&api.core).await;
    let (denials, secret) = endpoint(&api, &receiver.url, &["access.denied"]).await;
    // Subscribed to grants only: hears nothing of denials.
    let (grants, _) = endpoint(&api, &receiver.url, &["access.granted"]).await;
    receiver.accept(&[&secret]);
    let _task = DeliveryTask::start(&api);

    let mut sent = Vec::new();
    for card in 1..=3 {
        sent.push(denied(&api, door, card).await);
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        let d = receiver.next().await;
        assert!(d.verified, "{d:?}");
        assert_eq!((d.status, d.duplicate), (200, false));
        assert!(d.event_id.starts_with("evt_"), "{d:?}");
        assert_eq!(d.body["id"], d.event_id.as_str());
        assert_eq!(d.body["type"], "access.denied");
        assert_eq!(d.timestamp, api.core.now().as_second());
        assert_eq!(
            d.signature.matches("v1=").count(),
            1,
            "one secret signs: {d:?}"
        );
        got.push(d);
    }
    // The events are the access events the API lists, with their ids.
    let listed = api.get("/v1/access-events").await.json["items"]
        .as_array()
        .expect("items")
        .clone();
    let listed: BTreeMap<u64, Json> = listed
        .into_iter()
        .map(|e| (e["id"].as_u64().expect("id"), e))
        .collect();
    for d in &got {
        let data = &d.body["data"];
        let id = data["access_event_id"].as_u64().expect("access_event_id");
        assert_eq!(listed[&id]["occurred_at"], data["occurred_at"], "{data}");
        assert_eq!(data["reason_code"], listed[&id]["reason_code"]);
        assert_eq!(d.body["created_at"], data["occurred_at"]);
    }
    assert_eq!(listed.len(), 4, "{listed:?}");
    let first = listed.values().next().expect("the early event");
    assert_eq!(first["door_id"], early["door_id"]);
    assert!(
        got.iter()
            .all(|d| d.body["data"]["access_event_id"] != first["id"]),
        "the event before the endpoint was not sent"
    );
    let ids: BTreeSet<_> = got.iter().map(|d| d.event_id.clone()).collect();
    assert_eq!(ids.len(), 3, "one id per event");
    assert_eq!(receiver.processed().len(), 3);

    // The delivery log says so; the other endpoint got nothing.
    let log = deliveries_once(&api, denials, 3).await;
    assert_eq!(log.len(), 3, "{log:?}");
    for entry in &log {
        assert_eq!(entry["outcome"], "delivered");
        assert_eq!(entry["status_code"], 200);
        assert_eq!(entry["attempt"], 1);
        assert!(ids.contains(entry["event_id"].as_str().expect("event id")));
    }
    assert!(deliveries(&api, grants).await.is_empty());
    let page = api
        .get(&format!("/v1/webhooks/{denials}/deliveries?limit=2"))
        .await;
    assert_eq!(page.json["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(page.json["next_after"], log[1]["id"]);
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_the_same_event_id() {
    let api = Api::start().await;
    let (_, _, door, _) = venue(&api).await;
    let mut receiver = Receiver::on_clock_of(&api.core).await;
    let (hook, secret) = endpoint(&api, &receiver.url, &["access.denied"]).await;
    receiver.accept(&[&secret]);
    receiver.fail(2);
    let _task = DeliveryTask::start(&api);
    denied(&api, door, 7).await;

    let first = receiver.next().await;
    assert_eq!(first.status, 500);
    later(&api);
    let second = receiver.next().await;
    assert_eq!(second.status, 500);
    later(&api);
    let third = receiver.next().await;
    assert_eq!((third.status, third.duplicate), (200, false));
    assert!(third.verified);
    assert_eq!(first.event_id, second.event_id);
    assert_eq!(second.event_id, third.event_id);
    assert_eq!(first.body, third.body, "the same body on every attempt");
    assert!(
        third.timestamp > first.timestamp,
        "each attempt signed anew"
    );

    let log = deliveries_once(&api, hook, 3).await;
    let summary: Vec<(Json, Json, Json)> = log
        .iter()
        .map(|e| {
            (
                e["attempt"].clone(),
                e["outcome"].clone(),
                e["status_code"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (json!(1), json!("failed"), json!(500)),
            (json!(2), json!("failed"), json!(500)),
            (json!(3), json!("delivered"), json!(200)),
        ]
    );
    assert!(log[0]["error"].as_str().is_some_and(|e| e.contains("500")));
    assert!(log.iter().all(|e| e["event_id"] == first.event_id.as_str()));
    // A success resets the endpoint's count of failed messages.
    assert_eq!(
        api.get(&format!("/v1/webhooks/{hook}")).await.json["failed_messages"],
        0
    );
}

#[tokio::test]
async fn an_unreachable_receiver_is_a_failed_attempt_in_the_log() {
    use acs_core::notify::delivery::deliver_due;

    let api = Api::start().await;
    let (_, _, door, _) = venue(&api).await;
    // The discard port on loopback: nothing answers.
    let (hook, _) = endpoint(&api, "http://127.0.0.1:9/hook", &["access.denied"]).await;
    denied(&api, door, 5).await;
    let senders = acs_core::notify::Senders::all(Arc::new(
        acs_core::notify::file::FileSender::new(std::env::temp_dir().join("acs-hooks-none")),
    ));
    assert_eq!(deliver_due(&api.core, &senders).await.expect("delivery"), 1);
    assert_eq!(
        deliver_due(&api.core, &senders).await.expect("delivery"),
        0,
        "backing off"
    );
    let log = deliveries(&api, hook).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["outcome"], "failed");
    assert!(log[0]["status_code"].is_null());
    assert!(
        log[0]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("could not connect")),
        "{log:?}"
    );
    let outbox = api.get("/v1/outbox").await.json;
    let message = &outbox["items"][0];
    assert_eq!(message["channel"], "webhook");
    assert_eq!(message["status"], "pending");
    assert_eq!(message["recipient"], hook.to_string());
    assert!(message.get("body").is_none());
}

#[tokio::test]
async fn an_endpoint_failing_every_attempt_is_disabled_and_the_others_hear_of_it() {
    use acs_core::domain::webhook::DISABLE_AFTER_FAILED_MESSAGES;
    use acs_core::notify::delivery::MAX_ATTEMPTS;

    let api = Api::start().await;
    let (_, _, door, _) = venue(&api).await;
    let mut broken = Receiver::on_clock_of(&api.core).await;
    let mut watcher = Receiver::on_clock_of(&api.core).await;
    let (failing, secret) = endpoint(&api, &broken.url, &["access.denied"]).await;
    broken.accept(&[&secret]);
    broken.fail(usize::MAX);
    let (watching, watcher_secret) = endpoint(&api, &watcher.url, &["webhook.disabled"]).await;
    watcher.accept(&[&watcher_secret]);
    let _task = DeliveryTask::start(&api);

    let messages = usize::try_from(DISABLE_AFTER_FAILED_MESSAGES).expect("count");
    for card in 0..messages {
        denied(&api, door, u32::try_from(card).expect("card") + 100).await;
    }
    // Every attempt of every message fails; the clock skips each backoff.
    for round in 1..=MAX_ATTEMPTS {
        let mut ids = BTreeSet::new();
        for _ in 0..messages {
            let d = broken.next().await;
            assert_eq!(d.status, 500, "round {round}");
            ids.insert(d.event_id);
        }
        assert_eq!(ids.len(), messages, "round {round}: each message once");
        if round < MAX_ATTEMPTS {
            // Not disabled before its last message was given up.
            let state = api.get(&format!("/v1/webhooks/{failing}")).await.json;
            assert_eq!(state["status"], "enabled", "round {round}: {state}");
            later(&api);
        }
    }
    let news = watcher.next().await;
    assert!(news.verified, "{news:?}");
    assert_eq!(news.body["type"], "webhook.disabled");
    assert_eq!(news.body["data"]["webhook_id"], failing);
    assert!(
        news.body["id"]
            .as_str()
            .is_some_and(|i| i.starts_with("evt_"))
    );

    let state = api.get(&format!("/v1/webhooks/{failing}")).await.json;
    assert_eq!(state["status"], "disabled", "{state}");
    assert_eq!(state["failed_messages"], DISABLE_AFTER_FAILED_MESSAGES);
    assert!(state["disabled_reason"].is_string());
    let log = deliveries(&api, failing).await;
    assert_eq!(
        log.len(),
        messages * usize::try_from(MAX_ATTEMPTS).expect("n")
    );
    assert_eq!(
        log.iter().filter(|e| e["outcome"] == "given_up").count(),
        messages
    );
    assert_eq!(
        api.get(&format!("/v1/webhooks/{watching}")).await.json["status"],
        "enabled"
    );

    // Disabled: a new event is not sent to it; re-enabled (and fixed), it is.
    let before = api.get("/v1/outbox?limit=500").await.json["items"]
        .as_array()
        .map_or(0, Vec::len);
    denied(&api, door, 999).await;
    let after = api.get("/v1/outbox?limit=500").await.json["items"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(after, before, "no message for a disabled endpoint");
    let enabled = api
        .patch(
            &format!("/v1/webhooks/{failing}"),
            json!({"status": "enabled"}),
        )
        .await;
    assert_eq!(enabled.json["status"], "enabled", "{}", enabled.json);
    assert_eq!(enabled.json["failed_messages"], 0);
    broken.fail(0);
    let event = denied(&api, door, 1000).await;
    let d = broken.next().await;
    assert_eq!((d.status, d.verified), (200, true));
    assert_eq!(d.body["data"]["occurred_at"], event["occurred_at"]);
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_until_it_expires() {
    let api = Api::start().await;
    let (_, _, door, _) = venue(&api).await;
    let mut receiver = Receiver::on_clock_of(&api.core).await;
    let (hook, old) = endpoint(&api, &receiver.url, &["access.denied"]).await;
    receiver.accept(&[&old]);
    let _task = DeliveryTask::start(&api);

    let rotated = api
        .post(&format!("/v1/webhooks/{hook}/rotate-secret"), json!({}))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.json);
    let new = rotated.json["secret"].as_str().expect("secret").to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    assert!(rotated.json["previous_secret_expires_at"].is_string());

    // A receiver still on the old secret verifies; so does one already on the new one.
    denied(&api, door, 1).await;
    let d = receiver.next().await;
    assert!(d.verified, "{d:?}");
    let body = serde_json::to_vec(&d.body).expect("body");
    assert_eq!(d.signature.matches("v1=").count(), 2, "{d:?}");
    assert!(signed_with(&new, &d.signature, d.timestamp, &body));
    assert!(signed_with(&old, &d.signature, d.timestamp, &body));

    // Rotated again with no overlap: only the newest secret signs.
    let again = api
        .post(
            &format!("/v1/webhooks/{hook}/rotate-secret"),
            json!({"keep_previous_seconds": 0}),
        )
        .await;
    let newest = again.json["secret"].as_str().expect("secret").to_owned();
    assert!(again.json["previous_secret_expires_at"].is_null());
    receiver.accept(&[&newest]);
    denied(&api, door, 2).await;
    let d = receiver.next().await;
    assert!(d.verified, "{d:?}");
    let body = serde_json::to_vec(&d.body).expect("body");
    assert_eq!(d.signature.matches("v1=").count(), 1);
    assert!(!signed_with(&new, &d.signature, d.timestamp, &body));
    assert!(!signed_with(&old, &d.signature, d.timestamp, &body));
}

/// Every access event the API lists (after a restart): id → event.
async fn listed_events(client: &reqwest::Client, base: &str, key: &str) -> BTreeMap<u64, Json> {
    let mut events = BTreeMap::new();
    let mut after = 0;
    loop {
        let page: Json = client
            .get(format!("{base}/v1/access-events?limit=500&after={after}"))
            .bearer_auth(key)
            .send()
            .await
            .expect("events")
            .json()
            .await
            .expect("json");
        for e in page["items"].as_array().expect("items") {
            events.insert(e["id"].as_u64().expect("id"), e.clone());
        }
        match page["next_after"].as_u64() {
            Some(next) => after = next,
            None => return events,
        }
    }
}

/// Posts denied decisions (each at its own second, `from` on) until the API stops
/// answering; records the `occurred_at` of each acknowledged one.
async fn produce(
    client: reqwest::Client,
    base: String,
    key: String,
    door: u64,
    from: i64,
    acknowledged: Arc<Mutex<Vec<String>>>,
) {
    for n in from.. {
        let at = Timestamp::from_second(1_780_000_000 + n).expect("instant");
        let sent = client
            .post(format!("{base}/v1/decisions"))
            .bearer_auth(&key)
            .json(&json!({"door_id": door, "at": at.to_string(),
                          "factors": [{"card": {"facility_code": 9, "card_number": n}}]}))
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == 200 => {
                acknowledged.lock().expect("ack").push(at.to_string());
            }
            _ => return,
        }
    }
}

#[tokio::test]
async fn a_sigkilled_core_loses_no_event_and_the_receiver_processes_each_once() {
    // `ACS_HOOK_KILLS` for a longer run (RELIABILITY.md).
    let kills: usize = std::env::var("ACS_HOOK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = std::env::temp_dir().join(format!("acs-core-hooks-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("acs.db");
    let key = tenant(&db);
    let (mut child, mut base) = serve(&db, &dir.join("serve-0.log"));
    let client = http_client();
    let mut receiver = Receiver::start(|| Timestamp::now().as_second()).await;

    let post = |base: String, path: &'static str, body: Json| {
        let (client, key) = (client.clone(), key.clone());
        async move {
            let r = client
                .post(format!("{base}{path}"))
                .bearer_auth(&key)
                .json(&body)
                .send()
                .await
                .expect("reply");
            assert_eq!(r.status(), 201, "{path}");
            r.json::<Json>().await.expect("json")
        }
    };
    let site = post(
        base.clone(),
        "/v1/sites",
        json!({"name": "S", "timezone": "UTC"}),
    )
    .await;
    let facility = post(
        base.clone(),
        "/v1/facilities",
        json!({"site_id": site["id"], "name": "F"}),
    )
    .await;
    let door = post(
        base.clone(),
        "/v1/doors",
        json!({"facility_id": facility["id"], "name": "D",
               "supported_auth_types": {"in": ["card"], "out": ["card"]}}),
    )
    .await["id"]
        .as_u64()
        .expect("door");
    let hook = post(
        base.clone(),
        "/v1/webhooks",
        json!({"url": receiver.url, "event_types": ["access.granted", "access.denied"]}),
    )
    .await;
    receiver.accept(&[hook["secret"].as_str().expect("secret")]);

    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut next = 0;
    let mut delivered = 0;
    for life in 1..=kills {
        let producer = tokio::spawn(produce(
            client.clone(),
            base.clone(),
            key.clone(),
            door,
            next,
            acknowledged.clone(),
        ));
        // Killed while events are being produced and delivered: after some more
        // deliveries reached the receiver in this life.
        let target = delivered + 15;
        while delivered < target {
            receiver.next().await;
            delivered += 1;
        }
        child.kill();
        bounded("the producer to stop after the kill", producer)
            .await
            .expect("producer");
        next = 1000 * i64::try_from(life).expect("life");
        let (again, url) = serve(&db, &dir.join(format!("serve-{life}.log")));
        child = again;
        base = url;
    }

    // The last life: no more events; every committed one is delivered.
    let events = listed_events(&client, &base, &key).await;
    let acknowledged = acknowledged.lock().expect("ack").clone();
    assert!(
        acknowledged.len() >= kills * 15,
        "{} acknowledged",
        acknowledged.len()
    );
    let committed: BTreeSet<u64> = events.keys().copied().collect();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let seen: BTreeSet<u64> = receiver
            .processed()
            .values()
            .filter_map(|b| b["data"]["access_event_id"].as_u64())
            .collect();
        if seen == committed {
            break;
        }
        let d = tokio::time::timeout_at(deadline, receiver.deliveries.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "events never delivered: {:?}",
                    committed.difference(&seen).collect::<Vec<_>>()
                )
            })
            .expect("receiver");
        assert!(d.verified, "{d:?}");
    }
    drop(child);

    let processed = receiver.processed();
    // Each committed event processed once: one event id per access event, no other.
    let mut by_access_event: BTreeMap<u64, Vec<&String>> = BTreeMap::new();
    for (id, body) in &processed {
        let access_event = body["data"]["access_event_id"].as_u64().expect("id");
        by_access_event.entry(access_event).or_default().push(id);
    }
    assert_eq!(
        by_access_event.keys().copied().collect::<BTreeSet<_>>(),
        committed,
        "exactly the committed events"
    );
    assert!(
        by_access_event.values().all(|ids| ids.len() == 1),
        "an access event went out under two event ids: {by_access_event:?}"
    );
    // Every acknowledged decision is among them.
    let delivered_at: BTreeSet<String> = processed
        .values()
        .filter_map(|b| b["data"]["occurred_at"].as_str().map(str::to_owned))
        .collect();
    for at in &acknowledged {
        assert!(delivered_at.contains(at), "acknowledged event at {at} lost");
    }
    eprintln!(
        "{} events committed, {} acknowledged, {} redelivered after a kill and recognised",
        committed.len(),
        acknowledged.len(),
        receiver.state.duplicates.load(Ordering::SeqCst)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_signature_is_the_documented_hmac() {
    // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
    let header = acs_core::notify::signature::header(&["whsec_test"], 1_700_000_000, br#"{"a":1}"#);
    assert_eq!(
        header,
        "v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
    );
    assert!(signed_with(
        "whsec_test",
        &header,
        1_700_000_000,
        br#"{"a":1}"#
    ));
    let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_test").expect("key");
    mac.update(br#"1700000000.{"a":1}"#);
    assert_eq!(format!("v1={}", hex(&mac.finalize().into_bytes())), header);
}
