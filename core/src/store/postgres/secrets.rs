//! The secrets-at-rest check of a PostgreSQL database ([`crate::store::secrets`]): the
//! `secrets_at_rest` row holds a value sealed with the database's key, written on the first
//! open with a key and checked on every later one, so a store opened with another key is
//! refused at once. Rows written in clear (by a bare store without the sealing layer) are
//! converted in the same transaction, as SQLite's conversion does.

use deadpool_postgres::{Client, GenericClient};

use super::PostgresStore;
use super::sql::{json, row, rows, run};
use crate::store::StoreError;
use crate::store::seal::{SealError, SecretKey};
use crate::store::secrets::Conversion;
use crate::store::sqlite::Converted;

/// The text sealed into `secrets_at_rest.check_value`.
const CHECK: &str = "acs-core secrets at rest";

impl PostgresStore {
    /// Converts every secret still in clear into its form at rest under `key`, once; on
    /// later calls only checks that `key` is the database's key. Fails with
    /// [`StoreError::Sealed`] when the database was sealed with another key.
    pub fn convert_secrets(&self, key: &SecretKey) -> Result<Converted, StoreError> {
        let key = key.clone();
        self.with(move |c| Box::pin(async move { convert(c, key).await }))
    }
}

async fn convert(c: &mut Client, key: SecretKey) -> Result<Converted, StoreError> {
    let tx = c.transaction().await?;
    // Two instances opening a fresh database at once: one converts, the other waits here.
    run(&tx, "LOCK TABLE secrets_at_rest IN EXCLUSIVE MODE", &[]).await?;
    let check = row(
        &tx,
        "SELECT check_value FROM secrets_at_rest WHERE id = 1",
        &[],
    )
    .await?;
    if let Some(check) = check {
        let opened = key
            .open(&json(check.try_get(0)?)?)
            .map_err(StoreError::Sealed)?;
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
        records: records(&tx, &conversion).await?,
        unique_keys: unique_keys(&tx, &conversion).await?,
        applied: applied(&tx, &conversion).await?,
        messages: texts(&tx, &conversion, "outbox", "id::TEXT", "body").await?,
        replies: texts(
            &tx,
            &conversion,
            "idempotency_keys",
            "tenant_id::TEXT || ' ' || key",
            "body",
        )
        .await?,
    };
    run(
        &tx,
        "INSERT INTO secrets_at_rest (id, check_value, converted_at) VALUES (1, $1, $2)",
        &[
            &key.seal(CHECK).to_string(),
            &jiff::Timestamp::now().to_string(),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(converted)
}

async fn records(tx: &impl GenericClient, conversion: &Conversion) -> Result<usize, StoreError> {
    let mut changed = 0;
    for r in rows(tx, "SELECT id, kind, data FROM records", &[]).await? {
        let id: i64 = r.try_get(0)?;
        let stored = conversion
            .record(r.try_get(1)?, &json(r.try_get(2)?)?)
            .map_err(StoreError::Sealed)?;
        if let Some(stored) = stored {
            run(
                tx,
                "UPDATE records SET data = $2 WHERE id = $1",
                &[&id, &stored.to_string()],
            )
            .await?;
            changed += 1;
        }
    }
    Ok(changed)
}

async fn unique_keys(
    tx: &impl GenericClient,
    conversion: &Conversion,
) -> Result<usize, StoreError> {
    let mut changed = 0;
    for r in rows(tx, "SELECT tenant_id, scope, value FROM unique_keys", &[]).await? {
        let (tenant, scope, value): (i64, &str, &str) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        if let Some(stored) = conversion.claim(scope, value) {
            run(
                tx,
                "UPDATE unique_keys SET value = $4 WHERE tenant_id = $1 AND scope = $2 AND value = $3",
                &[&tenant, &scope, &value, &stored],
            )
            .await?;
            changed += 1;
        }
    }
    Ok(changed)
}

async fn applied(tx: &impl GenericClient, conversion: &Conversion) -> Result<usize, StoreError> {
    let mut changed = 0;
    let found = rows(
        tx,
        "SELECT tenant_id, terminal_id, subject, data FROM applied_state",
        &[],
    )
    .await?;
    for r in found {
        let (tenant, terminal, subject): (i64, i64, &str) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        if let Some(stored) = conversion.applied(&json(r.try_get(3)?)?) {
            run(
                tx,
                "UPDATE applied_state SET data = $4 WHERE tenant_id = $1 AND terminal_id = $2 AND subject = $3",
                &[&tenant, &terminal, &subject, &stored.to_string()],
            )
            .await?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// Seals the text column `column` of every row of `table` (rows named by the text
/// expression `id`).
async fn texts(
    tx: &impl GenericClient,
    conversion: &Conversion,
    table: &str,
    id: &str,
    column: &str,
) -> Result<usize, StoreError> {
    let mut changed = 0;
    for r in rows(tx, &format!("SELECT {id}, {column} FROM {table}"), &[]).await? {
        let (row_id, text): (&str, &str) = (r.try_get(0)?, r.try_get(1)?);
        if let Some(stored) = conversion.text(text) {
            run(
                tx,
                &format!("UPDATE {table} SET {column} = $2 WHERE {id} = $1"),
                &[&row_id, &stored],
            )
            .await?;
            changed += 1;
        }
    }
    Ok(changed)
}
