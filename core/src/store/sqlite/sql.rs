//! SQL plumbing shared by the store's modules: ids, instants and JSON documents between
//! Rust and SQLite columns, statements through the connection's cache, and recognising a
//! constraint violation.

use jiff::Timestamp;
use rusqlite::{Connection, ErrorCode};

use crate::store::StoreError;

/// The current instant as stored in text columns.
pub(super) fn now() -> String {
    Timestamp::now().to_string()
}

/// An instant read back from a text column.
pub(super) fn timestamp(text: &str) -> Result<Timestamp, StoreError> {
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("timestamp '{text}': {e}")))
}

/// A JSON document read back from a text column.
pub(super) fn json(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("JSON document: {e}")))
}

/// An id read back from an integer column.
pub(super) fn id(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// An id as an integer column holds it.
pub(super) fn sql_id(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A count (a `LIMIT`) as an integer column holds it.
pub(super) fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Runs `sql` through the connection's statement cache: commits run the same few
/// statements thousands of times a second, and parsing them anew each time was a few per
/// cent of an online decision.
pub(super) fn run(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// Whether `e` is a constraint violation (a unique or foreign key refused the write).
pub(super) fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}
