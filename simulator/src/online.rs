//! Online mode (docs/device-api.md §7): with `general.online = "1"` the terminal asks the
//! server configured in `online_client.server_id` to decide. Pro mode
//! (`local_identification = "1"`) identifies locally and sends `new_user_identified.fcgi`;
//! Enterprise mode sends the raw credential (`new_card.fcgi`, `new_qrcode.fcgi`,
//! `new_user_id_and_password.fcgi`,
//! `new_biometric_image.fcgi` / `new_biometric_template.fcgi`). Requests are form-encoded
//! (binary for fingerprints) with an empty `session` query parameter, retried up to
//! `max_request_attempts`; the reply's `result` is validated strictly and obeyed. When the
//! server cannot be reached the terminal enters contingency (if enabled): it decides
//! locally, tells the monitor (`operation_mode`), and probes `device_is_alive.fcgi` every
//! 5 s until the server answers 200.
//!
//! The HTTP calls run in an owned task of the terminal; the caller only awaits the outcome.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::Rng;
use serde_json::{Value as Json, json};

use crate::callbacks::{Callback, monitor_callback, timeout_ms};
use crate::device::decide::{self, Credential, Decision, Reason};
use crate::device::{DeviceError, Logged};
use crate::identify;
use crate::journal::CallbackAttempt;
use crate::person::{self, Presentation};
use crate::terminal::Terminal;
use crate::wire::{MemberError, Members};

/// Period of the contingency probe (real fw 6.22: every 5 s).
pub const ALIVE_PERIOD: Duration = Duration::from_secs(5);
/// Attempts per contingency probe round (real fw 6.22: two back-to-back).
pub const ALIVE_ATTEMPTS: u32 = 2;
/// Most attempts per request, whatever `online_client.max_request_attempts` says.
pub const MAX_REQUEST_ATTEMPTS: u32 = 100;
/// `access_logs.event` when the server gave no usable answer.
pub const NO_RESPONSE: i64 = 14;

/// Whether the terminal is in contingency; clones share it.
#[derive(Debug, Clone, Default)]
pub struct OnlineState {
    inner: Arc<Mutex<Contingency>>,
}

#[derive(Debug, Default)]
struct Contingency {
    active: bool,
    last_offline: i64,
}

impl OnlineState {
    /// Whether the terminal currently decides locally because the server is lost.
    pub fn in_contingency(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .active
    }

    /// Enters contingency; returns false if it already was.
    fn enter(&self, now: i64) -> bool {
        let mut c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let entered = !c.active;
        c.active = true;
        c.last_offline = now;
        entered
    }

    fn leave(&self) -> i64 {
        let mut c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        c.active = false;
        c.last_offline
    }
}

/// A validated `result` of the server's reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerResult {
    /// Event to log (7 grant, 6 deny, …).
    pub event: i64,
    /// User the server identified.
    pub user_id: Option<i64>,
    /// Portal to log.
    pub portal_id: Option<i64>,
    /// `(action, parameters)` to perform.
    pub actions: Vec<(String, String)>,
    /// On-screen message.
    pub message: Option<String>,
}

/// Largest server reply the terminal reads (online mode and push-mode commands); a longer
/// reply counts as a malformed one. Real firmware documents no limit.
pub const MAX_REPLY_BYTES: usize = 1024 * 1024;

