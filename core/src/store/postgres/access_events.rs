//! The access-event stream: append-only, ids from a sequence (increasing within a
//! connection's commits; the stream's cursor), read in pages after a cursor.

use deadpool_postgres::GenericClient;

use super::sql::{id, json, row, rows, sql_count, sql_id, timestamp};
use crate::store::{AccessEventRow, NewAccessEvent, StoreError};

/// Appends `event` for `tenant`; its id.
pub(super) async fn append(
    tx: &impl GenericClient,
    tenant: i64,
    event: &NewAccessEvent,
) -> Result<u64, StoreError> {
    let inserted = row(
        tx,
        "INSERT INTO access_events (tenant_id, occurred_at, data) VALUES ($1, $2, $3) RETURNING id",
        &[
            &tenant,
            &event.occurred_at.to_string(),
            &event.data.to_string(),
        ],
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt("a new access event has no id".to_owned()))?;
    Ok(id(inserted.try_get(0)?))
}

/// Up to `limit` events of the tenant with ids above `after`, by id.
pub(super) async fn page(
    c: &impl GenericClient,
    tenant_id: u64,
    after: u64,
    limit: usize,
) -> Result<Vec<AccessEventRow>, StoreError> {
    rows(
        c,
        "SELECT id, occurred_at, data FROM access_events WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        &[&sql_id(tenant_id), &sql_id(after), &sql_count(limit)],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(AccessEventRow {
            id: id(r.try_get(0)?),
            occurred_at: timestamp(r.try_get(1)?)?,
            data: json(r.try_get(2)?)?,
        })
    })
    .collect()
}
