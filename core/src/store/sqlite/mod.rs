//! The embedded store: SQLite through `rusqlite` (bundled, so nothing is needed on the
//! machine). A file for the server – WAL journal, `synchronous = NORMAL` (a committed
//! transaction survives the process being killed), foreign keys on – or memory for tests.
//!
//! This module opens the database and implements [`Store`] by handing each call to the
//! module of its concept:
//! - `schema` – the migrations of `core/migrations/`, tracked by `PRAGMA user_version`;
//! - `secrets` – the one-time conversion of secrets an earlier version stored in clear;
//! - `commit` – a [`Change`] in one transaction, over `records`, `unique_keys`,
//!   `idempotency`, `audit`, `access_events`, `outbox` and `webhooks` (endpoints, the
//!   fan-out of events to them, their delivery log);
//! - `tenants` (with their API keys), `ids` (the id sequence), `applied` (what the sync
//!   engine applied to each terminal);
//! - `readers` – the pool of read-only connections reads go through;
//! - `sql` – conversions and statement plumbing they share.
//!
//! Writes go through one connection behind a mutex (SQLite has one writer anyway); reads
//! take a connection of the reader pool, so they never wait for a write in progress.

mod access_events;
mod applied;
mod audit;
mod commit;
mod coordination;
mod idempotency;
mod ids;
mod outbox;
mod readers;
mod records;
mod schema;
mod secrets;

pub use secrets::Converted;
mod sql;
mod tenants;
mod unique_keys;
mod webhooks;

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::Connection;
use serde_json::Value as Json;

use self::readers::{Reader, Readers};
use super::checkpoint::Checkpointer;
use super::{
    AccessEventRow, ApiKeyRow, Blob, Change, DeliveryOutcome, DeliveryRow, IdempotentReply, Kind,
    Lease, MessageRow, Record, Store, StoreError, TenantRevision, TenantRow, WebhookRow,
};

/// SQLite: one writing connection, and a pool of reading ones for a database file.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// `None` for a private in-memory database (its reads use `conn`).
    readers: Option<Readers>,
    /// Stopped after the connection above is closed (fields drop in order).
    _checkpointer: Option<Checkpointer>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    ///
    /// The file, its log and shared-memory index are readable by the owner only (0600 on
    /// Unix, whatever the umask): they hold personal data.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        owner_only(path)?;
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // No commit copies the log back into the database: the checkpoint thread does.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // The log file is cut back when a write restarts it (writes take the write lock
        // at once, so a restart by the checkpoint thread never fails one half-way).
        conn.pragma_update(
            None,
            "journal_size_limit",
            super::checkpoint::KEEP_LOG_BYTES,
        )?;
        let checkpointer = Checkpointer::start(path)?;
        let mut store = SqliteStore::prepare(conn, Some(checkpointer))?;
        store.readers = Some(Readers::new(path));
        // SQLite creates the log and index with the database's mode; set it anyway.
        for suffix in ["-wal", "-shm"] {
            let mut companion = path.as_os_str().to_owned();
            companion.push(suffix);
            let companion = std::path::PathBuf::from(companion);
            if companion.exists() {
                owner_only(&companion)?;
            }
        }
        Ok(store)
    }

    /// A private in-memory database (tests, `--db :memory:`).
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        SqliteStore::prepare(Connection::open_in_memory()?, None)
    }

    fn prepare(
        conn: Connection,
        checkpointer: Option<Checkpointer>,
    ) -> Result<SqliteStore, StoreError> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let store = SqliteStore {
            conn: Mutex::new(conn),
            readers: None,
            _checkpointer: checkpointer,
        };
        store.migrate()?;
        Ok(store)
    }

    /// The writing connection.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection for one read: a pooled reader, or the writing connection of an
    /// in-memory database.
    fn read(&self) -> Result<Read<'_>, StoreError> {
        Ok(match &self.readers {
            Some(readers) => Read::Pooled(readers.get()?),
            None => Read::Writer(self.lock()),
        })
    }
}

/// A connection lent for one read.
#[derive(Debug)]
enum Read<'a> {
    Pooled(Reader<'a>),
    Writer(MutexGuard<'a, Connection>),
}

impl std::ops::Deref for Read<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            Read::Pooled(reader) => reader,
            Read::Writer(conn) => conn,
        }
    }
}

/// Creates `path` if missing and makes it readable and writable by its owner only.
fn owner_only(path: &Path) -> Result<(), StoreError> {
    private(path).map_err(StoreError::File)
}

