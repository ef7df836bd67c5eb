//! Sync convergence (BENCHMARKS.md, figure 5): N people (default 10,000), each with a card and a
//! face, all members, pushed by the sync engine to T simulated terminals (default 20) in
//! this process; prints the time until every terminal holds everyone, then the time one
//! attendee added afterwards takes to reach every terminal of its facility.
//!
//! `cargo run --release -p acs-core --example sync_convergence -- 10000 20 100`
//! (people, terminals, attendee trials).

use std::sync::Arc;
use std::time::{Duration, Instant};

use acs_core::card::WiegandCard;
use acs_core::domain::{
    AcsId, Credential, CredentialId, CredentialValue, Membership, MembershipId, Person, PersonId,
    TenantId,
};
use acs_core::store::{Blob, SqliteStore, Store};
use acs_core::sync::{SyncEngine, SyncOptions};
use acs_core::{Clock, Core};
use acs_simulator::{Fleet, Simulator, TimeMode};
use serde_json::{Value as Json, json};

const FACE: &[u8] = include_bytes!("../../fixtures/images/face-a.jpg");

/// A photo of its own for person `i`: the fixture with a JPEG comment segment naming them
/// after the start-of-image marker, so every face has other bytes (as real selfies do)
/// and a terminal must decode each one.
fn face_of(i: u32) -> Vec<u8> {
    let text = format!("person {i}");
    let length = u16::try_from(text.len() + 2).expect("short comment");
    let mut jpeg = FACE[..2].to_vec();
    jpeg.extend([0xFF, 0xFE]);
    jpeg.extend(length.to_be_bytes());
    jpeg.extend(text.as_bytes());
    jpeg.extend(&FACE[2..]);
    jpeg
}

