//! The servers `bench/http.sh` loads with wrk (BENCHMARKS.md, figure 1 and 2):
//!
//! - a simulated iDFace with 10,000 users (ids 1..=10,000) and, when asked, 100,000 cards,
//!   on the first port printed;
//! - the ceiling: a bare axum handler answering a fixed small JSON, on the second port.
//!
//! Prints `SIM <url> <session>` and `CEILING <url>` and serves until killed.
//! `cargo run --release -p acs-simulator --example bench_server -- [cards]`

use acs_simulator::Simulator;
use serde_json::{Map, Value as Json, json};

/// The allocator of the `acs-sim` binary, so the figure is the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cards: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim = Simulator::builder()
        .journal_capacity(16)
        .spawn(listener)
        .await?;
    let row = |v: Json| -> Map<String, Json> { v.as_object().cloned().unwrap_or_default() };
    let users: Vec<Map<String, Json>> = (1..=10_000)
        .map(|i| {
            row(json!({"id": i, "name": format!("User {i}"), "registration": format!("R{i}")}))
        })
        .collect();
    sim.device().seed_rows("users", &users)?;
    if cards > 0 {
        let rows: Vec<Map<String, Json>> = (0..cards)
            .map(|i| row(json!({"value": 1_000_000 + i, "user_id": 1 + i % 10_000})))
            .collect();
        sim.device().seed_rows("cards", &rows)?;
    }
    let login = sim.device().login("admin", "admin")?;
    let ceiling = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ceiling_url = format!("http://{}", ceiling.local_addr()?);
    let app =
        axum::Router::new().fallback(|| async { axum::Json(json!({"session_is_valid": true})) });
    tokio::spawn(async move { axum::serve(ceiling, app).await });
    println!("SIM {} {}", sim.base_url(), login.token);
    println!("CEILING {ceiling_url}");
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
