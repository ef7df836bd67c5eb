//! What the engine reports: each terminal's [`SyncStatus`] on a shared [`StatusBoard`],
//! which anyone can wait on (tests, `GET /v1/terminals/{id}/sync`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use tokio::sync::watch;

use crate::domain::{TenantId, TerminalId};

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
    /// The device clock's measured skew: the device's local time minus the site's wall
    /// time, in seconds (docs/domain.md §5.3); `None` until the engine has read the clock.
    /// Times written to the device are shifted by it and times it reports shifted back.
    pub clock_skew_seconds: Option<i64>,
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

    /// The measured skew of a terminal's device clock (seconds the device's local time is
    /// ahead of the site's wall time), if the engine has measured it.
    pub fn clock_skew(&self, tenant: TenantId, terminal: TerminalId) -> Option<i64> {
        self.lock()
            .get(&(tenant, terminal))
            .and_then(|s| s.clock_skew_seconds)
    }

    pub(crate) fn set(&self, tenant: TenantId, terminal: TerminalId, status: SyncStatus) {
        self.lock().insert((tenant, terminal), status);
        self.changed.send_modify(|n| *n += 1);
    }

    pub(crate) fn remove(&self, tenant: TenantId, terminal: TerminalId) {
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
