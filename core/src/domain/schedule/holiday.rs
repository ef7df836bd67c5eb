//! Holidays: holiday classes 1 to 3 (Control iD `hol1..hol3`), holidays spanning local
//! dates and possibly repeating every year, and the calendars schedules refer to.

use jiff::ToSpan;
use jiff::civil::Date;

use crate::domain::id::HolidayCalendarId;
use crate::domain::validation::{InvalidField, Problem, required_text};

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

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    #[test]
    fn holiday_classes_are_one_to_three() {
        assert_eq!(
            HolidayClasses::of(&[4]).unwrap_err().field,
            "holiday_classes"
        );
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
}
