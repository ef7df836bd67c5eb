//! Schedules: weekly spans in the site's local wall-clock time, holiday calendars with three
//! classes, and one-off windows (docs/domain.md §7.3, §8.3 rule 9).
//!
//! # How a schedule is evaluated
//!
//! A schedule is active at an instant when a one-off window contains the instant, or a
//! weekly span instance covers the instant's *wall-clock* date and time in the site's time
//! zone.
//!
//! - A span is `[start, end)` in seconds since local midnight. If `end < start` the span
//!   crosses midnight: the instance that starts on day D runs from D `start` to D+1 `end`.
//!   A Monday 22:00–06:00 span covers Monday 22:00 to Tuesday 06:00 (and not Sunday night).
//! - Which span instances exist on a day D is decided by D alone (for a span crossing
//!   midnight, by the day it *starts*): if D is a holiday of any class in the span's
//!   schedule calendars, the instance exists only if the span is flagged for one of D's
//!   classes (the weekday flags are ignored, as Control iD's `hol1..hol3` replace
//!   `sun..sat`); on ordinary days it exists if D's weekday is flagged. A span flagged for
//!   no holiday class is therefore inactive on holidays.
//! - Daylight saving time is handled on wall time, deterministically: a wall time inside a
//!   gap never happens, so a span whose start falls in the gap starts when the clock jumps
//!   past it (and a span lying wholly inside the gap does not happen that day); during a
//!   repeated hour both instants with the same wall time evaluate the same way, so a span
//!   covering 01:00–02:00 on the day clocks go back is active for two real hours.
//!
//! [`Schedule::next_change_after`] finds the next instant the active state flips, searching
//! at most [`NEXT_CHANGE_HORIZON_DAYS`] days ahead.

use super::id::{HolidayCalendarId, ScheduleId};
use super::validation::{InvalidField, Problem, Window, required_text};
use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

/// Seconds in a (wall-clock) day.
pub const SECONDS_PER_DAY: u32 = 86_400;

/// How far ahead [`Schedule::next_change_after`] looks.
pub const NEXT_CHANGE_HORIZON_DAYS: i64 = 400;

/// A set of weekdays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WeekdaySet(u8);

impl WeekdaySet {
    /// No day.
    pub const NONE: WeekdaySet = WeekdaySet(0);
    /// Every day.
    pub const ALL: WeekdaySet = WeekdaySet(0b111_1111);

    /// The set of these days.
    pub fn of(days: impl IntoIterator<Item = Weekday>) -> WeekdaySet {
        WeekdaySet(
            days.into_iter()
                .fold(0, |bits, d| bits | 1 << d.to_monday_zero_offset()),
        )
    }

    /// Whether `day` is in the set.
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.to_monday_zero_offset()) != 0
    }
}

/// A set of holiday classes, each 1, 2 or 3 (Control iD `hol1..hol3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HolidayClasses(u8);

impl HolidayClasses {
    /// No class.
    pub const NONE: HolidayClasses = HolidayClasses(0);

    /// The set of these classes (field `holiday_classes`, each in `1..=3`).
    pub fn of(classes: &[u8]) -> Result<HolidayClasses, InvalidField> {
        let mut bits = 0;
        for &class in classes {
            if !(1..=3).contains(&class) {
                return Err(InvalidField::new(
                    "holiday_classes",
                    Problem::OutOfRange { range: "1..=3" },
                ));
            }
            bits |= 1 << (class - 1);
        }
        Ok(HolidayClasses(bits))
    }

    /// Whether `class` is in the set.
    pub fn contains(self, class: u8) -> bool {
        (1..=3).contains(&class) && self.0 & (1 << (class - 1)) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether the sets share a class.
    pub fn intersects(self, other: HolidayClasses) -> bool {
        self.0 & other.0 != 0
    }

    /// The union of both sets.
    pub fn union(self, other: HolidayClasses) -> HolidayClasses {
        HolidayClasses(self.0 | other.0)
    }
}

/// A weekly span: `[start, end)` seconds since local midnight on the flagged weekdays,
/// and on holidays of the flagged classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeeklySpan {
    weekdays: WeekdaySet,
    start: u32,
    end: u32,
    holiday_classes: HolidayClasses,
}

