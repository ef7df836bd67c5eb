//! The tables several instances coordinate through ([`crate::store::coordination`]) on
//! PostgreSQL: tenant revisions and the change feed, heartbeats, terminal leases and
//! rate-limit counters. Instants are the server's clock ([`NOW_MS`]), never the core's.
//!
//! Transactions here commit side by side, so two numbers a cursor follows – access event
//! ids and the change feed's positions – would commit out of order if each transaction
//! drew them whenever it liked: a reader past id 12 would never see an 11 committed a
//! moment later. A commit therefore draws both at its very end, under one transaction
//! advisory lock ([`commit_order`]): whoever draws a number holds the lock until it has
//! committed, so numbers become visible in the order they were drawn.

use std::time::Duration;

use deadpool_postgres::GenericClient;

use super::sql::{id, json, row, rows, run, sql_count, sql_id, timestamp};
use crate::store::coordination::millis_of;
use crate::store::{AccessEventRow, Lease, StoreError, TenantRevision};

/// The server's clock in milliseconds since the Unix epoch, as SQL.
pub(super) const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT";

/// The advisory lock commits draw access event ids and feed positions under (an
/// arbitrary constant: "acs-ordr" in ASCII).
const COMMIT_ORDER_LOCK: i64 = 0x6163_732d_6f72_6472;

/// Takes the commit-order lock for the rest of the transaction `tx`.
pub(super) async fn commit_order(tx: &impl GenericClient) -> Result<(), StoreError> {
    run(
        tx,
        "SELECT pg_advisory_xact_lock($1)",
        &[&COMMIT_ORDER_LOCK],
    )
    .await?;
    Ok(())
}

/// In the commit's transaction: checks the tenant's revision against `expected` and moves
/// it by one when the change `moves` it. The row stays locked until the commit, so
/// writers of one tenant go one after the other.
pub(super) async fn advance(
    tx: &impl GenericClient,
    tenant: i64,
    expected: Option<u64>,
    moves: bool,
) -> Result<(), StoreError> {
    let step = i64::from(moves);
    let moved = row(
        tx,
        "INSERT INTO tenant_revisions (tenant_id, revision) VALUES ($1, $2)
         ON CONFLICT (tenant_id) DO UPDATE SET revision = tenant_revisions.revision + EXCLUDED.revision
         RETURNING revision",
        &[&tenant, &step],
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt("a tenant revision was not returned".to_owned()))?;
    let found = id(moved.try_get::<_, i64>(0)? - step);
    if let Some(expected) = expected
        && expected != found
    {
        return Err(StoreError::Stale { expected, found });
    }
    Ok(())
}

/// In the commit's transaction, under [`commit_order`]: gives the tenant the next change
/// feed position.
pub(super) async fn publish(tx: &impl GenericClient, tenant: i64) -> Result<(), StoreError> {
    run(
        tx,
        "UPDATE tenant_revisions SET seq = nextval('tenant_change_seq') WHERE tenant_id = $1",
        &[&tenant],
    )
    .await?;
    Ok(())
}

/// The tenant's revision (0 without a row).
pub(super) async fn revision(c: &impl GenericClient, tenant: u64) -> Result<u64, StoreError> {
    let found = row(
        c,
        "SELECT revision FROM tenant_revisions WHERE tenant_id = $1",
        &[&sql_id(tenant)],
    )
    .await?;
    Ok(match found {
        Some(r) => id(r.try_get(0)?),
        None => 0,
    })
}

/// Tenants changed after feed position `after`.
pub(super) async fn changed(
    c: &impl GenericClient,
    after: u64,
) -> Result<Vec<TenantRevision>, StoreError> {
    rows(
        c,
        "SELECT tenant_id, revision, seq FROM tenant_revisions WHERE seq > $1 ORDER BY seq",
        &[&sql_id(after)],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(TenantRevision {
            tenant_id: id(r.try_get(0)?),
            revision: id(r.try_get(1)?),
            seq: id(r.try_get(2)?),
        })
    })
    .collect()
}

/// Access events of every tenant after `after`, by id.
pub(super) async fn events_after(
    c: &impl GenericClient,
    after: u64,
    limit: usize,
) -> Result<Vec<(u64, AccessEventRow)>, StoreError> {
    rows(
        c,
        "SELECT tenant_id, id, occurred_at, data FROM access_events WHERE id > $1 ORDER BY id LIMIT $2",
        &[&sql_id(after), &sql_count(limit)],
    )
    .await?
    .iter()
    .map(|r| {
        Ok((
            id(r.try_get(0)?),
            AccessEventRow {
                id: id(r.try_get(1)?),
                occurred_at: timestamp(r.try_get(2)?)?,
                data: json(r.try_get(3)?)?,
            },
        ))
    })
    .collect()
}

