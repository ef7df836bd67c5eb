//! The core's read path under writes (BENCHMARKS.md): how long `GET /v1/people` pages and
//! `POST /v1/decisions` take while another client creates people at a steady rate.
//!
//! A core over a SQLite file with N members (default 10,000) who each hold a card, one
//! door. Two phases of D seconds each (default 20), both with the same readers:
//!
//! - `GET /v1/people?limit=100&after=…`, 100 pages per second, walking the people list;
//! - `POST /v1/decisions` with a member's card at the door, 100 per second;
//!
//! first alone (quiet), then beside a writer that enrolls W people per second (default 200,
//! `POST /v1/people`). Requests are sent open-loop (each on its own schedule, whether or
//! not earlier ones have answered) and every latency is counted from when its request was
//! due, so a reader held up behind a write is counted as held up. Prints the p50 / p99 /
//! max of each stream in each phase, then `RESULT:` lines (BENCHMARKS.md gives their shape).
//!
//! `cargo run --release -p acs-core --example read_under_writes -- 10000 20 200`
//! (members, seconds per phase, people written per second).

mod common;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use acs_core::Core;
use acs_core::store::{SqliteStore, Store};
use serde_json::json;
use tokio::task::JoinSet;

/// Reads per second of each reader stream.
const READS_PER_SECOND: u32 = 100;

/// Latencies of one stream, and how many of its requests failed.
#[derive(Default)]
struct Samples {
    latencies: Vec<Duration>,
    failed: usize,
}

impl Samples {
    /// Nearest-rank percentile in milliseconds.
    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return f64::NAN;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
        sorted[rank.min(sorted.len()) - 1].as_secs_f64() * 1e3
    }

    fn line(&self) -> String {
        format!(
            "{} requests ({} failed): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.latencies.len(),
            self.failed,
            self.percentile(50.0),
            self.percentile(99.0),
            self.percentile(100.0)
        )
    }
}

/// Sends `make(n)` `rate` times a second for `length`, open-loop, and collects latencies
/// counted from each request's due time.
async fn stream<F>(rate: u32, length: Duration, make: F) -> Samples
where
    F: Fn(u64) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let samples = Arc::new(Mutex::new(Samples::default()));
    let period = Duration::from_secs(1) / rate;
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval_at(start, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = JoinSet::new();
    let make = Arc::new(make);
    let mut n = 0_u64;
    while start.elapsed() < length {
        let due = tick.tick().await.into_std();
        n += 1;
        let request = make(n);
        let samples = Arc::clone(&samples);
        tasks.spawn(async move {
            let ok = match request.send().await {
                Ok(reply) => {
                    let good = reply.status().is_success();
                    good && reply.bytes().await.is_ok()
                }
                Err(_) => false,
            };
            let mut s = samples.lock().unwrap_or_else(PoisonError::into_inner);
            if ok {
                s.latencies.push(due.elapsed());
            } else {
                s.failed += 1;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Arc::try_unwrap(samples)
        .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner))
        .unwrap_or_default()
}

/// One phase: the two readers, and the writer when `writes_per_second` is not 0.
async fn phase(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    door: u64,
    members: u32,
    seconds: u64,
    writes_per_second: u32,
) -> (Samples, Samples, Option<Samples>) {
    let length = Duration::from_secs(seconds);
    let pages = {
        let (client, base, key) = (client.clone(), base.to_owned(), key.to_owned());
        // Ids go person, card, membership: a cursor anywhere in the first 3 × members ids
        // lands among them.
        let span = 3 * u64::from(members);
        stream(READS_PER_SECOND, length, move |n| {
            let after = (n * 7_919) % span;
            client
                .get(format!("{base}/people?limit=100&after={after}"))
                .bearer_auth(&key)
        })
    };
    let decisions = {
        let (client, base, key) = (client.clone(), base.to_owned(), key.to_owned());
        stream(READS_PER_SECOND, length, move |n| {
            let card = u32::try_from(n % u64::from(members)).unwrap_or(0);
            client
                .post(format!("{base}/decisions"))
                .bearer_auth(&key)
                .json(&json!({"door_id": door,
                    "factors": [{"card": {"facility_code": 1, "card_number": card}}]}))
        })
    };
    if writes_per_second == 0 {
        let (p, d) = tokio::join!(pages, decisions);
        return (p, d, None);
    }
    let writes = {
        let (client, base, key) = (client.clone(), base.to_owned(), key.to_owned());
        stream(writes_per_second, length, move |n| {
            let i = n;
            client
                .post(format!("{base}/people"))
                .bearer_auth(&key)
                .json(&json!({"acs_id": format!("W-{i}"), "name": format!("Written {i}")}))
        })
    };
    let (p, d, w) = tokio::join!(pages, decisions, writes);
    (p, d, Some(w))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let members: u32 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);
    let writes: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(200);
    anyhow::ensure!(
        members > 0 && writes > 0,
        "members and writes must be positive"
    );
    let dir = std::env::temp_dir().join(format!("acs-read-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("acs.db"))?);
    let core = Core::new(store);
    let common::Venue {
        tenant,
        key,
        base,
        client,
        door,
        ..
    } = common::venue(&core).await?;
    common::seed_members(&core, &key, tenant, members).await?;
    println!(
        "{members} members with a card; {READS_PER_SECOND} people pages/s and \
         {READS_PER_SECOND} decisions/s, {seconds} s per phase; machine: {} cores, load \
         average {}",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let started = Instant::now();
    let (quiet_pages, quiet_decisions, _) =
        phase(&client, &base, &key, door, members, seconds, 0).await;
    println!("quiet, people pages: {}", quiet_pages.line());
    println!("quiet, decisions: {}", quiet_decisions.line());
    let (pages, decisions, written) =
        phase(&client, &base, &key, door, members, seconds, writes).await;
    let written = written.unwrap_or_default();
    println!(
        "with {writes} people/s written, people pages: {}",
        pages.line()
    );
    println!(
        "with {writes} people/s written, decisions: {}",
        decisions.line()
    );
    println!("the writes themselves: {}", written.line());
    #[allow(clippy::cast_precision_loss)]
    let write_rate = written.latencies.len() as f64 / seconds as f64;
    println!(
        "written: {write_rate:.0} people/s achieved; both phases in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for (name, quiet, loaded) in [
        ("GET /v1/people page", &quiet_pages, &pages),
        ("POST /v1/decisions", &quiet_decisions, &decisions),
    ] {
        let (q, l) = (quiet.percentile(99.0), loaded.percentile(99.0));
        let verdict = if l <= 2.0 * q { "met" } else { "missed" };
        println!(
            "RESULT: {name} p99 under {writes} people/s written = {l:.2} ms (target <= 2x the \
             quiet p99 {q:.2} ms, ratio {:.2}, {verdict})",
            l / (2.0 * q)
        );
        println!(
            "RESULT: {name} p50 quiet / under {writes} people/s written = {:.2} / {:.2} ms \
             (target recorded, ratio {:.2}, met)",
            quiet.percentile(50.0),
            loaded.percentile(50.0),
            loaded.percentile(50.0) / quiet.percentile(50.0)
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
