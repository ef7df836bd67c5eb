//! The server `bench/online.sh` loads with wrk (BENCHMARKS.md, figure 6): a core over a SQLite
//! file with N people (default 10,000) who each hold a card and are members, one Enterprise
//! terminal registered at 127.0.0.1 with device id 7, and the device-facing receiver.
//!
//! Prints `CEILING <url>` (a bare axum handler answering a fixed small JSON, the ceiling the
//! figure is read against) and `RECEIVER <url>`, and serves until killed.
//! `cargo run --release -p acs-core --example online_server -- 10000`

mod common;

use std::sync::Arc;

use acs_core::Core;
use acs_core::domain::{TenantId, TerminalId};
use acs_core::store::{SqliteStore, Store};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let people: u32 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let dir = std::env::temp_dir().join(format!("acs-online-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("acs.db"))?);
    let core = Core::new(store);
    let common::Venue {
        tenant,
        key,
        base,
        client,
        facility,
        door,
        ..
    } = common::venue(&core).await?;
    let terminal = common::post(&client, &format!("{base}/terminals"), &key,
        json!({"facility_id": facility, "model": "idface", "address": "http://127.0.0.1:1",
               "login": "admin", "password": "admin", "operating_mode": "enterprise", "door_ids": [door]}))
        .await?;
    // People, cards and memberships in batches of 1,000 per write (the API's own path is
    // measured elsewhere; here only the online answer is).
    common::seed_members(&core, &key, tenant, people).await?;
    let tenant_id = TenantId::new(tenant);
    core.register_device(7, tenant_id, TerminalId::new(terminal));
    // The ceiling the figure is read against: a bare axum handler answering a fixed small
    // JSON, in the same process, loaded by the same generator in the same run.
    let ceiling = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("CEILING http://{}", ceiling.local_addr()?);
    let bare = axum::Router::new().fallback(|| async { axum::Json(json!({"result": {}})) });
    tokio::spawn(async move { axum::serve(ceiling, bare).await });
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("RECEIVER http://{}", receiver.local_addr()?);
    acs_core::receiver::serve(receiver, core, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