impl WeeklySpan {
    /// A span from `start` to `end` (seconds since local midnight). `start` is in
    /// `0..86400`, `end` in `0..=86400` and different from `start`; `end < start` crosses
    /// midnight. Fails naming `start` or `end`.
    pub fn new(
        weekdays: WeekdaySet,
        start: u32,
        end: u32,
        holiday_classes: HolidayClasses,
    ) -> Result<WeeklySpan, InvalidField> {
        if start >= SECONDS_PER_DAY {
            return Err(InvalidField::new(
                "start",
                Problem::OutOfRange { range: "0..86400" },
            ));
        }
        if end > SECONDS_PER_DAY {
            return Err(InvalidField::new(
                "end",
                Problem::OutOfRange { range: "0..=86400" },
            ));
        }
        if end == start {
            return Err(InvalidField::new(
                "end",
                Problem::Invalid {
                    expected: "different from start",
                },
            ));
        }
        Ok(WeeklySpan {
            weekdays,
            start,
            end,
            holiday_classes,
        })
    }

    /// The weekdays it runs on.
    pub fn weekdays(&self) -> WeekdaySet {
        self.weekdays
    }

    /// Start, seconds since local midnight.
    pub fn start(&self) -> u32 {
        self.start
    }

    /// End (exclusive), seconds since local midnight.
    pub fn end(&self) -> u32 {
        self.end
    }

    /// The holiday classes it runs on.
    pub fn holiday_classes(&self) -> HolidayClasses {
        self.holiday_classes
    }

    /// Whether an instance runs past midnight into the next day.
    pub fn crosses_midnight(&self) -> bool {
        self.end < self.start
    }

    /// Whether an instance of the span starts on `date` whose holiday classes are
    /// `classes` (empty on an ordinary day).
    fn runs_on(&self, date: Date, classes: HolidayClasses) -> bool {
        if classes.is_empty() {
            self.weekdays.contains(date.weekday())
        } else {
            self.holiday_classes.intersects(classes)
        }
    }
}

/// A holiday: local dates `first..=last`, of some classes, possibly repeating every year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    /// Display name.
    pub name: String,
    first: Date,
    last: Date,
    classes: HolidayClasses,
    repeats_yearly: bool,
}

impl Holiday {
    /// A holiday from `first` to `last` inclusive (fields `name`, `end`, `holiday_classes`:
    /// at least one class).
    pub fn new(
        name: &str,
        first: Date,
        last: Date,
        classes: HolidayClasses,
        repeats_yearly: bool,
    ) -> Result<Holiday, InvalidField> {
        let name = required_text("name", name, 200)?;
        if last < first {
            return Err(InvalidField::new(
                "end",
                Problem::NotAfter { other: "start" },
            ));
        }
        if classes.is_empty() {
            return Err(InvalidField::new("holiday_classes", Problem::Empty));
        }
        Ok(Holiday {
            name,
            first,
            last,
            classes,
            repeats_yearly,
        })
    }

    /// Its first local date.
    pub fn first(&self) -> Date {
        self.first
    }

    /// Its last local date (inclusive).
    pub fn last(&self) -> Date {
        self.last
    }

    /// Whether it repeats every year.
    pub fn repeats_yearly(&self) -> bool {
        self.repeats_yearly
    }

    /// Its classes.
    pub fn classes(&self) -> HolidayClasses {
        self.classes
    }

    /// Whether `date` falls in the holiday. A yearly holiday is shifted by whole years
    /// (29 February becomes 28 February in common years); one crossing New Year is found
    /// from either side.
    pub fn covers(&self, date: Date) -> bool {
        if !self.repeats_yearly {
            return self.first <= date && date <= self.last;
        }
        [date.year(), date.year() - 1].into_iter().any(|year| {
            let shift = i64::from(year) - i64::from(self.first.year());
            if shift < 0 {
                return false;
            }
            let (Ok(first), Ok(last)) = (
                self.first.checked_add(shift.years()),
                self.last.checked_add(shift.years()),
            ) else {
                return false;
            };
            first <= date && date <= last
        })
    }
}

/// A named set of holidays a schedule refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolidayCalendar {
    /// Its id.
    pub id: HolidayCalendarId,
    /// Display name.
    pub name: String,
    /// The holidays.
    pub holidays: Vec<Holiday>,
}

impl HolidayCalendar {
    /// The classes of every holiday covering `date` (empty on an ordinary day).
    pub fn classes_on(&self, date: Date) -> HolidayClasses {
        self.holidays
            .iter()
            .filter(|h| h.covers(date))
            .fold(HolidayClasses::NONE, |acc, h| acc.union(h.classes))
    }
}

