//! Applying one [`Step`] to a terminal through the driver: the exact table operations for
//! a rule with its time zone, the holidays, and a person with their credentials and rules.
//! Removals delete dependent rows explicitly (whether deleting a user cascades on real
//! firmware is unconfirmed, docs/device-api.md §3.5).

use std::collections::BTreeSet;

use serde_json::{Map, Value as Json, json};

use super::image::{ALWAYS_RULE, HolidayRow, RuleImage, SetupImage, SubjectImage, UserImage};
use super::plan::Step;
use crate::app::Core;
use crate::device_events::json_i64;
use crate::domain::TenantId;
use crate::terminal::{DriverError, TerminalClient};

/// Why a step could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The driver failed (offline terminal, refused request …).
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// The device refused a face photo.
    #[error("the terminal refused the face photo of user {user}: {reason}")]
    FaceRefused {
        /// The user.
        user: i64,
        /// What the device said.
        reason: String,
    },
    /// The photo of a face credential is missing from the store.
    #[error("the photo of face credential {0} is missing")]
    PhotoMissing(u64),
    /// The device answering at the terminal's address is not the terminal's device, or is
    /// already another terminal's (in any tenant): nothing is pushed to it or read from it
    /// until the terminals change.
    #[error("{0}")]
    WrongDevice(String),
    /// An access-log row read back from the terminal could not be recorded (the core's
    /// store failed): try again later.
    #[error("access log {log_id} of the terminal not recorded: {reason}")]
    LogNotRecorded {
        /// The device's log id.
        log_id: i64,
        /// Why.
        reason: String,
    },
}

impl ApplyError {
    /// Whether trying again later can help.
    pub fn is_retryable(&self) -> bool {
        match self {
            ApplyError::Driver(e) => e.is_retryable(),
            ApplyError::LogNotRecorded { .. } | ApplyError::WrongDevice(_) => true,
            ApplyError::FaceRefused { .. } | ApplyError::PhotoMissing(_) => false,
        }
    }
}

fn row(value: Json) -> Map<String, Json> {
    match value {
        Json::Object(m) => m,
        _ => Map::new(),
    }
}

fn holiday_id(index: usize) -> i64 {
    ALWAYS_RULE + 1 + i64::try_from(index).unwrap_or(0)
}

async fn put_rule(client: &TerminalClient, rule: &RuleImage) -> Result<(), ApplyError> {
    client
        .create_or_modify_objects(
            "time_zones",
            vec![row(json!({"id": rule.id, "name": rule.name}))],
        )
        .await?;
    client
        .destroy_objects(
            "time_spans",
            json!({"time_spans": {"time_zone_id": rule.id}}),
        )
        .await?;
    if !rule.spans.is_empty() {
        let flags = |on: bool| i64::from(on);
        let spans = rule
            .spans
            .iter()
            .map(|s| {
                row(
                    json!({"time_zone_id": rule.id, "start": s.start, "end": s.end,
                    "sun": flags(s.days[0]), "mon": flags(s.days[1]), "tue": flags(s.days[2]),
                    "wed": flags(s.days[3]), "thu": flags(s.days[4]), "fri": flags(s.days[5]),
                    "sat": flags(s.days[6]), "hol1": flags(s.holidays[0]),
                    "hol2": flags(s.holidays[1]), "hol3": flags(s.holidays[2])}),
                )
            })
            .collect();
        client.create_objects("time_spans", spans).await?;
    }
    client
        .create_or_modify_objects(
            "access_rules",
            vec![row(
                json!({"id": rule.id, "name": rule.name, "type": 1, "priority": 0}),
            )],
        )
        .await?;
    client
        .create_or_modify_objects(
            "access_rule_time_zones",
            vec![row(
                json!({"access_rule_id": rule.id, "time_zone_id": rule.id}),
            )],
        )
        .await?;
    Ok(())
}

async fn remove_rule(client: &TerminalClient, id: i64) -> Result<(), ApplyError> {
    for (table, column) in [
        ("user_access_rules", "access_rule_id"),
        ("access_rule_time_zones", "access_rule_id"),
        ("access_rules", "id"),
        ("time_spans", "time_zone_id"),
        ("time_zones", "id"),
    ] {
        client
            .destroy_objects(table, json!({ table: { column: id } }))
            .await?;
    }
    Ok(())
}

async fn put_holidays(
    client: &TerminalClient,
    rows: &[HolidayRow],
    before: usize,
) -> Result<(), ApplyError> {
    remove_holidays(client, before).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let flags = |on: bool| i64::from(on);
    let values = rows
        .iter()
        .enumerate()
        .map(|(i, h)| {
            row(
                json!({"id": holiday_id(i), "name": h.name, "start": h.start, "end": h.end,
                "hol1": flags(h.classes[0]), "hol2": flags(h.classes[1]),
                "hol3": flags(h.classes[2]), "repeats": flags(h.repeats)}),
            )
        })
        .collect();
    client.create_objects("holidays", values).await?;
    Ok(())
}

