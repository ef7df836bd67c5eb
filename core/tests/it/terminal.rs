//! The terminal driver (`acs_core::terminal`) against the simulator (sessions, objects
//! with 64-bit values, photos, faults, remote enrollment), against a stub server on
//! loopback (concurrency bound, one shared login, timeouts, replies that are not the
//! terminal API) and against the recorded replies of `fixtures/protocol/`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acs_core::terminal::{ClientOptions, DriverError, EnrollKind, RemoteEnroll, TerminalClient};
use acs_simulator::{Override, Presentation, RunningSimulator, Simulator, TimeMode};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Method, Uri, header};
use axum::response::Response;
use serde_json::{Map, Value as Json, json};

/// 123,45678 as the terminal stores it (facility × 2^32 + number).
const CARD: u64 = 528_281_023_086;

// ----- helpers ---------------------------------------------------------------------------

fn fixtures_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn face(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join("images").join(name)).expect("fixture image")
}

/// A valid JPEG of one flat grey: the device finds no face in it.
fn flat_jpeg() -> Vec<u8> {
    let img = image::GrayImage::from_pixel(320, 320, image::Luma([128]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode jpeg");
    out.into_inner()
}

fn obj(value: Json) -> Map<String, Json> {
    match value {
        Json::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn options() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

async fn simulator() -> RunningSimulator {
    simulator_with(Simulator::builder()).await
}

async fn simulator_with(builder: acs_simulator::SimulatorBuilder) -> RunningSimulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    builder.spawn(listener).await.expect("simulator")
}

fn client(sim: &RunningSimulator) -> TerminalClient {
    TerminalClient::new(&sim.base_url(), "admin", "admin", options()).expect("client")
}

fn logins(sim: &RunningSimulator) -> usize {
    sim.journal().for_command("login").len()
}

async fn create_user(client: &TerminalClient, id: i64, name: &str) {
    let ids = client
        .create_objects("users", vec![obj(json!({"id": id, "name": name}))])
        .await
        .expect("create user");
    assert_eq!(ids, vec![id]);
}

// ----- a stub terminal on loopback -------------------------------------------------------

/// One request as the stub saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    command: String,
    /// The raw (still percent-encoded) query string.
    query: String,
    body: Vec<u8>,
}

impl Seen {
    fn json(&self) -> Json {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

#[derive(Debug, Clone)]
struct StubReply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

fn json_reply(status: u16, body: &Json) -> StubReply {
    StubReply {
        status,
        content_type: "application/json; charset=utf-8",
        body: serde_json::to_vec(body).expect("json"),
    }
}

type Answer = Pin<Box<dyn Future<Output = StubReply> + Send>>;
type Responder = Box<dyn Fn(Seen) -> Answer + Send + Sync>;

struct StubState {
    seen: Mutex<Vec<Seen>>,
    responder: Responder,
}

/// A tiny HTTP server answering every `/<command>.fcgi` through a responder.
struct Stub {
    base_url: String,
    state: Arc<StubState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stub {
    async fn start(responder: impl Fn(Seen) -> Answer + Send + Sync + 'static) -> Stub {
        let state = Arc::new(StubState {
            seen: Mutex::new(Vec::new()),
            responder: Box::new(responder),
        });
        let router = axum::Router::new()
            .fallback(stub_handler)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("stub serves");
        });
        Stub {
            base_url,
            state,
            task,
        }
    }

    /// Answers `login` with `token` and every other command from `replies` (404 for the
    /// rest).
    async fn scripted(token: &str, replies: HashMap<&'static str, StubReply>) -> Stub {
        let token = token.to_owned();
        Stub::start(move |seen| {
            let reply = if seen.command == "login" {
                json_reply(200, &json!({"session": token}))
            } else {
                replies
                    .get(seen.command.as_str())
                    .cloned()
                    .unwrap_or(StubReply {
                        status: 404,
                        content_type: "text/html",
                        body: b"<html><body>404 - Not Found</body></html>".to_vec(),
                    })
            };
            Box::pin(async move { reply })
        })
        .await
    }

    fn client(&self) -> TerminalClient {
        TerminalClient::new(&self.base_url, "admin", "admin", options()).expect("client")
    }

    fn seen(&self, command: &str) -> Vec<Seen> {
        self.state
            .seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|s| s.command == command)
            .cloned()
            .collect()
    }
}

async fn stub_handler(
    State(state): State<Arc<StubState>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let seen = Seen {
        method: method.to_string(),
        command: uri
            .path()
            .trim_start_matches('/')
            .trim_end_matches(".fcgi")
            .to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        body: body.to_vec(),
    };
    state.seen.lock().expect("lock").push(seen.clone());
    let reply = (state.responder)(seen).await;
    Response::builder()
        .status(reply.status)
        .header(header::CONTENT_TYPE, reply.content_type)
        .body(Body::from(reply.body))
        .expect("response")
}

// ----- fixtures ----------------------------------------------------------------------

fn fixture(name: &str) -> Json {
    let path = fixtures_dir().join("protocol").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).expect("fixture file");
    serde_json::from_str(&text).expect("fixture JSON")
}

/// Turns a recorded reply body into a concrete one: placeholders get plain values
/// (`{{int}}` 7, `{{string}}` "x", captures and references 1), `"{{..}}": true` goes.
fn materialize(value: &Json) -> Json {
    match value {
        Json::String(s) if s.starts_with("{{") && s.ends_with("}}") => match &s[2..s.len() - 2] {
            "int" => json!(7),
            "string" => json!("x"),
            "bool" => json!(false),
            "base64" => json!("AAAA"),
            "empty" => json!({}),
            "any" => json!("x"),
            _ => json!(1),
        },
        Json::Object(map) => Json::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "{{..}}")
                .map(|(k, v)| (k.clone(), materialize(v)))
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.iter().map(materialize).collect()),
        other => other.clone(),
    }
}

