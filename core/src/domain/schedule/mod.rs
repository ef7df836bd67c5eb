//! Schedules: weekly spans in the site's local wall-clock time, holiday calendars with three
//! classes, and one-off windows (docs/domain.md §7.3, §8.3 rule 9).
//!
//! - `span` – weekly spans in the site's local wall-clock time, crossing midnight or not;
//! - `holiday` – holiday classes, holidays (yearly or not) and holiday calendars;
//! - `evaluation` – whether a schedule is active at an instant (on wall-clock time, DST
//!   included) and when that next changes.
//!
//! This module holds the [`Schedule`] itself: its spans, one-off windows and calendars.

mod evaluation;
mod holiday;
mod span;

use jiff::Timestamp;

use super::id::{HolidayCalendarId, ScheduleId};
use super::validation::{InvalidField, Window, required_text};

pub use evaluation::NEXT_CHANGE_HORIZON_DAYS;
pub use holiday::{Holiday, HolidayCalendar, HolidayClasses, holiday_classes_on};
pub use span::{SECONDS_PER_DAY, WeekdaySet, WeeklySpan};

/// A schedule: weekly spans plus one-off windows, with holiday calendars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Its id.
    pub id: ScheduleId,
    /// Display name.
    pub name: String,
    /// The weekly spans.
    pub spans: Vec<WeeklySpan>,
    /// One-off windows (instants), active regardless of weekday and holidays.
    pub one_off_windows: Vec<Window>,
    /// The holiday calendars deciding which local dates are holidays.
    pub holiday_calendar_ids: Vec<HolidayCalendarId>,
}

impl Schedule {
    /// An empty schedule (never active) named `name`.
    pub fn new(id: ScheduleId, name: &str) -> Result<Schedule, InvalidField> {
        Ok(Schedule {
            id,
            name: required_text("name", name, 200)?,
            spans: Vec::new(),
            one_off_windows: Vec::new(),
            holiday_calendar_ids: Vec::new(),
        })
    }

    /// Adds a one-off window `[start, end)` (fields `start`, `end`).
    pub fn add_one_off(&mut self, start: Timestamp, end: Timestamp) -> Result<(), InvalidField> {
        self.one_off_windows
            .push(Window::between(start, end, "start", "end")?);
        Ok(())
    }
}
