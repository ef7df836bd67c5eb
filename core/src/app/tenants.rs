//! Tenants and their API keys: creating a tenant, issuing, listing and revoking keys,
//! and the caller behind a key.

use super::api_keys::{self, GeneratedKey};
use super::{Core, blocking};
use crate::domain::{Tenant, TenantId};
use crate::error::AppError;
use crate::store::{ApiKeyRow, TenantRow};

/// Who is calling: a tenant through one of its API keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The tenant.
    pub tenant: TenantId,
    /// The key's public prefix (the audit trail's actor).
    pub key_prefix: String,
}

impl Core {
    /// Creates a tenant with a first API key (the secret is returned once).
    pub async fn create_tenant(
        &self,
        slug: &str,
        name: &str,
    ) -> Result<(TenantRow, GeneratedKey), AppError> {
        Tenant::new(TenantId::new(0), name)?;
        let slug = slug.trim().to_owned();
        if slug.is_empty()
            || slug.len() > 64
            || !slug
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(AppError::invalid(
                "slug",
                "slug must be 1 to 64 letters, digits, '-' or '_'",
            ));
        }
        let store = self.inner.store.clone();
        let name = name.to_owned();
        let created = blocking(move || {
            let tenant = store.create_tenant(&slug, &name)?;
            let key = api_keys::generate();
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
    ) -> Result<(ApiKeyRow, GeneratedKey), AppError> {
        let store = self.inner.store.clone();
        let label = label.to_owned();
        blocking(move || {
            let key = api_keys::generate();
            let row = store.insert_api_key(tenant.get(), &label, &key.prefix, &key.hash)?;
            Ok((row, key))
        })
        .await
    }

    /// The tenant's API keys.
    pub async fn api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKeyRow>, AppError> {
        let store = self.inner.store.clone();
        blocking(move || Ok(store.api_keys(tenant.get())?)).await
    }

    /// Revokes one of the tenant's keys.
    pub async fn revoke_api_key(&self, tenant: TenantId, key_id: u64) -> Result<(), AppError> {
        let store = self.inner.store.clone();
        let revoked = blocking(move || Ok(store.revoke_api_key(tenant.get(), key_id)?)).await?;
        if revoked {
            Ok(())
        } else {
            Err(AppError::not_found("api key", key_id))
        }
    }

    /// The caller behind an API key, if the key is known and not revoked.
    pub async fn authenticate(&self, key: &str) -> Result<Option<Caller>, AppError> {
        let store = self.inner.store.clone();
        let hash = api_keys::digest(key);
        let row = blocking(move || Ok(store.api_key_by_hash(&hash)?)).await?;
        Ok(row.map(|row| Caller {
            tenant: TenantId::new(row.tenant_id),
            key_prefix: row.prefix,
        }))
    }

    /// Every tenant's id.
    pub async fn tenant_ids(&self) -> Result<Vec<TenantId>, AppError> {
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
}