/// Exchange `index` of a fixture: its command, request body and materialized reply.
fn exchange(name: &str, index: usize) -> (&'static str, Json, StubReply) {
    let f = fixture(name);
    let e = &f["exchanges"][index];
    let path = e["request"]["path"].as_str().expect("path");
    let command: &'static str = path
        .trim_start_matches('/')
        .trim_end_matches(".fcgi")
        .to_owned()
        .leak();
    let status = u16::try_from(e["response"]["status"].as_u64().expect("status")).expect("u16");
    let reply = match e["response"].get("body") {
        Some(body) => json_reply(status, &materialize(body)),
        None => StubReply {
            status,
            content_type: "text/html",
            body: Vec::new(),
        },
    };
    (command, e["request"]["body"].clone(), reply)
}

/// A stub that answers `login` and replays exchange `index` of fixture `name`.
async fn replay(name: &str, index: usize) -> (Stub, Json) {
    let (command, request, reply) = exchange(name, index);
    let stub = Stub::scripted(
        "q/AcfpiU3QLRUqHKNrAh5srT",
        HashMap::from([(command, reply)]),
    )
    .await;
    (stub, request)
}

/// Every member of the fixture's request body is in what the driver sent, with the
/// same value.
#[track_caller]
fn assert_sent(sent: &Seen, fixture_request: &Json) {
    let sent = sent.json();
    for (k, v) in fixture_request.as_object().expect("fixture request body") {
        assert_eq!(sent.get(k), Some(v), "member '{k}' of {sent}");
    }
}

#[track_caller]
fn assert_rejected(result: Result<impl std::fmt::Debug, DriverError>, status: u16, message: &str) {
    match result {
        Err(DriverError::Rejected {
            status: s,
            message: m,
            ..
        }) => {
            assert_eq!((s, m.as_str()), (status, message));
        }
        other => panic!("expected Rejected({status}, {message}), got {other:?}"),
    }
}

// ----- against the simulator -------------------------------------------------------------

