//! The access-event stream: append-only, ids increasing (the stream's cursor), read in
//! pages after a cursor.

use rusqlite::{Connection, params};

use super::sql::{id, json, run, sql_count, sql_id, timestamp};
use crate::store::{AccessEventRow, NewAccessEvent, StoreError};

/// Appends `event` for `tenant`; its id.
pub(super) fn append(
    tx: &Connection,
    tenant: i64,
    event: &NewAccessEvent,
) -> Result<u64, StoreError> {
    run(
        tx,
        "INSERT INTO access_events (tenant_id, occurred_at, data) VALUES (?1, ?2, ?3)",
        params![
            tenant,
            event.occurred_at.to_string(),
            event.data.to_string()
        ],
    )?;
    Ok(id(tx.last_insert_rowid()))
}

/// Up to `limit` events of the tenant with ids above `after`, by id.
pub(super) fn page(
    conn: &Connection,
    tenant_id: u64,
    after: u64,
    limit: usize,
) -> Result<Vec<AccessEventRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, occurred_at, data FROM access_events WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![sql_id(tenant_id), sql_id(after), sql_count(limit)],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        },
    )?;
    let mut events = Vec::new();
    for row in rows {
        let (event_id, at, data) = row?;
        events.push(AccessEventRow {
            id: id(event_id),
            occurred_at: timestamp(&at)?,
            data: json(&data)?,
        });
    }
    Ok(events)
}
