//! Commits: puts and deletes with unique keys and blobs, conflicts and missing records
//! (nothing of a failed change is written), tenant isolation, idempotency replies, owners,
//! paging by kind, claims and prefixes – and concurrent writers claiming one key.

use acs_core::store::{Blob, Change, IdempotentReply, Kind, Write};
use serde_json::json;

use super::{on_both, put, tenant_with_ids, writes};

on_both!(puts_deletes_blobs_and_versions, |db| {
    let (t, ids) = tenant_with_ids(&*db, "acme", 2);
    let selfie = Blob {
        media_type: "image/jpeg".to_owned(),
        bytes: vec![0, 255, 1, 254, 0, 0, 7],
    };
    let mut with_blob = put(Kind::Person, ids[0], json!({"n": 1}), &[("acs_id", "A")]);
    if let Write::Put { blob, .. } = &mut with_blob {
        *blob = Some(selfie.clone());
    }
    db.commit(t, writes(vec![with_blob])).unwrap();
    assert_eq!(db.blob(t, ids[0]).unwrap(), Some(selfie.clone()));
    // A put without a blob keeps it; the version moves; the keys are those of the last put.
    db.commit(
        t,
        writes(vec![put(
            Kind::Person,
            ids[0],
            json!({"n": 2}),
            &[("acs_id", "B")],
        )]),
    )
    .unwrap();
    let records = db.records(t).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].version, &records[0].data),
        (2, &json!({"n": 2}))
    );
    assert_eq!(db.blob(t, ids[0]).unwrap(), Some(selfie));
    assert_eq!(db.claim(t, "acs_id", "A").unwrap(), None, "released");
    assert_eq!(db.claim(t, "acs_id", "B").unwrap(), Some(ids[0]));
    // A replaced blob.
    let other = Blob {
        media_type: "image/png".to_owned(),
        bytes: vec![9; 3000],
    };
    let mut replace = put(Kind::Person, ids[0], json!({"n": 3}), &[("acs_id", "B")]);
    if let Write::Put { blob, .. } = &mut replace {
        *blob = Some(other.clone());
    }
    db.commit(t, writes(vec![replace])).unwrap();
    assert_eq!(db.blob(t, ids[0]).unwrap(), Some(other));

    // Deleting takes the keys and the blob along; deleting again is Missing.
    let delete = Write::Delete {
        kind: Kind::Person,
        id: ids[0],
    };
    db.commit(t, writes(vec![delete.clone()])).unwrap();
    assert!(db.records(t).unwrap().is_empty());
    assert_eq!(db.blob(t, ids[0]).unwrap(), None);
    assert_eq!(db.claim(t, "acs_id", "B").unwrap(), None);
    let err = db.commit(t, writes(vec![delete])).unwrap_err();
    assert!(
        matches!(err, StoreError::Missing { kind: Kind::Person, id } if id == ids[0]),
        "{err}"
    );
    // A put of the same id under another kind is Missing too.
    db.commit(t, writes(vec![put(Kind::Site, ids[1], json!({}), &[])]))
        .unwrap();
    let err = db
        .commit(t, writes(vec![put(Kind::Door, ids[1], json!({}), &[])]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Missing {
                kind: Kind::Door,
                ..
            }
        ),
        "{err}"
    );
});

on_both!(a_conflicting_change_writes_nothing, |db| {
    let (t, ids) = tenant_with_ids(&*db, "acme", 3);
    db.commit(
        t,
        writes(vec![put(
            Kind::Person,
            ids[0],
            json!({"n": 1}),
            &[("acs_id", "A")],
        )]),
    )
    .unwrap();
    let clash = Change {
        writes: vec![
            put(Kind::Person, ids[1], json!({"n": 2}), &[("acs_id", "B")]),
            put(
                Kind::Person,
                ids[2],
                json!({"n": 3}),
                &[("card", "1,2"), ("acs_id", "A")],
            ),
        ],
        audit: vec![acs_core::store::AuditEntry {
            action: "person.created".to_owned(),
            kind: Kind::Person,
            record_id: Some(ids[1]),
            actor: "test".to_owned(),
        }],
        access_events: vec![acs_core::store::NewAccessEvent {
            occurred_at: jiff::Timestamp::now(),
            data: json!({}),
        }],
        ..Change::default()
    };
    let err = db.commit(t, clash).unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict { scope: "acs_id", value } if value == "A"),
        "{err}"
    );
    assert_eq!(
        db.records(t).unwrap().len(),
        1,
        "the first put was rolled back"
    );
    assert_eq!(db.claim(t, "card", "1,2").unwrap(), None);
    assert_eq!(db.claim(t, "acs_id", "B").unwrap(), None);
    assert!(db.access_events(t, 0, 10).unwrap().is_empty());
    // The store is still usable after the failed transaction.
    db.commit(
        t,
        writes(vec![put(
            Kind::Person,
            ids[1],
            json!({"n": 2}),
            &[("acs_id", "B")],
        )]),
    )
    .unwrap();
});

