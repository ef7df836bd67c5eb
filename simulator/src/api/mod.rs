//! The terminal's HTTP surface: a route per command `/<command>.fcgi` and a catch-all for
//! any other name, one handler behind them that reads the body (within the device's size
//! limit), finds the command, applies the session gate and hands over to the handler
//! modules, which only translate between HTTP and [`Device`] calls.
//!
//! Every failure leaves here as the device's envelope `{"error": "<text>", "code": 1}`
//! with the device's status (400 bad input, 401 credentials/session, 404 unknown command,
//! 413 oversized body) – never a panic, never an HTML page. Every exchange is journaled.

mod config;
pub(crate) mod control;
mod enroll;
mod images;
mod objects;
mod session;
mod system;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::any;
use serde_json::{Value as Json, json};
use std::borrow::Cow;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::device::built_rows::BuiltRows;
use crate::device::written::RowsRequest;
use crate::device::{Device, DeviceError, MAX_ROWS_PER_REQUEST};
use crate::journal;
use crate::terminal::Terminal;
use crate::wire::{MemberError, Members, ReadObject};

/// Largest request body the device accepts (2 MiB, the photo limit).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Builds the terminal's router: the device API, the `/_sim/` control API and the web
/// panel under `/_sim/ui`.
pub fn router(terminal: Terminal) -> Router {
    // Commands are what no route matches: the dispatcher reads the command from the path
    // itself, so matching captures nothing, and the router holds three routes, not one
    // per command (each terminal of a fleet has its own router: a route per command cost
    // 33 KiB a terminal).
    Router::new()
        .route("/_sim/{*path}", any(control::dispatch))
        .merge(crate::panel::routes())
        .fallback(dispatch)
        .with_state(Arc::new(terminal))
}

/// Who may call a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// No session needed.
    Public,
    /// A valid session needed.
    Session,
    /// Public only when `general.url_reboot_enabled` is `"1"`.
    RebootUrl,
}

/// A handler's future, for commands that wait (synchronous enrollment).
type BoxFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, ApiError>> + Send + 'a>>;

