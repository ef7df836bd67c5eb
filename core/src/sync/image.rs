//! The device image: what one terminal's tables must contain, derived from the domain's
//! desired state, cut into subjects the sync engine applies and records one by one.
//!
//! Mapping onto the Control iD tables (docs/device-api.md §3.8):
//! - a person → `users` row with `id` = the core's person id, `registration` = `acs_id`
//!   (so the `acs_id` is recoverable from the device), `name`, `begin_time`/`end_time` =
//!   the person's validity in the site's wall time (0 = unset), to which the engine adds
//!   the terminal's measured clock skew when writing (docs/domain.md §5.3);
//! - their credentials → `cards.value` (facility code × 2^32 + number), `pins.value`,
//!   `qrcodes.value`, `templates.template`, and the face photo through `user_set_image`;
//! - why they may pass → `user_access_rules` to one rule per schedule (its time zone and
//!   spans, holiday classes as `hol1..3`) or to the "always" rule (members, attendees,
//!   accesses without a schedule). Rules are not placed on portals, so they apply at every
//!   door of the terminal. Holidays of the schedules' calendars → `holidays`.
//!
//! Validity windows of entitlements (event times, temporary accesses) are not written to
//! the device: the desired state already changes at those instants and the engine wakes
//! then to add or remove people.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::domain::desired::{Coverage, desired_for};
use crate::domain::{CredentialId, CredentialValue, Entitlement, ScheduleId, Snapshot};

/// Id of the core's "always" rule and time zone on every device.
pub const ALWAYS_RULE: i64 = 1_000_000_000;

/// A face photo to push: the credential whose blob holds the JPEG, and its timestamp.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FaceRef {
    /// The face credential.
    pub credential_id: u64,
    /// `user_set_image` timestamp (issue time, seconds).
    pub timestamp: i64,
}

/// One person as the device must hold them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserImage {
    /// `users.id` (the person id).
    pub id: i64,
    /// `users.registration` (the `acs_id`).
    pub registration: String,
    /// `users.name`.
    pub name: String,
    /// `users.begin_time` (the site's wall seconds, before the clock skew; 0 = none).
    pub begin_time: i64,
    /// `users.end_time` (the site's wall seconds, before the clock skew; 0 = none).
    pub end_time: i64,
    /// `cards.value`s.
    pub cards: BTreeSet<u64>,
    /// `pins.value`s.
    pub pins: BTreeSet<String>,
    /// `qrcodes.value`s.
    pub qrcodes: BTreeSet<String>,
    /// `templates.template`s.
    pub templates: BTreeSet<String>,
    /// The face to set.
    pub face: Option<FaceRef>,
    /// `user_access_rules.access_rule_id`s.
    pub rules: BTreeSet<i64>,
}

/// One `time_spans` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanRow {
    /// Start second of the local day.
    pub start: i64,
    /// Last second of the span (inclusive, as the device counts); before `start` when the
    /// span crosses midnight.
    pub end: i64,
    /// `sun, mon, tue, wed, thu, fri, sat` flags.
    pub days: [bool; 7],
    /// `hol1..hol3` flags.
    pub holidays: [bool; 3],
}

/// A rule with its own time zone (same id for both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleImage {
    /// `access_rules.id` = `time_zones.id`.
    pub id: i64,
    /// Name shown on the device.
    pub name: String,
    /// The zone's spans.
    pub spans: Vec<SpanRow>,
}

/// One `holidays` row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HolidayRow {
    /// Name.
    pub name: String,
    /// First local day, device seconds at 00:00.
    pub start: i64,
    /// Last local day, device seconds at 23:59:59.
    pub end: i64,
    /// `hol1..hol3`.
    pub classes: [bool; 3],
    /// Repeats every year.
    pub repeats: bool,
}

/// How the terminal talks back to the core: where it pushes monitor notifications and,
/// in online modes, where it asks for decisions (the core's receiver).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupImage {
    /// Receiver host as the terminal reaches it.
    pub host: String,
    /// Receiver port.
    pub port: u16,
    /// `standalone`, `pro` or `enterprise`.
    pub mode: String,
}

/// The subject key of the setup.
pub const SETUP_KEY: &str = "setup";