on_both!(tenants_cannot_touch_each_others_records, |db| {
    let (a, ids) = tenant_with_ids(&*db, "a", 2);
    let b = db.create_tenant("b", "B").unwrap().id;
    db.commit(
        a,
        writes(vec![put(Kind::Site, ids[0], json!({}), &[("acs_id", "X")])]),
    )
    .unwrap();
    // The same unique value is free in another tenant …
    db.commit(
        b,
        writes(vec![put(Kind::Site, ids[1], json!({}), &[("acs_id", "X")])]),
    )
    .unwrap();
    assert_eq!(db.claim_owner("acs_id", "nope").unwrap(), None);
    // … but tenant B can neither overwrite nor delete A's record.
    for write in [
        put(Kind::Site, ids[0], json!({"stolen": true}), &[]),
        Write::Delete {
            kind: Kind::Site,
            id: ids[0],
        },
    ] {
        let err = db.commit(b, writes(vec![write])).unwrap_err();
        assert!(matches!(err, StoreError::Missing { .. }), "{err}");
    }
    assert_eq!(db.records(a).unwrap()[0].data, json!({}));
    assert_eq!(db.owner_of(b, ids[0]).unwrap(), None);
    // A device id is unique across tenants.
    let more = db.allocate_ids(2).unwrap();
    db.commit(
        a,
        writes(vec![put(
            Kind::Terminal,
            more[0],
            json!({}),
            &[("device_id", "D1")],
        )]),
    )
    .unwrap();
    let err = db
        .commit(
            b,
            writes(vec![put(
                Kind::Terminal,
                more[1],
                json!({}),
                &[("device_id", "D1")],
            )]),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                scope: "device_id",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        db.claim_owner("device_id", "D1").unwrap(),
        Some((a, more[0]))
    );
});

on_both!(idempotent_replies, |db| {
    let (t, ids) = tenant_with_ids(&*db, "acme", 2);
    let other = db.create_tenant("other", "Other").unwrap().id;
    let reply = IdempotentReply {
        key: "k-1".to_owned(),
        fingerprint: "fp".to_owned(),
        status: 201,
        body: r#"{"id": 1, "name": "é ü 😀"}"#.to_owned(),
    };
    db.commit(
        t,
        Change {
            writes: vec![put(Kind::Person, ids[0], json!({}), &[])],
            idempotency: Some(reply.clone()),
            ..Change::default()
        },
    )
    .unwrap();
    assert_eq!(db.idempotent_reply(t, "k-1").unwrap(), Some(reply.clone()));
    assert_eq!(db.idempotent_reply(other, "k-1").unwrap(), None);
    assert_eq!(db.idempotent_reply(t, "k-2").unwrap(), None);
    let err = db
        .commit(
            t,
            Change {
                writes: vec![put(Kind::Person, ids[1], json!({}), &[])],
                idempotency: Some(IdempotentReply {
                    fingerprint: "other".to_owned(),
                    ..reply.clone()
                }),
                ..Change::default()
            },
        )
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::IdempotencyMismatch(k) if k == "k-1"),
        "{err}"
    );
    assert_eq!(
        db.records(t).unwrap().len(),
        1,
        "the refused change wrote nothing"
    );
    // Another tenant may use the same key.
    db.commit(
        other,
        Change {
            idempotency: Some(reply),
            ..Change::default()
        },
    )
    .unwrap();
});

