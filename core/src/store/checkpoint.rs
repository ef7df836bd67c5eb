//! WAL checkpoints off the request path. SQLite's automatic checkpoint runs inside the
//! commit that crosses its threshold, so every few hundred small writes one request paid
//! for copying the log back into the database and syncing it (the online decision's p99
//! went from under 1 ms to over 4 ms). The store turns that off and this thread, on a
//! connection of its own, checkpoints passively several times a second instead: it never
//! waits for writers, and writers never wait for it.
//!
//! A passive checkpoint never restarts the log while writes keep coming (each one leaves
//! frames it has not copied yet), so under a steady stream of writes the log would grow
//! without bound (3.4 GB after 40,000 enrollments with a selfie). Once it holds more than
//! [`RESTART_AFTER_PAGES`] the thread runs a restarting checkpoint: writers wait for the
//! little the passive one left, and the log starts again from its beginning (and is cut
//! back to [`KEEP_LOG_BYTES`] on disk).

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::StoreError;

/// How often the log is copied back into the database.
const EVERY: Duration = Duration::from_millis(200);

/// A log longer than this (pages of 4 KiB: 16 MiB) is restarted after being copied.
pub(crate) const RESTART_AFTER_PAGES: i64 = 4096;

/// The size a restarted log is cut back to on disk.
pub(crate) const KEEP_LOG_BYTES: i64 = 64 * 1024 * 1024;

/// The checkpoint thread of one database file; it stops (after a last checkpoint) when
/// dropped.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database file at `path` (already in WAL mode).
    pub(crate) fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_size_limit", KEEP_LOG_BYTES)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("acs-store-checkpoint".into())
            .spawn(move || {
                loop {
                    let last = match stopped.recv_timeout(EVERY) {
                        Err(RecvTimeoutError::Timeout) => false,
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
                    };
                    if let Err(e) = checkpoint(&conn) {
                        tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                    }
                    if last {
                        return;
                    }
                }
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// Copies what it can of the log into the database without waiting for anyone, then, if
/// the log has grown long, restarts it.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    // (busy, pages in the log, pages copied)
    let log: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
    if log > RESTART_AFTER_PAGES {
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))?;
    }
    Ok(())
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_reaches_the_database_file_through_the_thread_alone() {
        let dir = std::env::temp_dir().join(format!("acs-checkpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("db");
        let conn = Connection::open(&path).expect("open");
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("wal");
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .expect("no auto");
        conn.execute_batch("CREATE TABLE t (x BLOB)")
            .expect("table");
        let checkpointer = Checkpointer::start(&path).expect("start");
        let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let before = size();
        for _ in 0..200 {
            conn.execute("INSERT INTO t VALUES (zeroblob(4000))", [])
                .expect("insert");
        }
        // Stopping runs a last checkpoint; the writer's connection never checkpointed.
        drop(checkpointer);
        assert!(size() >= before + 200 * 4000, "{before} -> {}", size());
        drop(conn);
        std::fs::remove_dir_all(&dir).ok();
    }
}
