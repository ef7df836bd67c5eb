//! The device-facing receiver, on a listener of its own: what terminals send to the core.
//!
//! - Monitor notifications (`POST <path>/<topic>`, JSON): `dao` access-log inserts become
//!   access events carrying the `acs_id`, de-duplicated by the device's log id (the
//!   terminal retries and may send the same row twice); `door`, `secbox`, `operation_mode`,
//!   `device_is_alive` and the other topics are acknowledged.
//! - Online mode (`POST /<command>.fcgi`, form-encoded): `new_card`, `new_qrcode`,
//!   `new_user_identified` (Pro), `new_user_id_and_password` are answered with the decision
//!   function – `{"result": {"event": 7, …, "actions": [door or sec_box]}}` on a grant,
//!   event 6 (or 3 when nobody was identified) with the reason as message otherwise – and
//!   recorded as access events; `device_is_alive` is acknowledged.
//!
//! Only registered terminals are heard: the `device_id` must belong to a terminal the sync
//! engine has met, and when the terminal's configured address is an IP literal the request
//! must come from it. Anything else is refused (403) and logged; malformed payloads get
//! 400; nothing panics.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::{Value as Json, json};

use crate::app::{Core, Idempotency, Subject};
use crate::card::WiegandCard;
use crate::domain::{
    CredentialValue, Direction, DoorId, PersonId, PresentedFactor, Snapshot, TenantId, Terminal,
    TerminalId, decide_with,
};
use crate::store::Kind;

/// Largest body accepted from a terminal (biometric images are the largest).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The receiver's router (serve it with connect info, see [`serve`]).
pub fn router(core: Core) -> Router {
    Router::new()
        .fallback(receive)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(core)
}

/// Serves the receiver on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    core: Core,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(core).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// An asynchronous enrollment result: ends the terminal's pending enrollment.
async fn enrollment_result(core: &Core, from: &Sender, doc: &Json) {
    match core.enrollments().pending_on(from.tenant, from.terminal) {
        Some(enrollment) => {
            let status = crate::enroll::complete(core, &enrollment, doc).await;
            tracing::info!(terminal = %from.terminal, enrollment = enrollment.id, ?status, "enrollment result");
        }
        None => {
            tracing::warn!(terminal = %from.terminal, "enrollment result without a pending enrollment ignored");
        }
    }
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, axum::Json(json!({"error": why}))).into_response()
}

/// A terminal the request was matched to.
struct Sender {
    tenant: TenantId,
    terminal: TerminalId,
}

async fn sender(core: &Core, device_id: Option<i64>, peer: SocketAddr) -> Result<Sender, Response> {
    let Some(device_id) = device_id else {
        tracing::warn!(%peer, "terminal request without device_id refused");
        return Err(refuse(StatusCode::BAD_REQUEST, "device_id is required"));
    };
    let Some((tenant, terminal)) = core.device_owner(device_id) else {
        tracing::warn!(%peer, device_id, "request from an unregistered terminal refused");
        return Err(refuse(StatusCode::FORBIDDEN, "unknown terminal"));
    };
    let address = core
        .read(tenant, |s| {
            s.topology
                .terminals
                .get(&terminal)
                .map(|t| t.address.clone())
        })
        .await
        .ok()
        .flatten();
    let Some(address) = address else {
        return Err(refuse(StatusCode::FORBIDDEN, "unknown terminal"));
    };
    if let Some(ip) = address_ip(&address)
        && ip != peer.ip()
    {
        tracing::warn!(%peer, device_id, "terminal request from an address other than its own refused");
        return Err(refuse(StatusCode::FORBIDDEN, "unexpected source address"));
    }
    Ok(Sender { tenant, terminal })
}

/// The IP literal of a terminal address (`http://10.0.0.5:80`), if it is one.
fn address_ip(address: &str) -> Option<IpAddr> {
    let rest = address
        .trim()
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let host = rest.split('/').next().unwrap_or_default();
    if let Ok(addr) = host.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    host.parse().ok()
}

