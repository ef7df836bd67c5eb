//! [`SealedStore`]: any [`Store`] behind a layer that puts secrets into their form at rest
//! ([`super::secrets`]) on the way in and opens what is sealed on the way out, so that a
//! backend only ever sees sealed values and keyed digests and the rest of the core never
//! sees the difference (except cloud-key secrets, which the core digests itself through
//! [`Store::secret_key`]). A conflict on a secret's unique key names its digest.

use jiff::Timestamp;
use serde_json::Value as Json;

use super::seal::SecretKey;
use super::secrets::{
    applied_at_rest, applied_in_clear, claim_at_rest, claim_value_at_rest, record_at_rest,
    record_in_clear, text_at_rest, text_in_clear,
};
use super::{
    AccessEventRow, ApiKeyRow, Blob, Change, DeliveryOutcome, DeliveryRow, IdempotentReply, Kind,
    MessageRow, Record, Store, StoreError, TenantRow, WebhookRow, WebhookWrite, Write,
};

/// A store whose secrets are sealed or digested under `key` before the backend sees them.
#[derive(Debug)]
pub struct SealedStore<S> {
    inner: S,
    key: SecretKey,
}

impl<S: Store> SealedStore<S> {
    /// `inner` with its secrets kept under `key`.
    pub fn new(inner: S, key: SecretKey) -> SealedStore<S> {
        SealedStore { inner, key }
    }

    /// The backend.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn opened(&self, records: Vec<Record>) -> Result<Vec<Record>, StoreError> {
        records
            .into_iter()
            .map(|mut r| {
                r.data = record_in_clear(&self.key, r.kind, r.data)?;
                Ok(r)
            })
            .collect()
    }

    fn opened_messages(&self, rows: Vec<MessageRow>) -> Result<Vec<MessageRow>, StoreError> {
        rows.into_iter()
            .map(|mut row| {
                row.message.body = text_in_clear(&self.key, row.message.body)?;
                Ok(row)
            })
            .collect()
    }

    /// `change` with its secrets in their form at rest.
    fn at_rest(&self, mut change: Change) -> Change {
        for write in &mut change.writes {
            if let Write::Put {
                kind, data, unique, ..
            } = write
            {
                *data = record_at_rest(&self.key, *kind, data);
                for claim in unique.iter_mut() {
                    *claim = claim_at_rest(&self.key, claim);
                }
            }
        }
        if let Some(reply) = &mut change.idempotency {
            reply.body = text_at_rest(&self.key, &reply.body);
        }
        for message in &mut change.messages {
            message.body = text_at_rest(&self.key, &message.body);
        }
        for write in &mut change.webhooks {
            if let WebhookWrite::Put(row) = write {
                row.secret = text_at_rest(&self.key, &row.secret);
                if let Some((previous, _)) = &mut row.previous_secret {
                    *previous = text_at_rest(&self.key, previous);
                }
            }
        }
        change
    }
}

impl<S: Store> Store for SealedStore<S> {
    fn secret_key(&self) -> Option<&SecretKey> {
        Some(&self.key)
    }

    fn create_tenant(&self, slug: &str, name: &str) -> Result<TenantRow, StoreError> {
        self.inner.create_tenant(slug, name)
    }

    fn tenants(&self) -> Result<Vec<TenantRow>, StoreError> {
        self.inner.tenants()
    }

    fn insert_api_key(
        &self,
        tenant_id: u64,
        label: &str,
        prefix: &str,
        hash: &str,
    ) -> Result<ApiKeyRow, StoreError> {
        self.inner.insert_api_key(tenant_id, label, prefix, hash)
    }

    fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        self.inner.api_key_by_hash(hash)
    }

    fn api_keys(&self, tenant_id: u64) -> Result<Vec<ApiKeyRow>, StoreError> {
        self.inner.api_keys(tenant_id)
    }

    fn revoke_api_key(&self, tenant_id: u64, key_id: u64) -> Result<bool, StoreError> {
        self.inner.revoke_api_key(tenant_id, key_id)
    }

    fn allocate_ids(&self, n: usize) -> Result<Vec<u64>, StoreError> {
        self.inner.allocate_ids(n)
    }

    fn commit(&self, tenant_id: u64, change: Change) -> Result<Vec<u64>, StoreError> {
        // A clash on a secret's claim names its digest, never the secret (the API does not
        // repeat a secret's value anyway).
        self.inner.commit(tenant_id, self.at_rest(change))
    }

    fn records(&self, tenant_id: u64) -> Result<Vec<Record>, StoreError> {
        self.opened(self.inner.records(tenant_id)?)
    }

    fn unowned_records(&self, tenant_id: u64) -> Result<Vec<Record>, StoreError> {
        self.opened(self.inner.unowned_records(tenant_id)?)
    }

    fn owned_records(&self, tenant_id: u64, owner: u64) -> Result<Vec<Record>, StoreError> {
        self.opened(self.inner.owned_records(tenant_id, owner)?)
    }

    fn owner_of(&self, tenant_id: u64, record_id: u64) -> Result<Option<u64>, StoreError> {
        self.inner.owner_of(tenant_id, record_id)
    }

    fn records_of_kind(
        &self,
        tenant_id: u64,
        kind: Kind,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.opened(self.inner.records_of_kind(tenant_id, kind, after, limit)?)
    }

    fn claim(&self, tenant_id: u64, scope: &str, value: &str) -> Result<Option<u64>, StoreError> {
        let value = claim_value_at_rest(&self.key, scope, value);
        self.inner.claim(tenant_id, scope, &value)
    }

    fn claims_with_prefix(
        &self,
        tenant_id: u64,
        scope: &str,
        prefix: &str,
    ) -> Result<Vec<u64>, StoreError> {
        let prefix = claim_value_at_rest(&self.key, scope, prefix);
        self.inner.claims_with_prefix(tenant_id, scope, &prefix)
    }

    fn blob(&self, tenant_id: u64, record_id: u64) -> Result<Option<Blob>, StoreError> {
        self.inner.blob(tenant_id, record_id)
    }

    fn idempotent_reply(
        &self,
        tenant_id: u64,
        key: &str,
    ) -> Result<Option<IdempotentReply>, StoreError> {
        self.inner
            .idempotent_reply(tenant_id, key)?
            .map(|mut reply| {
                reply.body = text_in_clear(&self.key, reply.body)?;
                Ok(reply)
            })
            .transpose()
    }

    fn applied(&self, tenant_id: u64, terminal_id: u64) -> Result<Vec<(String, Json)>, StoreError> {
        self.inner
            .applied(tenant_id, terminal_id)?
            .into_iter()
            .map(|(subject, doc)| Ok((subject, applied_in_clear(&self.key, doc)?)))
            .collect()
    }

    fn set_applied(
        &self,
        tenant_id: u64,
        terminal_id: u64,
        subjects: &[(String, Option<Json>)],
    ) -> Result<(), StoreError> {
        let sealed: Vec<(String, Option<Json>)> = subjects
            .iter()
            .map(|(subject, doc)| {
                (
                    subject.clone(),
                    doc.as_ref().map(|d| applied_at_rest(&self.key, d)),
                )
            })
            .collect();
        self.inner.set_applied(tenant_id, terminal_id, &sealed)
    }

    fn access_events(
        &self,
        tenant_id: u64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AccessEventRow>, StoreError> {
        self.inner.access_events(tenant_id, after, limit)
    }

    fn claim_owner(&self, scope: &str, value: &str) -> Result<Option<(u64, u64)>, StoreError> {
        let value = claim_value_at_rest(&self.key, scope, value);
        self.inner.claim_owner(scope, &value)
    }

    fn webhooks(&self, tenant_id: u64) -> Result<Vec<WebhookRow>, StoreError> {
        let mut rows = self.inner.webhooks(tenant_id)?;
        for row in &mut rows {
            row.secret = text_in_clear(&self.key, std::mem::take(&mut row.secret))?;
            if let Some((previous, _)) = &mut row.previous_secret {
                *previous = text_in_clear(&self.key, std::mem::take(previous))?;
            }
        }
        Ok(rows)
    }

    fn webhook_deliveries(
        &self,
        tenant_id: u64,
        webhook_id: u64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        self.inner
            .webhook_deliveries(tenant_id, webhook_id, after, limit)
    }

    fn due_messages(
        &self,
        now: Timestamp,
        limit: usize,
        claimer: &str,
        claim_for: std::time::Duration,
    ) -> Result<Vec<MessageRow>, StoreError> {
        self.opened_messages(self.inner.due_messages(now, limit, claimer, claim_for)?)
    }

    fn tenant_revision(&self, tenant_id: u64) -> Result<u64, StoreError> {
        self.inner.tenant_revision(tenant_id)
    }

    fn changed_tenants(&self, after: u64) -> Result<Vec<super::TenantRevision>, StoreError> {
        self.inner.changed_tenants(after)
    }

    fn access_events_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, AccessEventRow)>, StoreError> {
        self.inner.access_events_after(after, limit)
    }

    fn last_access_event_id(&self) -> Result<u64, StoreError> {
        self.inner.last_access_event_id()
    }

    fn heartbeat(&self, instance: &str, ttl: std::time::Duration) -> Result<usize, StoreError> {
        self.inner.heartbeat(instance, ttl)
    }

    fn acquire_lease(
        &self,
        terminal_id: u64,
        instance: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        self.inner.acquire_lease(terminal_id, instance, ttl)
    }

    fn renew_leases(
        &self,
        instance: &str,
        ttl: std::time::Duration,
    ) -> Result<Vec<u64>, StoreError> {
        self.inner.renew_leases(instance, ttl)
    }

    fn release_leases(&self, instance: &str, terminals: Option<&[u64]>) -> Result<(), StoreError> {
        self.inner.release_leases(instance, terminals)
    }

    fn leases(&self) -> Result<Vec<super::Lease>, StoreError> {
        self.inner.leases()
    }

    fn count_hit(
        &self,
        key: &str,
        window_ms: i64,
        prune_before_ms: i64,
    ) -> Result<u64, StoreError> {
        self.inner.count_hit(key, window_ms, prune_before_ms)
    }

    fn next_message_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.inner.next_message_due()
    }

    fn record_delivery(&self, id: u64, outcome: &DeliveryOutcome) -> Result<(), StoreError> {
        self.inner.record_delivery(id, outcome)
    }

    fn messages(
        &self,
        tenant_id: u64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<MessageRow>, StoreError> {
        self.opened_messages(self.inner.messages(tenant_id, after, limit)?)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::outbox::{Channel, NewMessage};
    use crate::store::{SqliteStore, UniqueKey};

    fn pin_credential(id: u64, pin: &str) -> Write {
        Write::Put {
            kind: Kind::Credential,
            id,
            data: json!({"value": {"kind": "pin", "pin": pin}}),
            unique: vec![UniqueKey {
                scope: "pin",
                value: pin.to_owned(),
            }],
            blob: None,
        }
    }

    #[test]
    fn the_backend_sees_only_sealed_values_and_digests() {
        let store = SealedStore::new(SqliteStore::in_memory().unwrap(), SecretKey::generate());
        let tenant = store.create_tenant("acme", "Acme").unwrap().id;
        let ids = store.allocate_ids(2).unwrap();
        let message = NewMessage {
            channel: Channel::Text,
            recipient: "+34 600".into(),
            subject: "Key".into(),
            body: "PIN 39457120".into(),
            cause: "cloud_key.issued".into(),
            record_id: None,
            created_at: jiff::Timestamp::UNIX_EPOCH,
        };
        let change = Change {
            writes: vec![pin_credential(ids[0], "39457120")],
            messages: vec![message],
            ..Change::default()
        };
        store.commit(tenant, change).unwrap();
        store
            .set_applied(
                tenant,
                7,
                &[("person:1".into(), Some(json!({"pins": ["39457120"]})))],
            )
            .unwrap();

        // Through the layer: in clear, found by the clear value.
        assert_eq!(
            store.records(tenant).unwrap()[0].data["value"]["pin"],
            "39457120"
        );
        assert_eq!(
            store.claim(tenant, "pin", "39457120").unwrap(),
            Some(ids[0])
        );
        assert_eq!(
            store.applied(tenant, 7).unwrap()[0].1,
            json!({"pins": ["39457120"]})
        );
        assert_eq!(
            store.messages(tenant, 0, 10).unwrap()[0].message.body,
            "PIN 39457120"
        );
        // In the backend: nowhere in clear.
        let inner = store.inner();
        let raw = format!(
            "{:?} {:?} {:?}",
            inner.records(tenant).unwrap(),
            inner.applied(tenant, 7).unwrap(),
            inner.messages(tenant, 0, 10).unwrap()
        );
        assert!(!raw.contains("39457120"), "{raw}");
        assert_eq!(inner.claim(tenant, "pin", "39457120").unwrap(), None);

        // A clash names the digest, never the PIN (errors may be logged).
        let clash = store.commit(
            tenant,
            Change {
                writes: vec![pin_credential(ids[1], "39457120")],
                ..Change::default()
            },
        );
        match clash {
            Err(StoreError::Conflict { scope, value }) => {
                assert_eq!(scope, "pin");
                assert_eq!(value, store.key.digest("39457120"));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
}
