//! The read-back: the device's users compared with the applied record, which repairs drift
//! (a user deleted on the device by hand is forgotten, so the next pass pushes it again)
//! and finds users of ours the record does not know (recorded in doubt, so the next pass
//! removes them or applies them cleanly).

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use super::applied::record;
use super::terminal::TerminalTask;
use crate::app::Subject;
use crate::domain::PersonId;
use crate::sync::apply::ApplyError;
use crate::sync::image::{DeviceImage, FaceRef, SubjectImage, UserImage, user_key};

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
    let drifted: Vec<String> = applied
        .iter()
        .filter_map(|(key, image)| match image {
            SubjectImage::User(u) if on_device.get(&u.id) != Some(&u.registration) => {
                Some(key.clone())
            }
            _ => None,
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
            candidates: vec![SubjectImage::User(orphan(*id, registration))],
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
