//! `/v1/holiday-calendars`: holidays in three classes that schedules honour or skip.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::create;
use super::deletes;
use super::input::Input;
use super::reads;
use crate::app::{Caller, Core};
use crate::domain::{Holiday, HolidayCalendar, HolidayCalendarId};
use crate::error::AppError;
use crate::store::Kind;

use super::schedules::{class_list, classes, date};

pub(crate) fn calendar_view(c: &HolidayCalendar) -> Json {
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

reads! { list_calendars, get_calendar, "holiday calendar", HolidayCalendarId, |s| s.holiday_calendars, calendar_view }

deletes! { delete_calendar, HolidayCalendar, |s, id| {
    s.holiday_calendars
        .contains_key(&HolidayCalendarId::new(id))
}, |s, id| {
    s.schedules
        .values()
        .find(|sc| {
            sc.holiday_calendar_ids
                .contains(&HolidayCalendarId::new(id))
        })
        .map(|sc| format!("schedule {}", sc.id))
} }
