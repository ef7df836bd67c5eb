//! Tenant start-up (BENCHMARKS.md): how long a core starting over an existing tenant
//! takes until every terminal is known to be in sync, and how much memory it holds then.
//! `bench/tenant_startup.sh` runs it in two steps against a fleet served by `acs-sim fleet`
//! in a process of its own (so the resident set measured is the core's alone):
//!
//! ```text
//! tenant_startup build DB MANIFEST MEMBERS [FACILITIES]
//!     # a tenant with MEMBERS members holding a card and FACILITIES facilities (1 by
//!     # default) of one card door each; terminal i of the fleet's manifest is registered
//!     # at the door of facility i mod FACILITIES, member i is a member of facility
//!     # i mod FACILITIES only (of the whole tenant with one facility); nothing synced yet
//! tenant_startup start DB MEMBERS TERMINALS [FACILITIES]
//!     # a fresh process: open the store, start the sync engine, wait until every terminal
//!     # is in sync holding the members of its facility (MEMBERS / FACILITIES)
//! ```
//!
//! With several facilities, MEMBERS and TERMINALS must be multiples of FACILITIES, so
//! that every terminal holds as many people.
//!
//! `start` prints the time from opening the store until the whole board is in sync (and
//! when the first and the last terminal got there), the resident set then and its peak,
//! and a `RESULT:` line.

mod common;

use std::alloc::System;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acs_core::Core;
use acs_core::store::{SqliteStore, Store};
use acs_core::sync::{SyncEngine, SyncOptions};
use cap::Cap;
use serde_json::{Value as Json, json};

/// The system allocator, counting the live heap (to tell what the core holds from what
/// the allocator keeps).
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

fn heap_mib() -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let bytes = ALLOCATOR.allocated() as f64;
    bytes / (1024.0 * 1024.0)
}

fn resident_mib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0_u64)
        / 1024
}

async fn build(db: &str, manifest: &str, members: u32, facilities: u32) -> anyhow::Result<()> {
    let manifest: Json = serde_json::from_str(&std::fs::read_to_string(manifest)?)?;
    let urls: Vec<String> = manifest["devices"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("no devices in the manifest"))?
        .iter()
        .filter_map(|d| d["url"].as_str().map(str::to_owned))
        .collect();
    check_sizes(members as usize, urls.len(), facilities)?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(std::path::Path::new(db))?);
    let core = Core::new(store);
    let common::Venue {
        tenant,
        key,
        base,
        client,
        site,
        facility,
        door,
    } = common::venue(&core).await?;
    // The venue's facility and door, then one more of each per further facility.
    let mut places = vec![(facility, door)];
    for f in 1..facilities {
        let facility = common::post(
            &client,
            &format!("{base}/facilities"),
            &key,
            json!({"site_id": site, "name": format!("F{f}")}),
        )
        .await?;
        let door = common::post(
            &client,
            &format!("{base}/doors"),
            &key,
            json!({"facility_id": facility, "name": format!("D{f}"),
                   "supported_auth_types": {"in": ["card"]}}),
        )
        .await?;
        places.push((facility, door));
    }
    for (i, url) in urls.iter().enumerate() {
        let (facility, door) = places[i % places.len()];
        common::post(
            &client,
            &format!("{base}/terminals"),
            &key,
            json!({"facility_id": facility, "model": "idface", "address": url,
                   "login": "admin", "password": "admin", "door_ids": [door]}),
        )
        .await?;
    }
    let limited_to: Vec<Option<u64>> = if facilities > 1 {
        places.iter().map(|(facility, _)| Some(*facility)).collect()
    } else {
        vec![None]
    };
    common::seed_members_of(&core, &key, tenant, members, &limited_to).await?;
    println!(
        "built {db}: {members} members with a card, {} terminals, {facilities} facilities",
        urls.len()
    );
    Ok(())
}

/// Refuses sizes where the terminals would not all hold as many people.
fn check_sizes(members: usize, terminals: usize, facilities: u32) -> anyhow::Result<()> {
    let f = facilities as usize;
    anyhow::ensure!(f >= 1, "FACILITIES must be at least 1");
    anyhow::ensure!(
        f == 1 || (members % f == 0 && terminals % f == 0),
        "MEMBERS ({members}) and TERMINALS ({terminals}) must be multiples of FACILITIES ({f})"
    );
    Ok(())
}