async fn post(client: &reqwest::Client, url: String, key: &str, body: Json) -> anyhow::Result<u64> {
    let reply: Json = client
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    reply["id"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("refused: {reply}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let people: u32 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let terminals: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);
    let attendees: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(100);
    let dir = std::env::temp_dir().join(format!("acs-sync-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("acs.db"))?);
    let start: jiff::Timestamp = "2026-05-04T08:00:00Z".parse()?;
    let core = Core::with_clock(store, Clock::manual(start));
    let (tenant, key) = core
        .create_tenant("bench", "Bench")
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/v1", listener.local_addr()?);
    tokio::spawn(acs_core::serve(
        listener,
        core.clone(),
        std::future::pending(),
    ));
    let client = reqwest::Client::new();
    let key = key.secret;
    let fleet = Fleet::builder(terminals)
        .template(
            Simulator::builder()
                .time_mode(TimeMode::Scaled(0.0))
                .journal_capacity(16),
        )
        .spawn()
        .await?;
    let site = post(
        &client,
        format!("{base}/sites"),
        &key,
        json!({"name": "S", "timezone": "UTC"}),
    )
    .await?;
    let facility = post(
        &client,
        format!("{base}/facilities"),
        &key,
        json!({"site_id": site, "name": "F"}),
    )
    .await?;
    let door = post(&client, format!("{base}/doors"), &key,
        json!({"facility_id": facility, "name": "D", "supported_auth_types": {"in": ["card", "face"]}})).await?;
    for device in fleet.devices() {
        post(
            &client,
            format!("{base}/terminals"),
            &key,
            json!({"facility_id": facility, "model": "idface", "address": device.base_url(),
                   "login": "admin", "password": "admin", "door_ids": [door]}),
        )
        .await?;
    }
    let caller = core
        .authenticate(&key)
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?
        .ok_or_else(|| anyhow::anyhow!("key"))?;
    let tenant_id = TenantId::new(tenant.id);
    for from in (0..people).step_by(1_000) {
        let to = (from + 1_000).min(people);
        core.write(&caller, 4 * (to - from) as usize, move |_, plan| {
            for i in from..to {
                let person = Person::new(
                    PersonId::new(plan.next_id()?),
                    tenant_id,
                    AcsId::parse(&format!("E-{i}"))?,
                    "",
                );
                let card = Credential::issue(
                    CredentialId::new(plan.next_id()?),
                    tenant_id,
                    person.id,
                    CredentialValue::Card(WiegandCard::new(1, i)),
                    start,
                );
                let face_id = CredentialId::new(plan.next_id()?);
                let face = Credential::issue(
                    face_id,
                    tenant_id,
                    person.id,
                    CredentialValue::face(&format!("selfie:{face_id}"))?,
                    start,
                );
                let member = Membership::new(
                    MembershipId::new(plan.next_id()?),
                    tenant_id,
                    person.id,
                    start,
                );
                plan.put(person, None);
                plan.put(card, None);
                plan.put(
                    face,
                    Some(Blob {
                        media_type: "image/jpeg".into(),
                        bytes: face_of(i),
                    }),
                );
                plan.put(member, None);
            }
            Ok(())
        })
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?;
    }
    println!("{people} people with a card and a face as members; {terminals} terminals");
    let started = Instant::now();
    let engine = SyncEngine::spawn(
        core.clone(),
        SyncOptions {
            retry_initial: Duration::from_millis(100),
            ..SyncOptions::default()
        },
    );
    let everyone = people as usize;
    engine
        .board()
        .wait_until(|b| {
            b.len() == terminals && b.values().all(|s| s.in_sync && s.people == everyone)
        })
        .await;
    let converged = started.elapsed().as_secs_f64();
    println!("converged in {converged:.1} s");
    println!(
        "RESULT: sync {people} x {terminals}: converged = {converged:.1} s (target <= 120 s, \
         ratio {:.2}, {})",
        converged / 120.0,
        if converged <= 120.0 { "met" } else { "missed" }
    );
    for device in fleet.devices() {
        anyhow::ensure!(
            device.device().rows("users")?.len() == everyone,
            "a terminal misses people"
        );
    }
    // One attendee afterwards: an event live now, a new person with a card.
    let event = post(
        &client,
        format!("{base}/events"),
        &key,
        json!({"facility_id": facility,
        "starts_at": "2026-05-04T07:00:00Z", "ends_at": "2026-05-04T23:00:00Z"}),
    )
    .await?;
    let mut trials = Vec::new();
    for t in 0..attendees {
        let person = post(
            &client,
            format!("{base}/people"),
            &key,
            json!({"acs_id": format!("A-{t}")}),
        )
        .await?;
        post(
            &client,
            format!("{base}/people/{person}/credentials"),
            &key,
            json!({"kind": "card", "facility_code": 2, "card_number": t}),
        )
        .await?;
        let added = Instant::now();
        client
            .post(format!("{base}/events/{event}/attendees"))
            .bearer_auth(&key)
            .json(&json!({"person_id": person}))
            .send()
            .await?;
        let want = everyone + 1 + t as usize;
        engine
            .board()
            .wait_until(|b| b.values().all(|s| s.in_sync && s.people == want))
            .await;
        trials.push(added.elapsed());
    }
    trials.sort();
    // Nearest rank: the smallest trial at or above the share `q` of all trials.
    let rank = |q: f64| {
        let at = ((q * trials.len() as f64).ceil() as usize).clamp(1, trials.len());
        trials[at - 1].as_secs_f64() * 1e3
    };
    println!(
        "one attendee to all {terminals} terminals: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms over {} trials",
        rank(0.5),
        rank(0.99),
        rank(1.0),
        trials.len()
    );
    let p99 = rank(0.99);
    println!(
        "RESULT: sync {people} x {terminals}: one attendee to every terminal, p99 = {p99:.0} ms \
         (target <= 1000 ms, ratio {:.2}, {})",
        p99 / 1000.0,
        if p99 <= 1000.0 { "met" } else { "missed" }
    );
    engine.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
