//! The tables several instances coordinate through ([`crate::store::coordination`]):
//! tenant revisions and the change feed, heartbeats, terminal leases, rate-limit counters.
//! Each function is one or two statements; the comment above each gives the statement a
//! server database (PostgreSQL) runs for it.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension as _, params};

use super::sql::{id, run, sql_count, sql_id};
use crate::store::coordination::millis_of;
use crate::store::{AccessEventRow, Lease, StoreError, TenantRevision};

/// The database's clock: milliseconds since the Unix epoch on this host.
pub(super) fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// In the commit's transaction: checks the tenant's revision against `expected`, then
/// moves it (`moves`) and the tenant's feed position (`news`).
// UPDATE tenant_revisions SET revision = revision + $3::int, seq = nextval('tenant_change_seq')
//   WHERE tenant_id = $1 AND ($2::bigint IS NULL OR revision = $2) RETURNING revision
pub(super) fn advance(
    tx: &Connection,
    tenant: i64,
    expected: Option<u64>,
    moves: bool,
    news: bool,
) -> Result<(), StoreError> {
    let found = revision(tx, tenant)?;
    if let Some(expected) = expected
        && expected != found
    {
        return Err(StoreError::Stale { expected, found });
    }
    if moves || news {
        run(
            tx,
            "INSERT INTO tenant_revisions (tenant_id, revision, seq)
             VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM tenant_revisions))
             ON CONFLICT (tenant_id) DO UPDATE SET revision = revision + excluded.revision,
                 seq = excluded.seq",
            params![tenant, i64::from(moves)],
        )?;
    }
    Ok(())
}

/// The tenant's revision (0 without a row).
// SELECT revision FROM tenant_revisions WHERE tenant_id = $1
pub(super) fn revision(conn: &Connection, tenant: i64) -> Result<u64, StoreError> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT revision FROM tenant_revisions WHERE tenant_id = ?1")?
        .query_row(params![tenant], |r| r.get(0))
        .optional()?;
    Ok(found.map_or(0, id))
}

