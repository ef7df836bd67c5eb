//! What terminals report, as the core records it: a device's access-log row becoming an
//! access event carrying the `acs_id` (the person behind the row's user id, the door
//! behind its portal, the instant in the site's time), once per device log id – terminals
//! retry and may send a row twice; and the door action a grant opens. Used by the
//! receiver (rows the monitor pushes, online decisions), the sync engine (rows it reads
//! back) and the cloud keys (a door opened from a phone).

use jiff::Timestamp;
use serde_json::{Value as Json, json};

use crate::app::{Core, Idempotency, Subject};
use crate::card::WiegandCard;
use crate::domain::{DoorId, PersonId, Snapshot, TenantId, Terminal, TerminalId};
use crate::error::{AppError, ErrorKind};

/// The door behind a terminal's portal (portal n → the terminal's n-th door).
pub(crate) fn door_of(t: &Terminal, portal: i64) -> Option<DoorId> {
    let index = usize::try_from(portal.max(1) - 1).unwrap_or(0);
    t.door_ids
        .iter()
        .nth(index)
        .or_else(|| t.door_ids.iter().next())
        .copied()
}

/// Converts a device-local epoch (wall time read as UTC) to an instant: the device's
/// measured clock skew (`skew`, device local time minus the site's wall time; 0 when not
/// measured) is taken off, and the wall time left is read in the site's zone
/// (docs/domain.md §5.3).
pub(crate) fn device_instant(
    s: &Snapshot,
    t: &Terminal,
    local: i64,
    skew: i64,
) -> Option<Timestamp> {
    let tz = s
        .topology
        .site_of_facility(t.facility_id)
        .map_or(jiff::tz::TimeZone::UTC, |site| site.time_zone.clone());
    let wall = Timestamp::from_second(local.checked_sub(skew)?).ok()?;
    let civil = wall.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    civil.to_zoned(tz).ok().map(|z| z.timestamp())
}

pub(crate) fn event_result(event: i64) -> (&'static str, Option<&'static str>) {
    match event {
        7 => ("granted", None),
        3 => ("denied", Some("unknown_credential")),
        6 => ("denied", Some("no_entitlement")),
        _ => ("denied", Some("device_error")),
    }
}

/// Why an access-log row was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LogError {
    /// The row has no integer id: the terminal's mistake, not ours to retry.
    #[error("access log without id")]
    WithoutId,
    /// The core could not record it (try again).
    #[error("{0}")]
    NotRecorded(#[from] AppError),
}

/// Records one row of a terminal's `access_logs` (pushed by the monitor, or read back by the
/// sync engine's catch-up) as an access event, once: a row already recorded (same terminal
/// and device log id) is skipped.
pub(crate) async fn record_access_log(
    core: &Core,
    tenant: TenantId,
    terminal: TerminalId,
    values: &Json,
) -> Result<(), LogError> {
    let log_id = json_i64(values.get("id")).ok_or(LogError::WithoutId)?;
    let event = json_i64(values.get("event")).unwrap_or(0);
    let local = json_i64(values.get("time")).unwrap_or(0);
    let user = json_i64(values.get("user_id")).unwrap_or(0);
    let portal = json_i64(values.get("portal_id")).unwrap_or(1);
    let card = json_i64(values.get("card_value")).unwrap_or(0);
    let key = match recorded_as(core, tenant, terminal, log_id, &fingerprint_of(values)).await? {
        Recorded::Already => return Ok(()),
        Recorded::Not(key) => key,
    };
    let received = core.now();
    let skew = core.sync_board().clock_skew(tenant, terminal).unwrap_or(0);
    let caller = crate::app::Caller {
        tenant,
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
                .ok_or_else(|| AppError::not_found("terminal", terminal))?;
            let occurred = device_instant(s, t, local, skew).unwrap_or(received);
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
        Err(e) if e.kind == ErrorKind::IdempotencyReused => Ok(()),
        Err(e) => Err(LogError::NotRecorded(e)),
    }
}

/// What a device's access-log row is told apart by, besides its id (`event:time:user`).
pub(crate) fn fingerprint_of(values: &Json) -> String {
    let event = json_i64(values.get("event")).unwrap_or(0);
    let local = json_i64(values.get("time")).unwrap_or(0);
    let user = json_i64(values.get("user_id")).unwrap_or(0);
    format!("{event}:{local}:{user}")
}

/// Whether a row was recorded, and the key to record it under if not.
enum Recorded {
    Already,
    Not(Idempotency),
}

/// Looks the row with `log_id` and `fingerprint` up among the recorded ones.
async fn recorded_as(
    core: &Core,
    tenant: TenantId,
    terminal: TerminalId,
    log_id: i64,
    fingerprint: &str,
) -> Result<Recorded, AppError> {
    // A row is the device's: keyed by the device id, a terminal deleted and registered
    // again (a new terminal id, the same device) does not replay its log as new events.
    // Rows recorded under the terminal's id (before the device was known) count too.
    let by_terminal = format!("device-log:{terminal}:{log_id}");
    let mut key = Idempotency {
        key: match core.device_of(tenant, terminal) {
            Some(device) => format!("device-log:device-{device}:{log_id}"),
            None => by_terminal.clone(),
        },
        fingerprint: fingerprint.to_owned(),
    };
    // The same id with another row is a device that was wiped and counts its log from 1
    // again: a new row, kept under the id and its content.
    let mut reused = false;
    for seen in [key.key.clone(), by_terminal] {
        if let Some(reply) = core.idempotent_reply(tenant, &seen).await? {
            if reply.fingerprint == fingerprint {
                return Ok(Recorded::Already);
            }
            reused = true;
        }
    }
    if reused {
        key.key = format!("{}:{fingerprint}", key.key);
        if core.idempotent_reply(tenant, &key.key).await?.is_some() {
            return Ok(Recorded::Already);
        }
    }
    Ok(Recorded::Not(key))
}

/// Whether the device's access-log row `values` is one the core recorded (the same id and
/// content): the sync engine's test that a device's log goes on from its cursor.
pub(crate) async fn is_recorded(
    core: &Core,
    tenant: TenantId,
    terminal: TerminalId,
    values: &Json,
) -> Result<bool, AppError> {
    let Some(log_id) = json_i64(values.get("id")) else {
        return Ok(false);
    };
    let found = recorded_as(core, tenant, terminal, log_id, &fingerprint_of(values)).await?;
    Ok(matches!(found, Recorded::Already))
}

/// The action that opens a terminal's door: its relay (iDAccess) or its Security Box.
pub(crate) fn door_action(t: &Terminal) -> Json {
    if t.model.opens_with_relay() {
        json!({"action": "door", "parameters": "door=1"})
    } else {
        json!({"action": "sec_box", "parameters": "id=65793, reason=1"})
    }
}

/// An integer member that a terminal may send as a number or as a string.
pub(crate) fn json_i64(v: Option<&Json>) -> Option<i64> {
    match v? {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}
