//! The application core: one [`Snapshot`] per tenant in memory, loaded from the store on
//! first use, and the single way to change it – [`Core::write`] validates against the
//! snapshot, commits everything the change touches in one store transaction, and only then
//! applies it to memory. Readers see either the old or the new state, never half of a
//! change; writers of one tenant take turns, tenants never wait for each other.
//!
//! The snapshot holds the tenant's entitled people only ([`crate::residency`]): a call
//! about other people names them as [`Subject`]s and they visit the snapshot for it.
//!
//! Access events appended by a change are broadcast to live streams after the commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use serde_json::Value as Json;
use tokio::sync::{RwLock, broadcast};

use crate::domain::{Snapshot, Tenant, TenantId};
use crate::http::auth::{self, GeneratedKey};
use crate::http::problem::ApiProblem;
use crate::records::Stored;
use crate::residency::Host;
pub use crate::residency::Subject;
use crate::store::{
    AccessEventRow, ApiKeyRow, AuditEntry, Blob, Change, IdempotentReply, Kind, NewAccessEvent,
    Store, TenantRow, Write,
};

/// Where "now" comes from: the host clock, or a clock tests set (and whose moves wake
/// everything waiting for an instant, such as the sync engine).
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// `Timestamp::now()`.
    #[default]
    System,
    /// A fixed instant that tests move.
    Manual(Arc<tokio::sync::watch::Sender<Timestamp>>),
}

impl Clock {
    /// A manual clock starting at `at`.
    pub fn manual(at: Timestamp) -> Clock {
        Clock::Manual(Arc::new(tokio::sync::watch::channel(at).0))
    }

    /// The current instant.
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Manual(t) => *t.borrow(),
        }
    }

    /// Sets a manual clock (does nothing to the system clock).
    pub fn set(&self, at: Timestamp) {
        if let Clock::Manual(t) = self {
            t.send_replace(at);
        }
    }

    /// Waits until `at` (or until a manual clock is moved, whichever comes first: the
    /// caller re-reads the time and decides).
    pub async fn sleep_until(&self, at: Timestamp) {
        match self {
            Clock::System => {
                let wait = Timestamp::now().duration_until(at);
                let wait = std::time::Duration::try_from(wait).unwrap_or_default();
                tokio::time::sleep(wait).await;
            }
            Clock::Manual(t) => {
                let mut rx = t.subscribe();
                if *rx.borrow_and_update() >= at {
                    return;
                }
                let _ = rx.changed().await;
            }
        }
    }
}

/// Who is calling: a tenant through one of its API keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The tenant.
    pub tenant: TenantId,
    /// The key's public prefix (the audit trail's actor).
    pub key_prefix: String,
}

/// An access event as streams see it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamedEvent {
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// The stored event.
    pub event: AccessEventRow,
}

/// One change to apply to the in-memory snapshot once the store committed.
type Apply = Box<dyn FnOnce(&mut Snapshot) + Send>;

/// Everything one write changes: the store change and how to apply it to the snapshot.
#[derive(Default)]
pub struct Plan {
    change: Change,
    apply: Vec<Apply>,
    ids: Vec<u64>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("change", &self.change)
            .field("apply", &self.apply.len())
            .finish_non_exhaustive()
    }
}

impl Plan {
    /// A fresh record id (reserved from the store before the write ran).
    pub fn next_id(&mut self) -> Result<u64, ApiProblem> {
        self.ids.pop().ok_or_else(|| {
            tracing::error!("a write needed more ids than it reserved");
            ApiProblem::internal()
        })
    }

    /// Creates or replaces `entity` (and, with `blob`, its binary data).
    pub fn put<T>(&mut self, entity: T, blob: Option<Blob>)
    where
        T: Stored + InSnapshot + Send + 'static,
    {
        self.change.writes.push(Write::Put {
            kind: T::KIND,
            id: entity.record_id(),
            data: entity.to_document(),
            unique: entity.unique_keys(),
            blob,
        });
        self.apply.push(Box::new(move |s| entity.insert_into(s)));
    }

    /// Deletes the record of kind `T` with `id`.
    pub fn delete<T>(&mut self, id: u64)
    where
        T: Stored + InSnapshot,
    {
        self.change.writes.push(Write::Delete { kind: T::KIND, id });
        self.apply.push(Box::new(move |s| T::remove_from(s, id)));
    }