/// Tenants changed after feed position `after`.
// SELECT tenant_id, revision, seq FROM tenant_revisions WHERE seq > $1 ORDER BY seq
pub(super) fn changed(conn: &Connection, after: u64) -> Result<Vec<TenantRevision>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT tenant_id, revision, seq FROM tenant_revisions WHERE seq > ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![sql_id(after)], |r| {
        Ok(TenantRevision {
            tenant_id: id(r.get(0)?),
            revision: id(r.get(1)?),
            seq: id(r.get(2)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Access events of every tenant after `after`, by id.
// SELECT tenant_id, id, occurred_at, data FROM access_events WHERE id > $1 ORDER BY id LIMIT $2
pub(super) fn events_after(
    conn: &Connection,
    after: u64,
    limit: usize,
) -> Result<Vec<(u64, AccessEventRow)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT tenant_id, id, occurred_at, data FROM access_events WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![sql_id(after), sql_count(limit)], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut events = Vec::new();
    for row in rows {
        let (tenant, event, at, data) = row?;
        events.push((
            id(tenant),
            AccessEventRow {
                id: id(event),
                occurred_at: super::sql::timestamp(&at)?,
                data: super::sql::json(&data)?,
            },
        ));
    }
    Ok(events)
}

/// The highest access event id.
// SELECT COALESCE(MAX(id), 0) FROM access_events
pub(super) fn last_event(conn: &Connection) -> Result<u64, StoreError> {
    let last: i64 = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM access_events", [], |r| {
        r.get(0)
    })?;
    Ok(id(last))
}

/// Records `instance`'s heartbeat; how many instances are alive.
// INSERT INTO instances (id, expires_at) VALUES ($1, now() + $2)
//   ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at;
// DELETE FROM instances WHERE expires_at <= now(); SELECT count(*) FROM instances
pub(super) fn heartbeat(
    conn: &Connection,
    instance: &str,
    ttl: Duration,
) -> Result<usize, StoreError> {
    let now = wall_ms();
    run(
        conn,
        "INSERT INTO instances (id, expires_ms) VALUES (?1, ?2)
         ON CONFLICT (id) DO UPDATE SET expires_ms = excluded.expires_ms",
        params![instance, now.saturating_add(millis_of(ttl))],
    )?;
    run(
        conn,
        "DELETE FROM instances WHERE expires_ms <= ?1",
        params![now],
    )?;
    let alive: i64 = conn.query_row("SELECT COUNT(*) FROM instances", [], |r| r.get(0))?;
    Ok(usize::try_from(alive).unwrap_or(1).max(1))
}

/// Takes a terminal's lease if it is free, expired or already `instance`'s.
// INSERT INTO terminal_leases (terminal_id, holder, expires_at) VALUES ($1, $2, now() + $3)
//   ON CONFLICT (terminal_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
//   WHERE terminal_leases.holder = excluded.holder OR terminal_leases.expires_at <= now()
//   RETURNING terminal_id
pub(super) fn acquire(
    conn: &Connection,
    terminal: u64,
    instance: &str,
    ttl: Duration,
) -> Result<bool, StoreError> {
    let now = wall_ms();
    let changed = run(
        conn,
        "INSERT INTO terminal_leases (terminal_id, holder, expires_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (terminal_id) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms
         WHERE terminal_leases.holder = excluded.holder OR terminal_leases.expires_ms <= ?4",
        params![
            sql_id(terminal),
            instance,
            now.saturating_add(millis_of(ttl)),
            now
        ],
    )?;
    Ok(changed == 1)
}

/// Extends `instance`'s running leases; the terminals it holds.
// UPDATE terminal_leases SET expires_at = now() + $2 WHERE holder = $1 AND expires_at > now()
//   RETURNING terminal_id
pub(super) fn renew(
    conn: &Connection,
    instance: &str,
    ttl: Duration,
) -> Result<Vec<u64>, StoreError> {
    let now = wall_ms();
    let mut stmt = conn.prepare_cached(
        "UPDATE terminal_leases SET expires_ms = ?2 WHERE holder = ?1 AND expires_ms > ?3
         RETURNING terminal_id",
    )?;
    let rows = stmt.query_map(
        params![instance, now.saturating_add(millis_of(ttl)), now],
        |r| r.get::<_, i64>(0),
    )?;
    let mut held: Vec<u64> = rows.map(|r| r.map(id)).collect::<Result<_, _>>()?;
    held.sort_unstable();
    Ok(held)
}

/// Gives up `instance`'s leases of `terminals` (all with `None`).
// DELETE FROM terminal_leases WHERE holder = $1 AND ($2::bigint[] IS NULL OR terminal_id = ANY($2))
pub(super) fn release(
    conn: &Connection,
    instance: &str,
    terminals: Option<&[u64]>,
) -> Result<(), StoreError> {
    match terminals {
        None => {
            run(
                conn,
                "DELETE FROM terminal_leases WHERE holder = ?1",
                params![instance],
            )?;
        }
        Some(terminals) => {
            for terminal in terminals {
                run(
                    conn,
                    "DELETE FROM terminal_leases WHERE holder = ?1 AND terminal_id = ?2",
                    params![instance, sql_id(*terminal)],
                )?;
            }
        }
    }
    Ok(())
}

/// Every lease.
// SELECT terminal_id, holder, expires_at > now() FROM terminal_leases ORDER BY terminal_id
pub(super) fn leases(conn: &Connection) -> Result<Vec<Lease>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT terminal_id, holder, expires_ms > ?1 FROM terminal_leases ORDER BY terminal_id",
    )?;
    let rows = stmt.query_map(params![wall_ms()], |r| {
        Ok(Lease {
            terminal_id: id(r.get(0)?),
            holder: r.get(1)?,
            live: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Counts a hit of `key` in the window at `window_ms`; the count so far.
// INSERT INTO rate_limits (key, window_ms, count) VALUES ($1, $2, 1)
//   ON CONFLICT (key, window_ms) DO UPDATE SET count = rate_limits.count + 1 RETURNING count;
// DELETE FROM rate_limits WHERE window_ms < $3
pub(super) fn count_hit(
    conn: &Connection,
    key: &str,
    window_ms: i64,
    prune_before_ms: i64,
) -> Result<u64, StoreError> {
    let count: i64 = conn
        .prepare_cached(
            "INSERT INTO rate_limits (key, window_ms, count) VALUES (?1, ?2, 1)
             ON CONFLICT (key, window_ms) DO UPDATE SET count = count + 1 RETURNING count",
        )?
        .query_row(params![key, window_ms], |r| r.get(0))?;
    if count == 1 {
        // A new window: the ones that ended are of no more use.
        run(
            conn,
            "DELETE FROM rate_limits WHERE window_ms < ?1",
            params![prune_before_ms],
        )?;
    }
    Ok(id(count))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use crate::store::sqlite::SqliteStore;
    use crate::store::sqlite::test_support::put;
    use crate::store::{Change, Channel, Kind, NewMessage, Store as _, StoreError};

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn a_commit_at_a_stale_revision_writes_nothing() {
        let store = SqliteStore::in_memory().unwrap();
        let t = store.create_tenant("acme", "Acme").unwrap().id;
        assert_eq!(store.tenant_revision(t).unwrap(), 0);
        let ids = store.allocate_ids(2).unwrap();
        let change = |id, expected| Change {
            writes: vec![put(Kind::Site, id, json!({}), &[])],
            expected_revision: Some(expected),
            ..Change::default()
        };
        store.commit(t, change(ids[0], 0)).unwrap();
        assert_eq!(store.tenant_revision(t).unwrap(), 1);
        let err = store.commit(t, change(ids[1], 0)).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Stale {
                    expected: 0,
                    found: 1
                }
            ),
            "{err}"
        );
        assert_eq!(store.records(t).unwrap().len(), 1);
        // Appending events without records neither checks nor moves the revision.
        store.commit(t, Change::default()).unwrap();
        assert_eq!(store.tenant_revision(t).unwrap(), 1);
    }

    #[test]
    fn the_change_feed_names_each_changed_tenant_after_a_cursor() {
        let store = SqliteStore::in_memory().unwrap();
        let a = store.create_tenant("a", "A").unwrap().id;
        let b = store.create_tenant("b", "B").unwrap().id;
        let ids = store.allocate_ids(3).unwrap();
        for (tenant, id) in [(a, ids[0]), (b, ids[1]), (a, ids[2])] {
            store
                .commit(
                    tenant,
                    Change {
                        writes: vec![put(Kind::Site, id, json!({}), &[])],
                        ..Change::default()
                    },
                )
                .unwrap();
        }
        let all = store.changed_tenants(0).unwrap();
        assert_eq!(
            all.iter()
                .map(|r| (r.tenant_id, r.revision))
                .collect::<Vec<_>>(),
            vec![(b, 1), (a, 2)]
        );
        let cursor = all.iter().map(|r| r.seq).max().unwrap();
        assert!(store.changed_tenants(cursor).unwrap().is_empty());
    }

    #[test]
    fn a_lease_is_held_by_one_instance_until_released_or_expired() {
        let store = SqliteStore::in_memory().unwrap();
        assert!(store.acquire_lease(7, "a", TTL).unwrap());
        assert!(!store.acquire_lease(7, "b", TTL).unwrap(), "held by a");
        assert!(
            store.acquire_lease(7, "a", TTL).unwrap(),
            "a holder takes it again"
        );
        assert_eq!(store.renew_leases("a", TTL).unwrap(), vec![7]);
        assert!(store.renew_leases("b", TTL).unwrap().is_empty());
        store.release_leases("a", None).unwrap();
        assert!(store.acquire_lease(7, "b", Duration::ZERO).unwrap());
        // b's lease ran out at once: a takes it over, and b's renewal finds nothing.
        assert!(store.acquire_lease(7, "a", TTL).unwrap());
        assert!(store.renew_leases("b", TTL).unwrap().is_empty());
        let leases = store.leases().unwrap();
        assert_eq!(leases.len(), 1);
        assert_eq!((leases[0].holder.as_str(), leases[0].live), ("a", true));
    }

    #[test]
    fn heartbeats_count_the_live_instances() {
        let store = SqliteStore::in_memory().unwrap();
        assert_eq!(store.heartbeat("a", TTL).unwrap(), 1);
        assert_eq!(store.heartbeat("b", TTL).unwrap(), 2);
        assert_eq!(store.heartbeat("a", TTL).unwrap(), 2, "a heartbeat again");
        // b stops beating: once its heartbeat runs out it is no longer counted.
        store
            .lock()
            .execute("UPDATE instances SET expires_ms = 0 WHERE id = 'b'", [])
            .unwrap();
        assert_eq!(store.heartbeat("a", TTL).unwrap(), 1);
    }

    #[test]
    fn rate_counters_count_per_key_and_window_and_forget_old_windows() {
        let store = SqliteStore::in_memory().unwrap();
        assert_eq!(store.count_hit("k", 0, 0).unwrap(), 1);
        assert_eq!(store.count_hit("k", 0, 0).unwrap(), 2);
        assert_eq!(store.count_hit("other", 0, 0).unwrap(), 1);
        assert_eq!(store.count_hit("k", 60_000, 60_000).unwrap(), 1);
        let rows: i64 = store
            .lock()
            .query_row("SELECT COUNT(*) FROM rate_limits", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1, "the old window's counters are gone");
    }

    #[test]
    fn a_claimed_message_is_handed_to_one_claimer_until_its_claim_ends() {
        let store = SqliteStore::in_memory().unwrap();
        let t = store.create_tenant("acme", "Acme").unwrap().id;
        let now = jiff::Timestamp::UNIX_EPOCH;
        store
            .commit(
                t,
                Change {
                    messages: vec![NewMessage {
                        channel: Channel::Email,
                        recipient: "a@example.com".into(),
                        subject: "s".into(),
                        body: "b".into(),
                        cause: "test".into(),
                        record_id: None,
                        created_at: now,
                    }],
                    ..Change::default()
                },
            )
            .unwrap();
        store.heartbeat("a", TTL).unwrap();
        assert_eq!(store.due_messages(now, 10, "a", TTL).unwrap().len(), 1);
        assert!(store.due_messages(now, 10, "b", TTL).unwrap().is_empty());
        // A claim that ran out makes the message due again (so does its claimer's
        // heartbeat running out).
        store
            .lock()
            .execute("UPDATE outbox SET claimed_until_ms = 0", [])
            .unwrap();
        let taken = store.due_messages(now, 10, "b", Duration::ZERO).unwrap();
        assert_eq!(taken.len(), 1);
    }
}
