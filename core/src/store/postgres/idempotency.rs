//! Idempotency replies: the reply to a create made with an `Idempotency-Key`, remembered
//! in the create's own transaction, so a repeated request is answered with it; the same
//! key with another request is [`StoreError::IdempotencyMismatch`] (two concurrent
//! requests with one key: the second waits for the first to commit, then is refused).

use deadpool_postgres::GenericClient;

use super::sql::{is_unique_violation, row, run, sql_id};
use crate::store::{IdempotentReply, StoreError};

/// Remembers `reply` for `tenant`; fails if its key was used before.
pub(super) async fn remember(
    tx: &impl GenericClient,
    tenant: i64,
    reply: &IdempotentReply,
    stamp: &str,
) -> Result<(), StoreError> {
    let inserted = run(
        tx,
        "INSERT INTO idempotency_keys (tenant_id, key, fingerprint, status, body, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &tenant,
            &reply.key,
            &reply.fingerprint,
            &i64::from(reply.status),
            &reply.body,
            &stamp,
        ],
    )
    .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => {
            Err(StoreError::IdempotencyMismatch(reply.key.clone()))
        }
        other => {
            other?;
            Ok(())
        }
    }
}

/// The reply remembered under `key` for the tenant.
pub(super) async fn reply(
    c: &impl GenericClient,
    tenant_id: u64,
    key: &str,
) -> Result<Option<IdempotentReply>, StoreError> {
    let found = row(
        c,
        "SELECT key, fingerprint, status, body FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
        &[&sql_id(tenant_id), &key],
    )
    .await?;
    found
        .map(|r| {
            let status: i64 = r.try_get(2)?;
            Ok(IdempotentReply {
                key: r.try_get(0)?,
                fingerprint: r.try_get(1)?,
                status: u16::try_from(status)
                    .map_err(|_| StoreError::Corrupt(format!("reply status {status}")))?,
                body: r.try_get(3)?,
            })
        })
        .transpose()
}