#[tokio::test]
async fn crud_on_users_and_cards_keeps_64_bit_values_exact() {
    let sim = simulator().await;
    let client = client(&sim);

    create_user(&client, 1, "Ana").await;
    let card_ids = client
        .create_objects(
            "cards",
            vec![
                obj(json!({"value": CARD, "user_id": 1})),
                obj(json!({"value": u64::MAX, "user_id": 1})),
            ],
        )
        .await
        .expect("create cards");
    assert_eq!(card_ids.len(), 2);

    let rows = client
        .load_objects(
            "cards",
            obj(json!({"fields": ["id", "value", "user_id"], "where": {"cards": {"value": CARD}}})),
        )
        .await
        .expect("load card");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["value"].as_u64(), Some(CARD));
    assert_eq!(rows[0]["id"].as_i64(), Some(card_ids[0]));
    let max = client
        .load_objects(
            "cards",
            obj(json!({"where": {"cards": {"value": u64::MAX}}})),
        )
        .await
        .expect("load u64::MAX");
    assert_eq!(max[0]["value"].as_u64(), Some(u64::MAX));

    let changed = client
        .modify_objects(
            "users",
            obj(json!({"name": "Ana Maria"})),
            json!({"users": {"id": 1}}),
        )
        .await
        .expect("modify");
    assert_eq!(changed, 1);
    client
        .create_or_modify_objects(
            "users",
            vec![
                obj(json!({"id": 1, "name": "Ana M."})),
                obj(json!({"id": 2, "name": "Bruno"})),
            ],
        )
        .await
        .expect("create or modify");
    let users = client
        .load_objects(
            "users",
            obj(json!({"fields": ["id", "name"], "order": ["id"]})),
        )
        .await
        .expect("load users");
    let names: Vec<_> = users.iter().map(|u| u["name"].clone()).collect();
    assert_eq!(names, vec![json!("Ana M."), json!("Bruno")]);

    let deleted = client
        .destroy_objects("cards", json!({"cards": {"value": CARD}}))
        .await
        .expect("destroy");
    assert_eq!(deleted, 1);
    let left = client
        .load_objects("cards", Map::new())
        .await
        .expect("load cards");
    assert_eq!(left.len(), 1);
    assert_eq!(logins(&sim), 1, "one login for the whole conversation");
}

#[tokio::test]
async fn system_information_reports_the_identity() {
    let sim = simulator().await;
    let info = client(&sim).system_information().await.expect("info");
    let identity = sim.device().identity();
    assert_eq!(info.device_id, identity.device_id);
    assert_eq!(info.serial, identity.serial);
    assert!(!info.version.is_empty());
    assert_eq!(info.raw["serial"], json!(identity.serial));
}

#[tokio::test]
async fn sets_lists_and_destroys_face_photos() {
    let sim = simulator().await;
    let client = client(&sim);
    create_user(&client, 1, "Ana").await;
    create_user(&client, 2, "Bruno").await;

    let outcome = client
        .set_user_image(1, &face("face-a.jpg"), 1_700_000_000, true)
        .await
        .expect("set image");
    assert_eq!(
        (outcome.success, outcome.errors.len(), outcome.duplicate_of),
        (true, 0, None)
    );
    assert_eq!(
        client.list_user_images().await.expect("list"),
        vec![(1, 1_700_000_000)]
    );

    // The same face for another user, with duplicate matching: an outcome, not an error.
    let duplicate = client
        .set_user_image(2, &face("face-a.jpg"), 1_700_000_001, true)
        .await
        .expect("duplicate is an outcome");
    assert!(!duplicate.success);
    assert_eq!(duplicate.duplicate_of, Some(1));
    assert_eq!(duplicate.errors, vec!["Face exists".to_owned()]);

    client.destroy_user_image(1).await.expect("destroy image");
    assert_eq!(client.list_user_images().await.expect("list"), vec![]);
}

#[tokio::test]
async fn a_photo_without_a_face_is_an_outcome_and_not_an_image_is_rejected() {
    let sim = simulator().await;
    let client = client(&sim);
    create_user(&client, 1, "Ana").await;

    let outcome = client
        .set_user_image(1, &flat_jpeg(), 1_700_000_000, false)
        .await
        .expect("no face is an outcome");
    assert!(!outcome.success);
    assert_eq!(outcome.errors, vec!["Face not detected".to_owned()]);

    let not_an_image = client
        .set_user_image(1, &face("not-an-image.bin"), 1_700_000_000, false)
        .await;
    assert_rejected(
        not_an_image,
        400,
        "Image file not recognized. Image should be either JPG or PNG.",
    );
}

#[tokio::test]
async fn an_expired_session_is_replaced_transparently() {
    let sim = simulator().await;
    let client = client(&sim);
    client
        .load_objects("users", Map::new())
        .await
        .expect("first call");
    assert_eq!(logins(&sim), 1);

    sim.device().expire_sessions();
    let users = client
        .load_objects("users", Map::new())
        .await
        .expect("after expiry");
    assert!(users.is_empty());
    assert_eq!(logins(&sim), 2, "one re-login");
    let statuses: Vec<u16> = sim
        .journal()
        .for_command("load_objects")
        .iter()
        .map(|e| e.status)
        .collect();
    assert_eq!(statuses, vec![200, 401, 200]);
}

