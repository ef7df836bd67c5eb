//! SQL plumbing shared by the store's modules: the column conversions of
//! [`crate::store::columns`], statements through the connection's cache, and recognising a
//! constraint violation.

use rusqlite::{Connection, ErrorCode};

pub(super) use crate::store::columns::{id, json, now, sql_count, sql_id, timestamp};

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