async fn receive(
    State(core): State<Core>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    // Over the limit (or a broken body): the receiver's own error shape, not axum's text.
    let Ok(body) = body else {
        tracing::warn!(%peer, "terminal request body over the limit refused");
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body must be at most {MAX_BODY_BYTES} bytes"),
        );
    };
    let last = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
    match last.strip_suffix(".fcgi") {
        Some(command) => online(&core, peer, command, &uri, &body).await,
        None => monitor(&core, peer, &last, &body).await,
    }
}

fn json_i64(v: Option<&Json>) -> Option<i64> {
    match v? {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

async fn monitor(core: &Core, peer: SocketAddr, topic: &str, body: &[u8]) -> Response {
    let Ok(doc) = serde_json::from_slice::<Json>(body) else {
        tracing::warn!(%peer, topic, "monitor notification is not JSON");
        return refuse(StatusCode::BAD_REQUEST, "the body must be JSON");
    };
    let from = match sender(core, json_i64(doc.get("device_id")), peer).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if matches!(topic, "card" | "user_image" | "template" | "face_template") {
        enrollment_result(core, &from, &doc).await;
    } else if topic == "dao" {
        let Some(changes) = doc.get("object_changes").and_then(Json::as_array) else {
            return refuse(StatusCode::BAD_REQUEST, "object_changes is required");
        };
        let inserted_logs = changes.iter().filter_map(|change| {
            (change.get("object").and_then(Json::as_str) == Some("access_logs")
                && change.get("type").and_then(Json::as_str) == Some("inserted"))
            .then(|| change.get("values"))
            .flatten()
        });
        // A malformed row is the terminal's mistake (400, nothing recorded), not ours to retry.
        if inserted_logs
            .clone()
            .any(|v| json_i64(v.get("id")).is_none())
        {
            tracing::warn!(terminal = %from.terminal, "access log without id refused");
            return refuse(
                StatusCode::BAD_REQUEST,
                "every access log needs an integer id",
            );
        }
        for values in inserted_logs {
            if let Err(e) = record_device_log(core, &from, values).await {
                tracing::warn!(terminal = %from.terminal, error = %e, "access log not recorded");
                return refuse(StatusCode::SERVICE_UNAVAILABLE, "try again");
            }
        }
    } else {
        tracing::debug!(terminal = %from.terminal, topic, "monitor notification");
    }
    (StatusCode::OK, axum::Json(json!({}))).into_response()
}

/// The door behind a terminal's portal (portal n → the terminal's n-th door).
fn door_of(t: &Terminal, portal: i64) -> Option<DoorId> {
    let index = usize::try_from(portal.max(1) - 1).unwrap_or(0);
    t.door_ids
        .iter()
        .nth(index)
        .or_else(|| t.door_ids.iter().next())
        .copied()
}

/// Converts a device-local epoch (wall time read as UTC) to an instant in the site's zone.
fn device_instant(s: &Snapshot, t: &Terminal, local: i64) -> Option<Timestamp> {
    let tz = s
        .topology
        .site_of_facility(t.facility_id)
        .map_or(jiff::tz::TimeZone::UTC, |site| site.time_zone.clone());
    let wall = Timestamp::from_second(local).ok()?;
    let civil = wall.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    civil.to_zoned(tz).ok().map(|z| z.timestamp())
}

fn event_result(event: i64) -> (&'static str, Option<&'static str>) {
    match event {
        7 => ("granted", None),
        3 => ("denied", Some("unknown_credential")),
        6 => ("denied", Some("no_entitlement")),
        _ => ("denied", Some("device_error")),
    }
}

async fn record_device_log(core: &Core, from: &Sender, values: &Json) -> Result<(), String> {
    record_access_log(core, from.tenant, from.terminal, values).await
}

/// Records one row of a terminal's `access_logs` (pushed by the monitor, or read back by the
/// sync engine's catch-up) as an access event, once: a row already recorded (same terminal
/// and device log id) is skipped.
pub(crate) async fn record_access_log(
    core: &Core,
    tenant: TenantId,
    terminal: TerminalId,
    values: &Json,
) -> Result<(), String> {
    let from = Sender { tenant, terminal };
    let log_id = json_i64(values.get("id")).ok_or("access log without id")?;
    let event = json_i64(values.get("event")).unwrap_or(0);
    let local = json_i64(values.get("time")).unwrap_or(0);
    let user = json_i64(values.get("user_id")).unwrap_or(0);
    let portal = json_i64(values.get("portal_id")).unwrap_or(1);
    let card = json_i64(values.get("card_value")).unwrap_or(0);
    let key = Idempotency {
        key: format!("device-log:{}:{log_id}", from.terminal),
        fingerprint: format!("{event}:{local}:{user}"),
    };
    if core
        .idempotent_reply(from.tenant, &key.key)
        .await
        .map_err(|e| e.detail)?
        .is_some()
    {
        return Ok(());
    }
    let terminal = from.terminal;
    let received = core.now();
    let caller = crate::app::Caller {
        tenant: from.tenant,
        key_prefix: format!("terminal:{terminal}"),
    };
    let subjects = u64::try_from(user)
        .ok()
        .filter(|u| *u > 0)
        .map(|u| Subject::Person(PersonId::new(u)))
        .into_iter()
        .collect();
    let written = core
        .append_about(&caller, subjects, move |s, plan| {
            let t = s
                .topology
                .terminals
                .get(&terminal)
                .ok_or_else(|| crate::error::AppError::not_found("terminal", terminal))?;
            let occurred = device_instant(s, t, local).unwrap_or(received);
            let person = u64::try_from(user)
                .ok()
                .map(PersonId::new)
                .and_then(|p| s.people.get(&p));
            let (result, reason) = event_result(event);
            let data = json!({
                "type": format!("access.{result}"),
                "occurred_at": occurred.to_string(),
                "received_at": received.to_string(),
                "terminal_id": terminal.get(),
                "door_id": door_of(t, portal).map(|d| d.get()),
                "direction": "in",
                "result": result,
                "reason_code": reason,
                "person_id": person.map(|p| p.id.get()),
                "acs_id": person.map(|p| p.acs_id.as_str().to_owned()),
                "card": (card > 0).then(|| {
                    let c = WiegandCard::from_device_value(u64::try_from(card).unwrap_or(0));
                    format!("{},{}", c.facility_code(), c.number())
                }),
                "device_event": event,
                "device_log_id": log_id,
                "source": "terminal",
            });
            plan.access_event(occurred, data);
            plan.remember(&key, 200, &json!({}));
            Ok(())
        })
        .await;
    match written {
        Ok(()) => Ok(()),
        // A concurrent duplicate of the same row: already recorded.
        Err(e) if e.kind == crate::error::ErrorKind::IdempotencyReused => Ok(()),
        Err(e) => Err(e.detail),
    }
}

fn form(body: &[u8], query: Option<&str>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if std::str::from_utf8(body).is_ok() {
        pairs.extend(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())));
    }
    pairs
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `identifier_id` values (docs/device-api.md §3.9).
const FACE_READER: i64 = 0x6661_6300;
const FINGER_READER: i64 = 0x6269_6F00;
const QR_READER: i64 = 0x7172_6300;
const PIN_READER: i64 = 0x7069_6E00;

/// The subjects of an online request: whoever holds a value it presents, and the user a
/// terminal identified.
fn online_subjects(pairs: &[(String, String)]) -> Vec<Subject> {
    // Every value the request carries, whatever its command.
    let (card, qr, pin) = presented_values(pairs);
    let presented: Vec<PresentedFactor> = card.into_iter().chain(qr).chain(pin).collect();
    let mut subjects = crate::records::credential::presented_subjects(&presented);
    let user = field(pairs, "user_id").and_then(|v| v.trim().parse::<u64>().ok());
    subjects.extend(user.map(|u| Subject::Person(PersonId::new(u))));
    subjects
}

/// The card, QR code and PIN fields of an online request.
fn presented_values(
    pairs: &[(String, String)],
) -> (
    Option<PresentedFactor>,
    Option<PresentedFactor>,
    Option<PresentedFactor>,
) {
    let card = field(pairs, "card_value")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|v| *v > 0)
        .map(|v| PresentedFactor::Card(WiegandCard::from_device_value(v.unsigned_abs())));
    let qr = field(pairs, "qrcode_value").map(|q| PresentedFactor::Qr(q.to_owned()));
    let pin = field(pairs, "pin_value").map(|p| PresentedFactor::Pin(p.to_owned()));
    (card, qr, pin)
}

