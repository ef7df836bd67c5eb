//! `/v1/events` and their attendees: people entitled during an event's window. Deleting
//! an event keeps the record (its status says so) so that history stays readable and
//! terminals can be told what to remove.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::PageResult;
use super::input::{Input, PersonRef, instant, path_id};
use super::{create, create_about, ok, page_query};
use crate::app::{Caller, Core, Subject};
use crate::domain::{Event, EventId, EventStatus, FacilityId, PersonId, Snapshot};
use crate::error::AppError;
use crate::store::Kind;

pub(crate) fn event_status(status: EventStatus) -> &'static str {
    match status {
        EventStatus::Scheduled => "scheduled",
        EventStatus::Live => "live",
        EventStatus::Ended => "ended",
        EventStatus::Deleted => "deleted",
    }
}

pub(crate) fn event_view(e: &Event, at: Timestamp) -> Json {
    let w = e.window();
    json!({"id": e.id.get(), "facility_id": e.facility_id.get(), "name": e.name,
           "starts_at": w.from().map(|t| t.to_string()), "ends_at": w.to().map(|t| t.to_string()),
           "status": event_status(e.status(at)), "attendee_count": e.attendees().len()})
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventIn {
    facility_id: u64,
    #[serde(default)]
    name: String,
    starts_at: String,
    ends_at: String,
}

/// `POST /v1/events`: an event at a facility for `[starts_at, ends_at)`.
pub(crate) async fn create_event(
    State(core): State<Core>,
    caller: Caller,
    input: Input<EventIn>,
) -> Result<Response, AppError> {
    let body = input.body;
    let starts = instant("starts_at", &body.starts_at)?;
    let ends = instant("ends_at", &body.ends_at)?;
    let tenant = caller.tenant;
    let now = core.now();
    create(&core, &caller, input.idempotency, 1, move |s, plan| {
        let facility = FacilityId::new(body.facility_id);
        if !s.topology.facilities.contains_key(&facility) {
            return Err(AppError::invalid(
                "facility_id",
                format!("facility {facility} does not exist"),
            ));
        }
        let event = Event::new(
            EventId::new(plan.next_id()?),
            tenant,
            facility,
            &body.name,
            starts,
            ends,
        )?;
        plan.audit("event.created", Kind::Event, Some(event.id.get()));
        let view = event_view(&event, now);
        plan.put(event, None);
        Ok(view)
    })
    .await
}

/// `GET /v1/events` (deleted events included, with their status).
pub(crate) async fn list_events(
    State(core): State<Core>,
    caller: Caller,
    query: PageResult,
) -> Result<Response, AppError> {
    let q = page_query(query)?;
    let now = core.now();
    core.read(caller.tenant, |s| {
        q.page(s.events.values().map(|e| (e.id.get(), event_view(e, now))))
    })
    .await?
    .map(ok)
}

pub(crate) fn event_of(s: &Snapshot, id: EventId) -> Result<&Event, AppError> {
    s.events
        .get(&id)
        .ok_or_else(|| AppError::not_found("event", id))
}

/// `GET /v1/events/{id}`.
pub(crate) async fn get_event(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = EventId::new(path_id("event", &id)?);
    let now = core.now();
    let view = core
        .read(caller.tenant, |s| {
            event_of(s, id).map(|e| event_view(e, now))
        })
        .await??;
    Ok(ok(view))
}

/// `DELETE /v1/events/{id}`: the event ends for good and its attendees' credentials leave
/// the facility's terminals.
pub(crate) async fn delete_event(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = EventId::new(path_id("event", &id)?);
    core.write(&caller, 0, move |s, plan| {
        let mut event = event_of(s, id)?.clone();
        event
            .delete()
            .map_err(|e| AppError::invalid_state(e.to_string()))?;
        plan.audit("event.deleted", Kind::Event, Some(id.get()));
        plan.put(event, None);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/events/{id}/attendees` with `{"person_id"}`.
pub(crate) async fn add_attendee(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<PersonRef>,
) -> Result<Response, AppError> {
    let id = EventId::new(path_id("event", &id)?);
    let person = PersonId::new(input.body.person_id);
    let now = core.now();
    let subjects = vec![Subject::Person(person)];
    create_about(
        &core,
        &caller,
        subjects,
        input.idempotency,
        0,
        move |s, plan| {
            let mut event = event_of(s, id)?.clone();
            let acs_id = s
                .people
                .get(&person)
                .ok_or_else(|| {
                    AppError::invalid("person_id", format!("person {person} does not exist"))
                })?
                .acs_id
                .clone();
            event.add_attendee(person, now).map_err(|e| match e {
                crate::domain::EventError::AlreadyAttending => AppError::conflict(
                    Some("person_id"),
                    format!("person {person} already attends event {id}"),
                ),
                other => AppError::invalid_state(other.to_string()),
            })?;
            plan.audit("attendee.added", Kind::Event, Some(id.get()));
            plan.put(event, None);
            Ok(
                json!({"event_id": id.get(), "person_id": person.get(), "acs_id": acs_id.as_str(),
                  "added_at": now.to_string()}),
            )
        },
    )
    .await
}

/// `GET /v1/events/{id}/attendees` (paged by person id).
pub(crate) async fn list_attendees(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    query: PageResult,
) -> Result<Response, AppError> {
    let id = EventId::new(path_id("event", &id)?);
    let q = page_query(query)?;
    core.read(caller.tenant, |s| {
        let event = event_of(s, id)?;
        q.page(event.attendees().iter().map(|(person, added)| {
            (
                person.get(),
                json!({"event_id": id.get(), "person_id": person.get(),
                       "acs_id": s.people.get(person).map(|p| p.acs_id.as_str().to_owned()),
                       "added_at": added.to_string()}),
            )
        }))
    })
    .await?
    .map(ok)
}

/// `DELETE /v1/events/{id}/attendees/{person_id}`.
pub(crate) async fn remove_attendee(
    State(core): State<Core>,
    caller: Caller,
    Path((id, person)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let id = EventId::new(path_id("event", &id)?);
    let person = PersonId::new(path_id("attendee", &person)?);
    core.write(&caller, 0, move |s, plan| {
        let mut event = event_of(s, id)?.clone();
        event.remove_attendee(person).map_err(|e| match e {
            crate::domain::EventError::NotAttending => AppError::not_found("attendee", person),
            other => AppError::invalid_state(other.to_string()),
        })?;
        plan.audit("attendee.removed", Kind::Event, Some(id.get()));
        plan.put(event, None);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