/// How a command is answered.
#[derive(Clone, Copy)]
enum Handler {
    /// Answers at once.
    Now(fn(&Call<'_>) -> Result<Reply, ApiError>),
    /// May wait (on the scheduler clock) before answering.
    Later(for<'a, 'b> fn(&'a Call<'b>) -> BoxFuture<'a>),
}

use Handler::{Later, Now};

/// Every command the simulator answers.
const COMMANDS: &[(&str, Access, Handler)] = &[
    ("login", Access::Public, Now(session::login)),
    ("logout", Access::Public, Now(session::logout)),
    (
        "session_is_valid",
        Access::Public,
        Now(session::session_is_valid),
    ),
    ("change_login", Access::Session, Now(session::change_login)),
    (
        "is_first_web_login",
        Access::Session,
        Now(session::is_first_web_login),
    ),
    ("load_objects", Access::Session, Now(objects::load)),
    ("create_objects", Access::Session, Now(objects::create)),
    ("modify_objects", Access::Session, Now(objects::modify)),
    ("destroy_objects", Access::Session, Now(objects::destroy)),
    (
        "create_or_modify_objects",
        Access::Session,
        Now(objects::create_or_modify),
    ),
    ("user_set_image", Access::Session, Now(images::set_image)),
    (
        "user_set_image_list",
        Access::Session,
        Now(images::set_image_list),
    ),
    ("user_get_image", Access::Session, Now(images::get_image)),
    (
        "user_get_image_list",
        Access::Session,
        Now(images::get_image_list),
    ),
    (
        "user_list_images",
        Access::Session,
        Now(images::list_images),
    ),
    (
        "user_destroy_image",
        Access::Session,
        Now(images::destroy_image),
    ),
    ("user_test_image", Access::Session, Now(images::test_image)),
    (
        "face_template_count_distinct",
        Access::Session,
        Now(images::face_template_count),
    ),
    ("get_configuration", Access::Session, Now(config::get)),
    ("set_configuration", Access::Session, Now(config::set)),
    (
        "system_information",
        Access::Public,
        Now(system::information),
    ),
    ("get_language", Access::Public, Now(system::language)),
    (
        "init_device_set",
        Access::Public,
        Now(system::init_device_set),
    ),
    ("set_system_time", Access::Session, Now(system::set_time)),
    (
        "execute_actions",
        Access::Session,
        Now(system::execute_actions),
    ),
    ("reboot", Access::RebootUrl, Now(system::reboot)),
    (
        "user_hash_password",
        Access::Session,
        Now(system::hash_password),
    ),
    (
        "remote_enroll",
        Access::Session,
        Later(enroll::remote_enroll),
    ),
    ("cancel_remote_enroll", Access::Session, Now(enroll::cancel)),
    ("enroller_state", Access::Session, Now(enroll::state)),
    ("doors_state", Access::Session, Now(system::doors_state)),
    (
        "message_to_screen",
        Access::Session,
        Now(system::message_to_screen),
    ),
    ("buzzer_buzz", Access::Session, Now(system::buzzer_buzz)),
    ("alarm_status", Access::Session, Now(system::alarm_status)),
    ("gpio_state", Access::Session, Now(system::gpio_state)),
    (
        "reset_to_factory_default",
        Access::Session,
        Now(system::reset_to_factory),
    ),
    (
        "template_sync_init",
        Access::Session,
        Now(system::template_sync),
    ),
    (
        "template_sync_end",
        Access::Session,
        Now(system::template_sync),
    ),
];

/// A failed command: status and the device's error text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// A fault-plan override replaces the envelope with this body.
    body: Option<Json>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            body: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    fn overridden(status: u16, body: Json) -> Self {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: "fault override".into(),
            body: Some(body),
        }
    }

    fn body(&self) -> Json {
        self.body
            .clone()
            .unwrap_or_else(|| json!({"error": self.message, "code": 1}))
    }
}

impl From<DeviceError> for ApiError {
    fn from(e: DeviceError) -> Self {
        match e {
            DeviceError::BadCredentials => ApiError::unauthorized(e.to_string()),
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

impl From<MemberError> for ApiError {
    fn from(e: MemberError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// A successful reply body.
#[derive(Debug)]
enum Reply {
    /// A JSON document.
    Json(Json),
    /// A JSON document printed already, and whether it holds a secret (the journal then
    /// redacts it).
    Printed(Vec<u8>, bool),
    /// 200 with an empty body.
    Empty,
    /// Raw JPEG bytes.
    Jpeg(Vec<u8>),
}

/// One call as the handlers see it.
#[derive(Debug)]
struct Call<'a> {
    terminal: &'a Terminal,
    device: &'a Device,
    command: &'a str,
    query: &'a [Param<'a>],
    session: Option<&'a str>,
    /// The request's `Content-Type` (none for commands fetched in push mode).
    content_type: Option<&'a str>,
    body: &'a [u8],
    /// The body as JSON, once a handler asked for it (the journal reuses it).
    parsed: OnceLock<Result<Json, ApiError>>,
    /// The body read as an HTML form, once a handler asked for it (docs/device-api.md §1.1).
    form: OnceLock<Option<Json>>,
    /// The body read straight from its text as a write of rows, once asked for
    /// (`None`: it has not that shape); the journal then keeps the text without a parsed
    /// document.
    rows: OnceLock<Option<RowsRequest<'a>>>,
    /// A create's rows built into cells before its turn, until its handler takes them.
    built: Mutex<Option<BuiltRows>>,
    /// The body's top-level object read without its map, once a handler asked for its
    /// members (`None`: the body is not such an object).
    read_object: OnceLock<Option<ReadObject<'a>>>,
}

impl<'a> Call<'a> {
    fn new(
        terminal: &'a Terminal,
        command: &'a str,
        query: &'a [Param<'a>],
        session: Option<&'a str>,
        content_type: Option<&'a str>,
        body: &'a [u8],
    ) -> Self {
        Call {
            terminal,
            device: &terminal.device,
            command,
            query,
            session,
            content_type,
            body,
            parsed: OnceLock::new(),
            form: OnceLock::new(),
            rows: OnceLock::new(),
            built: Mutex::new(None),
            read_object: OnceLock::new(),
        }
    }

    /// The body's members: its top-level object read without building the object's map
    /// (`ReadObject`), or for any other body the members of its JSON document (an empty
    /// body is `{}`; a document other than an object is refused as `members` refuses it).
    fn members(&self) -> Result<Members<'_>, ApiError> {
        match self.read_object.get_or_init(|| ReadObject::read(self.body)) {
            Some(read) => Ok(read.members()),
            None => members(self.json()?),
        }
    }

    /// Reads the body as a write's handler will ask for it, and keeps it for the handler:
    /// read while the write waits for its turn, a thousand rows would be read one request
    /// after another. Nothing is refused here (a body that cannot be read is refused when
    /// the handler asks for it), so a request without a session is still refused as
    /// such, whatever its body.
    /// A create's rows are also built into cells then ([`Device::build_rows`]).
    fn read_ahead(&self) {
        if WRITES_OF_ROWS.contains(&self.command)
            && let Some(request) = self.rows_request()
        {
            if self.command == "create_objects" {
                *self.built.lock().unwrap_or_else(PoisonError::into_inner) =
                    self.device.build_rows(request);
            }
            return;
        }
        let _ = self.members();
    }

    /// The rows [`Call::read_ahead`] built, taken once.
    fn take_built_rows(&self) -> Option<BuiltRows> {
        self.built
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The body as a write of rows read straight from its text, when it has that shape
    /// (`RowsRequest`); the journal then keeps the text without a parsed document.
    /// Read once, however often asked.
    fn rows_request(&self) -> Option<&RowsRequest<'a>> {
        self.rows
            .get_or_init(|| RowsRequest::read(self.body, MAX_ROWS_PER_REQUEST))
            .as_ref()
    }

    /// The body as JSON; an empty body is `{}`. Parsed once, however often asked.
    fn json(&self) -> Result<&Json, ApiError> {
        self.parsed
            .get_or_init(|| {
                if self.body.iter().all(u8::is_ascii_whitespace) {
                    return Ok(json!({}));
                }
                serde_json::from_slice(self.body).map_err(|e| {
                    ApiError::bad_request(format!(
                        "Invalid JSON (line {}, column {})",
                        e.line(),
                        e.column()
                    ))
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The body as the fields of an HTML form (`application/x-www-form-urlencoded`), as a
    /// JSON object of strings (the first of repeated fields wins); `None` unless the
    /// request says it is a form and the body is not a JSON document – `curl -d '{…}'`
    /// labels JSON as a form, and such a body stays JSON.
    fn form(&self) -> Option<&Json> {
        self.form
            .get_or_init(|| {
                let is_form = self.content_type.is_some_and(|ct| {
                    ct.split(';').next().is_some_and(|mime| {
                        mime.trim()
                            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                    })
                });
                let first = self.body.iter().find(|b| !b.is_ascii_whitespace());
                if !is_form || matches!(first, Some(b'{' | b'[') | None) {
                    return None;
                }
                let mut fields = serde_json::Map::new();
                for (k, v) in form_urlencoded::parse(self.body) {
                    fields
                        .entry(k.into_owned())
                        .or_insert_with(|| Json::String(v.into_owned()));
                }
                Some(Json::Object(fields))
            })
            .as_ref()
    }

    /// The request body as the journal keeps it: the parsed document (or form) when a
    /// handler read it, otherwise whatever the bytes are. The text is copied rather than
    /// shared: the received bytes may be a slice of a much larger read buffer.
    fn kept_request(&self) -> journal::Kept {
        if let Some(Some(form)) = self.form.get() {
            return journal::Body::of_json(form).into();
        }
        match (self.parsed.get(), self.read_object.get()) {
            (Some(Ok(json)), _) if !self.body.iter().all(u8::is_ascii_whitespace) => {
                journal::Body::keep_copy(json, self.body)
            }
            (None, Some(Some(read))) => journal::Body::keep_members(read.members(), self.body),
            (None, _) if matches!(self.rows.get(), Some(Some(_))) => {
                journal::Body::keep_json_text(self.body)
            }
            _ => journal::Body::capture(self.body).into(),
        }
    }

    /// A query parameter (percent-decoded).
    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }

    /// A required integer query parameter, with the firmware's wording on failure.
    fn query_int(&self, name: &str, wire_type: &'static str) -> Result<i64, ApiError> {
        match self.query(name) {
            None => Err(MemberError {
                member: name.into(),
                expected: wire_type,
                got: "undefined",
            }
            .into()),
            Some(v) => v.trim().parse().map_err(|_| {
                MemberError {
                    member: name.into(),
                    expected: wire_type,
                    got: "string",
                }
                .into()
            }),
        }
    }
}

fn members(json: &Json) -> Result<Members<'_>, ApiError> {
    Ok(Members::of(json, "request")?)
}

fn session_token<'a>(query: &'a [Param<'_>], headers: &'a HeaderMap) -> Option<&'a str> {
    if let Some((_, v)) = query.iter().find(|(k, _)| k == "session") {
        return Some(v);
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == "session")
        .map(|(_, v)| v.trim())
}

/// A query parameter's name and value, percent-decoded (borrowed when nothing was
/// escaped).
type Param<'a> = (Cow<'a, str>, Cow<'a, str>);

/// Percent-decodes `text` (invalid UTF-8 replaced), borrowing it when nothing is escaped.
fn decoded(text: &str) -> Cow<'_, str> {
    if text.contains('%') {
        percent_encoding::percent_decode_str(text).decode_utf8_lossy()
    } else {
        Cow::Borrowed(text)
    }
}

/// Parses a query string as a form does, except that `+` stays a `+`: tokens are never
/// form-encoded spaces.
fn parse_query(raw: Option<&str>) -> Vec<Param<'_>> {
    raw.unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decoded(key), decoded(value))
        })
        .collect()
}

