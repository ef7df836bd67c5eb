//! `run`: the sync engine. A supervisor keeps one task per terminal of every tenant; each
//! task loads what was applied (from the store), computes the terminal's image now, plans,
//! applies step by step recording every success per subject, and then sleeps until the
//! next instant the image changes, a change of the tenant, a retry (exponential backoff
//! while the terminal is unreachable) or a periodic read-back of the device (which repairs
//! drift: a user deleted on the device by hand is pushed again). Each pass of a reachable
//! terminal may also catch up on its access logs ([`super::logs`]): at start, after a failed
//! pass, and every `logs_every`. Terminals never wait for each other.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value as Json, json};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::apply::{ApplyError, apply, apply_new_users};
use super::image::{DeviceImage, SETUP_KEY, SetupImage, SubjectImage, UserImage, device_image};
use super::logs;
use super::plan::{plan, plan_keys};
use super::shared::{SharedImage, SharedImages};
use crate::app::Core;
use crate::domain::desired::Coverage;
use crate::domain::{TenantId, Terminal, TerminalId};
use crate::terminal::{ClientOptions, TerminalClient};

/// How the engine behaves.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// First retry delay after a failure (doubles up to `retry_max`).
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// How often each device is read back to repair drift.
    pub readback_every: Duration,
    /// How often each device's access logs are read back to catch up on notifications
    /// that never arrived (also after every failed pass and at start).
    pub logs_every: Duration,
    /// Driver options for every terminal (one HTTP client is shared).
    pub client: ClientOptions,
    /// Where terminals reach the core's receiver (`host`, `port`): configured on every
    /// terminal as its monitor and, in online modes, its online server. `None` leaves the
    /// terminals' configuration alone.
    pub receiver: Option<(String, u16)>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            readback_every: Duration::from_secs(300),
            logs_every: Duration::from_secs(60),
            client: ClientOptions::default(),
            receiver: None,
        }
    }
}

/// One terminal's sync state, as `GET /v1/terminals/{id}/sync` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    /// Whether the device holds exactly the image of the last computation.
    pub in_sync: bool,
    /// Steps still to apply.
    pub pending: usize,
    /// People on the device (as applied).
    pub people: usize,
    /// The last failure, if the last pass failed.
    pub last_error: Option<String>,
    /// When a pass last completed without failure.
    pub last_success: Option<String>,
    /// The instant the image was last computed for.
    pub computed_at: Option<String>,
    /// The next instant the image changes, if any.
    pub next_change: Option<String>,
    /// Passes run so far.
    pub passes: u64,
    /// The core's revision when the last pass started (it has seen every change up to it).
    pub revision: u64,
    /// The highest id of the device's `access_logs` the catch-up has read and recorded.
    pub access_logs_read: i64,
}

/// Every terminal's status; clones share it.
#[derive(Debug, Clone, Default)]
pub struct StatusBoard {
    inner: Arc<Mutex<HashMap<(TenantId, TerminalId), SyncStatus>>>,
    changed: Arc<watch::Sender<u64>>,
}

impl StatusBoard {
    /// A terminal's status, if the engine has seen it.
    pub fn get(&self, tenant: TenantId, terminal: TerminalId) -> Option<SyncStatus> {
        self.lock().get(&(tenant, terminal)).cloned()
    }

    fn set(&self, tenant: TenantId, terminal: TerminalId, status: SyncStatus) {
        self.lock().insert((tenant, terminal), status);
        self.changed.send_modify(|n| *n += 1);
    }

