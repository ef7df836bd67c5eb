//! `logs`: the access-log catch-up. Terminals push every access-log row to the receiver
//! (monitor `dao`), but the firmware gives up after three attempts (docs/device-api.md §6.2),
//! so a notification sent while the core was down, refused, or lost on the way is gone.
//! The device keeps the row, though: the engine reads `access_logs` back after a cursor
//! (the highest row id it has read, kept in the store) and records every row through the
//! receiver's path, which records each (terminal, device log id) once.

use serde_json::{Map, Value as Json, json};

use super::apply::ApplyError;
use crate::app::Core;
use crate::domain::{TenantId, TerminalId};
use crate::terminal::TerminalClient;

/// The key under which the cursor is kept with the terminal's applied state.
pub const CURSOR_KEY: &str = "cursor:access_logs";

/// Rows read per call.
const PAGE: usize = 500;

/// The cursor as stored (`{"last_id": n}`), from a terminal's applied-state rows.
pub fn cursor_of(rows: &[(String, Json)]) -> i64 {
    rows.iter()
        .find(|(key, _)| key == CURSOR_KEY)
        .and_then(|(_, doc)| doc.get("last_id")?.as_i64())
        .unwrap_or(0)
}

/// Reads the rows after `after` and records them; returns the new cursor (the highest id
/// recorded). Rows recorded before a failure stay recorded and the cursor covers them.
pub async fn catch_up(
    client: &TerminalClient,
    core: &Core,
    tenant: TenantId,
    terminal: TerminalId,
    after: i64,
) -> (i64, Result<usize, ApplyError>) {
    let mut cursor = after;
    let mut recorded = 0;
    // A device whose newest row is older than the cursor was wiped (or replaced): its log
    // counts from 1 again, so it is read from the start (rows already recorded are known
    // by their content).
    if cursor > 0 {
        let newest = client
            .load_objects(
                "access_logs",
                Map::from_iter([
                    ("fields".to_owned(), json!(["id"])),
                    ("order".to_owned(), json!(["descending", "id"])),
                    ("limit".to_owned(), json!(1)),
                ]),
            )
            .await;
        match newest {
            Ok(rows) => {
                let newest = rows
                    .first()
                    .and_then(|r| r.get("id"))
                    .and_then(Json::as_i64)
                    .unwrap_or(0);
                if newest < cursor {
                    tracing::warn!(%terminal, newest, cursor, "the device's access log is behind the cursor (wiped or replaced); reading it from the start");
                    cursor = 0;
                }
            }
            Err(e) => return (cursor, Err(e.into())),
        }
    }
    loop {
        let request = Map::from_iter([
            (
                "where".to_owned(),
                json!({"access_logs": {"id": {">": cursor}}}),
            ),
            ("order".to_owned(), json!(["id"])),
            ("limit".to_owned(), json!(PAGE)),
        ]);
        let rows = match client.load_objects("access_logs", request).await {
            Ok(rows) => rows,
            Err(e) => return (cursor, Err(e.into())),
        };
        let mut ids: Vec<(i64, Map<String, Json>)> = rows
            .into_iter()
            .filter_map(|r| Some((r.get("id")?.as_i64()?, r)))
            .filter(|(id, _)| *id > cursor)
            .collect();
        ids.sort_by_key(|(id, _)| *id);
        let full = ids.len() >= PAGE;
        for (id, row) in ids {
            if let Err(e) =
                crate::device_events::record_access_log(core, tenant, terminal, &Json::Object(row))
                    .await
            {
                let e = ApplyError::LogNotRecorded {
                    log_id: id,
                    reason: e.to_string(),
                };
                return (cursor, Err(e));
            }
            cursor = id;
            recorded += 1;
        }
        if !full {
            return (cursor, Ok(recorded));
        }
    }
}

/// Keeps the cursor in the store (with the terminal's applied state).
pub async fn save_cursor(core: &Core, tenant: TenantId, terminal: TerminalId, cursor: i64) {
    let store = core.store().clone();
    let doc = json!({ "last_id": cursor });
    let saved = tokio::task::spawn_blocking(move || {
        store.set_applied(
            tenant.get(),
            terminal.get(),
            &[(CURSOR_KEY.to_owned(), Some(doc))],
        )
    })
    .await;
    if !matches!(saved, Ok(Ok(_))) {
        tracing::warn!(%terminal, "access-log cursor not saved");
    }
}