async fn start(db: &str, members: usize, terminals: usize, facilities: u32) -> anyhow::Result<()> {
    check_sizes(members, terminals, facilities)?;
    // What each terminal holds: the members of its facility.
    let held = members / facilities as usize;
    let before = resident_mib("VmRSS:");
    let started = Instant::now();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(std::path::Path::new(db))?);
    let tenant = store
        .tenants()?
        .first()
        .map(|t| acs_core::domain::TenantId::new(t.id))
        .ok_or_else(|| anyhow::anyhow!("no tenant in {db}"))?;
    let core = Core::new(store);
    // The snapshot first, so that the heap it takes is told apart from the engine's.
    core.read(tenant, |_| ())
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?;
    let heap_snapshot = heap_mib();
    let loaded = started.elapsed();
    let engine = SyncEngine::spawn(
        core.clone(),
        SyncOptions {
            retry_initial: Duration::from_millis(100),
            ..SyncOptions::default()
        },
    );
    engine
        .board()
        .wait_until(|b| b.values().any(|s| s.in_sync && s.people == held))
        .await;
    let first = started.elapsed();
    engine
        .board()
        .wait_until(|b| b.len() == terminals && b.values().all(|s| s.in_sync && s.people == held))
        .await;
    let all = started.elapsed();
    let rss = resident_mib("VmRSS:");
    let peak = resident_mib("VmHWM:");
    let heap_in_sync = heap_mib();
    // Whatever the passes allocated for a while and let go of.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let heap_settled = heap_mib();
    println!(
        "{}",
        json!({
            "members": members,
            "terminals": terminals,
            "facilities": facilities,
            "members_per_terminal": held,
            "first_terminal_in_sync_s": (first.as_secs_f64() * 10.0).round() / 10.0,
            "every_terminal_in_sync_s": (all.as_secs_f64() * 10.0).round() / 10.0,
            "rss_before_mib": before,
            "rss_in_sync_mib": rss,
            "rss_peak_mib": peak,
            "snapshot_loaded_s": (loaded.as_secs_f64() * 10.0).round() / 10.0,
            "heap_after_snapshot_mib": heap_snapshot.round(),
            "heap_in_sync_mib": heap_in_sync.round(),
            "heap_2s_later_mib": heap_settled.round(),
        })
    );
    let size = if facilities > 1 {
        format!("{members} members x {terminals} terminals in {facilities} facilities")
    } else {
        format!("{members} members x {terminals} terminals")
    };
    println!(
        "RESULT: tenant start-up, {size}: every terminal in sync = {:.1} s (target recorded, \
         ratio -, met)",
        all.as_secs_f64()
    );
    println!(
        "RESULT: tenant start-up, {size}: core RSS in sync = {rss} MiB, peak {peak} MiB \
         (target recorded, ratio -, met)"
    );
    #[allow(clippy::cast_precision_loss)]
    let per_holding =
        (rss.saturating_sub(before) * 1024 * 1024) as f64 / (held.max(1) * terminals.max(1)) as f64;
    #[allow(clippy::cast_precision_loss)]
    let heap_per_holding =
        (heap_settled - heap_snapshot) * 1024.0 * 1024.0 / (held.max(1) * terminals.max(1)) as f64;
    println!(
        "RESULT: tenant start-up, {size}: live heap outside the snapshot per member held by a \
         terminal = {heap_per_holding:.0} bytes (target recorded, ratio -, met)"
    );
    println!(
        "RESULT: tenant start-up, {size}: core RSS per member held by a terminal = \
         {per_holding:.0} bytes (target recorded, ratio -, met)"
    );
    engine.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["build", db, manifest, members] => build(db, manifest, members.parse()?, 1).await,
        ["build", db, manifest, members, facilities] => {
            build(db, manifest, members.parse()?, facilities.parse()?).await
        }
        ["start", db, members, terminals] => {
            start(db, members.parse()?, terminals.parse()?, 1).await
        }
        ["start", db, members, terminals, facilities] => {
            start(
                db,
                members.parse()?,
                terminals.parse()?,
                facilities.parse()?,
            )
            .await
        }
        _ => anyhow::bail!(
            "usage: tenant_startup build DB MANIFEST MEMBERS [FACILITIES] | tenant_startup \
             start DB MEMBERS TERMINALS [FACILITIES]"
        ),
    }
}
