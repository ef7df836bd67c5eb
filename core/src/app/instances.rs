//! Several instances on one database: what keeps an instance's memory true to the store
//! when others write to it too.
//!
//! - The **change feed**: every commit of records moves its tenant's revision in the store
//!   ([`crate::store::Store::changed_tenants`]); an instance polls for tenants whose
//!   revision moved past the one its snapshot was built at and reads those snapshots again
//!   (dropping the caches derived from them and nudging the sync engine as a local change
//!   does). Its own writes move the revision it holds with the commit, so they cause no
//!   reload. A changed tenant this instance has never read is told to the sync engine all
//!   the same: some of its terminals may be leased here.
//! - The **relay**: access events reach the live streams ([`Core::subscribe`]) from the
//!   store, read across tenants by id after a cursor, woken at once by a local commit and
//!   by the poll interval for other instances' – every instance streams every event once,
//!   in id order.
//!
//! A core that never starts them ([`Core::start_instance`]) streams its own events
//! directly, as a single instance on its own database may.

use std::sync::PoisonError;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::snapshots::load_fresh;
use super::{Core, StreamedEvent, blocking};
use crate::domain::{Snapshot, TenantId};
use crate::error::AppError;
use crate::store::Store;

/// How an instance follows the store.
#[derive(Debug, Clone)]
pub struct InstanceOptions {
    /// How often the store is polled for other instances' changes and access events.
    pub poll: Duration,
    /// How long the instance's heartbeat lasts unless renewed (renewed every fifth of
    /// it): outbox messages claimed by an instance whose heartbeat ran out are due again.
    pub heartbeat_ttl: Duration,
}

impl Default for InstanceOptions {
    fn default() -> Self {
        InstanceOptions {
            poll: Duration::from_millis(250),
            heartbeat_ttl: Duration::from_secs(10),
        }
    }
}

/// Access events the relay reads per round.
const RELAY_BATCH: usize = 500;

/// A default instance id: the host name, the process id and a random suffix.
pub fn default_instance_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// The running change feed and relay of an instance; stopped when dropped.
#[derive(Debug)]
pub struct Instance {
    stop: CancellationToken,
    tasks: tokio_util::task::TaskTracker,
}

impl Instance {
    /// Stops the feed and the relay and waits for them.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Core {
    /// This instance's id (leases and outbox claims are held under it).
    pub fn instance_id(&self) -> String {
        self.inner
            .instance
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Names this instance (`--instance-id`); before anything runs under the id.
    pub fn set_instance_id(&self, id: &str) {
        id.clone_into(
            &mut self
                .inner
                .instance
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
    }

    /// Whether this core shares its database with other instances (it follows the store:
    /// [`Core::start_instance`]); what is shared then lives in the store.
    pub fn is_shared(&self) -> bool {
        self.inner.relayed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Starts following the store: the change feed and the relay of access events.
    pub async fn start_instance(&self, options: InstanceOptions) -> Result<Instance, AppError> {
        let store = self.inner.store.clone();
        let (name, ttl) = (self.instance_id(), options.heartbeat_ttl);
        let (events, feed) = blocking(move || {
            store.heartbeat(&name, ttl)?;
            let feed = store.changed_tenants(0)?;
            Ok((store.last_access_event_id()?, feed))
        })
        .await?;
        // Events committed from here on are relayed (an event committed between the cursor
        // and this switch is streamed twice rather than never).
        self.inner
            .relayed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let stop = CancellationToken::new();
        let tasks = tokio_util::task::TaskTracker::new();
        let seq = feed.iter().map(|r| r.seq).max().unwrap_or(0);
        for row in feed {
            self.refresh(TenantId::new(row.tenant_id), row.revision)
                .await;
        }
        tasks.spawn(follow(self.clone(), options.clone(), seq, stop.clone()));
        tasks.spawn(relay(self.clone(), options.poll, events, stop.clone()));
        Ok(Instance { stop, tasks })
    }

    /// Reads the tenant's snapshot again if it is in memory and older than `revision`.
    /// Whether it was read again.
    pub async fn refresh(&self, tenant: TenantId, revision: u64) -> bool {
        let cell = self
            .inner
            .cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&tenant)
            .cloned();
        let Some(cell) = cell else { return false };
        if self.held(tenant).is_some_and(|held| held >= revision) {
            return false;
        }
        let mut guard = cell.write_owned().await;
        if self.held(tenant).is_some_and(|held| held >= revision) {
            return false;
        }
        let core = self.clone();
        let reloaded = blocking(move || {
            let store = core.inner.store.clone();
            core.reload_held(tenant, &mut guard, &*store)
        })
        .await;
        match reloaded {
            Ok(()) => {
                self.after_reload(tenant);
                true
            }
            Err(e) => {
                tracing::warn!(%tenant, detail = %e.detail, "reading a changed tenant again failed; retrying at the next poll");
                false
            }
        }
    }

    /// Whether the tenant's snapshot is in memory.
    fn has_snapshot(&self, tenant: TenantId) -> bool {
        self.inner
            .cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&tenant)
    }

    /// Replaces `snapshot` (the tenant's, under its write lock) by the store's and drops
    /// what was derived from the old one.
    pub(super) fn reload_held(
        &self,
        tenant: TenantId,
        snapshot: &mut Snapshot,
        store: &dyn Store,
    ) -> Result<(), AppError> {
        let (fresh, revision) = load_fresh(store, snapshot.tenant.clone(), Some(snapshot))?;
        *snapshot = fresh;
        self.set_held(tenant, Some(revision));
        self.inner
            .lookups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&tenant);
        self.inner
            .webhook_tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&tenant.get());
        self.inner
            .devices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, (t, terminal)| {
                *t != tenant || snapshot.topology.terminals.contains_key(terminal)
            });
        // Under the tenant's lock, as a local write moves it.
        self.inner
            .revision
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// After a snapshot was read again: whatever watches the tenant looks again.
    pub(super) fn after_reload(&self, tenant: TenantId) {
        let _ = self.inner.changes.send(tenant);
    }
}

