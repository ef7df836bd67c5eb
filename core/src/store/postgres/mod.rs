//! The PostgreSQL store (PostgreSQL 15 or newer): `tokio-postgres` through a
//! `deadpool-postgres` pool, for deployments that outgrow one machine's SQLite file.
//!
//! [`Store`] is synchronous and is called from `spawn_blocking` threads as well as from
//! plain threads and the command-line tools, so the store owns a small runtime of its own
//! (threads named `acs-pg`): each call is spawned there and its caller waits for the
//! answer on a channel, which works from any thread (never `Handle::block_on`, which
//! panics inside another runtime).
//!
//! Each call is handed to the module of its concept, mirroring `store::sqlite`:
//! - `schema` – the migrations of `core/migrations/postgres/` (the same versions as
//!   SQLite's), applied under an advisory lock so that instances starting together do not
//!   race, tracked in `acs_schema_version`;
//! - `secrets` – the check that the database's secrets are kept under the key in use;
//! - `commit` – a [`Change`] in one transaction (retried on a serialization failure or a
//!   deadlock), over `records`, `unique_keys`, `idempotency`, `audit`, `access_events`,
//!   `outbox` and `webhooks`;
//! - `tenants` (with their API keys), `ids` (the id sequence), `applied` (what the sync
//!   engine applied to each terminal);
//! - `coordination` – what several instances share: tenant revisions and the change
//!   feed, heartbeats, terminal leases, rate-limit counters, and the commit-order lock
//!   under which access event ids and feed positions are drawn;
//! - `sql` – conversions and statement plumbing they share.
//!
//! The schema keeps the SQLite store's encodings (instants as RFC 3339 text, documents as
//! JSON text), so every value reads back exactly as it was written.

mod access_events;
mod applied;
mod audit;
mod commit;
mod coordination;
mod idempotency;
mod ids;
mod outbox;
mod records;
mod schema;
mod secrets;
mod sql;
mod tenants;
mod unique_keys;
mod webhooks;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use deadpool_postgres::{Client, Manager, ManagerConfig, Pool, RecyclingMethod};
use jiff::Timestamp;
use serde_json::Value as Json;
use tokio_postgres::NoTls;

use super::{
    AccessEventRow, ApiKeyRow, Blob, Change, DeliveryOutcome, DeliveryRow, IdempotentReply, Kind,
    Lease, MessageRow, Record, Store, StoreError, TenantRevision, TenantRow, WebhookRow,
};

/// The work of one call, run on the store's runtime with a pooled connection.
type Job<'c, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'c>>;

/// PostgreSQL: a pool of connections driven by a runtime of the store's own.
pub struct PostgresStore {
    pool: Pool,
    /// Where calls run; shut down in the background when the store is dropped (dropping a
    /// runtime may not block inside another one).
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's configuration holds the password: name the pool's size only.
        f.debug_struct("PostgresStore")
            .field("pool_size", &self.pool.status().max_size)
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.pool.close();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl PostgresStore {
    /// The pool size [`PostgresStore::connect`] uses.
    pub const DEFAULT_POOL_SIZE: usize = 16;

    /// Connects to the database at `url` (`postgres://user:password@host:port/db`) with a
    /// pool of [`Self::DEFAULT_POOL_SIZE`] connections and migrates it.
    pub fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_with(url, PostgresStore::DEFAULT_POOL_SIZE)
    }

    /// [`PostgresStore::connect`] with a pool of `pool_size` connections.
    pub fn connect_with(url: &str, pool_size: usize) -> Result<PostgresStore, StoreError> {
        // The parser's message never repeats the URL (it may hold a password).
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Connection(format!("invalid PostgreSQL URL: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("acs-pg")
            .enable_all()
            .build()
            .map_err(StoreError::Thread)?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::Connection(e.to_string()))?;
        let store = PostgresStore {
            pool,
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Runs `job` with a pooled connection on the store's runtime and waits for it.
    fn with<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Client) -> Job<'c, T> + Send + 'static,
    {
        let pool = self.pool.clone();
        let (done, answer) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let result = match pool.get().await {
                Ok(mut client) => job(&mut client).await,
                Err(e) => Err(StoreError::Connection(e.to_string())),
            };
            let _ = done.send(result);
        });
        answer.recv().map_err(|_| {
            StoreError::Connection("the PostgreSQL store's runtime stopped".to_owned())
        })?
    }
}

