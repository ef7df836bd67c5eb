//! The webhook tables ([`crate::store::webhooks`]): endpoints with their signing secrets
//! (stored as given: the sealing layer above the backends, `store::sealed`, seals them),
//! the fan-out of a change's events into outbox
//! messages for the subscribed endpoints, and the log of delivery attempts.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension as _, params};

use super::SqliteStore;
use super::outbox;
use super::sql::{id, run, sql_count, sql_id, timestamp};
use crate::store::webhooks::fan_out_messages;
use crate::store::{
    AttemptOutcome, DeliveryRow, NewDelivery, StoreError, WebhookEvent, WebhookRow,
};

/// Creates or replaces the endpoint `row` of `tenant`; another tenant's endpoint with the
/// same id is left alone and the change refused.
pub(super) fn put(tx: &Connection, tenant: i64, row: &WebhookRow) -> Result<(), StoreError> {
    let (previous, previous_until) = match &row.previous_secret {
        Some((secret, until)) => (Some(secret.clone()), Some(until.as_millisecond())),
        None => (None, None),
    };
    let changed = tx.execute(
        "INSERT INTO webhooks (id, tenant_id, url, description, event_types, secret, previous_secret,
                               previous_until_ms, enabled, disabled_reason, failed_messages, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (id) DO UPDATE SET
             url = excluded.url, description = excluded.description,
             event_types = excluded.event_types, secret = excluded.secret,
             previous_secret = excluded.previous_secret, previous_until_ms = excluded.previous_until_ms,
             enabled = excluded.enabled, disabled_reason = excluded.disabled_reason,
             failed_messages = excluded.failed_messages, updated_at = excluded.updated_at
         WHERE webhooks.tenant_id = excluded.tenant_id",
        params![
            sql_id(row.id),
            tenant,
            row.url,
            row.description,
            row.event_types.join(" "),
            row.secret,
            previous,
            previous_until,
            row.enabled,
            row.disabled_reason,
            i64::from(row.failed_messages),
            row.created_at.to_string(),
            row.updated_at.to_string(),
        ],
    )?;
    if changed == 0 {
        return Err(StoreError::Corrupt(format!(
            "webhook {} belongs to another tenant",
            row.id
        )));
    }
    Ok(())
}

/// Deletes the endpoint `webhook_id` of `tenant` with its delivery log (its pending
/// messages stay, and fail when their turn comes).
pub(super) fn delete(tx: &Connection, tenant: i64, webhook_id: u64) -> Result<(), StoreError> {
    run(
        tx,
        "DELETE FROM webhooks WHERE id = ?1 AND tenant_id = ?2",
        params![sql_id(webhook_id), tenant],
    )?;
    Ok(())
}