    /// Records `action` on a record in the audit trail.
    pub fn audit(&mut self, action: &str, kind: Kind, record_id: Option<u64>) {
        self.change.audit.push(AuditEntry {
            action: action.to_owned(),
            kind,
            record_id,
            actor: String::new(),
        });
    }

    /// Appends an access event.
    pub fn access_event(&mut self, occurred_at: Timestamp, data: Json) {
        self.change
            .access_events
            .push(NewAccessEvent { occurred_at, data });
    }

    /// Appends a message to the outbox, in the same transaction.
    pub fn message(&mut self, message: crate::store::NewMessage) {
        self.change.messages.push(message);
    }

    /// Remembers the reply of an idempotent create, in the same transaction.
    pub fn remember(&mut self, key: &Idempotency, status: u16, body: &Json) {
        self.change.idempotency = Some(IdempotentReply {
            key: key.key.clone(),
            fingerprint: key.fingerprint.clone(),
            status,
            body: body.to_string(),
        });
    }
}

/// An `Idempotency-Key` with the digest of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The key.
    pub key: String,
    /// Digest of method, path and body.
    pub fingerprint: String,
}

/// How an entity lives in a [`Snapshot`].
pub trait InSnapshot: Sized {
    /// Inserts or replaces it.
    fn insert_into(self, snapshot: &mut Snapshot);
    /// Removes the one with `id`.
    fn remove_from(snapshot: &mut Snapshot, id: u64);
}

macro_rules! in_snapshot {
    ($ty:ty, $id:ident, |$s:ident| $map:expr) => {
        impl InSnapshot for $ty {
            fn insert_into(self, $s: &mut Snapshot) {
                $map.insert(self.id, self);
            }
            fn remove_from($s: &mut Snapshot, id: u64) {
                $map.remove(&crate::domain::$id::new(id));
            }
        }
    };
}

in_snapshot!(crate::domain::Site, SiteId, |s| s.topology.sites);
in_snapshot!(crate::domain::Facility, FacilityId, |s| s
    .topology
    .facilities);
in_snapshot!(crate::domain::Door, DoorId, |s| s.topology.doors);
in_snapshot!(crate::domain::Terminal, TerminalId, |s| s
    .topology
    .terminals);
in_snapshot!(crate::domain::Person, PersonId, |s| s.people);
in_snapshot!(crate::domain::Credential, CredentialId, |s| s.credentials);
in_snapshot!(crate::domain::Phone, PhoneId, |s| s.phones);
in_snapshot!(crate::domain::Group, GroupId, |s| s.groups);
in_snapshot!(crate::domain::Schedule, ScheduleId, |s| s.schedules);
in_snapshot!(crate::domain::HolidayCalendar, HolidayCalendarId, |s| s
    .holiday_calendars);
in_snapshot!(crate::domain::Event, EventId, |s| s.events);
in_snapshot!(crate::domain::Membership, MembershipId, |s| s.memberships);
in_snapshot!(crate::domain::Access, AccessId, |s| s.accesses);
in_snapshot!(crate::domain::Invitation, InvitationId, |s| s.invitations);

type Cell = Arc<RwLock<Snapshot>>;

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    cells: Mutex<HashMap<TenantId, Cell>>,
    events: broadcast::Sender<StreamedEvent>,
    changes: broadcast::Sender<TenantId>,
    clock: Clock,
    devices: Mutex<HashMap<i64, (TenantId, crate::domain::TerminalId)>>,
    enrollments: crate::enroll::Enrollments,
    sync: crate::sync::StatusBoard,
    revision: std::sync::atomic::AtomicU64,
    outbox: tokio::sync::Notify,
    public_url: Mutex<String>,
    public_limits: crate::http::rate_limit::RateLimiter,
    keys_in_use: Mutex<std::collections::HashSet<u64>>,
    /// Each tenant's decision indexes, with the revision of the snapshot they describe.
    lookups: Mutex<HashMap<TenantId, (u64, Arc<crate::domain::Lookup>)>>,
}

/// A credential in use, released when dropped ([`Core::key_in_use`]).
#[derive(Debug)]
pub struct KeyInUse {
    core: Core,
    id: u64,
}

