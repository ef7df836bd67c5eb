//! Tenants and API keys, and the id sequence under concurrent callers.

use std::collections::BTreeSet;

use super::on_both;

on_both!(tenants_and_api_keys, |db| {
    let acme = db.create_tenant("acme", "Acme").unwrap();
    let other = db.create_tenant("other", "Other").unwrap();
    assert!(acme.active && acme.id != other.id);
    assert_eq!(db.tenants().unwrap(), [acme.clone(), other.clone()]);
    let err = db.create_tenant("acme", "Again").unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict { scope: "tenant slug", value } if value == "acme"),
        "{err}"
    );

    let first = db
        .insert_api_key(acme.id, "ci", "acs_ab", "hash-1")
        .unwrap();
    let second = db
        .insert_api_key(acme.id, "ops", "acs_cd", "hash-2")
        .unwrap();
    assert!(first.id < second.id);
    assert_eq!(db.api_key_by_hash("hash-1").unwrap(), Some(first.clone()));
    assert_eq!(db.api_key_by_hash("nope").unwrap(), None);
    assert!(
        db.insert_api_key(other.id, "dup", "acs_ef", "hash-1")
            .is_err(),
        "a hash is unique"
    );

    assert!(
        !db.revoke_api_key(other.id, first.id).unwrap(),
        "another tenant's key"
    );
    assert!(db.revoke_api_key(acme.id, first.id).unwrap());
    assert!(
        !db.revoke_api_key(acme.id, first.id).unwrap(),
        "already revoked"
    );
    assert_eq!(db.api_key_by_hash("hash-1").unwrap(), None);
    let keys = db.api_keys(acme.id).unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].id, first.id);
    assert!(keys[0].revoked_at.is_some() && keys[1].revoked_at.is_none());
    assert_eq!(
        keys[0].created_at, first.created_at,
        "instants read back exactly"
    );
    assert!(db.api_keys(other.id).unwrap().is_empty());
});

on_both!(allocated_ids_are_unique_under_concurrency, |db| {
    let store: &dyn Store = &*db;
    let all: Vec<Vec<u64>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(move || {
                    (0..25)
                        .flat_map(|i| store.allocate_ids(1 + i % 3).unwrap())
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let total: usize = all.iter().map(Vec::len).sum();
    let distinct: BTreeSet<u64> = all.iter().flatten().copied().collect();
    assert_eq!(distinct.len(), total, "no id handed out twice");
    assert!(!distinct.contains(&0));
    let next = db.allocate_ids(2).unwrap();
    assert!(next[0] > *distinct.last().unwrap() && next[1] == next[0] + 1);
});
