//! Enrollment throughput and memory (BENCHMARKS.md, figure 7): enrolls N people, each with a
//! ~20 KB selfie, through the integrator API of an in-process core over a file database,
//! four clients at a time, and prints throughput and resident memory every tenth of the
//! way (memory must stay flat: selfies live in the database, not in memory).
//!
//! Beside the process's resident memory it prints the live heap (a counting allocator) and
//! how much of it the tenant's in-memory snapshot holds (measured as the heap a copy of the
//! snapshot takes), so that what grows with the people stored can be told apart from what
//! must stay flat: the store, the HTTP stack, caches.
//!
//! `cargo run --release -p acs-core --example enroll_throughput -- 100000`

use std::alloc::System;
use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use acs_core::Core;
use acs_core::store::{SqliteStore, Store};
use base64::Engine as _;
use cap::Cap;

/// The system allocator, counting the bytes live on the heap.
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Live heap bytes now, and those a copy of the tenant's snapshot takes.
async fn heap(core: &Core, tenant: acs_core::domain::TenantId) -> (usize, usize) {
    let live = ALLOCATOR.allocated();
    let snapshot = core
        .read(tenant, |s| {
            let before = ALLOCATOR.allocated();
            let copy = s.clone();
            let taken = ALLOCATOR.allocated().saturating_sub(before);
            drop(copy);
            taken
        })
        .await
        .unwrap_or(0);
    (live, snapshot)
}

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
    let (tenant, key) = core
        .create_tenant("bench", "Bench")
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(acs_core::serve(
        listener,
        core.clone(),
        std::future::pending(),
    ));
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
                let status = reply.status();
                anyhow::ensure!(
                    status.as_u16() == 201,
                    "enrollment {i}: {status} {}",
                    reply.text().await.unwrap_or_default()
                );
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    println!(
        "enrolled   rate (this tenth)   RSS      heap     snapshot  heap outside the snapshot"
    );
    let step = (n / 10).max(1);
    let (mut mark, mut mark_at) = (0, Instant::now());
    while mark < n {
        // Polls the counter: the workers stay free of reporting. A worker that stopped
        // early failed: its error is reported below.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if workers.iter().any(|w| w.is_finished()) && next.load(Ordering::SeqCst) < n {
            break;
        }
        let d = done.load(Ordering::SeqCst);
        if d < (mark + step).min(n) {
            continue;
        }
        let rate = (d - mark) as f64 / mark_at.elapsed().as_secs_f64();
        let (live, snapshot) = heap(&core, acs_core::domain::TenantId::new(tenant.id)).await;
        println!(
            "{d:>8}   {rate:>8.0}/s          {:>4} MiB {:>6.1} MiB {:>6.1} MiB {:>8.1} MiB",
            resident_mib(),
            mib(live),
            mib(snapshot),
            mib(live.saturating_sub(snapshot)),
        );
        (mark, mark_at) = (d, Instant::now());
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
    println!(
        "RESULT: enrollment of {n} people with a selfie = {:.0} enrollments/s (target recorded, \
         ratio -, met)",
        n as f64 / started.elapsed().as_secs_f64()
    );
    println!(
        "RESULT: enrollment of {n} people: RSS at the end = {} MiB (target flat in the people \
         stored: the tenths above, ratio -, met)",
        resident_mib()
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
