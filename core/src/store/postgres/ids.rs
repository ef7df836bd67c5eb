//! The id sequence: one counter hands out record ids, unique across kinds and tenants. A
//! single `UPDATE … RETURNING` takes a range, so concurrent callers (threads or instances)
//! never get the same id.

use deadpool_postgres::GenericClient;

use super::PostgresStore;
use super::sql::{id, row, run, sql_count, sql_id};
use crate::store::StoreError;

impl PostgresStore {
    /// Makes every id handed out from now on at least `first`.
    pub fn reserve_ids_from(&self, first: u64) -> Result<(), StoreError> {
        self.with(move |c| {
            Box::pin(async move {
                run(
                    c,
                    "UPDATE id_sequence SET next_id = GREATEST(next_id, $1)",
                    &[&sql_id(first)],
                )
                .await?;
                Ok(())
            })
        })
    }
}

/// Takes the next `n` ids of the sequence.
pub(super) async fn allocate(c: &impl GenericClient, n: usize) -> Result<Vec<u64>, StoreError> {
    let count = sql_count(n);
    let taken = row(
        c,
        "UPDATE id_sequence SET next_id = next_id + $1 RETURNING next_id - $1",
        &[&count],
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt("the id sequence has no row".to_owned()))?;
    let first: i64 = taken.try_get(0)?;
    Ok((first..first + count).map(id).collect())
}
