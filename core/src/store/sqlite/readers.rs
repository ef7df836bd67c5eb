//! The reader pool of a database file: read-only connections handed out one per read, so
//! reads run beside each other and beside the writer (WAL lets a reader see the last
//! committed state while a write is in progress) instead of queueing behind the writer's
//! mutex. A private in-memory database has no file for a second connection to open: its
//! reads share the writer's connection.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::store::StoreError;

/// At most this many read-only connections are open at once (the async runtime's blocking
/// pool can ask for many more; past this they wait for one to come back).
const MAX_READERS: usize = 8;

/// Read-only connections to one database file, opened on demand up to [`MAX_READERS`].
#[derive(Debug)]
pub(super) struct Readers {
    path: PathBuf,
    state: Mutex<Pool>,
    returned: Condvar,
}

#[derive(Debug, Default)]
struct Pool {
    idle: Vec<Connection>,
    open: usize,
}

impl Readers {
    /// A pool for the database file at `path` (already migrated, in WAL mode).
    pub(super) fn new(path: &Path) -> Readers {
        Readers {
            path: path.to_owned(),
            state: Mutex::new(Pool::default()),
            returned: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection for one read: an idle one, a new one while fewer than
    /// [`MAX_READERS`] are open, or the first to come back.
    pub(super) fn get(&self) -> Result<Reader<'_>, StoreError> {
        let mut pool = self.lock();
        loop {
            if let Some(conn) = pool.idle.pop() {
                return Ok(Reader {
                    readers: self,
                    conn: Some(conn),
                });
            }
            if pool.open < MAX_READERS {
                pool.open += 1;
                drop(pool);
                return match self.connect() {
                    Ok(conn) => Ok(Reader {
                        readers: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            pool = self
                .returned
                .wait(pool)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    fn put_back(&self, conn: Connection) {
        self.lock().idle.push(conn);
        self.returned.notify_one();
    }
}

/// A pooled connection, back in the pool when dropped.
#[derive(Debug)]
pub(super) struct Reader<'a> {
    readers: &'a Readers,
    conn: Option<Connection>,
}

impl Deref for Reader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a reader holds its connection until dropped")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.readers.put_back(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc;

    use serde_json::json;

    use crate::store::sqlite::SqliteStore;
    use crate::store::sqlite::test_support::put;
    use crate::store::{Change, Kind, Store as _};

    #[test]
    fn reads_go_on_while_the_writer_is_held() {
        let dir = std::env::temp_dir().join(format!("acs-readers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Arc::new(SqliteStore::open(&dir.join("acs.db")).unwrap());
        let tenant = store.create_tenant("acme", "Acme").unwrap().id;
        let id = store.allocate_ids(1).unwrap()[0];
        let change = Change {
            writes: vec![put(
                Kind::Site,
                id,
                json!({"name": "HQ"}),
                &[("acs_id", "S")],
            )],
            ..Change::default()
        };
        store.commit(tenant, change).unwrap();
        // The writer is busy (held here) while a read runs on another thread: with reads
        // behind the writer's mutex this would wait for as long as the writer is held.
        let writer = store.lock();
        let (done, finished) = mpsc::channel();
        let reading = Arc::clone(&store);
        let reader = std::thread::spawn(move || {
            let records = reading.records(tenant).map(|r| r.len());
            let holder = reading.claim(tenant, "acs_id", "S");
            done.send((records.ok(), holder.ok().flatten())).unwrap();
        });
        let read = finished.recv_timeout(std::time::Duration::from_secs(30));
        drop(writer);
        reader.join().unwrap();
        assert_eq!(read, Ok((Some(1), Some(id))));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
