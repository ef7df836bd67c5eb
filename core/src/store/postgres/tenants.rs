//! Tenants and their API keys: a tenant's slug is unique; a key is stored as its public
//! prefix and a hash of its secret, and a revoked key stays listed but no longer matches.

use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use tokio_postgres::Row;

use super::sql::{id, is_unique_violation, now, row, rows, run, sql_id, timestamp};
use crate::store::{ApiKeyRow, StoreError, TenantRow};

/// Creates a tenant; its slug must be free.
pub(super) async fn create(
    c: &impl GenericClient,
    slug: &str,
    name: &str,
) -> Result<TenantRow, StoreError> {
    let created = row(
        c,
        "INSERT INTO tenants (slug, name, created_at) VALUES ($1, $2, $3) RETURNING id",
        &[&slug, &name, &now()],
    )
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict {
                scope: "tenant slug",
                value: slug.to_owned(),
            }
        } else {
            e.into()
        }
    })?
    .ok_or_else(|| StoreError::Corrupt("a new tenant has no id".to_owned()))?;
    let tenant: i64 = created.try_get(0)?;
    run(
        c,
        "INSERT INTO tenant_revisions (tenant_id) VALUES ($1)",
        &[&tenant],
    )
    .await?;
    Ok(TenantRow {
        id: id(tenant),
        slug: slug.to_owned(),
        name: name.to_owned(),
        active: true,
    })
}

/// Every tenant, by id.
pub(super) async fn list(c: &impl GenericClient) -> Result<Vec<TenantRow>, StoreError> {
    rows(
        c,
        "SELECT id, slug, name, active FROM tenants ORDER BY id",
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(TenantRow {
            id: id(r.try_get(0)?),
            slug: r.try_get(1)?,
            name: r.try_get(2)?,
            active: r.try_get(3)?,
        })
    })
    .collect()
}

/// Stores a new API key of `tenant_id` (only the hash of its secret).
pub(super) async fn insert_api_key(
    c: &impl GenericClient,
    tenant_id: u64,
    label: &str,
    prefix: &str,
    hash: &str,
) -> Result<ApiKeyRow, StoreError> {
    let created = Timestamp::now();
    let inserted = row(
        c,
        "INSERT INTO api_keys (tenant_id, label, prefix, hash, created_at) VALUES ($1, $2, $3, $4, $5)
         RETURNING id",
        &[&sql_id(tenant_id), &label, &prefix, &hash, &created.to_string()],
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt("a new API key has no id".to_owned()))?;
    Ok(ApiKeyRow {
        id: id(inserted.try_get(0)?),
        tenant_id,
        label: label.to_owned(),
        prefix: prefix.to_owned(),
        created_at: created,
        revoked_at: None,
    })
}

/// The live (unrevoked) key whose secret hashes to `hash`.
pub(super) async fn api_key_by_hash(
    c: &impl GenericClient,
    hash: &str,
) -> Result<Option<ApiKeyRow>, StoreError> {
    row(
        c,
        &format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE hash = $1 AND revoked_at IS NULL"),
        &[&hash],
    )
    .await?
    .as_ref()
    .map(api_key)
    .transpose()
}

/// Every key of `tenant_id`, revoked ones included, by id.
pub(super) async fn api_keys(
    c: &impl GenericClient,
    tenant_id: u64,
) -> Result<Vec<ApiKeyRow>, StoreError> {
    rows(
        c,
        &format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY id"),
        &[&sql_id(tenant_id)],
    )
    .await?
    .iter()
    .map(api_key)
    .collect()
}

/// Revokes a live key of `tenant_id`; false when there is none with that id.
pub(super) async fn revoke_api_key(
    c: &impl GenericClient,
    tenant_id: u64,
    key_id: u64,
) -> Result<bool, StoreError> {
    let n = run(
        c,
        "UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL",
        &[&sql_id(key_id), &sql_id(tenant_id), &now()],
    )
    .await?;
    Ok(n == 1)
}

const API_KEY_COLUMNS: &str = "id, tenant_id, label, prefix, created_at, revoked_at";

/// A row of [`API_KEY_COLUMNS`] as a key.
fn api_key(r: &Row) -> Result<ApiKeyRow, StoreError> {
    let revoked: Option<String> = r.try_get(5)?;
    Ok(ApiKeyRow {
        id: id(r.try_get(0)?),
        tenant_id: id(r.try_get(1)?),
        label: r.try_get(2)?,
        prefix: r.try_get(3)?,
        created_at: timestamp(r.try_get(4)?)?,
        revoked_at: revoked.as_deref().map(timestamp).transpose()?,
    })
}