async fn dispatch(State(app): State<Arc<Terminal>>, request: axum::extract::Request) -> Response {
    // The request taken apart, not its headers and address copied out by extractors; the
    // command is the path's one segment, decoded.
    let (parts, body) = request.into_parts();
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    let path = uri.path().strip_prefix('/').unwrap_or("");
    if path.is_empty() || path.contains('/') {
        return not_a_command(path);
    }
    let segment = decoded(path);
    let command = segment.strip_suffix(".fcgi").unwrap_or("");
    let query = parse_query(uri.query());
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let err = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Request body too large (limit {MAX_BODY_BYTES} bytes)"),
            );
            let exchange = Exchange {
                method: method.as_str(),
                command,
                query: uri.query().unwrap_or(""),
                request: journal::Body::Empty.into(),
            };
            return exchange.answer(&app, Err(err));
        }
    };
    let latency = app.faults.latency();
    if !latency.is_zero() {
        app.scheduler.sleep(latency).await;
    }
    let session = session_token(&query, &headers);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let call = Call::new(&app, command, &query, session, content_type, &bytes);
    let result = if method == Method::OPTIONS {
        Ok(Reply::Empty)
    } else if let Some((status, body)) = app.faults.take_override(command) {
        Err(ApiError::overridden(status, body))
    } else {
        run_durably(&call, Gate::Checked).await
    };
    let exchange = Exchange {
        method: method.as_str(),
        command,
        query: uri.query().unwrap_or(""),
        request: call.kept_request(),
    };
    exchange.answer(&app, result)
}

