//! Column conversions every backend shares: ids, counts, instants and JSON documents
//! between Rust and the integer and text columns both schemas use for them.

use jiff::Timestamp;

use super::StoreError;

/// The current instant as stored in text columns.
pub(crate) fn now() -> String {
    Timestamp::now().to_string()
}

/// An instant read back from a text column.
pub(crate) fn timestamp(text: &str) -> Result<Timestamp, StoreError> {
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("timestamp '{text}': {e}")))
}

/// A JSON document read back from a text column.
pub(crate) fn json(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("JSON document: {e}")))
}

/// An id read back from an integer column.
pub(crate) fn id(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// An id as an integer column holds it.
pub(crate) fn sql_id(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A count (a `LIMIT`) as an integer column holds it.
pub(crate) fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// An instant stored as milliseconds since the Unix epoch (the outbox's schedule), read
/// back.
pub(crate) fn millis(ms: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_millisecond(ms)
        .map_err(|e| StoreError::Corrupt(format!("outbox instant {ms}: {e}")))
}
