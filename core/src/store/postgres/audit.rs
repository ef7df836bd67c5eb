//! The audit trail: append-only, one row per entry of a committed change, stamped with the
//! change's instant.

use deadpool_postgres::GenericClient;

use super::sql::{run, sql_id};
use crate::store::{AuditEntry, StoreError};

/// Appends `entry` for `tenant`.
pub(super) async fn append(
    tx: &impl GenericClient,
    tenant: i64,
    entry: &AuditEntry,
    stamp: &str,
) -> Result<(), StoreError> {
    run(
        tx,
        "INSERT INTO audit (tenant_id, at, action, kind, record_id, actor) VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &tenant,
            &stamp,
            &entry.action,
            &entry.kind.as_str(),
            &entry.record_id.map(sql_id),
            &entry.actor,
        ],
    )
    .await?;
    Ok(())
}
