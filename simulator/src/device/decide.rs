//! How the terminal decides in standalone mode (docs/device-api.md §3.8–3.9): identify the
//! credential against its own tables, check the user's validity window, then evaluate the
//! access rules that reach the user (directly or through groups) and the portal (directly
//! or through its destination area) – blocking rules first, then allowing rules – each
//! active when one of its time zones has a span covering the device-local time, with
//! holiday classes replacing the weekday flags on holidays. The default is deny.
//!
//! Pure: reads a [`Database`] and returns a [`Decision`]; writing the log and acting on it
//! is the caller's business.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::table::{Database, Table, Value};

/// `identifier_id` values: three ASCII letters and a zero byte (docs/device-api.md §3.9).
pub mod identifier {
    /// `bio\0`: fingerprint.
    pub const FINGERPRINT: i64 = 0x6269_6F00;
    /// `fac\0`: face.
    pub const FACE: i64 = 0x6661_6300;
    /// `win\0`: card (Wiegand reader).
    pub const CARD: i64 = 0x7769_6E00;
    /// `pin\0`: keypad PIN (same scheme; value not captured).
    pub const PIN: i64 = 0x7069_6E00;
    /// `qrc\0`: QR code (same scheme; value not captured).
    pub const QR: i64 = 0x7172_6300;
    /// `pas\0`: user id + password on the keypad (same scheme; the simulator's choice, no
    /// capture shows the value).
    pub const PASSWORD: i64 = 0x7061_7300;
}

/// Access-log event codes used by decisions (docs/device-api.md §3.9).
pub mod event {
    /// Not identified.
    pub const NOT_IDENTIFIED: i64 = 3;
    /// Access denied.
    pub const DENIED: i64 = 6;
    /// Access granted.
    pub const GRANTED: i64 = 7;
}

/// What was presented, as the decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A card value.
    Card(u64),
    /// A face already matched to this user (or `None`: no enrolled face matched).
    Face(Option<i64>),
    /// A fingerprint template (base64, as stored in `templates.template`).
    FingerTemplate(String),
    /// A PIN typed on the keypad.
    Pin(String),
    /// A QR code's text.
    Qr(String),
    /// A user id and password typed on the keypad.
    IdAndPassword {
        /// The `users.id` typed.
        user_id: i64,
        /// The password typed.
        password: String,
    },
}

impl Credential {
    /// The `identifier_id` logged for this kind of credential.
    pub fn identifier_id(&self) -> i64 {
        match self {
            Credential::Card(_) => identifier::CARD,
            Credential::Face(_) => identifier::FACE,
            Credential::FingerTemplate(_) => identifier::FINGERPRINT,
            Credential::Pin(_) => identifier::PIN,
            Credential::Qr(_) => identifier::QR,
            Credential::IdAndPassword { .. } => identifier::PASSWORD,
        }
    }
}

/// Why a presentation was refused (or that it was not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A rule allowed it.
    Allowed,
    /// No user holds this credential.
    NotIdentified,
    /// The user's `begin_time` is still ahead.
    NotYetValid,
    /// The user's `end_time` has passed.
    Expired,
    /// An active blocking rule covers the user at this portal.
    Blocked,
    /// Rules reach the user here, but none is active now.
    OutsideSchedule,
    /// No rule reaches the user at this portal.
    NoRule,
}

impl Reason {
    /// A stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Allowed => "allowed",
            Reason::NotIdentified => "not_identified",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Expired => "expired",
            Reason::Blocked => "blocked",
            Reason::OutsideSchedule => "outside_schedule",
            Reason::NoRule => "no_rule",
        }
    }
}

/// The terminal's decision about one presentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `access_logs.event`: 7 granted, 6 denied, 3 not identified.
    pub event: i64,
    /// Why.
    pub reason: Reason,
    /// The identified user.
    pub user_id: Option<i64>,
    /// The rule that decided (allowing or blocking), if any.
    pub rule_id: Option<i64>,
}

impl Decision {
    /// Whether the door opens.
    pub fn granted(&self) -> bool {
        self.event == event::GRANTED
    }
}

fn int(table: &Table, row: &[Value], col: &str) -> Option<i128> {
    table.cell(row, col).as_int()
}

