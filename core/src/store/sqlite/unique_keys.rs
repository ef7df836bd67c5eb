//! Unique keys: the claims (`acs_id`, a card number, a PIN …) a record holds within its
//! tenant, which the database's unique index keeps exclusive. A put releases the record's
//! claims and makes them anew, so a record holds exactly the keys of its last put; a
//! claim another record holds fails the whole change with [`StoreError::Conflict`].

use rusqlite::{Connection, OptionalExtension as _, params};

use super::sql::{id, is_constraint, run, sql_id};
use crate::store::{StoreError, UniqueKey};

/// Claims every key of `unique` for record `rid` of `tenant`.
pub(super) fn claim_all(
    tx: &Connection,
    tenant: i64,
    rid: i64,
    unique: &[UniqueKey],
) -> Result<(), StoreError> {
    for key in unique {
        let claimed = run(
            tx,
            "INSERT INTO unique_keys (tenant_id, scope, value, record_id) VALUES (?1, ?2, ?3, ?4)",
            params![tenant, key.scope, key.value, rid],
        );
        match claimed {
            Err(e) if is_constraint(&e) => {
                return Err(StoreError::Conflict {
                    scope: key.scope,
                    value: key.value.clone(),
                });
            }
            other => {
                other?;
            }
        }
    }
    Ok(())
}

/// Releases every key record `rid` holds.
pub(super) fn release_all(tx: &Connection, rid: i64) -> Result<(), StoreError> {
    run(
        tx,
        "DELETE FROM unique_keys WHERE record_id = ?1",
        params![rid],
    )?;
    Ok(())
}

/// The record of the tenant holding `(scope, value)`.
pub(super) fn holder(
    conn: &Connection,
    tenant_id: u64,
    scope: &str,
    value: &str,
) -> Result<Option<u64>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT record_id FROM unique_keys WHERE tenant_id = ?1 AND scope = ?2 AND value = ?3",
        )?
        .query_row(params![sql_id(tenant_id), scope, value], |r| {
            r.get(0).map(id)
        })
        .optional()?)
}

/// The records of the tenant holding a key of `scope` whose value starts with `prefix`.
pub(super) fn holders_of_prefix(
    conn: &Connection,
    tenant_id: u64,
    scope: &str,
    prefix: &str,
) -> Result<Vec<u64>, StoreError> {
    // Every value starting with the prefix sorts between it and the prefix followed by
    // the largest character (text compares as UTF-8 bytes): a range of the key's index.
    let upper = format!("{prefix}\u{10ffff}");
    let mut stmt = conn.prepare_cached(
        "SELECT record_id FROM unique_keys
         WHERE tenant_id = ?1 AND scope = ?2 AND value >= ?3 AND value < ?4",
    )?;
    let rows = stmt.query_map(params![sql_id(tenant_id), scope, prefix, upper], |r| {
        r.get(0).map(id)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The tenant and record holding `(scope, value)` in any tenant.
pub(super) fn holder_in_any_tenant(
    conn: &Connection,
    scope: &str,
    value: &str,
) -> Result<Option<(u64, u64)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT tenant_id, record_id FROM unique_keys WHERE scope = ?1 AND value = ?2",
            params![scope, value],
            |r| Ok((id(r.get(0)?), id(r.get(1)?))),
        )
        .optional()?)
}
