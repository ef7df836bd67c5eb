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
//! The application speaks no transport: its errors are [`AppError`]s, which the
//! integrator API renders as problem documents.
//!
//! - [`clock`] – where "now" comes from; [`plan`] – a write's plan and how entities live
//!   in a snapshot; [`snapshots`] – loading, reading and changing the snapshots, the event
//!   stream, the decision indexes;
//! - [`tenants`] – tenants, API keys and the caller behind a key; [`api_keys`] – the keys
//!   themselves;
//! - [`enrollments`] – the enrollments on terminals, kept in the store; [`sync_status`] –
//!   each terminal's sync status, which the sync engine writes and anyone can wait on;
//! - [`outgoing`] – committed access events handed to the stream in the order of their
//!   ids, a write's once its change is applied;
//! - [`queries`] – reads straight from the store; [`devices`] – which terminal a device id
//!   belongs to; [`in_use`] – credentials in use;
//! - [`terminal_calls`] – the calls to terminals the integrator API asks for (door
//!   opening, enrollment start and cancel, the probe), made by owned driver tasks off the
//!   request path.
//! - [`webhooks`] – the tenant's webhook endpoints, their delivery log and automatic
//!   disabling.
//! - [`instances`] – several instances on one database: the change feed that reads
//!   snapshots other instances changed again, and the relay of access events.

mod api_keys;
mod clock;
mod devices;
pub mod enrollments;
mod in_use;
pub mod instances;
mod outgoing;
mod plan;
mod queries;
mod snapshots;
pub mod sync_status;
mod tenants;
pub mod terminal_calls;
mod webhooks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use tokio::sync::{RwLock, broadcast};

pub use self::api_keys::GeneratedKey;
pub use self::clock::Clock;
pub use self::devices::{PROBE_TIMEOUT, Probe};
pub use self::in_use::KeyInUse;
pub use self::instances::{Instance, InstanceOptions};
pub use self::plan::{Idempotency, InSnapshot, Plan};
pub use self::snapshots::StreamedEvent;
pub use self::tenants::Caller;
pub use self::webhooks::{
    KEEP_PREVIOUS_SECRET, KEEP_PREVIOUS_SECRET_MAX, NewWebhook, WebhookPatch,
};
use crate::domain::{Snapshot, TenantId};
use crate::error::AppError;
pub use crate::residency::Subject;
use crate::store::Store;

type Cell = Arc<RwLock<Snapshot>>;

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    cells: Mutex<HashMap<TenantId, Cell>>,
    events: broadcast::Sender<StreamedEvent>,
    changes: broadcast::Sender<TenantId>,
    clock: Clock,
    devices: Mutex<HashMap<i64, (TenantId, crate::domain::TerminalId)>>,
    enrollments: enrollments::Enrollments,
    calls: terminal_calls::TerminalCalls,
    sync: sync_status::StatusBoard,
    revision: std::sync::atomic::AtomicU64,
    outbox: tokio::sync::Notify,
    public_url: Mutex<String>,
    keys_in_use: Mutex<std::collections::HashSet<u64>>,
    /// Each tenant's decision indexes, with the revision of the snapshot they describe.
    lookups: Mutex<HashMap<TenantId, (u64, Arc<crate::domain::Lookup>)>>,
    /// Taken by every change of webhook endpoints.
    webhook_edits: Mutex<()>,
    /// Whether each tenant seen has an enabled webhook endpoint.
    webhook_tenants: Mutex<HashMap<u64, bool>>,
    /// Each tenant's write turn: writers of a tenant take turns through it, readers and
    /// appends never take it.
    turns: Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<()>>>>,
    /// Committed access events on their way to the stream, in the order of their ids.
    outgoing: outgoing::Outgoing,
    /// The stored revision each snapshot in memory was built at.
    held: Mutex<HashMap<TenantId, u64>>,
    /// Whether access events reach the streams through the relay ([`instances`]).
    relayed: std::sync::atomic::AtomicBool,
    /// Wakes the relay (a local commit appended access events).
    relay: tokio::sync::Notify,
    /// This instance's id.
    instance: Mutex<String>,
}

/// The access-control core; clones share it.
#[derive(Debug, Clone)]
pub struct Core {
    inner: Arc<Inner>,
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, AppError> + Send + 'static,
) -> Result<R, AppError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "store task failed");
        Err(AppError::internal())
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
                enrollments: enrollments::Enrollments::new(Arc::clone(&store)),
                store,
                cells: Mutex::new(HashMap::new()),
                events: broadcast::channel(1024).0,
                changes: broadcast::channel(1024).0,
                clock,
                devices: Mutex::new(HashMap::new()),
                calls: terminal_calls::TerminalCalls::default(),
                sync: sync_status::StatusBoard::default(),
                revision: std::sync::atomic::AtomicU64::new(0),
                outbox: tokio::sync::Notify::new(),
                public_url: Mutex::new("http://localhost".to_owned()),
                keys_in_use: Mutex::default(),
                lookups: Mutex::default(),
                webhook_edits: Mutex::default(),
                webhook_tenants: Mutex::default(),
                turns: Mutex::default(),
                outgoing: outgoing::Outgoing::default(),
                held: Mutex::default(),
                relayed: std::sync::atomic::AtomicBool::new(false),
                relay: tokio::sync::Notify::new(),
                instance: Mutex::new(instances::default_instance_id()),
            }),
        }
    }

    /// The keyed digest of a secret the core only ever compares – a cloud key's token or
    /// PIN – under the store's key ([`crate::store::seal::SecretKey::digest`]). A bare
    /// store without a key (tests, `:memory:`) gets digests under an all-zero key, which
    /// protect nothing but keep every comparison the same.
    pub fn digest(&self, secret: &str) -> String {
        match self.inner.store.secret_key() {
            Some(key) => key.digest(secret),
            None => crate::store::seal::SecretKey::unprotected().digest(secret),
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

    /// Waits until a committed write appends a message to the outbox (a write made while
    /// nobody waits is remembered for the next wait).
    pub async fn outbox_appended(&self) {
        self.inner.outbox.notified().await;
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// A counter moved by every committed write of records (and by [`Core::touch`]): a
    /// sync pass that started at revision r has seen every change up to r.
    pub fn revision(&self) -> u64 {
        self.inner
            .revision
            .load(std::sync::atomic::Ordering::SeqCst)
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

    /// Live access events of every tenant (filter by tenant).
    pub fn subscribe(&self) -> broadcast::Receiver<StreamedEvent> {
        self.inner.events.subscribe()
    }
}

impl Core {
    /// Every terminal's sync status (written by the sync engine).
    pub fn sync_board(&self) -> &sync_status::StatusBoard {
        &self.inner.sync
    }

    /// Enrollments on terminals.
    pub fn enrollments(&self) -> &enrollments::Enrollments {
        &self.inner.enrollments
    }

    /// The integrator API's calls to terminals, made by owned driver tasks.
    pub fn terminal_calls(&self) -> &terminal_calls::TerminalCalls {
        &self.inner.calls
    }
}
