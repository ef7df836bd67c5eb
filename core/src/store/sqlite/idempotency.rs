//! Idempotency replies: the reply to a create made with an `Idempotency-Key`, remembered
//! in the create's own transaction, so a repeated request is answered with it; the same
//! key with another request is [`StoreError::IdempotencyMismatch`].

use rusqlite::{Connection, OptionalExtension as _, params};

use super::sql::{is_constraint, run, sql_id};
use crate::store::{IdempotentReply, StoreError};

/// Remembers `reply` for `tenant`; fails if its key was used before.
pub(super) fn remember(
    tx: &Connection,
    tenant: i64,
    reply: &IdempotentReply,
    stamp: &str,
) -> Result<(), StoreError> {
    let inserted = run(
        tx,
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
        Err(e) if is_constraint(&e) => Err(StoreError::IdempotencyMismatch(reply.key.clone())),
        other => {
            other?;
            Ok(())
        }
    }
}

/// The reply remembered under `key` for the tenant.
pub(super) fn reply(
    conn: &Connection,
    tenant_id: u64,
    key: &str,
) -> Result<Option<IdempotentReply>, StoreError> {
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
