//! Opening the database `--db` names: a `postgres://` or `postgresql://` URL is a
//! [`PostgresStore`], `:memory:` a private in-memory SQLite database, anything else a
//! SQLite file. Either backend is opened behind [`SealedStore`] with the key of the
//! secrets at rest (which the caller finds: it is never kept in the database), after the
//! check – or one-time conversion – of the secrets already stored.

use std::path::PathBuf;
use std::sync::Arc;

use super::seal::SecretKey;
use super::sqlite::Converted;
use super::{PostgresStore, SealedStore, SqliteStore, Store, StoreError};

/// Where the data lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A private in-memory SQLite database (nothing kept).
    Memory,
    /// A PostgreSQL database, by URL.
    Postgres(String),
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_string())
    }
}

impl std::fmt::Display for Location {
    /// The location for logs and messages: a URL's password is left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Memory => f.write_str(":memory:"),
            Location::Postgres(url) => f.write_str(&without_password(url)),
        }
    }
}

impl Location {
    /// What `--db` says.
    pub fn parse(text: &str) -> Location {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Location::Postgres(text.to_owned())
        } else if text == ":memory:" {
            Location::Memory
        } else {
            Location::Sqlite(PathBuf::from(text))
        }
    }
}

/// `url` with the password of its user part (`user:password@`) replaced by `***`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// An opened database behind the sealing layer.
#[derive(Debug)]
pub enum Opened {
    /// SQLite (a file or memory).
    Sqlite(SealedStore<SqliteStore>),
    /// PostgreSQL.
    Postgres(SealedStore<PostgresStore>),
}

impl Opened {
    /// The store, for the core.
    pub fn into_store(self) -> Arc<dyn Store> {
        match self {
            Opened::Sqlite(store) => Arc::new(store),
            Opened::Postgres(store) => Arc::new(store),
        }
    }

    /// The database's schema version.
    pub fn version(&self) -> Result<i64, StoreError> {
        match self {
            Opened::Sqlite(store) => store.inner().version(),
            Opened::Postgres(store) => store.inner().version(),
        }
    }
}

/// How to open a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// PostgreSQL: the most connections the pool keeps.
    pub pool_size: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            pool_size: PostgresStore::DEFAULT_POOL_SIZE,
        }
    }
}

/// Opens (creating and migrating) the database at `location` behind the sealing layer
/// with the key `key`; what the check or conversion of its stored secrets did.
pub fn open(
    location: &Location,
    key: SecretKey,
    options: Options,
) -> Result<(Opened, Converted), StoreError> {
    Ok(match location {
        Location::Memory => (
            Opened::Sqlite(SealedStore::new(SqliteStore::in_memory()?, key)),
            Converted::default(),
        ),
        Location::Sqlite(path) => {
            let store = SqliteStore::open(path)?;
            let converted = store.convert_secrets(&key)?;
            (Opened::Sqlite(SealedStore::new(store, key)), converted)
        }
        Location::Postgres(url) => {
            let store = PostgresStore::connect_with(url, options.pool_size)?;
            let converted = store.convert_secrets(&key)?;
            (Opened::Postgres(SealedStore::new(store, key)), converted)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_arguments_name_their_backend_and_passwords_stay_out_of_messages() {
        assert_eq!(
            Location::parse("acs.db"),
            Location::Sqlite(PathBuf::from("acs.db"))
        );
        assert_eq!(Location::parse(":memory:"), Location::Memory);
        for url in ["postgres://u@h:5432/db", "postgresql://u@h/db"] {
            assert_eq!(Location::parse(url), Location::Postgres(url.to_owned()));
        }
        let secret = Location::parse("postgres://acs:s3cret@db.example:5432/acs");
        assert_eq!(secret.to_string(), "postgres://acs:***@db.example:5432/acs");
        assert!(!format!("{secret:?}").contains("s3cret"));
        assert_eq!(
            Location::parse("postgres://acs@127.0.0.1:5432/acs").to_string(),
            "postgres://acs@127.0.0.1:5432/acs"
        );
    }
}
