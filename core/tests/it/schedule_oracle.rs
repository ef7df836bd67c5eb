//! Schedules against a naive oracle, minute by minute, across DST transitions and
//! midnight-crossing spans (docs/domain.md §8.3 rule 9).
//!
//! The oracle shares nothing with the implementation but the holiday lookup: it lays out
//! every span instance that could cover a wall-clock time as a civil interval
//! `[day + start, day + start + length)` and checks containment with civil arithmetic.

use crate::support::ts;
use acs_core::domain::*;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use proptest::prelude::*;

/// Naive evaluation on the wall clock.
fn oracle(
    schedule: &Schedule,
    at: Timestamp,
    tz: &TimeZone,
    calendars: &[&HolidayCalendar],
) -> bool {
    if schedule.one_off_windows.iter().any(|w| w.contains(at)) {
        return true;
    }
    let wall: DateTime = tz.to_datetime(at);
    let today = wall.date();
    for day in [today.yesterday().unwrap(), today] {
        let classes = calendars
            .iter()
            .fold(HolidayClasses::NONE, |acc, c| acc.union(c.classes_on(day)));
        for span in &schedule.spans {
            let runs = if classes.is_empty() {
                span.weekdays().contains(day.weekday())
            } else {
                span.holiday_classes().intersects(classes)
            };
            if !runs {
                continue;
            }
            let length = if span.end() > span.start() {
                span.end() - span.start()
            } else {
                86_400 - span.start() + span.end()
            };
            let begin =
                day.to_datetime(jiff::civil::Time::midnight()) + i64::from(span.start()).seconds();
            let end = begin + i64::from(length).seconds();
            if begin <= wall && wall < end {
                return true;
            }
        }
    }
    false
}

const ZONES: [&str; 4] = [
    "America/New_York",
    "Europe/Madrid",
    "Australia/Lord_Howe",
    "UTC",
];

/// Days around DST transitions of the zones above (and an ordinary one).
const DAYS: [&str; 8] = [
    "2024-03-10T00:00:00Z", // New York springs forward
    "2024-11-03T00:00:00Z", // New York falls back
    "2024-03-31T00:00:00Z", // Madrid springs forward
    "2024-10-27T00:00:00Z", // Madrid falls back
    "2024-04-07T00:00:00Z", // Lord Howe falls back 30 minutes
    "2024-10-06T00:00:00Z", // Lord Howe springs forward 30 minutes
    "2024-12-31T00:00:00Z", // New Year
    "2024-06-15T00:00:00Z", // nothing special
];

fn span_strategy() -> impl Strategy<Value = WeeklySpan> {
    // Quarter-hour boundaries, so gaps and folds (whole and half hours) are hit exactly.
    (
        1u8..128,
        0u32..96,
        1u32..=96,
        prop::bool::ANY,
        prop::bool::ANY,
    )
        .prop_filter("start != end", |(_, s, e, _, _)| s != e)
        .prop_map(|(days, start, end, hol1, hol2)| {
            let weekdays = WeekdaySet::of(
                jiff::civil::Weekday::Monday
                    .cycle_forward()
                    .take(7)
                    .enumerate()
                    .filter(|(i, _)| days & (1 << i) != 0)
                    .map(|(_, d)| d),
            );
            let mut classes = Vec::new();
            if hol1 {
                classes.push(1);
            }
            if hol2 {
                classes.push(2);
            }
            WeeklySpan::new(
                weekdays,
                start * 900,
                end * 900,
                HolidayClasses::of(&classes).unwrap(),
            )
            .unwrap()
        })
}