impl Drop for KeyInUse {
    fn drop(&mut self) {
        self.core
            .inner
            .keys_in_use
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// The access-control core; clones share it.
#[derive(Debug, Clone)]
pub struct Core {
    inner: Arc<Inner>,
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, ApiProblem> + Send + 'static,
) -> Result<R, ApiProblem> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "store task failed");
        Err(ApiProblem::internal())
    })
}

impl Core {
    /// A core over `store`, on the host clock.
    pub fn new(store: Arc<dyn Store>) -> Core {
        Core::with_clock(store, Clock::System)
    }

    /// A core over `store` on `clock`.
    pub fn with_clock(store: Arc<dyn Store>, clock: Clock) -> Core {
        Core {
            inner: Arc::new(Inner {
                store,
                cells: Mutex::new(HashMap::new()),
                events: broadcast::channel(1024).0,
                changes: broadcast::channel(1024).0,
                clock,
                devices: Mutex::new(HashMap::new()),
                enrollments: crate::enroll::Enrollments::default(),
                sync: crate::sync::StatusBoard::default(),
                revision: std::sync::atomic::AtomicU64::new(0),
                outbox: tokio::sync::Notify::new(),
                public_url: Mutex::new("http://localhost".to_owned()),
                public_limits: crate::http::rate_limit::RateLimiter::default(),
                keys_in_use: Mutex::default(),
                lookups: Mutex::default(),
            }),
        }
    }

    /// The current instant.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Sets the base URL people's links start with (`https://acs.example.com`).
    pub fn set_public_url(&self, url: &str) {
        *self
            .inner
            .public_url
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = url.trim_end_matches('/').to_owned();
    }

    /// The base URL of links sent to people.
    pub fn public_url(&self) -> String {
        self.inner
            .public_url
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Marks the credential `id` as being used (a cloud key opening a door) until the
    /// guard is dropped; `None` while another use is in flight.
    pub fn key_in_use(&self, id: u64) -> Option<KeyInUse> {
        self.inner
            .keys_in_use
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id)
            .then(|| KeyInUse {
                core: self.clone(),
                id,
            })
    }

    /// The rate limits of the public endpoints.
    pub fn public_limits(&self) -> &crate::http::rate_limit::RateLimiter {
        &self.inner.public_limits
    }

    /// Waits until a committed write appends a message to the outbox (a write made while
    /// nobody waits is remembered for the next wait).
    pub async fn outbox_appended(&self) {
        self.inner.outbox.notified().await;
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Records which terminal a device id belongs to (the sync engine learns it from the
    /// device's `system_information`; the receiver only hears registered devices).
    pub fn register_device(
        &self,
        device_id: i64,
        tenant: TenantId,
        terminal: crate::domain::TerminalId,
    ) {
        self.inner
            .devices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(device_id, (tenant, terminal));
    }

    /// The terminal a device id belongs to.
    pub fn device_owner(&self, device_id: i64) -> Option<(TenantId, crate::domain::TerminalId)> {
        self.inner
            .devices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&device_id)
            .copied()
    }

    /// Every terminal's sync status (written by the sync engine).
    pub fn sync_board(&self) -> &crate::sync::StatusBoard {
        &self.inner.sync
    }

    /// Enrollments on terminals.
    pub fn enrollments(&self) -> &crate::enroll::Enrollments {
        &self.inner.enrollments
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Creates a tenant with a first API key (the secret is returned once).
    pub async fn create_tenant(
        &self,
        slug: &str,
        name: &str,
    ) -> Result<(TenantRow, GeneratedKey), ApiProblem> {
        Tenant::new(TenantId::new(0), name)?;
        let slug = slug.trim().to_owned();
        if slug.is_empty()
            || slug.len() > 64
            || !slug
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ApiProblem::invalid(
                "slug",
                "slug must be 1 to 64 letters, digits, '-' or '_'",
            ));
        }
        let store = self.inner.store.clone();
        let name = name.to_owned();
        let created = blocking(move || {
            let tenant = store.create_tenant(&slug, &name)?;
            let key = auth::generate();
            store.insert_api_key(tenant.id, "initial", &key.prefix, &key.hash)?;
            Ok((tenant, key))
        })
        .await?;
        let _ = self.inner.changes.send(TenantId::new(created.0.id));
        Ok(created)
    }

