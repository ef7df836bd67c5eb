//! One terminal's task: passes that bring the device in line with its image, one after the
//! other, with a wait in between.
//!
//! A pass is a sequence of named steps: [register the device](register_device_once) (once,
//! and again whenever a read-back finds another device at the address; a device that is
//! not the terminal's is neither read nor written), [read back the device when
//! due](read_back_if_due), [compute the image](compute_image),
//! [plan](plan_steps), [apply the steps](apply_steps), [catch up on access
//! logs](catch_up_on_logs_if_due), [report](report_pass) and [wait for the next
//! pass](wait_for_next_pass): the next instant the image changes, a change of the tenant, a
//! read-back or log catch-up falling due, or a retry ([`Backoff`]) after a failed pass.
//!
//! The steps live here and in one module per concern: [`device`] (whose device answers at
//! the address), [`clock`] (the device clock's skew), [`steps`] (applying the planned
//! steps, new people in batches).

mod clock;
mod device;
mod steps;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use self::clock::{measure_clock, save_skew};
use self::device::{check_device, register_device_once};
use self::steps::apply_steps;
use super::applied::load_applied;
use super::read_back::read_back;
use super::{StatusBoard, SyncOptions, SyncStatus};
use crate::app::Core;
use crate::domain::desired::Coverage;
use crate::domain::{OperatingMode, TenantId, TerminalId};
use crate::retry::Backoff;
use crate::sync::apply::ApplyError;
use crate::sync::image::{DeviceImage, SETUP_KEY, SetupImage, SubjectImage};
use crate::sync::logs;
use crate::sync::plan::{Step, plan, plan_keys};
use crate::sync::shared::{SharedImage, SharedImages};
use crate::terminal::TerminalClient;

/// What a terminal task works with.
pub(super) struct TerminalTask {
    pub(super) core: Core,
    pub(super) tenant: TenantId,
    pub(super) terminal: TerminalId,
    pub(super) client: TerminalClient,
    pub(super) options: SyncOptions,
    pub(super) board: StatusBoard,
    pub(super) nudge: watch::Receiver<u64>,
    pub(super) stop: CancellationToken,
    pub(super) registered: bool,
    /// Images computed by any terminal task, shared by coverage.
    pub(super) images: SharedImages,
}

/// The task is over: it was stopped, or its terminal or tenant is gone.
struct Ended;

/// What a terminal task carries from one pass to the next.
struct Progress {
    /// What the device holds, as recorded per subject.
    applied: DeviceImage,
    /// How far the device's access log is read and recorded.
    cursor: logs::Cursor,
    status: SyncStatus,
    /// Delays before retrying after failed passes.
    backoff: Backoff,
    next_readback: Timestamp,
    /// Catch up on access logs at start, after any failed pass, and periodically.
    logs_due: bool,
    next_logs: Timestamp,
    /// The image a pass without failure last brought the device to: while the desired image
    /// is that very computation (and no read-back found drift), there is nothing to plan.
    holding: Option<Arc<DeviceImage>>,
    /// The device clock's skew in use (device local time minus the site's wall time): what
    /// users' times are written with, and what the applied record's times were written with
    /// (or are marked to be written again with).
    skew: i64,
    /// The skew the store records the applied users' times as written with.
    skew_stored: i64,
}

/// Runs passes until the task is stopped or its terminal is gone.
pub(super) async fn terminal_loop(mut task: TerminalTask) {
    let mut progress = Progress::start(&task).await;
    while pass(&mut task, &mut progress).await.is_ok() {}
}