    fn remove(&self, tenant: TenantId, terminal: TerminalId) {
        self.lock().remove(&(tenant, terminal));
        self.changed.send_modify(|n| *n += 1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(TenantId, TerminalId), SyncStatus>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `done` holds for the board (re-checked on every status change).
    pub async fn wait_until(
        &self,
        mut done: impl FnMut(&HashMap<(TenantId, TerminalId), SyncStatus>) -> bool,
    ) {
        let mut rx = self.changed.subscribe();
        loop {
            if done(&self.lock()) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// The running engine.
#[derive(Debug)]
pub struct SyncEngine {
    board: StatusBoard,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl SyncEngine {
    /// Starts syncing every terminal of every tenant of `core`.
    pub fn spawn(core: Core, options: SyncOptions) -> SyncEngine {
        let board = core.sync_board().clone();
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(supervise(
            core,
            options,
            board.clone(),
            cancel.clone(),
            tasks.clone(),
        ));
        SyncEngine {
            board,
            cancel,
            tasks,
        }
    }

    /// The status of every terminal.
    pub fn board(&self) -> &StatusBoard {
        &self.board
    }

    /// Stops every task and waits for them (a step in flight finishes first).
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Drop for SyncEngine {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// What a terminal task is told about its tenant.
type Nudge = watch::Sender<u64>;

async fn supervise(
    core: Core,
    options: SyncOptions,
    board: StatusBoard,
    cancel: CancellationToken,
    tasks: TaskTracker,
) {
    let mut changes = core.subscribe_changes();
    let http = options.client.http.clone().unwrap_or_default();
    let mut running: HashMap<(TenantId, TerminalId), (Terminal, CancellationToken)> =
        HashMap::new();
    let mut nudges: HashMap<TenantId, Arc<Nudge>> = HashMap::new();
    let images = SharedImages::default();
    let mut dirty: Vec<TenantId> = core.tenant_ids().await.unwrap_or_default();
    loop {
        for tenant in std::mem::take(&mut dirty) {
            let nudge = nudges
                .entry(tenant)
                .or_insert_with(|| Arc::new(watch::channel(0).0))
                .clone();
            nudge.send_modify(|n| *n += 1);
            let Ok(terminals) = core.read(tenant, |s| s.topology.terminals.clone()).await else {
                continue;
            };
            running.retain(|(t, id), (terminal, stop)| {
                let keep = *t != tenant || terminals.get(id) == Some(terminal);
                if !keep {
                    stop.cancel();
                    board.remove(*t, *id);
                }
                keep
            });
            for (id, terminal) in terminals {
                if running.contains_key(&(tenant, id)) {
                    continue;
                }
                let stop = cancel.child_token();
                let mut client_options = options.client.clone();
                client_options.http = Some(http.clone());
                let client = match TerminalClient::new(
                    &terminal.address,
                    &terminal.login,
                    terminal.password.expose(),
                    client_options,
                ) {
                    Ok(c) => c,
                    Err(e) => {
                        board.set(
                            tenant,
                            id,
                            SyncStatus {
                                last_error: Some(e.to_string()),
                                ..SyncStatus::default()
                            },
                        );
                        continue;
                    }
                };
                tasks.spawn(terminal_loop(TerminalTask {
                    core: core.clone(),
                    tenant,
                    terminal: id,
                    client,
                    options: options.clone(),
                    board: board.clone(),
                    nudge: nudge.subscribe(),
                    stop: stop.clone(),
                    registered: false,
                    images: images.clone(),
                }));
                running.insert((tenant, id), (terminal, stop));
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = changes.recv() => match changed {
                Ok(tenant) => dirty.push(tenant),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    dirty = core.tenant_ids().await.unwrap_or_default();
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
        // Drain whatever else arrived, once per tenant.
        while let Ok(tenant) = changes.try_recv() {
            dirty.push(tenant);
        }
        dirty.sort();
        dirty.dedup();
    }
}

struct TerminalTask {
    core: Core,
    tenant: TenantId,
    terminal: TerminalId,
    client: TerminalClient,
    options: SyncOptions,
    board: StatusBoard,
    nudge: watch::Receiver<u64>,
    stop: CancellationToken,
    registered: bool,
    /// Images computed by any terminal task, shared by coverage.
    images: SharedImages,
}

/// What was applied to the terminal, and the access-log cursor.
async fn load_applied(core: &Core, tenant: TenantId, terminal: TerminalId) -> (DeviceImage, i64) {
    let store = core.store().clone();
    let rows = tokio::task::spawn_blocking(move || store.applied(tenant.get(), terminal.get()))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let cursor = logs::cursor_of(&rows);
    let applied = rows
        .into_iter()
        .filter(|(key, _)| key != logs::CURSOR_KEY)
        .filter_map(|(key, data)| {
            serde_json::from_value::<SubjectImage>(data)
                .ok()
                .map(|image| (key, image))
        })
        .collect();
    (applied, cursor)
}

/// Records what was applied for each subject (`None`: nothing), in one store transaction.
async fn record(
    core: &Core,
    tenant: TenantId,
    terminal: TerminalId,
    subjects: Vec<(String, Option<Json>)>,
) -> bool {
    if subjects.is_empty() {
        return true;
    }
    let store = core.store().clone();
    tokio::task::spawn_blocking(move || store.set_applied(tenant.get(), terminal.get(), &subjects))
        .await
        .ok()
        .and_then(Result::ok)
        .is_some()
}

/// Reads the device's users back and forgets the applied record of every person the
/// device no longer holds (so the next pass pushes them again); a user of ours that the
/// device holds without any record (a request that reached the device only after the core
/// had moved on, e.g. one sent just before the core was killed) is recorded in doubt, so
/// the next pass removes it or applies it cleanly. True when drift was found.
async fn read_back(task: &TerminalTask, applied: &mut DeviceImage) -> Result<bool, ApplyError> {
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
        .filter(|(id, _)| !applied.contains_key(&super::image::user_key(*id)))
        .collect();
    let subjects = unknown
        .iter()
        .filter_map(|(id, _)| u64::try_from(*id).ok())
        .map(|p| crate::app::Subject::Person(crate::domain::PersonId::new(p)))
        .collect();
    let orphans: Vec<(i64, String)> = task
        .core
        .read_about(task.tenant, subjects, |s| {
            unknown
                .into_iter()
                .filter(|(id, registration)| {
                    u64::try_from(*id)
                        .ok()
                        .and_then(|p| s.people.get(&crate::domain::PersonId::new(p)))
                        .is_some_and(|p| p.acs_id.as_str() == registration)
                })
                .collect()
        })
        .await
        .unwrap_or_default();
    let mut in_doubt = Vec::with_capacity(orphans.len());
    for (id, registration) in &orphans {
        let key = super::image::user_key(*id);
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
        face: Some(super::image::FaceRef {
            credential_id: 0,
            timestamp: 0,
        }),
        rules: Default::default(),
    }
}

async fn terminal_loop(mut task: TerminalTask) {
    let (mut applied, mut cursor) = load_applied(&task.core, task.tenant, task.terminal).await;
    let mut status = SyncStatus {
        access_logs_read: cursor,
        ..SyncStatus::default()
    };
    let mut backoff = task.options.retry_initial;
    let mut next_readback = task.core.now();
    // Catch up on access logs at start, after any failed pass, and periodically.
    let mut logs_due = true;
    let mut next_logs = task.core.now();
    // The image a pass without failure last brought the device to: while the desired image
    // is that very computation (and no read-back found drift), there is nothing to plan.
    let mut holding: Option<Arc<DeviceImage>> = None;
    loop {
        let revision = task.core.revision();
        let now = task.core.now();
        let mut failure: Option<ApplyError> = None;
        if now >= next_readback {
            match read_back(&task, &mut applied).await {
                Ok(drifted) => {
                    if drifted {
                        holding = None;
                    }
                    next_readback = add(now, task.options.readback_every);
                }
                Err(e) => failure = Some(e),
            }
        }
        // An image takes tens of milliseconds with thousands of people: it is computed on
        // the blocking pool, where waiting for another terminal's computation of the same
        // image holds up no request either.
        let (tenant, terminal_id, images) = (task.tenant, task.terminal, task.images.clone());
        let receiver = task.options.receiver.clone();
        let computed = task
            .core
            .read_blocking(task.tenant, move |s| {
                let terminal = s.topology.terminals.get(&terminal_id)?;
                let coverage = Coverage::of(s, terminal_id)?;
                let mode = match terminal.operating_mode {
                    crate::domain::OperatingMode::Standalone => "standalone",
                    crate::domain::OperatingMode::Pro => "pro",
                    crate::domain::OperatingMode::Enterprise => "enterprise",
                };
                let key = (tenant, coverage.clone(), mode);
                Some(images.get_or_compute(key, revision, now, || {
                    let (mut image, next) = device_image(s, &coverage, now);
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
        let Ok(Some(SharedImage {
            image: desired,
            next_change,
            delta,
        })) = computed
        else {
            return;
        };
        if !task.registered {
            match task.client.system_information().await {
                Ok(info) => {
                    task.core
                        .register_device(info.device_id, task.tenant, task.terminal);
                    task.registered = true;
                }
                Err(e) => failure = failure.or(Some(e.into())),
            }
        }
        // A terminal that holds the image this one replaced (and so holds exactly what it
        // applied) plans only the subjects that changed.
        let steps = match (&holding, &delta) {
            _ if failure.is_some() => Vec::new(),
            (Some(held), _) if Arc::ptr_eq(held, &desired) => Vec::new(),
            (Some(held), Some(delta)) if delta.starts_from(held) => {
                plan_keys(&desired, &applied, &delta.changed)
            }
            _ => plan(&desired, &applied),
        };
        let mut remaining = steps.len();
        let mut index = 0;
        while index < steps.len() {
            if task.stop.is_cancelled() {
                return;
            }
            // People the terminal has no record of go many per call.
            let batch: Vec<&super::plan::Step> = steps[index..]
                .iter()
                .take_while(|s| new_user(s).is_some())
                .take(NEW_USERS_PER_BATCH)
                .collect();
            if batch.len() > 1 {
                let users: Vec<&UserImage> = batch.iter().filter_map(|s| new_user(s)).collect();
                doubt(&task, &mut applied, &batch).await;
                match apply_new_users(&task.client, &task.core, task.tenant, &users).await {
                    Ok(()) => {
                        settle(&task, &mut applied, &batch).await;
                        remaining -= batch.len();
                        index += batch.len();
                        continue;
                    }
                    Err(e) if e.is_retryable() => {
                        tracing::warn!(terminal = %task.terminal, people = batch.len(), error = %e, "sync batch failed");
                        failure = Some(e);
                        break;
                    }
                    // Refused: one of them is at fault; push them one by one below.
                    Err(e) => {
                        tracing::warn!(terminal = %task.terminal, error = %e, "sync batch refused; pushing one by one");
                    }
                }
            }
            let end = index + batch.len().max(1);
            let mut stop = false;
            for step in &steps[index..end] {
                doubt(&task, &mut applied, &[step]).await;
                match apply(&task.client, &task.core, task.tenant, step).await {
                    Ok(()) => {
                        settle(&task, &mut applied, &[step]).await;
                        remaining -= 1;
                    }
                    Err(e) => {
                        let retryable = e.is_retryable();
                        tracing::warn!(terminal = %task.terminal, subject = step.key(), error = %e, "sync step failed");
                        failure = Some(e);
                        if retryable {
                            stop = true;
                            break;
                        }
                    }
                }
            }
            if stop {
                break;
            }
            index = end;
        }
        if (logs_due || now >= next_logs) && !failure.as_ref().is_some_and(ApplyError::is_retryable)
        {
            let (read, outcome) =
                logs::catch_up(&task.client, &task.core, task.tenant, task.terminal, cursor).await;
            if read != cursor {
                cursor = read;
                logs::save_cursor(&task.core, task.tenant, task.terminal, cursor).await;
            }
            match outcome {
                Ok(_) => {
                    logs_due = false;
                    next_logs = add(now, task.options.logs_every);
                }
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        if failure.is_some() {
            logs_due = true;
        }
        status.access_logs_read = cursor;
        status.passes += 1;
        status.revision = revision;
        status.pending = remaining + usize::from(failure.is_some() && steps.is_empty());
        status.people = applied
            .values()
            .filter(|i| matches!(i, SubjectImage::User(_)))
            .count();
        status.computed_at = Some(now.to_string());
        status.next_change = next_change.map(|t| t.to_string());
        holding = failure.is_none().then(|| desired.clone());
        let mut wake = next_change;
        let retry = match &failure {
            None => {
                status.in_sync = true;
                status.last_error = None;
                status.last_success = Some(now.to_string());
                backoff = task.options.retry_initial;
                None
            }
            Some(e) => {
                status.in_sync = false;
                status.last_error = Some(e.to_string());
                let wait = backoff;
                backoff = (backoff * 2).min(task.options.retry_max);
                Some(wait)
            }
        };
        let due = next_readback.min(next_logs);
        wake = Some(wake.map_or(due, |w| w.min(due)));
        task.board.set(task.tenant, task.terminal, status.clone());
        let clock = task.core.clock().clone();
        tokio::select! {
            () = task.stop.cancelled() => return,
            changed = task.nudge.changed() => if changed.is_err() { return },
            () = sleep_until(&clock, wake) => {}
            // Retries run on real time even on a manual clock, so an unreachable terminal
            // is tried again while a test waits for convergence.
            () = retry_after(retry) => {}
        }
    }
}

/// How many new people one batch pushes.
const NEW_USERS_PER_BATCH: usize = 100;

/// The person a step adds to a terminal that has no record of them.
fn new_user(step: &super::plan::Step) -> Option<&UserImage> {
    match step {
        super::plan::Step::Put {
            desired: SubjectImage::User(user),
            applied: None,
            ..
        } => Some(user),
        _ => None,
    }
}

/// Records, before steps start, that their subjects are in doubt until they settle: a step
/// whose outcome is never heard (a timeout after the device acted, the core killed) is then
/// applied again from a clean slate, or removed entirely, instead of leaving orphans.
async fn doubt(task: &TerminalTask, applied: &mut DeviceImage, steps: &[&super::plan::Step]) {
    let mut changes = Vec::with_capacity(steps.len());
    for step in steps {
        let key = step.key().to_owned();
        let desired = match step {
            super::plan::Step::Put { desired, .. } => Some(desired),
            super::plan::Step::Remove { .. } => None,
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
async fn settle(task: &TerminalTask, applied: &mut DeviceImage, steps: &[&super::plan::Step]) {
    let changes: Vec<(String, Option<SubjectImage>)> = steps
        .iter()
        .map(|step| {
            let image = match step {
                super::plan::Step::Put { desired, .. } => Some(desired.clone()),
                super::plan::Step::Remove { .. } => None,
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
