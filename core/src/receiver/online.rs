//! Online mode (`POST /<command>.fcgi`, form-encoded): `new_card`, `new_qrcode`,
//! `new_user_identified`, `new_user_id_and_password` are answered with the decision
//! function and recorded as access events (once per request uuid); `device_is_alive` is
//! acknowledged.

use std::net::SocketAddr;

use serde_json::{Value as Json, json};

use super::Answer;
use super::enrollment::enrollment_result;
use super::sender::sender;
use crate::app::{Core, Idempotency, Subject};
use crate::card::WiegandCard;
use crate::device_events::json_i64;
use crate::device_events::{door_action, door_of};
use crate::domain::{CredentialValue, Direction, PersonId, PresentedFactor, Snapshot, decide_with};
use crate::store::Kind;

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
    let mut subjects = Subject::of_presented(&presented);
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

pub(super) async fn online(
    core: &Core,
    peer: SocketAddr,
    command: &str,
    query: Option<&str>,
    body: &[u8],
) -> Answer {
    let pairs = form(body, query);
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
        return Answer::Json(json!({}));
    }
    if matches!(
        command,
        "card_create" | "face_create" | "template_create" | "fingerprint_create"
    ) {
        let Ok(doc) = serde_json::from_slice::<Json>(body) else {
            return Answer::refused(400, "the body must be JSON");
        };
        let from = match sender(core, json_i64(doc.get("device_id")), peer).await {
            Ok(s) => s,
            Err(r) => return r,
        };
        enrollment_result(core, &from, &doc).await;
        return Answer::Empty;
    }
    if !matches!(
        command,
        "new_card" | "new_qrcode" | "new_user_identified" | "new_user_id_and_password"
    ) {
        return Answer::refused(404, "unknown command");
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
        return Answer::RawJson(reply.body);
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
    // Decided and recorded beside the tenant's writers (a one-time credential consumed
    // makes it a write).
    let answer = core
        .append_or_write_about(&caller, subjects, move |s, plan| {
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
        Ok(reply) => Answer::Json(reply),
        Err(e) => {
            tracing::warn!(terminal = %terminal, error = %e.detail, "online request not answered");
            Answer::refused(503, "try again")
        }
    }
}
