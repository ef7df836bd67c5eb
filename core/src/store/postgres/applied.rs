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

/// Records each subject's document (`None`: forgets the subject), in one transaction of
/// two statements whatever the number of subjects (a terminal's first pass records
/// thousands; one statement each was a round trip each). A subject named twice ends as
/// its last mention says, as it would written one by one.
pub(super) async fn set(
    c: &mut Client,
    tenant_id: u64,
    terminal_id: u64,
    subjects: &[(String, Option<Json>)],
) -> Result<(), StoreError> {
    let mut last: std::collections::HashMap<&str, Option<&Json>> =
        std::collections::HashMap::with_capacity(subjects.len());
    for (subject, data) in subjects {
        last.insert(subject, data.as_ref());
    }
    let (mut put_subjects, mut put_data, mut forgotten) = (Vec::new(), Vec::new(), Vec::new());
    for (subject, data) in last {
        match data {
            Some(data) => {
                put_subjects.push(subject);
                put_data.push(data.to_string());
            }
            None => forgotten.push(subject),
        }
    }
    let tx = c.transaction().await?;
    let (tenant, terminal, at) = (sql_id(tenant_id), sql_id(terminal_id), now());
    if !put_subjects.is_empty() {
        run(
            &tx,
            "INSERT INTO applied_state (tenant_id, terminal_id, subject, data, applied_at)
             SELECT $1, $2, u.subject, u.data, $5 FROM UNNEST($3::TEXT[], $4::TEXT[]) AS u(subject, data)
             ON CONFLICT (tenant_id, terminal_id, subject)
             DO UPDATE SET data = excluded.data, applied_at = excluded.applied_at",
            &[&tenant, &terminal, &put_subjects, &put_data, &at],
        )
        .await?;
    }
    if !forgotten.is_empty() {
        run(
            &tx,
            "DELETE FROM applied_state WHERE tenant_id = $1 AND terminal_id = $2 AND subject = ANY($3::TEXT[])",
            &[&tenant, &terminal, &forgotten],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
