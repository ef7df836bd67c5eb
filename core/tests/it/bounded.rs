//! Bounded waits: every wait of these tests has a deadline, and one that passes fails the
//! test with a message saying what did not happen, instead of hanging the run.

use std::future::Future;
use std::time::Duration;

/// How long a test waits for something that takes milliseconds when all is well: only a
/// broken build (or a starved CI machine) comes near it.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// Awaits `future` for at most [`PATIENCE`]; panics naming `what` when it takes longer.
pub(crate) async fn bounded<T>(what: impl std::fmt::Display, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {PATIENCE:?} waiting for {what}"),
    }
}

/// An HTTP client for the tests whose every request gives up after [`PATIENCE`].
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .expect("HTTP client")
}

/// Waits until `done` holds for the sync engine's `board` (re-checked on every status
/// change); panics naming `what`, with the board as last seen, after [`PATIENCE`].
pub(crate) async fn board_until(
    board: &acs_core::sync::StatusBoard,
    what: impl std::fmt::Display,
    mut done: impl FnMut(&Board) -> bool,
) {
    let mut last_seen = String::new();
    let waited = tokio::time::timeout(
        PATIENCE,
        board.wait_until(|board| {
            last_seen = format!("{board:?}");
            done(board)
        }),
    )
    .await;
    if waited.is_err() {
        panic!("timed out after {PATIENCE:?} waiting for {what}; the board: {last_seen}");
    }
}

/// Every terminal's sync status, as the engine's board holds it.
pub(crate) type Board = std::collections::HashMap<
    (acs_core::domain::TenantId, acs_core::domain::TerminalId),
    acs_core::sync::SyncStatus,
>;