/// The holiday classes of `date` over several calendars.
pub fn holiday_classes_on(calendars: &[&HolidayCalendar], date: Date) -> HolidayClasses {
    calendars
        .iter()
        .fold(HolidayClasses::NONE, |acc, c| acc.union(c.classes_on(date)))
}

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

    /// Whether the schedule is active at `at`, evaluated on wall-clock time in `tz` with
    /// `holidays` (the schedule's calendars, resolved by the caller).
    pub fn is_active(&self, at: Timestamp, tz: &TimeZone, holidays: &[&HolidayCalendar]) -> bool {
        if self.one_off_windows.iter().any(|w| w.contains(at)) {
            return true;
        }
        if self.spans.is_empty() {
            return false;
        }
        let wall = tz.to_datetime(at);
        let today = wall.date();
        let second = wall_second(wall);
        let today_classes = holiday_classes_on(holidays, today);
        // Computed lazily: only midnight-crossing spans look at yesterday.
        let mut yesterday_classes = None;
        self.spans.iter().any(|span| {
            if span.crosses_midnight() {
                if second >= span.start && span.runs_on(today, today_classes) {
                    return true;
                }
                if second < span.end {
                    let Ok(yesterday) = today.yesterday() else {
                        return false;
                    };
                    let classes = *yesterday_classes
                        .get_or_insert_with(|| holiday_classes_on(holidays, yesterday));
                    return span.runs_on(yesterday, classes);
                }
                false
            } else {
                span.start <= second && second < span.end && span.runs_on(today, today_classes)
            }
        })
    }

    /// The first instant after `at` where [`Schedule::is_active`] differs from its value at
    /// `at`, or `None` if it does not change within [`NEXT_CHANGE_HORIZON_DAYS`] days.
    ///
    /// The active state can only change where the wall clock reaches a span boundary or
    /// midnight (both instants of a repeated wall time count), where the zone's offset
    /// changes, or at a one-off window bound; the function checks exactly those instants
    /// in order.
    pub fn next_change_after(
        &self,
        at: Timestamp,
        tz: &TimeZone,
        holidays: &[&HolidayCalendar],
    ) -> Option<Timestamp> {
        let horizon = at
            .checked_add(SignedDuration::from_hours(NEXT_CHANGE_HORIZON_DAYS * 24))
            .unwrap_or(Timestamp::MAX);
        let mut candidates: Vec<Timestamp> = self
            .one_off_windows
            .iter()
            .flat_map(|w| w.boundaries_after(at))
            .collect();
        candidates.extend(
            tz.following(at)
                .map(|t| t.timestamp())
                .take_while(|t| *t <= horizon),
        );
        if !self.spans.is_empty() {
            let mut wall_seconds: Vec<u32> = std::iter::once(0)
                .chain(
                    self.spans
                        .iter()
                        .flat_map(|s| [s.start, s.end % SECONDS_PER_DAY]),
                )
                .collect();
            wall_seconds.sort_unstable();
            wall_seconds.dedup();
            let last_day = tz.to_datetime(horizon).date();
            let mut day = tz.to_datetime(at).date().yesterday().ok();
            while let Some(date) = day.filter(|d| *d <= last_day) {
                for &second in &wall_seconds {
                    let wall = date.at(
                        (second / 3600) as i8,
                        (second / 60 % 60) as i8,
                        (second % 60) as i8,
                        0,
                    );
                    let instants = tz.to_ambiguous_timestamp(wall);
                    candidates.extend(instants.earlier().ok());
                    candidates.extend(instants.later().ok());
                }
                day = date.tomorrow().ok();
            }
        }
        candidates.retain(|c| at < *c && *c <= horizon);
        candidates.sort_unstable();
        candidates.dedup();
        let now = self.is_active(at, tz, holidays);
        candidates
            .into_iter()
            .find(|c| self.is_active(*c, tz, holidays) != now)
    }
}