/// One pass, and the wait for the next.
async fn pass(task: &mut TerminalTask, progress: &mut Progress) -> Result<(), Ended> {
    let revision = task.core.revision();
    let now = task.core.now();
    let mut failure = register_device_once(task).await.err();
    if failure.is_none() {
        failure = read_back_if_due(task, progress, now).await.err();
    }
    let image = match compute_image(task, revision, now).await {
        Ok(image) => image,
        Err(Stop::Removed) => {
            tracing::info!(terminal = %task.terminal, "terminal removed; its sync task ends");
            return Err(Ended);
        }
        // The core could not be read (a store failure, a computation that panicked): the
        // terminal keeps its task, which says so and tries again after a backoff.
        Err(Stop::Unreadable(why)) => {
            tracing::warn!(terminal = %task.terminal, error = %why, "the terminal's image could not be computed; retrying");
            let retry = report_unreadable(task, progress, revision, &why);
            return wait_for_next_pass(task, progress, None, Some(retry)).await;
        }
    };
    let steps = match failure {
        Some(_) => Vec::new(),
        None => plan_steps(progress, &image),
    };
    let applied = apply_steps(task, &mut progress.applied, &steps, progress.skew).await?;
    failure = applied.failure.or(failure);
    let logs_may_run = !failure.as_ref().is_some_and(ApplyError::is_retryable);
    if logs_may_run && let Err(e) = catch_up_on_logs_if_due(task, progress, now).await {
        failure = failure.or(Some(e));
    }
    if failure.is_some() {
        progress.logs_due = true;
    }
    let pending = applied.remaining + usize::from(failure.is_some() && steps.is_empty());
    let clean = failure.is_none();
    let retry = report_pass(task, progress, revision, now, &image, pending, failure);
    if clean && progress.skew_stored != progress.skew {
        // Every applied user's times are now written with the skew in use.
        save_skew(task, progress.skew).await;
        progress.skew_stored = progress.skew;
    }
    wait_for_next_pass(task, progress, image.next_change, retry).await
}

impl Progress {
    /// The state a task starts from: the applied record and log cursor from the store, a
    /// read-back and a log catch-up due at once.
    async fn start(task: &TerminalTask) -> Progress {
        let (applied, cursor, skew) = load_applied(&task.core, task.tenant, task.terminal).await;
        Progress {
            applied,
            status: SyncStatus {
                access_logs_read: cursor.last_id,
                ..SyncStatus::default()
            },
            backoff: Backoff::new(task.options.retry_initial, task.options.retry_max),
            next_readback: task.core.now(),
            logs_due: true,
            next_logs: task.core.now(),
            holding: None,
            skew,
            skew_stored: skew,
            cursor,
        }
    }
}

/// Reads the device's users back when a read-back is due, forgetting what drifted; first
/// checks that the device answering is still the terminal's.
async fn read_back_if_due(
    task: &mut TerminalTask,
    progress: &mut Progress,
    now: Timestamp,
) -> Result<(), ApplyError> {
    if now < progress.next_readback {
        return Ok(());
    }
    check_device(task).await?;
    measure_clock(task, progress).await?;
    let drifted = read_back(task, &mut progress.applied).await?;
    if drifted {
        progress.holding = None;
    }
    progress.next_readback = add(now, task.options.readback_every);
    Ok(())
}

/// Why a terminal's image could not be computed.
enum Stop {
    /// The terminal is no longer in the core: its task ends.
    Removed,
    /// The core could not be read: try again.
    Unreadable(String),
}

/// The terminal's image at `now` (shared with every terminal of the same coverage), with
/// its setup when the engine configures the receiver.
///
/// An image takes tens of milliseconds with thousands of people: it is computed on the
/// blocking pool, where waiting for another terminal's computation of the same image holds
/// up no request either.
async fn compute_image(
    task: &TerminalTask,
    revision: u64,
    now: Timestamp,
) -> Result<SharedImage, Stop> {
    if task.options.faults.read_fails() {
        return Err(Stop::Unreadable("injected read failure".into()));
    }
    let (tenant, terminal_id, images) = (task.tenant, task.terminal, task.images.clone());
    let receiver = task.options.receiver.clone();
    let computed = task
        .core
        .read_blocking(task.tenant, move |s| {
            let terminal = s.topology.terminals.get(&terminal_id)?;
            let coverage = Coverage::of(s, terminal_id)?;
            let mode = match terminal.operating_mode {
                OperatingMode::Standalone => "standalone",
                OperatingMode::Pro => "pro",
                OperatingMode::Enterprise => "enterprise",
            };
            let key = (tenant, coverage.clone(), mode);
            Some(images.get_or_compute(key, revision, now, || {
                let (mut image, next) = crate::sync::image::device_image(s, &coverage, now);
                if let Some((host, port)) = &receiver {
                    image.insert(
                        SETUP_KEY.into(),
                        SubjectImage::Setup(Box::new(SetupImage {
                            host: host.clone(),
                            port: *port,
                            mode: mode.to_owned(),
                        })),
                    );
                }
                (image, next)
            }))
        })
        .await;
    match computed {
        Ok(Some(image)) => Ok(image),
        Ok(None) => Err(Stop::Removed),
        Err(e) => Err(Stop::Unreadable(e.to_string())),
    }
}