/// The factors an online request presents.
fn factors(s: &Snapshot, command: &str, pairs: &[(String, String)]) -> Vec<PresentedFactor> {
    let num = |name: &str| field(pairs, name).and_then(|v| v.trim().parse::<i64>().ok());
    let (card, qr, pin) = presented_values(pairs);
    match command {
        "new_card" => card.into_iter().collect(),
        "new_qrcode" => qr.into_iter().collect(),
        "new_user_identified" => {
            if num("event") == Some(3) {
                return Vec::new();
            }
            let person = num("user_id")
                .and_then(|u| u64::try_from(u).ok())
                .map(PersonId::new);
            let live = |want: fn(&CredentialValue) -> bool| {
                person.and_then(|p| {
                    s.credentials
                        .values()
                        .find(|c| c.person_id == p && c.is_live() && want(&c.value))
                        .map(|c| c.id)
                })
            };
            match num("identifier_id") {
                Some(FACE_READER) => live(|v| matches!(v, CredentialValue::Face { .. }))
                    .map(|credential_id| PresentedFactor::Face {
                        credential_id,
                        live: true,
                    })
                    .into_iter()
                    .collect(),
                Some(FINGER_READER) => live(|v| matches!(v, CredentialValue::Fingerprint(_)))
                    .map(|credential_id| PresentedFactor::Fingerprint { credential_id })
                    .into_iter()
                    .collect(),
                Some(QR_READER) => qr.into_iter().collect(),
                Some(PIN_READER) => pin.into_iter().collect(),
                _ => card.into_iter().chain(pin).collect(),
            }
        }
        _ => Vec::new(),
    }
}

