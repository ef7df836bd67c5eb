//! Unique keys: the claims (`acs_id`, a card number, a PIN …) a record holds within its
//! tenant, which the database's unique index keeps exclusive – also between concurrent
//! transactions, where the second claim waits for the first to commit and then fails. A
//! put releases the record's claims and makes them anew; a claim another record holds
//! fails the whole change with [`StoreError::Conflict`].

use deadpool_postgres::GenericClient;

use super::sql::{id, is_unique_violation, row, rows, run, sql_id};
use crate::store::{StoreError, UniqueKey};

/// Claims every key of `unique` for record `rid` of `tenant`.
pub(super) async fn claim_all(
    tx: &impl GenericClient,
    tenant: i64,
    rid: i64,
    unique: &[UniqueKey],
) -> Result<(), StoreError> {
    for key in unique {
        let claimed = run(
            tx,
            "INSERT INTO unique_keys (tenant_id, scope, value, record_id) VALUES ($1, $2, $3, $4)",
            &[&tenant, &key.scope, &key.value, &rid],
        )
        .await;
        match claimed {
            Err(e) if is_unique_violation(&e) => {
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
pub(super) async fn release_all(tx: &impl GenericClient, rid: i64) -> Result<(), StoreError> {
    run(tx, "DELETE FROM unique_keys WHERE record_id = $1", &[&rid]).await?;
    Ok(())
}

/// The record of the tenant holding `(scope, value)`.
pub(super) async fn holder(
    c: &impl GenericClient,
    tenant_id: u64,
    scope: &str,
    value: &str,
) -> Result<Option<u64>, StoreError> {
    let found = row(
        c,
        "SELECT record_id FROM unique_keys WHERE tenant_id = $1 AND scope = $2 AND value = $3",
        &[&sql_id(tenant_id), &scope, &value],
    )
    .await?;
    Ok(match found {
        Some(r) => Some(id(r.try_get(0)?)),
        None => None,
    })
}

/// The records of the tenant holding a key of `scope` whose value starts with `prefix`.
pub(super) async fn holders_of_prefix(
    c: &impl GenericClient,
    tenant_id: u64,
    scope: &str,
    prefix: &str,
) -> Result<Vec<u64>, StoreError> {
    // Values compare as bytes (the column's "C" collation): every value starting with the
    // prefix sorts between it and the prefix followed by the largest character.
    let upper = format!("{prefix}\u{10ffff}");
    rows(
        c,
        "SELECT record_id FROM unique_keys
         WHERE tenant_id = $1 AND scope = $2 AND value >= $3 AND value < $4 ORDER BY value",
        &[&sql_id(tenant_id), &scope, &prefix, &upper],
    )
    .await?
    .iter()
    .map(|r| Ok(id(r.try_get(0)?)))
    .collect()
}

/// The tenant and record holding `(scope, value)` in any tenant.
pub(super) async fn holder_in_any_tenant(
    c: &impl GenericClient,
    scope: &str,
    value: &str,
) -> Result<Option<(u64, u64)>, StoreError> {
    let found = row(
        c,
        "SELECT tenant_id, record_id FROM unique_keys WHERE scope = $1 AND value = $2 LIMIT 1",
        &[&scope, &value],
    )
    .await?;
    Ok(match found {
        Some(r) => Some((id(r.try_get(0)?), id(r.try_get(1)?))),
        None => None,
    })
}
