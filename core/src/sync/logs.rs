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

/// How far the engine has read a device's access log: the highest row id read, and what
/// that row held (`event:time:user`), so that a device whose log counts from 1 again is
/// told from one whose log goes on even once its new log has passed the old id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The highest row id read (0: none).
    pub last_id: i64,
    /// What the row with that id held (`None` in cursors stored before it was kept).
    pub row: Option<String>,
}

/// The cursor as stored (`{"last_id": n, "row": "…"}`), from a terminal's applied-state
/// rows.
pub fn cursor_of(rows: &[(String, Json)]) -> Cursor {
    rows.iter()
        .find(|(key, _)| key == CURSOR_KEY)
        .map(|(_, doc)| Cursor {
            last_id: doc.get("last_id").and_then(Json::as_i64).unwrap_or(0),
            row: doc.get("row").and_then(Json::as_str).map(str::to_owned),
        })
        .unwrap_or_default()
}

/// Reads the rows after `after` and records them; returns the new cursor (the highest id
/// recorded). Rows recorded before a failure stay recorded and the cursor covers them.
pub async fn catch_up(
    client: &TerminalClient,
    core: &Core,
    tenant: TenantId,
    terminal: TerminalId,
    after: &Cursor,
) -> (Cursor, Result<usize, ApplyError>) {
    let mut cursor = after.clone();
    let mut recorded = 0;
    // A device whose row at the cursor is gone, or is not the row read with that id, was
    // wiped (or replaced): its log counts from 1 again, so it is read from the start (rows
    // already recorded are known by their id and content). A wiped device whose new log
    // has already passed the cursor is told apart this way too.
    if cursor.last_id > 0 {
        match goes_on(client, core, tenant, terminal, &cursor).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(%terminal, cursor = cursor.last_id, "the device's access log does not go on from the cursor (wiped or replaced); reading it from the start");
                cursor = Cursor::default();
            }
            Err(e) => return (cursor, Err(e)),
        }
    }
    loop {
        let request = Map::from_iter([
            (
                "where".to_owned(),
                json!({"access_logs": {"id": {">": cursor.last_id}}}),
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
            .filter(|(id, _)| *id > cursor.last_id)
            .collect();
        ids.sort_by_key(|(id, _)| *id);
        let full = ids.len() >= PAGE;
        for (id, row) in ids {
            let row = Json::Object(row);
            if let Err(e) =
                crate::device_events::record_access_log(core, tenant, terminal, &row).await
            {
                let e = ApplyError::LogNotRecorded {
                    log_id: id,
                    reason: e.to_string(),
                };
                return (cursor, Err(e));
            }
            cursor = Cursor {
                last_id: id,
                row: Some(crate::device_events::fingerprint_of(&row)),
            };
            recorded += 1;
        }
        if !full {
            return (cursor, Ok(recorded));
        }
    }
}

/// Whether the device's row at the cursor is the row read there (for a cursor stored
/// without its row: a row the core recorded with that id and content).
async fn goes_on(
    client: &TerminalClient,
    core: &Core,
    tenant: TenantId,
    terminal: TerminalId,
    cursor: &Cursor,
) -> Result<bool, ApplyError> {
    let rows = client
        .load_objects(
            "access_logs",
            Map::from_iter([
                (
                    "where".to_owned(),
                    json!({"access_logs": {"id": cursor.last_id}}),
                ),
                ("limit".to_owned(), json!(1)),
            ]),
        )
        .await?;
    let Some(row) = rows.into_iter().next().map(Json::Object) else {
        return Ok(false);
    };
    match &cursor.row {
        Some(read) => Ok(crate::device_events::fingerprint_of(&row) == *read),
        None => crate::device_events::is_recorded(core, tenant, terminal, &row)
            .await
            .map_err(|e| ApplyError::LogNotRecorded {
                log_id: cursor.last_id,
                reason: e.to_string(),
            }),
    }
}

/// Keeps the cursor in the store (with the terminal's applied state).
pub async fn save_cursor(core: &Core, tenant: TenantId, terminal: TerminalId, cursor: &Cursor) {
    let store = core.store().clone();
    let doc = json!({ "last_id": cursor.last_id, "row": cursor.row });
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
