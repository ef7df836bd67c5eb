//! The schema on both backends: migrations run once (opening again applies nothing), a
//! database newer than the program is refused, and the secrets-at-rest check refuses a
//! database opened with another key.

use acs_core::store::seal::SecretKey;
use acs_core::store::{PostgresStore, SqliteStore, StoreError};

use super::{Db, Place, pg_texts};

#[test]
fn sqlite_migrations_are_idempotent_and_a_newer_database_is_refused() {
    let db = Db::sqlite("store::schema::sqlite");
    let Place::Sqlite { path, .. } = &db.place else {
        unreachable!()
    };
    assert_eq!(db.version().unwrap(), SqliteStore::supported_version());
    let again = SqliteStore::open(path).unwrap();
    assert_eq!(again.migrate().unwrap(), 0);
    drop(again);
    rusqlite::Connection::open(path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = SqliteStore::open(path).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
}

#[test]
fn postgres_migrations_are_idempotent_and_a_newer_database_is_refused() {
    let Some(db) = Db::postgres("store::schema::postgres") else {
        return;
    };
    let Place::Postgres(database) = &db.place else {
        unreachable!()
    };
    assert_eq!(db.version().unwrap(), PostgresStore::supported_version());
    assert_eq!(
        pg_texts(&database.url, "SELECT version FROM acs_schema_version"),
        [PostgresStore::supported_version().to_string()]
    );
    // Several instances opening the database at once: each finds it migrated.
    std::thread::scope(|scope| {
        let opens: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| PostgresStore::connect_with(&database.url, 1).map(|s| s.migrate()))
            })
            .collect();
        for open in opens {
            assert_eq!(open.join().unwrap().unwrap().unwrap(), 0);
        }
    });
    pg_texts(&database.url, "UPDATE acs_schema_version SET version = 99");
    let err = PostgresStore::connect(&database.url).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
}

#[test]
fn postgres_migrations_race_on_a_fresh_database() {
    let Some(database) = super::PgDatabase::create("store::schema::race") else {
        return;
    };
    let versions: Vec<i64> = std::thread::scope(|scope| {
        let opens: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    PostgresStore::connect_with(&database.url, 1)
                        .expect("every instance opens the database")
                        .version()
                        .unwrap()
                })
            })
            .collect();
        opens.into_iter().map(|o| o.join().unwrap()).collect()
    });
    assert!(
        versions
            .iter()
            .all(|v| *v == PostgresStore::supported_version())
    );
    assert_eq!(
        pg_texts(&database.url, "SELECT count(*) FROM acs_schema_version"),
        ["1"]
    );
}

#[test]
fn postgres_refuses_another_key_and_a_bad_url() {
    let Some(db) = Db::postgres("store::schema::key") else {
        return;
    };
    let key = SecretKey::generate();
    assert!(!db.convert_secrets(&key).unwrap().already);
    assert!(db.convert_secrets(&key).unwrap().already);
    let err = db.convert_secrets(&SecretKey::generate()).unwrap_err();
    assert!(matches!(err, StoreError::Sealed(_)), "{err}");

    let err = PostgresStore::connect("postgres://u:hunter2@127.0.0.1:1/none?bogus=1").unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let err = PostgresStore::connect("postgres://u:hunter2@127.0.0.1:1/none").unwrap_err();
    assert!(matches!(err, StoreError::Connection(_)), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn sqlite_refuses_another_key() {
    let db = Db::sqlite("store::schema::sqlite_key");
    let key = SecretKey::generate();
    assert!(!db.convert_secrets(&key).unwrap().already);
    let err = db.convert_secrets(&SecretKey::generate()).unwrap_err();
    assert!(matches!(err, StoreError::Sealed(_)), "{err}");
}