/// Appends one outbox message per enabled endpoint of `tenant` subscribed to each event;
/// `access_event_ids` are the ids the change's access events were given.
pub(super) fn fan_out(
    tx: &Connection,
    tenant: i64,
    events: &[WebhookEvent],
    access_event_ids: &[u64],
) -> Result<(), StoreError> {
    let endpoints: Vec<(u64, String)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, event_types FROM webhooks WHERE tenant_id = ?1 AND enabled = 1 ORDER BY id",
        )?;
        stmt.query_map(params![tenant], |r| Ok((id(r.get(0)?), r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    for message in fan_out_messages(events, access_event_ids, &endpoints) {
        outbox::append(tx, tenant, &message)?;
    }
    Ok(())
}

/// Records one delivery attempt and moves its endpoint's count of failed messages.
pub(super) fn record(
    tx: &Connection,
    tenant: i64,
    delivery: &NewDelivery,
) -> Result<(), StoreError> {
    let endpoint = sql_id(delivery.webhook_id);
    let exists: Option<i64> = tx
        .query_row(
            "SELECT id FROM webhooks WHERE id = ?1 AND tenant_id = ?2",
            params![endpoint, tenant],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        // Deleted while the attempt was in flight: nothing left to log it against.
        return Ok(());
    }
    run(
        tx,
        "INSERT INTO webhook_deliveries (tenant_id, webhook_id, message_id, event_id, event_type, attempt,
                                         attempted_at, status_code, error, duration_ms, outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            tenant,
            endpoint,
            sql_id(delivery.message_id),
            delivery.event_id,
            delivery.event_type,
            i64::from(delivery.attempt),
            delivery.attempted_at.to_string(),
            delivery.status_code,
            delivery.error,
            sql_id(delivery.duration_ms),
            delivery.outcome.as_str(),
        ],
    )?;
    let counter = match delivery.outcome {
        AttemptOutcome::Delivered => "UPDATE webhooks SET failed_messages = 0 WHERE id = ?1",
        AttemptOutcome::GivenUp => {
            "UPDATE webhooks SET failed_messages = failed_messages + 1 WHERE id = ?1"
        }
        AttemptOutcome::Failed => return Ok(()),
    };
    run(tx, counter, params![endpoint])?;
    Ok(())
}

const WEBHOOK_COLUMNS: &str =
    "SELECT id, url, description, event_types, secret, previous_secret, previous_until_ms,
        enabled, disabled_reason, failed_messages, created_at, updated_at FROM webhooks";

/// The endpoints of `tenant`, by id, secrets opened.
pub(super) fn list(store: &SqliteStore, tenant_id: u64) -> Result<Vec<WebhookRow>, StoreError> {
    type Raw = (
        i64,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<i64>,
        bool,
        Option<String>,
        i64,
        String,
        String,
    );
    let raw: Vec<Raw> = {
        let conn = store.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "{WEBHOOK_COLUMNS} WHERE tenant_id = ?1 ORDER BY id"
        ))?;
        stmt.query_map(params![sql_id(tenant_id)], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
                r.get(11)?,
            ))
        })?
        .collect::<Result<_, _>>()?
    };
    raw.into_iter()
        .map(
            |(
                webhook_id,
                url,
                description,
                types,
                secret,
                previous,
                until,
                enabled,
                reason,
                failed,
                created,
                updated,
            )| {
                let previous_secret = match (previous, until) {
                    (Some(previous), Some(until)) => Some((
                        previous,
                        Timestamp::from_millisecond(until).map_err(|e| {
                            StoreError::Corrupt(format!("webhook instant {until}: {e}"))
                        })?,
                    )),
                    _ => None,
                };
                Ok(WebhookRow {
                    id: id(webhook_id),
                    url,
                    description,
                    event_types: types
                        .split(' ')
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    secret,
                    previous_secret,
                    enabled,
                    disabled_reason: reason,
                    failed_messages: u32::try_from(failed).unwrap_or(u32::MAX),
                    created_at: timestamp(&created)?,
                    updated_at: timestamp(&updated)?,
                })
            },
        )
        .collect()
}