/// The steps that bring the device from what was applied to `image`. A terminal that holds
/// the image this one replaced (and so holds exactly what it applied) plans only the
/// subjects that changed; one that holds this very image plans nothing.
fn plan_steps(progress: &Progress, image: &SharedImage) -> Vec<Step> {
    let desired = &image.image;
    match (&progress.holding, &image.delta) {
        (Some(held), _) if Arc::ptr_eq(held, desired) => Vec::new(),
        (Some(held), Some(delta)) if delta.starts_from(held) => {
            plan_keys(desired, &progress.applied, &delta.changed)
        }
        _ => plan(desired, &progress.applied),
    }
}

/// Reads the device's access logs the core has not seen, when a catch-up is due (at start,
/// after a failed pass, and every `logs_every`); the cursor is saved as it advances.
async fn catch_up_on_logs_if_due(
    task: &TerminalTask,
    progress: &mut Progress,
    now: Timestamp,
) -> Result<(), ApplyError> {
    if !(progress.logs_due || now >= progress.next_logs) {
        return Ok(());
    }
    let (read, outcome) = logs::catch_up(
        &task.client,
        &task.core,
        task.tenant,
        task.terminal,
        &progress.cursor,
    )
    .await;
    if read != progress.cursor {
        logs::save_cursor(&task.core, task.tenant, task.terminal, &read).await;
        progress.cursor = read;
    }
    outcome?;
    progress.logs_due = false;
    progress.next_logs = add(now, task.options.logs_every);
    Ok(())
}

/// Publishes the pass's status on the board; the delay before a retry when it failed.
fn report_pass(
    task: &TerminalTask,
    progress: &mut Progress,
    revision: u64,
    now: Timestamp,
    image: &SharedImage,
    pending: usize,
    failure: Option<ApplyError>,
) -> Option<Duration> {
    let status = &mut progress.status;
    status.access_logs_read = progress.cursor.last_id;
    status.passes += 1;
    status.revision = revision;
    status.pending = pending;
    status.people = progress
        .applied
        .values()
        .filter(|i| matches!(i, SubjectImage::User(_)))
        .count();
    status.computed_at = Some(now.to_string());
    status.next_change = image.next_change.map(|t| t.to_string());
    progress.holding = failure.is_none().then(|| image.image.clone());
    let retry = match failure {
        None => {
            status.in_sync = true;
            status.last_error = None;
            status.last_success = Some(now.to_string());
            progress.backoff.reset();
            None
        }
        Some(e) => {
            status.in_sync = false;
            status.last_error = Some(e.to_string());
            Some(progress.backoff.next_delay())
        }
    };
    task.board.set(task.tenant, task.terminal, status.clone());
    retry
}

/// Reports a pass that could not read the core, and answers the backoff before the next.
fn report_unreadable(
    task: &TerminalTask,
    progress: &mut Progress,
    revision: u64,
    why: &str,
) -> Duration {
    let status = &mut progress.status;
    status.passes += 1;
    status.revision = revision;
    status.in_sync = false;
    status.last_error = Some(format!("the core could not be read: {why}"));
    task.board.set(task.tenant, task.terminal, status.clone());
    progress.backoff.next_delay()
}

/// Sleeps until the next pass is due: the image changes (`next_change`), a read-back or log
/// catch-up is due, the tenant changed, or the retry delay is over.
async fn wait_for_next_pass(
    task: &mut TerminalTask,
    progress: &Progress,
    next_change: Option<Timestamp>,
    retry: Option<Duration>,
) -> Result<(), Ended> {
    let due = progress.next_readback.min(progress.next_logs);
    let wake = Some(next_change.map_or(due, |w| w.min(due)));
    let clock = task.core.clock().clone();
    tokio::select! {
        () = task.stop.cancelled() => Err(Ended),
        changed = task.nudge.changed() => changed.map_err(|_| Ended),
        () = sleep_until(&clock, wake) => Ok(()),
        // Retries run on real time even on a manual clock, so an unreachable terminal
        // is tried again while a test waits for convergence.
        () = retry_after(retry) => Ok(()),
    }
}

async fn sleep_until(clock: &crate::app::Clock, wake: Option<Timestamp>) {
    match wake {
        Some(at) => clock.sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn retry_after(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

fn add(at: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| at.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}
