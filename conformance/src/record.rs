//! Recording and replay. `--record DIR` puts a recording proxy between the suite and the
//! terminal: every exchange of the cases (method, path, query, request and reply) goes to
//! `DIR/exchanges.ndjson`, passwords and session tokens masked and photos (biometric data)
//! kept only as `photo:<bytes>:<fingerprint>`. `acs-conformance replay
//! DIR` sends the same requests, in order, to an in-process simulator (logging in with its
//! own credentials and using its own sessions) and lists every exchange where the
//! simulator answers differently: another status, or a JSON reply of another shape.
//!
//! The recording holds every request of the run – the cases' and the workflow core's –
//! as the [gateway](crate::gateway) forwarded it; the terminal's callbacks to the core are
//! not part of it. A replay never sends anything to a host named in the recording: every
//! callback address a replayed request sets (monitor, online server, push server) is
//! pointed at the replay's own [`Sink`].

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{HeaderMap, Method, Uri};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

/// One recorded exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// Order in the run.
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/load_objects.fcgi`.
    pub path: String,
    /// Query string with the session masked.
    pub query: String,
    /// Request content type.
    pub request_type: String,
    /// Whether the session came in a cookie.
    #[serde(default)]
    pub cookie: bool,
    /// Request body: UTF-8 text, or `base64:` + base64 for binary.
    pub request: String,
    /// Reply status.
    pub status: u16,
    /// Reply content type.
    pub response_type: String,
    /// Reply body, as the request body.
    pub response: String,
}

/// Whether `bytes` are a photo (JPEG or PNG).
fn is_photo(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF]) || bytes.starts_with(b"\x89PNG")
}

/// A photo as the recording keeps it: its size and a fingerprint (FNV-1a), never its bytes.
fn photo_marker(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("photo:{}:{hash:016x}", bytes.len())
}

/// The bytes behind a photo marker: the suite's own photo with that fingerprint (the suite
/// only uploads its fixtures), else a fixture photo of the same kind.
fn photo_bytes(marker: &str) -> Vec<u8> {
    use crate::cases::images::{FACE_A, FACE_B};
    [FACE_A, FACE_B]
        .into_iter()
        .find(|p| photo_marker(p) == marker)
        .unwrap_or(FACE_A)
        .to_vec()
}

fn text_or_base64(bytes: &[u8]) -> String {
    if is_photo(bytes) {
        return photo_marker(bytes);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => format!(
            "base64:{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ),
    }
}

fn bytes_of(text: &str) -> Vec<u8> {
    if text.starts_with("photo:") {
        return photo_bytes(text);
    }
    match text.strip_prefix("base64:") {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap_or_default(),
        None => text.as_bytes().to_vec(),
    }
}

/// Masks `password` and `session` members of a JSON text.
fn mask_json(text: &str) -> String {
    let Ok(mut json) = serde_json::from_str::<Json>(text) else {
        return text.to_owned();
    };
    fn walk(v: &mut Json) {
        match v {
            Json::Object(o) => {
                for (k, v) in o.iter_mut() {
                    if (k == "password" || k == "session") && v.is_string() {
                        *v = json!("***");
                    } else if let Json::String(text) = v
                        && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text)
                        && is_photo(&bytes)
                    {
                        *v = json!(photo_marker(&bytes));
                    } else {
                        walk(v);
                    }
                }
            }
            Json::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut json);
    json.to_string()
}

fn mask_query(query: &str) -> String {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            if p.starts_with("session=") {
                "session=***"
            } else {
                p
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Writes exchanges to a recording as they happen (the gateway calls it for every
/// exchange of the run).
#[derive(Debug, Clone)]
pub struct Recorder {
    file: Arc<Mutex<(u64, std::fs::File)>>,
}

/// One exchange as the gateway saw it.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// HTTP method.
    pub method: &'a Method,
    /// The request's URI (path and query).
    pub uri: &'a Uri,
    /// The request's headers.
    pub headers: &'a HeaderMap,
    /// The request's body.
    pub body: &'a [u8],
    /// The reply's status.
    pub status: u16,
    /// The reply's content type.
    pub response_type: &'a str,
    /// The reply's body.
    pub response: &'a [u8],
}

impl Recorder {
    /// Starts a recording in `dir` (created if missing; an earlier recording is replaced).
    pub fn create(dir: &Path) -> Result<Recorder, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let file = std::fs::File::create(exchanges(dir)).map_err(|e| e.to_string())?;
        Ok(Recorder {
            file: Arc::new(Mutex::new((0, file))),
        })
    }

    /// Appends one exchange, secrets masked and photos replaced by their markers.
    pub fn write(&self, x: Exchange<'_>) {
        let request_type = x
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let mut guard = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        guard.0 += 1;
        let record = Recorded {
            seq: guard.0,
            method: x.method.to_string(),
            path: x.uri.path().to_owned(),
            query: mask_query(x.uri.query().unwrap_or("")),
            request_type,
            cookie: x.headers.contains_key("cookie"),
            request: mask_json(&text_or_base64(x.body)),
            status: x.status,
            response_type: x.response_type.to_owned(),
            response: mask_json(&text_or_base64(x.response)),
        };
        if let Ok(line) = serde_json::to_string(&record) {
            let _ = writeln!(guard.1, "{}", crate::redact::redact(&line));
        }
    }
}

/// The recording file of a directory.
pub fn exchanges(dir: &Path) -> PathBuf {
    dir.join("exchanges.ndjson")
}

/// Reads a recording.
pub fn read(dir: &Path) -> Result<Vec<Recorded>, String> {
    let file = std::fs::File::open(exchanges(dir))
        .map_err(|e| format!("{}: {e}", exchanges(dir).display()))?;
    std::io::BufReader::new(file)
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let line = line.map_err(|e| e.to_string())?;
            serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", i + 1))
        })
        .collect()
}

/// A JSON request with its photo markers replaced by base64 photos again.
fn unmask_photos(body: &[u8]) -> Vec<u8> {
    let Ok(mut json) = serde_json::from_slice::<Json>(body) else {
        return body.to_vec();
    };
    fn walk(v: &mut Json) {
        match v {
            Json::String(s) if s.starts_with("photo:") => {
                *v = json!(base64::engine::general_purpose::STANDARD.encode(photo_bytes(s)));
            }
            Json::Object(o) => o.values_mut().for_each(walk),
            Json::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut json);
    json.to_string().into_bytes()
}

/// The shape of a JSON value: object keys and value types, recursively (arrays by their
/// first element).
fn shape(v: &Json) -> Json {
    match v {
        Json::Object(o) => Json::Object(o.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Json::Array(a) => json!([a.first().map(shape).unwrap_or(Json::Null)]),
        Json::String(_) => json!("string"),
        Json::Number(_) => json!("number"),
        Json::Bool(_) => json!("bool"),
        Json::Null => json!("null"),
    }
}

/// The replay's own receiver of the simulator's callbacks: every callback address a
/// replayed request sets (the monitor, the online server, the push server) is pointed
/// here, so a replay never sends anything to a host named in the recording.
#[derive(Debug, Clone)]
pub struct Sink {
    addr: std::net::SocketAddr,
    received: Arc<std::sync::atomic::AtomicUsize>,
}

impl Sink {
    /// Listens on a loopback port and answers every request with `200 {}`.
    pub async fn start() -> Result<Sink, String> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = received.clone();
        let app = axum::Router::new().fallback(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async { axum::Json(json!({})) }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Sink { addr, received })
    }

    /// Where it listens.
    pub fn address(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// How many callbacks it received.
    pub fn received(&self) -> usize {
        self.received.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A replayed request body with every callback address replaced by the sink's:
    /// `hostname` / `port` (monitor), `ip` (the online server's `devices` row),
    /// `push_remote_address`, `url`.
    fn point_at_self(&self, body: Vec<u8>) -> Vec<u8> {
        let Ok(mut json) = serde_json::from_slice::<Json>(&body) else {
            return body;
        };
        let (host, port) = (self.addr.ip().to_string(), self.addr.port());
        fn walk(v: &mut Json, host: &str, port: u16) {
            match v {
                Json::Object(o) => {
                    for (k, v) in o.iter_mut() {
                        match (k.as_str(), &*v) {
                            ("hostname", Json::String(_)) => *v = json!(host),
                            ("port", Json::String(_)) => *v = json!(port.to_string()),
                            ("ip" | "push_remote_address", Json::String(_)) => {
                                *v = json!(format!("{host}:{port}"));
                            }
                            ("url", Json::String(_)) => {
                                *v = json!(format!("http://{host}:{port}/"))
                            }
                            _ => walk(v, host, port),
                        }
                    }
                }
                Json::Array(a) => a.iter_mut().for_each(|v| walk(v, host, port)),
                _ => {}
            }
        }
        walk(&mut json, &host, port);
        json.to_string().into_bytes()
    }
}

/// Replays `recorded` against the terminal at `base` (logging in as `login`/`password`),
/// with every callback address pointed at `sink`, and answers one line per difference.
pub async fn replay(
    recorded: &[Recorded],
    base: &str,
    login: &str,
    password: &str,
    sink: &Sink,
) -> Result<Vec<String>, String> {
    let http = reqwest::Client::new();
    let mut session: Option<String> = None;
    let mut differences = Vec::new();
    for r in recorded {
        let mut body = sink.point_at_self(unmask_photos(&bytes_of(&r.request)));
        if r.path == "/login.fcgi" {
            // A login that succeeded on the terminal uses the simulator's credentials; one
            // the terminal refused is refused here too.
            let password = if r.status == 200 {
                password
            } else {
                "not-the-password"
            };
            body = json!({"login": login, "password": password})
                .to_string()
                .into_bytes();
        }
        // A call the terminal refused for its session gets an invalid one here.
        let token = match (&session, r.status) {
            (_, 401) | (None, _) => "invalid-session".to_owned(),
            (Some(s), _) => crate::context::pct(s),
        };
        let query = r.query.replace("session=***", &format!("session={token}"));
        let url = if query.is_empty() {
            format!("{base}{}", r.path)
        } else {
            format!("{base}{}?{query}", r.path)
        };
        let method = Method::from_bytes(r.method.as_bytes()).map_err(|e| e.to_string())?;
        let mut req = http.request(method, &url).body(body);
        if !r.request_type.is_empty() {
            req = req.header("content-type", &r.request_type);
        }
        if r.cookie {
            let s = match (&session, r.status) {
                (Some(s), status) if status != 401 => s.clone(),
                _ => "invalid-session".to_owned(),
            };
            req = req.header("cookie", format!("session={s}"));
        }
        let reply = req.send().await.map_err(|e| format!("#{}: {e}", r.seq))?;
        let status = reply.status().as_u16();
        let bytes = reply.bytes().await.unwrap_or_default();
        let answer: Json = serde_json::from_slice(&bytes).unwrap_or(Json::Null);
        if r.path == "/login.fcgi"
            && r.status == 200
            && let Some(s) = answer["session"].as_str()
        {
            session = Some(s.to_owned());
        }
        let expected: Json = serde_json::from_slice(&bytes_of(&r.response)).unwrap_or(Json::Null);
        let what = format!("#{} {} {}", r.seq, r.method, r.path);
        if status != r.status {
            differences.push(format!(
                "{what}: status {} on the terminal, {status} on the simulator",
                r.status
            ));
        } else if shape(&expected) != shape(&answer) {
            differences.push(format!(
                "{what}: reply shape {} on the terminal, {} on the simulator",
                shape(&expected),
                shape(&answer)
            ));
        }
    }
    Ok(differences)
}
