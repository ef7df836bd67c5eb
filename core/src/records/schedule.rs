//! Documents of schedules and holiday calendars.
//!
//! Shapes (ids are numbers, instants RFC 3339 text, dates `YYYY-MM-DD`):
//!
//! - schedule: `{name, spans, one_off_windows, holiday_calendar_ids}` where a span is
//!   `{weekdays, start, end, holiday_classes}` – `weekdays` are names (`monday` …
//!   `sunday`), `start` / `end` seconds since local midnight, `holiday_classes` a list of
//!   1, 2, 3 – and a one-off window is `{start?, end?}`;
//! - holiday calendar: `{name, holidays}` where a holiday is `{name, first, last, classes,
//!   repeats_yearly}` (`first` and `last` local dates, both included).
//!
//! Neither claims a unique key: the domain makes no schedule or calendar name unique.

use jiff::civil::{Date, Weekday};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as Json;

use super::codec::{decode, encode, invalid, refused, rfc3339_opt, window};
use super::{CodecError, Stored};
use crate::domain::{
    Holiday, HolidayCalendar, HolidayCalendarId, HolidayClasses, Schedule, ScheduleId, TenantId,
    WeekdaySet, WeeklySpan,
};
use crate::store::{Kind, UniqueKey};

/// Weekdays in document order, with their stored names.
const WEEKDAYS: [(Weekday, &str); 7] = [
    (Weekday::Monday, "monday"),
    (Weekday::Tuesday, "tuesday"),
    (Weekday::Wednesday, "wednesday"),
    (Weekday::Thursday, "thursday"),
    (Weekday::Friday, "friday"),
    (Weekday::Saturday, "saturday"),
    (Weekday::Sunday, "sunday"),
];

/// `#[serde(with = "date")]`: a civil date as `YYYY-MM-DD`.
mod date {
    use super::*;

    pub(super) fn serialize<S: Serializer>(date: &Date, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(date)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Date, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|e| {
            serde::de::Error::custom(format!("'{text}' is not a date (YYYY-MM-DD): {e}"))
        })
    }
}

fn classes_doc(classes: HolidayClasses) -> Vec<u8> {
    (1..=3).filter(|c| classes.contains(*c)).collect()
}

