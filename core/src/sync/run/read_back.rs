//! The read-back: what the device holds compared with the applied record, which repairs
//! drift – a terminal wiped, partly wiped, edited by hand or restored from an old backup.
//! Every subject the device no longer holds as applied is forgotten, so the next pass puts
//! it again, in key order (holidays and rules before the users that refer to them):
//! users, and each user's cards, PINs, QR codes, rule links and photo; the rules; the
//! holidays; the monitor settings. Users of ours the record does not know are recorded in
//! doubt, so the next pass removes them or applies them cleanly.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value as Json, json};

use super::applied::record;
use super::terminal::TerminalTask;
use crate::app::Subject;
use crate::domain::PersonId;
use crate::sync::apply::ApplyError;
use crate::sync::image::{ALWAYS_RULE, DeviceImage, FaceRef, SubjectImage, UserImage, user_key};
use crate::terminal::TerminalClient;

/// Reads the device's users back and forgets the applied record of every person the
/// device no longer holds (so the next pass pushes them again); a user of ours that the
/// device holds without any record (a request that reached the device only after the core
/// had moved on, e.g. one sent just before the core was killed) is recorded in doubt, so
/// the next pass removes it or applies it cleanly. True when drift was found.
pub(super) async fn read_back(
    task: &TerminalTask,
    applied: &mut DeviceImage,
) -> Result<bool, ApplyError> {
    let rows = task
        .client
        .load_objects(
            "users",
            serde_json::Map::from_iter([("fields".into(), json!(["id", "registration"]))]),
        )
        .await?;
    let on_device: BTreeMap<i64, String> = rows
        .iter()
        .filter_map(|r| {
            Some((
                r.get("id")?.as_i64()?,
                r.get("registration")
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ))
        })
        .collect();
    let held = Held::read(&task.client).await?;
    let drifted: Vec<String> = applied
        .iter()
        .filter_map(|(key, image)| {
            let gone = match image {
                SubjectImage::User(u) => {
                    on_device.get(&u.id) != Some(&u.registration) || !held.holds_user(u)
                }
                SubjectImage::Rule(rule) => !held.rules.contains(&rule.id),
                SubjectImage::Holidays { rows } => (0..rows.len()).any(|i| {
                    !held
                        .holidays
                        .contains(&(ALWAYS_RULE + 1 + i64::try_from(i).unwrap_or(0)))
                }),
                SubjectImage::Setup(setup) => held.monitor.as_ref().is_some_and(|(host, port)| {
                    *host != setup.host || *port != setup.port.to_string()
                }),
                SubjectImage::Doubt { .. } => false,
            };
            gone.then(|| key.clone())
        })
        .collect();
    for key in &drifted {
        applied.remove(key);
    }
    let forgotten = drifted.iter().map(|key| (key.clone(), None)).collect();
    record(&task.core, task.tenant, task.terminal, forgotten).await;
    // Users of ours (a person of the tenant, with their `acs_id`) the core has no record of.
    let unknown: Vec<(i64, String)> = on_device
        .into_iter()
        .filter(|(id, _)| !applied.contains_key(&user_key(*id)))
        .collect();
    let subjects = unknown
        .iter()
        .filter_map(|(id, _)| u64::try_from(*id).ok())
        .map(|p| Subject::Person(PersonId::new(p)))
        .collect();
    let orphans: Vec<(i64, String)> = task
        .core
        .read_about(task.tenant, subjects, |s| {
            unknown
                .into_iter()
                .filter(|(id, registration)| {
                    u64::try_from(*id)
                        .ok()
                        .and_then(|p| s.people.get(&PersonId::new(p)))
                        .is_some_and(|p| p.acs_id.as_str() == registration)
                })
                .collect()
        })
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(terminal = %task.terminal, error = %e, "the core could not be read for the read-back; unrecorded users are left for the next one");
            Vec::new()
        });
    let mut in_doubt = Vec::with_capacity(orphans.len());
    for (id, registration) in &orphans {
        let key = user_key(*id);
        let image = SubjectImage::Doubt {
            candidates: vec![SubjectImage::User(std::sync::Arc::new(orphan(
                *id,
                registration,
            )))],
        };
        in_doubt.push((key.clone(), serde_json::to_value(&image).ok()));
        applied.insert(key, image);
    }
    record(&task.core, task.tenant, task.terminal, in_doubt).await;
    if !drifted.is_empty() || !orphans.is_empty() {
        tracing::warn!(terminal = %task.terminal, missing = drifted.len(), unrecorded = orphans.len(), "device drifted; repairing");
    }
    Ok(!drifted.is_empty() || !orphans.is_empty())
}