/// One request as the journal keeps it, waiting for its reply.
struct Exchange<'a> {
    method: &'a str,
    command: &'a str,
    query: &'a str,
    request: journal::Kept,
}

impl Exchange<'_> {
    /// Journals the exchange with its reply and answers the reply.
    fn answer(self, terminal: &Terminal, result: Result<Reply, ApiError>) -> Response {
        let (status, body, content_type, response) = Self::reply(result, self.command);
        self.record(terminal, status, response);
        respond(status, body, content_type)
    }

    /// The reply's status, body and content type, and the body as the journal keeps it.
    fn reply(
        result: Result<Reply, ApiError>,
        command: &str,
    ) -> (StatusCode, Bytes, Option<&'static str>, journal::Kept) {
        match result {
            Ok(Reply::Json(j)) => {
                let text = Bytes::from(serde_json::to_vec(&j).unwrap_or_default());
                let kept = journal::Body::keep(&j, text.clone());
                (StatusCode::OK, text, Some(JSON), kept)
            }
            Ok(Reply::Printed(text, holds_secret)) => {
                let text = Bytes::from(text);
                let kept = journal::Body::keep_printed(text.clone(), holds_secret);
                (StatusCode::OK, text, Some(JSON), kept)
            }
            Ok(Reply::Empty) => (
                StatusCode::OK,
                Bytes::new(),
                None,
                journal::Body::Empty.into(),
            ),
            Ok(Reply::Jpeg(b)) => {
                let kept = journal::Body::Bytes(b.len()).into();
                (StatusCode::OK, Bytes::from(b), Some("image/jpeg"), kept)
            }
            Err(e) => {
                tracing::debug!(command, status = e.status.as_u16(), error = %e.message, "command refused");
                let body = e.body();
                let text = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
                let kept = journal::Body::keep(&body, text.clone());
                (e.status, text, Some(JSON), kept)
            }
        }
    }

    fn record(self, terminal: &Terminal, status: StatusCode, response: journal::Kept) {
        terminal.journal.keep(journal::KeptEntry {
            time: terminal.device.local_now(),
            method: static_name(
                self.method,
                ["GET", "POST", "OPTIONS", "PUT", "DELETE", "PUSH"],
            ),
            command: static_name(self.command, COMMANDS.iter().map(|(name, _, _)| *name)),
            query: journal::redacted_query(self.query),
            request: self.request,
            status: status.as_u16(),
            response,
        });
    }
}