#[derive(Debug, Clone)]
struct Case {
    zone: &'static str,
    start: Timestamp,
    schedule: Schedule,
    calendar: HolidayCalendar,
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(ZONES.to_vec()),
        prop::sample::select(DAYS.to_vec()),
        -36i64..12,
        prop::collection::vec(span_strategy(), 0..4),
        prop::option::of((0i64..3, 1u8..=2)),
        prop::option::of((0i64..48 * 4, 1i64..12)),
    )
        .prop_map(|(zone, day, hours, spans, holiday, one_off)| {
            let start = ts(day) + SignedDuration::from_hours(hours);
            let mut schedule = Schedule::new(ScheduleId::new(1), "s").unwrap();
            schedule.spans = spans;
            if let Some((quarter, quarters)) = one_off {
                let from = start + SignedDuration::from_mins(quarter * 15);
                schedule
                    .add_one_off(from, from + SignedDuration::from_mins(quarters * 15))
                    .unwrap();
            }
            let mut calendar = HolidayCalendar {
                id: HolidayCalendarId::new(1),
                name: "c".into(),
                holidays: Vec::new(),
            };
            if let Some((offset, class)) = holiday {
                let date: Date = ts(day).to_zoned(TimeZone::UTC).date() + offset.days();
                calendar.holidays.push(
                    Holiday::new(
                        "h",
                        date,
                        date,
                        HolidayClasses::of(&[class]).unwrap(),
                        false,
                    )
                    .unwrap(),
                );
            }
            Case {
                zone,
                start,
                schedule,
                calendar,
            }
        })
}

/// Minutes scanned per case: two days, so every case crosses midnight twice and the
/// transition of its day.
const SCAN_MINUTES: i64 = 2 * 24 * 60;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn schedule_agrees_with_minute_by_minute_oracle(case in case_strategy()) {
        let tz = time_zone("tz", case.zone).unwrap();
        let calendars = [&case.calendar];
        let mut flips = Vec::new();
        let mut previous = None;
        for minute in 0..=SCAN_MINUTES {
            let at = case.start + SignedDuration::from_mins(minute);
            let expected = oracle(&case.schedule, at, &tz, &calendars);
            prop_assert_eq!(
                case.schedule.is_active(at, &tz, &calendars),
                expected,
                "is_active at {} ({})", at, tz.to_datetime(at)
            );
            if previous.is_some_and(|p| p != expected) {
                flips.push(at);
            }
            previous = Some(expected);
        }
        // next_change_after from the start and from every flip lands on the next flip.
        let scan_end = case.start + SignedDuration::from_mins(SCAN_MINUTES);
        for (from, expected) in std::iter::once(case.start)
            .chain(flips.iter().copied())
            .zip(flips.iter().copied().map(Some).chain(std::iter::once(None)))
        {
            let next = case.schedule.next_change_after(from, &tz, &calendars);
            match expected {
                Some(flip) => prop_assert_eq!(next, Some(flip), "next change after {}", from),
                None => prop_assert!(
                    next.is_none_or(|n| n > scan_end),
                    "next change after {} is {:?}, but the oracle saw none before {}", from, next, scan_end
                ),
            }
        }
    }

    #[test]
    fn next_change_is_a_real_flip_far_ahead(case in case_strategy()) {
        // Beyond the scanned window: whatever next_change_after returns must be a flip, and
        // nothing may flip in between (checked at its minute boundaries).
        let tz = time_zone("tz", case.zone).unwrap();
        let calendars = [&case.calendar];
        let from = case.start + SignedDuration::from_hours(24 * 20);
        let now = oracle(&case.schedule, from, &tz, &calendars);
        if let Some(next) = case.schedule.next_change_after(from, &tz, &calendars) {
            prop_assert!(next > from);
            prop_assert_ne!(oracle(&case.schedule, next, &tz, &calendars), now);
            let minutes = next.duration_since(from).as_secs() / 60;
            for minute in (1..minutes).step_by(7) {
                let at = from + SignedDuration::from_mins(minute);
                prop_assert_eq!(oracle(&case.schedule, at, &tz, &calendars), now, "flip before {} at {}", next, at);
            }
        }
    }
}

#[test]
fn oracle_detects_a_wrong_span() {
    // The oracle is not vacuous: it tells an active Monday night from an inactive one.
    let tz = time_zone("tz", "Europe/Madrid").unwrap();
    let mut schedule = Schedule::new(ScheduleId::new(1), "s").unwrap();
    schedule.spans.push(
        WeeklySpan::new(
            WeekdaySet::of([jiff::civil::Weekday::Monday]),
            22 * 3600,
            6 * 3600,
            HolidayClasses::NONE,
        )
        .unwrap(),
    );
    assert!(oracle(&schedule, ts("2024-06-04T01:00:00Z"), &tz, &[])); // Tue 03:00
    assert!(!oracle(&schedule, ts("2024-06-03T01:00:00Z"), &tz, &[])); // Mon 03:00
}