    /// Issues another API key for the tenant (rotation: issue, switch, revoke the old).
    pub async fn issue_api_key(
        &self,
        tenant: TenantId,
        label: &str,
    ) -> Result<(ApiKeyRow, GeneratedKey), ApiProblem> {
        let store = self.inner.store.clone();
        let label = label.to_owned();
        blocking(move || {
            let key = auth::generate();
            let row = store.insert_api_key(tenant.get(), &label, &key.prefix, &key.hash)?;
            Ok((row, key))
        })
        .await
    }

    /// The tenant's API keys.
    pub async fn api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKeyRow>, ApiProblem> {
        let store = self.inner.store.clone();
        blocking(move || Ok(store.api_keys(tenant.get())?)).await
    }

    /// Revokes one of the tenant's keys.
    pub async fn revoke_api_key(&self, tenant: TenantId, key_id: u64) -> Result<(), ApiProblem> {
        let store = self.inner.store.clone();
        let revoked = blocking(move || Ok(store.revoke_api_key(tenant.get(), key_id)?)).await?;
        if revoked {
            Ok(())
        } else {
            Err(ApiProblem::not_found("api key", key_id))
        }
    }

    /// The caller behind an API key, if the key is known and not revoked.
    pub async fn authenticate(&self, key: &str) -> Result<Option<Caller>, ApiProblem> {
        let store = self.inner.store.clone();
        let hash = auth::digest(key);
        let row = blocking(move || Ok(store.api_key_by_hash(&hash)?)).await?;
        Ok(row.map(|row| Caller {
            tenant: TenantId::new(row.tenant_id),
            key_prefix: row.prefix,
        }))
    }

    async fn cell(&self, tenant: TenantId) -> Result<Cell, ApiProblem> {
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
        let snapshot = blocking(move || {
            let row = store
                .tenants()?
                .into_iter()
                .find(|t| t.id == tenant.get())
                .ok_or_else(|| ApiProblem::not_found("tenant", tenant))?;
            let mut domain = Tenant::new(tenant, &row.name)?;
            domain.active = row.active;
            let mut snapshot = Snapshot::new(domain);
            crate::residency::load(&*store, &mut snapshot)?;
            Ok(snapshot)
        })
        .await?;
        let mut cells = self
            .inner
            .cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(cells
            .entry(tenant)
            .or_insert_with(|| Arc::new(RwLock::new(snapshot)))
            .clone())
    }

    /// Reads the tenant's snapshot.
    pub async fn read<R>(
        &self,
        tenant: TenantId,
        f: impl FnOnce(&Snapshot) -> R,
    ) -> Result<R, ApiProblem> {
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
    ) -> Result<R, ApiProblem> {
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
    ) -> Result<R, ApiProblem> {
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
        f: impl FnOnce(&Snapshot, &mut Plan) -> Result<R, ApiProblem> + Send + 'static,
    ) -> Result<R, ApiProblem> {
        self.write_about(caller, Vec::new(), ids, f).await
    }