/// Finds the user a credential belongs to. `qr_in_cards` is the numeric QR mode
/// (`qrcode_legacy_mode_enabled = "1"`), where QR codes are card values.
pub fn identify(db: &Database, credential: &Credential, qr_in_cards: bool) -> Option<i64> {
    let lookup = |table: &str, col: &str, wanted: &Value| -> Option<i64> {
        let t = db.table(table).ok()?;
        t.rows()
            .find(|(_, row)| t.cell(row, col) == wanted)
            .and_then(|(_, row)| int(t, row, "user_id"))
            .and_then(|id| i64::try_from(id).ok())
    };
    match credential {
        Credential::Card(v) => lookup("cards", "value", &Value::int(i128::from(*v))),
        Credential::Face(user) => *user,
        Credential::FingerTemplate(t) => {
            lookup("templates", "template", &Value::Text(t.as_str().into()))
        }
        Credential::Pin(p) => lookup("pins", "value", &Value::Text(p.as_str().into())),
        Credential::Qr(q) if qr_in_cards => q
            .trim()
            .parse::<u64>()
            .ok()
            .and_then(|v| lookup("cards", "value", &Value::int(i128::from(v)))),
        Credential::Qr(q) => lookup("qrcodes", "value", &Value::Text(q.as_str().into())),
        Credential::IdAndPassword { user_id, password } => {
            let users = db.table("users").ok()?;
            let (_, row) = users
                .rows()
                .find(|(_, row)| int(users, row, "id") == Some(i128::from(*user_id)))?;
            let text = |col: &str| match users.cell(row, col) {
                Value::Text(t) => t.as_str(),
                _ => "",
            };
            let stored = text("password");
            (!stored.is_empty() && password_digest(password, text("salt")) == stored)
                .then_some(*user_id)
        }
    }
}