/// Creates `path` (empty, owner only) when it is missing, and sets an existing one to the
/// owner only by its path.
///
/// An existing file is never opened here: closing a descriptor of a file releases every
/// POSIX lock the process holds on it, and SQLite's locks on a database, its log and its
/// shared-memory index are such locks. Opening and closing the index behind SQLite's back
/// left the process without its lock on it; the next process to open the database then
/// took the index for abandoned and cut it back under the pages this one had mapped, which
/// killed this one with SIGBUS (seen with several `serve` processes on one file).
fn private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        // Created here, so no lock of this process was on it.
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod lock_tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::SqliteStore;

    /// The POSIX locks this process holds on `path`, as `/proc/locks` lists them.
    fn locks_held_on(path: &std::path::Path) -> usize {
        let inode = std::fs::metadata(path).expect("metadata").ino();
        let pid = std::process::id().to_string();
        std::fs::read_to_string("/proc/locks")
            .expect("/proc/locks")
            .lines()
            .filter(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // `1: POSIX ADVISORY READ <pid> <major>:<minor>:<inode> <start> <end>`
                fields.get(1) == Some(&"POSIX")
                    && fields.get(4) == Some(&pid.as_str())
                    && fields
                        .get(5)
                        .and_then(|id| id.rsplit(':').next())
                        .is_some_and(|i| i == inode.to_string())
            })
            .count()
    }

    /// [`locks_held_on`], looked at until it is not zero (at most a hundred times): a
    /// lock the process lost stays lost, while one look can miss a lock that is there.
    /// The kernel hands `/proc/locks` out a page at a time, each read going on from a
    /// position in its list, and other threads of this test process take and drop locks
    /// of their own meanwhile, which shifts the list between two reads (one look found
    /// none once, beside a valgrind run). The message lists what the process held.
    fn locks_seen_on(path: &std::path::Path) -> Result<usize, String> {
        for _ in 0..100 {
            let held = locks_held_on(path);
            if held > 0 {
                return Ok(held);
            }
            std::thread::yield_now();
        }
        let pid = format!(" {} ", std::process::id());
        let mine: Vec<String> = std::fs::read_to_string("/proc/locks")
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(&pid))
            .map(str::to_owned)
            .collect();
        Err(format!("no lock on {} among {mine:?}", path.display()))
    }

    #[test]
    fn opening_a_store_keeps_the_locks_sqlite_holds_on_the_shared_memory_index() {
        let dir = std::env::temp_dir().join(format!("acs-sqlite-locks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let db = dir.join("acs.db");
        let shm = dir.join("acs.db-shm");
        let first = SqliteStore::open(&db).expect("first store");
        // The process holds SQLite's lock on the index once a store is open.
        if let Err(why) = locks_seen_on(&shm) {
            panic!("after opening a store: {why}");
        }
        // A second store of the same process on the same file (several instances in one
        // process) leaves the first one's locks alone too.
        let second = SqliteStore::open(&db).expect("second store");
        if let Err(why) = locks_seen_on(&shm) {
            panic!("with two stores open: {why}");
        }
        drop(second);
        drop(first);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

impl Store for SqliteStore {
    fn create_tenant(&self, slug: &str, name: &str) -> Result<TenantRow, StoreError> {
        tenants::create(&self.lock(), slug, name)
    }

    fn tenants(&self) -> Result<Vec<TenantRow>, StoreError> {
        tenants::list(&*self.read()?)
    }

    fn insert_api_key(
        &self,
        tenant_id: u64,
        label: &str,
        prefix: &str,
        hash: &str,
    ) -> Result<ApiKeyRow, StoreError> {
        tenants::insert_api_key(&self.lock(), tenant_id, label, prefix, hash)
    }

    fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        tenants::api_key_by_hash(&*self.read()?, hash)
    }

    fn api_keys(&self, tenant_id: u64) -> Result<Vec<ApiKeyRow>, StoreError> {
        tenants::api_keys(&*self.read()?, tenant_id)
    }

    fn revoke_api_key(&self, tenant_id: u64, key_id: u64) -> Result<bool, StoreError> {
        tenants::revoke_api_key(&self.lock(), tenant_id, key_id)
    }

    fn allocate_ids(&self, n: usize) -> Result<Vec<u64>, StoreError> {
        ids::allocate(&mut self.lock(), n)
    }

    fn commit(&self, tenant_id: u64, change: Change) -> Result<Vec<u64>, StoreError> {
        commit::commit(self, tenant_id, change)
    }

    fn records(&self, tenant_id: u64) -> Result<Vec<Record>, StoreError> {
        records::of_tenant(self, tenant_id, "")
    }

    fn unowned_records(&self, tenant_id: u64) -> Result<Vec<Record>, StoreError> {
        records::of_tenant(
            self,
            tenant_id,
            "AND owner IS NULL AND kind <> 'enrollment'",
        )
    }

    fn owned_records(&self, tenant_id: u64, owner: u64) -> Result<Vec<Record>, StoreError> {
        records::owned_by(self, tenant_id, owner)
    }

    fn owner_of(&self, tenant_id: u64, record_id: u64) -> Result<Option<u64>, StoreError> {
        records::owner_of(&*self.read()?, tenant_id, record_id)
    }

    fn records_of_kind(
        &self,
        tenant_id: u64,
        kind: Kind,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        records::of_kind(self, tenant_id, kind, after, limit)
    }

    fn claims_with_prefix(
        &self,
        tenant_id: u64,
        scope: &str,
        prefix: &str,
    ) -> Result<Vec<u64>, StoreError> {
        unique_keys::holders_of_prefix(&*self.read()?, tenant_id, scope, prefix)
    }

    fn claim(&self, tenant_id: u64, scope: &str, value: &str) -> Result<Option<u64>, StoreError> {
        unique_keys::holder(&*self.read()?, tenant_id, scope, value)
    }

    fn blob(&self, tenant_id: u64, record_id: u64) -> Result<Option<Blob>, StoreError> {
        records::blob(&*self.read()?, tenant_id, record_id)
    }

    fn idempotent_reply(
        &self,
        tenant_id: u64,
        key: &str,
    ) -> Result<Option<IdempotentReply>, StoreError> {
        idempotency::reply(&*self.read()?, tenant_id, key)
    }

    fn applied(&self, tenant_id: u64, terminal_id: u64) -> Result<Vec<(String, Json)>, StoreError> {
        applied::of_terminal(&*self.read()?, tenant_id, terminal_id)
    }

    fn set_applied(
        &self,
        tenant_id: u64,
        terminal_id: u64,
        subjects: &[(String, Option<Json>)],
    ) -> Result<(), StoreError> {
        applied::set(&mut self.lock(), tenant_id, terminal_id, subjects)
    }

    fn access_events(
        &self,
        tenant_id: u64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AccessEventRow>, StoreError> {
        access_events::page(&*self.read()?, tenant_id, after, limit)
    }

    fn claim_owner(&self, scope: &str, value: &str) -> Result<Option<(u64, u64)>, StoreError> {
        unique_keys::holder_in_any_tenant(&*self.read()?, scope, value)
    }

    fn due_messages(
        &self,
        now: Timestamp,
        limit: usize,
        claimer: &str,
        claim_for: std::time::Duration,
    ) -> Result<Vec<MessageRow>, StoreError> {
        outbox::claim_due(&self.lock(), now, limit, claimer, claim_for)
    }

    fn next_message_due(&self) -> Result<Option<Timestamp>, StoreError> {
        outbox::next_due(&*self.read()?)
    }

    fn record_delivery(
        &self,
        message_id: u64,
        outcome: &DeliveryOutcome,
    ) -> Result<(), StoreError> {
        outbox::record_delivery(&self.lock(), message_id, outcome)
    }

    fn messages(
        &self,
        tenant_id: u64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<MessageRow>, StoreError> {
        outbox::page(&*self.read()?, tenant_id, after, limit)
    }

    fn webhooks(&self, tenant_id: u64) -> Result<Vec<WebhookRow>, StoreError> {
        webhooks::list(self, tenant_id)
    }

    fn tenant_revision(&self, tenant_id: u64) -> Result<u64, StoreError> {
        coordination::revision(&*self.read()?, sql::sql_id(tenant_id))
    }

    fn changed_tenants(&self, after: u64) -> Result<Vec<TenantRevision>, StoreError> {
        coordination::changed(&*self.read()?, after)
    }

    fn access_events_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, AccessEventRow)>, StoreError> {
        coordination::events_after(&*self.read()?, after, limit)
    }

    fn last_access_event_id(&self) -> Result<u64, StoreError> {
        coordination::last_event(&*self.read()?)
    }

    fn heartbeat(&self, instance: &str, ttl: Duration) -> Result<usize, StoreError> {
        coordination::heartbeat(&self.lock(), instance, ttl)
    }

    fn acquire_lease(
        &self,
        terminal_id: u64,
        instance: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        coordination::acquire(&self.lock(), terminal_id, instance, ttl)
    }

    fn renew_leases(&self, instance: &str, ttl: Duration) -> Result<Vec<u64>, StoreError> {
        coordination::renew(&self.lock(), instance, ttl)
    }

    fn release_leases(&self, instance: &str, terminals: Option<&[u64]>) -> Result<(), StoreError> {
        coordination::release(&self.lock(), instance, terminals)
    }

    fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        coordination::leases(&*self.read()?)
    }

    fn count_hit(
        &self,
        key: &str,
        window_ms: i64,
        prune_before_ms: i64,
    ) -> Result<u64, StoreError> {
        coordination::count_hit(&self.lock(), key, window_ms, prune_before_ms)
    }

    fn webhook_deliveries(
        &self,
        tenant_id: u64,
        webhook_id: u64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        webhooks::deliveries(&self.lock(), tenant_id, webhook_id, after, limit)
    }
}

/// Builders shared by the store's unit tests.
#[cfg(test)]
mod test_support {
    use crate::store::{Kind, UniqueKey, Write};

    /// A put of `data` under `id` claiming `unique`, without a blob.
    pub(super) fn put(
        kind: Kind,
        id: u64,
        data: serde_json::Value,
        unique: &[(&'static str, &str)],
    ) -> Write {
        Write::Put {
            kind,
            id,
            data,
            unique: unique
                .iter()
                .map(|(scope, value)| UniqueKey {
                    scope,
                    value: (*value).to_owned(),
                })
                .collect(),
            blob: None,
        }
    }
}