    /// [`Core::write`] with the people `subjects` belong to in the snapshot `f` sees
    /// (filed people visit for the write). Once applied, the snapshot holds exactly the
    /// entitled people again ([`crate::residency::settle`]).
    pub async fn write_about<R: Send + 'static>(
        &self,
        caller: &Caller,
        subjects: Vec<Subject>,
        ids: usize,
        f: impl FnOnce(&Snapshot, &mut Plan) -> Result<R, ApiProblem> + Send + 'static,
    ) -> Result<R, ApiProblem> {
        let cell = self.cell(caller.tenant).await?;
        let mut snapshot = Host::new(cell.write_owned().await);
        let store = self.inner.store.clone();
        let tenant = caller.tenant;
        let actor = caller.key_prefix.clone();
        let inner = self.inner.clone();
        let core = self.clone();
        let (result, event_ids, events, messages, records) = blocking(move || {
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
            let messages = !plan.change.messages.is_empty();
            let event_ids = store.commit(tenant.get(), plan.change)?;
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
                let mut fresh = Snapshot::new(snapshot.tenant.clone());
                fresh.locked_down_doors = snapshot.locked_down_doors.clone();
                match crate::residency::load(&*store, &mut fresh) {
                    Ok(()) => *snapshot = fresh,
                    Err(e) => {
                        tracing::error!(detail = %e.detail, "reading the tenant again failed");
                        inner
                            .cells
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&tenant);
                    }
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
            Ok((result, event_ids, events, messages, records))
        })
        .await?;
        if messages {
            self.inner.outbox.notify_one();
        }
        if records {
            let _ = self.inner.changes.send(tenant);
        }
        self.stream(tenant, event_ids, events);
        Ok(result)
    }

    /// Hands committed access events (with the ids the store gave them) to the event
    /// stream's subscribers; nobody listening is fine.
    fn stream(&self, tenant: TenantId, ids: Vec<u64>, events: Vec<NewAccessEvent>) {
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
        f: impl FnOnce(&Snapshot, &mut Plan) -> Result<R, ApiProblem> + Send + 'static,
    ) -> Result<R, ApiProblem> {
        self.append_about(caller, Vec::new(), f).await
    }

    /// [`Core::append`] with the people `subjects` belong to in the snapshot `f` sees; when
    /// one is filed, the append runs as a write so that they can visit.
    pub async fn append_about<R: Send + 'static>(
        &self,
        caller: &Caller,
        subjects: Vec<Subject>,
        f: impl FnOnce(&Snapshot, &mut Plan) -> Result<R, ApiProblem> + Send + 'static,
    ) -> Result<R, ApiProblem> {
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
        let (result, event_ids, events) = blocking(move || {
            let mut plan = Plan::default();
            let result = f(&snapshot, &mut plan)?;
            if !plan.change.writes.is_empty() || !plan.apply.is_empty() {
                tracing::error!("an append tried to change records");
                return Err(ApiProblem::internal());
            }
            let events = plan.change.access_events.clone();
            let event_ids = store.commit(tenant.get(), plan.change)?;
            Ok((result, event_ids, events))
        })
        .await?;
        self.stream(tenant, event_ids, events);
        Ok(result)
    }

    /// The stored reply of an earlier create with this idempotency key.
    pub async fn idempotent_reply(
        &self,
        tenant: TenantId,
        key: &str,
    ) -> Result<Option<IdempotentReply>, ApiProblem> {
        let store = self.inner.store.clone();
        let key = key.to_owned();
        blocking(move || Ok(store.idempotent_reply(tenant.get(), &key)?)).await
    }

    /// Up to `limit` stored records of `kind` with an id above `after`, by id: for lists
    /// of what the snapshot does not hold in full (people).
    pub async fn stored_page(
        &self,
        tenant: TenantId,
        kind: Kind,
        after: u64,
        limit: usize,
    ) -> Result<Vec<crate::store::Record>, ApiProblem> {
        let store = self.inner.store.clone();
        blocking(move || Ok(store.records_of_kind(tenant.get(), kind, after, limit)?)).await
    }

    /// A record's binary data (a selfie).
    pub async fn blob(&self, tenant: TenantId, record_id: u64) -> Result<Option<Blob>, ApiProblem> {
        let store = self.inner.store.clone();
        blocking(move || Ok(store.blob(tenant.get(), record_id)?)).await
    }

    /// Access events after `after`, oldest first.
    pub async fn access_events(
        &self,
        tenant: TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AccessEventRow>, ApiProblem> {
        let store = self.inner.store.clone();
        blocking(move || Ok(store.access_events(tenant.get(), after, limit)?)).await
    }

    /// A counter moved by every committed write of records (and by [`Core::touch`]): a
    /// sync pass that started at revision r has seen every change up to r.
    pub fn revision(&self) -> u64 {
        self.inner
            .revision
            .load(std::sync::atomic::Ordering::SeqCst)
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

    /// Tells everything that watches the tenant to look again (after moving a manual
    /// clock, for instance) and moves the revision.
    pub fn touch(&self, tenant: TenantId) {
        self.inner
            .revision
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = self.inner.changes.send(tenant);
    }

    /// Tenants whose records changed (one message per committed write of records).
    pub fn subscribe_changes(&self) -> broadcast::Receiver<TenantId> {
        self.inner.changes.subscribe()
    }

    /// Every tenant's id.
    pub async fn tenant_ids(&self) -> Result<Vec<TenantId>, ApiProblem> {
        let store = self.inner.store.clone();
        blocking(move || {
            Ok(store
                .tenants()?
                .into_iter()
                .map(|t| TenantId::new(t.id))
                .collect())
        })
        .await
    }

    /// Live access events of every tenant (filter by tenant).
    pub fn subscribe(&self) -> broadcast::Receiver<StreamedEvent> {
        self.inner.events.subscribe()
    }
}