#[tokio::test]
async fn a_powered_off_terminal_is_unreachable_and_retryable() {
    let sim = simulator().await;
    let client = client(&sim);
    client.system_information().await.expect("on");
    assert!(sim.power_off().await);

    let err = client
        .load_objects("users", Map::new())
        .await
        .expect_err("off");
    assert!(matches!(err, DriverError::Unreachable { .. }), "{err:?}");
    assert!(err.is_retryable());

    assert!(sim.power_on().await);
    // Power cycling loses the sessions: the driver logs in again on its own.
    client
        .load_objects("users", Map::new())
        .await
        .expect("on again");
}

#[tokio::test]
async fn a_refused_request_is_rejected_with_the_device_text() {
    let sim = simulator().await;
    sim.faults().add_override(Override {
        command: "load_objects".into(),
        remaining: 1,
        status: 400,
        body: json!({"error": "x", "code": 1}),
    });
    let err = client(&sim)
        .load_objects("users", Map::new())
        .await
        .expect_err("refused");
    assert!(!err.is_retryable());
    assert_rejected(Err::<(), _>(err), 400, "x");
}

#[tokio::test]
async fn a_server_error_is_retryable() {
    let sim = simulator().await;
    sim.faults().add_override(Override {
        command: "load_objects".into(),
        remaining: 1,
        status: 500,
        body: json!({"error": "internal", "code": 1}),
    });
    let client = client(&sim);
    let err = client
        .load_objects("users", Map::new())
        .await
        .expect_err("500");
    assert!(err.is_retryable(), "{err:?}");
    // The override is spent: the retry succeeds.
    client
        .load_objects("users", Map::new())
        .await
        .expect("retry");
}

#[tokio::test]
async fn a_wrong_password_is_unauthorized_after_a_single_login() {
    let sim = simulator().await;
    let client = TerminalClient::new(&sim.base_url(), "admin", "wrong", options()).expect("client");
    let calls = (0..10).map(|_| {
        let client = client.clone();
        async move { client.load_objects("users", Map::new()).await }
    });
    for result in futures_util::future::join_all(calls).await {
        match result {
            Err(e @ DriverError::Unauthorized { .. }) => assert!(!e.is_retryable()),
            other => panic!("expected Unauthorized, got {other:?}"),
        }
    }
    assert_eq!(logins(&sim), 1, "queued calls share the refused login");
}

#[tokio::test]
async fn sync_card_enrollment_returns_the_exact_card_value() {
    let sim = simulator_with(Simulator::builder().time_mode(TimeMode::Scaled(0.0))).await;
    let client = client(&sim);
    create_user(&client, 5, "Ana").await;
    sim.present(Presentation::Card(CARD));

    let reply = client
        .remote_enroll(RemoteEnroll {
            kind: EnrollKind::Card,
            user_id: 5,
            sync: true,
            ..RemoteEnroll::default()
        })
        .await
        .expect("enroll");
    assert_eq!(reply["success"], json!(true));
    assert_eq!(reply["card_value"].as_u64(), Some(CARD));
    assert_eq!(reply["user_id"], json!(5));
    // Nothing is running any more: cancelling is harmless.
    client.cancel_remote_enroll().await.expect("cancel");
}

#[tokio::test]
async fn configuration_round_trips_as_strings() {
    let sim = simulator().await;
    let client = client(&sim);
    client
        .set_configuration(json!({"monitor": {"hostname": "127.0.0.1", "port": "8000"}}))
        .await
        .expect("set");
    let got = client
        .get_configuration(json!({"monitor": ["hostname", "port"]}))
        .await
        .expect("get");
    assert_eq!(
        got,
        json!({"monitor": {"hostname": "127.0.0.1", "port": "8000"}})
    );
    assert_rejected(
        client
            .set_configuration(json!({"monitor": {"port": 8000}}))
            .await,
        400,
        "Invalid data (string expected)",
    );
}