/// Seconds since local midnight of a wall-clock time (sub-seconds dropped).
fn wall_second(wall: DateTime) -> u32 {
    wall.hour() as u32 * 3600 + wall.minute() as u32 * 60 + wall.second() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn hm(h: u32, m: u32) -> u32 {
        h * 3600 + m * 60
    }

    fn schedule(spans: &[WeeklySpan]) -> Schedule {
        let mut s = Schedule::new(ScheduleId::new(1), "s").unwrap();
        s.spans = spans.to_vec();
        s
    }

    fn at(tz: &TimeZone, wall: DateTime) -> Timestamp {
        tz.to_ambiguous_timestamp(wall).compatible().unwrap()
    }

    fn madrid() -> TimeZone {
        crate::domain::topology::time_zone("tz", "Europe/Madrid").unwrap()
    }

    fn new_york() -> TimeZone {
        crate::domain::topology::time_zone("tz", "America/New_York").unwrap()
    }

    #[test]
    fn span_validation_names_the_field() {
        let all = WeekdaySet::ALL;
        assert_eq!(
            WeeklySpan::new(all, 86_400, 0, HolidayClasses::NONE)
                .unwrap_err()
                .field,
            "start"
        );
        assert_eq!(
            WeeklySpan::new(all, 0, 86_401, HolidayClasses::NONE)
                .unwrap_err()
                .field,
            "end"
        );
        assert_eq!(
            WeeklySpan::new(all, 60, 60, HolidayClasses::NONE)
                .unwrap_err()
                .field,
            "end"
        );
        assert!(WeeklySpan::new(all, 0, 86_400, HolidayClasses::NONE).is_ok());
        assert_eq!(
            HolidayClasses::of(&[4]).unwrap_err().field,
            "holiday_classes"
        );
    }

    #[test]
    fn monday_night_span_runs_into_tuesday_only() {
        let tz = madrid();
        let span = WeeklySpan::new(
            WeekdaySet::of([Weekday::Monday]),
            hm(22, 0),
            hm(6, 0),
            HolidayClasses::NONE,
        )
        .unwrap();
        let s = schedule(&[span]);
        // 2024-06-03 is a Monday.
        let active = |wall: DateTime| s.is_active(at(&tz, wall), &tz, &[]);
        assert!(
            !active(date(2024, 6, 3).at(5, 59, 0, 0)),
            "Monday morning is Sunday's night"
        );
        assert!(!active(date(2024, 6, 3).at(21, 59, 59, 0)));
        assert!(active(date(2024, 6, 3).at(22, 0, 0, 0)));
        assert!(active(date(2024, 6, 4).at(5, 59, 59, 0)));
        assert!(!active(date(2024, 6, 4).at(6, 0, 0, 0)));
        assert!(!active(date(2024, 6, 4).at(23, 0, 0, 0)));
        assert_eq!(
            s.next_change_after(at(&tz, date(2024, 6, 3).at(12, 0, 0, 0)), &tz, &[]),
            Some(at(&tz, date(2024, 6, 3).at(22, 0, 0, 0)))
        );
        assert_eq!(
            s.next_change_after(at(&tz, date(2024, 6, 3).at(22, 0, 0, 0)), &tz, &[]),
            Some(at(&tz, date(2024, 6, 4).at(6, 0, 0, 0)))
        );
    }

    #[test]
    fn span_inside_the_spring_gap_does_not_happen() {
        let tz = new_york();
        // 2024-03-10: 02:00 EST jumps to 03:00 EDT.
        let gap =
            WeeklySpan::new(WeekdaySet::ALL, hm(2, 0), hm(3, 0), HolidayClasses::NONE).unwrap();
        let s = schedule(&[gap]);
        let before = at(&tz, date(2024, 3, 10).at(1, 0, 0, 0));
        assert_eq!(
            s.next_change_after(before, &tz, &[]),
            Some(at(&tz, date(2024, 3, 11).at(2, 0, 0, 0)))
        );
        // A span starting in the gap starts when the clock jumps past its start.
        let late =
            WeeklySpan::new(WeekdaySet::ALL, hm(2, 30), hm(4, 0), HolidayClasses::NONE).unwrap();
        let s = schedule(&[late]);
        let jump = at(&tz, date(2024, 3, 10).at(3, 0, 0, 0));
        assert_eq!(s.next_change_after(before, &tz, &[]), Some(jump));
        assert!(s.is_active(jump, &tz, &[]));
    }

    #[test]
    fn repeated_hour_is_active_twice() {
        let tz = new_york();
        // 2024-11-03: 02:00 EDT goes back to 01:00 EST.
        let span =
            WeeklySpan::new(WeekdaySet::ALL, hm(1, 0), hm(1, 30), HolidayClasses::NONE).unwrap();
        let s = schedule(&[span]);
        let first = tz
            .to_ambiguous_timestamp(date(2024, 11, 3).at(1, 0, 0, 0))
            .earlier()
            .unwrap();
        let second = tz
            .to_ambiguous_timestamp(date(2024, 11, 3).at(1, 0, 0, 0))
            .later()
            .unwrap();
        assert_eq!(second.duration_since(first), SignedDuration::from_hours(1));
        assert!(s.is_active(first, &tz, &[]) && s.is_active(second, &tz, &[]));
        let first_end = s.next_change_after(first, &tz, &[]).unwrap();
        assert_eq!(
            first_end.duration_since(first),
            SignedDuration::from_mins(30)
        );
        assert_eq!(s.next_change_after(first_end, &tz, &[]), Some(second));
    }

    #[test]
    fn holidays_replace_weekday_flags() {
        let tz = madrid();
        let calendar = HolidayCalendar {
            id: HolidayCalendarId::new(1),
            name: "ES".into(),
            holidays: vec![
                Holiday::new(
                    "Navidad",
                    date(2020, 12, 25),
                    date(2020, 12, 25),
                    HolidayClasses::of(&[1]).unwrap(),
                    true,
                )
                .unwrap(),
            ],
        };
        let weekdays =
            WeeklySpan::new(WeekdaySet::ALL, hm(9, 0), hm(17, 0), HolidayClasses::NONE).unwrap();
        let holiday_only = WeeklySpan::new(
            WeekdaySet::NONE,
            hm(18, 0),
            hm(20, 0),
            HolidayClasses::of(&[1]).unwrap(),
        )
        .unwrap();
        let s = schedule(&[weekdays, holiday_only]);
        let cal = [&calendar];
        let active = |wall: DateTime| s.is_active(at(&tz, wall), &tz, &cal);
        assert!(active(date(2024, 12, 24).at(9, 30, 0, 0)));
        assert!(
            !active(date(2024, 12, 25).at(9, 30, 0, 0)),
            "ordinary span is off on a holiday"
        );
        assert!(
            active(date(2024, 12, 25).at(18, 30, 0, 0)),
            "class-1 span runs on a class-1 holiday"
        );
        assert!(
            !active(date(2024, 12, 26).at(18, 30, 0, 0))
                && active(date(2024, 12, 26).at(9, 30, 0, 0))
        );
        // A class-2 holiday leaves both spans off.
        let other = HolidayCalendar {
            id: HolidayCalendarId::new(2),
            name: "x".into(),
            holidays: vec![
                Holiday::new(
                    "x",
                    date(2024, 12, 26),
                    date(2024, 12, 26),
                    HolidayClasses::of(&[2]).unwrap(),
                    false,
                )
                .unwrap(),
            ],
        };
        let both = [&calendar, &other];
        assert!(!s.is_active(at(&tz, date(2024, 12, 26).at(18, 30, 0, 0)), &tz, &both));
        assert!(!s.is_active(at(&tz, date(2024, 12, 26).at(9, 30, 0, 0)), &tz, &both));
    }

    #[test]
    fn yearly_holidays_cross_new_year() {
        let h = Holiday::new(
            "NY",
            date(2019, 12, 31),
            date(2020, 1, 1),
            HolidayClasses::of(&[3]).unwrap(),
            true,
        )
        .unwrap();
        assert!(h.covers(date(2025, 12, 31)));
        assert!(h.covers(date(2026, 1, 1)));
        assert!(!h.covers(date(2026, 1, 2)));
        assert!(!h.covers(date(2018, 12, 31)), "not before its first year");
        assert_eq!(
            Holiday::new(
                "x",
                date(2020, 1, 2),
                date(2020, 1, 1),
                HolidayClasses::of(&[1]).unwrap(),
                false
            )
            .unwrap_err()
            .field,
            "end"
        );
    }

    #[test]
    fn one_off_windows_and_horizon() {
        let tz = TimeZone::UTC;
        let mut s = schedule(&[]);
        let t = |s: i64| Timestamp::from_second(s).unwrap();
        s.add_one_off(t(100), t(200)).unwrap();
        assert!(s.add_one_off(t(100), t(100)).is_err());
        assert!(!s.is_active(t(99), &tz, &[]));
        assert!(s.is_active(t(100), &tz, &[]));
        assert_eq!(s.next_change_after(t(0), &tz, &[]), Some(t(100)));
        assert_eq!(s.next_change_after(t(100), &tz, &[]), Some(t(200)));
        assert_eq!(s.next_change_after(t(200), &tz, &[]), None);
        // An always-on schedule never changes.
        let always =
            schedule(&[
                WeeklySpan::new(WeekdaySet::ALL, 0, SECONDS_PER_DAY, HolidayClasses::NONE).unwrap(),
            ]);
        assert!(always.is_active(t(0), &tz, &[]));
        assert_eq!(always.next_change_after(t(0), &tz, &[]), None);
    }
}
