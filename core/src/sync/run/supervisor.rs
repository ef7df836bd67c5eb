//! The supervisor: keeps one terminal task running per terminal of every tenant. On every
//! change of a tenant it nudges the tenant's tasks, stops the tasks of terminals that were
//! removed or changed (their status leaves the board), and starts tasks for new ones.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::terminal::{TerminalTask, terminal_loop};
use super::{StatusBoard, SyncOptions, SyncStatus};
use crate::app::Core;
use crate::domain::{TenantId, Terminal, TerminalId};
use crate::sync::shared::SharedImages;
use crate::terminal::TerminalClient;

/// What a terminal task is told about its tenant.
type Nudge = watch::Sender<u64>;

/// Runs until `cancel`: starts, nudges and stops terminal tasks as tenants change.
pub(super) async fn supervise(
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
    let mut dirty: Vec<TenantId> = tenant_ids(&core).await;
    // Tenants whose terminals could not be read: tried again after a backoff with jitter.
    let mut unread: Vec<TenantId> = Vec::new();
    let mut backoff = crate::retry::Backoff::new(options.retry_initial, options.retry_max);
    loop {
        for tenant in std::mem::take(&mut dirty) {
            let nudge = nudges
                .entry(tenant)
                .or_insert_with(|| Arc::new(watch::channel(0).0))
                .clone();
            nudge.send_modify(|n| *n += 1);
            let terminals = match core.read(tenant, |s| s.topology.terminals.clone()).await {
                Ok(terminals) => terminals,
                Err(e) => {
                    tracing::warn!(%tenant, error = %e, "the tenant's terminals could not be read; trying again");
                    unread.push(tenant);
                    continue;
                }
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
        let retry = (!unread.is_empty()).then(|| backoff.next_delay());
        if unread.is_empty() {
            backoff.reset();
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = async {
                match retry {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            } => dirty.append(&mut unread),
            changed = changes.recv() => match changed {
                Ok(tenant) => dirty.push(tenant),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    dirty = tenant_ids(&core).await;
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

/// Every tenant's id; none (with a warning) when the store cannot be read, in which case
/// the next change of any tenant brings its tenant back.
async fn tenant_ids(core: &Core) -> Vec<TenantId> {
    match core.tenant_ids().await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "the tenants could not be read");
            Vec::new()
        }
    }
}