/// What the device holds beside its users, read for the comparison.
#[derive(Debug, Default)]
struct Held {
    cards: BTreeMap<i64, BTreeSet<u64>>,
    pins: BTreeMap<i64, BTreeSet<String>>,
    qrcodes: BTreeMap<i64, BTreeSet<String>>,
    links: BTreeMap<i64, BTreeSet<i64>>,
    photos: BTreeSet<i64>,
    rules: BTreeSet<i64>,
    holidays: BTreeSet<i64>,
    /// The monitor's host and port, when the device answered.
    monitor: Option<(String, String)>,
}

impl Held {
    async fn read(client: &TerminalClient) -> Result<Held, ApplyError> {
        let mut held = Held::default();
        for r in rows(client, "cards", &["user_id", "value"]).await? {
            if let (Some(user), Some(value)) =
                (int(&r, "user_id"), r.get("value").and_then(Json::as_u64))
            {
                held.cards.entry(user).or_default().insert(value);
            }
        }
        for (table, set) in [("pins", &mut held.pins), ("qrcodes", &mut held.qrcodes)] {
            for r in rows(client, table, &["user_id", "value"]).await? {
                if let (Some(user), Some(value)) = (int(&r, "user_id"), r.get("value")) {
                    let text = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned);
                    set.entry(user).or_default().insert(text);
                }
            }
        }
        for r in rows(client, "user_access_rules", &["user_id", "access_rule_id"]).await? {
            if let (Some(user), Some(rule)) = (int(&r, "user_id"), int(&r, "access_rule_id")) {
                held.links.entry(user).or_default().insert(rule);
            }
        }
        held.rules = rows(client, "access_rules", &["id"])
            .await?
            .iter()
            .filter_map(|r| int(r, "id"))
            .collect();
        held.holidays = rows(client, "holidays", &["id"])
            .await?
            .iter()
            .filter_map(|r| int(r, "id"))
            .collect();
        held.photos = match client.list_user_images().await {
            Ok(photos) => photos.into_iter().map(|(user, _)| user).collect(),
            Err(e) if e.is_retryable() => return Err(e.into()),
            // A model without photos holds none to compare.
            Err(_) => BTreeSet::new(),
        };
        held.monitor = client
            .get_configuration(json!({"monitor": ["hostname", "port"]}))
            .await
            .ok()
            .map(|c| {
                let text = |k: &str| c["monitor"][k].as_str().unwrap_or_default().to_owned();
                (text("hostname"), text("port"))
            });
        Ok(held)
    }

    /// Whether the device holds every credential, rule link and photo applied for `user`.
    fn holds_user(&self, user: &UserImage) -> bool {
        let empty_u64 = BTreeSet::new();
        let empty_text = BTreeSet::new();
        let empty_links = BTreeSet::new();
        self.cards.get(&user.id).unwrap_or(&empty_u64) == &user.cards
            && self.pins.get(&user.id).unwrap_or(&empty_text) == &user.pins
            && self.qrcodes.get(&user.id).unwrap_or(&empty_text) == &user.qrcodes
            && self.links.get(&user.id).unwrap_or(&empty_links) == &user.rules
            && (user.face.is_none() || self.photos.contains(&user.id))
    }
}

fn int(row: &serde_json::Map<String, Json>, column: &str) -> Option<i64> {
    row.get(column).and_then(Json::as_i64)
}

/// Every row of `table` with `fields`; a table the model lacks has none.
async fn rows(
    client: &TerminalClient,
    table: &str,
    fields: &[&str],
) -> Result<Vec<serde_json::Map<String, Json>>, ApplyError> {
    match client
        .load_objects(
            table,
            serde_json::Map::from_iter([("fields".into(), json!(fields))]),
        )
        .await
    {
        Ok(rows) => Ok(rows),
        Err(e) if e.is_retryable() => Err(e.into()),
        Err(_) => Ok(Vec::new()),
    }
}

/// A user found on the device without a record: removing it must also try its photo.
fn orphan(id: i64, registration: &str) -> UserImage {
    UserImage {
        id,
        registration: registration.to_owned(),
        name: String::new(),
        begin_time: 0,
        end_time: 0,
        cards: Default::default(),
        pins: Default::default(),
        qrcodes: Default::default(),
        templates: Default::default(),
        face: Some(FaceRef {
            credential_id: 0,
            timestamp: 0,
        }),
        rules: Default::default(),
    }
}
