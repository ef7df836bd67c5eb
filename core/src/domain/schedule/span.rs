//! Weekly spans: `[start, end)` seconds since local midnight on a set of weekdays and on
//! holidays of some classes. If `end < start` the span crosses midnight: the instance that
//! starts on day D runs from D `start` to D+1 `end`, and which instances exist on D is
//! decided by D alone.

use jiff::civil::{Date, Weekday};

use super::HolidayClasses;
use crate::domain::validation::{InvalidField, Problem};

/// Seconds in a (wall-clock) day.
pub const SECONDS_PER_DAY: u32 = 86_400;

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
    pub(super) fn runs_on(&self, date: Date, classes: HolidayClasses) -> bool {
        if classes.is_empty() {
            self.weekdays.contains(date.weekday())
        } else {
            self.holiday_classes.intersects(classes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
