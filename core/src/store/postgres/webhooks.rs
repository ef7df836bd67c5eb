//! The webhook tables ([`crate::store::webhooks`]): endpoints with their signing secrets
//! (stored as given: the sealing layer above the backends, `store::sealed`, seals them),
//! the fan-out of a change's events into outbox messages for the subscribed endpoints,
//! and the log of delivery attempts.

use deadpool_postgres::GenericClient;
use jiff::Timestamp;

use super::outbox;
use super::sql::{id, row, rows, run, sql_count, sql_id, timestamp};
use crate::store::webhooks::fan_out_messages;
use crate::store::{
    AttemptOutcome, DeliveryRow, NewDelivery, StoreError, WebhookEvent, WebhookRow,
};

/// Creates or replaces the endpoint `row` of `tenant`; another tenant's endpoint with the
/// same id is left alone and the change refused.
pub(super) async fn put(
    tx: &impl GenericClient,
    tenant: i64,
    row: &WebhookRow,
) -> Result<(), StoreError> {
    let (previous, previous_until) = match &row.previous_secret {
        Some((secret, until)) => (Some(secret.clone()), Some(until.as_millisecond())),
        None => (None, None),
    };
    let changed = run(
        tx,
        "INSERT INTO webhooks (id, tenant_id, url, description, event_types, secret, previous_secret,
                               previous_until_ms, enabled, disabled_reason, failed_messages, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (id) DO UPDATE SET
             url = excluded.url, description = excluded.description,
             event_types = excluded.event_types, secret = excluded.secret,
             previous_secret = excluded.previous_secret, previous_until_ms = excluded.previous_until_ms,
             enabled = excluded.enabled, disabled_reason = excluded.disabled_reason,
             failed_messages = excluded.failed_messages, updated_at = excluded.updated_at
         WHERE webhooks.tenant_id = excluded.tenant_id",
        &[
            &sql_id(row.id),
            &tenant,
            &row.url,
            &row.description,
            &row.event_types.join(" "),
            &row.secret,
            &previous,
            &previous_until,
            &row.enabled,
            &row.disabled_reason,
            &i64::from(row.failed_messages),
            &row.created_at.to_string(),
            &row.updated_at.to_string(),
        ],
    )
    .await?;
    if changed == 0 {
        return Err(StoreError::Corrupt(format!(
            "webhook {} belongs to another tenant",
            row.id
        )));
    }
    Ok(())
}

/// Deletes the endpoint `webhook_id` of `tenant` with its delivery log.
pub(super) async fn delete(
    tx: &impl GenericClient,
    tenant: i64,
    webhook_id: u64,
) -> Result<(), StoreError> {
    run(
        tx,
        "DELETE FROM webhooks WHERE id = $1 AND tenant_id = $2",
        &[&sql_id(webhook_id), &tenant],
    )
    .await?;
    Ok(())
}

/// Appends one outbox message per enabled endpoint of `tenant` subscribed to each event;
/// `access_event_ids` are the ids the change's access events were given.
pub(super) async fn fan_out(
    tx: &impl GenericClient,
    tenant: i64,
    events: &[WebhookEvent],
    access_event_ids: &[u64],
) -> Result<(), StoreError> {
    let endpoints: Vec<(u64, String)> = rows(
        tx,
        "SELECT id, event_types FROM webhooks WHERE tenant_id = $1 AND enabled ORDER BY id",
        &[&tenant],
    )
    .await?
    .iter()
    .map(|r| Ok((id(r.try_get(0)?), r.try_get(1)?)))
    .collect::<Result<_, StoreError>>()?;
    for message in fan_out_messages(events, access_event_ids, &endpoints) {
        outbox::append(tx, tenant, &message).await?;
    }
    Ok(())
}