/// What one subject of the image holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SubjectImage {
    /// A rule and its time zone (boxed, as the setup, so that an entry of a terminal's
    /// applied record – nearly always a person – stays 32 bytes).
    Rule(Box<RuleImage>),
    /// All holidays.
    Holidays {
        /// The rows.
        rows: Vec<HolidayRow>,
    },
    /// A person (shared: every terminal of a coverage holds the same image of them, and
    /// what a terminal applied is the image it was given, so a person costs one image
    /// however many terminals hold them).
    User(Arc<UserImage>),
    /// Monitor and online-mode configuration.
    Setup(Box<SetupImage>),
    /// Never desired, only recorded: a step on this subject was started and its outcome
    /// is unknown (a timeout, a refusal halfway, the core killed), so the device may hold
    /// any part of these images. The next step applies over it from a clean slate, and a
    /// removal removes every one of them.
    Doubt {
        /// What the device may (partly) hold.
        candidates: Vec<SubjectImage>,
    },
}

impl SubjectImage {
    /// The images the device may hold when this one is recorded as applied.
    pub fn candidates(&self) -> Vec<SubjectImage> {
        match self {
            SubjectImage::Doubt { candidates } => candidates.clone(),
            other => vec![other.clone()],
        }
    }

    /// What to record before a step from `applied` towards `desired` starts.
    pub fn doubt(applied: Option<&SubjectImage>, desired: Option<&SubjectImage>) -> SubjectImage {
        let mut candidates = applied.map(SubjectImage::candidates).unwrap_or_default();
        if let Some(d) = desired
            && !candidates.contains(d)
        {
            candidates.push(d.clone());
        }
        SubjectImage::Doubt { candidates }
    }
}

/// A terminal's whole image, by subject key (`rule:<id>`, `holidays`, `user:<id>`); keys
/// sort rules and holidays before users, which refer to them.
pub type DeviceImage = BTreeMap<String, SubjectImage>;

/// The subject key of a rule.
pub fn rule_key(id: i64) -> String {
    format!("rule:{id}")
}

/// The subject key of a person.
pub fn user_key(id: i64) -> String {
    format!("user:{id}")
}

/// The key of the holidays subject.
pub const HOLIDAYS_KEY: &str = "holidays";

/// The site's wall seconds for an instant: wall time in `tz` read as if it were UTC
/// (docs/device-api.md §3.9 "time"); a device whose clock reads the site's wall time
/// reports these, any other is off by its measured skew (docs/domain.md §5.3).
pub fn device_seconds(at: Timestamp, tz: &TimeZone) -> i64 {
    at.as_second() + i64::from(tz.to_offset(at).seconds())
}

fn always_rule() -> RuleImage {
    RuleImage {
        id: ALWAYS_RULE,
        name: "acs-core: always".into(),
        spans: vec![SpanRow {
            start: 0,
            end: 86_399,
            days: [true; 7],
            holidays: [true; 3],
        }],
    }
}

fn schedule_rule(s: &Snapshot, id: ScheduleId) -> Option<RuleImage> {
    use jiff::civil::Weekday::*;
    let schedule = s.schedules.get(&id)?;
    let order = [
        Sunday, Monday, Tuesday, Wednesday, Thursday, Friday, Saturday,
    ];
    let spans = schedule
        .spans
        .iter()
        .map(|span| {
            let end = i64::from(span.end()) - 1;
            SpanRow {
                start: i64::from(span.start()),
                end: if end < 0 { 86_399 } else { end },
                days: order.map(|d| span.weekdays().contains(d)),
                holidays: [1, 2, 3].map(|k| span.holiday_classes().contains(k)),
            }
        })
        .collect();
    Some(RuleImage {
        id: i64::try_from(id.get()).unwrap_or(i64::MAX),
        name: format!("acs-core: {}", schedule.name),
        spans,
    })
}

fn holidays(s: &Snapshot, schedules: &BTreeSet<ScheduleId>) -> Vec<HolidayRow> {
    let mut rows = BTreeSet::new();
    let day = |d: jiff::civil::Date| {
        d.to_zoned(TimeZone::UTC)
            .map(|z| z.timestamp().as_second())
            .unwrap_or(0)
    };
    for id in schedules {
        let Some(schedule) = s.schedules.get(id) else {
            continue;
        };
        for calendar in &schedule.holiday_calendar_ids {
            let Some(calendar) = s.holiday_calendars.get(calendar) else {
                continue;
            };
            for h in &calendar.holidays {
                rows.insert(HolidayRow {
                    name: h.name.clone(),
                    start: day(h.first()),
                    end: day(h.last()) + 86_399,
                    classes: [1, 2, 3].map(|k| h.classes().contains(k)),
                    repeats: h.repeats_yearly(),
                });
            }
        }
    }
    rows.into_iter().collect()
}