pub(crate) fn door_action(t: &Terminal) -> Json {
    if t.model.to_ascii_lowercase().contains("access") {
        json!({"action": "door", "parameters": "door=1"})
    } else {
        json!({"action": "sec_box", "parameters": "id=65793, reason=1"})
    }
}

async fn online(core: &Core, peer: SocketAddr, command: &str, uri: &Uri, body: &[u8]) -> Response {
    let pairs = form(body, uri.query());
    if command == "device_is_alive" {
        let device_id = serde_json::from_slice::<Json>(body)
            .ok()
            .and_then(|j| json_i64(j.get("device_id")))
            .or_else(|| field(&pairs, "device_id").and_then(|v| v.parse().ok()));
        if device_id.is_some()
            && let Err(r) = sender(core, device_id, peer).await
        {
            return r;
        }
        return (StatusCode::OK, axum::Json(json!({}))).into_response();
    }
    if matches!(
        command,
        "card_create" | "face_create" | "template_create" | "fingerprint_create"
    ) {
        let Ok(doc) = serde_json::from_slice::<Json>(body) else {
            return refuse(StatusCode::BAD_REQUEST, "the body must be JSON");
        };
        let from = match sender(core, json_i64(doc.get("device_id")), peer).await {
            Ok(s) => s,
            Err(r) => return r,
        };
        enrollment_result(core, &from, &doc).await;
        return StatusCode::OK.into_response();
    }
    if !matches!(
        command,
        "new_card" | "new_qrcode" | "new_user_identified" | "new_user_id_and_password"
    ) {
        return refuse(StatusCode::NOT_FOUND, "unknown command");
    }
    let device_id = field(&pairs, "device_id").and_then(|v| v.trim().parse().ok());
    let from = match sender(core, device_id, peer).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let portal = field(&pairs, "portal_id")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_i64);
    let uuid = field(&pairs, "uuid").unwrap_or_default().to_owned();
    let key = Idempotency {
        key: format!("online:{}:{uuid}", from.terminal),
        fingerprint: command.to_owned(),
    };
    if !uuid.is_empty()
        && let Ok(Some(reply)) = core.idempotent_reply(from.tenant, &key.key).await
    {
        // The terminal retried: the same answer, recorded once.
        return (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            reply.body,
        )
            .into_response();
    }
    let terminal = from.terminal;
    let now = core.now();
    let command = command.to_owned();
    let caller = crate::app::Caller {
        tenant: from.tenant,
        key_prefix: format!("terminal:{terminal}"),
    };
    let (indexes, caller_tenant) = (core.clone(), from.tenant);
    let subjects = online_subjects(&pairs);
    let answer = core
        .write_about(&caller, subjects, 0, move |s, plan| {
            let t = s
                .topology
                .terminals
                .get(&terminal)
                .ok_or_else(|| crate::error::AppError::not_found("terminal", terminal))?;
            let door = door_of(t, portal);
            let presented = factors(s, &command, &pairs);
            let decision = match door {
                Some(door) if !presented.is_empty() => {
                    let lookup = indexes.lookup(caller_tenant, s);
                    Some(decide_with(
                        s,
                        Some(&lookup),
                        &presented,
                        door,
                        Direction::In,
                        now,
                    ))
                }
                _ => None,
            };
            for id in decision.iter().flat_map(|d| d.consume.iter()) {
                if let Some(c) = s.credentials.get(id) {
                    let mut c = c.clone();
                    if c.consume().is_ok() {
                        plan.audit("credential.consumed", Kind::Credential, Some(id.get()));
                        plan.put(c, None);
                    }
                }
            }
            let granted = decision.as_ref().is_some_and(|d| d.granted());
            let person = decision
                .as_ref()
                .and_then(|d| d.person_id)
                .and_then(|p| s.people.get(&p));
            let reason = match &decision {
                None => Some("unknown_credential"),
                Some(d) => d.reason().map(|r| r.code()),
            };
            let event = if granted {
                7
            } else if person.is_none() {
                3
            } else {
                6
            };
            let mut result = json!({"event": event, "portal_id": portal,
                "message": if granted { "Welcome".to_owned() } else { reason.unwrap_or("denied").replace('_', " ") }});
            if let Some(p) = person {
                result["user_id"] = json!(p.id.get());
                result["user_name"] = json!(p.name);
                result["user_image"] = json!(false);
            }
            if granted {
                result["actions"] = json!([door_action(t)]);
            }
            let reply = json!({"result": result});
            plan.access_event(
                now,
                json!({
                    "type": if granted { "access.granted" } else { "access.denied" },
                    "occurred_at": now.to_string(),
                    "terminal_id": terminal.get(),
                    "door_id": door.map(|d| d.get()),
                    "direction": "in",
                    "result": if granted { "granted" } else { "denied" },
                    "reason_code": reason,
                    "person_id": person.map(|p| p.id.get()),
                    "acs_id": person.map(|p| p.acs_id.as_str().to_owned()),
                    "credential_id": decision.as_ref().and_then(|d| d.credential_id).map(|c| c.get()),
                    "auth_type": decision.as_ref().and_then(|d| d.auth_type).map(|a| a.name()),
                    "source": "online",
                }),
            );
            if !uuid.is_empty() {
                plan.remember(&key, 200, &reply);
            }
            Ok(reply)
        })
        .await;
    match answer {
        Ok(reply) => (StatusCode::OK, axum::Json(reply)).into_response(),
        Err(e) => {
            tracing::warn!(terminal = %terminal, error = %e.detail, "online request not answered");
            refuse(StatusCode::SERVICE_UNAVAILABLE, "try again")
        }
    }
}
