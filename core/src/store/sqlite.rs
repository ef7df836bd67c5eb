//! The embedded store: SQLite through `rusqlite` (bundled, so nothing is needed on the
//! machine). A file for the server – WAL journal, `synchronous = NORMAL` (a committed
//! transaction survives the process being killed), foreign keys on – or memory for tests.
//! Migrations live in `core/migrations/` and are applied in order on open, tracked by
//! `PRAGMA user_version`.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use jiff::Timestamp;
use rusqlite::{Connection, ErrorCode, OptionalExtension as _, TransactionBehavior, params};

use serde_json::Value as Json;

use super::checkpoint::Checkpointer;
use super::seal::{SealError, SecretKey, is_sealed};
use super::{
    AccessEventRow, ApiKeyRow, Blob, Change, Channel, DeliveryOutcome, IdempotentReply, Kind,
    MessageRow, MessageStatus, NewMessage, Record, Store, StoreError, TenantRow, Write,
};

/// The migrations, in order; migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_initial.sql"),
    include_str!("../../migrations/0002_applied_state.sql"),
    include_str!("../../migrations/0003_outbox.sql"),
    include_str!("../../migrations/0004_record_owner.sql"),
];

/// SQLite behind one connection (writes are serialised by SQLite anyway; the embedded
/// store favours simplicity over read parallelism).
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    key: Option<SecretKey>,
    /// Stopped after the connection above is closed (fields drop in order).
    _checkpointer: Option<Checkpointer>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
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
        SqliteStore::prepare(conn, Some(checkpointer))
    }

    /// Opens the database file at `path` like [`SqliteStore::open`], sealing device
    /// passwords at rest with `key` ([`super::seal`]); passwords stored in clear by an
    /// earlier version are sealed now. Fails if stored passwords were sealed with another
    /// key.
    pub fn open_sealed(path: &Path, key: SecretKey) -> Result<SqliteStore, StoreError> {
        let mut store = SqliteStore::open(path)?;
        store.key = Some(key);
        store.seal_clear_passwords()?;
        Ok(store)
    }

    /// Seals every terminal password still in clear, and checks that sealed ones open.
    fn seal_clear_passwords(&self) -> Result<(), StoreError> {
        let Some(key) = &self.key else {
            return Ok(());
        };
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows: Vec<(i64, String)> = {
            let mut stmt = tx.prepare("SELECT id, data FROM records WHERE kind = ?1")?;
            stmt.query_map(params![Kind::Terminal.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?
        };
        for (record_id, data) in rows {
            let mut data = json(&data)?;
            match data.get("password") {
                Some(Json::String(clear)) => {
                    data["password"] = key.seal(clear);
                    tx.execute(
                        "UPDATE records SET data = ?2 WHERE id = ?1",
                        params![record_id, data.to_string()],
                    )?;
                }
                Some(sealed) if is_sealed(sealed) => {
                    key.open(sealed).map_err(StoreError::Sealed)?;
                }
                _ => {}
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The stored form of a record's document: secrets sealed when there is a key.
    fn at_rest(&self, kind: Kind, data: &Json) -> Json {
        match (&self.key, kind, data.get("password")) {
            (Some(key), Kind::Terminal, Some(Json::String(clear))) => {
                let mut data = data.clone();
                data["password"] = key.seal(clear);
                data
            }
            _ => data.clone(),
        }
    }

    /// A stored document as records read it: sealed secrets opened.
    fn in_clear(&self, kind: Kind, mut data: Json) -> Result<Json, StoreError> {
        if kind == Kind::Terminal
            && let Some(sealed) = data.get("password").filter(|v| is_sealed(v))
        {
            let key = self
                .key
                .as_ref()
                .ok_or(StoreError::Sealed(SealError::CannotOpen))?;
            data["password"] = Json::String(key.open(sealed).map_err(StoreError::Sealed)?);
        }
        Ok(data)
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
            key: None,
            _checkpointer: checkpointer,
        };
        store.migrate()?;
        Ok(store)
    }

    /// Makes every id handed out from now on at least `first` (a conformance run keeps the
    /// objects it creates on a real terminal in a reserved range this way).
    pub fn reserve_ids_from(&self, first: u64) -> Result<(), StoreError> {
        self.lock().execute(
            "UPDATE id_sequence SET next_id = MAX(next_id, ?1)",
            params![sql_id(first)],
        )?;
        Ok(())
    }

    /// The schema version this program writes.
    pub fn supported_version() -> i64 {
        MIGRATIONS.len() as i64
    }

    /// The database's schema version.
    pub fn version(&self) -> Result<i64, StoreError> {
        Ok(self
            .lock()
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Applies the migrations the database has not seen yet; returns how many ran.
    pub fn migrate(&self) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let supported = SqliteStore::supported_version();
        if found > supported {
            return Err(StoreError::TooNew { found, supported });
        }
        let pending = &MIGRATIONS[usize::try_from(found).unwrap_or(0)..];
        for (i, sql) in pending.iter().enumerate() {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", found + i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(pending.len())
    }

    /// A tenant's records matching `filter` (an SQL condition starting with `AND`, or
    /// nothing), by kind then id.
    fn tenant_records(&self, tenant_id: u64, filter: &str) -> Result<Vec<Record>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT kind, id, data, version FROM records WHERE tenant_id = ?1 {filter} ORDER BY id"
        ))?;
        let mut records = read_records(
            self,
            stmt.query_map(params![sql_id(tenant_id)], record_row)?,
        )?;
        records.sort_by_key(|r| (Kind::ALL.iter().position(|k| *k == r.kind), r.id));
        Ok(records)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn now() -> String {
    Timestamp::now().to_string()
}

fn timestamp(text: &str) -> Result<Timestamp, StoreError> {
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("timestamp '{text}': {e}")))
}

fn json(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("JSON document: {e}")))
}

