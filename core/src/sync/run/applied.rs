//! The applied record of a terminal: what the engine knows the device holds, one subject at
//! a time, kept in the store so a restarted engine picks up where it stopped. Subjects go
//! *in doubt* before their steps start and *settle* when the device confirmed them.

use serde_json::Value as Json;

use super::terminal::TerminalTask;
use crate::app::Core;
use crate::domain::{TenantId, TerminalId};
use crate::sync::image::{DeviceImage, SubjectImage};
use crate::sync::logs;
use crate::sync::plan::Step;

/// The key under which the clock skew the applied users' times were written with is kept
/// (`{"seconds": n}`; absent: 0, the device's clock taken as the site's wall clock).
pub(super) const SKEW_KEY: &str = "clock:skew";

/// What was applied to the terminal, the access-log cursor, and the clock skew the applied
/// users' `begin_time` / `end_time` were written with.
pub(super) async fn load_applied(
    core: &Core,
    tenant: TenantId,
    terminal: TerminalId,
) -> (DeviceImage, logs::Cursor, i64) {
    let store = core.store().clone();
    let rows = match tokio::task::spawn_blocking(move || {
        store.applied(tenant.get(), terminal.get())
    })
    .await
    {
        Ok(Ok(rows)) => rows,
        // Starting from nothing applied is safe (every step is idempotent, and the
        // read-back finds what the device holds); it is not silent.
        Ok(Err(e)) => {
            tracing::warn!(%terminal, error = %e, "the applied record could not be read; starting from none");
            Vec::new()
        }
        Err(e) => {
            tracing::warn!(%terminal, error = %e, "reading the applied record failed; starting from none");
            Vec::new()
        }
    };
    let cursor = logs::cursor_of(&rows);
    let skew = rows
        .iter()
        .find(|(key, _)| key == SKEW_KEY)
        .and_then(|(_, doc)| doc.get("seconds")?.as_i64())
        .unwrap_or(0);
    let applied = rows
        .into_iter()
        .filter(|(key, _)| key != logs::CURSOR_KEY && key != SKEW_KEY)
        .filter_map(|(key, data)| match serde_json::from_value::<SubjectImage>(data) {
            Ok(image) => Some((key, image)),
            Err(e) => {
                tracing::warn!(%terminal, subject = %key, error = %e, "an applied entry could not be read; it is applied again");
                None
            }
        })
        .collect();
    (applied, cursor, skew)
}

/// Records what was applied for each subject (`None`: nothing), in one store transaction.
pub(super) async fn record(
    core: &Core,
    tenant: TenantId,
    terminal: TerminalId,
    subjects: Vec<(String, Option<Json>)>,
) -> bool {
    if subjects.is_empty() {
        return true;
    }
    let store = core.store().clone();
    match tokio::task::spawn_blocking(move || {
        store.set_applied(tenant.get(), terminal.get(), &subjects)
    })
    .await
    {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(%terminal, error = %e, "the applied record could not be written");
            false
        }
        Err(e) => {
            tracing::warn!(%terminal, error = %e, "writing the applied record failed");
            false
        }
    }
}

/// Records, before steps start, that their subjects are in doubt until they settle: a step
/// whose outcome is never heard (a timeout after the device acted, the core killed) is then
/// applied again from a clean slate, or removed entirely, instead of leaving orphans.
pub(super) async fn doubt(task: &TerminalTask, applied: &mut DeviceImage, steps: &[&Step]) {
    let mut changes = Vec::with_capacity(steps.len());
    for step in steps {
        let key = step.key().to_owned();
        let desired = match step {
            Step::Put { desired, .. } => Some(desired),
            Step::Remove { .. } => None,
        };
        let image = SubjectImage::doubt(applied.get(&key), desired);
        if applied.get(&key) != Some(&image) {
            changes.push((key, image));
        }
    }
    let docs = changes
        .iter()
        .map(|(key, image)| (key.clone(), serde_json::to_value(image).ok()))
        .collect();
    record(&task.core, task.tenant, task.terminal, docs).await;
    applied.extend(changes);
}

/// Records steps that were applied (in the store and in memory).
pub(super) async fn settle(task: &TerminalTask, applied: &mut DeviceImage, steps: &[&Step]) {
    let changes: Vec<(String, Option<SubjectImage>)> = steps
        .iter()
        .map(|step| {
            let image = match step {
                Step::Put { desired, .. } => Some(desired.clone()),
                Step::Remove { .. } => None,
            };
            (step.key().to_owned(), image)
        })
        .collect();
    let docs = changes
        .iter()
        .map(|(key, image)| {
            let doc = image.as_ref().and_then(|i| serde_json::to_value(i).ok());
            (key.clone(), doc)
        })
        .collect();
    record(&task.core, task.tenant, task.terminal, docs).await;
    for (key, image) in changes {
        match image {
            Some(i) => applied.insert(key, i),
            None => applied.remove(&key),
        };
    }
}