#[tokio::test]
async fn logout_ends_the_session_and_the_next_call_logs_in() {
    let sim = simulator().await;
    let client = client(&sim);
    client.system_information().await.expect("call");
    client.logout().await.expect("logout");
    assert_eq!(sim.device().session_count(), 0);
    client
        .execute_actions(json!([{"action": "sec_box", "parameters": "id=65793, reason=3"}]))
        .await
        .expect("after logout");
    assert_eq!(logins(&sim), 2);
}

// ----- against a stub ----------------------------------------------------------------

#[tokio::test]
async fn concurrent_calls_stay_within_the_bound_and_share_one_login() {
    const CALLS: usize = 20;
    #[derive(Default, Clone, Copy)]
    struct Load {
        in_flight: usize,
        arrived: usize,
        max: usize,
    }
    let (load_tx, _) = tokio::sync::watch::channel(Load::default());
    let load_tx = Arc::new(load_tx);
    let responder_load = load_tx.clone();
    let stub = Stub::start(move |seen| {
        let load = responder_load.clone();
        Box::pin(async move {
            if seen.command == "login" {
                return json_reply(200, &json!({"session": "tok"}));
            }
            load.send_modify(|l| {
                l.in_flight += 1;
                l.arrived += 1;
                l.max = l.max.max(l.in_flight);
            });
            // Hold each request until another is in flight too (or no more can come), so
            // that a missing bound would show as more than two at once.
            let mut watch = load.subscribe();
            watch
                .wait_for(|l| l.in_flight >= 2 || l.arrived == CALLS)
                .await
                .expect("sender alive");
            load.send_modify(|l| l.in_flight -= 1);
            json_reply(200, &json!({"users": []}))
        })
    })
    .await;

    let client = TerminalClient::new(
        &stub.base_url,
        "admin",
        "admin",
        ClientOptions {
            max_concurrency: 2,
            ..options()
        },
    )
    .expect("client");
    let calls = (0..CALLS).map(|_| {
        let client = client.clone();
        async move { client.load_objects("users", Map::new()).await }
    });
    for result in futures_util::future::join_all(calls).await {
        assert!(result.expect("call").is_empty());
    }
    let load = *load_tx.borrow();
    assert_eq!(load.arrived, CALLS);
    assert_eq!(load.max, 2, "never more than two in flight");
    assert_eq!(stub.seen("login").len(), 1, "exactly one login");
}

#[tokio::test]
async fn the_session_token_is_percent_encoded() {
    let stub = Stub::scripted(
        "q/Acf+iU3QLRUqHKNrAh5srT",
        HashMap::from([("load_objects", json_reply(200, &json!({"users": []})))]),
    )
    .await;
    stub.client()
        .load_objects("users", Map::new())
        .await
        .expect("call");
    let seen = stub.seen("load_objects");
    assert_eq!(seen[0].query, "session=q%2FAcf%2BiU3QLRUqHKNrAh5srT");
    let login = &stub.seen("login")[0];
    assert_eq!(login.method, "POST");
    assert_eq!(login.json(), json!({"login": "admin", "password": "admin"}));
}

