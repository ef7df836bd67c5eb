//! What several instances coordinate through, on both backends: revisions checked at the
//! commit, the change feed, leases, heartbeats, rate counters, outbox claims, and access
//! events read across tenants in the order they committed.

use std::time::Duration;

use acs_core::store::{Change, Channel, Kind, NewAccessEvent, NewMessage};
use serde_json::json;

use super::{on_both, put, tenant_with_ids};

const TTL: Duration = Duration::from_secs(60);

fn site_at(id: u64, expected: Option<u64>) -> Change {
    Change {
        writes: vec![put(Kind::Site, id, json!({}), &[])],
        expected_revision: expected,
        ..Change::default()
    }
}

fn event(n: u64) -> NewAccessEvent {
    NewAccessEvent {
        occurred_at: "2026-05-04T08:00:00Z".parse().unwrap(),
        data: json!({ "n": n }),
    }
}

on_both!(a_commit_at_a_stale_revision_writes_nothing, |db| {
    let (t, ids) = tenant_with_ids(&*db, "acme", 2);
    assert_eq!(db.tenant_revision(t).unwrap(), 0);
    db.commit(t, site_at(ids[0], Some(0))).unwrap();
    assert_eq!(db.tenant_revision(t).unwrap(), 1);
    let err = db.commit(t, site_at(ids[1], Some(0))).unwrap_err();
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
    assert_eq!(
        db.records(t).unwrap().len(),
        1,
        "nothing of the stale change"
    );
    // Appending events without records neither checks nor moves the revision.
    db.commit(
        t,
        Change {
            access_events: vec![event(1)],
            ..Change::default()
        },
    )
    .unwrap();
    assert_eq!(db.tenant_revision(t).unwrap(), 1);
});

on_both!(
    the_change_feed_names_each_changed_tenant_after_a_cursor,
    |db| {
        let (a, ids) = tenant_with_ids(&*db, "a", 3);
        let b = db.create_tenant("b", "B").unwrap().id;
        for (tenant, id) in [(a, ids[0]), (b, ids[1]), (a, ids[2])] {
            db.commit(tenant, site_at(id, None)).unwrap();
        }
        let all = db.changed_tenants(0).unwrap();
        assert_eq!(
            all.iter()
                .map(|r| (r.tenant_id, r.revision))
                .collect::<Vec<_>>(),
            vec![(b, 1), (a, 2)]
        );
        let cursor = all.iter().map(|r| r.seq).max().unwrap();
        assert!(db.changed_tenants(cursor).unwrap().is_empty());
    }
);

on_both!(
    a_lease_is_held_by_one_instance_until_released_or_expired,
    |db| {
        assert!(db.acquire_lease(7, "a", TTL).unwrap());
        assert!(!db.acquire_lease(7, "b", TTL).unwrap(), "held by a");
        assert!(
            db.acquire_lease(7, "a", TTL).unwrap(),
            "a holder takes it again"
        );
        assert!(db.acquire_lease(8, "a", TTL).unwrap());
        assert_eq!(db.renew_leases("a", TTL).unwrap(), vec![7, 8]);
        assert!(db.renew_leases("b", TTL).unwrap().is_empty());
        db.release_leases("a", Some(&[8])).unwrap();
        assert_eq!(db.renew_leases("a", TTL).unwrap(), vec![7]);
        db.release_leases("a", None).unwrap();
        assert!(db.acquire_lease(7, "b", Duration::ZERO).unwrap());
        // b's lease ran out at once: a takes it over, and b's renewal finds nothing.
        assert!(db.acquire_lease(7, "a", TTL).unwrap());
        assert!(db.renew_leases("b", TTL).unwrap().is_empty());
        let leases = db.leases().unwrap();
        assert_eq!(leases.len(), 1);
        assert_eq!((leases[0].holder.as_str(), leases[0].live), ("a", true));
    }
);

on_both!(heartbeats_count_the_live_instances, |db| {
    assert_eq!(db.heartbeat("a", TTL).unwrap(), 1);
    assert_eq!(db.heartbeat("b", TTL).unwrap(), 2);
    assert_eq!(db.heartbeat("a", TTL).unwrap(), 2, "a heartbeat again");
    // b stops beating: once its heartbeat runs out it is no longer counted.
    db.raw_texts("UPDATE instances SET expires_ms = 0 WHERE id = 'b'");
    assert_eq!(db.heartbeat("a", TTL).unwrap(), 1);
});

