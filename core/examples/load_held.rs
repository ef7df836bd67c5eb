//! Load held (RELIABILITY.md, "Faults"): the core (integrator API, receiver, sync engine, SQLite
//! file in WAL mode) with T simulated terminals (default 20) that stream access events at
//! R events/s in total (default 500) – each terminal identifies a card presented by its
//! scripted person and pushes the access log to the receiver as the firmware does (monitor
//! `dao`) – while an integrator client keeps calling the API: a mix of reads (people, access
//! events, a terminal's sync state) and writes (a person with a card made a member, which
//! the sync engine then pushes to every terminal). Prints the API latencies (p50 / p99 /
//! max per kind) and how many of the access events were recorded.
//!
//! `cargo run --release -p acs-core --example load_held -- [seconds=30] [terminals=20] [events_per_second=500]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use acs_core::Core;
use acs_core::card::WiegandCard;
use acs_core::store::{SqliteStore, Store};
use acs_core::sync::{SyncEngine, SyncOptions};
use acs_simulator::{Fleet, Presentation, Simulator, TimeMode};
use serde_json::{Value as Json, json};

/// People on every terminal before the load starts.
const PEOPLE: u32 = 200;
/// Concurrent integrator clients (each one request at a time).
const CLIENTS: usize = 4;

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Json>,
) -> anyhow::Result<Json> {
    let mut req = client.request(method, url).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let reply = req.send().await?;
    let status = reply.status();
    let json: Json = reply.json().await.unwrap_or(Json::Null);
    anyhow::ensure!(status.is_success(), "{status}: {json}");
    Ok(json)
}

