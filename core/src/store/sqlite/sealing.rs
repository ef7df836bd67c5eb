//! Device passwords sealed at rest ([`crate::store::seal`]): a terminal record's
//! `password` is sealed on its way into the database when the store has a key and opened
//! on its way out; opening with a key seals every password an earlier version stored in
//! clear.

use rusqlite::{TransactionBehavior, params};
use serde_json::Value as Json;

use super::SqliteStore;
use super::sql::json;
use crate::store::seal::{SealError, is_sealed};
use crate::store::{Kind, StoreError};

impl SqliteStore {
    /// Seals every terminal password still in clear, and checks that sealed ones open.
    pub(super) fn seal_clear_passwords(&self) -> Result<(), StoreError> {
        let Some(key) = &self.key else {
            return Ok(());
        };
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows: Vec<(i64, String)> = {
            let mut stmt = tx.prepare("SELECT id, data FROM records WHERE kind = ?1")?;
            stmt.query_map(params![Kind::Terminal.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?
        };
        for (record_id, data) in rows {
            let mut data = json(&data)?;
            match data.get("password") {
                Some(Json::String(clear)) => {
                    data["password"] = key.seal(clear);
                    tx.execute(
                        "UPDATE records SET data = ?2 WHERE id = ?1",
                        params![record_id, data.to_string()],
                    )?;
                }
                Some(sealed) if is_sealed(sealed) => {
                    key.open(sealed).map_err(StoreError::Sealed)?;
                }
                _ => {}
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The stored form of a record's document: secrets sealed when there is a key.
    pub(super) fn at_rest(&self, kind: Kind, data: &Json) -> Json {
        match (&self.key, kind, data.get("password")) {
            (Some(key), Kind::Terminal, Some(Json::String(clear))) => {
                let mut data = data.clone();
                data["password"] = key.seal(clear);
                data
            }
            _ => data.clone(),
        }
    }

    /// A stored document as records read it: sealed secrets opened.
    pub(super) fn in_clear(&self, kind: Kind, mut data: Json) -> Result<Json, StoreError> {
        if kind == Kind::Terminal
            && let Some(sealed) = data.get("password").filter(|v| is_sealed(v))
        {
            let key = self
                .key
                .as_ref()
                .ok_or(StoreError::Sealed(SealError::CannotOpen))?;
            data["password"] = Json::String(key.open(sealed).map_err(StoreError::Sealed)?);
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;
    use serde_json::json;

    use super::*;
    use crate::store::seal::SecretKey;
    use crate::store::sqlite::test_support::put;
    use crate::store::{Change, Store as _};

    #[test]
    fn device_passwords_are_sealed_at_rest_and_need_their_key() {
        let dir = std::env::temp_dir().join(format!("acs-seal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("acs.db");
        // Stores a terminal record with `password` under a fresh id.
        let add_terminal = |store: &SqliteStore, tenant: u64, password: &str| {
            let id = store.allocate_ids(1).unwrap()[0];
            let write = put(
                Kind::Terminal,
                id,
                json!({"model": "iDFace", "password": password}),
                &[],
            );
            store
                .commit(
                    tenant,
                    Change {
                        writes: vec![write],
                        ..Change::default()
                    },
                )
                .unwrap();
        };
        // A database written in clear by an earlier version.
        let tenant = {
            let store = SqliteStore::open(&path).unwrap();
            let tenant = store.create_tenant("acme", "Acme").unwrap().id;
            add_terminal(&store, tenant, "legacy-pass");
            tenant
        };
        let key = SecretKey::generate();
        {
            let store = SqliteStore::open_sealed(&path, key).unwrap();
            add_terminal(&store, tenant, "new-pass");
            let passwords: Vec<Json> = store
                .records(tenant)
                .unwrap()
                .into_iter()
                .map(|r| r.data["password"].clone())
                .collect();
            assert_eq!(passwords, [json!("legacy-pass"), json!("new-pass")]);
        }
        let raw: Vec<String> = {
            let conn = Connection::open(&path).unwrap();
            let mut stmt = conn.prepare("SELECT data FROM records").unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(raw.len(), 2);
        assert!(
            raw.iter().all(|d| !d.contains("legacy-pass")
                && !d.contains("new-pass")
                && d.contains("sealed")),
            "{raw:?}"
        );
        assert!(matches!(
            SqliteStore::open_sealed(&path, SecretKey::generate()),
            Err(StoreError::Sealed(_))
        ));
        assert!(matches!(
            SqliteStore::open(&path).unwrap().records(tenant),
            Err(StoreError::Sealed(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
