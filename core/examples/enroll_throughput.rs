//! Enrollment throughput and memory (issue 8, figure 7): enrolls N people, each with a
//! ~20 KB selfie, through the integrator API of an in-process core over a file database,
//! four clients at a time, and prints throughput and resident memory every tenth of the
//! way (memory must stay flat: selfies live in the database, not in memory).
//!
//! `cargo run --release -p acs-core --example enroll_throughput -- 100000`

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use acs_core::Core;
use acs_core::store::{SqliteStore, Store};
use base64::Engine as _;

fn resident_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}

/// A noisy 176×176 JPEG of about 20 KB.
fn selfie() -> String {
    let mut state = 0x1234_5678_u32;
    let img = image::RgbImage::from_fn(176, 176, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state & 0x3F) as u8;
        image::Rgb([
            (x as u8).wrapping_add(n),
            (y as u8).wrapping_add(n),
            n.wrapping_mul(3),
        ])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(Cursor::new(&mut jpeg), 80)
        .encode_image(&img)
        .expect("jpeg");
    base64::engine::general_purpose::STANDARD.encode(jpeg)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("acs-enroll-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("acs.db"))?);
    let core = Core::new(store);
    let (_, key) = core
        .create_tenant("bench", "Bench")
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(acs_core::serve(listener, core, std::future::pending()));
    let selfie = Arc::new(selfie());
    println!("selfie: {} bytes of JPEG", selfie.len() * 3 / 4);
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (next, done, selfie, base, key) = (
            next.clone(),
            done.clone(),
            selfie.clone(),
            base.clone(),
            key.secret.clone(),
        );
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                let reply = client
                    .post(format!("{base}/v1/people"))
                    .bearer_auth(&key)
                    .json(&serde_json::json!({"acs_id": format!("E-{i}"), "selfie": *selfie}))
                    .send()
                    .await?;
                anyhow::ensure!(
                    reply.status().as_u16() == 201,
                    "enrollment {i}: {}",
                    reply.status()
                );
                let d = done.fetch_add(1, Ordering::SeqCst) + 1;
                if d % (n / 10).max(1) == 0 {
                    println!(
                        "{d:>7} enrolled  {:>6.0}/s  RSS {} MiB",
                        d as f64 / started.elapsed().as_secs_f64(),
                        resident_mib()
                    );
                }
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    println!(
        "{n} people with a selfie in {:.1} s: {:.0} enrollments/s, RSS {} MiB",
        started.elapsed().as_secs_f64(),
        n as f64 / started.elapsed().as_secs_f64(),
        resident_mib()
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
