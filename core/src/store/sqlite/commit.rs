//! Committing a [`Change`]: one immediate transaction that remembers the idempotency
//! reply, puts and deletes records with their unique keys and blobs, and appends the audit
//! entries, access events and outbox messages, changes the webhook endpoints, fans the
//! webhook events out to them and records delivery attempts – all of it or, on the first
//! failure, nothing.

use rusqlite::TransactionBehavior;

use super::sql::{now, sql_id};
use super::{
    SqliteStore, access_events, audit, coordination, idempotency, outbox, records, unique_keys,
    webhooks,
};
use crate::store::{Change, StoreError, WebhookWrite, Write};

/// Commits `change` for `tenant_id`; the ids of the access events it appended.
pub(super) fn commit(
    store: &SqliteStore,
    tenant_id: u64,
    change: Change,
) -> Result<Vec<u64>, StoreError> {
    let mut conn = store.lock();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let tenant = sql_id(tenant_id);
    let stamp = now();
    if let Some(reply) = &change.idempotency {
        idempotency::remember(&tx, tenant, reply, &stamp)?;
    }
    // After the idempotency reply: the second of two identical requests racing on two
    // instances is told the key is taken (and replays the first's reply), not that its
    // snapshot is stale.
    if change.expected_revision.is_some() || change.moves_feed() {
        coordination::advance(
            &tx,
            tenant,
            change.expected_revision,
            change.moves_revision(),
            change.moves_feed(),
        )?;
    }
    for write in &change.writes {
        match write {
            Write::Put {
                kind,
                id: record_id,
                data,
                unique,
                blob,
            } => {
                records::put(&tx, tenant, *kind, *record_id, data, &stamp)?;
                let rid = sql_id(*record_id);
                unique_keys::claim_all(&tx, tenant, rid, unique)?;
                if let Some(blob) = blob {
                    records::attach_blob(&tx, rid, blob)?;
                }
            }
            Write::Delete {
                kind,
                id: record_id,
            } => records::delete(&tx, tenant, *kind, *record_id)?,
        }
    }
    for write in &change.webhooks {
        match write {
            WebhookWrite::Put(row) => webhooks::put(&tx, tenant, row)?,
            WebhookWrite::Delete(webhook_id) => webhooks::delete(&tx, tenant, *webhook_id)?,
        }
    }
    for entry in &change.audit {
        audit::append(&tx, tenant, entry, &stamp)?;
    }
    let mut event_ids = Vec::with_capacity(change.access_events.len());
    for event in &change.access_events {
        event_ids.push(access_events::append(&tx, tenant, event)?);
    }
    for message in &change.messages {
        outbox::append(&tx, tenant, message)?;
    }
    if !change.webhook_events.is_empty() {
        webhooks::fan_out(&tx, tenant, &change.webhook_events, &event_ids)?;
    }
    for delivery in &change.webhook_deliveries {
        webhooks::record(&tx, tenant, delivery)?;
    }
    tx.commit()?;
    Ok(event_ids)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::sqlite::test_support::put;
    use crate::store::{Kind, Store as _};

    #[test]
    fn a_failed_change_writes_nothing() {
        let store = SqliteStore::in_memory().unwrap();
        let t = store.create_tenant("acme", "Acme").unwrap().id;
        let ids = store.allocate_ids(3).unwrap();
        store
            .commit(
                t,
                Change {
                    writes: vec![put(
                        Kind::Person,
                        ids[0],
                        json!({"n": 1}),
                        &[("acs_id", "A")],
                    )],
                    ..Change::default()
                },
            )
            .unwrap();
        let clash = Change {
            writes: vec![
                put(Kind::Person, ids[1], json!({"n": 2}), &[("acs_id", "B")]),
                put(Kind::Person, ids[2], json!({"n": 3}), &[("acs_id", "A")]),
            ],
            ..Change::default()
        };
        let err = store.commit(t, clash).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Conflict {
                    scope: "acs_id",
                    ..
                }
            ),
            "{err}"
        );
        let records = store.records(t).unwrap();
        assert_eq!(
            records.len(),
            1,
            "the first put of the failed change was rolled back"
        );
    }

    #[test]
    fn tenants_cannot_touch_each_others_records() {
        let store = SqliteStore::in_memory().unwrap();
        let a = store.create_tenant("a", "A").unwrap().id;
        let b = store.create_tenant("b", "B").unwrap().id;
        let id = store.allocate_ids(1).unwrap()[0];
        store
            .commit(
                a,
                Change {
                    writes: vec![put(Kind::Site, id, json!({}), &[("acs_id", "X")])],
                    ..Change::default()
                },
            )
            .unwrap();
        // The same unique value is free in another tenant …
        let other = store.allocate_ids(1).unwrap()[0];
        store
            .commit(
                b,
                Change {
                    writes: vec![put(Kind::Site, other, json!({}), &[("acs_id", "X")])],
                    ..Change::default()
                },
            )
            .unwrap();
        // … but tenant B can neither overwrite nor delete A's record.
        for write in [
            put(Kind::Site, id, json!({"stolen": true}), &[]),
            Write::Delete {
                kind: Kind::Site,
                id,
            },
        ] {
            let err = store
                .commit(
                    b,
                    Change {
                        writes: vec![write],
                        ..Change::default()
                    },
                )
                .unwrap_err();
            assert!(matches!(err, StoreError::Missing { .. }), "{err}");
        }
        assert_eq!(store.records(a).unwrap()[0].data, json!({}));
    }
}