async fn remove_holidays(client: &TerminalClient, count: usize) -> Result<(), ApplyError> {
    if count > 0 {
        let ids: Vec<i64> = (0..count).map(holiday_id).collect();
        client
            .destroy_objects("holidays", json!({"holidays": {"id": ids}}))
            .await?;
    }
    Ok(())
}

/// The rows of a credential table for `user`: `(table, column, values)`.
fn credential_sets(user: &UserImage) -> [(&'static str, &'static str, Vec<Json>); 4] {
    [
        (
            "cards",
            "value",
            user.cards.iter().map(|v| json!(v)).collect(),
        ),
        (
            "pins",
            "value",
            user.pins.iter().map(|v| json!(v)).collect(),
        ),
        (
            "qrcodes",
            "value",
            user.qrcodes.iter().map(|v| json!(v)).collect(),
        ),
        (
            "templates",
            "template",
            user.templates.iter().map(|v| json!(v)).collect(),
        ),
    ]
}

fn credential_row(table: &str, column: &str, user: i64, value: &Json) -> Map<String, Json> {
    let mut r = row(json!({"user_id": user}));
    r.insert(column.to_owned(), value.clone());
    if table == "templates" {
        r.insert("finger_type".into(), json!(0));
        r.insert("finger_position".into(), json!(0));
    }
    r
}

/// Puts `values` of `table` on the device for `user`, who is not recorded as holding them.
/// A value the device already holds for the user stays as it is (an enrollment with
/// `save` left it there: taking it off and on again would leave the person without it
/// for a moment); a value held for another user (a re-issued card) leaves them first.
async fn put_credentials(
    client: &TerminalClient,
    (table, column): (&str, &str),
    user: i64,
    values: Vec<Json>,
) -> Result<(), ApplyError> {
    let mut request = Map::new();
    request.insert("where".into(), json!({ table: { column: values.clone() } }));
    let held = client.load_objects(table, request).await?;
    let (ours, theirs) = owners_of(&held, column, user);
    let taken: Vec<Json> = values
        .iter()
        .filter(|v| theirs.contains(&spelled(v)))
        .cloned()
        .collect();
    if !taken.is_empty() {
        client
            .destroy_objects(table, json!({ table: { column: taken } }))
            .await?;
    }
    let missing: Vec<Map<String, Json>> = values
        .iter()
        .filter(|v| !ours.contains(&spelled(v)))
        .map(|v| credential_row(table, column, user, v))
        .collect();
    if !missing.is_empty() {
        client.create_objects(table, missing).await?;
    }
    Ok(())
}

