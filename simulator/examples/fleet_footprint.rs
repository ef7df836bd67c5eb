//! Measures a fleet's start-up time and resident memory (the figures in BENCHMARKS.md):
//!
//! ```text
//! cargo run --release -p acs-simulator --example fleet_footprint -- 1000
//! ```
//!
//! Starts N terminals in this process, reports how long that took and the resident set,
//! then logs in to every terminal once over HTTP (proving each one answers) and reports
//! the resident set again. Linux only for the memory figures (`/proc/self/status`).

use std::time::Instant;

use acs_simulator::Fleet;

fn resident_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000);
    let baseline = resident_kib("VmRSS:").unwrap_or(0);

    let started = Instant::now();
    let fleet = Fleet::builder(count).spawn().await?;
    let start_ms = started.elapsed().as_secs_f64() * 1e3;
    let after_start = resident_kib("VmRSS:").unwrap_or(0);

    let client = reqwest::Client::new();
    let logins = Instant::now();
    for device in fleet.devices() {
        let reply: serde_json::Value = client
            .post(format!("{}/login.fcgi", device.base_url()))
            .json(&serde_json::json!({"login": "admin", "password": "admin"}))
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(reply["session"].is_string(), "no session: {reply}");
    }
    let login_ms = logins.elapsed().as_secs_f64() * 1e3;
    let after_logins = resident_kib("VmRSS:").unwrap_or(0);
    let peak = resident_kib("VmHWM:").unwrap_or(0);

    println!(
        "{}",
        serde_json::json!({
            "terminals": count,
            "start_ms": start_ms.round(),
            "rss_before_mib": baseline / 1024,
            "rss_after_start_mib": after_start / 1024,
            "rss_after_one_login_each_mib": after_logins / 1024,
            "rss_peak_mib": peak / 1024,
            "one_login_each_ms": login_ms.round(),
        })
    );
    fleet.shutdown().await;
    Ok(())
}
