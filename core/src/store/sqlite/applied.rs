//! Applied state: what the sync engine last brought each terminal to, one JSON document
//! per subject (a person, a schedule's rule …), so a restarted engine knows what every
//! device holds without reading it back.

use rusqlite::{Connection, TransactionBehavior, params};
use serde_json::Value as Json;

use super::sql::{json, now, sql_id};
use crate::store::StoreError;

/// Every subject recorded for the terminal, by subject.
pub(super) fn of_terminal(
    conn: &Connection,
    tenant_id: u64,
    terminal_id: u64,
) -> Result<Vec<(String, Json)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT subject, data FROM applied_state WHERE tenant_id = ?1 AND terminal_id = ?2 ORDER BY subject",
    )?;
    let rows = stmt.query_map(params![sql_id(tenant_id), sql_id(terminal_id)], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (subject, data) = row?;
        out.push((subject, json(&data)?));
    }
    Ok(out)
}

/// Records each subject's document (`None`: forgets the subject), in one transaction.
pub(super) fn set(
    conn: &mut Connection,
    tenant_id: u64,
    terminal_id: u64,
    subjects: &[(String, Option<Json>)],
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut put = tx.prepare_cached(
            "INSERT INTO applied_state (tenant_id, terminal_id, subject, data, applied_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (tenant_id, terminal_id, subject) DO UPDATE SET data = excluded.data, applied_at = excluded.applied_at",
        )?;
        let mut forget = tx.prepare_cached(
            "DELETE FROM applied_state WHERE tenant_id = ?1 AND terminal_id = ?2 AND subject = ?3",
        )?;
        let at = now();
        for (subject, data) in subjects {
            match data {
                Some(data) => put.execute(params![
                    sql_id(tenant_id),
                    sql_id(terminal_id),
                    subject,
                    data.to_string(),
                    at
                ])?,
                None => forget.execute(params![sql_id(tenant_id), sql_id(terminal_id), subject])?,
            };
        }
    }
    tx.commit()?;
    Ok(())
}