on_both!(owned_unowned_and_paging_by_kind, |db| {
    let (t, ids) = tenant_with_ids(&*db, "acme", 8);
    let [
        site,
        person,
        credential,
        phone,
        invitation,
        group,
        enrollment,
        loner,
    ] = ids[..]
    else {
        unreachable!()
    };
    db.commit(
        t,
        writes(vec![
            put(Kind::Site, site, json!({"name": "S"}), &[]),
            put(Kind::Person, person, json!({"acs_id": "P"}), &[]),
            put(
                Kind::Credential,
                credential,
                json!({"person_id": person}),
                &[],
            ),
            put(Kind::Phone, phone, json!({"person_id": person}), &[]),
            put(
                Kind::Invitation,
                invitation,
                json!({"person_id": person}),
                &[],
            ),
            put(Kind::Group, group, json!({}), &[]),
            put(
                Kind::Enrollment,
                enrollment,
                json!({"person_id": person}),
                &[],
            ),
            put(Kind::Person, loner, json!({}), &[]),
        ]),
    )
    .unwrap();
    let owned: Vec<u64> = db
        .owned_records(t, person)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(owned, [person, credential, phone, invitation]);
    let unowned: Vec<(Kind, u64)> = db
        .unowned_records(t)
        .unwrap()
        .iter()
        .map(|r| (r.kind, r.id))
        .collect();
    assert_eq!(unowned, [(Kind::Site, site), (Kind::Group, group)]);
    assert_eq!(db.owner_of(t, credential).unwrap(), Some(person));
    assert_eq!(db.owner_of(t, group).unwrap(), None);
    assert_eq!(db.owner_of(t, 999_999).unwrap(), None);
    // Every record, by kind (load order) then id.
    let all: Vec<Kind> = db.records(t).unwrap().iter().map(|r| r.kind).collect();
    assert_eq!(
        all,
        [
            Kind::Site,
            Kind::Person,
            Kind::Person,
            Kind::Phone,
            Kind::Credential,
            Kind::Group,
            Kind::Invitation,
            Kind::Enrollment
        ]
    );
    // Paging through the people.
    let first = db.records_of_kind(t, Kind::Person, 0, 1).unwrap();
    assert_eq!(first.iter().map(|r| r.id).collect::<Vec<_>>(), [person]);
    let next = db.records_of_kind(t, Kind::Person, person, 10).unwrap();
    assert_eq!(next.iter().map(|r| r.id).collect::<Vec<_>>(), [loner]);
    assert!(
        db.records_of_kind(t, Kind::Person, loner, 10)
            .unwrap()
            .is_empty()
    );
});

on_both!(claims_and_prefixes, |db| {
    let (t, ids) = tenant_with_ids(&*db, "acme", 4);
    let other = db.create_tenant("other", "Other").unwrap().id;
    let more = db.allocate_ids(1).unwrap();
    db.commit(
        t,
        writes(vec![
            put(
                Kind::Credential,
                ids[0],
                json!({}),
                &[("revoked", "card:1,2\u{1f}7")],
            ),
            put(
                Kind::Credential,
                ids[1],
                json!({}),
                &[("revoked", "card:1,2\u{1f}8")],
            ),
            put(
                Kind::Credential,
                ids[2],
                json!({}),
                &[("revoked", "card:1,20\u{1f}9")],
            ),
            put(
                Kind::Credential,
                ids[3],
                json!({}),
                &[("card", "1,2"), ("revoked", "pin:é\u{1f}1")],
            ),
        ]),
    )
    .unwrap();
    db.commit(
        other,
        writes(vec![put(
            Kind::Credential,
            more[0],
            json!({}),
            &[("revoked", "card:1,2\u{1f}5")],
        )]),
    )
    .unwrap();
    let mut found = db
        .claims_with_prefix(t, "revoked", "card:1,2\u{1f}")
        .unwrap();
    found.sort_unstable();
    assert_eq!(found, [ids[0], ids[1]]);
    let mut wider = db.claims_with_prefix(t, "revoked", "card:1,2").unwrap();
    wider.sort_unstable();
    assert_eq!(wider, [ids[0], ids[1], ids[2]]);
    assert_eq!(
        db.claims_with_prefix(t, "revoked", "pin:é").unwrap(),
        [ids[3]]
    );
    assert!(db.claims_with_prefix(t, "card", "9").unwrap().is_empty());
    assert_eq!(db.claim(t, "card", "1,2").unwrap(), Some(ids[3]));
    assert_eq!(db.claim(other, "card", "1,2").unwrap(), None);
    assert_eq!(db.claim_owner("card", "1,2").unwrap(), Some((t, ids[3])));
});

on_both!(concurrent_writers_claiming_one_key_one_wins, |db| {
    let (t, ids) = tenant_with_ids(&*db, "acme", 16);
    let store: &dyn Store = &*db;
    let outcomes: Vec<Result<Vec<u64>, StoreError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = ids
            .iter()
            .map(|&id| {
                scope.spawn(move || {
                    store.commit(
                        t,
                        writes(vec![
                            put(
                                Kind::Person,
                                id,
                                json!({"id": id}),
                                &[("acs_id", &format!("own-{id}"))],
                            ),
                            put(
                                Kind::Credential,
                                id + 1000,
                                json!({}),
                                &[("card", "42,4242")],
                            ),
                        ]),
                    )
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(won, 1, "{outcomes:?}");
    for outcome in &outcomes {
        if let Err(err) = outcome {
            assert!(
                matches!(err, StoreError::Conflict { scope: "card", .. }),
                "{err}"
            );
        }
    }
    let records = db.records(t).unwrap();
    assert_eq!(records.len(), 2, "only the winner's person and credential");
});
