//! The outbox's table ([`crate::store::outbox`]): messages appended in the transaction of
//! the change that caused them, handed out when due (`next_attempt_ms`), and marked `sent`
//! or `failed`, or put back with a later attempt, by the delivery task.

use jiff::Timestamp;
use rusqlite::{Connection, params};

use super::sql::{id, run, sql_count, sql_id, timestamp};
use crate::store::columns::millis;
use crate::store::{Channel, DeliveryOutcome, MessageRow, MessageStatus, NewMessage, StoreError};

/// Appends `message` for `tenant`, due at once.
pub(super) fn append(tx: &Connection, tenant: i64, message: &NewMessage) -> Result<(), StoreError> {
    run(
        tx,
        "INSERT INTO outbox (tenant_id, channel, recipient, subject, body, cause, record_id, created_at, next_attempt_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            tenant,
            message.channel.as_str(),
            message.recipient,
            message.subject,
            message.body,
            message.cause,
            message.record_id.map(sql_id),
            message.created_at.to_string(),
            message.created_at.as_millisecond()
        ],
    )?;
    Ok(())
}

/// Claims up to `limit` pending messages due at `now` that nobody holds a running claim
/// on, for `claimer` until `claim_for` from now (database time), the longest due first.
// UPDATE outbox SET claimed_by = $3, claimed_until = now() + $4 WHERE id IN (
//   SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_ms <= $1
//     AND (claimed_until IS NULL OR claimed_until <= now() OR claimed_by = $3
//          OR claimed_by NOT IN (SELECT id FROM instances WHERE expires_at > now()))
//   ORDER BY next_attempt_ms, id LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING ...
pub(super) fn claim_due(
    conn: &Connection,
    now: Timestamp,
    limit: usize,
    claimer: &str,
    claim_for: std::time::Duration,
) -> Result<Vec<MessageRow>, StoreError> {
    let wall = super::coordination::wall_ms();
    let until = wall.saturating_add(crate::store::coordination::millis_of(claim_for));
    let mut stmt = conn.prepare_cached(
        "UPDATE outbox SET claimed_by = ?3, claimed_until_ms = ?4 WHERE id IN (
             SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_ms <= ?1
               AND (claimed_until_ms IS NULL OR claimed_until_ms <= ?5 OR claimed_by = ?3
                    OR claimed_by NOT IN (SELECT id FROM instances WHERE expires_ms > ?5))
             ORDER BY next_attempt_ms, id LIMIT ?2)
         RETURNING id",
    )?;
    let claimed = stmt.query_map(
        params![now.as_millisecond(), sql_count(limit), claimer, until, wall],
        |r| r.get::<_, i64>(0),
    )?;
    let claimed: Vec<i64> = claimed.collect::<Result<_, _>>()?;
    let mut rows = Vec::with_capacity(claimed.len());
    let mut one = conn.prepare_cached(&format!("{MESSAGE_COLUMNS} WHERE id = ?1"))?;
    for message in claimed {
        rows.push(one.query_row(params![message], message_row)??);
    }
    rows.sort_by_key(|r: &MessageRow| (r.next_attempt_at, r.id));
    Ok(rows)
}

/// When the next pending message is due, if there is one: a message another live
/// instance claimed not before its claim – or that instance's heartbeat – runs out.
// SELECT MIN(CASE WHEN c.expires_at > now() AND o.claimed_until > now()
//   THEN GREATEST(o.next_attempt_ms, LEAST(o.claimed_until, c.expires_at)) ELSE o.next_attempt_ms END)
//   FROM outbox o LEFT JOIN instances c ON c.id = o.claimed_by WHERE o.status = 'pending'
pub(super) fn next_due(conn: &Connection) -> Result<Option<Timestamp>, StoreError> {
    let ms: Option<i64> = conn.query_row(
        "SELECT MIN(CASE WHEN c.expires_ms > ?1 AND o.claimed_until_ms > ?1
                    THEN MAX(o.next_attempt_ms, MIN(o.claimed_until_ms, c.expires_ms))
                    ELSE o.next_attempt_ms END)
         FROM outbox o LEFT JOIN instances c ON c.id = o.claimed_by WHERE o.status = 'pending'",
        params![super::coordination::wall_ms()],
        |r| r.get(0),
    )?;
    ms.map(millis).transpose()
}

/// Records the outcome of one attempt at a pending message.
pub(super) fn record_delivery(
    conn: &Connection,
    message_id: u64,
    outcome: &DeliveryOutcome,
) -> Result<(), StoreError> {
    match outcome {
        DeliveryOutcome::Sent(at) => conn.execute(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?2, last_error = NULL,
                    claimed_by = NULL, claimed_until_ms = NULL
             WHERE id = ?1 AND status = 'pending'",
            params![sql_id(message_id), at.to_string()],
        )?,
        DeliveryOutcome::Failed { error, retry_at } => conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2,
                    status = CASE WHEN ?3 IS NULL THEN 'failed' ELSE 'pending' END,
                    next_attempt_ms = COALESCE(?3, next_attempt_ms),
                    claimed_by = NULL, claimed_until_ms = NULL
             WHERE id = ?1 AND status = 'pending'",
            params![
                sql_id(message_id),
                error,
                retry_at.map(|t| t.as_millisecond())
            ],
        )?,
    };
    Ok(())
}

/// Up to `limit` messages of the tenant with ids above `after`, by id.
pub(super) fn page(
    conn: &Connection,
    tenant_id: u64,
    after: u64,
    limit: usize,
) -> Result<Vec<MessageRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "{MESSAGE_COLUMNS} WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
    ))?;
    let rows = stmt.query_map(
        params![sql_id(tenant_id), sql_id(after), sql_count(limit)],
        message_row,
    )?;
    rows.map(|r| r.map_err(StoreError::from).and_then(|r| r))
        .collect()
}

const MESSAGE_COLUMNS: &str = "SELECT id, tenant_id, channel, recipient, subject, body, cause, record_id, created_at, status, attempts, next_attempt_ms, sent_at, last_error FROM outbox";

/// One outbox row (columns as in [`MESSAGE_COLUMNS`]); the inner result says whether the
/// stored text made sense.
fn message_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<MessageRow, StoreError>> {
    let channel: String = r.get(2)?;
    let created_at: String = r.get(8)?;
    let status: String = r.get(9)?;
    let next_ms: i64 = r.get(11)?;
    let sent_at: Option<String> = r.get(12)?;
    let record_id: Option<i64> = r.get(7)?;
    let attempts: i64 = r.get(10)?;
    let base = (
        id(r.get(0)?),
        id(r.get(1)?),
        r.get::<_, String>(3)?,
        r.get::<_, String>(4)?,
        r.get::<_, String>(5)?,
        r.get::<_, String>(6)?,
        r.get::<_, Option<String>>(13)?,
    );
    Ok((|| {
        let (message_id, tenant_id, recipient, subject, body, cause, last_error) = base;
        Ok(MessageRow {
            id: message_id,
            tenant_id,
            message: NewMessage {
                channel: Channel::parse(&channel)
                    .ok_or_else(|| StoreError::Corrupt(format!("outbox channel '{channel}'")))?,
                recipient,
                subject,
                body,
                cause,
                record_id: record_id.map(id),
                created_at: timestamp(&created_at)?,
            },
            status: MessageStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("outbox status '{status}'")))?,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            next_attempt_at: millis(next_ms)?,
            sent_at: sent_at.as_deref().map(timestamp).transpose()?,
            last_error,
        })
    })())
}