fn id(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn sql_id(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The person a record belongs to: a person owns itself; a credential, phone or
/// invitation belongs to its `person_id`; other kinds belong to nobody.
fn owner(kind: Kind, record_id: u64, data: &Json) -> Option<u64> {
    match kind {
        Kind::Person => Some(record_id),
        Kind::Credential | Kind::Phone | Kind::Invitation => {
            data.get("person_id").and_then(Json::as_u64)
        }
        _ => None,
    }
}

/// Reads rows of `(kind, id, data, version)` into records, secrets opened.
fn read_records(
    store: &SqliteStore,
    rows: impl Iterator<Item = rusqlite::Result<(String, i64, String, i64)>>,
) -> Result<Vec<Record>, StoreError> {
    let mut records = Vec::new();
    for row in rows {
        let (kind, record_id, data, version) = row?;
        let kind = Kind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown record kind '{kind}'")))?;
        records.push(Record {
            kind,
            id: id(record_id),
            data: store.in_clear(kind, json(&data)?)?,
            version: id(version),
        });
    }
    Ok(records)
}

fn record_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, i64, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

/// Runs `sql` through the connection's statement cache: commits run the same few
/// statements thousands of times a second, and parsing them anew each time was a few per
/// cent of an online decision.
fn run(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}

fn api_key_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(i64, i64, String, String, String, Option<String>)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn api_key(
    (key_id, tenant_id, label, prefix, created, revoked): (
        i64,
        i64,
        String,
        String,
        String,
        Option<String>,
    ),
) -> Result<ApiKeyRow, StoreError> {
    Ok(ApiKeyRow {
        id: id(key_id),
        tenant_id: id(tenant_id),
        label,
        prefix,
        created_at: timestamp(&created)?,
        revoked_at: revoked.as_deref().map(timestamp).transpose()?,
    })
}

const API_KEY_COLUMNS: &str = "id, tenant_id, label, prefix, created_at, revoked_at";

impl Store for SqliteStore {
    fn create_tenant(&self, slug: &str, name: &str) -> Result<TenantRow, StoreError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO tenants (slug, name, created_at) VALUES (?1, ?2, ?3)",
            params![slug, name, now()],
        )
        .map_err(|e| {
            if is_constraint(&e) {
                StoreError::Conflict {
                    scope: "tenant slug",
                    value: slug.to_owned(),
                }
            } else {
                e.into()
            }
        })?;
        Ok(TenantRow {
            id: id(conn.last_insert_rowid()),
            slug: slug.to_owned(),
            name: name.to_owned(),
            active: true,
        })
    }

    fn tenants(&self) -> Result<Vec<TenantRow>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT id, slug, name, active FROM tenants ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(TenantRow {
                id: id(r.get(0)?),
                slug: r.get(1)?,
                name: r.get(2)?,
                active: r.get::<_, i64>(3)? != 0,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn insert_api_key(
        &self,
        tenant_id: u64,
        label: &str,
        prefix: &str,
        hash: &str,
    ) -> Result<ApiKeyRow, StoreError> {
        let conn = self.lock();
        let created = Timestamp::now();
        conn.execute(
            "INSERT INTO api_keys (tenant_id, label, prefix, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![sql_id(tenant_id), label, prefix, hash, created.to_string()],
        )?;
        Ok(ApiKeyRow {
            id: id(conn.last_insert_rowid()),
            tenant_id,
            label: label.to_owned(),
            prefix: prefix.to_owned(),
            created_at: created,
            revoked_at: None,
        })
    }

    fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let conn = self.lock();
        let row = conn
            .query_row(
                &format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE hash = ?1 AND revoked_at IS NULL"
                ),
                params![hash],
                api_key_row,
            )
            .optional()?;
        row.map(api_key).transpose()
    }

    fn api_keys(&self, tenant_id: u64) -> Result<Vec<ApiKeyRow>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE tenant_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![sql_id(tenant_id)], api_key_row)?;
        rows.map(|r| api_key(r?)).collect()
    }

    fn revoke_api_key(&self, tenant_id: u64, key_id: u64) -> Result<bool, StoreError> {
        let conn = self.lock();
        let n = conn.execute(
            "UPDATE api_keys SET revoked_at = ?3 WHERE id = ?1 AND tenant_id = ?2 AND revoked_at IS NULL",
            params![sql_id(key_id), sql_id(tenant_id), now()],
        )?;
        Ok(n == 1)
    }

    fn allocate_ids(&self, n: usize) -> Result<Vec<u64>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let first: i64 = tx.query_row("SELECT next_id FROM id_sequence", [], |r| r.get(0))?;
        let count = i64::try_from(n).unwrap_or(i64::MAX);
        run(
            &tx,
            "UPDATE id_sequence SET next_id = next_id + ?1",
            params![count],
        )?;
        tx.commit()?;
        Ok((first..first + count).map(id).collect())
    }

    fn commit(&self, tenant_id: u64, change: Change) -> Result<Vec<u64>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let tenant = sql_id(tenant_id);
        let stamp = now();
        if let Some(reply) = &change.idempotency {
            let inserted = run(
                &tx,
                "INSERT INTO idempotency_keys (tenant_id, key, fingerprint, status, body, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    tenant,
                    reply.key,
                    reply.fingerprint,
                    reply.status,
                    reply.body,
                    stamp
                ],
            );
            match inserted {
                Err(e) if is_constraint(&e) => {
                    return Err(StoreError::IdempotencyMismatch(reply.key.clone()));
                }
                other => {
                    other?;
                }
            }
        }
        for write in &change.writes {
            match write {
                Write::Put {
                    kind,
                    id: record_id,
                    data,
                    unique,
                    blob,
                } => {
                    let rid = sql_id(*record_id);
                    let existing: Option<(i64, String)> = tx
                        .query_row(
                            "SELECT tenant_id, kind FROM records WHERE id = ?1",
                            params![rid],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .optional()?;
                    let text = self.at_rest(*kind, data).to_string();
                    match existing {
                        None => {
                            run(
                                &tx,
                                "INSERT INTO records (id, tenant_id, kind, data, owner, created_at, updated_at)
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                                params![
                                    rid,
                                    tenant,
                                    kind.as_str(),
                                    text,
                                    owner(*kind, *record_id, data).map(sql_id),
                                    stamp
                                ],
                            )?;
                        }
                        Some((t, k)) if t == tenant && k == kind.as_str() => {
                            run(
                                &tx,
                                "UPDATE records SET data = ?2, owner = ?3, version = version + 1, updated_at = ?4 WHERE id = ?1",
                                params![
                                    rid,
                                    text,
                                    owner(*kind, *record_id, data).map(sql_id),
                                    stamp
                                ],
                            )?;
                            run(
                                &tx,
                                "DELETE FROM unique_keys WHERE record_id = ?1",
                                params![rid],
                            )?;
                        }
                        Some(_) => {
                            return Err(StoreError::Missing {
                                kind: *kind,
                                id: *record_id,
                            });
                        }
                    }
                    for key in unique {
                        let claimed = run(
                            &tx,
                            "INSERT INTO unique_keys (tenant_id, scope, value, record_id) VALUES (?1, ?2, ?3, ?4)",
                            params![tenant, key.scope, key.value, rid],
                        );
                        match claimed {
                            Err(e) if is_constraint(&e) => {
                                return Err(StoreError::Conflict {
                                    scope: key.scope,
                                    value: key.value.clone(),
                                });
                            }
                            other => {
                                other?;
                            }
                        }
                    }
                    if let Some(blob) = blob {
                        run(
                            &tx,
                            "INSERT OR REPLACE INTO blobs (record_id, media_type, bytes) VALUES (?1, ?2, ?3)",
                            params![rid, blob.media_type, blob.bytes],
                        )?;
                    }
                }
                Write::Delete {
                    kind,
                    id: record_id,
                } => {
                    let n = run(
                        &tx,
                        "DELETE FROM records WHERE id = ?1 AND tenant_id = ?2 AND kind = ?3",
                        params![sql_id(*record_id), tenant, kind.as_str()],
                    )?;
                    if n == 0 {
                        return Err(StoreError::Missing {
                            kind: *kind,
                            id: *record_id,
                        });
                    }
                }
            }
        }
        for entry in &change.audit {
            run(
                &tx,
                "INSERT INTO audit (tenant_id, at, action, kind, record_id, actor) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    tenant,
                    stamp,
                    entry.action,
                    entry.kind.as_str(),
                    entry.record_id.map(sql_id),
                    entry.actor
                ],
            )?;
        }
        let mut event_ids = Vec::with_capacity(change.access_events.len());
        for event in &change.access_events {
            run(
                &tx,
                "INSERT INTO access_events (tenant_id, occurred_at, data) VALUES (?1, ?2, ?3)",
                params![
                    tenant,
                    event.occurred_at.to_string(),
                    event.data.to_string()
                ],
            )?;
            event_ids.push(id(tx.last_insert_rowid()));
        }
        for message in &change.messages {
            run(
                &tx,
                "INSERT INTO outbox (tenant_id, channel, recipient, subject, body, cause, record_id, created_at, next_attempt_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    tenant,
                    message.channel.as_str(),
                    message.recipient,
                    message.subject,
                    message.body,
                    message.cause,
                    message.record_id.map(sql_id),
                    message.created_at.to_string(),
                    message.created_at.as_millisecond()
                ],
            )?;
        }
        tx.commit()?;
        Ok(event_ids)
    }

    fn records(&self, tenant_id: u64) -> Result<Vec<Record>, StoreError> {
        self.tenant_records(tenant_id, "")
    }

    fn unowned_records(&self, tenant_id: u64) -> Result<Vec<Record>, StoreError> {
        self.tenant_records(tenant_id, "AND owner IS NULL")
    }

    fn owned_records(&self, tenant_id: u64, owner: u64) -> Result<Vec<Record>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT kind, id, data, version FROM records WHERE tenant_id = ?1 AND owner = ?2 ORDER BY id",
        )?;
        read_records(
            self,
            stmt.query_map(params![sql_id(tenant_id), sql_id(owner)], record_row)?,
        )
    }

    fn owner_of(&self, tenant_id: u64, record_id: u64) -> Result<Option<u64>, StoreError> {
        let owner: Option<Option<i64>> = self
            .lock()
            .prepare_cached("SELECT owner FROM records WHERE tenant_id = ?1 AND id = ?2")?
            .query_row(params![sql_id(tenant_id), sql_id(record_id)], |r| r.get(0))
            .optional()?;
        Ok(owner.flatten().map(id))
    }

    fn records_of_kind(
        &self,
        tenant_id: u64,
        kind: Kind,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT kind, id, data, version FROM records
             WHERE tenant_id = ?1 AND kind = ?2 AND id > ?3 ORDER BY id LIMIT ?4",
        )?;
        read_records(
            self,
            stmt.query_map(
                params![
                    sql_id(tenant_id),
                    kind.as_str(),
                    sql_id(after),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                record_row,
            )?,
        )
    }

    fn claims_with_prefix(
        &self,
        tenant_id: u64,
        scope: &str,
        prefix: &str,
    ) -> Result<Vec<u64>, StoreError> {
        // Every value starting with the prefix sorts between it and the prefix followed by
        // the largest character (text compares as UTF-8 bytes): a range of the key's index.
        let upper = format!("{prefix}\u{10ffff}");
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT record_id FROM unique_keys
             WHERE tenant_id = ?1 AND scope = ?2 AND value >= ?3 AND value < ?4",
        )?;
        let rows = stmt.query_map(params![sql_id(tenant_id), scope, prefix, upper], |r| {
            r.get(0).map(id)
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn claim(&self, tenant_id: u64, scope: &str, value: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .lock()
            .prepare_cached(
                "SELECT record_id FROM unique_keys WHERE tenant_id = ?1 AND scope = ?2 AND value = ?3",
            )?
            .query_row(params![sql_id(tenant_id), scope, value], |r| {
                r.get(0).map(id)
            })
            .optional()?)
    }

    fn blob(&self, tenant_id: u64, record_id: u64) -> Result<Option<Blob>, StoreError> {
        let conn = self.lock();
        Ok(conn
            .query_row(
                "SELECT b.media_type, b.bytes FROM blobs b JOIN records r ON r.id = b.record_id
                 WHERE b.record_id = ?1 AND r.tenant_id = ?2",
                params![sql_id(record_id), sql_id(tenant_id)],
                |r| {
                    Ok(Blob {
                        media_type: r.get(0)?,
                        bytes: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    fn idempotent_reply(
        &self,
        tenant_id: u64,
        key: &str,
    ) -> Result<Option<IdempotentReply>, StoreError> {
        let conn = self.lock();
        Ok(conn
            .query_row(
                "SELECT key, fingerprint, status, body FROM idempotency_keys WHERE tenant_id = ?1 AND key = ?2",
                params![sql_id(tenant_id), key],
                |r| {
                    Ok(IdempotentReply {
                        key: r.get(0)?,
                        fingerprint: r.get(1)?,
                        status: r.get(2)?,
                        body: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    fn applied(&self, tenant_id: u64, terminal_id: u64) -> Result<Vec<(String, Json)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT subject, data FROM applied_state WHERE tenant_id = ?1 AND terminal_id = ?2 ORDER BY subject",
        )?;
        let rows = stmt.query_map(params![sql_id(tenant_id), sql_id(terminal_id)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (subject, data) = row?;
            out.push((subject, json(&data)?));
        }
        Ok(out)
    }

    fn set_applied(
        &self,
        tenant_id: u64,
        terminal_id: u64,
        subjects: &[(String, Option<Json>)],
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut put = tx.prepare_cached(
                "INSERT INTO applied_state (tenant_id, terminal_id, subject, data, applied_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (tenant_id, terminal_id, subject) DO UPDATE SET data = excluded.data, applied_at = excluded.applied_at",
            )?;
            let mut forget = tx.prepare_cached(
                "DELETE FROM applied_state WHERE tenant_id = ?1 AND terminal_id = ?2 AND subject = ?3",
            )?;
            let at = now();
            for (subject, data) in subjects {
                match data {
                    Some(data) => put.execute(params![
                        sql_id(tenant_id),
                        sql_id(terminal_id),
                        subject,
                        data.to_string(),
                        at
                    ])?,
                    None => {
                        forget.execute(params![sql_id(tenant_id), sql_id(terminal_id), subject])?
                    }
                };
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn access_events(
        &self,
        tenant_id: u64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AccessEventRow>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT id, occurred_at, data FROM access_events WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![
                sql_id(tenant_id),
                sql_id(after),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )?;
        let mut events = Vec::new();
        for row in rows {
            let (event_id, at, data) = row?;
            events.push(AccessEventRow {
                id: id(event_id),
                occurred_at: timestamp(&at)?,
                data: json(&data)?,
            });
        }
        Ok(events)
    }

    fn claim_owner(&self, scope: &str, value: &str) -> Result<Option<(u64, u64)>, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT tenant_id, record_id FROM unique_keys WHERE scope = ?1 AND value = ?2",
                params![scope, value],
                |r| Ok((id(r.get(0)?), id(r.get(1)?))),
            )
            .optional()?)
    }

    fn due_messages(&self, now: Timestamp, limit: usize) -> Result<Vec<MessageRow>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "{MESSAGE_COLUMNS} WHERE status = 'pending' AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms, id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(
            params![
                now.as_millisecond(),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            message_row,
        )?;
        rows.map(|r| r.map_err(StoreError::from).and_then(|r| r))
            .collect()
    }

    fn next_message_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let ms: Option<i64> = self.lock().query_row(
            "SELECT MIN(next_attempt_ms) FROM outbox WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )?;
        ms.map(|ms| {
            Timestamp::from_millisecond(ms)
                .map_err(|e| StoreError::Corrupt(format!("outbox instant {ms}: {e}")))
        })
        .transpose()
    }

    fn record_delivery(
        &self,
        message_id: u64,
        outcome: &DeliveryOutcome,
    ) -> Result<(), StoreError> {
        let conn = self.lock();
        match outcome {
            DeliveryOutcome::Sent(at) => conn.execute(
                "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?2, last_error = NULL
                 WHERE id = ?1 AND status = 'pending'",
                params![sql_id(message_id), at.to_string()],
            )?,
            DeliveryOutcome::Failed { error, retry_at } => conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2,
                        status = CASE WHEN ?3 IS NULL THEN 'failed' ELSE 'pending' END,
                        next_attempt_ms = COALESCE(?3, next_attempt_ms)
                 WHERE id = ?1 AND status = 'pending'",
                params![
                    sql_id(message_id),
                    error,
                    retry_at.map(|t| t.as_millisecond())
                ],
            )?,
        };
        Ok(())
    }

    fn messages(
        &self,
        tenant_id: u64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<MessageRow>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "{MESSAGE_COLUMNS} WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        ))?;
        let rows = stmt.query_map(
            params![
                sql_id(tenant_id),
                sql_id(after),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            message_row,
        )?;
        rows.map(|r| r.map_err(StoreError::from).and_then(|r| r))
            .collect()
    }
}

const MESSAGE_COLUMNS: &str = "SELECT id, tenant_id, channel, recipient, subject, body, cause, record_id, created_at, status, attempts, next_attempt_ms, sent_at, last_error FROM outbox";

/// One outbox row (columns as in [`MESSAGE_COLUMNS`]); the inner result says whether the
/// stored text made sense.
fn message_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<MessageRow, StoreError>> {
    let channel: String = r.get(2)?;
    let created_at: String = r.get(8)?;
    let status: String = r.get(9)?;
    let next_ms: i64 = r.get(11)?;
    let sent_at: Option<String> = r.get(12)?;
    let record_id: Option<i64> = r.get(7)?;
    let attempts: i64 = r.get(10)?;
    let base = (
        id(r.get(0)?),
        id(r.get(1)?),
        r.get::<_, String>(3)?,
        r.get::<_, String>(4)?,
        r.get::<_, String>(5)?,
        r.get::<_, String>(6)?,
        r.get::<_, Option<String>>(13)?,
    );
    Ok((|| {
        let (message_id, tenant_id, recipient, subject, body, cause, last_error) = base;
        Ok(MessageRow {
            id: message_id,
            tenant_id,
            message: NewMessage {
                channel: Channel::parse(&channel)
                    .ok_or_else(|| StoreError::Corrupt(format!("outbox channel '{channel}'")))?,
                recipient,
                subject,
                body,
                cause,
                record_id: record_id.map(id),
                created_at: timestamp(&created_at)?,
            },
            status: MessageStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("outbox status '{status}'")))?,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            next_attempt_at: Timestamp::from_millisecond(next_ms)
                .map_err(|e| StoreError::Corrupt(format!("outbox instant {next_ms}: {e}")))?,
            sent_at: sent_at.as_deref().map(timestamp).transpose()?,
            last_error,
        })
    })())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::UniqueKey;
    use serde_json::json;

    fn put(kind: Kind, id: u64, data: serde_json::Value, unique: &[(&'static str, &str)]) -> Write {
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

    #[test]
    fn a_failed_change_writes_nothing() {
        let store = SqliteStore::in_memory().unwrap();
        let t = store.create_tenant("acme", "Acme").unwrap().id;
        let ids = store.allocate_ids(3).unwrap();
        store
            .commit(
                t,
                Change {
                    writes: vec![put(
                        Kind::Person,
                        ids[0],
                        json!({"n": 1}),
                        &[("acs_id", "A")],
                    )],
                    ..Change::default()
                },
            )
            .unwrap();
        let clash = Change {
            writes: vec![
                put(Kind::Person, ids[1], json!({"n": 2}), &[("acs_id", "B")]),
                put(Kind::Person, ids[2], json!({"n": 3}), &[("acs_id", "A")]),
            ],
            ..Change::default()
        };
        let err = store.commit(t, clash).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Conflict {
                    scope: "acs_id",
                    ..
                }
            ),
            "{err}"
        );
        let records = store.records(t).unwrap();
        assert_eq!(
            records.len(),
            1,
            "the first put of the failed change was rolled back"
        );
    }

    #[test]
    fn tenants_cannot_touch_each_others_records() {
        let store = SqliteStore::in_memory().unwrap();
        let a = store.create_tenant("a", "A").unwrap().id;
        let b = store.create_tenant("b", "B").unwrap().id;
        let id = store.allocate_ids(1).unwrap()[0];
        store
            .commit(
                a,
                Change {
                    writes: vec![put(Kind::Site, id, json!({}), &[("acs_id", "X")])],
                    ..Change::default()
                },
            )
            .unwrap();
        // The same unique value is free in another tenant …
        let other = store.allocate_ids(1).unwrap()[0];
        store
            .commit(
                b,
                Change {
                    writes: vec![put(Kind::Site, other, json!({}), &[("acs_id", "X")])],
                    ..Change::default()
                },
            )
            .unwrap();
        // … but tenant B can neither overwrite nor delete A's record.
        for write in [
            put(Kind::Site, id, json!({"stolen": true}), &[]),
            Write::Delete {
                kind: Kind::Site,
                id,
            },
        ] {
            let err = store
                .commit(
                    b,
                    Change {
                        writes: vec![write],
                        ..Change::default()
                    },
                )
                .unwrap_err();
            assert!(matches!(err, StoreError::Missing { .. }), "{err}");
        }
        assert_eq!(store.records(a).unwrap()[0].data, json!({}));
    }

    #[test]
    fn device_passwords_are_sealed_at_rest_and_need_their_key() {
        let dir = std::env::temp_dir().join(format!("acs-seal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("acs.db");
        // Stores a terminal record with `password` under a fresh id.
        let add_terminal = |store: &SqliteStore, tenant: u64, password: &str| {
            let id = store.allocate_ids(1).unwrap()[0];
            let write = put(
                Kind::Terminal,
                id,
                json!({"model": "iDFace", "password": password}),
                &[],
            );
            store
                .commit(
                    tenant,
                    Change {
                        writes: vec![write],
                        ..Change::default()
                    },
                )
                .unwrap();
        };
        // A database written in clear by an earlier version.
        let tenant = {
            let store = SqliteStore::open(&path).unwrap();
            let tenant = store.create_tenant("acme", "Acme").unwrap().id;
            add_terminal(&store, tenant, "legacy-pass");
            tenant
        };
        let key = SecretKey::generate();
        {
            let store = SqliteStore::open_sealed(&path, key).unwrap();
            add_terminal(&store, tenant, "new-pass");
            let passwords: Vec<Json> = store
                .records(tenant)
                .unwrap()
                .into_iter()
                .map(|r| r.data["password"].clone())
                .collect();
            assert_eq!(passwords, [json!("legacy-pass"), json!("new-pass")]);
        }
        let raw: Vec<String> = {
            let conn = Connection::open(&path).unwrap();
            let mut stmt = conn.prepare("SELECT data FROM records").unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(raw.len(), 2);
        assert!(
            raw.iter().all(|d| !d.contains("legacy-pass")
                && !d.contains("new-pass")
                && d.contains("sealed")),
            "{raw:?}"
        );
        assert!(matches!(
            SqliteStore::open_sealed(&path, SecretKey::generate()),
            Err(StoreError::Sealed(_))
        ));
        assert!(matches!(
            SqliteStore::open(&path).unwrap().records(tenant),
            Err(StoreError::Sealed(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn migrations_are_versioned_and_idempotent() {
        let store = SqliteStore::in_memory().unwrap();
        assert_eq!(store.version().unwrap(), SqliteStore::supported_version());
        assert_eq!(store.migrate().unwrap(), 0);
    }
}
