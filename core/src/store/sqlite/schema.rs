//! The database schema: the migrations of `core/migrations/`, applied in order on open and
//! tracked by `PRAGMA user_version` (migration `i` brings the schema to version `i + 1`).
//! A database newer than this program is refused rather than misread.

use rusqlite::TransactionBehavior;

use super::SqliteStore;
use crate::store::StoreError;

/// The migrations, in order; migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/0001_initial.sql"),
    include_str!("../../../migrations/0002_applied_state.sql"),
    include_str!("../../../migrations/0003_outbox.sql"),
    include_str!("../../../migrations/0004_record_owner.sql"),
    include_str!("../../../migrations/0005_device_ids.sql"),
    include_str!("../../../migrations/0006_webhooks.sql"),
    include_str!("../../../migrations/0007_secrets_at_rest.sql"),
    include_str!("../../../migrations/0008_instances.sql"),
];

impl SqliteStore {
    /// The schema version this program writes.
    pub fn supported_version() -> i64 {
        MIGRATIONS.len() as i64
    }

    /// The database's schema version.
    pub fn version(&self) -> Result<i64, StoreError> {
        Ok(self
            .lock()
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Applies the migrations the database has not seen yet; returns how many ran.
    pub fn migrate(&self) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let supported = SqliteStore::supported_version();
        if found > supported {
            return Err(StoreError::TooNew { found, supported });
        }
        let pending = &MIGRATIONS[usize::try_from(found).unwrap_or(0)..];
        for (i, sql) in pending.iter().enumerate() {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", found + i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(pending.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_versioned_and_idempotent() {
        let store = SqliteStore::in_memory().unwrap();
        assert_eq!(store.version().unwrap(), SqliteStore::supported_version());
        assert_eq!(store.migrate().unwrap(), 0);
    }
}
