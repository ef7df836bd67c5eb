//! Records: one row per domain object (kind, tenant, JSON document, version), the person
//! it belongs to (its `owner`) and an optional blob (a selfie). Writes happen inside a
//! [`Change`](crate::store::Change)'s transaction (`commit`).

use deadpool_postgres::GenericClient;
use serde_json::Value as Json;
use tokio_postgres::Row;

use super::sql::{id, json, row, rows, run, sql_count, sql_id};
use crate::store::{Blob, Kind, Record, StoreError};

/// Inserts or replaces record `record_id` of `tenant`; a replaced record releases its
/// unique keys (the put claims them again). A record of that id that belongs to another
/// tenant or is of another kind is [`StoreError::Missing`].
///
/// The update is tried first and the insert only when nothing matched; an insert that
/// meets a row of that id (another tenant's or kind's, or one a concurrent transaction
/// just committed) inserts nothing and is refused the same way.
pub(super) async fn put(
    tx: &impl GenericClient,
    tenant: i64,
    kind: Kind,
    record_id: u64,
    data: &Json,
    stamp: &str,
) -> Result<(), StoreError> {
    let rid = sql_id(record_id);
    let text = data.to_string();
    let holder = owner(kind, record_id, data).map(sql_id);
    let updated = run(
        tx,
        "UPDATE records SET data = $4, owner = $5, version = version + 1, updated_at = $6
         WHERE id = $1 AND tenant_id = $2 AND kind = $3",
        &[&rid, &tenant, &kind.as_str(), &text, &holder, &stamp],
    )
    .await?;
    if updated == 1 {
        return super::unique_keys::release_all(tx, rid).await;
    }
    let inserted = run(
        tx,
        "INSERT INTO records (id, tenant_id, kind, data, owner, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (id) DO NOTHING",
        &[&rid, &tenant, &kind.as_str(), &text, &holder, &stamp],
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::Missing {
            kind,
            id: record_id,
        });
    }
    Ok(())
}

/// Attaches `blob` to record `rid` (replacing the one it had).
pub(super) async fn attach_blob(
    tx: &impl GenericClient,
    rid: i64,
    blob: &Blob,
) -> Result<(), StoreError> {
    run(
        tx,
        "INSERT INTO blobs (record_id, media_type, bytes) VALUES ($1, $2, $3)
         ON CONFLICT (record_id) DO UPDATE SET media_type = excluded.media_type, bytes = excluded.bytes",
        &[&rid, &blob.media_type, &blob.bytes],
    )
    .await?;
    Ok(())
}

/// Deletes record `record_id` of `tenant` (its unique keys and blob go with it).
pub(super) async fn delete(
    tx: &impl GenericClient,
    tenant: i64,
    kind: Kind,
    record_id: u64,
) -> Result<(), StoreError> {
    let n = run(
        tx,
        "DELETE FROM records WHERE id = $1 AND tenant_id = $2 AND kind = $3",
        &[&sql_id(record_id), &tenant, &kind.as_str()],
    )
    .await?;
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
pub(super) async fn of_tenant(
    c: &impl GenericClient,
    tenant_id: u64,
    filter: &'static str,
) -> Result<Vec<Record>, StoreError> {
    let found = rows(
        c,
        &format!(
            "SELECT kind, id, data, version FROM records WHERE tenant_id = $1 {filter} ORDER BY id"
        ),
        &[&sql_id(tenant_id)],
    )
    .await?;
    let mut records = read_records(&found)?;
    records.sort_by_key(|r| (Kind::ALL.iter().position(|k| *k == r.kind), r.id));
    Ok(records)
}

/// The records `owner` owns, by id.
pub(super) async fn owned_by(
    c: &impl GenericClient,
    tenant_id: u64,
    owner: u64,
) -> Result<Vec<Record>, StoreError> {
    let found = rows(
        c,
        "SELECT kind, id, data, version FROM records WHERE tenant_id = $1 AND owner = $2 ORDER BY id",
        &[&sql_id(tenant_id), &sql_id(owner)],
    )
    .await?;
    read_records(&found)
}

/// Up to `limit` records of `kind` with ids above `after`, by id.
pub(super) async fn of_kind(
    c: &impl GenericClient,
    tenant_id: u64,
    kind: Kind,
    after: u64,
    limit: usize,
) -> Result<Vec<Record>, StoreError> {
    let found = rows(
        c,
        "SELECT kind, id, data, version FROM records
         WHERE tenant_id = $1 AND kind = $2 AND id > $3 ORDER BY id LIMIT $4",
        &[
            &sql_id(tenant_id),
            &kind.as_str(),
            &sql_id(after),
            &sql_count(limit),
        ],
    )
    .await?;
    read_records(&found)
}

/// The person record `record_id` belongs to, if it exists and belongs to anyone.
pub(super) async fn owner_of(
    c: &impl GenericClient,
    tenant_id: u64,
    record_id: u64,
) -> Result<Option<u64>, StoreError> {
    let found = row(
        c,
        "SELECT owner FROM records WHERE tenant_id = $1 AND id = $2",
        &[&sql_id(tenant_id), &sql_id(record_id)],
    )
    .await?;
    Ok(match found {
        Some(r) => r.try_get::<_, Option<i64>>(0)?.map(id),
        None => None,
    })
}

/// The blob attached to record `record_id` of the tenant.
pub(super) async fn blob(
    c: &impl GenericClient,
    tenant_id: u64,
    record_id: u64,
) -> Result<Option<Blob>, StoreError> {
    let found = row(
        c,
        "SELECT b.media_type, b.bytes FROM blobs b JOIN records r ON r.id = b.record_id
         WHERE b.record_id = $1 AND r.tenant_id = $2",
        &[&sql_id(record_id), &sql_id(tenant_id)],
    )
    .await?;
    found
        .map(|r| {
            Ok(Blob {
                media_type: r.try_get(0)?,
                bytes: r.try_get(1)?,
            })
        })
        .transpose()
}

/// Rows of `(kind, id, data, version)` as records.
fn read_records(found: &[Row]) -> Result<Vec<Record>, StoreError> {
    found
        .iter()
        .map(|r| {
            let kind: &str = r.try_get(0)?;
            let kind = Kind::parse(kind)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown record kind '{kind}'")))?;
            Ok(Record {
                kind,
                id: id(r.try_get(1)?),
                data: json(r.try_get(2)?)?,
                version: id(r.try_get(3)?),
            })
        })
        .collect()
}
