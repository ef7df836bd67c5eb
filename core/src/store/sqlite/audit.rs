//! The audit trail: append-only, one row per entry of a committed change, stamped with the
//! change's instant.

use rusqlite::{Connection, params};

use super::sql::{run, sql_id};
use crate::store::{AuditEntry, StoreError};

/// Appends `entry` for `tenant`.
pub(super) fn append(
    tx: &Connection,
    tenant: i64,
    entry: &AuditEntry,
    stamp: &str,
) -> Result<(), StoreError> {
    run(
        tx,
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
    Ok(())
}
