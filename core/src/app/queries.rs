//! Reads straight from the store: idempotent replies, pages of stored records, blobs and
//! access events.

use super::{Core, blocking};
use crate::domain::TenantId;
use crate::error::AppError;
use crate::store::{AccessEventRow, Blob, IdempotentReply, Kind};

impl Core {
    /// The stored reply of an earlier create with this idempotency key.
    pub async fn idempotent_reply(
        &self,
        tenant: TenantId,
        key: &str,
    ) -> Result<Option<IdempotentReply>, AppError> {
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
    ) -> Result<Vec<crate::store::Record>, AppError> {
        let store = self.inner.store.clone();
        blocking(move || Ok(store.records_of_kind(tenant.get(), kind, after, limit)?)).await
    }

    /// A record's binary data (a selfie).
    pub async fn blob(&self, tenant: TenantId, record_id: u64) -> Result<Option<Blob>, AppError> {
        let store = self.inner.store.clone();
        blocking(move || Ok(store.blob(tenant.get(), record_id)?)).await
    }

    /// Access events after `after`, oldest first.
    pub async fn access_events(
        &self,
        tenant: TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AccessEventRow>, AppError> {
        let store = self.inner.store.clone();
        blocking(move || Ok(store.access_events(tenant.get(), after, limit)?)).await
    }
}
