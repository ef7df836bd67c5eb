//! Terminal leases, when several instances share the database: each round renews what
//! this instance holds (a lease it lost is dropped at once), records its heartbeat,
//! takes free or expired leases up to its share – `ceil(terminals / live instances)` plus
//! a slack – and gives back what exceeds it, so that a newly started instance gets its
//! share and a dead one's terminals are taken over once their leases expire.
//!
//! Taking leases one by one is bounded in time within a round (a quarter of the lease's
//! lifetime): an instance facing thousands of free terminals takes what it can, renews
//! everything it holds at the next round and goes on, so that the first leases it took
//! never lapse while it is still taking the last.

use std::collections::BTreeSet;

use super::LeaseOptions;
use crate::app::Core;
use crate::store::StoreError;

/// One round of leasing: the leases this instance holds now, and those beyond its share,
/// which it must give back ([`release`]) once their tasks have stopped – so that the next
/// holder never overlaps a step still in flight here.
pub(super) async fn balance(
    core: &Core,
    options: &LeaseOptions,
    known: Vec<u64>,
) -> Result<(BTreeSet<u64>, Vec<u64>), StoreError> {
    let store = core.store().clone();
    let instance = core.instance_id();
    let options = options.clone();
    tokio::task::spawn_blocking(move || {
        let live = store.heartbeat(&instance, options.ttl)?;
        let mut held: BTreeSet<u64> = store
            .renew_leases(&instance, options.ttl)?
            .into_iter()
            .collect();
        let renewed_at = std::time::Instant::now();
        let share = known.len().div_ceil(live.max(1)) + options.slack;
        // Leases of terminals that are gone are given back.
        let known_set: BTreeSet<u64> = known.iter().copied().collect();
        let gone: Vec<u64> = held.difference(&known_set).copied().collect();
        if !gone.is_empty() {
            store.release_leases(&instance, Some(&gone))?;
            for terminal in &gone {
                held.remove(terminal);
            }
        }
        let mut surplus = Vec::new();
        if held.len() > share {
            surplus = held
                .iter()
                .rev()
                .take(held.len() - share)
                .copied()
                .collect();
            for terminal in &surplus {
                held.remove(terminal);
            }
        }
        // Instances try the terminals in different orders, so that they rarely contend.
        let mut candidates: Vec<u64> = known.into_iter().filter(|t| !held.contains(t)).collect();
        let offset = if candidates.is_empty() {
            0
        } else {
            rand::random_range(0..candidates.len())
        };
        candidates.rotate_left(offset);
        for terminal in candidates {
            if held.len() >= share || renewed_at.elapsed() > options.ttl / 4 {
                break;
            }
            if store.acquire_lease(terminal, &instance, options.ttl)? {
                held.insert(terminal);
            }
        }
        Ok((held, surplus))
    })
    .await
    .unwrap_or_else(|e| Err(StoreError::Corrupt(format!("lease task failed: {e}"))))
}

/// Gives back the leases of `terminals` (their tasks have stopped).
pub(super) async fn release(core: &Core, terminals: Vec<u64>) {
    let store = core.store().clone();
    let instance = core.instance_id();
    let released =
        tokio::task::spawn_blocking(move || store.release_leases(&instance, Some(&terminals)))
            .await;
    if !matches!(released, Ok(Ok(()))) {
        tracing::warn!("terminal leases could not be given back; they expire instead");
    }
}

/// Gives back every lease this instance holds (a graceful shutdown).
pub(super) async fn release_all(core: &Core) {
    let store = core.store().clone();
    let instance = core.instance_id();
    let released = tokio::task::spawn_blocking(move || store.release_leases(&instance, None)).await;
    if !matches!(released, Ok(Ok(()))) {
        tracing::warn!("the terminal leases could not be given back; they expire instead");
    }
}
