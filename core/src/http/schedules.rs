//! `/v1/schedules`: weekly spans on the site's wall clock, one-off windows and the
//! holiday classes they honour; and the clock-time and date fields they are written in.

use axum::extract::State;
use axum::response::Response;
use jiff::civil::{Date, Weekday};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::create;
use super::deletes;
use super::input::{Input, instant, named};
use super::reads;
use crate::app::{Caller, Core};
use crate::domain::{
    HolidayCalendarId, HolidayClasses, Schedule, ScheduleId, WeekdaySet, WeeklySpan,
};
use crate::error::AppError;
use crate::store::Kind;

pub(crate) const WEEKDAYS: &[(&str, Weekday)] = &[
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

/// `HH:MM` or `HH:MM:SS` (up to `24:00`) → seconds since local midnight.
pub(crate) fn clock_time(field: &str, text: &str) -> Result<u32, AppError> {
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

pub(crate) fn hhmm(seconds: u32) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

pub(crate) fn date(field: &str, text: &str) -> Result<Date, AppError> {
    text.parse()
        .map_err(|_| AppError::invalid(field, format!("{field} must be a date YYYY-MM-DD")))
}

pub(crate) fn classes(field: &str, list: &[u8]) -> Result<HolidayClasses, AppError> {
    HolidayClasses::of(list).map_err(|e| AppError::invalid(field, format!("{field} {}", e.problem)))
}

pub(crate) fn class_list(c: HolidayClasses) -> Vec<u8> {
    (1..=3).filter(|k| c.contains(*k)).collect()
}

pub(crate) fn schedule_view(s: &Schedule) -> Json {
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

reads! { list_schedules, get_schedule, "schedule", ScheduleId, |s| s.schedules, schedule_view }

deletes! { delete_schedule, Schedule, |s, id| s.schedules.contains_key(&ScheduleId::new(id)), |s, id| {
    s.accesses
        .values()
        .find(|a| a.is_live() && a.schedule_id == Some(ScheduleId::new(id)))
        .map(|a| format!("access {}", a.id))
} }
