//! The tenants' snapshots: loading one from the store on first use, reading it, and the
//! single way to change it ([`Core::write`], [`Core::append`]); committed access events
//! are streamed to subscribers; the decision indexes are cached per revision.

use std::sync::{Arc, PoisonError};

use tokio::sync::RwLock;

use super::{Caller, Cell, Core, Plan, Subject, blocking};
use crate::domain::{Snapshot, Tenant, TenantId};
use crate::store::Store;

/// How many times a write runs when other instances keep changing its tenant.
pub(crate) const WRITE_ATTEMPTS: usize = 5;

/// Reads the tenant afresh: its stored revision first, then its records (a commit in
/// between makes the snapshot newer than the revision, which only costs a reload later).
/// `lockdowns` carries the doors locked down in memory over from the snapshot replaced.
pub(super) fn load_fresh(
    store: &dyn Store,
    tenant: Tenant,
    lockdowns: Option<&Snapshot>,
) -> Result<(Snapshot, u64), AppError> {
    let revision = store.tenant_revision(tenant.id.get())?;
    let mut snapshot = Snapshot::new(tenant);
    if let Some(old) = lockdowns {
        snapshot.locked_down_doors = old.locked_down_doors.clone();
    }
    crate::residency::load(store, &mut snapshot)?;
    Ok((snapshot, revision))
}
use crate::error::AppError;
use crate::residency::Host;
use crate::store::{AccessEventRow, NewAccessEvent};

/// An access event as streams see it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamedEvent {
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// The stored event.
    pub event: AccessEventRow,
}