/// `name` as one of `known` (not copied), or a copy of it.
fn static_name(name: &str, known: impl IntoIterator<Item = &'static str>) -> Cow<'static, str> {
    known
        .into_iter()
        .find(|k| *k == name)
        .map_or_else(|| Cow::Owned(name.to_owned()), Cow::Borrowed)
}

/// Runs a command that arrived through push mode (docs/device-api.md §8): no session is
/// needed, the reply is what the command would have answered over HTTP – its JSON (an
/// empty reply is `{}`; a JPEG is `{"image": "<base64>"}`) or the device's error text.
/// The exchange is journaled with the method `PUSH`.
pub(crate) async fn execute_pushed(
    terminal: &Terminal,
    command: &str,
    query: &str,
    body: &[u8],
) -> Result<Json, String> {
    let parameters = parse_query(Some(query));
    let call = Call::new(terminal, command, &parameters, None, None, body);
    let result = run_durably(&call, Gate::Trusted).await;
    let (status, response) = match &result {
        Ok(Reply::Json(j)) => (StatusCode::OK, journal::Body::of_json(j)),
        Ok(Reply::Printed(text, _)) => (StatusCode::OK, journal::Body::capture(text)),
        Ok(Reply::Empty | Reply::Jpeg(_)) => (StatusCode::OK, journal::Body::Empty),
        Err(e) => (e.status, journal::Body::of_json(&e.body())),
    };
    Exchange {
        method: "PUSH",
        command,
        query,
        request: call.kept_request(),
    }
    .record(terminal, status, response.into());
    match result {
        Ok(Reply::Json(j)) => Ok(j),
        Ok(Reply::Printed(text, _)) => serde_json::from_slice(&text).map_err(|e| e.to_string()),
        Ok(Reply::Empty) => Ok(json!({})),
        Ok(Reply::Jpeg(bytes)) => {
            use base64::Engine as _;
            Ok(json!({"image": base64::engine::general_purpose::STANDARD.encode(bytes)}))
        }
        Err(e) => Err(e.message),
    }
}

/// Whether the session gate applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    /// An HTTP request: commands that need a session get one checked.
    Checked,
    /// A command the terminal fetched itself (push mode): it runs without a session.
    Trusted,
}

const JSON: &str = "application/json; charset=utf-8";

