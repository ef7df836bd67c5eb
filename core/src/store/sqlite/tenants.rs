//! Tenants and their API keys: a tenant's slug is unique; a key is stored as its public
//! prefix and a hash of its secret, and a revoked key stays listed but no longer matches.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension as _, params};

use super::sql::{id, is_constraint, now, sql_id, timestamp};
use crate::store::{ApiKeyRow, StoreError, TenantRow};

/// Creates a tenant; its slug must be free.
pub(super) fn create(conn: &Connection, slug: &str, name: &str) -> Result<TenantRow, StoreError> {
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
    let tenant = conn.last_insert_rowid();
    conn.execute(
        "INSERT INTO tenant_revisions (tenant_id) VALUES (?1)",
        params![tenant],
    )?;
    Ok(TenantRow {
        id: id(tenant),
        slug: slug.to_owned(),
        name: name.to_owned(),
        active: true,
    })
}

/// Every tenant, by id.
pub(super) fn list(conn: &Connection) -> Result<Vec<TenantRow>, StoreError> {
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

/// Stores a new API key of `tenant_id` (only the hash of its secret).
pub(super) fn insert_api_key(
    conn: &Connection,
    tenant_id: u64,
    label: &str,
    prefix: &str,
    hash: &str,
) -> Result<ApiKeyRow, StoreError> {
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

/// The live (unrevoked) key whose secret hashes to `hash`.
pub(super) fn api_key_by_hash(
    conn: &Connection,
    hash: &str,
) -> Result<Option<ApiKeyRow>, StoreError> {
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

/// Every key of `tenant_id`, revoked ones included, by id.
pub(super) fn api_keys(conn: &Connection, tenant_id: u64) -> Result<Vec<ApiKeyRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE tenant_id = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map(params![sql_id(tenant_id)], api_key_row)?;
    rows.map(|r| api_key(r?)).collect()
}

/// Revokes a live key of `tenant_id`; false when there is none with that id.
pub(super) fn revoke_api_key(
    conn: &Connection,
    tenant_id: u64,
    key_id: u64,
) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE api_keys SET revoked_at = ?3 WHERE id = ?1 AND tenant_id = ?2 AND revoked_at IS NULL",
        params![sql_id(key_id), sql_id(tenant_id), now()],
    )?;
    Ok(n == 1)
}

const API_KEY_COLUMNS: &str = "id, tenant_id, label, prefix, created_at, revoked_at";

/// The columns of [`API_KEY_COLUMNS`] as stored.
type ApiKeyColumns = (i64, i64, String, String, String, Option<String>);

fn api_key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKeyColumns> {
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
    (key_id, tenant_id, label, prefix, created, revoked): ApiKeyColumns,
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
