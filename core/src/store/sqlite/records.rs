//! Records: one row per domain object (kind, tenant, JSON document, version), the person
//! it belongs to (its `owner`, so a person's records load together), and an optional blob
//! (a selfie). Writes happen inside a [`Change`](crate::store::Change)'s transaction
//! (`commit`).

use rusqlite::{Connection, OptionalExtension as _, params};
use serde_json::Value as Json;

use super::SqliteStore;
use super::sql::{id, json, run, sql_count, sql_id};
use crate::store::{Blob, Kind, Record, StoreError};

/// Inserts or replaces record `record_id` of `tenant`; a replaced record releases its
/// unique keys (the put claims them again). A record of that id that belongs to another
/// tenant or is of another kind is [`StoreError::Missing`].
pub(super) fn put(
    tx: &Connection,
    tenant: i64,
    kind: Kind,
    record_id: u64,
    data: &Json,
    stamp: &str,
) -> Result<(), StoreError> {
    let rid = sql_id(record_id);
    let existing: Option<(i64, String)> = tx
        .query_row(
            "SELECT tenant_id, kind FROM records WHERE id = ?1",
            params![rid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let text = data.to_string();
    match existing {
        None => {
            run(
                tx,
                "INSERT INTO records (id, tenant_id, kind, data, owner, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![
                    rid,
                    tenant,
                    kind.as_str(),
                    text,
                    owner(kind, record_id, data).map(sql_id),
                    stamp
                ],
            )?;
            Ok(())
        }
        Some((t, k)) if t == tenant && k == kind.as_str() => {
            run(
                tx,
                "UPDATE records SET data = ?2, owner = ?3, version = version + 1, updated_at = ?4 WHERE id = ?1",
                params![rid, text, owner(kind, record_id, data).map(sql_id), stamp],
            )?;
            super::unique_keys::release_all(tx, rid)
        }
        Some(_) => Err(StoreError::Missing {
            kind,
            id: record_id,
        }),
    }
}

/// Attaches `blob` to record `rid` (replacing the one it had).
pub(super) fn attach_blob(tx: &Connection, rid: i64, blob: &Blob) -> Result<(), StoreError> {
    run(
        tx,
        "INSERT OR REPLACE INTO blobs (record_id, media_type, bytes) VALUES (?1, ?2, ?3)",
        params![rid, blob.media_type, blob.bytes],
    )?;
    Ok(())
}

/// Deletes record `record_id` of `tenant` (its unique keys and blob go with it).
pub(super) fn delete(
    tx: &Connection,
    tenant: i64,
    kind: Kind,
    record_id: u64,
) -> Result<(), StoreError> {
    let n = run(
        tx,
        "DELETE FROM records WHERE id = ?1 AND tenant_id = ?2 AND kind = ?3",
        params![sql_id(record_id), tenant, kind.as_str()],
    )?;
    if n == 0 {
        return Err(StoreError::Missing {
            kind,
            id: record_id,
        });
    }
    Ok(())
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

/// A tenant's records matching `filter` (an SQL condition starting with `AND`, or
/// nothing), by kind then id.
pub(super) fn of_tenant(
    store: &SqliteStore,
    tenant_id: u64,
    filter: &str,
) -> Result<Vec<Record>, StoreError> {
    let conn = store.read()?;
    let mut stmt = conn.prepare(&format!(
        "SELECT kind, id, data, version FROM records WHERE tenant_id = ?1 {filter} ORDER BY id"
    ))?;
    let mut records = read_records(stmt.query_map(params![sql_id(tenant_id)], record_row)?)?;
    records.sort_by_key(|r| (Kind::ALL.iter().position(|k| *k == r.kind), r.id));
    Ok(records)
}

/// The records `owner` owns, by id.
pub(super) fn owned_by(
    store: &SqliteStore,
    tenant_id: u64,
    owner: u64,
) -> Result<Vec<Record>, StoreError> {
    let conn = store.read()?;
    let mut stmt = conn.prepare_cached(
        "SELECT kind, id, data, version FROM records WHERE tenant_id = ?1 AND owner = ?2 ORDER BY id",
    )?;
    read_records(stmt.query_map(params![sql_id(tenant_id), sql_id(owner)], record_row)?)
}

/// Up to `limit` records of `kind` with ids above `after`, by id.
pub(super) fn of_kind(
    store: &SqliteStore,
    tenant_id: u64,
    kind: Kind,
    after: u64,
    limit: usize,
) -> Result<Vec<Record>, StoreError> {
    let conn = store.read()?;
    let mut stmt = conn.prepare_cached(
        "SELECT kind, id, data, version FROM records
         WHERE tenant_id = ?1 AND kind = ?2 AND id > ?3 ORDER BY id LIMIT ?4",
    )?;
    read_records(stmt.query_map(
        params![
            sql_id(tenant_id),
            kind.as_str(),
            sql_id(after),
            sql_count(limit)
        ],
        record_row,
    )?)
}

/// The person record `record_id` belongs to, if it exists and belongs to anyone.
pub(super) fn owner_of(
    conn: &Connection,
    tenant_id: u64,
    record_id: u64,
) -> Result<Option<u64>, StoreError> {
    let owner: Option<Option<i64>> = conn
        .prepare_cached("SELECT owner FROM records WHERE tenant_id = ?1 AND id = ?2")?
        .query_row(params![sql_id(tenant_id), sql_id(record_id)], |r| r.get(0))
        .optional()?;
    Ok(owner.flatten().map(id))
}

/// The blob attached to record `record_id` of the tenant.
pub(super) fn blob(
    conn: &Connection,
    tenant_id: u64,
    record_id: u64,
) -> Result<Option<Blob>, StoreError> {
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

/// Reads rows of `(kind, id, data, version)` into records.
fn read_records(
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
            data: json(&data)?,
            version: id(version),
        });
    }
    Ok(records)
}

fn record_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, i64, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}