impl Store for PostgresStore {
    fn create_tenant(&self, slug: &str, name: &str) -> Result<TenantRow, StoreError> {
        let (slug, name) = (slug.to_owned(), name.to_owned());
        self.with(move |c| Box::pin(async move { tenants::create(c, &slug, &name).await }))
    }

    fn tenants(&self) -> Result<Vec<TenantRow>, StoreError> {
        self.with(|c| Box::pin(tenants::list(c)))
    }

    fn insert_api_key(
        &self,
        tenant_id: u64,
        label: &str,
        prefix: &str,
        hash: &str,
    ) -> Result<ApiKeyRow, StoreError> {
        let (label, prefix, hash) = (label.to_owned(), prefix.to_owned(), hash.to_owned());
        self.with(move |c| {
            Box::pin(
                async move { tenants::insert_api_key(c, tenant_id, &label, &prefix, &hash).await },
            )
        })
    }

    fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let hash = hash.to_owned();
        self.with(move |c| Box::pin(async move { tenants::api_key_by_hash(c, &hash).await }))
    }

    fn api_keys(&self, tenant_id: u64) -> Result<Vec<ApiKeyRow>, StoreError> {
        self.with(move |c| Box::pin(tenants::api_keys(c, tenant_id)))
    }

    fn revoke_api_key(&self, tenant_id: u64, key_id: u64) -> Result<bool, StoreError> {
        self.with(move |c| Box::pin(tenants::revoke_api_key(c, tenant_id, key_id)))
    }

    fn allocate_ids(&self, n: usize) -> Result<Vec<u64>, StoreError> {
        self.with(move |c| Box::pin(ids::allocate(c, n)))
    }

    fn commit(&self, tenant_id: u64, change: Change) -> Result<Vec<u64>, StoreError> {
        self.with(move |c| Box::pin(async move { commit::commit(c, tenant_id, &change).await }))
    }

    fn records(&self, tenant_id: u64) -> Result<Vec<Record>, StoreError> {
        self.with(move |c| Box::pin(records::of_tenant(c, tenant_id, "")))
    }

    fn unowned_records(&self, tenant_id: u64) -> Result<Vec<Record>, StoreError> {
        self.with(move |c| {
            Box::pin(records::of_tenant(
                c,
                tenant_id,
                "AND owner IS NULL AND kind <> 'enrollment'",
            ))
        })
    }

    fn owned_records(&self, tenant_id: u64, owner: u64) -> Result<Vec<Record>, StoreError> {
        self.with(move |c| Box::pin(records::owned_by(c, tenant_id, owner)))
    }

    fn owner_of(&self, tenant_id: u64, record_id: u64) -> Result<Option<u64>, StoreError> {
        self.with(move |c| Box::pin(records::owner_of(c, tenant_id, record_id)))
    }

    fn records_of_kind(
        &self,
        tenant_id: u64,
        kind: Kind,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.with(move |c| Box::pin(records::of_kind(c, tenant_id, kind, after, limit)))
    }

    fn claim(&self, tenant_id: u64, scope: &str, value: &str) -> Result<Option<u64>, StoreError> {
        let (scope, value) = (scope.to_owned(), value.to_owned());
        self.with(move |c| {
            Box::pin(async move { unique_keys::holder(c, tenant_id, &scope, &value).await })
        })
    }

    fn claims_with_prefix(
        &self,
        tenant_id: u64,
        scope: &str,
        prefix: &str,
    ) -> Result<Vec<u64>, StoreError> {
        let (scope, prefix) = (scope.to_owned(), prefix.to_owned());
        self.with(move |c| {
            Box::pin(
                async move { unique_keys::holders_of_prefix(c, tenant_id, &scope, &prefix).await },
            )
        })
    }

    fn blob(&self, tenant_id: u64, record_id: u64) -> Result<Option<Blob>, StoreError> {
        self.with(move |c| Box::pin(records::blob(c, tenant_id, record_id)))
    }

    fn idempotent_reply(
        &self,
        tenant_id: u64,
        key: &str,
    ) -> Result<Option<IdempotentReply>, StoreError> {
        let key = key.to_owned();
        self.with(move |c| Box::pin(async move { idempotency::reply(c, tenant_id, &key).await }))
    }

    fn applied(&self, tenant_id: u64, terminal_id: u64) -> Result<Vec<(String, Json)>, StoreError> {
        self.with(move |c| Box::pin(applied::of_terminal(c, tenant_id, terminal_id)))
    }

    fn set_applied(
        &self,
        tenant_id: u64,
        terminal_id: u64,
        subjects: &[(String, Option<Json>)],
    ) -> Result<(), StoreError> {
        let subjects = subjects.to_vec();
        self.with(move |c| {
            Box::pin(async move { applied::set(c, tenant_id, terminal_id, &subjects).await })
        })
    }

    fn access_events(
        &self,
        tenant_id: u64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AccessEventRow>, StoreError> {
        self.with(move |c| Box::pin(access_events::page(c, tenant_id, after, limit)))
    }

    fn claim_owner(&self, scope: &str, value: &str) -> Result<Option<(u64, u64)>, StoreError> {
        let (scope, value) = (scope.to_owned(), value.to_owned());
        self.with(move |c| {
            Box::pin(async move { unique_keys::holder_in_any_tenant(c, &scope, &value).await })
        })
    }

    fn due_messages(
        &self,
        now: Timestamp,
        limit: usize,
        claimer: &str,
        claim_for: Duration,
    ) -> Result<Vec<MessageRow>, StoreError> {
        let claimer = claimer.to_owned();
        self.with(move |c| {
            Box::pin(async move { outbox::claim_due(c, now, limit, &claimer, claim_for).await })
        })
    }

    fn next_message_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.with(|c| Box::pin(outbox::next_due(c)))
    }

    fn record_delivery(&self, id: u64, outcome: &DeliveryOutcome) -> Result<(), StoreError> {
        let outcome = outcome.clone();
        self.with(move |c| Box::pin(async move { outbox::record_delivery(c, id, &outcome).await }))
    }

    fn messages(
        &self,
        tenant_id: u64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<MessageRow>, StoreError> {
        self.with(move |c| Box::pin(outbox::page(c, tenant_id, after, limit)))
    }

    fn webhooks(&self, tenant_id: u64) -> Result<Vec<WebhookRow>, StoreError> {
        self.with(move |c| Box::pin(webhooks::list(c, tenant_id)))
    }

    fn tenant_revision(&self, tenant_id: u64) -> Result<u64, StoreError> {
        self.with(move |c| Box::pin(coordination::revision(c, tenant_id)))
    }

    fn changed_tenants(&self, after: u64) -> Result<Vec<TenantRevision>, StoreError> {
        self.with(move |c| Box::pin(coordination::changed(c, after)))
    }

    fn access_events_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, AccessEventRow)>, StoreError> {
        self.with(move |c| Box::pin(coordination::events_after(c, after, limit)))
    }

    fn last_access_event_id(&self) -> Result<u64, StoreError> {
        self.with(|c| Box::pin(coordination::last_event(c)))
    }

    fn heartbeat(&self, instance: &str, ttl: Duration) -> Result<usize, StoreError> {
        let instance = instance.to_owned();
        self.with(move |c| {
            Box::pin(async move { coordination::heartbeat(c, &instance, ttl).await })
        })
    }

    fn acquire_lease(
        &self,
        terminal_id: u64,
        instance: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let instance = instance.to_owned();
        self.with(move |c| {
            Box::pin(async move { coordination::acquire(c, terminal_id, &instance, ttl).await })
        })
    }

    fn renew_leases(&self, instance: &str, ttl: Duration) -> Result<Vec<u64>, StoreError> {
        let instance = instance.to_owned();
        self.with(move |c| Box::pin(async move { coordination::renew(c, &instance, ttl).await }))
    }

    fn release_leases(&self, instance: &str, terminals: Option<&[u64]>) -> Result<(), StoreError> {
        let (instance, terminals) = (instance.to_owned(), terminals.map(<[u64]>::to_vec));
        self.with(move |c| {
            Box::pin(async move { coordination::release(c, &instance, terminals.as_deref()).await })
        })
    }

    fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        self.with(|c| Box::pin(coordination::leases(c)))
    }

    fn count_hit(
        &self,
        key: &str,
        window_ms: i64,
        prune_before_ms: i64,
    ) -> Result<u64, StoreError> {
        let key = key.to_owned();
        self.with(move |c| {
            Box::pin(
                async move { coordination::count_hit(c, &key, window_ms, prune_before_ms).await },
            )
        })
    }

    fn webhook_deliveries(
        &self,
        tenant_id: u64,
        webhook_id: u64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        self.with(move |c| Box::pin(webhooks::deliveries(c, tenant_id, webhook_id, after, limit)))
    }
}
