//! The id sequence: one counter hands out record ids, unique across kinds and tenants.

use rusqlite::{Connection, TransactionBehavior, params};

use super::SqliteStore;
use super::sql::{id, run, sql_count, sql_id};
use crate::store::StoreError;

impl SqliteStore {
    /// Makes every id handed out from now on at least `first` (a conformance run keeps the
    /// objects it creates on a real terminal in a reserved range this way).
    pub fn reserve_ids_from(&self, first: u64) -> Result<(), StoreError> {
        self.lock().execute(
            "UPDATE id_sequence SET next_id = MAX(next_id, ?1)",
            params![sql_id(first)],
        )?;
        Ok(())
    }
}

/// Takes the next `n` ids of the sequence.
pub(super) fn allocate(conn: &mut Connection, n: usize) -> Result<Vec<u64>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let first: i64 = tx.query_row("SELECT next_id FROM id_sequence", [], |r| r.get(0))?;
    let count = sql_count(n);
    run(
        &tx,
        "UPDATE id_sequence SET next_id = next_id + ?1",
        params![count],
    )?;
    tx.commit()?;
    Ok((first..first + count).map(id).collect())
}
