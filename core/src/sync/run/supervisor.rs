//! The supervisor: keeps one terminal task running per terminal of every tenant. On every
//! change of a tenant it nudges the tenant's tasks, stops the tasks of terminals that were
//! removed or changed (their status leaves the board), and starts tasks for new ones.
//! With leases ([`super::LeaseOptions`]) it runs tasks only for the terminals this
//! instance holds: every `renew_every` it balances its leases ([`super::leases`]), stops
//! the task of a terminal whose lease it lost and starts tasks for the ones it took; at
//! shutdown it gives its leases back once its tasks ended.

use std::collections::{BTreeSet, HashMap};
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

/// A running terminal task.
struct Running {
    /// The terminal as the task was started for it.
    terminal: Terminal,
    /// Stops it.
    stop: CancellationToken,
    /// Its end (taken when a deleted terminal's clean-up waits for it).
    handle: Option<tokio::task::JoinHandle<()>>,
}

/// The driver of `terminal`, sharing the engine's HTTP client.
fn client_for(
    terminal: &Terminal,
    options: &SyncOptions,
    http: &reqwest::Client,
) -> Result<TerminalClient, crate::terminal::DriverError> {
    let mut client_options = options.client.clone();
    client_options.http = Some(http.clone());
    TerminalClient::new(
        &terminal.address,
        &terminal.login,
        terminal.password.expose(),
        client_options,
    )
}

/// Runs until `cancel`: starts, nudges and stops terminal tasks as tenants change; a
/// deleted terminal's device is cleared of what the core wrote to it.
pub(super) async fn supervise(
    core: Core,
    options: SyncOptions,
    board: StatusBoard,
    cancel: CancellationToken,
    tasks: TaskTracker,
) {
    let mut changes = core.subscribe_changes();
    let http = options.client.http.clone().unwrap_or_default();
    let mut running: HashMap<(TenantId, TerminalId), Running> = HashMap::new();
    let mut nudges: HashMap<TenantId, Arc<Nudge>> = HashMap::new();
    let images = SharedImages::default();
    let mut dirty: Vec<TenantId> = tenant_ids(&core).await;
    // Tenants whose terminals could not be read: tried again after a backoff with jitter.
    let mut unread: Vec<TenantId> = Vec::new();
    let mut backoff = crate::retry::Backoff::new(options.retry_initial, options.retry_max);
    // Every terminal of every tenant seen, and (with leases) the ones this instance holds.
    let mut known: HashMap<TenantId, Vec<TerminalId>> = HashMap::new();
    let mut held: Option<BTreeSet<u64>> = options.leases.as_ref().map(|_| BTreeSet::new());
    let mut lease_tick = tokio::time::interval(
        options
            .leases
            .as_ref()
            .map_or(std::time::Duration::from_secs(3600), |l| l.renew_every),
    );
    lease_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // A terminal seen for the first time is leased at once, not at the next round.
        let mut newcomers = false;
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
            let ids: Vec<TerminalId> = terminals.keys().copied().collect();
            newcomers |= known
                .get(&tenant)
                .is_none_or(|before| ids.iter().any(|id| !before.contains(id)));
            known.insert(tenant, ids);
            let mut deleted = Vec::new();
            running.retain(|(t, id), task| {
                let keep = *t != tenant || terminals.get(id) == Some(&task.terminal);
                if !keep {
                    task.stop.cancel();
                    board.remove(*t, *id);
                    if !terminals.contains_key(id) {
                        deleted.push((*id, task.terminal.clone(), task.handle.take()));
                    }
                }
                keep
            });
            for (id, terminal, handle) in deleted {
                let Ok(client) = client_for(&terminal, &options, &http) else {
                    continue;
                };
                let (core, options) = (core.clone(), options.clone());
                tasks.spawn(async move {
                    // The task's step in flight finishes first.
                    if let Some(handle) = handle {
                        let _ = handle.await;
                    }
                    super::decommission::decommission(core, tenant, id, client, options).await;
                });
            }
            for (id, terminal) in terminals {
                if running.contains_key(&(tenant, id))
                    || held.as_ref().is_some_and(|h| !h.contains(&id.get()))
                {
                    continue;
                }
                let stop = cancel.child_token();
                let client = match client_for(&terminal, &options, &http) {
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
                let handle = tasks.spawn(terminal_loop(TerminalTask {
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
                running.insert(
                    (tenant, id),
                    Running {
                        terminal,
                        stop,
                        handle: Some(handle),
                    },
                );
            }
        }
        if newcomers && options.leases.is_some() {
            lease_tick.reset_immediately();
        }
        let retry = (!unread.is_empty()).then(|| backoff.next_delay());
        if unread.is_empty() {
            backoff.reset();
        }
        tokio::select! {
            () = cancel.cancelled() => {
                if options.leases.is_some() {
                    for task in running.values_mut() {
                        task.stop.cancel();
                    }
                    for task in running.values_mut() {
                        if let Some(handle) = task.handle.take() {
                            let _ = handle.await;
                        }
                    }
                    super::leases::release_all(&core).await;
                }
                return;
            }
            _ = lease_tick.tick(), if options.leases.is_some() => {
                let (Some(lease_options), Some(holding)) = (&options.leases, held.as_mut()) else {
                    continue;
                };
                let all: Vec<u64> = known.values().flatten().map(|t| t.get()).collect();
                match super::leases::balance(&core, lease_options, all).await {
                    Ok((now_held, surplus)) => {
                        let mut stopping = Vec::new();
                        running.retain(|(t, id), task| {
                            let keep = now_held.contains(&id.get());
                            if !keep {
                                tracing::info!(tenant = %t, terminal = %id, "terminal lease lost or given back; its task stops");
                                task.stop.cancel();
                                board.remove(*t, *id);
                                if surplus.contains(&id.get()) {
                                    stopping.extend(task.handle.take());
                                }
                            }
                            keep
                        });
                        if !surplus.is_empty() {
                            // A lease given back is free only once its step in flight ended.
                            for handle in stopping {
                                let _ = handle.await;
                            }
                            super::leases::release(&core, surplus).await;
                        }
                        let taken: Vec<u64> = now_held.difference(holding).copied().collect();
                        *holding = now_held;
                        for (tenant, terminals) in &known {
                            if terminals.iter().any(|t| taken.contains(&t.get())) {
                                dirty.push(*tenant);
                            }
                        }
                    }
                    Err(e) => {
                        // Leases not renewed expire: stop everything rather than risk
                        // two instances on one terminal.
                        tracing::warn!(error = %e, "terminal leases could not be renewed; stopping their tasks");
                        for ((t, id), task) in running.drain() {
                            task.stop.cancel();
                            board.remove(t, id);
                        }
                        holding.clear();
                    }
                }
            }
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