/// The highest access event id.
pub(super) async fn last_event(c: &impl GenericClient) -> Result<u64, StoreError> {
    let last = row(c, "SELECT COALESCE(MAX(id), 0) FROM access_events", &[]).await?;
    Ok(match last {
        Some(r) => id(r.try_get(0)?),
        None => 0,
    })
}

/// Records `instance`'s heartbeat; how many instances are alive.
pub(super) async fn heartbeat(
    c: &impl GenericClient,
    instance: &str,
    ttl: Duration,
) -> Result<usize, StoreError> {
    run(
        c,
        &format!(
            "INSERT INTO instances (id, expires_ms) VALUES ($1, {NOW_MS} + $2)
             ON CONFLICT (id) DO UPDATE SET expires_ms = EXCLUDED.expires_ms"
        ),
        &[&instance, &millis_of(ttl)],
    )
    .await?;
    run(
        c,
        &format!("DELETE FROM instances WHERE expires_ms <= {NOW_MS}"),
        &[],
    )
    .await?;
    let alive: i64 = match row(c, "SELECT COUNT(*) FROM instances", &[]).await? {
        Some(r) => r.try_get(0)?,
        None => 1,
    };
    Ok(usize::try_from(alive).unwrap_or(1).max(1))
}

/// Takes a terminal's lease if it is free, expired or already `instance`'s.
pub(super) async fn acquire(
    c: &impl GenericClient,
    terminal: u64,
    instance: &str,
    ttl: Duration,
) -> Result<bool, StoreError> {
    let changed = run(
        c,
        &format!(
            "INSERT INTO terminal_leases (terminal_id, holder, expires_ms) VALUES ($1, $2, {NOW_MS} + $3)
             ON CONFLICT (terminal_id) DO UPDATE SET holder = EXCLUDED.holder, expires_ms = EXCLUDED.expires_ms
             WHERE terminal_leases.holder = EXCLUDED.holder OR terminal_leases.expires_ms <= {NOW_MS}"
        ),
        &[&sql_id(terminal), &instance, &millis_of(ttl)],
    )
    .await?;
    Ok(changed == 1)
}

/// Extends `instance`'s running leases; the terminals it holds.
pub(super) async fn renew(
    c: &impl GenericClient,
    instance: &str,
    ttl: Duration,
) -> Result<Vec<u64>, StoreError> {
    let mut held = rows(
        c,
        &format!(
            "UPDATE terminal_leases SET expires_ms = {NOW_MS} + $2
             WHERE holder = $1 AND expires_ms > {NOW_MS} RETURNING terminal_id"
        ),
        &[&instance, &millis_of(ttl)],
    )
    .await?
    .iter()
    .map(|r| Ok(id(r.try_get(0)?)))
    .collect::<Result<Vec<u64>, StoreError>>()?;
    held.sort_unstable();
    Ok(held)
}

/// Gives up `instance`'s leases of `terminals` (all with `None`).
pub(super) async fn release(
    c: &impl GenericClient,
    instance: &str,
    terminals: Option<&[u64]>,
) -> Result<(), StoreError> {
    match terminals {
        None => {
            run(
                c,
                "DELETE FROM terminal_leases WHERE holder = $1",
                &[&instance],
            )
            .await?;
        }
        Some(terminals) => {
            let ids: Vec<i64> = terminals.iter().copied().map(sql_id).collect();
            run(
                c,
                "DELETE FROM terminal_leases WHERE holder = $1 AND terminal_id = ANY($2)",
                &[&instance, &ids],
            )
            .await?;
        }
    }
    Ok(())
}

/// Every lease.
pub(super) async fn leases(c: &impl GenericClient) -> Result<Vec<Lease>, StoreError> {
    rows(
        c,
        &format!(
            "SELECT terminal_id, holder, expires_ms > {NOW_MS} FROM terminal_leases ORDER BY terminal_id"
        ),
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Lease {
            terminal_id: id(r.try_get(0)?),
            holder: r.try_get(1)?,
            live: r.try_get(2)?,
        })
    })
    .collect()
}

/// Counts a hit of `key` in the window at `window_ms`; the count so far.
pub(super) async fn count_hit(
    c: &impl GenericClient,
    key: &str,
    window_ms: i64,
    prune_before_ms: i64,
) -> Result<u64, StoreError> {
    let count: i64 = row(
        c,
        "INSERT INTO rate_limits (key, window_ms, count) VALUES ($1, $2, 1)
         ON CONFLICT (key, window_ms) DO UPDATE SET count = rate_limits.count + 1 RETURNING count",
        &[&key, &window_ms],
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt("a rate counter was not returned".to_owned()))?
    .try_get(0)?;
    if count == 1 {
        // A new window: the ones that ended are of no more use.
        run(
            c,
            "DELETE FROM rate_limits WHERE window_ms < $1",
            &[&prune_before_ms],
        )
        .await?;
    }
    Ok(id(count))
}