on_both!(
    rate_counters_count_per_key_and_window_and_forget_old_windows,
    |db| {
        assert_eq!(db.count_hit("k", 0, 0).unwrap(), 1);
        assert_eq!(db.count_hit("k", 0, 0).unwrap(), 2);
        assert_eq!(db.count_hit("other", 0, 0).unwrap(), 1);
        assert_eq!(db.count_hit("k", 60_000, 60_000).unwrap(), 1);
        assert_eq!(
            db.raw_texts("SELECT COUNT(*) FROM rate_limits"),
            ["1"],
            "the old window's counters are gone"
        );
    }
);

on_both!(
    a_claimed_message_is_handed_to_one_claimer_until_its_claim_ends,
    |db| {
        let t = db.create_tenant("acme", "Acme").unwrap().id;
        let now = jiff::Timestamp::UNIX_EPOCH;
        let message = |n: usize| NewMessage {
            channel: Channel::Email,
            recipient: format!("{n}@example.com"),
            subject: "s".into(),
            body: "b".into(),
            cause: "test".into(),
            record_id: None,
            created_at: now,
        };
        db.commit(
            t,
            Change {
                messages: (0..20).map(message).collect(),
                ..Change::default()
            },
        )
        .unwrap();
        db.heartbeat("a", TTL).unwrap();
        db.heartbeat("b", TTL).unwrap();
        // Two claimers at once take different messages, every message once.
        let (mut got_a, mut got_b) = std::thread::scope(|s| {
            let a = s.spawn(|| db.due_messages(now, 15, "a", TTL).unwrap());
            let b = s.spawn(|| db.due_messages(now, 15, "b", TTL).unwrap());
            (a.join().unwrap(), b.join().unwrap())
        });
        let mut ids: Vec<u64> = got_a.iter().chain(&got_b).map(|m| m.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), got_a.len() + got_b.len(), "no message twice");
        // What neither took is left for another claimer; a claimer gets its own claims again.
        let rest = db.due_messages(now, 20, "c", TTL).unwrap();
        assert_eq!(
            got_a.len() + got_b.len() + rest.len(),
            20,
            "every message claimed once"
        );
        assert!(db.due_messages(now, 20, "d", TTL).unwrap().is_empty());
        got_a.sort_by_key(|m| m.id);
        let mut again = db.due_messages(now, 20, "a", TTL).unwrap();
        again.sort_by_key(|m| m.id);
        assert_eq!(again, got_a);
        got_b.clear();
        // A claim whose claimer's heartbeat ran out is void.
        db.raw_texts("UPDATE instances SET expires_ms = 0 WHERE id = 'a'");
        let taken = db.due_messages(now, 20, "d", TTL).unwrap();
        assert_eq!(taken.len(), got_a.len());
    }
);

on_both!(access_events_read_across_tenants_in_commit_order, |db| {
    let a = db.create_tenant("a", "A").unwrap().id;
    let b = db.create_tenant("b", "B").unwrap().id;
    assert_eq!(db.last_access_event_id().unwrap(), 0);
    // Writers on both tenants at once; a reader following the stream by id meanwhile
    // must end up with every event exactly once (no id becomes visible after a
    // higher one was read).
    let done = std::sync::atomic::AtomicBool::new(false);
    let seen = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let (mut cursor, mut seen) = (0, Vec::new());
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let rows = db.access_events_after(cursor, 7).unwrap();
                for (_, row) in &rows {
                    assert!(row.id > cursor);
                    cursor = row.id;
                    seen.push(row.data["n"].as_u64().unwrap());
                }
                if finished && rows.is_empty() {
                    return seen;
                }
            }
        });
        let writers: Vec<_> = [(a, 0u64), (b, 1_000), (a, 2_000), (b, 3_000)]
            .into_iter()
            .map(|(tenant, base)| {
                let db = &db;
                s.spawn(move || {
                    for n in 0..50 {
                        db.commit(
                            tenant,
                            Change {
                                access_events: vec![event(base + n)],
                                ..Change::default()
                            },
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        reader.join().unwrap()
    });
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 200, "every event once: {} read", seen.len());
    assert_eq!(db.access_events_after(0, 1_000).unwrap().len(), 200);
    assert!(db.last_access_event_id().unwrap() >= 200);
});