/// The image terminals of `coverage` must hold at `at`, and when that next changes.
pub fn device_image(
    s: &Snapshot,
    coverage: &Coverage,
    at: Timestamp,
) -> (DeviceImage, Option<Timestamp>) {
    let (people, next_change) = desired_for(s, coverage, at);
    let tz = s
        .topology
        .site_of_facility(coverage.facility_id())
        .map_or(TimeZone::UTC, |site| site.time_zone.clone());
    let mut image = DeviceImage::new();
    let mut schedules = BTreeSet::new();
    let mut always = false;
    for (person_id, wanted) in &people {
        let Some(person) = s.people.get(person_id) else {
            continue;
        };
        let id = i64::try_from(person_id.get()).unwrap_or(i64::MAX);
        let mut user = UserImage {
            id,
            registration: wanted.acs_id.as_str().to_owned(),
            name: if person.name.is_empty() {
                wanted.acs_id.as_str().to_owned()
            } else {
                person.name.clone()
            },
            begin_time: person.validity.from().map_or(0, |t| device_seconds(t, &tz)),
            end_time: person.validity.to().map_or(0, |t| device_seconds(t, &tz)),
            cards: BTreeSet::new(),
            pins: BTreeSet::new(),
            qrcodes: BTreeSet::new(),
            templates: BTreeSet::new(),
            face: None,
            rules: BTreeSet::new(),
        };
        for (credential_id, why) in &wanted.credentials {
            add_credential(s, &mut user, *credential_id);
            for entitlement in why {
                match entitlement {
                    Entitlement::Access(a) => match s.accesses.get(a).and_then(|a| a.schedule_id) {
                        Some(schedule) if s.schedules.contains_key(&schedule) => {
                            schedules.insert(schedule);
                            user.rules
                                .insert(i64::try_from(schedule.get()).unwrap_or(i64::MAX));
                        }
                        _ => {
                            always = true;
                            user.rules.insert(ALWAYS_RULE);
                        }
                    },
                    Entitlement::Membership(_) | Entitlement::Attendee(_) => {
                        always = true;
                        user.rules.insert(ALWAYS_RULE);
                    }
                }
            }
        }
        image.insert(user_key(id), SubjectImage::User(Arc::new(user)));
    }
    if always {
        image.insert(
            rule_key(ALWAYS_RULE),
            SubjectImage::Rule(Box::new(always_rule())),
        );
    }
    for schedule in &schedules {
        if let Some(rule) = schedule_rule(s, *schedule) {
            image.insert(rule_key(rule.id), SubjectImage::Rule(Box::new(rule)));
        }
    }
    let rows = holidays(s, &schedules);
    if !rows.is_empty() {
        image.insert(HOLIDAYS_KEY.into(), SubjectImage::Holidays { rows });
    }
    (image, next_change)
}

fn add_credential(s: &Snapshot, user: &mut UserImage, id: CredentialId) {
    let Some(c) = s.credentials.get(&id) else {
        return;
    };
    match &c.value {
        CredentialValue::Card(card) => {
            user.cards.insert(card.to_device_value());
        }
        CredentialValue::Pin(pin) => {
            user.pins.insert(pin.expose().to_owned());
        }
        CredentialValue::Qr(qr) => {
            user.qrcodes.insert(qr.expose().to_owned());
        }
        CredentialValue::Fingerprint(t) => {
            user.templates.extend(t.expose().iter().cloned());
        }
        CredentialValue::Face { .. } => {
            let face = FaceRef {
                credential_id: id.get(),
                timestamp: c.issued_at.as_second(),
            };
            // One photo per user on the device: the newest face wins.
            if user
                .face
                .as_ref()
                .is_none_or(|f| f.timestamp <= face.timestamp)
            {
                user.face = Some(face);
            }
        }
        CredentialValue::CloudKey { .. } | CredentialValue::MobileKey { .. } => {}
    }
}
#[cfg(test)]
mod entry_size {
    /// Every terminal keeps one entry per person it holds (`DeviceImage`): with 10⁶
    /// holdings, each byte of an entry is a megabyte of the core.
    #[test]
    fn a_subject_image_takes_at_most_32_bytes() {
        assert!(std::mem::size_of::<super::SubjectImage>() <= 32);
    }
}