#[tokio::test]
async fn a_terminal_that_does_not_answer_times_out_as_unreachable() {
    let stub = Stub::start(|seen| {
        Box::pin(async move {
            if seen.command == "login" {
                return json_reply(200, &json!({"session": "tok"}));
            }
            std::future::pending().await
        })
    })
    .await;
    let client = TerminalClient::new(
        &stub.base_url,
        "admin",
        "admin",
        ClientOptions {
            timeout: Duration::from_millis(200),
            ..options()
        },
    )
    .expect("client");
    let err = client
        .load_objects("users", Map::new())
        .await
        .expect_err("timeout");
    match &err {
        DriverError::Unreachable { detail, .. } => assert_eq!(detail, "timeout"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(err.is_retryable());
}

#[tokio::test]
async fn replies_that_are_not_the_terminal_api_are_protocol_errors() {
    let html = StubReply {
        status: 200,
        content_type: "text/html",
        body: b"<html>captive portal</html>".to_vec(),
    };
    let stub = Stub::scripted(
        "tok",
        HashMap::from([
            ("load_objects", html.clone()),
            ("set_configuration", html),
            ("modify_objects", json_reply(200, &json!({"count": 1}))),
            ("create_objects", json_reply(200, &json!({"ids": [1]}))),
        ]),
    )
    .await;
    let client = stub.client();
    let protocol = |r: Result<(), DriverError>| match r {
        Err(e @ DriverError::Protocol { .. }) => assert!(!e.is_retryable()),
        other => panic!("expected Protocol, got {other:?}"),
    };
    protocol(client.load_objects("users", Map::new()).await.map(drop));
    protocol(client.set_configuration(json!({})).await);
    protocol(
        client
            .modify_objects("users", Map::new(), json!({"users": {"id": 1}}))
            .await
            .map(drop),
    );
    // Two rows, one id.
    protocol(
        client
            .create_objects("users", vec![obj(json!({"id": 1})), obj(json!({"id": 2}))])
            .await
            .map(drop),
    );
    // A command the firmware lacks: lighttpd's 404 page, not the error envelope.
    protocol(client.execute_actions(json!([])).await);
}

#[tokio::test]
async fn device_ids_above_2_pow_53_are_read_exactly_from_a_string_or_a_number() {
    for device_id in [
        json!("4408801109375138"),
        json!(122_641_794_705_017_745_i64),
    ] {
        let stub = Stub::scripted(
            "tok",
            HashMap::from([(
                "system_information",
                json_reply(
                    200,
                    &json!({"serial": "0M0200/0278A2", "version": "6.23.0", "device_id": device_id,
                            "device_name": "iDFace"}),
                ),
            )]),
        )
        .await;
        let info = stub.client().system_information().await.expect("info");
        let expected = match &device_id {
            Json::String(s) => s.parse::<i64>().expect("decimal"),
            n => n.as_i64().expect("i64"),
        };
        assert_eq!(info.device_id, expected);
        assert_eq!(
            (info.serial.as_str(), info.version.as_str()),
            ("0M0200/0278A2", "6.23.0")
        );
        assert_eq!(info.raw["device_name"], json!("iDFace"));
    }
}

#[tokio::test]
async fn debug_output_never_shows_the_password() {
    let client = TerminalClient::new("10.0.0.5:8080", "admin", "s3cret-pass", options())
        .expect("a base URL without a scheme is accepted");
    assert_eq!(client.base_url(), "http://10.0.0.5:8080");
    let debug = format!("{client:?}");
    assert!(
        debug.contains("10.0.0.5") && !debug.contains("s3cret-pass"),
        "{debug}"
    );
    assert!(matches!(
        TerminalClient::new("http://", "admin", "admin", options()),
        Err(DriverError::Address(_))
    ));
}

// ----- against the recorded replies of fixtures/protocol ---------------------------

#[tokio::test]
async fn fixture_login_refused_is_unauthorized() {
    let (_, _, refused) = exchange("session/login-wrong-password", 0);
    let stub = Stub::start(move |_| {
        let refused = refused.clone();
        Box::pin(async move { refused })
    })
    .await;
    match stub.client().load_objects("users", Map::new()).await {
        Err(DriverError::Unauthorized { message }) => {
            assert_eq!(message, "Invalid login or password");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert!(stub.seen("load_objects").is_empty());
}

#[tokio::test]
async fn fixture_refused_session_after_a_fresh_login_is_rejected() {
    // Every token refused (garbage-token.json): one re-login, one retry, then the
    // device's text.
    let (stub, _) = replay("session/garbage-token", 0).await;
    assert_rejected(
        stub.client().load_objects("users", Map::new()).await,
        401,
        "Invalid access level for command load_objects",
    );
    assert_eq!(stub.seen("login").len(), 2);
    assert_eq!(stub.seen("load_objects").len(), 2);
}

#[tokio::test]
async fn fixture_errors_are_rejected_with_the_device_text() {
    let (stub, _) = replay("errors/unknown-table", 0).await;
    assert_rejected(
        stub.client()
            .load_objects("no_such_table", Map::new())
            .await,
        400,
        "x",
    );

    let (stub, request) = replay("config/unknown-general-key", 1).await;
    assert_rejected(
        stub.client()
            .set_configuration(json!({"general": {"nope": "1"}}))
            .await,
        400,
        "Node or attribute not found. Node path: config->general->param[name=nope]",
    );
    assert_sent(&stub.seen("set_configuration")[0], &request);

    let (stub, _) = replay("images/set-image-not-jpeg", 1).await;
    assert_rejected(
        stub.client()
            .set_user_image(1, &face("not-an-image.bin"), 1_700_000_000, false)
            .await,
        400,
        "Image file not recognized. Image should be either JPG or PNG.",
    );
    let sent = &stub.seen("user_set_image")[0];
    assert_eq!(sent.body, face("not-an-image.bin"));
    assert!(
        sent.query.contains("user_id=1")
            && sent.query.contains("match=0")
            && sent.query.contains("timestamp=1700000000"),
        "{}",
        sent.query
    );
}

#[tokio::test]
async fn fixture_unknown_command_is_a_protocol_error() {
    let (stub, _) = replay("errors/unknown-command", 0).await;
    // The stub answers count_objects' 404 (no envelope) for any command it was not given.
    let err = stub
        .client()
        .load_objects("users", Map::new())
        .await
        .expect_err("404");
    assert!(matches!(err, DriverError::Protocol { .. }), "{err:?}");
}

#[tokio::test]
async fn fixture_objects_replies_are_parsed() {
    let (stub, request) = replay("objects/card-values-64-bit", 2).await;
    let rows = stub
        .client()
        .load_objects(
            "cards",
            obj(json!({"fields": ["id", "value"], "where": {"cards": {"value": u64::MAX}}})),
        )
        .await
        .expect("load");
    assert_eq!(rows[0]["value"].as_u64(), Some(u64::MAX));
    assert_sent(&stub.seen("load_objects")[0], &request);

    let (stub, request) = replay("objects/modify-changes", 1).await;
    let changes = stub
        .client()
        .modify_objects(
            "users",
            obj(json!({"registration": "X"})),
            json!({"users": {"id": [1, 2]}}),
        )
        .await
        .expect("modify");
    assert_eq!(changes, 2);
    assert_sent(&stub.seen("modify_objects")[0], &request);

    let (stub, request) = replay("objects/destroy-where", 3).await;
    let where_ = request["where"].clone();
    let changes = stub
        .client()
        .destroy_objects("users", where_)
        .await
        .expect("destroy");
    assert_eq!(changes, 2);
    assert_sent(&stub.seen("destroy_objects")[0], &request);

    let (stub, request) = replay("objects/modify-changes", 0).await;
    let values = request["values"]
        .as_array()
        .expect("values")
        .iter()
        .cloned()
        .map(obj)
        .collect();
    let ids = stub
        .client()
        .create_objects("users", values)
        .await
        .expect("create");
    assert_eq!(ids, vec![1, 2, 3]);
    assert_sent(&stub.seen("create_objects")[0], &request);
}

#[tokio::test]
async fn fixture_image_replies_are_parsed() {
    let (stub, _) = replay("images/set-image-duplicate-face", 2).await;
    let outcome = stub
        .client()
        .set_user_image(2, &face("face-a.jpg"), 1_700_000_001, true)
        .await
        .expect("outcome");
    assert!(!outcome.success);
    assert_eq!(outcome.duplicate_of, Some(1));
    assert_eq!(outcome.errors, vec!["Face exists".to_owned()]);

    let (stub, _) = replay("images/list-images", 5).await;
    assert_eq!(
        stub.client().list_user_images().await.expect("list"),
        vec![(1, 1_700_000_000), (2, 1_700_000_005)]
    );
    let sent = &stub.seen("user_list_images")[0];
    assert_eq!(sent.method, "GET");
    assert!(sent.query.contains("get_timestamp=1"), "{}", sent.query);

    // A firmware that ignores get_timestamp answers user_ids only.
    let (stub, _) = replay("images/list-images", 4).await;
    assert_eq!(
        stub.client().list_user_images().await.expect("list"),
        vec![(1, 0), (2, 0)]
    );
}

#[tokio::test]
async fn fixture_enrollment_reply_is_returned() {
    let (stub, request) = replay("enroll/card-sync", 1).await;
    let reply = stub
        .client()
        .remote_enroll(RemoteEnroll {
            kind: EnrollKind::Card,
            user_id: 5,
            sync: true,
            ..RemoteEnroll::default()
        })
        .await
        .expect("enroll");
    assert_eq!(
        reply,
        json!({"success": true, "user_id": 5, "device_id": 7, "card_value": 7})
    );
    let sent = &stub.seen("remote_enroll")[0];
    assert_sent(sent, &request);
    assert!(
        sent.json().get("panic_finger").is_none(),
        "only for biometry"
    );
}