async fn create(
    client: &reqwest::Client,
    url: String,
    key: &str,
    body: Json,
) -> anyhow::Result<u64> {
    let reply = send(client, reqwest::Method::POST, url, key, Some(body)).await?;
    reply["id"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no id in {reply}"))
}

/// A GET whose reply only has to be a success.
async fn get(client: &reqwest::Client, url: String, key: &str) -> anyhow::Result<()> {
    send(client, reqwest::Method::GET, url, key, None)
        .await
        .map(|_| ())
}

/// A person `acs_id` with a card (`facility_code`, `number`), made a member: the sync
/// engine then pushes them to every terminal.
async fn member_with_card(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    acs_id: String,
    facility_code: u32,
    number: u32,
) -> anyhow::Result<()> {
    let person = create(
        client,
        format!("{base}/people"),
        key,
        json!({"acs_id": acs_id}),
    )
    .await?;
    create(
        client,
        format!("{base}/people/{person}/credentials"),
        key,
        json!({"kind": "card", "facility_code": facility_code, "card_number": number}),
    )
    .await?;
    create(
        client,
        format!("{base}/members"),
        key,
        json!({"person_id": person}),
    )
    .await
    .map(|_| ())
}

/// Latencies of one kind of call.
#[derive(Default)]
struct Samples {
    millis: Vec<f64>,
    errors: usize,
}

impl Samples {
    fn line(&mut self, name: &str) -> String {
        self.millis.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let n = self.millis.len();
            if n == 0 {
                return f64::NAN;
            }
            self.millis[((n as f64 * q).ceil() as usize).clamp(1, n) - 1]
        };
        format!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {} |",
            self.millis.len(),
            at(0.50),
            at(0.99),
            at(1.0),
            self.errors
        )
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(30);
    let terminals: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);
    let rate: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(500);

    let dir = std::env::temp_dir().join(format!("acs-load-held-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("acs.db"))?);
    let core = Core::new(store);
    let (tenant, key) = core
        .create_tenant("load", "Load")
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?;
    let key = key.secret;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/v1", listener.local_addr()?);
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(acs_core::serve(
        listener,
        core.clone(),
        stop.clone().cancelled_owned(),
    ));
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver_port = receiver.local_addr()?.port();
    tokio::spawn(acs_core::receiver::serve(
        receiver,
        core.clone(),
        stop.clone().cancelled_owned(),
    ));
    let fleet = Fleet::builder(terminals)
        .template(Simulator::builder().time_mode(TimeMode::Scaled(1.0)))
        .seed(9)
        .spawn()
        .await?;
    let client = reqwest::Client::new();

    // A site, a door, the terminals, and PEOPLE members with a card each.
    let site = create(
        &client,
        format!("{base}/sites"),
        &key,
        json!({"name": "S", "timezone": "UTC"}),
    )
    .await?;
    let facility = create(
        &client,
        format!("{base}/facilities"),
        &key,
        json!({"site_id": site, "name": "F"}),
    )
    .await?;
    let door = create(
        &client,
        format!("{base}/doors"),
        &key,
        json!({"facility_id": facility, "name": "D",
               "supported_auth_types": {"in": ["card"], "out": ["card"]}}),
    )
    .await?;
    let mut terminal_ids = Vec::new();
    for d in fleet.devices() {
        terminal_ids.push(
            create(
                &client,
                format!("{base}/terminals"),
                &key,
                json!({"facility_id": facility, "model": "idface", "address": d.base_url(),
                       "login": "admin", "password": "admin", "door_ids": [door]}),
            )
            .await?,
        );
    }
    let engine = SyncEngine::spawn(
        core.clone(),
        SyncOptions {
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(2),
            receiver: Some(("127.0.0.1".into(), receiver_port)),
            ..SyncOptions::default()
        },
    );
    for n in 0..PEOPLE {
        member_with_card(&client, &base, &key, format!("L-{n}"), 9, n).await?;
    }
    let synced = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(120),
        engine.board().wait_until(|b| {
            b.len() == terminals && b.values().all(|s| s.in_sync && s.people == PEOPLE as usize)
        }),
    )
    .await
    .map_err(|_| anyhow::anyhow!("the fleet did not converge"))?;
    println!(
        "{terminals} terminals hold {PEOPLE} people ({:.1} s)",
        synced.elapsed().as_secs_f64()
    );

    // Access events: every terminal presents a card at rate / terminals per second.
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let generated = Arc::new(AtomicU64::new(0));
    let mut streams = Vec::new();
    let per_terminal = (rate as f64 / terminals as f64).max(0.001);
    for (i, d) in fleet.devices().iter().enumerate() {
        let terminal = d.terminal().clone();
        let generated = generated.clone();
        streams.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_terminal));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut n = i as u32;
            while Instant::now() < deadline {
                tick.tick().await;
                let card = WiegandCard::new(9, n % (PEOPLE + 50)).to_device_value();
                n += terminals as u32;
                if terminal
                    .identify(&Presentation::Card(card), 1)
                    .await
                    .is_ok()
                {
                    generated.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    // The integrator: CLIENTS clients, each a loop over a mix of calls.
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (client, base, key) = (client.clone(), base.clone(), key.clone());
        let terminal = terminal_ids[c % terminal_ids.len()];
        clients.push(tokio::spawn(async move {
            let mut kinds: [Samples; 4] = Default::default();
            let mut i = 0_u32;
            while Instant::now() < deadline {
                let kind = (i % 4) as usize;
                let started = Instant::now();
                let result = match kind {
                    0 => get(&client, format!("{base}/people?limit=50"), &key).await,
                    1 => get(&client, format!("{base}/access-events?limit=100"), &key).await,
                    2 => get(&client, format!("{base}/terminals/{terminal}/sync"), &key).await,
                    _ => {
                        let n = 1_000_000 + c as u32 * 100_000 + i;
                        member_with_card(&client, &base, &key, format!("W-{n}"), 10, n).await
                    }
                };
                match result {
                    Ok(()) => kinds[kind]
                        .millis
                        .push(started.elapsed().as_secs_f64() * 1000.0),
                    Err(_) => kinds[kind].errors += 1,
                }
                i += 1;
            }
            kinds
        }));
    }
    let mut totals: [Samples; 4] = Default::default();
    for c in clients {
        for (total, samples) in totals.iter_mut().zip(c.await?) {
            total.millis.extend(samples.millis);
            total.errors += samples.errors;
        }
    }
    for s in streams {
        s.await?;
    }
    let generated = generated.load(Ordering::Relaxed);

    // Every event pushed is recorded (the receiver answers each push; retries cover the rest).
    let mut recorded = 0_u64;
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(30) {
        recorded = 0;
        let mut after = 0;
        loop {
            let page = core
                .access_events(acs_core::domain::TenantId::new(tenant.id), after, 5_000)
                .await
                .map_err(|e| anyhow::anyhow!(e.detail))?;
            let Some(last) = page.last() else { break };
            after = last.id;
            recorded += page.len() as u64;
        }
        if recorded >= generated {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "{seconds} s at {rate} events/s from {terminals} terminals: {generated} access logs written, \
         {recorded} recorded ({:.0} events/s); {CLIENTS} integrator clients",
        generated as f64 / seconds as f64
    );
    println!("| call | count | p50 ms | p99 ms | max ms | errors |");
    println!("|---|---|---|---|---|---|");
    let mut all = Samples::default();
    for (name, s) in [
        "GET /v1/people?limit=50",
        "GET /v1/access-events?limit=100",
        "GET /v1/terminals/{id}/sync",
        "POST person + card + member",
    ]
    .iter()
    .zip(totals.iter_mut())
    {
        all.millis.extend(s.millis.iter().copied());
        all.errors += s.errors;
        println!("{}", s.line(name));
    }
    println!("{}", all.line("all"));
    stop.cancel();
    engine.shutdown().await;
    fleet.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