#[derive(Serialize, Deserialize)]
struct SpanDoc {
    weekdays: Vec<String>,
    start: u32,
    end: u32,
    #[serde(default)]
    holiday_classes: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct OneOffDoc {
    #[serde(default, with = "rfc3339_opt")]
    start: Option<jiff::Timestamp>,
    #[serde(default, with = "rfc3339_opt")]
    end: Option<jiff::Timestamp>,
}

#[derive(Serialize, Deserialize)]
struct ScheduleDoc {
    name: String,
    #[serde(default)]
    spans: Vec<SpanDoc>,
    #[serde(default)]
    one_off_windows: Vec<OneOffDoc>,
    #[serde(default)]
    holiday_calendar_ids: Vec<u64>,
}

fn span_of(id: u64, doc: SpanDoc) -> Result<WeeklySpan, CodecError> {
    let kind = Kind::Schedule;
    let days = doc
        .weekdays
        .iter()
        .map(|name| {
            WEEKDAYS
                .iter()
                .find(|(_, n)| n == name)
                .map(|(day, _)| *day)
                .ok_or_else(|| invalid(kind, id, format!("'{name}' is not a weekday")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let classes = HolidayClasses::of(&doc.holiday_classes).map_err(refused(kind, id))?;
    WeeklySpan::new(WeekdaySet::of(days), doc.start, doc.end, classes).map_err(refused(kind, id))
}

impl Stored for Schedule {
    const KIND: Kind = Kind::Schedule;

    fn record_id(&self) -> u64 {
        self.id.get()
    }

    fn to_document(&self) -> Json {
        encode(&ScheduleDoc {
            name: self.name.clone(),
            spans: self
                .spans
                .iter()
                .map(|span| SpanDoc {
                    weekdays: WEEKDAYS
                        .iter()
                        .filter(|(day, _)| span.weekdays().contains(*day))
                        .map(|(_, name)| (*name).to_owned())
                        .collect(),
                    start: span.start(),
                    end: span.end(),
                    holiday_classes: classes_doc(span.holiday_classes()),
                })
                .collect(),
            one_off_windows: self
                .one_off_windows
                .iter()
                .map(|w| OneOffDoc {
                    start: w.from(),
                    end: w.to(),
                })
                .collect(),
            holiday_calendar_ids: self.holiday_calendar_ids.iter().map(|c| c.get()).collect(),
        })
    }

    fn from_document(_tenant: TenantId, id: u64, document: &Json) -> Result<Self, CodecError> {
        let doc: ScheduleDoc = decode(Self::KIND, id, document)?;
        Ok(Schedule {
            id: ScheduleId::new(id),
            name: doc.name,
            spans: doc
                .spans
                .into_iter()
                .map(|span| span_of(id, span))
                .collect::<Result<_, _>>()?,
            one_off_windows: doc
                .one_off_windows
                .into_iter()
                .map(|w| window(Self::KIND, id, w.start, w.end, "start", "end"))
                .collect::<Result<_, _>>()?,
            holiday_calendar_ids: doc
                .holiday_calendar_ids
                .into_iter()
                .map(HolidayCalendarId::new)
                .collect(),
        })
    }

    fn unique_keys(&self) -> Vec<UniqueKey> {
        Vec::new()
    }
}

#[derive(Serialize, Deserialize)]
struct HolidayDoc {
    name: String,
    #[serde(with = "date")]
    first: Date,
    #[serde(with = "date")]
    last: Date,
    classes: Vec<u8>,
    #[serde(default)]
    repeats_yearly: bool,
}

#[derive(Serialize, Deserialize)]
struct CalendarDoc {
    name: String,
    #[serde(default)]
    holidays: Vec<HolidayDoc>,
}

impl Stored for HolidayCalendar {
    const KIND: Kind = Kind::HolidayCalendar;

    fn record_id(&self) -> u64 {
        self.id.get()
    }

    fn to_document(&self) -> Json {
        encode(&CalendarDoc {
            name: self.name.clone(),
            holidays: self
                .holidays
                .iter()
                .map(|h| HolidayDoc {
                    name: h.name.clone(),
                    first: h.first(),
                    last: h.last(),
                    classes: classes_doc(h.classes()),
                    repeats_yearly: h.repeats_yearly(),
                })
                .collect(),
        })
    }

    fn from_document(_tenant: TenantId, id: u64, document: &Json) -> Result<Self, CodecError> {
        let doc: CalendarDoc = decode(Self::KIND, id, document)?;
        let refused = || refused(Self::KIND, id);
        Ok(HolidayCalendar {
            id: HolidayCalendarId::new(id),
            name: doc.name,
            holidays: doc
                .holidays
                .into_iter()
                .map(|h| {
                    let classes = HolidayClasses::of(&h.classes).map_err(refused())?;
                    Holiday::new(&h.name, h.first, h.last, classes, h.repeats_yearly)
                        .map_err(refused())
                })
                .collect::<Result<_, _>>()?,
        })
    }

    fn unique_keys(&self) -> Vec<UniqueKey> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use serde_json::json;

    const TENANT: TenantId = TenantId::new(3);

    fn schedule() -> Schedule {
        let mut schedule = Schedule::new(ScheduleId::new(71), "Office hours").unwrap();
        schedule.spans = vec![
            WeeklySpan::new(
                WeekdaySet::of([Weekday::Monday, Weekday::Friday]),
                8 * 3600,
                18 * 3600,
                HolidayClasses::of(&[1, 3]).unwrap(),
            )
            .unwrap(),
            // Crosses midnight, never on holidays.
            WeeklySpan::new(WeekdaySet::ALL, 22 * 3600, 6 * 3600, HolidayClasses::NONE).unwrap(),
            WeeklySpan::new(
                WeekdaySet::NONE,
                0,
                86_400,
                HolidayClasses::of(&[2]).unwrap(),
            )
            .unwrap(),
        ];
        schedule
            .add_one_off(
                "2024-08-15T10:00:00Z".parse().unwrap(),
                "2024-08-15T12:30:00.25Z".parse().unwrap(),
            )
            .unwrap();
        schedule.holiday_calendar_ids =
            vec![HolidayCalendarId::new(81), HolidayCalendarId::new(82)];
        schedule
    }

    #[test]
    fn schedule_round_trips_spans_windows_and_calendars() {
        let schedule = schedule();
        let document = schedule.to_document();
        assert_eq!(
            document,
            json!({
                "name": "Office hours",
                "spans": [
                    {"weekdays": ["monday", "friday"], "start": 28800, "end": 64800,
                     "holiday_classes": [1, 3]},
                    {"weekdays": ["monday", "tuesday", "wednesday", "thursday", "friday",
                                  "saturday", "sunday"],
                     "start": 79200, "end": 21600, "holiday_classes": []},
                    {"weekdays": [], "start": 0, "end": 86400, "holiday_classes": [2]},
                ],
                "one_off_windows": [
                    {"start": "2024-08-15T10:00:00Z", "end": "2024-08-15T12:30:00.25Z"},
                ],
                "holiday_calendar_ids": [81, 82],
            })
        );
        assert_eq!(
            Schedule::from_document(TENANT, 71, &document).unwrap(),
            schedule
        );
        assert!(schedule.unique_keys().is_empty());
    }

    #[test]
    fn bad_spans_are_refused() {
        let mut document = schedule().to_document();
        document["spans"][0]["weekdays"] = json!(["funday"]);
        let err = Schedule::from_document(TENANT, 71, &document).unwrap_err();
        assert!(err.reason.contains("funday"), "{}", err.reason);
        let mut document = schedule().to_document();
        document["spans"][0]["holiday_classes"] = json!([4]);
        assert!(Schedule::from_document(TENANT, 71, &document).is_err());
        let mut document = schedule().to_document();
        document["spans"][0]["end"] = json!(28800);
        assert!(Schedule::from_document(TENANT, 71, &document).is_err());
    }

    #[test]
    fn holiday_calendar_round_trips_every_holiday_member() {
        let calendar = HolidayCalendar {
            id: HolidayCalendarId::new(81),
            name: "Spain".into(),
            holidays: vec![
                Holiday::new(
                    "Christmas",
                    date(2024, 12, 24),
                    date(2025, 1, 6),
                    HolidayClasses::of(&[1, 2]).unwrap(),
                    true,
                )
                .unwrap(),
                Holiday::new(
                    "Strike",
                    date(2024, 3, 8),
                    date(2024, 3, 8),
                    HolidayClasses::of(&[3]).unwrap(),
                    false,
                )
                .unwrap(),
            ],
        };
        let document = calendar.to_document();
        assert_eq!(
            document["holidays"][0],
            json!({"name": "Christmas", "first": "2024-12-24", "last": "2025-01-06",
                   "classes": [1, 2], "repeats_yearly": true})
        );
        assert_eq!(
            HolidayCalendar::from_document(TENANT, 81, &document).unwrap(),
            calendar
        );
        assert!(calendar.unique_keys().is_empty());

        let mut bad = document;
        bad["holidays"][1]["first"] = json!("2024-13-01");
        assert!(HolidayCalendar::from_document(TENANT, 81, &bad).is_err());
    }
}