/// Records one delivery attempt and moves its endpoint's count of failed messages.
pub(super) async fn record(
    tx: &impl GenericClient,
    tenant: i64,
    delivery: &NewDelivery,
) -> Result<(), StoreError> {
    let endpoint = sql_id(delivery.webhook_id);
    let exists = row(
        tx,
        "SELECT id FROM webhooks WHERE id = $1 AND tenant_id = $2",
        &[&endpoint, &tenant],
    )
    .await?;
    if exists.is_none() {
        // Deleted while the attempt was in flight: nothing left to log it against.
        return Ok(());
    }
    run(
        tx,
        "INSERT INTO webhook_deliveries (tenant_id, webhook_id, message_id, event_id, event_type, attempt,
                                         attempted_at, status_code, error, duration_ms, outcome)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &tenant,
            &endpoint,
            &sql_id(delivery.message_id),
            &delivery.event_id,
            &delivery.event_type,
            &i64::from(delivery.attempt),
            &delivery.attempted_at.to_string(),
            &delivery.status_code.map(i64::from),
            &delivery.error,
            &sql_id(delivery.duration_ms),
            &delivery.outcome.as_str(),
        ],
    )
    .await?;
    let counter = match delivery.outcome {
        AttemptOutcome::Delivered => "UPDATE webhooks SET failed_messages = 0 WHERE id = $1",
        AttemptOutcome::GivenUp => {
            "UPDATE webhooks SET failed_messages = failed_messages + 1 WHERE id = $1"
        }
        AttemptOutcome::Failed => return Ok(()),
    };
    run(tx, counter, &[&endpoint]).await?;
    Ok(())
}

/// The endpoints of `tenant`, by id, secrets as stored.
pub(super) async fn list(
    c: &impl GenericClient,
    tenant_id: u64,
) -> Result<Vec<WebhookRow>, StoreError> {
    rows(
        c,
        "SELECT id, url, description, event_types, secret, previous_secret, previous_until_ms,
                enabled, disabled_reason, failed_messages, created_at, updated_at
         FROM webhooks WHERE tenant_id = $1 ORDER BY id",
        &[&sql_id(tenant_id)],
    )
    .await?
    .iter()
    .map(|r| {
        let previous: Option<String> = r.try_get(5)?;
        let until: Option<i64> = r.try_get(6)?;
        let previous_secret = match (previous, until) {
            (Some(previous), Some(until)) => Some((
                previous,
                Timestamp::from_millisecond(until)
                    .map_err(|e| StoreError::Corrupt(format!("webhook instant {until}: {e}")))?,
            )),
            _ => None,
        };
        let types: &str = r.try_get(3)?;
        let failed: i64 = r.try_get(9)?;
        Ok(WebhookRow {
            id: id(r.try_get(0)?),
            url: r.try_get(1)?,
            description: r.try_get(2)?,
            event_types: types
                .split(' ')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            secret: r.try_get(4)?,
            previous_secret,
            enabled: r.try_get(7)?,
            disabled_reason: r.try_get(8)?,
            failed_messages: u32::try_from(failed).unwrap_or(u32::MAX),
            created_at: timestamp(r.try_get(10)?)?,
            updated_at: timestamp(r.try_get(11)?)?,
        })
    })
    .collect()
}

/// Up to `limit` delivery attempts to the endpoint with ids above `after`, by id.
pub(super) async fn deliveries(
    c: &impl GenericClient,
    tenant_id: u64,
    webhook_id: u64,
    after: u64,
    limit: usize,
) -> Result<Vec<DeliveryRow>, StoreError> {
    rows(
        c,
        "SELECT id, message_id, event_id, event_type, attempt, attempted_at, status_code, error, duration_ms, outcome
         FROM webhook_deliveries WHERE tenant_id = $1 AND webhook_id = $2 AND id > $3 ORDER BY id LIMIT $4",
        &[
            &sql_id(tenant_id),
            &sql_id(webhook_id),
            &sql_id(after),
            &sql_count(limit),
        ],
    )
    .await?
    .iter()
    .map(|r| {
        let attempt: i64 = r.try_get(4)?;
        let status: Option<i64> = r.try_get(6)?;
        let outcome: &str = r.try_get(9)?;
        Ok(DeliveryRow {
            id: id(r.try_get(0)?),
            delivery: NewDelivery {
                webhook_id,
                message_id: id(r.try_get(1)?),
                event_id: r.try_get(2)?,
                event_type: r.try_get(3)?,
                attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
                attempted_at: timestamp(r.try_get(5)?)?,
                status_code: status.and_then(|s| u16::try_from(s).ok()),
                error: r.try_get(7)?,
                duration_ms: id(r.try_get(8)?),
                outcome: AttemptOutcome::parse(outcome).ok_or_else(|| {
                    StoreError::Corrupt(format!("webhook delivery outcome '{outcome}'"))
                })?,
            },
        })
    })
    .collect()
}