/// `users.password`: the hex SHA-256 of the password followed by the salt, as
/// `user_hash_password.fcgi` computes it.
pub fn password_digest(password: &str, salt: &str) -> String {
    use sha2::{Digest as _, Sha256};
    Sha256::digest(format!("{password}{salt}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Decides a presentation at `portal_id` at device-local epoch second `now`.
pub fn decide(
    db: &Database,
    credential: &Credential,
    portal_id: i64,
    now: i64,
    qr_in_cards: bool,
) -> Decision {
    let deny = |reason, user_id, rule_id| Decision {
        event: if reason == Reason::NotIdentified {
            event::NOT_IDENTIFIED
        } else {
            event::DENIED
        },
        reason,
        user_id,
        rule_id,
    };
    let Some(user) = identify(db, credential, qr_in_cards) else {
        return deny(Reason::NotIdentified, None, None);
    };
    let Some(user_row) = db
        .table("users")
        .ok()
        .and_then(|t| t.row(user).map(|r| (t, r)))
    else {
        return deny(Reason::NotIdentified, None, None);
    };
    let (users, row) = user_row;
    let begin = int(users, row, "begin_time").unwrap_or(0);
    let end = int(users, row, "end_time").unwrap_or(0);
    if begin > 0 && i128::from(now) < begin {
        return deny(Reason::NotYetValid, Some(user), None);
    }
    if end > 0 && i128::from(now) > end {
        return deny(Reason::Expired, Some(user), None);
    }
    let rules = rules_reaching(db, user, portal_id);
    if rules.is_empty() {
        return deny(Reason::NoRule, Some(user), None);
    }
    let Ok(access_rules) = db.table("access_rules") else {
        return deny(Reason::NoRule, Some(user), None);
    };
    let mut active: Vec<(i64, i128)> = rules
        .iter()
        .filter(|rule| rule_active(db, **rule, now))
        .filter_map(|rule| {
            let row = access_rules.row(*rule)?;
            Some((*rule, int(access_rules, row, "type").unwrap_or(1)))
        })
        .collect();
    // Blocking rules first; among equals, the lowest id decides.
    active.sort_by_key(|(id, kind)| (*kind != 0, *id));
    match active.first() {
        Some((id, 0)) => deny(Reason::Blocked, Some(user), Some(*id)),
        Some((id, _)) => Decision {
            event: event::GRANTED,
            reason: Reason::Allowed,
            user_id: Some(user),
            rule_id: Some(*id),
        },
        None => deny(Reason::OutsideSchedule, Some(user), None),
    }
}

/// Ids of the rows of link table `table` whose `key` column equals `id`, as `col` values.
fn linked(db: &Database, table: &str, key: &str, id: i128, col: &str) -> BTreeSet<i64> {
    let Ok(t) = db.table(table) else {
        return BTreeSet::new();
    };
    t.rows()
        .filter(|(_, row)| int(t, row, key) == Some(id))
        .filter_map(|(_, row)| int(t, row, col).and_then(|v| i64::try_from(v).ok()))
        .collect()
}

/// Rules that reach the user (directly or through a group) and the portal (directly,
/// through the portal's destination area, or because the rule names no portal or area).
pub fn rules_reaching(db: &Database, user: i64, portal_id: i64) -> BTreeSet<i64> {
    let mut for_user = linked(
        db,
        "user_access_rules",
        "user_id",
        i128::from(user),
        "access_rule_id",
    );
    for group in linked(db, "user_groups", "user_id", i128::from(user), "group_id") {
        for_user.extend(linked(
            db,
            "group_access_rules",
            "group_id",
            i128::from(group),
            "access_rule_id",
        ));
    }
    let mut for_portal = linked(
        db,
        "portal_access_rules",
        "portal_id",
        i128::from(portal_id),
        "access_rule_id",
    );
    if let Ok(portals) = db.table("portals")
        && let Some(row) = portals.row(portal_id)
        && let Some(area) = int(portals, row, "area_to_id")
    {
        for_portal.extend(linked(
            db,
            "area_access_rules",
            "area_id",
            area,
            "access_rule_id",
        ));
    }
    let placed = |rule: i64| {
        ["portal_access_rules", "area_access_rules"]
            .iter()
            .any(|t| {
                !linked(db, t, "access_rule_id", i128::from(rule), "access_rule_id").is_empty()
            })
    };
    for_user
        .into_iter()
        .filter(|rule| for_portal.contains(rule) || !placed(*rule))
        .collect()
}

/// Whether one of the rule's time zones has a span covering `now` (device-local epoch).
pub fn rule_active(db: &Database, rule: i64, now: i64) -> bool {
    let zones = linked(
        db,
        "access_rule_time_zones",
        "access_rule_id",
        i128::from(rule),
        "time_zone_id",
    );
    let Ok(spans) = db.table("time_spans") else {
        return false;
    };
    let day = now.div_euclid(86_400);
    let second = now.rem_euclid(86_400);
    let today = day_flags(db, day);
    let yesterday = day_flags(db, day - 1);
    spans.rows().any(|(_, row)| {
        let Some(zone) = int(spans, row, "time_zone_id").and_then(|z| i64::try_from(z).ok()) else {
            return false;
        };
        if !zones.contains(&zone) {
            return false;
        }
        let start = int(spans, row, "start").unwrap_or(0) as i64;
        let end = int(spans, row, "end").unwrap_or(86_399) as i64;
        let flag = |flags: &DayFlags| {
            flags
                .columns()
                .iter()
                .any(|c| int(spans, row, c) == Some(1))
        };
        if start <= end {
            flag(&today) && (start..=end).contains(&second)
        } else {
            // Crosses midnight: the evening belongs to the flagged day, the morning after it.
            (flag(&today) && second >= start) || (flag(&yesterday) && second <= end)
        }
    })
}

/// Which span flags apply on a day: the weekday's, or the holiday classes' on a holiday.
#[derive(Debug)]
struct DayFlags {
    weekday: &'static str,
    holiday_classes: Vec<&'static str>,
}

impl DayFlags {
    fn columns(&self) -> Vec<&'static str> {
        if self.holiday_classes.is_empty() {
            vec![self.weekday]
        } else {
            self.holiday_classes.clone()
        }
    }
}

fn day_flags(db: &Database, day: i64) -> DayFlags {
    // 1970-01-01 was a Thursday.
    const WEEK: [&str; 7] = ["thu", "fri", "sat", "sun", "mon", "tue", "wed"];
    let weekday = WEEK[day.rem_euclid(7) as usize];
    let mut holiday_classes = Vec::new();
    if let Ok(h) = db.table("holidays") {
        for (_, row) in h.rows() {
            let (Some(start), Some(end)) = (int(h, row, "start"), int(h, row, "end")) else {
                continue;
            };
            let (mut first, mut last) = (
                (start as i64).div_euclid(86_400),
                (end as i64).div_euclid(86_400),
            );
            if int(h, row, "repeats") == Some(1) {
                // Yearly: compare day-of-year positions within the holiday's own year span.
                let year_of = |d: i64| {
                    jiff::Timestamp::from_second(d * 86_400)
                        .ok()
                        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).year())
                };
                if let (Some(hy), Some(ty)) = (year_of(first), year_of(day)) {
                    let shift = |d: i64, years: i16| {
                        jiff::Timestamp::from_second(d * 86_400)
                            .ok()
                            .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
                            .and_then(|date| date.checked_add(jiff::Span::new().years(years)).ok())
                            .and_then(|date| date.to_zoned(jiff::tz::TimeZone::UTC).ok())
                            .map(|z| z.timestamp().as_second().div_euclid(86_400))
                    };
                    let years = ty - hy;
                    first = shift(first, years).unwrap_or(first);
                    last = shift(last, years).unwrap_or(last);
                }
            }
            if (first..=last).contains(&day) {
                for (col, class) in [("hol1", "hol1"), ("hol2", "hol2"), ("hol3", "hol3")] {
                    if int(h, row, col) == Some(1) && !holiday_classes.contains(&class) {
                        holiday_classes.push(class);
                    }
                }
            }
        }
    }
    DayFlags {
        weekday,
        holiday_classes,
    }
}

/// The template a finger bitmap yields on this device (matches enrollment's template).
pub fn finger_template(bitmap: &[u8]) -> String {
    BASE64.encode(crate::enroll::sha_template(bitmap))
}
