//! `/v1/schedules`, `/v1/holiday-calendars`, `/v1/events` (+ attendees), `/v1/members`,
//! `/v1/accesses`: who may pass where and when.
//!
//! Removing a member, deleting an event or an access keeps the record (its status says
//! so) so that history stays readable and terminals can be told what to remove.

use std::collections::BTreeSet;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::input::{
    ACCESS_KINDS, EFFECTS, Input, auth_types, instant, name_of, named, opt_instant, path_id,
};
use super::people::people_subjects;
use super::{PageQuery, create, create_about, delete_unused, get_one, ok, page_query};
use crate::app::{Caller, Core, Subject};
use crate::domain::{
    Access, AccessDoor, AccessId, AccessSpec, DoorId, Effect, Event, EventId, EventStatus,
    FacilityId, GroupId, Holiday, HolidayCalendar, HolidayCalendarId, HolidayClasses, Membership,
    MembershipId, PersonId, ProvisioningStatus, Schedule, ScheduleId, Snapshot, WeekdaySet,
    WeeklySpan, validate_access_doors,
};
use crate::error::AppError;
use crate::store::Kind;

type PageResult = Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>;

const WEEKDAYS: &[(&str, Weekday)] = &[
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

/// `HH:MM` or `HH:MM:SS` (up to `24:00`) → seconds since local midnight.
fn clock_time(field: &str, text: &str) -> Result<u32, AppError> {
    let bad = || {
        AppError::invalid(
            field,
            format!("{field} must be a local time HH:MM or HH:MM:SS between 00:00 and 24:00"),
        )
    };
    let parts: Vec<&str> = text.trim().split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
        return Err(bad());
    }
    let nums: Vec<u32> = parts
        .iter()
        .map(|p| p.parse::<u32>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let (h, m, s) = (nums[0], nums[1], nums.get(2).copied().unwrap_or(0));
    if m > 59 || s > 59 || h > 24 || (h == 24 && (m, s) != (0, 0)) {
        return Err(bad());
    }
    Ok(h * 3600 + m * 60 + s)
}

fn hhmm(seconds: u32) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

fn date(field: &str, text: &str) -> Result<Date, AppError> {
    text.parse()
        .map_err(|_| AppError::invalid(field, format!("{field} must be a date YYYY-MM-DD")))
}

fn classes(field: &str, list: &[u8]) -> Result<HolidayClasses, AppError> {
    HolidayClasses::of(list).map_err(|e| AppError::invalid(field, format!("{field} {}", e.problem)))
}

fn class_list(c: HolidayClasses) -> Vec<u8> {
    (1..=3).filter(|k| c.contains(*k)).collect()
}

fn schedule_view(s: &Schedule) -> Json {
    json!({"id": s.id.get(), "name": s.name,
        "weekly_spans": s.spans.iter().map(|span| json!({
            "weekdays": WEEKDAYS.iter().filter(|(_, d)| span.weekdays().contains(*d)).map(|(n, _)| *n).collect::<Vec<_>>(),
            "start": hhmm(span.start()), "end": hhmm(span.end()),
            "holiday_classes": class_list(span.holiday_classes()),
        })).collect::<Vec<_>>(),
        "one_off_windows": s.one_off_windows.iter().map(|w| json!({
            "start": w.from().map(|t| t.to_string()), "end": w.to().map(|t| t.to_string())})).collect::<Vec<_>>(),
        "holiday_calendar_ids": s.holiday_calendar_ids.iter().map(|c| c.get()).collect::<Vec<_>>(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpanIn {
    weekdays: Vec<String>,
    start: String,
    end: String,
    #[serde(default)]
    holiday_classes: Vec<u8>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WindowIn {
    start: String,
    end: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleIn {
    name: String,
    #[serde(default)]
    weekly_spans: Vec<SpanIn>,
    #[serde(default)]
    one_off_windows: Vec<WindowIn>,
    #[serde(default)]
    holiday_calendar_ids: Vec<u64>,
}

/// `POST /v1/schedules`: weekly spans in the site's local time (`end` before `start`
/// crosses midnight), holiday classes, one-off windows.
pub(crate) async fn create_schedule(
    State(core): State<Core>,
    caller: Caller,
    input: Input<ScheduleIn>,
) -> Result<Response, AppError> {
    let body = input.body;
    let mut spans = Vec::new();
    for (i, span) in body.weekly_spans.iter().enumerate() {
        let f = |name: &str| format!("weekly_spans[{i}].{name}");
        let days: Vec<Weekday> = span
            .weekdays
            .iter()
            .enumerate()
            .map(|(j, d)| named(&format!("weekly_spans[{i}].weekdays[{j}]"), d, WEEKDAYS))
            .collect::<Result<_, _>>()?;
        let start = clock_time(&f("start"), &span.start)?;
        let end = clock_time(&f("end"), &span.end)?;
        let c = classes(&f("holiday_classes"), &span.holiday_classes)?;
        spans.push(
            WeeklySpan::new(WeekdaySet::of(days), start, end.min(86_400), c).map_err(|e| {
                AppError::invalid(f(&e.field), format!("{} {}", f(&e.field), e.problem))
            })?,
        );
    }
    let mut windows = Vec::new();
    for (i, w) in body.one_off_windows.iter().enumerate() {
        windows.push((
            instant(&format!("one_off_windows[{i}].start"), &w.start)?,
            instant(&format!("one_off_windows[{i}].end"), &w.end)?,
        ));
    }
    create(&core, &caller, input.idempotency, 1, move |s, plan| {
        let mut schedule = Schedule::new(ScheduleId::new(plan.next_id()?), &body.name)?;
        schedule.spans = spans;
        for (i, (start, end)) in windows.into_iter().enumerate() {
            schedule.add_one_off(start, end).map_err(|e| {
                let field = format!("one_off_windows[{i}].{}", e.field);
                AppError::invalid(field.clone(), format!("{field} {}", e.problem))
            })?;
        }
        for (i, raw) in body.holiday_calendar_ids.iter().enumerate() {
            let id = HolidayCalendarId::new(*raw);
            if !s.holiday_calendars.contains_key(&id) {
                return Err(AppError::invalid(
                    format!("holiday_calendar_ids[{i}]"),
                    format!("holiday calendar {id} does not exist"),
                ));
            }
            schedule.holiday_calendar_ids.push(id);
        }
        plan.audit("schedule.created", Kind::Schedule, Some(schedule.id.get()));
        let view = schedule_view(&schedule);
        plan.put(schedule, None);
        Ok(view)
    })
    .await
}

/// `GET /v1/schedules`.
pub(crate) async fn list_schedules(
    State(core): State<Core>,
    caller: Caller,
    query: PageResult,
) -> Result<Response, AppError> {
    let q = page_query(query)?;
    core.read(caller.tenant, |s| {
        q.page(s.schedules.values().map(|x| (x.id.get(), schedule_view(x))))
    })
    .await?
    .map(ok)
}

/// `GET /v1/schedules/{id}`.
pub(crate) async fn get_schedule(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    get_one(&core, &caller, "schedule", &id, |s, id| {
        s.schedules.get(&ScheduleId::new(id)).map(schedule_view)
    })
    .await
}

/// `DELETE /v1/schedules/{id}`.
pub(crate) async fn delete_schedule(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    delete_unused::<Schedule>(
        &core,
        &caller,
        &id,
        |s, id| s.schedules.contains_key(&ScheduleId::new(id)),
        |s, id| {
            s.accesses
                .values()
                .find(|a| a.is_live() && a.schedule_id == Some(ScheduleId::new(id)))
                .map(|a| format!("access {}", a.id))
        },
    )
    .await
}

fn calendar_view(c: &HolidayCalendar) -> Json {
    json!({"id": c.id.get(), "name": c.name, "holidays": c.holidays.iter().map(|h| json!({
        "name": h.name, "start": h.first().to_string(), "end": h.last().to_string(),
        "classes": class_list(h.classes()), "repeats_yearly": h.repeats_yearly()})).collect::<Vec<_>>()})
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HolidayIn {
    name: String,
    start: String,
    end: Option<String>,
    classes: Vec<u8>,
    #[serde(default)]
    repeats_yearly: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CalendarIn {
    name: String,
    #[serde(default)]
    holidays: Vec<HolidayIn>,
}

/// `POST /v1/holiday-calendars`: holidays (local dates, inclusive) in classes 1–3.
pub(crate) async fn create_calendar(
    State(core): State<Core>,
    caller: Caller,
    input: Input<CalendarIn>,
) -> Result<Response, AppError> {
    let body = input.body;
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::invalid(
            "name",
            "name must be 1 to 200 characters",
        ));
    }
    let mut holidays = Vec::new();
    for (i, h) in body.holidays.iter().enumerate() {
        let f = |name: &str| format!("holidays[{i}].{name}");
        let first = date(&f("start"), &h.start)?;
        let last = match &h.end {
            Some(end) => date(&f("end"), end)?,
            None => first,
        };
        let c = classes(&f("classes"), &h.classes)?;
        holidays.push(
            Holiday::new(&h.name, first, last, c, h.repeats_yearly).map_err(|e| {
                let field = f(&e.field);
                AppError::invalid(field.clone(), format!("{field} {}", e.problem))
            })?,
        );
    }
    create(&core, &caller, input.idempotency, 1, move |_, plan| {
        let calendar = HolidayCalendar {
            id: HolidayCalendarId::new(plan.next_id()?),
            name,
            holidays,
        };
        plan.audit(
            "holiday_calendar.created",
            Kind::HolidayCalendar,
            Some(calendar.id.get()),
        );
        let view = calendar_view(&calendar);
        plan.put(calendar, None);
        Ok(view)
    })
    .await
}

/// `GET /v1/holiday-calendars`.
pub(crate) async fn list_calendars(
    State(core): State<Core>,
    caller: Caller,
    query: PageResult,
) -> Result<Response, AppError> {
    let q = page_query(query)?;
    core.read(caller.tenant, |s| {
        q.page(
            s.holiday_calendars
                .values()
                .map(|x| (x.id.get(), calendar_view(x))),
        )
    })
    .await?
    .map(ok)
}

/// `GET /v1/holiday-calendars/{id}`.
pub(crate) async fn get_calendar(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    get_one(&core, &caller, "holiday calendar", &id, |s, id| {
        s.holiday_calendars
            .get(&HolidayCalendarId::new(id))
            .map(calendar_view)
    })
    .await
}

/// `DELETE /v1/holiday-calendars/{id}`.
pub(crate) async fn delete_calendar(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    delete_unused::<HolidayCalendar>(
        &core,
        &caller,
        &id,
        |s, id| {
            s.holiday_calendars
                .contains_key(&HolidayCalendarId::new(id))
        },
        |s, id| {
            s.schedules
                .values()
                .find(|sc| {
                    sc.holiday_calendar_ids
                        .contains(&HolidayCalendarId::new(id))
                })
                .map(|sc| format!("schedule {}", sc.id))
        },
    )
    .await
}

fn event_status(status: EventStatus) -> &'static str {
    match status {
        EventStatus::Scheduled => "scheduled",
        EventStatus::Live => "live",
        EventStatus::Ended => "ended",
        EventStatus::Deleted => "deleted",
    }
}

fn event_view(e: &Event, at: Timestamp) -> Json {
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

fn event_of(s: &Snapshot, id: EventId) -> Result<&Event, AppError> {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PersonRef {
    person_id: u64,
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

fn member_view(s: &Snapshot, m: &Membership) -> Json {
    json!({"id": m.id.get(), "person_id": m.person_id.get(),
           "acs_id": s.people.get(&m.person_id).map(|p| p.acs_id.as_str().to_owned()),
           "created_at": m.created_at.to_string(),
           "removed_at": m.removed_at().map(|t| t.to_string())})
}

/// `POST /v1/members` with `{"person_id"}`: continuous access on every terminal of the
/// tenant until removed.
pub(crate) async fn create_member(
    State(core): State<Core>,
    caller: Caller,
    input: Input<PersonRef>,
) -> Result<Response, AppError> {
    let person = PersonId::new(input.body.person_id);
    let tenant = caller.tenant;
    let now = core.now();
    let subjects = vec![Subject::Person(person)];
    create_about(
        &core,
        &caller,
        subjects,
        input.idempotency,
        1,
        move |s, plan| {
            if !s.people.contains_key(&person) {
                return Err(AppError::invalid(
                    "person_id",
                    format!("person {person} does not exist"),
                ));
            }
            if let Some(m) = s
                .memberships
                .values()
                .find(|m| m.person_id == person && m.removed_at().is_none())
            {
                return Err(AppError::conflict(
                    Some("person_id"),
                    format!("person {person} is already a member (member {})", m.id),
                ));
            }
            let member = Membership::new(MembershipId::new(plan.next_id()?), tenant, person, now);
            plan.audit("member.added", Kind::Membership, Some(member.id.get()));
            let view = member_view(s, &member);
            plan.put(member, None);
            Ok(view)
        },
    )
    .await
}

/// `GET /v1/members` (removed ones included, with `removed_at`).
pub(crate) async fn list_members(
    State(core): State<Core>,
    caller: Caller,
    query: PageResult,
) -> Result<Response, AppError> {
    let q = page_query(query)?;
    core.read(caller.tenant, |s| {
        q.page(
            s.memberships
                .values()
                .map(|m| (m.id.get(), member_view(s, m))),
        )
    })
    .await?
    .map(ok)
}

/// `GET /v1/members/{id}`.
pub(crate) async fn get_member(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    get_one(&core, &caller, "member", &id, |s, id| {
        s.memberships
            .get(&MembershipId::new(id))
            .map(|m| member_view(s, m))
    })
    .await
}

/// `DELETE /v1/members/{id}`: access ends now on every terminal.
pub(crate) async fn remove_member(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = MembershipId::new(path_id("member", &id)?);
    let now = core.now();
    core.write(&caller, 0, move |s, plan| {
        let mut member = s
            .memberships
            .get(&id)
            .ok_or_else(|| AppError::not_found("member", id))?
            .clone();
        member
            .remove(now)
            .map_err(|_| AppError::invalid_state(format!("member {id} was already removed")))?;
        plan.audit("member.removed", Kind::Membership, Some(id.get()));
        plan.put(member, None);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn status_name(s: ProvisioningStatus) -> &'static str {
    match s {
        ProvisioningStatus::Initial => "initial",
        ProvisioningStatus::Creating => "creating",
        ProvisioningStatus::Ready => "ready",
        ProvisioningStatus::Updating => "updating",
        ProvisioningStatus::Deleting => "deleting",
        ProvisioningStatus::Deleted => "deleted",
    }
}

fn access_view(a: &Access) -> Json {
    let ids = |set: &BTreeSet<PersonId>| set.iter().map(|p| p.get()).collect::<Vec<_>>();
    json!({"id": a.id.get(), "name": a.name, "kind": name_of(a.kind, ACCESS_KINDS),
        "effect": name_of(a.effect, EFFECTS), "status": status_name(a.status),
        "valid_from": a.validity.from().map(|t| t.to_string()),
        "valid_to": a.validity.to().map(|t| t.to_string()),
        "schedule_id": a.schedule_id.map(ScheduleId::get),
        "doors": a.doors.iter().map(|d| json!({"door_id": d.door_id.get(), "lock_unlock": d.lock_unlock,
            "in_auth_types": d.in_auth_types.iter().map(|t| t.name()).collect::<Vec<_>>(),
            "out_auth_types": d.out_auth_types.iter().map(|t| t.name()).collect::<Vec<_>>()})).collect::<Vec<_>>(),
        "person_ids": ids(&a.person_ids),
        "group_ids": a.group_ids.iter().map(|g| g.get()).collect::<Vec<_>>(),
        "welcome_email_required": a.welcome_email_required})
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessDoorIn {
    door_id: u64,
    #[serde(default)]
    lock_unlock: bool,
    #[serde(default)]
    in_auth_types: Vec<String>,
    #[serde(default)]
    out_auth_types: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessIn {
    name: String,
    kind: String,
    effect: Option<String>,
    valid_from: Option<String>,
    valid_to: Option<String>,
    schedule_id: Option<u64>,
    doors: Vec<AccessDoorIn>,
    #[serde(default)]
    person_ids: Vec<u64>,
    #[serde(default)]
    group_ids: Vec<u64>,
    #[serde(default)]
    welcome_email_required: bool,
}

/// Welcome messages for the people `access` applies to that `before` did not (all of them
/// for a new access), when the access asks for them.
fn welcome(
    s: &Snapshot,
    plan: &mut crate::app::Plan,
    before: Option<&Access>,
    access: &Access,
    now: Timestamp,
) {
    if !access.welcome_email_required || access.effect != Effect::Permit {
        return;
    }
    let had = before.map(|b| s.access_subjects(b)).unwrap_or_default();
    for person in s.access_subjects(access).difference(&had) {
        if let Some(person) = s.people.get(person) {
            for message in crate::notify::compose::welcome_access(person, access, now) {
                plan.message(message);
            }
        }
    }
}

/// Checks an access request against the tenant's objects and builds the access.
fn build_access(
    s: &Snapshot,
    id: AccessId,
    body: &AccessIn,
    tenant: crate::domain::TenantId,
) -> Result<Access, AppError> {
    let kind = named("kind", &body.kind, ACCESS_KINDS)?;
    let effect = match body.effect.as_deref() {
        None => Effect::Permit,
        Some(e) => named("effect", e, EFFECTS)?,
    };
    let mut doors = Vec::new();
    for (i, d) in body.doors.iter().enumerate() {
        doors.push(AccessDoor {
            door_id: DoorId::new(d.door_id),
            lock_unlock: d.lock_unlock,
            in_auth_types: auth_types(&format!("doors[{i}].in_auth_types"), &d.in_auth_types)?
                .into_iter()
                .collect(),
            out_auth_types: auth_types(&format!("doors[{i}].out_auth_types"), &d.out_auth_types)?
                .into_iter()
                .collect(),
        });
    }
    validate_access_doors(&s.topology, &doors)?;
    let schedule_id = body.schedule_id.map(ScheduleId::new);
    if let Some(sid) = schedule_id
        && !s.schedules.contains_key(&sid)
    {
        return Err(AppError::invalid(
            "schedule_id",
            format!("schedule {sid} does not exist"),
        ));
    }
    let mut person_ids = BTreeSet::new();
    for (i, raw) in body.person_ids.iter().enumerate() {
        let p = PersonId::new(*raw);
        if !s.people.contains_key(&p) {
            return Err(AppError::invalid(
                format!("person_ids[{i}]"),
                format!("person {p} does not exist"),
            ));
        }
        person_ids.insert(p);
    }
    let mut group_ids = BTreeSet::new();
    for (i, raw) in body.group_ids.iter().enumerate() {
        let g = GroupId::new(*raw);
        if !s.groups.contains_key(&g) {
            return Err(AppError::invalid(
                format!("group_ids[{i}]"),
                format!("group {g} does not exist"),
            ));
        }
        group_ids.insert(g);
    }
    let mut access = Access::new(
        id,
        AccessSpec {
            tenant_id: tenant,
            name: body.name.clone(),
            kind,
            effect,
            valid_from: opt_instant("valid_from", body.valid_from.as_deref())?,
            valid_to: opt_instant("valid_to", body.valid_to.as_deref())?,
            schedule_id,
            doors,
            person_ids,
            group_ids,
        },
    )?;
    access.welcome_email_required = body.welcome_email_required;
    Ok(access)
}

fn advance(access: &mut Access, path: &[ProvisioningStatus]) {
    for next in path {
        if let Ok(s) = access.status.transition(*next) {
            access.status = s;
        }
    }
}

/// `POST /v1/accesses`: permanent or temporary (`valid_to` required), permit or deny,
/// doors with in/out auth types the doors support, people and groups, a schedule.
pub(crate) async fn create_access(
    State(core): State<Core>,
    caller: Caller,
    input: Input<AccessIn>,
) -> Result<Response, AppError> {
    let tenant = caller.tenant;
    let now = core.now();
    let subjects = people_subjects(&input.body.person_ids);
    create_about(
        &core,
        &caller,
        subjects,
        input.idempotency,
        1,
        move |s, plan| {
            let mut access = build_access(s, AccessId::new(plan.next_id()?), &input.body, tenant)?;
            welcome(s, plan, None, &access, now);
            // Committed is provisioned until the sync engine reports per terminal.
            advance(
                &mut access,
                &[ProvisioningStatus::Creating, ProvisioningStatus::Ready],
            );
            plan.audit("access.created", Kind::Access, Some(access.id.get()));
            let view = access_view(&access);
            plan.put(access, None);
            Ok(view)
        },
    )
    .await
}

/// `GET /v1/accesses`.
pub(crate) async fn list_accesses(
    State(core): State<Core>,
    caller: Caller,
    query: PageResult,
) -> Result<Response, AppError> {
    let q = page_query(query)?;
    core.read(caller.tenant, |s| {
        q.page(s.accesses.values().map(|a| (a.id.get(), access_view(a))))
    })
    .await?
    .map(ok)
}

/// `GET /v1/accesses/{id}`.
pub(crate) async fn get_access(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    get_one(&core, &caller, "access", &id, |s, id| {
        s.accesses.get(&AccessId::new(id)).map(access_view)
    })
    .await
}

/// `PUT /v1/accesses/{id}`: replaces the access (same body as create).
pub(crate) async fn update_access(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<AccessIn>,
) -> Result<Response, AppError> {
    let id = AccessId::new(path_id("access", &id)?);
    let tenant = caller.tenant;
    let now = core.now();
    let subjects = people_subjects(&input.body.person_ids);
    let view = core
        .write_about(&caller, subjects, 0, move |s, plan| {
            let old = s
                .accesses
                .get(&id)
                .filter(|a| a.is_live())
                .ok_or_else(|| AppError::not_found("access", id))?;
            let mut access = build_access(s, id, &input.body, tenant)?;
            welcome(s, plan, Some(old), &access, now);
            access.status = old.status;
            advance(
                &mut access,
                &[ProvisioningStatus::Updating, ProvisioningStatus::Ready],
            );
            plan.audit("access.updated", Kind::Access, Some(id.get()));
            let view = access_view(&access);
            plan.put(access, None);
            Ok(view)
        })
        .await?;
    Ok(ok(view))
}

/// `DELETE /v1/accesses/{id}`.
pub(crate) async fn delete_access(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = AccessId::new(path_id("access", &id)?);
    core.write(&caller, 0, move |s, plan| {
        let mut access = s
            .accesses
            .get(&id)
            .filter(|a| a.is_live())
            .ok_or_else(|| AppError::not_found("access", id))?
            .clone();
        advance(
            &mut access,
            &[ProvisioningStatus::Deleting, ProvisioningStatus::Deleted],
        );
        plan.audit("access.deleted", Kind::Access, Some(id.get()));
        plan.put(access, None);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