/// Reads a server's reply body of at most [`MAX_REPLY_BYTES`]; `None` when it is longer or
/// the connection broke.
pub(crate) async fn read_reply(mut response: reqwest::Response) -> Option<Vec<u8>> {
    let limit = u64::try_from(MAX_REPLY_BYTES).unwrap_or(u64::MAX);
    if response.content_length().is_some_and(|n| n > limit) {
        return None;
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        if body.len() + chunk.len() > MAX_REPLY_BYTES {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

/// Validates a reply body like the firmware's binding layer (docs/device-api.md §7.3).
pub fn parse_result(body: &[u8]) -> Result<ServerResult, String> {
    let json: Json = serde_json::from_slice(body).map_err(|e| format!("Invalid JSON ({e})"))?;
    let top = Members::of(&json, "reply").map_err(|e| e.to_string())?;
    let r = top.object("result").map_err(|e| e.to_string())?;
    let err = |e: MemberError| e.to_string();
    let event = r.int("event").map_err(err)?;
    let user_id = r.opt_int64("user_id").map_err(err)?;
    r.opt_string("user_name").map_err(err)?;
    let portal_id = r.opt_int("portal_id").map_err(err)?;
    let message = r.opt_string("message").map_err(err)?.map(str::to_owned);
    let mut actions = Vec::new();
    for a in r.opt_array("actions").map_err(err)?.unwrap_or_default() {
        let m = Members::of(a, "actions").map_err(err)?;
        actions.push((
            m.string("action").map_err(err)?.to_owned(),
            m.opt_string("parameters")
                .map_err(err)?
                .unwrap_or("")
                .to_owned(),
        ));
    }
    Ok(ServerResult {
        event,
        user_id,
        portal_id,
        actions,
        message,
    })
}

/// One request to the online server.
#[derive(Debug, Clone)]
struct Request {
    endpoint: &'static str,
    query: Vec<(String, String)>,
    form: Option<Vec<(String, String)>>,
    bytes: Option<Vec<u8>>,
}

pub(crate) fn uuid(terminal: &Terminal) -> String {
    let n: u32 = terminal.rng().random();
    format!("{n:08x}")
}

fn build_request(
    terminal: &Terminal,
    credential: &Credential,
    presentation: &Presentation,
    portal: i64,
) -> Request {
    let device = &terminal.device;
    let device_id = device.identity().device_id.to_string();
    let time = device.local_now().to_string();
    let pro = device
        .config_value("general", "local_identification")
        .as_deref()
        != Some("0");
    let extract = device
        .config_value("online_client", "extract_template")
        .as_deref()
        == Some("1");
    let uuid = uuid(terminal);
    let empty_session = vec![("session".to_owned(), String::new())];
    let form = |pairs: Vec<(&str, String)>| {
        let mut pairs: Vec<(String, String)> =
            pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        pairs.sort();
        Some(pairs)
    };
    let card_value = match credential {
        Credential::Card(v) => v.to_string(),
        _ => "0".into(),
    };
    match (pro, credential, presentation) {
        (false, Credential::Card(_), _) => Request {
            endpoint: "new_card",
            query: empty_session,
            form: form(vec![
                ("block_read_data", String::new()),
                ("block_read_error", "0".into()),
                ("card_value", card_value),
                ("device_id", device_id),
                ("identifier_id", credential.identifier_id().to_string()),
                ("panic", "0".into()),
                ("portal_id", portal.to_string()),
                ("time", time),
                ("uuid", uuid),
            ]),
            bytes: None,
        },
        (false, Credential::Qr(q), _) => Request {
            endpoint: "new_qrcode",
            query: empty_session,
            form: form(vec![
                ("device_id", device_id),
                ("identifier_id", credential.identifier_id().to_string()),
                ("portal_id", portal.to_string()),
                ("qrcode_value", q.clone()),
                ("time", time),
                ("uuid", uuid),
            ]),
            bytes: None,
        },
        (false, Credential::IdAndPassword { user_id, password }, _) => Request {
            endpoint: "new_user_id_and_password",
            query: empty_session,
            form: form(vec![
                ("device_id", device_id),
                ("identifier_id", credential.identifier_id().to_string()),
                ("password", password.clone()),
                ("portal_id", portal.to_string()),
                ("time", time),
                ("user_id", user_id.to_string()),
                ("uuid", uuid),
            ]),
            bytes: None,
        },
        (false, Credential::FingerTemplate(_), Presentation::Finger { seed }) => {
            let bitmap = person::synthetic_fingerprint(*seed);
            let (endpoint, bytes) = if extract {
                (
                    "new_biometric_template",
                    crate::enroll::sha_template(&bitmap),
                )
            } else {
                ("new_biometric_image", bitmap)
            };
            let query = vec![
                ("device_id", device_id),
                ("identifier_id", credential.identifier_id().to_string()),
                ("width", person::FINGER_WIDTH.to_string()),
                ("height", person::FINGER_HEIGHT.to_string()),
                ("time", time),
                ("portal_id", portal.to_string()),
                ("uuid", uuid),
                ("variance", "0".into()),
                ("session", String::new()),
            ];
            Request {
                endpoint,
                query: query.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                form: None,
                bytes: Some(bytes),
            }
        }
        // Pro mode, and credentials Enterprise mode has no raw endpoint for (faces, PINs):
        // identify locally and ask the server to authorise.
        _ => {
            let user = device.identify_user(credential);
            let has_image = user
                .as_ref()
                .is_some_and(|(id, _, _)| device.user_image(*id).is_ok());
            let (user_id, name, registration) = user.unwrap_or((0, String::new(), String::new()));
            let (qr, pin) = match credential {
                Credential::Qr(q) => (q.clone(), String::new()),
                Credential::Pin(p) => (String::new(), p.clone()),
                _ => (String::new(), String::new()),
            };
            Request {
                endpoint: "new_user_identified",
                query: empty_session,
                form: form(vec![
                    ("block_read_data", String::new()),
                    ("block_read_error", "0".into()),
                    ("card_value", card_value),
                    (
                        "confidence",
                        if matches!(credential, Credential::Face(_)) {
                            "1450"
                        } else {
                            "0"
                        }
                        .into(),
                    ),
                    ("device_id", device_id),
                    ("duress", "0".into()),
                    ("event", if user_id != 0 { "8" } else { "3" }.into()),
                    ("face_mask", "0".into()),
                    ("identifier_id", credential.identifier_id().to_string()),
                    ("log_type_id", "-1".into()),
                    ("password", String::new()),
                    ("pin_value", pin),
                    ("portal_id", portal.to_string()),
                    ("qrcode_value", qr),
                    ("registration", registration),
                    ("remote_interlock_state", "disabled".into()),
                    ("time", time),
                    ("user_has_image", if has_image { "1" } else { "0" }.into()),
                    ("user_id", user_id.to_string()),
                    ("user_name", name),
                    ("uuid", uuid),
                ]),
                bytes: None,
            }
        }
    }
}

/// What the server said.
enum Outcome {
    Decided(ServerResult),
    /// 200 but the reply failed validation (not retried; the error is logged).
    Invalid,
    /// Every attempt failed (refused, timeout or non-200).
    Unreachable,
}

async fn ask(terminal: &Terminal, server: &str, request: &Request) -> Outcome {
    let device = &terminal.device;
    // Bounded like the durations: a huge count would retry an unreachable server forever.
    let attempts: u32 = device
        .config_value("online_client", "max_request_attempts")
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n >= 1)
        .map_or(3, |n| n.min(MAX_REQUEST_ATTEMPTS));
    let timeout = timeout_ms(
        &device
            .config_value("online_client", "request_timeout")
            .unwrap_or_default(),
    );
    let url = format!(
        "http://{}/{}.fcgi",
        server.trim_end_matches('/'),
        request.endpoint
    );
    let journal_body = match &request.form {
        Some(pairs) => Json::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                .collect(),
        ),
        None => json!({"bytes": request.bytes.as_ref().map_or(0, Vec::len)}),
    };
    let record = Callback {
        url: url.clone(),
        topic: request.endpoint.into(),
        body: journal_body,
        timeout,
        time: device.local_now(),
    };
    for attempt in 1..=attempts {
        let mut req = terminal
            .http
            .post(&url)
            .query(&request.query)
            .timeout(timeout);
        req = match (&request.form, &request.bytes) {
            (Some(pairs), _) => req.form(pairs),
            (None, Some(bytes)) => req
                .header("Content-Type", "application/octet-stream")
                .body(bytes.clone()),
            (None, None) => req,
        };
        let answer = req.send().await;
        let (outcome, body) = match answer {
            Ok(r) => {
                let status = r.status().as_u16();
                (Ok(status), read_reply(r).await)
            }
            Err(e) => (
                Err(if e.is_timeout() {
                    "timeout".to_owned()
                } else {
                    "connection refused".to_owned()
                }),
                None,
            ),
        };
        terminal
            .journal
            .record_callback(CallbackAttempt::sent(&record, attempt, outcome.clone()));
        if outcome == Ok(200) {
            return match parse_result(&body.unwrap_or_default()) {
                Ok(r) => Outcome::Decided(r),
                Err(e) => {
                    tracing::warn!(endpoint = request.endpoint, error = %e, "online server reply refused");
                    Outcome::Invalid
                }
            };
        }
    }
    Outcome::Unreachable
}

/// Identifies a presentation: online when configured and not in contingency, locally
/// otherwise. The online exchange runs in an owned task of the terminal.
pub async fn identify(
    terminal: &Terminal,
    presentation: &Presentation,
    portal: i64,
) -> Result<Logged, DeviceError> {
    let device = &terminal.device;
    let online = device.config_value("general", "online").as_deref() == Some("1");
    let server = device.online_server_address();
    let (true, Some(server), false) = (online, server, terminal.online.in_contingency()) else {
        return identify::identify(terminal, presentation, portal).await;
    };
    let credential = identify::credential(terminal, presentation)?;
    let request = build_request(terminal, &credential, presentation, portal);
    let task_terminal = terminal.clone();
    let task_server = server.clone();
    let outcome = terminal
        .tasks
        .spawn(async move { ask(&task_terminal, &task_server, &request).await })
        .await
        .unwrap_or(Outcome::Unreachable);
    match outcome {
        Outcome::Decided(result) => {
            let decision = Decision {
                event: result.event,
                reason: if result.event == decide::event::GRANTED {
                    Reason::Allowed
                } else {
                    Reason::NoRule
                },
                user_id: result
                    .user_id
                    .or_else(|| device.identify_user(&credential).map(|u| u.0)),
                rule_id: None,
            };
            let logged = device.log_decision(
                &credential,
                result.portal_id.unwrap_or(portal),
                decision,
                &result.actions,
            )?;
            identify::notify(terminal, &logged, result.message.as_deref()).await;
            Ok(logged)
        }
        Outcome::Invalid => log_no_response(terminal, &credential, portal).await,
        Outcome::Unreachable => {
            let contingency = device
                .config_value("online_client", "contingency_enabled")
                .as_deref()
                != Some("0");
            if !contingency {
                return log_no_response(terminal, &credential, portal).await;
            }
            enter_contingency(terminal, server);
            identify::identify(terminal, presentation, portal).await
        }
    }
}

/// Logs (and reports) event 14: the server gave no usable answer; nothing opens.
async fn log_no_response(
    terminal: &Terminal,
    credential: &Credential,
    portal: i64,
) -> Result<Logged, DeviceError> {
    let decision = Decision {
        event: NO_RESPONSE,
        reason: Reason::NoRule,
        user_id: None,
        rule_id: None,
    };
    let logged = terminal
        .device
        .log_decision(credential, portal, decision, &[])?;
    identify::notify(terminal, &logged, None).await;
    Ok(logged)
}

fn operation_mode(terminal: &Terminal, mode: i64, last_offline: i64) -> Option<Callback> {
    let device = &terminal.device;
    let now = device.local_now();
    let body = json!({
        "operation_mode": {"mode": mode, "mode_name": if mode == 0 { "DEFAULT" } else { "CONTINGENCY" },
                           "time": now, "last_offline": last_offline, "exception_mode": ""},
        "device_id": device.identity().device_id,
    });
    monitor_callback(device, "operation_mode", body)
}

fn enter_contingency(terminal: &Terminal, server: String) {
    let now = terminal.device.local_now();
    if !terminal.online.enter(now) {
        return;
    }
    tracing::warn!("online server unreachable: contingency");
    terminal.display.touch();
    terminal.outbox.send_all(operation_mode(terminal, 1, now));
    let t = terminal.clone();
    terminal.tasks.spawn(async move {
        let url = format!(
            "http://{}/device_is_alive.fcgi",
            server.trim_end_matches('/')
        );
        loop {
            tokio::select! {
                () = t.scheduler.sleep(ALIVE_PERIOD) => {}
                () = t.shutdown.cancelled() => return,
            }
            let body = json!({"access_logs": t.device.access_log_count()});
            let record = Callback {
                url: url.clone(),
                topic: "device_is_alive".into(),
                body: body.clone(),
                timeout: Duration::from_secs(5),
                time: t.device.local_now(),
            };
            for attempt in 1..=ALIVE_ATTEMPTS {
                let outcome = match t
                    .http
                    .post(&url)
                    .query(&[("session", "")])
                    .json(&body)
                    .timeout(record.timeout)
                    .send()
                    .await
                {
                    Ok(r) => Ok(r.status().as_u16()),
                    Err(_) => Err("connection refused".to_owned()),
                };
                t.journal
                    .record_callback(CallbackAttempt::sent(&record, attempt, outcome.clone()));
                if outcome == Ok(200) {
                    let last_offline = t.online.leave();
                    t.display.touch();
                    tracing::info!("online server back: leaving contingency");
                    t.outbox.send_all(operation_mode(&t, 0, last_offline));
                    return;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_replies_are_validated_like_the_firmware() {
        let ok = parse_result(br#"{"result":{"event":7,"user_id":1000,"user_name":"John","user_image":false,"portal_id":1,"message":"Welcome","actions":[{"action":"sec_box","parameters":"id=65793, reason=1"}]}}"#).unwrap();
        assert_eq!(ok.event, 7);
        assert_eq!(
            ok.actions,
            vec![("sec_box".into(), "id=65793, reason=1".into())]
        );
        assert_eq!(
            parse_result(b"{}").unwrap_err(),
            "Invalid member 'result' (object expected, got undefined)"
        );
        assert_eq!(
            parse_result(br#"{"result":{}}"#).unwrap_err(),
            "Invalid member 'event' (int expected, got undefined)"
        );
        assert_eq!(
            parse_result(br#"{"result":{"event":7,"user_id":"5"}}"#).unwrap_err(),
            "Invalid member 'user_id' (int64 expected, got string)"
        );
        assert!(parse_result(b"not json").is_err());
    }
}
