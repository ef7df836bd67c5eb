//! One terminal's task: passes that bring the device in line with its image, one after the
//! other, with a wait in between.
//!
//! A pass is a sequence of named steps: [register the device](register_device_once) (once;
//! a device that is not the terminal's is neither read nor written), [read back the device
//! when due](read_back_if_due), [compute the image](compute_image),
//! [plan](plan_steps), [apply the steps](apply_steps), [catch up on access
//! logs](catch_up_on_logs_if_due), [report](report_pass) and [wait for the next
//! pass](wait_for_next_pass): the next instant the image changes, a change of the tenant, a
//! read-back or log catch-up falling due, or a retry ([`Backoff`]) after a failed pass.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::applied::{doubt, load_applied, settle};
use super::read_back::read_back;
use super::{StatusBoard, SyncOptions, SyncStatus};
use crate::app::Core;
use crate::domain::desired::Coverage;
use crate::domain::{OperatingMode, TenantId, TerminalId};
use crate::retry::Backoff;
use crate::sync::apply::{ApplyError, apply, apply_new_users};
use crate::sync::image::{DeviceImage, SETUP_KEY, SetupImage, SubjectImage, UserImage};
use crate::sync::logs;
use crate::sync::plan::{Step, plan, plan_keys};
use crate::sync::shared::{SharedImage, SharedImages};
use crate::terminal::TerminalClient;

/// How many new people one batch pushes.
const NEW_USERS_PER_BATCH: usize = 100;

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
    /// The highest id of the device's access logs read and recorded.
    cursor: i64,
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

/// What applying a pass's steps left.
struct Applied {
    /// Steps not applied.
    remaining: usize,
    /// The last failure, if a step failed.
    failure: Option<ApplyError>,
}

/// How pushing a batch of new people went.
enum Batch {
    /// Every one of them is on the device.
    Pushed,
    /// The device refused the batch: one of them is at fault.
    Refused,
    /// The device could not be reached: the pass ends.
    Unreachable(ApplyError),
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
            cursor,
            status: SyncStatus {
                access_logs_read: cursor,
                ..SyncStatus::default()
            },
            backoff: Backoff::new(task.options.retry_initial, task.options.retry_max),
            next_readback: task.core.now(),
            logs_due: true,
            next_logs: task.core.now(),
            holding: None,
            skew,
            skew_stored: skew,
        }
    }
}

/// Reads the device's users back when a read-back is due, forgetting what drifted.
async fn read_back_if_due(
    task: &TerminalTask,
    progress: &mut Progress,
    now: Timestamp,
) -> Result<(), ApplyError> {
    if now < progress.next_readback {
        return Ok(());
    }
    measure_clock(task, progress).await?;
    let drifted = read_back(task, &mut progress.applied).await?;
    if drifted {
        progress.holding = None;
    }
    progress.next_readback = add(now, task.options.readback_every);
    Ok(())
}

/// A new measurement of the device's clock replaces the skew in use only when it differs
/// by more than this (a reply takes time, and the device counts whole seconds).
const SKEW_TOLERANCE: i64 = 2;

/// Measures the device clock's skew (its local time minus the site's wall time now), on
/// first contact and with every read-back; sets the device's clock first when
/// [`SyncOptions::set_clock_beyond`](super::SyncOptions) says so. A changed skew marks the
/// applied users with times to be written again. The skew is published at once, so that
/// access logs read in this pass are translated with it.
async fn measure_clock(task: &TerminalTask, progress: &mut Progress) -> Result<(), ApplyError> {
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
            user.begin_time = i64::MIN;
        }
    }
}

/// The terminal's image at `now` (shared with every terminal of the same coverage), with
/// its setup when the engine configures the receiver.
///
/// An image takes tens of milliseconds with thousands of people: it is computed on the
/// blocking pool, where waiting for another terminal's computation of the same image holds
/// up no request either.
/// Why a terminal's image could not be computed.
enum Stop {
    /// The terminal is no longer in the core: its task ends.
    Removed,
    /// The core could not be read: try again.
    Unreadable(String),
}

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
                        SubjectImage::Setup(SetupImage {
                            host: host.clone(),
                            port: *port,
                            mode: mode.to_owned(),
                        }),
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

/// Tells the core which device answers at this terminal's address (once per task), so
/// that what the device sends to the receiver is attributed to it. A terminal whose device
/// is not known yet (it did not answer when it was registered) claims it now; a device
/// other than the terminal's, or one another terminal has in any tenant, is refused
/// ([`ApplyError::WrongDevice`]), and the pass neither reads nor writes it.
async fn register_device_once(task: &mut TerminalTask) -> Result<(), ApplyError> {
    if task.registered {
        return Ok(());
    }
    let info = task.client.system_information().await?;
    let found = info.device_id;
    let terminal = task.terminal;
    let known = task
        .core
        .read(task.tenant, |s| {
            s.topology.terminals.get(&terminal).map(|t| t.device_id)
        })
        .await
        .ok()
        .flatten();
    match known {
        Some(Some(device)) if device == found => {}
        Some(Some(device)) => {
            return Err(ApplyError::WrongDevice(format!(
                "the device at this terminal's address is device {found}, not its device                  {device}; change the terminal to accept it"
            )));
        }
        Some(None) => claim_device(task, found).await?,
        // The terminal is gone: the task ends with the next image.
        None => {
            return Err(ApplyError::WrongDevice(format!(
                "terminal {terminal} is gone"
            )));
        }
    }
    task.core.register_device(found, task.tenant, task.terminal);
    task.registered = true;
    Ok(())
}

