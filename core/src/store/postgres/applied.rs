//! Applied state: what the sync engine last brought each terminal to, one JSON document
//! per subject, so a restarted engine knows what every device holds.

use deadpool_postgres::{Client, GenericClient};
use serde_json::Value as Json;

use super::sql::{json, now, rows, run, sql_id};
use crate::store::StoreError;

/// Every subject recorded for the terminal, by subject (compared as bytes).
pub(super) async fn of_terminal(
    c: &impl GenericClient,
    tenant_id: u64,
    terminal_id: u64,
) -> Result<Vec<(String, Json)>, StoreError> {
    rows(
        c,
        "SELECT subject, data FROM applied_state WHERE tenant_id = $1 AND terminal_id = $2 ORDER BY subject",
        &[&sql_id(tenant_id), &sql_id(terminal_id)],
    )
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, json(r.try_get(1)?)?)))
    .collect()
}

/// Records each subject's document (`None`: forgets the subject), in one transaction.
pub(super) async fn set(
    c: &mut Client,
    tenant_id: u64,
    terminal_id: u64,
    subjects: &[(String, Option<Json>)],
) -> Result<(), StoreError> {
    let tx = c.transaction().await?;
    let (tenant, terminal, at) = (sql_id(tenant_id), sql_id(terminal_id), now());
    for (subject, data) in subjects {
        match data {
            Some(data) => {
                run(
                    &tx,
                    "INSERT INTO applied_state (tenant_id, terminal_id, subject, data, applied_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (tenant_id, terminal_id, subject)
                     DO UPDATE SET data = excluded.data, applied_at = excluded.applied_at",
                    &[&tenant, &terminal, subject, &data.to_string(), &at],
                )
                .await?
            }
            None => {
                run(
                    &tx,
                    "DELETE FROM applied_state WHERE tenant_id = $1 AND terminal_id = $2 AND subject = $3",
                    &[&tenant, &terminal, subject],
                )
                .await?
            }
        };
    }
    tx.commit().await?;
    Ok(())
}
