//! `run`: the sync engine. A supervisor keeps one task per terminal of every tenant; each
//! task loads what was applied (from the store), computes the terminal's image now, plans,
//! applies step by step recording every success per subject, and then sleeps until the
//! next instant the image changes, a change of the tenant, a retry (exponential backoff
//! with jitter while the terminal is unreachable, [`crate::retry`]) or a periodic
//! read-back of the device (which repairs drift: a user deleted on the device by hand is
//! pushed again). Each pass of a reachable terminal may also catch up on its access logs
//! ([`super::logs`]): at start, after a failed pass, and every `logs_every`. Terminals
//! never wait for each other.
//!
//! - `supervisor` – one task per terminal, started, nudged and stopped as tenants change;
//!   `leases` – with several instances, which terminals this one holds (and so syncs);
//! - `terminal` – a terminal task's passes, step by step, and the wait between them;
//! - `applied` – the applied record of a terminal in the store (in doubt, settled);
//! - `read_back` – the device's users against the applied record;
//! - `status` – [`SyncStatus`] and the [`StatusBoard`] that shows it.

mod applied;
mod decommission;
mod leases;
mod read_back;
mod supervisor;
mod terminal;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::Core;
use crate::terminal::ClientOptions;

pub use crate::app::sync_status::{StatusBoard, SyncStatus};

/// How the engine behaves.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// The longest first retry delay after a failure: the ceiling doubles with every
    /// further failure up to `retry_max`, and each delay is drawn between half the ceiling
    /// and the ceiling, so terminals that fail together do not retry together.
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
    /// Set a terminal's clock (`set_system_time`, to the site's wall time) when its
    /// measured skew exceeds this; `None` (the default) never changes a device's clock,
    /// and times are translated by the measured skew instead (docs/domain.md §5.3).
    pub set_clock_beyond: Option<Duration>,
    /// Faults to inject (tests and chaos campaigns); none by default.
    pub faults: SyncFaults,
    /// Terminal leases, when several instances share the database: only the terminals
    /// whose lease this instance holds are synced here. `None` syncs every terminal.
    pub leases: Option<LeaseOptions>,
}

/// How an instance holds terminal leases ([`crate::store::Store::acquire_lease`]).
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// How long a lease (and the instance's heartbeat) lasts unless renewed: a dead
    /// instance's terminals are taken over after at most this plus `renew_every`.
    pub ttl: Duration,
    /// How often leases are renewed, new ones taken and the share rebalanced.
    pub renew_every: Duration,
    /// How many terminals an instance may hold beyond its even share
    /// (`ceil(terminals / live instances)`).
    pub slack: usize,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        LeaseOptions {
            ttl: Duration::from_secs(10),
            renew_every: Duration::from_secs(3),
            slack: 1,
        }
    }
}

/// Faults the engine can be told to suffer, for tests and chaos campaigns: they make the
/// paths that must recover run on purpose.
#[derive(Debug, Clone, Default)]
pub struct SyncFaults {
    failing_reads: Arc<std::sync::atomic::AtomicU32>,
}

impl SyncFaults {
    /// The next `n` reads of a terminal's image from the core fail, as a store that cannot
    /// be read would make them fail.
    pub fn fail_next_reads(&self, n: u32) {
        self.failing_reads
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether this read is one that must fail (and counts it).
    pub(super) fn read_fails(&self) -> bool {
        self.failing_reads
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok()
    }
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
            set_clock_beyond: None,
            faults: SyncFaults::default(),
            leases: None,
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
        tasks.spawn(supervisor::supervise(
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
