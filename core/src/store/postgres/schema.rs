//! The database schema: the migrations of `core/migrations/postgres/`, which have the
//! same versions and meaning as SQLite's `core/migrations/` (a test keeps the two sets in
//! step). Each runs in a transaction of its own that first takes a transaction-scoped
//! advisory lock, so instances starting at once apply each migration exactly once; the
//! version reached is kept in `acs_schema_version`. A database newer than this program is
//! refused rather than misread.

use deadpool_postgres::{Client, GenericClient};

use super::PostgresStore;
use super::sql::{row, run};
use crate::store::StoreError;

/// The migrations, in order; migration `i` brings the schema to version `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_initial.sql"),
    include_str!("../../../migrations/postgres/0002_applied_state.sql"),
    include_str!("../../../migrations/postgres/0003_outbox.sql"),
    include_str!("../../../migrations/postgres/0004_record_owner.sql"),
    include_str!("../../../migrations/postgres/0005_device_ids.sql"),
    include_str!("../../../migrations/postgres/0006_webhooks.sql"),
    include_str!("../../../migrations/postgres/0007_secrets_at_rest.sql"),
    include_str!("../../../migrations/postgres/0008_instances.sql"),
];

/// The advisory lock migrations hold (an arbitrary constant: "acs-core" in ASCII).
const MIGRATION_LOCK: i64 = 0x6163_732d_636f_7265;

impl PostgresStore {
    /// The schema version this program writes.
    pub fn supported_version() -> i64 {
        MIGRATIONS.len() as i64
    }

    /// The database's schema version.
    pub fn version(&self) -> Result<i64, StoreError> {
        self.with(|c| Box::pin(async move { version(&*c).await }))
    }

    /// Applies the migrations the database has not seen yet; returns how many ran.
    pub fn migrate(&self) -> Result<usize, StoreError> {
        self.with(|c| Box::pin(migrate(c)))
    }
}

/// The version recorded in `acs_schema_version` (0 for an empty database).
async fn version(c: &impl GenericClient) -> Result<i64, StoreError> {
    let exists = row(
        c,
        "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'acs_schema_version'",
        &[],
    )
    .await?;
    if exists.is_none() {
        return Ok(0);
    }
    let found = row(c, "SELECT version FROM acs_schema_version", &[]).await?;
    Ok(match found {
        Some(r) => r.try_get(0)?,
        None => 0,
    })
}

/// Applies the pending migrations one transaction each, under the advisory lock.
async fn migrate(c: &mut Client) -> Result<usize, StoreError> {
    let supported = PostgresStore::supported_version();
    let mut applied = 0;
    loop {
        let tx = c.transaction().await?;
        run(&tx, "SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS acs_schema_version (version BIGINT NOT NULL)")
            .await?;
        let found = version(&tx).await?;
        if found > supported {
            return Err(StoreError::TooNew { found, supported });
        }
        if found == supported {
            tx.commit().await?;
            return Ok(applied);
        }
        let index = usize::try_from(found).unwrap_or(0);
        tx.batch_execute(MIGRATIONS[index]).await?;
        run(&tx, "DELETE FROM acs_schema_version", &[]).await?;
        run(
            &tx,
            "INSERT INTO acs_schema_version (version) VALUES ($1)",
            &[&(found + 1)],
        )
        .await?;
        tx.commit().await?;
        applied += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    /// The versions of the `NNNN_*.sql` files in `dir`, in order.
    fn versions(dir: &str) -> Vec<u32> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut found: Vec<u32> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                let stem = name.strip_suffix(".sql")?;
                stem.split('_').next()?.parse().ok()
            })
            .collect();
        found.sort_unstable();
        found
    }

    #[test]
    fn both_backends_have_the_same_migration_versions() {
        let sqlite = versions("migrations");
        let postgres = versions("migrations/postgres");
        assert_eq!(sqlite, postgres, "a migration exists for one backend only");
        let expected: Vec<u32> = (1..=postgres.len() as u32).collect();
        assert_eq!(postgres, expected, "versions are consecutive from 1");
        assert_eq!(MIGRATIONS.len(), postgres.len(), "every file is applied");
        assert_eq!(
            crate::store::SqliteStore::supported_version(),
            crate::store::PostgresStore::supported_version()
        );
    }
}