/// A credential value as text, however the device prints it (a card number as a number
/// or as a string).
fn spelled(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The values of `column` in `rows`, split into those held for `user` and those held for
/// anyone else (spelled as [`spelled`]).
fn owners_of(
    rows: &[Map<String, Json>],
    column: &str,
    user: i64,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut ours = BTreeSet::new();
    let mut theirs = BTreeSet::new();
    for row in rows {
        let Some(value) = row.get(column).map(spelled) else {
            continue;
        };
        if json_i64(row.get("user_id")) == Some(user) {
            ours.insert(value);
        } else {
            theirs.insert(value);
        }
    }
    (ours, theirs)
}

/// A wall time of the site (`users.begin_time` / `end_time` as the image holds them) on a
/// device whose clock is `skew` seconds ahead of the site's wall time; 0 (none) stays 0
/// (docs/domain.md §5.3).
pub fn on_device(wall: i64, skew: i64) -> i64 {
    if wall == 0 {
        0
    } else {
        wall.saturating_add(skew)
    }
}

async fn put_user(
    client: &TerminalClient,
    core: &Core,
    tenant: TenantId,
    user: &UserImage,
    before: Option<&UserImage>,
    skew: i64,
) -> Result<(), ApplyError> {
    client
        .create_or_modify_objects(
            "users",
            vec![row(
                json!({"id": user.id, "registration": user.registration, "name": user.name,
                "begin_time": on_device(user.begin_time, skew),
                "end_time": on_device(user.end_time, skew)}),
            )],
        )
        .await?;
    let empty = [
        ("cards", "value", Vec::new()),
        ("pins", "value", Vec::new()),
        ("qrcodes", "value", Vec::new()),
        ("templates", "template", Vec::new()),
    ];
    let old = before.map_or(empty, credential_sets);
    for ((table, column, wanted), (_, _, had)) in credential_sets(user).into_iter().zip(old) {
        if before.is_none() {
            // Nothing recorded (first push, or a crash before the record): start clean so a
            // repeated push never duplicates rows.
            client
                .destroy_objects(table, json!({ table: { "user_id": user.id } }))
                .await?;
        }
        let gone: Vec<Json> = had
            .iter()
            .filter(|v| !wanted.contains(v))
            .cloned()
            .collect();
        if !gone.is_empty() {
            client
                .destroy_objects(
                    table,
                    json!({ table: { column: gone, "user_id": user.id } }),
                )
                .await?;
        }
        let new: Vec<Json> = wanted
            .iter()
            .filter(|v| !had.contains(v))
            .cloned()
            .collect();
        if !new.is_empty() {
            put_credentials(client, (table, column), user.id, new).await?;
        }
    }
    let had_rules = before.map(|b| b.rules.clone()).unwrap_or_default();
    if before.is_none() {
        client
            .destroy_objects(
                "user_access_rules",
                json!({"user_access_rules": {"user_id": user.id}}),
            )
            .await?;
    }
    let gone: Vec<i64> = had_rules.difference(&user.rules).copied().collect();
    if !gone.is_empty() {
        client
            .destroy_objects(
                "user_access_rules",
                json!({"user_access_rules": {"user_id": user.id, "access_rule_id": gone}}),
            )
            .await?;
    }
    let new: BTreeSet<i64> = user.rules.difference(&had_rules).copied().collect();
    if !new.is_empty() {
        // An earlier attempt may have created these links without our hearing back (a
        // timeout): the device refuses a second copy (unique user + rule), so clear them.
        client
            .destroy_objects(
                "user_access_rules",
                json!({"user_access_rules": {"user_id": user.id, "access_rule_id": new.iter().collect::<Vec<_>>()}}),
            )
            .await?;
        client
            .create_objects(
                "user_access_rules",
                new.iter()
                    .map(|r| row(json!({"user_id": user.id, "access_rule_id": r})))
                    .collect(),
            )
            .await?;
    }
    if before.is_none() || user.face != before.and_then(|b| b.face.clone()) {
        match &user.face {
            Some(_) => put_face(client, core, tenant, user).await?,
            None => match client.destroy_user_image(user.id).await {
                Ok(()) | Err(DriverError::Rejected { .. }) => {}
                Err(e) => return Err(e.into()),
            },
        }
    }
    Ok(())
}

/// Pushes people the terminal has no record of, many per call: their `users` rows, then
/// per credential table one clean-up of their rows and of the values they take over and
/// one create, then their rule links, then each face. Idempotent like [`apply`]: a repeat
/// after a crash leaves no duplicates.
pub async fn apply_new_users(
    client: &TerminalClient,
    core: &Core,
    tenant: TenantId,
    users: &[&UserImage],
    skew: i64,
) -> Result<(), ApplyError> {
    if users.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    client
        .create_or_modify_objects(
            "users",
            users
                .iter()
                .map(|u| {
                    row(
                        json!({"id": u.id, "registration": u.registration, "name": u.name,
                        "begin_time": on_device(u.begin_time, skew),
                        "end_time": on_device(u.end_time, skew)}),
                    )
                })
                .collect(),
        )
        .await?;
    for (index, table) in ["cards", "pins", "qrcodes", "templates"].iter().enumerate() {
        client
            .destroy_objects(table, json!({ *table: { "user_id": ids.clone() } }))
            .await?;
        let mut values = Vec::new();
        let mut rows = Vec::new();
        for user in users {
            let (_, column, wanted) = credential_sets(user)[index].clone();
            for value in wanted {
                rows.push(credential_row(table, column, user.id, &value));
                values.push(value);
            }
        }
        if !rows.is_empty() {
            let column = credential_sets(users[0])[index].1;
            client
                .destroy_objects(table, json!({ *table: { column: values } }))
                .await?;
            client.create_objects(table, rows).await?;
        }
    }
    client
        .destroy_objects(
            "user_access_rules",
            json!({"user_access_rules": {"user_id": ids.clone()}}),
        )
        .await?;
    let links: Vec<Map<String, Json>> = users
        .iter()
        .flat_map(|u| {
            u.rules
                .iter()
                .map(move |r| row(json!({"user_id": u.id, "access_rule_id": r})))
        })
        .collect();
    if !links.is_empty() {
        client.create_objects("user_access_rules", links).await?;
    }
    let photos: BTreeSet<i64> = client
        .list_user_images()
        .await?
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    for user in users {
        match &user.face {
            Some(_) => put_face(client, core, tenant, user).await?,
            None if photos.contains(&user.id) => client.destroy_user_image(user.id).await?,
            None => {}
        }
    }
    Ok(())
}

async fn put_face(
    client: &TerminalClient,
    core: &Core,
    tenant: TenantId,
    user: &UserImage,
) -> Result<(), ApplyError> {
    let Some(face) = &user.face else {
        return Ok(());
    };
    let blob = core
        .blob(tenant, face.credential_id)
        .await
        .ok()
        .flatten()
        .ok_or(ApplyError::PhotoMissing(face.credential_id))?;
    let outcome = client
        .set_user_image(user.id, &blob.bytes, face.timestamp, false)
        .await?;
    if outcome.success {
        Ok(())
    } else {
        Err(ApplyError::FaceRefused {
            user: user.id,
            reason: outcome.errors.join("; "),
        })
    }
}

async fn remove_user(client: &TerminalClient, user: &UserImage) -> Result<(), ApplyError> {
    if user.face.is_some() {
        // Already gone is fine: the goal is that it is gone.
        match client.destroy_user_image(user.id).await {
            Ok(()) | Err(DriverError::Rejected { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for table in ["user_access_rules", "cards", "pins", "qrcodes", "templates"] {
        client
            .destroy_objects(table, json!({ table: { "user_id": user.id } }))
            .await?;
    }
    client
        .destroy_objects("users", json!({"users": {"id": user.id}}))
        .await?;
    Ok(())
}

/// The id of the core in the device's `devices` table (its online server).
pub const SERVER_DEVICE_ID: i64 = 1_000_000_000;

async fn put_setup(client: &TerminalClient, setup: &SetupImage) -> Result<(), ApplyError> {
    let online = setup.mode != "standalone";
    if online {
        client
            .create_or_modify_objects(
                "devices",
                vec![row(json!({"id": SERVER_DEVICE_ID, "name": "acs-core",
                    "ip": format!("{}:{}", setup.host, setup.port), "public_key": ""}))],
            )
            .await?;
    }
    client
        .set_configuration(json!({
            "monitor": {"hostname": setup.host, "port": setup.port.to_string(), "path": "api/notifications"},
            "general": {"online": if online { "1" } else { "0" },
                        "local_identification": if setup.mode == "enterprise" { "0" } else { "1" }},
            "online_client": {"server_id": if online { SERVER_DEVICE_ID.to_string() } else { String::new() }},
        }))
        .await?;
    Ok(())
}

/// Applies one step.
pub async fn apply(
    client: &TerminalClient,
    core: &Core,
    tenant: TenantId,
    step: &Step,
    skew: i64,
) -> Result<(), ApplyError> {
    match step {
        Step::Remove { applied, .. } => {
            // In doubt, every image the device may partly hold is removed.
            for applied in applied.candidates() {
                match applied {
                    SubjectImage::Rule(rule) => remove_rule(client, rule.id).await?,
                    SubjectImage::Holidays { rows } => {
                        remove_holidays(client, rows.len()).await?;
                    }
                    SubjectImage::User(user) => remove_user(client, &user).await?,
                    // Leaving the configuration in place is harmless; the next setup
                    // overwrites it.
                    SubjectImage::Setup(_) | SubjectImage::Doubt { .. } => {}
                }
            }
            Ok(())
        }
        Step::Put {
            desired, applied, ..
        } => match desired {
            SubjectImage::Rule(rule) => put_rule(client, rule).await,
            SubjectImage::Holidays { rows } => {
                // Every holiday row the device may hold goes first.
                let before = applied
                    .as_deref()
                    .map(SubjectImage::candidates)
                    .unwrap_or_default()
                    .iter()
                    .map(|c| match c {
                        SubjectImage::Holidays { rows } => rows.len(),
                        _ => 0,
                    })
                    .max()
                    .unwrap_or(0);
                put_holidays(client, rows, before).await
            }
            SubjectImage::Setup(setup) => put_setup(client, setup).await,
            SubjectImage::User(user) => {
                let before = match applied.as_deref() {
                    Some(SubjectImage::User(u)) => Some(&**u),
                    _ => None,
                };
                put_user(client, core, tenant, user, before, skew).await
            }
            // Never desired.
            SubjectImage::Doubt { .. } => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_held_are_told_apart_by_owner_however_the_device_spells_them() {
        let rows: Vec<Map<String, Json>> = [
            json!({"value": 5, "user_id": 1}),
            json!({"value": "7", "user_id": "2"}),
            json!({"value": "9", "user_id": "1"}),
            json!({"value": 11}),
            json!({"user_id": 1}),
        ]
        .into_iter()
        .map(row)
        .collect();
        let (ours, theirs) = owners_of(&rows, "value", 1);
        assert_eq!(ours, BTreeSet::from(["5".to_owned(), "9".to_owned()]));
        assert_eq!(theirs, BTreeSet::from(["7".to_owned(), "11".to_owned()]));
        assert_eq!(spelled(&json!(9)), spelled(&json!("9")));
        assert_eq!(spelled(&json!("abc")), "abc");
    }
}
