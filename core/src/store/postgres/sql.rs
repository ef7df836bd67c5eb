//! SQL plumbing shared by the PostgreSQL store's modules: the column conversions of
//! [`crate::store::columns`], statements through the connection's statement cache, and
//! recognising the errors that mean something to the caller (a unique violation, a
//! serialization failure or deadlock worth retrying).

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

pub(super) use crate::store::columns::{id, json, now, sql_count, sql_id, timestamp};

/// The parameters of one statement.
pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Runs `sql` (prepared once per connection) with `params`; the number of rows it changed.
pub(super) async fn run(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<u64, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.execute(&statement, params).await
}

/// The rows `sql` returns with `params`.
pub(super) async fn rows(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.query(&statement, params).await
}

/// The row `sql` returns with `params`, if any.
pub(super) async fn row(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.query_opt(&statement, params).await
}

/// Whether `e` is a unique violation (a unique index refused the write).
pub(super) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// Whether `e` aborted a transaction that may succeed when run again (a serialization
/// failure or a deadlock between concurrent writers).
pub(super) fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}
