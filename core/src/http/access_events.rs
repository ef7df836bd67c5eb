//! Decisions and their records: `POST /v1/decisions` runs the decision function on a
//! presentation at a door (consuming one-time credentials on a grant) and records an
//! access event; `GET /v1/access-events` lists them, `GET /v1/access-events/stream` streams
//! them as server-sent events (resuming after `Last-Event-ID`). Every grant carries the
//! person's `acs_id`. `GET /v1/terminals/{id}/desired-state` shows what a terminal must
//! hold now.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::input::{DIRECTIONS, Input, name_of, named, opt_instant, path_id};
use super::{MAX_PAGE, ok};
use crate::app::{Caller, Core};
use crate::card::WiegandCard;
use crate::domain::{
    CredentialId, DoorId, Entitlement, PresentedFactor, TerminalId, decide_with as decide_access,
    desired_state as desired,
};
use crate::error::AppError;
use crate::store::{AccessEventRow, Kind};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CardIn {
    facility_code: u32,
    card_number: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatchIn {
    credential_id: u64,
    #[serde(default = "yes")]
    live: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloudKeyIn {
    token: String,
    pin: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum FactorIn {
    Card(CardIn),
    Face(MatchIn),
    Fingerprint(MatchIn),
    Pin(String),
    Qr(String),
    CloudKey(CloudKeyIn),
    MobileKey(MatchIn),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecisionIn {
    door_id: u64,
    #[serde(default = "inbound")]
    direction: String,
    at: Option<String>,
    factors: Vec<FactorIn>,
}

fn inbound() -> String {
    "in".into()
}

fn entitlement_view(e: &Entitlement) -> Json {
    match e {
        Entitlement::Membership(id) => json!({"member_id": id.get()}),
        Entitlement::Attendee(id) => json!({"event_id": id.get()}),
        Entitlement::Access(id) => json!({"access_id": id.get()}),
    }
}

/// `POST /v1/decisions`: decides a presentation and records the access event.
pub(crate) async fn decide(
    State(core): State<Core>,
    caller: Caller,
    input: Input<DecisionIn>,
) -> Result<Response, AppError> {
    let body = input.body;
    let direction = named("direction", &body.direction, DIRECTIONS)?;
    let at = opt_instant("at", body.at.as_deref())?.unwrap_or_else(|| core.now());
    if body.factors.is_empty() {
        return Err(AppError::invalid("factors", "factors must not be empty"));
    }
    let factors: Vec<PresentedFactor> = body
        .factors
        .into_iter()
        .map(|f| match f {
            FactorIn::Card(c) => {
                PresentedFactor::Card(WiegandCard::new(c.facility_code, c.card_number))
            }
            FactorIn::Face(m) => PresentedFactor::Face {
                credential_id: CredentialId::new(m.credential_id),
                live: m.live,
            },
            FactorIn::Fingerprint(m) => PresentedFactor::Fingerprint {
                credential_id: CredentialId::new(m.credential_id),
            },
            FactorIn::Pin(p) => PresentedFactor::Pin(p),
            FactorIn::Qr(q) => PresentedFactor::Qr(q),
            FactorIn::CloudKey(k) => PresentedFactor::CloudKey {
                token: core.digest(k.token.trim()),
                pin: k.pin.map(|p| core.digest(p.trim())),
            },
            FactorIn::MobileKey(m) => PresentedFactor::MobileKey {
                credential_id: CredentialId::new(m.credential_id),
            },
        })
        .collect();
    let door = DoorId::new(body.door_id);
    let (indexes, tenant) = (core.clone(), caller.tenant);
    let subjects = crate::app::Subject::of_presented(&factors);
    // An append under the snapshot's read lock, beside the tenant's writers; a decision
    // that consumes a one-time credential is made again as a write.
    let view = core
        .append_or_write_about(&caller, subjects, move |s, plan| {
            if !s.topology.doors.contains_key(&door) {
                return Err(AppError::invalid(
                    "door_id",
                    format!("door {door} does not exist"),
                ));
            }
            let lookup = indexes.lookup(tenant, s);
            let decision = decide_access(s, Some(&lookup), &factors, door, direction, at);
            for id in &decision.consume {
                if let Some(c) = s.credentials.get(id) {
                    let mut c = c.clone();
                    if c.consume().is_ok() {
                        plan.audit("credential.consumed", Kind::Credential, Some(id.get()));
                        plan.put(c, None);
                    }
                }
            }
            let event = json!({
                "type": if decision.granted() { "access.granted" } else { "access.denied" },
                "occurred_at": at.to_string(),
                "door_id": door.get(),
                "direction": name_of(direction, DIRECTIONS),
                "result": if decision.granted() { "granted" } else { "denied" },
                "reason_code": decision.reason().map(|r| r.code()),
                "person_id": decision.person_id.map(|p| p.get()),
                "acs_id": decision.acs_id.as_ref().map(|a| a.as_str().to_owned()),
                "credential_id": decision.credential_id.map(CredentialId::get),
                "auth_type": decision.auth_type.map(|a| a.name()),
                "rules": decision.rules.iter().map(entitlement_view).collect::<Vec<_>>(),
                "source": "api",
            });
            plan.access_event(at, event.clone());
            Ok(event)
        })
        .await?;
    Ok(ok(view))
}

fn event_json(row: &AccessEventRow) -> Json {
    let mut view = row.data.clone();
    view["id"] = json!(row.id);
    view
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsQuery {
    limit: Option<usize>,
    after: Option<u64>,
    acs_id: Option<String>,
    person_id: Option<u64>,
    door_id: Option<u64>,
    terminal_id: Option<u64>,
    /// `type`: `access.granted`, `access.denied`, `credential.locked_out` …
    #[serde(rename = "type")]
    kind: Option<String>,
    /// `granted` or `denied`.
    result: Option<String>,
    /// Events that occurred at or after this instant (RFC 3339).
    since: Option<String>,
    /// Events that occurred before this instant (RFC 3339).
    until: Option<String>,
}

/// Rows read per store query while a filtered page fills.
const SCAN_BATCH: usize = 500;
/// Rows one request scans at most; a filtered page may end early with a cursor to go on.
const SCAN_LIMIT: usize = 20_000;

/// The filters of a list request, checked.
struct EventFilter {
    acs_id: Option<String>,
    person_id: Option<u64>,
    door_id: Option<u64>,
    terminal_id: Option<u64>,
    kind: Option<String>,
    result: Option<String>,
    since: Option<jiff::Timestamp>,
    until: Option<jiff::Timestamp>,
}

impl EventFilter {
    fn of(q: &EventsQuery) -> Result<EventFilter, AppError> {
        let instant = |field: &str, text: &Option<String>| {
            text.as_deref()
                .map(|t| {
                    t.parse::<jiff::Timestamp>().map_err(|_| {
                        AppError::invalid(field, format!("{field} must be an RFC 3339 instant"))
                    })
                })
                .transpose()
        };
        if let Some(r) = &q.result
            && !matches!(r.as_str(), "granted" | "denied")
        {
            return Err(AppError::invalid(
                "result",
                "result must be granted or denied",
            ));
        }
        Ok(EventFilter {
            acs_id: q.acs_id.clone(),
            person_id: q.person_id,
            door_id: q.door_id,
            terminal_id: q.terminal_id,
            kind: q.kind.clone(),
            result: q.result.clone(),
            since: instant("since", &q.since)?,
            until: instant("until", &q.until)?,
        })
    }

    fn matches(&self, row: &AccessEventRow) -> bool {
        let d = &row.data;
        let text = |key: &str, want: &Option<String>| {
            want.as_deref().is_none_or(|w| d[key].as_str() == Some(w))
        };
        let id = |key: &str, want: Option<u64>| want.is_none_or(|w| d[key].as_u64() == Some(w));
        text("acs_id", &self.acs_id)
            && text("type", &self.kind)
            && text("result", &self.result)
            && id("person_id", self.person_id)
            && id("door_id", self.door_id)
            && id("terminal_id", self.terminal_id)
            && self.since.is_none_or(|t| row.occurred_at >= t)
            && self.until.is_none_or(|t| row.occurred_at < t)
    }
}

/// `GET /v1/access-events?after=&limit=` with optional filters (`acs_id`, `person_id`,
/// `door_id`, `terminal_id`, `type`, `result`, `since`, `until`): oldest first. A filtered
/// page is filled from the events after `after`; `next_after` continues where it stopped.
pub(crate) async fn list(
    State(core): State<Core>,
    caller: Caller,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let q = super::list_query(query)?;
    let limit = match q.limit {
        None => 50,
        Some(n) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            return Err(AppError::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_PAGE}"),
            ));
        }
    };
    let filter = EventFilter::of(&q)?;
    let mut cursor = q.after.unwrap_or(0);
    let mut items: Vec<Json> = Vec::new();
    let mut scanned = 0;
    let next = loop {
        let rows = core
            .access_events(caller.tenant, cursor, SCAN_BATCH)
            .await?;
        let exhausted = rows.len() < SCAN_BATCH;
        for row in &rows {
            cursor = row.id;
            scanned += 1;
            if filter.matches(row) {
                items.push(event_json(row));
                if items.len() == limit {
                    break;
                }
            }
        }
        if items.len() == limit {
            // More may follow: whether any match is for the next page to find.
            let more = !exhausted || rows.last().is_some_and(|r| r.id != cursor);
            break more.then_some(cursor);
        }
        if exhausted {
            break None;
        }
        if scanned >= SCAN_LIMIT {
            break Some(cursor);
        }
    };
    Ok(ok(json!({"items": items, "next_after": next})))
}

/// `GET /v1/access-events/stream`: every stored event after `Last-Event-ID` (or from now
/// on, without it), then live ones, as `event: access.granted|access.denied`.
pub(crate) async fn stream(
    State(core): State<Core>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, AppError> {
    let tenant = caller.tenant;
    // Subscribe first so nothing committed between the backlog read and now is missed.
    let live = core.subscribe();
    let after = match headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        Some(text) => text
            .trim()
            .parse::<u64>()
            .map_err(|_| AppError::invalid("Last-Event-ID", "Last-Event-ID must be an event id"))?,
        None => u64::MAX,
    };
    let backlog = if after == u64::MAX {
        Vec::new()
    } else {
        core.access_events(tenant, after, MAX_PAGE * 20).await?
    };
    let last_sent = backlog.last().map_or(after, |r| r.id);
    let first = stream::iter(backlog.into_iter().map(|row| Ok(sse(&row))));
    let rest = stream::unfold((live, last_sent), move |(mut live, mut last)| async move {
        loop {
            match live.recv().await {
                Ok(e) if e.tenant == tenant && (last == u64::MAX || e.event.id > last) => {
                    last = e.event.id;
                    return Some((Ok(sse(&e.event)), (live, last)));
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(futures_util::StreamExt::chain(first, rest))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn sse(row: &AccessEventRow) -> SseEvent {
    let kind = row.data["type"]
        .as_str()
        .unwrap_or("access.event")
        .to_owned();
    SseEvent::default()
        .id(row.id.to_string())
        .event(kind)
        .data(event_json(row).to_string())
}

/// `GET /v1/terminals/{id}/desired-state`: the people and credentials the terminal must
/// hold now, each credential with the entitlements requiring it, and when that changes.
pub(crate) async fn desired_state(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = TerminalId::new(path_id("terminal", &id)?);
    let now = core.now();
    let view = core
        .read(caller.tenant, |s| {
            if !s.topology.terminals.contains_key(&id) {
                return Err(AppError::not_found("terminal", id));
            }
            let d = desired(s, id, now);
            Ok(json!({
                "terminal_id": id.get(),
                "at": d.at.to_string(),
                "next_change": d.next_change.map(|t| t.to_string()),
                "people": d.people.iter().map(|(pid, p)| json!({
                    "person_id": pid.get(), "acs_id": p.acs_id.as_str(),
                    "credentials": p.credentials.iter().map(|(cid, why)| json!({
                        "credential_id": cid.get(),
                        "required_by": why.iter().map(entitlement_view).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            }))
        })
        .await??;
    Ok(ok(view))
}

/// `GET /v1/terminals/{id}/sync`: in sync or not, pending steps, last error and success.
pub(crate) async fn sync_status(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = TerminalId::new(path_id("terminal", &id)?);
    let exists = core
        .read(caller.tenant, |s| s.topology.terminals.contains_key(&id))
        .await?;
    if !exists {
        return Err(AppError::not_found("terminal", id));
    }
    let status = core.sync_board().get(caller.tenant, id);
    let mut view = serde_json::to_value(status.clone().unwrap_or_default()).unwrap_or(Json::Null);
    view["terminal_id"] = json!(id.get());
    view["engine_seen"] = json!(status.is_some());
    Ok(ok(view))
}