/// Records `device` as the terminal's device; refused when another terminal has it (the
/// store keeps device ids unique across tenants).
async fn claim_device(task: &TerminalTask, device: i64) -> Result<(), ApplyError> {
    let caller = crate::app::Caller {
        tenant: task.tenant,
        key_prefix: "sync".into(),
    };
    let terminal = task.terminal;
    task.core
        .write(&caller, 0, move |s, plan| {
            let Some(current) = s.topology.terminals.get(&terminal) else {
                return Ok(());
            };
            if current.device_id.is_some() || s
                .topology
                .terminals
                .values()
                .any(|t| t.device_id == Some(device))
            {
                return Err(crate::error::AppError::conflict(
                    None,
                    format!("device {device} is already registered as another terminal"),
                ));
            }
            let mut learned = current.clone();
            learned.device_id = Some(device);
            plan.audit(
                "terminal.updated",
                crate::store::Kind::Terminal,
                Some(terminal.get()),
            );
            plan.put(learned, None);
            Ok(())
        })
        .await
        .map_err(|e| {
            ApplyError::WrongDevice(format!(
                "the device at this terminal's address (device {device}) is not recorded as                  its device: {}",
                e.detail
            ))
        })
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

/// Applies `steps` in order, recording each subject in doubt before and settled after.
/// New people go many per call; a refused batch is pushed again one by one. A step the
/// device refuses is skipped (and reported); an unreachable device ends the pass.
async fn apply_steps(
    task: &TerminalTask,
    applied: &mut DeviceImage,
    steps: &[Step],
    skew: i64,
) -> Result<Applied, Ended> {
    let mut outcome = Applied {
        remaining: steps.len(),
        failure: None,
    };
    let mut index = 0;
    while index < steps.len() {
        if task.stop.is_cancelled() {
            return Err(Ended);
        }
        let batch = new_users_batch(&steps[index..]);
        if batch.len() > 1 {
            match push_new_users(task, applied, &batch, skew).await {
                Batch::Pushed => {
                    outcome.remaining -= batch.len();
                    index += batch.len();
                    continue;
                }
                Batch::Unreachable(e) => {
                    outcome.failure = Some(e);
                    break;
                }
                Batch::Refused => {}
            }
        }
        let end = index + batch.len().max(1);
        if apply_one_by_one(task, applied, &steps[index..end], &mut outcome, skew)
            .await
            .is_break()
        {
            break;
        }
        index = end;
    }
    Ok(outcome)
}

/// The steps at the start of `steps` that add people the terminal has no record of (at
/// most [`NEW_USERS_PER_BATCH`]).
fn new_users_batch(steps: &[Step]) -> Vec<&Step> {
    steps
        .iter()
        .take_while(|s| new_user(s).is_some())
        .take(NEW_USERS_PER_BATCH)
        .collect()
}

/// The person a step adds to a terminal that has no record of them.
fn new_user(step: &Step) -> Option<&UserImage> {
    match step {
        Step::Put {
            desired: SubjectImage::User(user),
            applied: None,
            ..
        } => Some(user),
        _ => None,
    }
}

/// Pushes the new people of `batch` in one call.
async fn push_new_users(
    task: &TerminalTask,
    applied: &mut DeviceImage,
    batch: &[&Step],
    skew: i64,
) -> Batch {
    let users: Vec<&UserImage> = batch.iter().filter_map(|s| new_user(s)).collect();
    doubt(task, applied, batch).await;
    match apply_new_users(&task.client, &task.core, task.tenant, &users, skew).await {
        Ok(()) => {
            settle(task, applied, batch).await;
            Batch::Pushed
        }
        Err(e) if e.is_retryable() => {
            tracing::warn!(terminal = %task.terminal, people = batch.len(), error = %e, "sync batch failed");
            Batch::Unreachable(e)
        }
        Err(e) => {
            tracing::warn!(terminal = %task.terminal, error = %e, "sync batch refused; pushing one by one");
            Batch::Refused
        }
    }
}

/// Applies `steps` one at a time; breaks on a failure worth retrying (the device is
/// unreachable), after recording it in `outcome`.
async fn apply_one_by_one(
    task: &TerminalTask,
    applied: &mut DeviceImage,
    steps: &[Step],
    outcome: &mut Applied,
    skew: i64,
) -> ControlFlow<()> {
    for step in steps {
        doubt(task, applied, &[step]).await;
        match apply(&task.client, &task.core, task.tenant, step, skew).await {
            Ok(()) => {
                settle(task, applied, &[step]).await;
                outcome.remaining -= 1;
            }
            Err(e) => {
                let retryable = e.is_retryable();
                tracing::warn!(terminal = %task.terminal, subject = step.key(), error = %e, "sync step failed");
                outcome.failure = Some(e);
                if retryable {
                    return ControlFlow::Break(());
                }
            }
        }
    }
    ControlFlow::Continue(())
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
        progress.cursor,
    )
    .await;
    if read != progress.cursor {
        progress.cursor = read;
        logs::save_cursor(&task.core, task.tenant, task.terminal, read).await;
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
    status.access_logs_read = progress.cursor;
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

/// Records in the store the skew the applied users' times are written with (a lost save
/// only makes a restarted task write those times again).
async fn save_skew(task: &TerminalTask, skew: i64) {
    let store = task.core.store().clone();
    let (tenant, terminal) = (task.tenant, task.terminal);
    let doc = serde_json::json!({ "seconds": skew });
    let saved = tokio::task::spawn_blocking(move || {
        store.set_applied(
            tenant.get(),
            terminal.get(),
            &[(super::applied::SKEW_KEY.to_owned(), Some(doc))],
        )
    })
    .await;
    if !matches!(saved, Ok(Ok(_))) {
        tracing::warn!(%terminal, "the clock skew of the applied times was not saved");
    }
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
