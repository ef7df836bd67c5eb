//! The store test suite: every test runs against both backends, SQLite (a database file in
//! a temporary directory) and PostgreSQL (a fresh database on the server of
//! `ACS_TEST_POSTGRES_URL`, created for the test and dropped after it, so tests run in
//! parallel). [`on_both!`] writes a test once and generates `<name>::sqlite` and
//! `<name>::postgres`.
//!
//! Without `ACS_TEST_POSTGRES_URL` the PostgreSQL half prints a loud `SKIPPED` line and
//! passes – except when `CI` is set, where it fails: CI starts a throwaway cluster
//! (`scripts/throwaway-postgres.sh`) and must never skip silently.

mod commit;
mod coordination;
pub(crate) mod process;
mod schema;
mod streams;
mod tenants;
mod webhooks;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use acs_core::store::{PostgresStore, SqliteStore, Store, UniqueKey, Write};
use serde_json::Value as Json;

/// Runs the test body `$body` with `$db` bound to a fresh [`Db`] of each backend.
macro_rules! on_both {
    ($(#[$meta:meta])* $name:ident, |$db:ident| $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use acs_core::store::{Store, StoreError};

            #[test]
            fn sqlite() {
                let $db = $crate::store::Db::sqlite(concat!(module_path!(), "::sqlite"));
                $body
            }

            #[test]
            fn postgres() {
                let Some($db) = $crate::store::Db::postgres(concat!(module_path!(), "::postgres"))
                else {
                    return;
                };
                $body
            }
        }
    };
}
pub(crate) use on_both;

/// The server of the PostgreSQL tests, or `None` (after saying so loudly) when there is
/// none; panics under `CI`, where the tests must not be skipped.
pub(crate) fn postgres_url(test: &str) -> Option<String> {
    match std::env::var("ACS_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: CI is set but ACS_TEST_POSTGRES_URL is not, so the PostgreSQL tests \
                 cannot run: start a cluster with scripts/throwaway-postgres.sh and export its URL"
            );
            // Written past the test harness's capture, so it shows for a passing test too.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("SKIPPED (no ACS_TEST_POSTGRES_URL): {test} needs a PostgreSQL server\n")
                    .as_bytes(),
            );
            None
        }
    }
}

/// Runs `sql` on the server at `url` and returns the first column of every row as text
/// (NULL as ""); on a thread and runtime of its own, so it works from any context.
pub(crate) fn pg_texts(url: &str, sql: &str) -> Vec<String> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connect to the test server");
            let driver = tokio::spawn(connection);
            let rows = client.simple_query(&sql).await.expect(&sql);
            drop(client);
            let _ = driver.await;
            rows.into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => {
                        Some(r.get(0).unwrap_or_default().to_owned())
                    }
                    _ => None,
                })
                .collect()
        })
    })
    .join()
    .expect("the query thread")
}

/// A fresh PostgreSQL database on the test server, dropped (best effort) with this guard.
#[derive(Debug)]
pub(crate) struct PgDatabase {
    admin: String,
    name: String,
    /// The URL of the database.
    pub(crate) url: String,
}

impl PgDatabase {
    /// Creates a database for `test`; `None` when there is no server (see [`postgres_url`]).
    pub(crate) fn create(test: &str) -> Option<PgDatabase> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let admin = postgres_url(test)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "acs_t_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        pg_texts(
            &admin,
            &format!("CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0"),
        );
        let url = with_database(&admin, &name);
        Some(PgDatabase { admin, name, url })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let admin = self.admin.clone();
        // Best effort: a failed drop leaves a database on a throwaway server.
        let _ = std::thread::spawn(move || {
            std::panic::catch_unwind(|| pg_texts(&admin, &sql)).ok();
        })
        .join();
    }
}

/// `url` naming the database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

/// Where a test's data lives, for reading it raw and cleaning it up.
#[derive(Debug)]
pub(crate) enum Place {
    /// A SQLite file in a directory of its own (removed afterwards).
    Sqlite { dir: PathBuf, path: PathBuf },
    /// A PostgreSQL database (dropped afterwards).
    Postgres(PgDatabase),
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Place::Sqlite { dir, .. } = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A store under test with the place its data lives (the store is closed first).
#[derive(Debug)]
pub(crate) struct Db<S> {
    /// The store.
    pub(crate) store: S,
    /// Its data.
    pub(crate) place: Place,
}

impl<S> std::ops::Deref for Db<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.store
    }
}

impl Db<SqliteStore> {
    /// A SQLite store on a new file.
    pub(crate) fn sqlite(test: &str) -> Db<SqliteStore> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "acs-store-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            test.rsplit("::").nth(1).unwrap_or("test")
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("test directory");
        let path = dir.join("acs.db");
        Db {
            store: SqliteStore::open(&path).expect("SQLite store"),
            place: Place::Sqlite { dir, path },
        }
    }
}

impl Db<PostgresStore> {
    /// A PostgreSQL store on a new database; `None` when there is no server.
    pub(crate) fn postgres(test: &str) -> Option<Db<PostgresStore>> {
        let database = PgDatabase::create(test)?;
        Some(Db {
            store: PostgresStore::connect_with(&database.url, 4).expect("PostgreSQL store"),
            place: Place::Postgres(database),
        })
    }
}

impl<S> Db<S> {
    /// The same data behind another store built from this one.
    pub(crate) fn wrap<T>(self, f: impl FnOnce(S) -> T) -> Db<T> {
        let Db { store, place } = self;
        Db {
            store: f(store),
            place,
        }
    }

    /// The first column of every row `sql` selects, read past the store (NULL as "").
    pub(crate) fn raw_texts(&self, sql: &str) -> Vec<String> {
        match &self.place {
            Place::Sqlite { path, .. } => {
                let conn = rusqlite::Connection::open(path).expect("raw SQLite connection");
                let mut stmt = conn.prepare(sql).expect(sql);
                stmt.query_map([], |r| {
                    Ok(match r.get_ref(0)? {
                        rusqlite::types::ValueRef::Null => String::new(),
                        rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                        rusqlite::types::ValueRef::Real(f) => f.to_string(),
                        rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                    })
                })
                .expect(sql)
                .collect::<Result<_, _>>()
                .expect(sql)
            }
            Place::Postgres(database) => pg_texts(&database.url, sql),
        }
    }
}

/// A put of `data` under `id` claiming `unique`, without a blob.
pub(crate) fn put(
    kind: acs_core::store::Kind,
    id: u64,
    data: Json,
    unique: &[(&'static str, &str)],
) -> Write {
    Write::Put {
        kind,
        id,
        data,
        unique: unique
            .iter()
            .map(|(scope, value)| UniqueKey {
                scope,
                value: (*value).to_owned(),
            })
            .collect(),
        blob: None,
    }
}

/// A change of `writes` only.
pub(crate) fn writes(writes: Vec<Write>) -> acs_core::store::Change {
    acs_core::store::Change {
        writes,
        ..acs_core::store::Change::default()
    }
}

/// A tenant and `n` fresh ids in `store`.
pub(crate) fn tenant_with_ids(store: &dyn Store, slug: &str, n: usize) -> (u64, Vec<u64>) {
    let tenant = store.create_tenant(slug, slug).expect("tenant").id;
    (tenant, store.allocate_ids(n).expect("ids"))
}
