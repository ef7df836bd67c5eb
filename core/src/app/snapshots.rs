//! The tenants' snapshots: loading one from the store on first use, reading it, and the
//! single way to change it ([`Core::write`] under the tenant's write turn, holding the
//! write lock only to apply unless filed people visit; [`Core::append`] and
//! [`Core::append_or_write_about`] beside the writers, under the read lock); committed
//! access events are streamed to subscribers ([`super::outgoing`]); the decision indexes
//! are cached per revision. Every commit of records expects the stored revision the
//! snapshot was built at, so a tenant changed by another instance meanwhile is read again
//! and the write runs again ([`WRITE_ATTEMPTS`]).

use std::sync::{Arc, PoisonError};

use tokio::sync::RwLock;

use super::outgoing::Held;
use super::{Caller, Cell, Core, Plan, Subject, blocking};
use crate::domain::{PersonId, Snapshot, Tenant, TenantId};
use crate::error::AppError;
use crate::residency::Host;
use crate::store::{AccessEventRow, Change, Kind, Store, StoreError};

/// How many times a write runs when other instances keep changing its tenant (about a
/// second of attempts with [`stale_backoff`] between them).
pub(crate) const WRITE_ATTEMPTS: u32 = 20;

/// The pause before attempt `attempt + 1` of a write found stale: 2 ms doubling up to
/// 64 ms, jittered down by up to half, so that instances writing one tenant at once fall
/// out of step instead of colliding again.
fn stale_backoff(attempt: u32) -> std::time::Duration {
    let full = 2_u64 << attempt.saturating_sub(1).min(5);
    let jittered = full * 1_000 - rand::random_range(0..full * 500);
    std::time::Duration::from_micros(jittered)
}

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

/// A write's plan once `f` ran, with what settling the snapshot after it needs.
struct Prepared {
    plan: Plan,
    /// The people the entitlements it writes named before it.
    before: std::collections::BTreeSet<PersonId>,
    /// The records it puts or deletes.
    written: Vec<(Kind, u64)>,
}

/// A committed write not yet applied: its access events wait for it.
struct Committed {
    prepared: Prepared,
    /// The stored revision the commit moved the tenant to, when known.
    revision: Option<u64>,
    _held: Option<Held>,
}

