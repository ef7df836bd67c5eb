//! The device clock's skew from the site's wall time: measured on first contact and with
//! every read-back (setting the device's clock first when the options say so), published
//! on the status board, and saved with the applied record once the users' times are
//! written with it (docs/domain.md §5.3).

use super::{Progress, TerminalTask};
use crate::sync::apply::ApplyError;
use crate::sync::image::{DeviceImage, SubjectImage};

/// A new measurement of the device's clock replaces the skew in use only when it differs
/// by more than this (a reply takes time, and the device counts whole seconds).
const SKEW_TOLERANCE: i64 = 2;

/// Measures the device clock's skew (its local time minus the site's wall time now), on
/// first contact and with every read-back; sets the device's clock first when
/// [`SyncOptions::set_clock_beyond`](crate::sync::SyncOptions) says so. A changed skew marks the
/// applied users with times to be written again. The skew is published at once, so that
/// access logs read in this pass are translated with it.
pub(super) async fn measure_clock(
    task: &TerminalTask,
    progress: &mut Progress,
) -> Result<(), ApplyError> {
    let terminal = task.terminal;
    let zone = task
        .core
        .read(task.tenant, move |s| {
            let facility = s.topology.terminals.get(&terminal)?.facility_id;
            Some(
                s.topology
                    .site_of_facility(facility)
                    .map_or(jiff::tz::TimeZone::UTC, |site| site.time_zone.clone()),
            )
        })
        .await
        .ok()
        .flatten();
    let Some(zone) = zone else {
        return Ok(());
    };
    let mut measured = skew_now(task, &zone).await?;
    if let (Some(limit), Some(skew)) = (task.options.set_clock_beyond, measured)
        && skew.unsigned_abs() > limit.as_secs()
    {
        let wall = task.core.now().to_zoned(zone.clone()).datetime();
        match task.client.set_system_time(wall).await {
            Ok(()) => {
                tracing::info!(%terminal, skew, "terminal clock set to the site's wall time");
                measured = skew_now(task, &zone).await?;
            }
            Err(e) if !e.is_retryable() => {
                tracing::warn!(%terminal, skew, error = %e, "the terminal refused to set its clock; times are translated");
            }
            Err(e) => return Err(e.into()),
        }
    }
    let Some(measured) = measured else {
        // The device reports no time: its clock is taken as the site's wall clock.
        return Ok(());
    };
    let known = progress.status.clock_skew_seconds;
    if known.is_none_or(|k| (measured - k).abs() > SKEW_TOLERANCE) {
        if let Some(k) = known {
            tracing::info!(%terminal, from = k, to = measured, "terminal clock skew changed");
        }
        progress.status.clock_skew_seconds = Some(measured);
        task.board
            .set(task.tenant, task.terminal, progress.status.clone());
    }
    let skew = progress.status.clock_skew_seconds.unwrap_or(0);
    if skew != progress.skew {
        mark_times_to_rewrite(&mut progress.applied);
        progress.skew = skew;
        progress.holding = None;
    }
    Ok(())
}

/// The device's local time minus the site's wall time now, from `system_information`.
async fn skew_now(
    task: &TerminalTask,
    zone: &jiff::tz::TimeZone,
) -> Result<Option<i64>, ApplyError> {
    let info = task.client.system_information().await?;
    let wall = crate::sync::image::device_seconds(task.core.now(), zone);
    Ok(info.time.map(|device| device.saturating_sub(wall)))
}

/// Makes every applied user with a validity time differ from any image, so that the next
/// plan writes their `users` row again (with the new skew); nothing else of theirs changes.
fn mark_times_to_rewrite(applied: &mut DeviceImage) {
    for image in applied.values_mut() {
        if let SubjectImage::User(user) = image
            && (user.begin_time != 0 || user.end_time != 0)
        {
            std::sync::Arc::make_mut(user).begin_time = i64::MIN;
        }
    }
}

/// Records in the store the skew the applied users' times are written with (a lost save
/// only makes a restarted task write those times again).
pub(super) async fn save_skew(task: &TerminalTask, skew: i64) {
    let store = task.core.store().clone();
    let (tenant, terminal) = (task.tenant, task.terminal);
    let doc = serde_json::json!({ "seconds": skew });
    let saved = tokio::task::spawn_blocking(move || {
        store.set_applied(
            tenant.get(),
            terminal.get(),
            &[(crate::sync::run::applied::SKEW_KEY.to_owned(), Some(doc))],
        )
    })
    .await;
    if !matches!(saved, Ok(Ok(_))) {
        tracing::warn!(%terminal, "the clock skew of the applied times was not saved");
    }
}
