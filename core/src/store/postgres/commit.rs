//! Committing a [`Change`]: one transaction (READ COMMITTED) that remembers the
//! idempotency reply, puts and deletes records with their unique keys and blobs, and
//! appends the audit entries, access events and outbox messages, changes the webhook
//! endpoints, fans the webhook events out to them and records delivery attempts – all of
//! it or, on the first failure, nothing.
//!
//! SQLite has one writer; here transactions run side by side. What keeps them apart:
//! unique indexes (a second claim of a key waits for the first transaction and then
//! fails: [`StoreError::Conflict`]), records updated only where tenant and kind match and
//! inserted with `ON CONFLICT DO NOTHING` (an id held elsewhere is
//! [`StoreError::Missing`]), the tenant's revision row (locked by the first statement
//! that moves or checks it, so writers of one tenant go one after the other, and a
//! change expecting a revision no longer stored is [`StoreError::Stale`]), and the retry
//! of a transaction PostgreSQL aborted for a deadlock or a serialization failure, a few
//! times. Access event ids and the change feed's position are drawn last, under the
//! commit-order lock ([`coordination::commit_order`]), so they commit in order.

use deadpool_postgres::{Client, Transaction};

use super::sql::{is_retryable, now, sql_id};
use super::{
    access_events, audit, coordination, idempotency, outbox, records, unique_keys, webhooks,
};
use crate::store::{Change, StoreError, WebhookWrite, Write};

/// How many times a change PostgreSQL aborted for a deadlock or serialization failure is
/// tried in all.
const ATTEMPTS: usize = 5;

/// Commits `change` for `tenant_id`; the ids of the access events it appended.
pub(super) async fn commit(
    c: &mut Client,
    tenant_id: u64,
    change: &Change,
) -> Result<Vec<u64>, StoreError> {
    let mut attempt = 1;
    loop {
        let tx = c.transaction().await?;
        let result = match apply(&tx, tenant_id, change).await {
            Ok(ids) => tx.commit().await.map(|()| ids).map_err(StoreError::from),
            // Dropping the transaction rolls it back.
            Err(e) => Err(e),
        };
        match result {
            Err(StoreError::Postgres(e)) if is_retryable(&e) && attempt < ATTEMPTS => {
                tracing::debug!(attempt, error = %e, "change retried");
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Every write of `change` inside `tx`.
async fn apply(
    tx: &Transaction<'_>,
    tenant_id: u64,
    change: &Change,
) -> Result<Vec<u64>, StoreError> {
    let tenant = sql_id(tenant_id);
    let stamp = now();
    if let Some(reply) = &change.idempotency {
        idempotency::remember(tx, tenant, reply, &stamp).await?;
    }
    // After the idempotency reply: the second of two identical requests racing on two
    // instances is told the key is taken (and replays the first's reply), not that its
    // snapshot is stale.
    if change.expected_revision.is_some() || change.moves_feed() {
        coordination::advance(
            tx,
            tenant,
            change.expected_revision,
            change.moves_revision(),
        )
        .await?;
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
                records::put(tx, tenant, *kind, *record_id, data, &stamp).await?;
                let rid = sql_id(*record_id);
                unique_keys::claim_all(tx, tenant, rid, unique).await?;
                if let Some(blob) = blob {
                    records::attach_blob(tx, rid, blob).await?;
                }
            }
            Write::Delete {
                kind,
                id: record_id,
            } => records::delete(tx, tenant, *kind, *record_id).await?,
        }
    }
    for write in &change.webhooks {
        match write {
            WebhookWrite::Put(row) => webhooks::put(tx, tenant, row).await?,
            WebhookWrite::Delete(webhook_id) => webhooks::delete(tx, tenant, *webhook_id).await?,
        }
    }
    for entry in &change.audit {
        audit::append(tx, tenant, entry, &stamp).await?;
    }
    if !change.access_events.is_empty() || change.moves_feed() {
        coordination::commit_order(tx).await?;
    }
    if change.moves_feed() {
        coordination::publish(tx, tenant).await?;
    }
    let mut event_ids = Vec::with_capacity(change.access_events.len());
    for event in &change.access_events {
        event_ids.push(access_events::append(tx, tenant, event).await?);
    }
    for message in &change.messages {
        outbox::append(tx, tenant, message).await?;
    }
    if !change.webhook_events.is_empty() {
        webhooks::fan_out(tx, tenant, &change.webhook_events, &event_ids).await?;
    }
    for delivery in &change.webhook_deliveries {
        webhooks::record(tx, tenant, delivery).await?;
    }
    Ok(event_ids)
}