impl Core {
    async fn cell(&self, tenant: TenantId) -> Result<Cell, AppError> {
        if let Some(cell) = self
            .inner
            .cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&tenant)
        {
            return Ok(cell.clone());
        }
        let store = self.inner.store.clone();
        let (snapshot, revision) = blocking(move || {
            let row = store
                .tenants()?
                .into_iter()
                .find(|t| t.id == tenant.get())
                .ok_or_else(|| AppError::not_found("tenant", tenant))?;
            let mut domain = Tenant::new(tenant, &row.name)?;
            domain.active = row.active;
            load_fresh(&*store, domain, None)
        })
        .await?;
        let mut cells = self
            .inner
            .cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(match cells.entry(tenant) {
            std::collections::hash_map::Entry::Occupied(held) => held.get().clone(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                self.set_held(tenant, Some(revision));
                slot.insert(Arc::new(RwLock::new(snapshot))).clone()
            }
        })
    }

    /// Notes the stored revision the tenant's snapshot was built at (`None`: unknown).
    pub(super) fn set_held(&self, tenant: TenantId, revision: Option<u64>) {
        let mut held = self
            .inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match revision {
            Some(r) => held.insert(tenant, r),
            None => held.remove(&tenant),
        };
    }

    /// The stored revision the tenant's snapshot was built at, if it is in memory.
    pub(super) fn held(&self, tenant: TenantId) -> Option<u64> {
        self.inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&tenant)
            .copied()
    }

    /// Reads the tenant's snapshot.
    pub async fn read<R>(
        &self,
        tenant: TenantId,
        f: impl FnOnce(&Snapshot) -> R,
    ) -> Result<R, AppError> {
        self.read_about(tenant, Vec::new(), f).await
    }

    /// Reads the tenant's snapshot with the people `subjects` belong to in it: filed people
    /// are read from the store for this read (under the tenant's write lock, as they
    /// change the snapshot while they visit) and filed again after it.
    pub async fn read_about<R>(
        &self,
        tenant: TenantId,
        subjects: Vec<Subject>,
        f: impl FnOnce(&Snapshot) -> R,
    ) -> Result<R, AppError> {
        let cell = self.cell(tenant).await?;
        {
            let snapshot = cell.read().await;
            if subjects.iter().all(|s| s.is_held(&snapshot, None)) {
                return Ok(f(&snapshot));
            }
        }
        let mut host = Host::new(cell.write_owned().await);
        let store = self.inner.store.clone();
        let host = blocking(move || {
            host.visit(&*store, &subjects)?;
            Ok(host)
        })
        .await?;
        Ok(f(&host))
    }

    /// Reads the tenant's snapshot on the blocking pool: for reads that take long enough
    /// (a terminal's whole image) to hold up the requests sharing the async workers.
    pub async fn read_blocking<R: Send + 'static>(
        &self,
        tenant: TenantId,
        f: impl FnOnce(&Snapshot) -> R + Send + 'static,
    ) -> Result<R, AppError> {
        let cell = self.cell(tenant).await?;
        let snapshot = cell.read_owned().await;
        blocking(move || Ok(f(&snapshot))).await
    }

    /// Changes the tenant's state: `f` sees the snapshot and fills a [`Plan`] (with up to
    /// `ids` fresh record ids); the plan is committed in one transaction, then applied.
    /// Nothing changes when `f` or the commit fails.
    pub async fn write<R: Send + 'static>(
        &self,
        caller: &Caller,
        ids: usize,
        f: impl FnOnce(&Snapshot, &mut Plan) -> Result<R, AppError> + Clone + Send + 'static,
    ) -> Result<R, AppError> {
        self.write_about(caller, Vec::new(), ids, f).await
    }

    /// [`Core::write`] with the people `subjects` belong to in the snapshot `f` sees
    /// (filed people visit for the write). Once applied, the snapshot holds exactly the
    /// entitled people again ([`crate::residency::settle`]).
    ///
    /// The commit succeeds only at the stored revision the snapshot was built at: when
    /// another instance changed the tenant in between, the snapshot is read again and the
    /// write runs again on it, up to [`WRITE_ATTEMPTS`] times.
    pub async fn write_about<R: Send + 'static>(
        &self,
        caller: &Caller,
        subjects: Vec<Subject>,
        ids: usize,
        f: impl FnOnce(&Snapshot, &mut Plan) -> Result<R, AppError> + Clone + Send + 'static,
    ) -> Result<R, AppError> {
        for attempt in 1..=WRITE_ATTEMPTS {
            match self
                .write_once(caller, subjects.clone(), ids, f.clone())
                .await?
            {
                Some(result) => return Ok(result),
                None => {
                    tracing::debug!(tenant = %caller.tenant, attempt, "the tenant changed on another instance; writing again");
                }
            }
        }
        Err(AppError::conflict(
            None,
            "the tenant kept changing concurrently; try again",
        ))
    }

    /// One attempt of [`Core::write_about`]: `None` when the snapshot was stale (it has
    /// been read again by then).
    async fn write_once<R: Send + 'static>(
        &self,
        caller: &Caller,
        subjects: Vec<Subject>,
        ids: usize,
        f: impl FnOnce(&Snapshot, &mut Plan) -> Result<R, AppError> + Send + 'static,
    ) -> Result<Option<R>, AppError> {
        let cell = self.cell(caller.tenant).await?;
        let mut snapshot = Host::new(cell.write_owned().await);
        let store = self.inner.store.clone();
        let tenant = caller.tenant;
        let actor = caller.key_prefix.clone();
        let inner = self.inner.clone();
        let core = self.clone();
        let reloaded = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reloaded_here = reloaded.clone();
        let outcome = blocking(move || {
            // Validated against the newest state: another instance's commit since the
            // snapshot was built is read in first (the commit checks again).
            let mut expected = core.held(tenant);
            if expected != Some(store.tenant_revision(tenant.get())?) {
                core.reload_held(tenant, &mut snapshot, &*store)?;
                expected = core.held(tenant);
                reloaded_here.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            // Until the commit, a failure leaves nothing applied, and dropping the host
            // files the visitors. A decision's lookup at this revision, built here, is the
            // one the decision then uses.
            let lookup = subjects
                .iter()
                .any(|s| matches!(s, Subject::Presented(_)))
                .then(|| core.lookup(tenant, &snapshot));
            crate::residency::summon(&*store, tenant, &mut snapshot, lookup.as_deref(), &subjects)?;
            let mut plan = Plan {
                ids: if ids == 0 {
                    Vec::new()
                } else {
                    store.allocate_ids(ids)?.into_iter().rev().collect()
                },
                ..Plan::default()
            };
            let result = f(&snapshot, &mut plan)?;
            for entry in &mut plan.change.audit {
                entry.actor.clone_from(&actor);
            }
            let before = crate::residency::named_before(&snapshot, &plan.change.writes);
            let written = crate::residency::written_records(&plan.change.writes);
            let events = plan.change.access_events.clone();
            core.prepare_webhook_events(tenant, &mut plan)?;
            let messages =
                !plan.change.messages.is_empty() || !plan.change.webhook_events.is_empty();
            plan.change.expected_revision = expected;
            let moves = plan.change.moves_revision();
            let event_ids = match store.commit(tenant.get(), plan.change) {
                Ok(ids) => ids,
                Err(crate::store::StoreError::Stale { .. }) => {
                    core.reload_held(tenant, &mut snapshot, &*store)?;
                    reloaded_here.store(true, std::sync::atomic::Ordering::SeqCst);
                    return Ok(Err(()));
                }
                Err(e) => return Err(e.into()),
            };
            if moves && let Some(expected) = expected {
                core.set_held(tenant, Some(expected + 1));
            }
            let records = !written.is_empty();
            for apply in plan.apply {
                apply(&mut snapshot);
            }
            // The change is committed. Should reading a newly entitled person back fail, the
            // snapshot is read again from the store, which holds the change; should that
            // fail too, the tenant is read afresh by the next call.
            if let Err(e) =
                crate::residency::settle(&*store, tenant, &mut snapshot, before, &written)
            {
                tracing::error!(detail = %e.detail, "settling the snapshot after a write failed");
                if let Err(e) = core.reload_held(tenant, &mut snapshot, &*store) {
                    tracing::error!(detail = %e.detail, "reading the tenant again failed");
                    inner
                        .cells
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&tenant);
                    core.set_held(tenant, None);
                }
            }
            // Only a change of records can change what a terminal must hold: a write that
            // only appends access events (hundreds a second from the terminals) wakes no
            // sync pass. The revision moves while the tenant is still locked, so a revision
            // read under the tenant's lock names exactly the snapshot it sees.
            if records {
                inner
                    .revision
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            drop(snapshot);
            Ok(Ok((result, event_ids, events, messages, records)))
        })
        .await;
        // Whatever became of the write, a snapshot read again is news to the watchers.
        if reloaded.load(std::sync::atomic::Ordering::SeqCst) {
            self.after_reload(tenant);
        }
        let Ok((result, event_ids, events, messages, records)) = outcome? else {
            return Ok(None);
        };
        if messages {
            self.inner.outbox.notify_one();
        }
        if records {
            let _ = self.inner.changes.send(tenant);
        }
        self.stream(tenant, event_ids, events);
        Ok(Some(result))
    }

    /// Wakes the outbox's delivery task (a change appended messages to it).
    pub fn outbox_changed(&self) {
        self.inner.outbox.notify_one();
    }

    /// Hands committed access events (with the ids the store gave them) to the event
    /// stream's subscribers; nobody listening is fine.
    fn stream(&self, tenant: TenantId, ids: Vec<u64>, events: Vec<NewAccessEvent>) {
        if self.inner.relayed.load(std::sync::atomic::Ordering::SeqCst) {
            // The relay streams every instance's events from the store, in id order.
            if !ids.is_empty() {
                self.inner.relay.notify_one();
            }
            return;
        }
        for (id, event) in ids.into_iter().zip(events) {
            let _ = self.inner.events.send(StreamedEvent {
                tenant,
                event: AccessEventRow {
                    id,
                    occurred_at: event.occurred_at,
                    data: event.data,
                },
            });
        }
    }

    /// Appends access events (with the idempotency reply that keeps each one once) without
    /// changing any record: `f` sees the snapshot under a read lock, so the hundreds of
    /// events a second that terminals stream never hold up the integrator's reads. A plan
    /// that puts or deletes records is refused (use [`Core::write`]).
    pub async fn append<R: Send + 'static>(
        &self,
        caller: &Caller,
        f: impl FnOnce(&Snapshot, &mut Plan) -> Result<R, AppError> + Clone + Send + 'static,
    ) -> Result<R, AppError> {
        self.append_about(caller, Vec::new(), f).await
    }

    /// [`Core::append`] with the people `subjects` belong to in the snapshot `f` sees; when
    /// one is filed, the append runs as a write so that they can visit.
    pub async fn append_about<R: Send + 'static>(
        &self,
        caller: &Caller,
        subjects: Vec<Subject>,
        f: impl FnOnce(&Snapshot, &mut Plan) -> Result<R, AppError> + Clone + Send + 'static,
    ) -> Result<R, AppError> {
        let cell = self.cell(caller.tenant).await?;
        // The guard that saw the subjects held is the one the append runs under: no write
        // can file them in between.
        let snapshot = cell.read_owned().await;
        if !subjects.iter().all(|s| s.is_held(&snapshot, None)) {
            drop(snapshot);
            return self.write_about(caller, subjects, 0, f).await;
        }
        let store = self.inner.store.clone();
        let tenant = caller.tenant;
        let core = self.clone();
        let (result, event_ids, events, messages) = blocking(move || {
            let mut plan = Plan::default();
            let result = f(&snapshot, &mut plan)?;
            if !plan.change.writes.is_empty() || !plan.apply.is_empty() {
                tracing::error!("an append tried to change records");
                return Err(AppError::internal());
            }
            let events = plan.change.access_events.clone();
            core.prepare_webhook_events(tenant, &mut plan)?;
            let messages = !plan.change.webhook_events.is_empty();
            let event_ids = store.commit(tenant.get(), plan.change)?;
            Ok((result, event_ids, events, messages))
        })
        .await?;
        if messages {
            self.inner.outbox.notify_one();
        }
        self.stream(tenant, event_ids, events);
        Ok(result)
    }

    /// The decision indexes of `snapshot`, which must be the tenant's snapshot as seen
    /// under its lock (inside [`Core::read`] or [`Core::write`]): kept per tenant for the
    /// revision, rebuilt after any change of records (the revision moves under the
    /// tenant's write lock, so under its lock it names exactly the snapshot seen).
    pub fn lookup(&self, tenant: TenantId, snapshot: &Snapshot) -> Arc<crate::domain::Lookup> {
        let revision = self.revision();
        let lookups = || {
            self.inner
                .lookups
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        if let Some((built_at, lookup)) = lookups().get(&tenant)
            && *built_at == revision
        {
            return lookup.clone();
        }
        let lookup = Arc::new(crate::domain::Lookup::of(snapshot));
        lookups().insert(tenant, (revision, lookup.clone()));
        lookup
    }
}