/// Up to `limit` delivery attempts to the endpoint with ids above `after`, by id.
pub(super) fn deliveries(
    conn: &Connection,
    tenant_id: u64,
    webhook_id: u64,
    after: u64,
    limit: usize,
) -> Result<Vec<DeliveryRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, message_id, event_id, event_type, attempt, attempted_at, status_code, error, duration_ms, outcome
         FROM webhook_deliveries WHERE tenant_id = ?1 AND webhook_id = ?2 AND id > ?3 ORDER BY id LIMIT ?4",
    )?;
    let rows = stmt.query_map(
        params![
            sql_id(tenant_id),
            sql_id(webhook_id),
            sql_id(after),
            sql_count(limit)
        ],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<u16>>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, i64>(8)?,
                r.get::<_, String>(9)?,
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (row_id, message, event_id, event_type, attempt, at, status, error, ms, outcome) = row?;
        out.push(DeliveryRow {
            id: id(row_id),
            delivery: NewDelivery {
                webhook_id,
                message_id: id(message),
                event_id,
                event_type,
                attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
                attempted_at: timestamp(&at)?,
                status_code: status,
                error,
                duration_ms: id(ms),
                outcome: AttemptOutcome::parse(&outcome).ok_or_else(|| {
                    StoreError::Corrupt(format!("webhook delivery outcome '{outcome}'"))
                })?,
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;
    use serde_json::json;

    use super::*;
    use crate::store::seal::SecretKey;
    use crate::store::{Change, Store as _, WebhookWrite};

    fn endpoint(id: u64, types: &[&str], enabled: bool) -> WebhookRow {
        let at: Timestamp = "2026-05-04T08:00:00Z".parse().unwrap();
        WebhookRow {
            id,
            url: format!("https://hooks.example.com/{id}"),
            description: String::new(),
            event_types: types.iter().map(|t| (*t).to_owned()).collect(),
            secret: format!("whsec_secret-{id}"),
            previous_secret: Some((format!("whsec_old-{id}"), at)),
            enabled,
            disabled_reason: None,
            failed_messages: 0,
            created_at: at,
            updated_at: at,
        }
    }

    fn event(event_type: &str) -> WebhookEvent {
        let at: Timestamp = "2026-05-04T08:00:00Z".parse().unwrap();
        WebhookEvent {
            id: format!("evt_{event_type}"),
            event_type: event_type.to_owned(),
            created_at: at,
            data: json!({"n": 1}),
            due_at: at,
            access_event: None,
        }
    }

    #[test]
    fn secrets_are_sealed_at_rest_and_events_reach_subscribed_enabled_endpoints_only() {
        let dir = std::env::temp_dir().join(format!("acs-hooks-seal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("acs.db");
        let store = crate::store::SealedStore::new(
            SqliteStore::open(&path).unwrap(),
            SecretKey::generate(),
        );
        let tenant = store.create_tenant("acme", "Acme").unwrap().id;
        let other = store.create_tenant("other", "Other").unwrap().id;
        let ids = store.allocate_ids(3).unwrap();
        let rows = [
            endpoint(ids[0], &["access.denied", "access.granted"], true),
            endpoint(ids[1], &["access.granted"], true),
            endpoint(ids[2], &["access.denied"], false),
        ];
        store
            .commit(
                tenant,
                Change {
                    webhooks: rows.iter().cloned().map(WebhookWrite::Put).collect(),
                    ..Change::default()
                },
            )
            .unwrap();
        assert_eq!(store.webhooks(tenant).unwrap(), rows);
        assert!(store.webhooks(other).unwrap().is_empty());
        let raw: Vec<(String, String)> = {
            let conn = Connection::open(&path).unwrap();
            let mut stmt = conn
                .prepare("SELECT secret, previous_secret FROM webhooks")
                .unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert!(
            raw.iter().all(|(s, p)| s.contains("sealed")
                && !s.contains("whsec_")
                && !p.contains("whsec_")),
            "{raw:?}"
        );

        // Another tenant can neither take over nor delete an endpoint.
        let stolen = store.commit(
            other,
            Change {
                webhooks: vec![WebhookWrite::Put(endpoint(
                    ids[0],
                    &["access.denied"],
                    true,
                ))],
                ..Change::default()
            },
        );
        assert!(stolen.is_err());
        store
            .commit(
                other,
                Change {
                    webhooks: vec![WebhookWrite::Delete(ids[0])],
                    ..Change::default()
                },
            )
            .unwrap();
        assert_eq!(store.webhooks(tenant).unwrap().len(), 3);

        store
            .commit(
                tenant,
                Change {
                    webhook_events: vec![event("access.denied"), event("access.granted")],
                    ..Change::default()
                },
            )
            .unwrap();
        let sent: Vec<(String, String)> = store
            .messages(tenant, 0, 10)
            .unwrap()
            .into_iter()
            .map(|m| (m.message.recipient, m.message.subject))
            .collect();
        assert_eq!(
            sent,
            [
                (ids[0].to_string(), "access.denied".to_owned()),
                (ids[0].to_string(), "access.granted".to_owned()),
                (ids[1].to_string(), "access.granted".to_owned()),
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