/// The headers every reply carries, with the JSON content type or without one: built once
/// and copied into each reply, cheaper than inserting them one by one.
fn reply_headers(json: bool) -> &'static HeaderMap {
    static HEADERS: OnceLock<[HeaderMap; 2]> = OnceLock::new();
    let both = HEADERS.get_or_init(|| {
        let mut plain = HeaderMap::with_capacity(6);
        plain.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        plain.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("origin, x-csrftoken, content-type, accept"),
        );
        plain.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(
                "no-store, no-cache, must-revalidate, post-check=0, pre-check=0",
            ),
        );
        plain.insert(header::SERVER, HeaderValue::from_static("lighttpd/1.4.35"));
        let mut json = HeaderMap::with_capacity(6);
        json.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
        json.extend(plain.clone());
        [plain, json]
    });
    &both[usize::from(json)]
}

fn respond(status: StatusCode, body: Bytes, content_type: Option<&'static str>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    match content_type {
        Some(JSON) => *response.headers_mut() = reply_headers(true).clone(),
        other => {
            let h = response.headers_mut();
            *h = reply_headers(false).clone();
            if let Some(ct) = other {
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            }
        }
    }
    response
}

fn unknown_command(command: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("Unknown command: {command}"))
}

/// Runs a command; when it changed what the state file keeps, answers only once that
/// change is on disk (a terminal persists what it acknowledges). Should the disk refuse it,
/// the answer is 500: the change holds in memory but may not survive a restart.
async fn run_durably(call: &Call<'_>, gate: Gate) -> Result<Reply, ApiError> {
    let before = call.device.change_mark();
    let result = run(call, gate).await;
    let after = call.device.change_mark();
    if result.is_ok()
        && after > before
        && let Err(why) = call.device.wait_durable(after).await
    {
        return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, why));
    }
    result
}

async fn run(call: &Call<'_>, gate: Gate) -> Result<Reply, ApiError> {
    let Some((_, access, handler)) = COMMANDS.iter().find(|(name, _, _)| *name == call.command)
    else {
        return Err(unknown_command(call.command));
    };
    if !call.device.model().supports_command(call.command) {
        return Err(unknown_command(call.command));
    }
    // Writes take turns before anything takes the device's lock (the session check
    // included; see `Device::writers_turn`). Each first reads its body, which needs no
    // lock and so goes on side by side with other connections' requests.
    let _turn = if WRITES_TAKING_TURNS.contains(&call.command) {
        call.read_ahead();
        Some(call.device.writers_turn().await)
    } else {
        None
    };
    let public = match access {
        Access::Public => true,
        Access::Session => false,
        Access::RebootUrl => {
            call.device
                .config_value("general", "url_reboot_enabled")
                .as_deref()
                == Some("1")
        }
    };
    if !public && gate == Gate::Checked {
        call.device
            .authorize(call.session, call.command)
            .map_err(ApiError::unauthorized)?;
    }
    match handler {
        Now(f) => f(call),
        Later(f) => f(call).await,
    }
}

/// The commands that wait for [`Device::writers_turn`]: those that may change many rows
/// under the device's lock.
const WRITES_TAKING_TURNS: [&str; 4] = [
    "create_objects",
    "create_or_modify_objects",
    "modify_objects",
    "destroy_objects",
];

/// The writes whose handlers read their rows straight from the request's text
/// ([`Call::rows_request`]), and their members only when it has another shape.
const WRITES_OF_ROWS: [&str; 2] = ["create_objects", "create_or_modify_objects"];

/// The answer to a path of no segment or of several (`path` without its leading `/`),
/// which names no command: "Unknown command", not journaled.
fn not_a_command(path: &str) -> Response {
    let path = path.trim_start_matches('/');
    let err = unknown_command(path.strip_suffix(".fcgi").unwrap_or(path));
    respond(err.status, Bytes::from(err.body().to_string()), Some(JSON))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keeps_plus_and_decodes_percent() {
        let q = parse_query(Some("session=ab%2Fc+d&user_id=5"));
        assert_eq!(q[0], ("session".into(), "ab/c+d".into()));
        assert_eq!(q[1], ("user_id".into(), "5".into()));
    }

    #[test]
    fn cookie_session_is_found_after_query() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("login=admin; session=tok/1"),
        );
        assert_eq!(session_token(&[], &headers), Some("tok/1"));
        let q = parse_query(Some("session=fromquery"));
        assert_eq!(session_token(&q, &headers), Some("fromquery"));
    }
}