/// The change feed: polls for tenants changed by any instance and reads the stale ones
/// again; renews the instance's heartbeat on the way.
async fn follow(core: Core, options: InstanceOptions, mut seq: u64, stop: CancellationToken) {
    let mut beaten = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(options.poll) => {}
        }
        let store = core.inner.store.clone();
        let after = seq;
        let beat = (beaten.elapsed() >= options.heartbeat_ttl / 5).then(|| {
            beaten = tokio::time::Instant::now();
            (core.instance_id(), options.heartbeat_ttl)
        });
        let polled = blocking(move || {
            if let Some((name, ttl)) = beat {
                store.heartbeat(&name, ttl)?;
            }
            Ok(store.changed_tenants(after)?)
        })
        .await;
        match polled {
            Ok(rows) => {
                for row in rows {
                    seq = seq.max(row.seq);
                    // Webhook endpoints may have changed without the revision moving.
                    core.inner
                        .webhook_tenants
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&row.tenant_id);
                    let tenant = TenantId::new(row.tenant_id);
                    if !core.refresh(tenant, row.revision).await && !core.has_snapshot(tenant) {
                        // A tenant this instance has never read (created, or only ever
                        // written, elsewhere): its terminals may still be this instance's
                        // to sync, so the sync engine hears of it as of a local change.
                        let _ = core.inner.changes.send(tenant);
                    }
                }
            }
            Err(e) => tracing::warn!(detail = %e.detail, "polling the change feed failed"),
        }
    }
}

/// The relay: streams every access event committed by any instance, once, by id.
async fn relay(core: Core, poll: Duration, mut cursor: u64, stop: CancellationToken) {
    loop {
        loop {
            let store = core.inner.store.clone();
            let after = cursor;
            let rows =
                match blocking(move || Ok(store.access_events_after(after, RELAY_BATCH)?)).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        tracing::warn!(detail = %e.detail, "reading access events to relay failed");
                        break;
                    }
                };
            let full = rows.len() == RELAY_BATCH;
            for (tenant, event) in rows {
                cursor = cursor.max(event.id);
                let _ = core.inner.events.send(StreamedEvent {
                    tenant: TenantId::new(tenant),
                    event,
                });
            }
            if !full {
                break;
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = core.inner.relay.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
}
