//! How a schedule is evaluated: whether it is active at an instant, and the next instant
//! that changes.
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

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::{HolidayCalendar, SECONDS_PER_DAY, Schedule, holiday_classes_on};

/// How far ahead [`Schedule::next_change_after`] looks.
pub const NEXT_CHANGE_HORIZON_DAYS: i64 = 400;

impl Schedule {
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
                if second >= span.start() && span.runs_on(today, today_classes) {
                    return true;
                }
                if second < span.end() {
                    let Ok(yesterday) = today.yesterday() else {
                        return false;
                    };
                    let classes = *yesterday_classes
                        .get_or_insert_with(|| holiday_classes_on(holidays, yesterday));
                    return span.runs_on(yesterday, classes);
                }
                false
            } else {
                span.start() <= second && second < span.end() && span.runs_on(today, today_classes)
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
                        .flat_map(|s| [s.start(), s.end() % SECONDS_PER_DAY]),
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
    use jiff::civil::{Weekday, date};

    use super::*;
    use crate::domain::id::{HolidayCalendarId, ScheduleId};
    use crate::domain::schedule::{Holiday, HolidayClasses, WeekdaySet, WeeklySpan};

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