/// Whether writing a record of `kind` leaves the decision indexes as they were, as long
/// as settling the snapshot after it took no credential or membership out (a person,
/// phone or invitation changes neither credentials nor memberships; writing an
/// entitlement may bring people and their credentials in).
fn lookup_neutral(kind: Kind) -> bool {
    !matches!(
        kind,
        Kind::Credential | Kind::Membership | Kind::Event | Kind::Access | Kind::Group
    )
}

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
        self.catch_up(tenant).await?;
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
        self.catch_up(tenant).await?;
        let cell = self.cell(tenant).await?;
        let snapshot = cell.read_owned().await;
        blocking(move || Ok(f(&snapshot))).await
    }

    /// On a core sharing its database with other instances: reads the tenant's snapshot
    /// again first when another instance has committed past it, so that a read sees every
    /// write acknowledged before it began, whichever instance took it (a client creating a
    /// facility on one instance and a terminal in it on another is never told the
    /// facility does not exist). One look at the stored revision per read; decisions and
    /// appends do not look (they follow other instances within one poll of the feed).
    async fn catch_up(&self, tenant: TenantId) -> Result<(), AppError> {
        if !self.is_shared() {
            return Ok(());
        }
        // A tenant not in memory yet is read fresh by `cell`.
        let Some(held) = self.held(tenant) else {
            return Ok(());
        };
        let store = self.inner.store.clone();
        let stored = blocking(move || Ok(store.tenant_revision(tenant.get())?)).await?;
        if stored > held {
            self.refresh(tenant, stored).await;
        }
        Ok(())
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
    /// Writers of a tenant take turns (the tenant's write turn). A write about no filed
    /// person runs `f` and commits under the snapshot's read lock, beside readers and
    /// appends, and takes the write lock only to apply the committed change; one whose
    /// subjects may visit holds the write lock throughout, as visitors change the snapshot.
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
            let reloaded = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let outcome = self
                .write_once(caller, subjects.clone(), ids, f.clone(), reloaded.clone())
                .await;
            // Whatever became of the write, a snapshot read again is news to the watchers.
            if reloaded.load(std::sync::atomic::Ordering::SeqCst) {
                self.after_reload(caller.tenant);
            }
            if let Some(result) = outcome? {
                return Ok(result);
            }
            tracing::debug!(tenant = %caller.tenant, attempt, "the tenant changed on another instance; writing again");
            tokio::time::sleep(stale_backoff(attempt)).await;
        }
        Err(AppError::conflict(
            None,
            "the tenant kept changing concurrently; try again",
        ))
    }

    /// One attempt of [`Core::write_about`]: `None` when the snapshot was stale at the
    /// commit (it has been read again by then, and `reloaded` says so).
    async fn write_once<R: Send + 'static>(
        &self,
        caller: &Caller,
        subjects: Vec<Subject>,
        ids: usize,
        f: impl FnOnce(&Snapshot, &mut Plan) -> Result<R, AppError> + Send + 'static,
        reloaded: Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<Option<R>, AppError> {
        let cell = self.cell(caller.tenant).await?;
        let turn = self.turn(caller.tenant).lock_owned().await;
        let tenant = caller.tenant;
        let actor = caller.key_prefix.clone();
        let core = self.clone();
        let store = self.inner.store.clone();
        let reload = move |core: &Core, snapshot: &mut Host| -> Result<(), AppError> {
            core.reload_held(tenant, snapshot, &*store)?;
            reloaded.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        };
        let store = self.inner.store.clone();
        if subjects.is_empty() {
            let snapshot = cell.clone().read_owned().await;
            let runtime = tokio::runtime::Handle::current();
            // Once the blocking task has started it runs to its end, whether or not the
            // caller still waits: a committed change is always applied.
            return blocking(move || {
                let _turn = turn;
                let expected = core.held(tenant);
                if expected != Some(store.tenant_revision(tenant.get())?) {
                    // Another instance changed the tenant: read it again (under the write
                    // lock) and write on what was read.
                    drop(snapshot);
                    let mut host = Host::new(runtime.block_on(cell.write_owned()));
                    reload(&core, &mut host)?;
                    let expected = core.held(tenant);
                    let (result, prepared) = core.prepare(tenant, &actor, &host, ids, f)?;
                    let Some(committed) = core.commit_prepared(tenant, prepared, expected)? else {
                        reload(&core, &mut host)?;
                        return Ok(None);
                    };
                    core.apply(tenant, host, committed);
                    return Ok(Some(result));
                }
                let (result, prepared) = core.prepare(tenant, &actor, &snapshot, ids, f)?;
                let committed = core.commit_prepared(tenant, prepared, expected)?;
                // The change is committed (or found stale); readers see the snapshot before
                // it until it is applied under the write lock (no other writer of this
                // instance runs: this one has the turn).
                drop(snapshot);
                let mut host = Host::new(runtime.block_on(cell.write_owned()));
                let Some(committed) = committed else {
                    reload(&core, &mut host)?;
                    return Ok(None);
                };
                core.apply(tenant, host, committed);
                Ok(Some(result))
            })
            .await;
        }
        let mut snapshot = Host::new(cell.write_owned().await);
        blocking(move || {
            let _turn = turn;
            // Validated against the newest state: another instance's commit since the
            // snapshot was built is read in first (the commit checks again).
            if core.held(tenant) != Some(store.tenant_revision(tenant.get())?) {
                reload(&core, &mut snapshot)?;
            }
            let expected = core.held(tenant);
            // Until the commit, a failure leaves nothing applied, and dropping the host
            // files the visitors. A decision's lookup at this revision, built here, is the
            // one the decision then uses.
            let lookup = subjects
                .iter()
                .any(|s| matches!(s, Subject::Presented(_)))
                .then(|| core.lookup(tenant, &snapshot));
            crate::residency::summon(&*store, tenant, &mut snapshot, lookup.as_deref(), &subjects)?;
            let (result, prepared) = core.prepare(tenant, &actor, &snapshot, ids, f)?;
            let Some(committed) = core.commit_prepared(tenant, prepared, expected)? else {
                reload(&core, &mut snapshot)?;
                return Ok(None);
            };
            core.apply(tenant, snapshot, committed);
            Ok(Some(result))
        })
        .await
    }

    /// The tenant's write turn.
    fn turn(&self, tenant: TenantId) -> Arc<tokio::sync::Mutex<()>> {
        self.inner
            .turns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(tenant)
            .or_default()
            .clone()
    }

    /// Runs `f` on `snapshot` into a fresh plan (with `ids` record ids reserved), and
    /// prepares its change for the commit.
    fn prepare<R>(
        &self,
        tenant: TenantId,
        actor: &str,
        snapshot: &Snapshot,
        ids: usize,
        f: impl FnOnce(&Snapshot, &mut Plan) -> Result<R, AppError>,
    ) -> Result<(R, Prepared), AppError> {
        let mut plan = Plan {
            ids: if ids == 0 {
                Vec::new()
            } else {
                self.inner
                    .store
                    .allocate_ids(ids)?
                    .into_iter()
                    .rev()
                    .collect()
            },
            ..Plan::default()
        };
        let result = f(snapshot, &mut plan)?;
        for entry in &mut plan.change.audit {
            actor.clone_into(&mut entry.actor);
        }
        let before = crate::residency::named_before(snapshot, &plan.change.writes);
        let written = crate::residency::written_records(&plan.change.writes);
        self.prepare_webhook_events(tenant, &mut plan)?;
        Ok((
            result,
            Prepared {
                plan,
                before,
                written,
            },
        ))
    }

    /// Commits a prepared change at the stored revision `expected`; its access events
    /// reach the stream once the returned [`Committed`] is dropped, after the change is
    /// applied. `None` when the stored revision has moved on (nothing was written).
    fn commit_prepared(
        &self,
        tenant: TenantId,
        prepared: Prepared,
        expected: Option<u64>,
    ) -> Result<Option<Committed>, AppError> {
        let Prepared {
            mut plan,
            before,
            written,
        } = prepared;
        let mut change = std::mem::take(&mut plan.change);
        change.expected_revision = expected;
        let moves = change.moves_revision();
        let held = match self.commit_change(tenant, change, true) {
            Ok(held) => held,
            Err(StoreError::Stale { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let revision = expected.filter(|_| moves).map(|r| r + 1);
        if revision.is_some() {
            self.set_held(tenant, revision);
        }
        Ok(Some(Committed {
            prepared: Prepared {
                plan,
                before,
                written,
            },
            revision,
            _held: held,
        }))
    }

    /// Commits `change` and queues its access events for the stream (held back, when
    /// `held`, until the returned guard is dropped); wakes the outbox when the change
    /// appended messages. An instance sharing its database streams events through the
    /// relay instead ([`super::instances`]), which reads them back from the store.
    fn commit_change(
        &self,
        tenant: TenantId,
        change: Change,
        held: bool,
    ) -> Result<Option<Held>, StoreError> {
        let messages = !change.messages.is_empty() || !change.webhook_events.is_empty();
        let store = &*self.inner.store;
        if self.is_shared() {
            let events = !change.access_events.is_empty();
            store.commit(tenant.get(), change)?;
            if events {
                self.inner.relay.notify_one();
            }
            if messages {
                self.inner.outbox.notify_one();
            }
            return Ok(None);
        }
        let held = self.inner.outgoing.commit(&self.inner, held, || {
            let events = change.access_events.clone();
            let ids = store.commit(tenant.get(), change)?;
            Ok::<_, StoreError>(
                ids.into_iter()
                    .zip(events)
                    .map(|(id, event)| StreamedEvent {
                        tenant,
                        event: AccessEventRow {
                            id,
                            occurred_at: event.occurred_at,
                            data: event.data,
                        },
                    })
                    .collect(),
            )
        })?;
        if messages {
            self.inner.outbox.notify_one();
        }
        Ok(held)
    }

    /// Applies a committed change to the tenant's snapshot (under its write lock), settles
    /// who the snapshot holds, moves the revision when records changed, and tells those
    /// watching the tenant.
    fn apply(&self, tenant: TenantId, mut snapshot: Host, committed: Committed) {
        let Committed {
            prepared:
                Prepared {
                    plan,
                    before,
                    written,
                },
            revision,
            _held: unstreamed,
        } = committed;
        let records = !written.is_empty();
        // The change feed may have read the tenant again between the commit and this
        // apply (a later change of another instance): that snapshot holds the change.
        let reread = revision.is_some_and(|r| self.held(tenant).is_some_and(|held| held > r));
        if reread {
            drop(snapshot);
            drop(unstreamed);
            if records {
                let _ = self.inner.changes.send(tenant);
            }
            return;
        }
        let indexed = (snapshot.credentials.len(), snapshot.memberships.len());
        for apply in plan.apply {
            apply(&mut snapshot);
        }
        let mut reloaded = false;
        // The change is committed. Should reading a newly entitled person back fail, the
        // snapshot is read again from the store, which holds the change; should that
        // fail too, the tenant is read afresh by the next call.
        let store = &*self.inner.store;
        if let Err(e) = crate::residency::settle(store, tenant, &mut snapshot, before, &written) {
            tracing::error!(detail = %e.detail, "settling the snapshot after a write failed");
            reloaded = true;
            if let Err(e) = self.reload_held(tenant, &mut snapshot, store) {
                tracing::error!(detail = %e.detail, "reading the tenant again failed");
                self.inner
                    .cells
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&tenant);
                self.set_held(tenant, None);
            }
        }
        // Only a change of records can change what a terminal must hold: a write that
        // only appends access events (hundreds a second from the terminals) wakes no
        // sync pass. The revision moves while the tenant is still locked, so a revision
        // read under the tenant's lock names exactly the snapshot it sees.
        if records {
            let before = self
                .inner
                .revision
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let unchanged = !reloaded
                && indexed == (snapshot.credentials.len(), snapshot.memberships.len())
                && written.iter().all(|(kind, _)| lookup_neutral(*kind));
            if unchanged {
                self.carry_lookup(tenant, before);
            }
        }
        drop(snapshot);
        // The change is applied: its access events may reach the stream.
        drop(unstreamed);
        if records {
            let _ = self.inner.changes.send(tenant);
        }
    }

    /// Wakes the outbox's delivery task (a change appended messages to it).
    pub fn outbox_changed(&self) {
        self.inner.outbox.notify_one();
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
        let (core, tenant) = (self.clone(), caller.tenant);
        blocking(move || {
            let mut plan = Plan::default();
            let result = f(&snapshot, &mut plan)?;
            if !plan.change.writes.is_empty() || !plan.apply.is_empty() {
                tracing::error!("an append tried to change records");
                return Err(AppError::internal());
            }
            core.append_plan(tenant, plan)?;
            Ok(result)
        })
        .await
    }

    /// Records what `f` decides about the people of `subjects` as an append when it can:
    /// `f` runs under the snapshot's read lock, and a plan that only appends (access
    /// events, audit entries, an idempotency reply) is committed without the tenant's write
    /// turn, so decisions never wait behind writers. Should a subject be filed, or the plan
    /// change a record (a one-time credential consumed), the plan is dropped uncommitted
    /// and `f` runs again as a write ([`Core::write_about`]), deciding against the snapshot
    /// then.
    pub async fn append_or_write_about<R: Send + 'static>(
        &self,
        caller: &Caller,
        subjects: Vec<Subject>,
        f: impl Fn(&Snapshot, &mut Plan) -> Result<R, AppError> + Send + Sync + 'static,
    ) -> Result<R, AppError> {
        let cell = self.cell(caller.tenant).await?;
        let snapshot = cell.read_owned().await;
        let f = Arc::new(f);
        let (core, tenant, actor) = (self.clone(), caller.tenant, caller.key_prefix.clone());
        let (decide, about) = (Arc::clone(&f), subjects.clone());
        let appended = blocking(move || {
            // The decision's lookup at this revision, built here, is the one it then uses.
            let lookup = about
                .iter()
                .any(|s| matches!(s, Subject::Presented(_)))
                .then(|| core.lookup(tenant, &snapshot));
            if !about
                .iter()
                .all(|s| s.is_held(&snapshot, lookup.as_deref()))
            {
                return Ok(None);
            }
            let mut plan = Plan::default();
            let result = decide(&snapshot, &mut plan)?;
            if !plan.change.writes.is_empty() || !plan.apply.is_empty() {
                return Ok(None);
            }
            for entry in &mut plan.change.audit {
                entry.actor.clone_from(&actor);
            }
            core.append_plan(tenant, plan)?;
            Ok(Some(result))
        })
        .await?;
        if let Some(result) = appended {
            return Ok(result);
        }
        self.write_about(caller, subjects, 0, move |s, plan| f(s, plan))
            .await
    }

    /// Commits an append's plan (no record in it): its webhook events prepared, its access
    /// events streamed.
    fn append_plan(&self, tenant: TenantId, mut plan: Plan) -> Result<(), AppError> {
        self.prepare_webhook_events(tenant, &mut plan)?;
        self.commit_change(tenant, plan.change, false)?;
        Ok(())
    }

    /// After a write that moved the revision from `before` without changing what the
    /// tenant's decision indexes describe: the indexes built at `before` stay current.
    fn carry_lookup(&self, tenant: TenantId, before: u64) {
        if let Some((built_at, _)) = self
            .inner
            .lookups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&tenant)
            && *built_at == before
        {
            *built_at = before + 1;
        }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{WRITE_ATTEMPTS, stale_backoff};

    #[test]
    fn stale_writes_back_off_with_jitter_within_bounds() {
        for attempt in 1..=WRITE_ATTEMPTS {
            let full = Duration::from_millis(2 << (attempt - 1).min(5));
            for _ in 0..50 {
                let pause = stale_backoff(attempt);
                assert!(pause <= full && pause > full / 2, "{attempt}: {pause:?}");
            }
        }
        let total: Duration = (1..WRITE_ATTEMPTS)
            .map(|a| Duration::from_millis(2 << (a - 1).min(5)))
            .sum();
        assert!(
            total < Duration::from_secs(2),
            "{total:?} of attempts at most"
        );
    }
}
