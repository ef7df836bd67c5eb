//! The outbox's table ([`crate::store::outbox`]): messages appended in the transaction of
//! the change that caused them, handed out when due (`next_attempt_ms`), and marked `sent`
//! or `failed`, or put back with a later attempt, by the delivery task. Instances sharing
//! the database claim due messages (`FOR UPDATE SKIP LOCKED`, so two instances polling at
//! once take different messages) for a while; a claim whose holder's heartbeat ran out is
//! void.

use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use tokio_postgres::Row;

use super::coordination::NOW_MS;
use super::sql::{id, row, rows, run, sql_count, sql_id, timestamp};
use crate::store::columns::millis;
use crate::store::{Channel, DeliveryOutcome, MessageRow, MessageStatus, NewMessage, StoreError};

/// Appends `message` for `tenant`, due at once.
pub(super) async fn append(
    tx: &impl GenericClient,
    tenant: i64,
    message: &NewMessage,
) -> Result<(), StoreError> {
    run(
        tx,
        "INSERT INTO outbox (tenant_id, channel, recipient, subject, body, cause, record_id, created_at, next_attempt_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &tenant,
            &message.channel.as_str(),
            &message.recipient,
            &message.subject,
            &message.body,
            &message.cause,
            &message.record_id.map(sql_id),
            &message.created_at.to_string(),
            &message.created_at.as_millisecond(),
        ],
    )
    .await?;
    Ok(())
}

/// Claims up to `limit` pending messages due at `now` that nobody holds a running claim
/// on, for `claimer` until `claim_for` from now (the server's clock), the longest due
/// first.
pub(super) async fn claim_due(
    c: &impl GenericClient,
    now: Timestamp,
    limit: usize,
    claimer: &str,
    claim_for: std::time::Duration,
) -> Result<Vec<MessageRow>, StoreError> {
    let mut claimed = rows(
        c,
        &format!(
            "UPDATE outbox SET claimed_by = $3, claimed_until_ms = {NOW_MS} + $4 WHERE id IN (
                 SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_ms <= $1
                   AND (claimed_until_ms IS NULL OR claimed_until_ms <= {NOW_MS} OR claimed_by = $3
                        OR claimed_by NOT IN (SELECT id FROM instances WHERE expires_ms > {NOW_MS}))
                 ORDER BY next_attempt_ms, id LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING {MESSAGE_FIELDS}"
        ),
        &[
            &now.as_millisecond(),
            &sql_count(limit),
            &claimer,
            &crate::store::coordination::millis_of(claim_for),
        ],
    )
    .await?
    .iter()
    .map(message_row)
    .collect::<Result<Vec<_>, _>>()?;
    claimed.sort_by_key(|r| (r.next_attempt_at, r.id));
    Ok(claimed)
}

/// When the next pending message is due, if there is one: a message another live
/// instance claimed not before its claim – or that instance's heartbeat – runs out.
pub(super) async fn next_due(c: &impl GenericClient) -> Result<Option<Timestamp>, StoreError> {
    let found = row(
        c,
        &format!(
            "SELECT MIN(CASE WHEN i.expires_ms > {NOW_MS} AND o.claimed_until_ms > {NOW_MS}
                        THEN GREATEST(o.next_attempt_ms, LEAST(o.claimed_until_ms, i.expires_ms))
                        ELSE o.next_attempt_ms END)
             FROM outbox o LEFT JOIN instances i ON i.id = o.claimed_by WHERE o.status = 'pending'"
        ),
        &[],
    )
    .await?;
    let ms: Option<i64> = match found {
        Some(r) => r.try_get(0)?,
        None => None,
    };
    ms.map(millis).transpose()
}

/// Records the outcome of one attempt at a pending message.
pub(super) async fn record_delivery(
    c: &impl GenericClient,
    message_id: u64,
    outcome: &DeliveryOutcome,
) -> Result<(), StoreError> {
    match outcome {
        DeliveryOutcome::Sent(at) => {
            run(
                c,
                "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = $2, last_error = NULL,
                        claimed_by = NULL, claimed_until_ms = NULL
                 WHERE id = $1 AND status = 'pending'",
                &[&sql_id(message_id), &at.to_string()],
            )
            .await?
        }
        DeliveryOutcome::Failed { error, retry_at } => {
            run(
                c,
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                        status = CASE WHEN $3::BIGINT IS NULL THEN 'failed' ELSE 'pending' END,
                        next_attempt_ms = COALESCE($3::BIGINT, next_attempt_ms),
                        claimed_by = NULL, claimed_until_ms = NULL
                 WHERE id = $1 AND status = 'pending'",
                &[
                    &sql_id(message_id),
                    error,
                    &retry_at.map(|t| t.as_millisecond()),
                ],
            )
            .await?
        }
    };
    Ok(())
}

/// Up to `limit` messages of the tenant with ids above `after`, by id.
pub(super) async fn page(
    c: &impl GenericClient,
    tenant_id: u64,
    after: u64,
    limit: usize,
) -> Result<Vec<MessageRow>, StoreError> {
    rows(
        c,
        &format!("{MESSAGE_COLUMNS} WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"),
        &[&sql_id(tenant_id), &sql_id(after), &sql_count(limit)],
    )
    .await?
    .iter()
    .map(message_row)
    .collect()
}

/// The columns [`message_row`] reads, in its order.
const MESSAGE_FIELDS: &str = "id, tenant_id, channel, recipient, subject, body, cause, record_id, created_at, status, attempts, next_attempt_ms, sent_at, last_error";

const MESSAGE_COLUMNS: &str = "SELECT id, tenant_id, channel, recipient, subject, body, cause, record_id, created_at, status, attempts, next_attempt_ms, sent_at, last_error FROM outbox";

/// One outbox row (columns as in [`MESSAGE_COLUMNS`]).
fn message_row(r: &Row) -> Result<MessageRow, StoreError> {
    let channel: &str = r.try_get(2)?;
    let status: &str = r.try_get(9)?;
    let record_id: Option<i64> = r.try_get(7)?;
    let attempts: i64 = r.try_get(10)?;
    let sent_at: Option<&str> = r.try_get(12)?;
    Ok(MessageRow {
        id: id(r.try_get(0)?),
        tenant_id: id(r.try_get(1)?),
        message: NewMessage {
            channel: Channel::parse(channel)
                .ok_or_else(|| StoreError::Corrupt(format!("outbox channel '{channel}'")))?,
            recipient: r.try_get(3)?,
            subject: r.try_get(4)?,
            body: r.try_get(5)?,
            cause: r.try_get(6)?,
            record_id: record_id.map(id),
            created_at: timestamp(r.try_get(8)?)?,
        },
        status: MessageStatus::parse(status)
            .ok_or_else(|| StoreError::Corrupt(format!("outbox status '{status}'")))?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at: millis(r.try_get(11)?)?,
        sent_at: sent_at.map(timestamp).transpose()?,
        last_error: r.try_get(13)?,
    })
}
