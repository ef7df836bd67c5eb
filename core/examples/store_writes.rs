//! Store commit throughput on both backends (BENCHMARKS.md, "Store commits: SQLite and
//! PostgreSQL"): `THREADS` threads each commit `COMMITS` changes straight to the store,
//! each change one person put with an `acs_id` unique key and an audit entry (what a
//! `POST /v1/people` commits), first on a SQLite file in a temporary directory, then on
//! the PostgreSQL database in `ACS_BENCH_POSTGRES_URL` when it is set (an empty database:
//! the example migrates it). Prints commits/s and the p99 latency of a commit, one
//! `RESULT:` line per backend.
//!
//! `cargo run --release -p acs-core --example store_writes -- 4 2000`

use std::time::{Duration, Instant};

use acs_core::store::{
    AuditEntry, Change, Kind, PostgresStore, SqliteStore, Store, UniqueKey, Write,
};
use serde_json::json;

/// Commits `commits` people from each of `threads` threads; (commits/s, p99).
fn run(store: &dyn Store, threads: usize, commits: usize) -> (f64, Duration) {
    let tenant = store.create_tenant("bench", "Bench").expect("tenant").id;
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut took = Vec::with_capacity(commits);
                    for i in 0..commits {
                        let id = store.allocate_ids(1).expect("id")[0];
                        let change = Change {
                            writes: vec![Write::Put {
                                kind: Kind::Person,
                                id,
                                data: json!({"acs_id": format!("B-{t}-{i}"), "name": "Bench"}),
                                unique: vec![UniqueKey {
                                    scope: "acs_id",
                                    value: format!("B-{t}-{i}"),
                                }],
                                blob: None,
                            }],
                            audit: vec![AuditEntry {
                                action: "person.created".to_owned(),
                                kind: Kind::Person,
                                record_id: Some(id),
                                actor: "bench".to_owned(),
                            }],
                            ..Change::default()
                        };
                        let at = Instant::now();
                        store.commit(tenant, change).expect("commit");
                        took.push(at.elapsed());
                    }
                    took
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    });
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    ((threads * commits) as f64 / elapsed.as_secs_f64(), p99)
}

/// Prints a store's figure in the shape `bench/all.sh` collects (recorded, no target).
fn report(store: &str, threads: usize, commits: usize, (rate, p99): (f64, Duration)) {
    println!(
        "RESULT: {store} commits, {threads} threads x {commits} = {rate:.0}/s, p99 {:.2} ms \
         (target recorded, ratio -, met)",
        p99.as_secs_f64() * 1e3
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let commits: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let dir = std::env::temp_dir().join(format!("acs-store-writes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sqlite = SqliteStore::open(&dir.join("acs.db")).expect("SQLite");
    report("sqlite", threads, commits, run(&sqlite, threads, commits));
    drop(sqlite);
    let _ = std::fs::remove_dir_all(&dir);
    match std::env::var("ACS_BENCH_POSTGRES_URL") {
        Ok(url) => {
            let postgres = PostgresStore::connect_with(&url, threads.max(1)).expect("PostgreSQL");
            report(
                "postgres",
                threads,
                commits,
                run(&postgres, threads, commits),
            );
        }
        Err(_) => println!("postgres: skipped (set ACS_BENCH_POSTGRES_URL to an empty database)"),
    }
}
