//! The conversion of a database whose secrets an earlier version stored in clear into
//! their form at rest ([`crate::store::secrets`]): records, unique keys, applied documents,
//! outbox bodies and stored replies, in one transaction, once (the `secrets_at_rest` row
//! remembers it and holds a value sealed with the key, which later opens check). What the
//! clear rows left in the file's free pages and in the log is wiped afterwards.

use rusqlite::{OptionalExtension as _, Transaction, TransactionBehavior, params};

use super::SqliteStore;
use super::sql::json;
use crate::store::StoreError;
use crate::store::seal::{SealError, SecretKey};
use crate::store::secrets::Conversion;

/// The text sealed into `secrets_at_rest.check_value`.
const CHECK: &str = "acs-core secrets at rest";

/// What a conversion changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Converted {
    /// Whether the database had been converted already (nothing else was done).
    pub already: bool,
    /// Records whose secrets were sealed or digested.
    pub records: usize,
    /// Unique keys digested.
    pub unique_keys: usize,
    /// Applied documents sealed.
    pub applied: usize,
    /// Outbox bodies sealed.
    pub messages: usize,
    /// Stored idempotent replies sealed.
    pub replies: usize,
}

impl SqliteStore {
    /// Converts every secret still in clear into its form at rest under `key`, once; on
    /// later calls only checks that `key` is the database's key. Fails with
    /// [`StoreError::Sealed`] when the database was sealed with another key.
    pub fn convert_secrets(&self, key: &SecretKey) -> Result<Converted, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let check: Option<String> = tx
            .query_row(
                "SELECT check_value FROM secrets_at_rest WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(check) = check {
            let opened = key.open(&json(&check)?).map_err(StoreError::Sealed)?;
            if opened != CHECK {
                return Err(StoreError::Sealed(SealError::CannotOpen));
            }
            return Ok(Converted {
                already: true,
                ..Converted::default()
            });
        }
        let conversion = Conversion::new(key.clone());
        let converted = Converted {
            already: false,
            records: records(&tx, &conversion)?,
            unique_keys: unique_keys(&tx, &conversion)?,
            applied: applied(&tx, &conversion)?,
            messages: texts(&tx, &conversion, "outbox", "id", "body")?,
            replies: texts(&tx, &conversion, "idempotency_keys", "rowid", "body")?,
        };
        tx.execute(
            "INSERT INTO secrets_at_rest (id, check_value, converted_at) VALUES (1, ?1, ?2)",
            params![
                key.seal(CHECK).to_string(),
                jiff::Timestamp::now().to_string()
            ],
        )?;
        tx.commit()?;
        if converted != Converted::default() {
            // The clear rows are gone from the tables but not from the file's free pages
            // or the log: rebuild the file and empty the log.
            conn.execute_batch("VACUUM")?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(converted)
    }
}

fn records(tx: &Transaction<'_>, conversion: &Conversion) -> Result<usize, StoreError> {
    let rows: Vec<(i64, String, String)> = {
        let mut stmt = tx.prepare("SELECT id, kind, data FROM records")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?
    };
    let mut changed = 0;
    for (id, kind, data) in rows {
        if let Some(stored) = conversion
            .record(&kind, &json(&data)?)
            .map_err(StoreError::Sealed)?
        {
            tx.execute(
                "UPDATE records SET data = ?2 WHERE id = ?1",
                params![id, stored.to_string()],
            )?;
            changed += 1;
        }
    }
    Ok(changed)
}

fn unique_keys(tx: &Transaction<'_>, conversion: &Conversion) -> Result<usize, StoreError> {
    let rows: Vec<(i64, String, String)> = {
        let mut stmt = tx.prepare("SELECT rowid, scope, value FROM unique_keys")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?
    };
    let mut changed = 0;
    for (rowid, scope, value) in rows {
        if let Some(stored) = conversion.claim(&scope, &value) {
            tx.execute(
                "UPDATE unique_keys SET value = ?2 WHERE rowid = ?1",
                params![rowid, stored],
            )?;
            changed += 1;
        }
    }
    Ok(changed)
}

fn applied(tx: &Transaction<'_>, conversion: &Conversion) -> Result<usize, StoreError> {
    let rows: Vec<(i64, String)> = {
        let mut stmt = tx.prepare("SELECT rowid, data FROM applied_state")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    let mut changed = 0;
    for (rowid, data) in rows {
        if let Some(stored) = conversion.applied(&json(&data)?) {
            tx.execute(
                "UPDATE applied_state SET data = ?2 WHERE rowid = ?1",
                params![rowid, stored.to_string()],
            )?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// Seals the text column `column` of every row of `table` (rows named by `id`).
fn texts(
    tx: &Transaction<'_>,
    conversion: &Conversion,
    table: &str,
    id: &str,
    column: &str,
) -> Result<usize, StoreError> {
    let rows: Vec<(i64, String)> = {
        let mut stmt = tx.prepare(&format!("SELECT {id}, {column} FROM {table}"))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    let mut changed = 0;
    for (rowid, text) in rows {
        if let Some(stored) = conversion.text(&text) {
            tx.execute(
                &format!("UPDATE {table} SET {column} = ?2 WHERE {id} = ?1"),
                params![rowid, stored],
            )?;
            changed += 1;
        }
    }
    Ok(changed)
}
