//! Measures a fleet's start-up time, resident memory and login latency (the figures in
//! BENCHMARKS.md):
//!
//! ```text
//! cargo run --release -p acs-simulator --example fleet_footprint -- 10000 0.01 [PER_ADDRESS]
//! ```
//!
//! PER_ADDRESS: terminals per loopback address (`FleetBuilder::per_address`; 0 = all on
//! 127.0.0.1; default the fleet's own, a thousand on Linux).
//!
//! Starts N terminals in this process (the `Fleet` that `acs-sim fleet` runs, with the
//! binary's allocator and its memory settings), reports how long that took and the
//! resident set, per terminal too. Then keeps a fraction of them
//! busy (default 1 %: each answers a `load_objects` of a 100-row page of users, one after
//! another, over a connection of its own, as fast as it can) and meanwhile logs in to
//! every other terminal once over HTTP, 16 at a time, each over a new connection (as a
//! core reaching a terminal for the first time would), timing each login; reports the
//! latency percentiles and the resident set again. Linux only for the memory figures
//! (`/proc/self/status`).
//!
//! Every connection of a login is closed by the terminal (`Connection: close`), so the
//! process needs a file descriptor per terminal (its listener) plus a few hundred.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use acs_simulator::Fleet;
use futures_util::StreamExt as _;
use serde_json::{Value as Json, json};

/// The allocator of the `acs-sim` binary, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Logins in flight at once.
const CONCURRENT_LOGINS: usize = 16;

fn resident_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The nearest-rank percentile of sorted durations, in milliseconds.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1].as_secs_f64() * 1e3
}

async fn login(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let reply: Json = client
        .post(format!("{base}/login.fcgi"))
        .header(reqwest::header::CONNECTION, "close")
        .json(&json!({"login": "admin", "password": "admin"}))
        .send()
        .await?
        .json()
        .await?;
    reply["session"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no session: {reply}"))
}

/// Keeps one terminal busy until `stop`: a 100-row page of users, again and again.
async fn keep_busy(base: String, stop: Arc<AtomicBool>, served: Arc<AtomicU64>) {
    let client = reqwest::Client::new();
    let Ok(session) = login(&client, &base).await else {
        return;
    };
    let url = format!("{base}/load_objects.fcgi?session={session}");
    let body = json!({"object": "users", "limit": 100});
    while !stop.load(Ordering::Relaxed) {
        match client.post(&url).json(&body).send().await {
            Ok(reply) if reply.status().is_success() => {
                let _ = reply.bytes().await;
                served.fetch_add(1, Ordering::Relaxed);
            }
            _ => return,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // As the binary does.
    acs_simulator::huge_pages::avoid_transparent_huge_pages()?;
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1_000);
    let busy_fraction: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0.01);
    anyhow::ensure!(
        (0.0..1.0).contains(&busy_fraction),
        "the busy fraction is at least 0 and below 1"
    );
    let per_address: Option<usize> = args.next().map(|s| s.parse()).transpose()?;
    let baseline = resident_kib("VmRSS:").unwrap_or(0);

    let mut builder = Fleet::builder(count);
    if let Some(n) = per_address {
        builder = builder.per_address(n);
    }
    let addresses = builder.addresses()?.len();
    let started = Instant::now();
    let fleet = builder.spawn().await?;
    let start_ms = started.elapsed().as_secs_f64() * 1e3;
    let after_start = resident_kib("VmRSS:").unwrap_or(0);
    let urls: Vec<String> = fleet
        .devices()
        .iter()
        .map(acs_simulator::RunningSimulator::base_url)
        .collect();

    // Every `step`-th terminal is busy.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let busy_count = ((count as f64) * busy_fraction).round() as usize;
    let step = count.checked_div(busy_count).unwrap_or(usize::MAX);
    let is_busy = |i: usize| step != usize::MAX && i % step == 0 && i / step < busy_count;
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let mut busy = Vec::new();
    for (_, url) in urls.iter().enumerate().filter(|(i, _)| is_busy(*i)) {
        busy.push(tokio::spawn(keep_busy(
            url.clone(),
            Arc::clone(&stop),
            Arc::clone(&served),
        )));
    }

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let logins = Instant::now();
    let served_before = served.load(Ordering::Relaxed);
    let mut latencies: Vec<Duration> =
        futures_util::stream::iter(urls.iter().enumerate().filter(|(i, _)| !is_busy(*i)).map(
            |(_, url)| {
                let client = &client;
                async move {
                    let t = Instant::now();
                    login(client, url).await.map(|_| t.elapsed())
                }
            },
        ))
        .buffer_unordered(CONCURRENT_LOGINS)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let login_s = logins.elapsed().as_secs_f64();
    let busy_served = served.load(Ordering::Relaxed) - served_before;
    stop.store(true, Ordering::Relaxed);
    for task in busy {
        let _ = task.await;
    }
    latencies.sort_unstable();
    let after_logins = resident_kib("VmRSS:").unwrap_or(0);
    let peak = resident_kib("VmHWM:").unwrap_or(0);

    #[allow(clippy::cast_precision_loss)]
    let per_terminal_kib = after_start.saturating_sub(baseline) as f64 / count as f64;
    #[allow(clippy::cast_precision_loss)]
    let busy_rate = busy_served as f64 / login_s;
    println!(
        "{}",
        json!({
            "terminals": count,
            "addresses": addresses,
            "start_ms": start_ms.round(),
            "rss_before_mib": baseline / 1024,
            "rss_after_start_mib": after_start / 1024,
            "rss_per_terminal_kib": per_terminal_kib.round(),
            "busy_terminals": busy_count,
            "busy_pages_per_s": busy_rate.round(),
            "logins": latencies.len(),
            "login_concurrency": CONCURRENT_LOGINS,
            "logins_s": (login_s * 100.0).round() / 100.0,
            "login_p50_ms": (percentile(&latencies, 50.0) * 100.0).round() / 100.0,
            "login_p99_ms": (percentile(&latencies, 99.0) * 100.0).round() / 100.0,
            "login_max_ms": (percentile(&latencies, 100.0) * 100.0).round() / 100.0,
            "rss_after_logins_mib": after_logins / 1024,
            "rss_peak_mib": peak / 1024,
        })
    );
    // The targets: the 1,000-terminal fleet's (start within 5 s, 300 MB in all, so
    // 300 KiB a terminal), whatever the size of the fleet.
    let verdict = |ok: bool| if ok { "meets" } else { "MISSES" };
    let addresses = match addresses {
        1 => "1 address".to_owned(),
        n => format!("{n} addresses"),
    };
    println!(
        "RESULT: fleet of {count} ({addresses}): started in {start_ms:.0} ms; target <= 5,000 ms: {}",
        verdict(start_ms <= 5_000.0)
    );
    println!(
        "RESULT: fleet of {count}: {per_terminal_kib:.0} KiB resident per terminal after start; \
         target <= 300 KiB: {}",
        verdict(per_terminal_kib <= 300.0)
    );
    println!(
        "RESULT: fleet of {count}: login p99 {:.2} ms over new connections with {busy_count} \
         terminals busy; target: recorded",
        percentile(&latencies, 99.0)
    );
    fleet.shutdown().await;
    Ok(())
}
