//! Several instances (BENCHMARKS.md, "Several instances"): N real `acs-core serve`
//! processes on one database over a fleet of simulated terminals, measured the same way
//! for SQLite and PostgreSQL.
//!
//! ```text
//! instances_scale BACKEND INSTANCES PEOPLE TERMINALS [DECISION_SECONDS [MODE]]
//!   BACKEND: `sqlite` (a file in a temporary directory) or a PostgreSQL server URL (a
//!            fresh database is created on it for the run and dropped after)
//!   MODE:    `shared` (default): one tenant, every request sent to the instances in turn;
//!            `per-instance`: one tenant per instance, people and terminals dealt out
//!            over them, each tenant's requests sent to its own instance (a load balancer
//!            routing by tenant)
//! ```
//!
//! The fleet runs in this process (virtual time standing still); the instances are
//! `acs-core` processes next to this example's binary (`cargo build --release -p acs-core
//! --bins --examples`), each with its own API, receiver and sync engine, sharing a tenant
//! made with `acs-core tenant create` (or one per instance). One site, facility and card
//! door per tenant. Then:
//!
//! 1. **People writes**: PEOPLE people, each a person, a card and a membership (three
//!    `POST`s, in order), by 32 clients spread over the instances; people per second. No
//!    terminal is registered yet, so this is the write path alone (with terminals live,
//!    every write also costs each of them a sync pass: see BENCHMARKS.md).
//! 2. **Convergence**: every terminal registered at the door (requests spread over the
//!    instances), timed from the first registration until every terminal holds every
//!    person and card (the fleet's tables, read in place every 100 ms).
//! 3. **Decisions**: `POST /v1/decisions` with a member's card at the door, 32 clients in
//!    a closed loop spread over the instances for DECISION_SECONDS (default 10):
//!    decisions per second, p50 and p99.
//!
//! Prints one `RESULT:` line per figure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use acs_simulator::{Fleet, Simulator, TimeMode};
use anyhow::Context as _;
use serde_json::{Value as Json, json};

/// Clients writing people and asking for decisions at once.
const CLIENTS: usize = 32;

/// An `acs-core serve` process, killed when dropped.
struct Serve {
    child: Child,
    base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `acs-core` binary next to this example's directory.
fn acs_core() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("acs-core"))
        .context("no directory above the example")?;
    anyhow::ensure!(
        bin.exists(),
        "{} is missing: cargo build --release -p acs-core --bins --examples",
        bin.display()
    );
    Ok(bin)
}

/// A fresh database for the run: a SQLite file, or a new database on the PostgreSQL
/// server `backend` (with what drops it afterwards).
fn database(backend: &str, dir: &Path) -> anyhow::Result<(String, Option<(String, String)>)> {
    if backend == "sqlite" {
        return Ok((dir.join("acs.db").display().to_string(), None));
    }
    let name = format!("acs_scale_{}", std::process::id());
    admin_sql(backend, &format!("CREATE DATABASE {name}"))?;
    let base = backend
        .rsplit_once('/')
        .map(|(base, _)| base)
        .context("the PostgreSQL URL names no database")?;
    Ok((format!("{base}/{name}"), Some((backend.to_owned(), name))))
}

/// Runs one statement on the server at `url` (on a runtime of its own).
fn admin_sql(url: &str, sql: &str) -> anyhow::Result<()> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            let driver = tokio::spawn(connection);
            client.batch_execute(&sql).await?;
            drop(client);
            let _ = driver.await;
            Ok(())
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the admin thread panicked"))?
}

/// `acs-core tenant create`; the API key.
fn tenant(bin: &Path, db: &str, key_file: &Path, slug: &str) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .args([
            "tenant", "create", "--slug", slug, "--name", slug, "--db", db,
        ])
        .arg("--secret-key-file")
        .arg(key_file)
        .env_remove("ACS_CORE_SECRET_KEY")
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "tenant create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("API key (shown once): "))
        .map(|k| k.trim().to_owned())
        .context("no key printed")
}

/// Starts instance `i`; waits for its banner.
fn serve(bin: &Path, db: &str, key_file: &Path, dir: &Path, i: usize) -> anyhow::Result<Serve> {
    let log = std::fs::File::create(dir.join(format!("i{i}.log")))?;
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--receiver",
            "127.0.0.1:0",
        ])
        .args(["--db", db, "--instance-id", &format!("i{i}")])
        .arg("--secret-key-file")
        .arg(key_file)
        .arg("--outbox-dir")
        .arg(dir.join("outbox"))
        .env_remove("ACS_CORE_SECRET_KEY")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .with_context(|| format!("instance {i} printed no URL: {line:?}"))?
        .trim_end_matches('/')
        .to_owned();
    Ok(Serve { child, base })
}

/// `POST base/v1/path`; the new object's id.
async fn post(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    path: &str,
    body: Json,
) -> anyhow::Result<u64> {
    let reply = client
        .post(format!("{base}/v1{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await?;
    let status = reply.status();
    let body: Json = reply.json().await.unwrap_or(Json::Null);
    anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
    Ok(body["id"].as_u64().unwrap_or(0))
}

/// The `q` quantile (nearest rank) of sorted `values`, in milliseconds.
fn quantile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() >= 4,
        "usage: instances_scale BACKEND INSTANCES PEOPLE TERMINALS [DECISION_SECONDS [shared|per-instance]]"
    );
    let backend = args[0].clone();
    let instances: usize = args[1].parse()?;
    let people: u32 = args[2].parse()?;
    let terminals: usize = args[3].parse()?;
    let decision_seconds: u64 = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let per_instance = match args.get(5).map(String::as_str) {
        None | Some("shared") => false,
        Some("per-instance") => true,
        Some(other) => anyhow::bail!("the mode is shared or per-instance, not {other}"),
    };
    anyhow::ensure!(
        instances > 0 && people > 0 && terminals > 0,
        "sizes must be positive"
    );
    let bin = acs_core()?;
    let dir = std::env::temp_dir().join(format!("acs-instances-scale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (db, drop_db) = database(&backend, &dir)?;
    let result = run(
        &bin,
        &db,
        &dir,
        &backend,
        instances,
        people,
        terminals,
        decision_seconds,
        per_instance,
    )
    .await;
    if let Some((admin, name)) = drop_db {
        let _ = admin_sql(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// One tenant of the run: its key, site, facility and card door, and the instance its
/// requests go to (`None`: spread over every instance).
struct Venue {
    key: String,
    facility: u64,
    door: u64,
    instance: Option<usize>,
}

impl Venue {
    /// The instance that serves request `n` of this tenant.
    fn base<'b>(&self, bases: &'b [String], n: usize) -> &'b str {
        &bases[self.instance.unwrap_or(n % bases.len())]
    }
}

/// Creates tenant `slug` with one site, facility and card door through `base`.
async fn venue(
    client: &reqwest::Client,
    bin: &Path,
    db: &str,
    key_file: &Path,
    slug: &str,
    base: &str,
    instance: Option<usize>,
) -> anyhow::Result<Venue> {
    let key = tenant(bin, db, key_file, slug)?;
    let site = post(
        client,
        base,
        &key,
        "/sites",
        json!({"name": "S", "timezone": "UTC"}),
    )
    .await?;
    let facility = post(
        client,
        base,
        &key,
        "/facilities",
        json!({"site_id": site, "name": "F"}),
    )
    .await?;
    let door = post(
        client,
        base,
        &key,
        "/doors",
        json!({"facility_id": facility, "name": "D", "supported_auth_types": {"in": ["card"]}}),
    )
    .await?;
    Ok(Venue {
        key,
        facility,
        door,
        instance,
    })
}

#[allow(clippy::too_many_arguments, clippy::too_many_lines)]
async fn run(
    bin: &Path,
    db: &str,
    dir: &Path,
    backend: &str,
    instances: usize,
    people: u32,
    terminals: usize,
    decision_seconds: u64,
    per_instance: bool,
) -> anyhow::Result<()> {
    let label = format!(
        "{} × {instances}, {people} people × {terminals} terminals{}",
        if backend == "sqlite" {
            "SQLite"
        } else {
            "PostgreSQL"
        },
        if per_instance {
            ", a tenant per instance"
        } else {
            ""
        }
    );
    let key_file = dir.join("secrets.key");
    // The secret key file is made by the first tenant create, before any instance starts.
    let first_key = tenant(bin, db, &key_file, "t0")?;
    let servers: Vec<Serve> = (0..instances)
        .map(|i| serve(bin, db, &key_file, dir, i))
        .collect::<anyhow::Result<_>>()?;
    let bases: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.base.clone()).collect());
    let fleet_started = Instant::now();
    let fleet = Fleet::builder(terminals)
        .template(
            Simulator::builder()
                .time_mode(TimeMode::Scaled(0.0))
                .journal_capacity(16),
        )
        .seed(7)
        .spawn()
        .await?;
    println!(
        "{label}: {instances} instance(s) up, fleet of {terminals} in {:.1} s; machine: {} cores, load average {}",
        fleet_started.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        load_average()
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()?;
    // Person n and terminal n belong to tenant n % tenants.
    let mut venues = Vec::new();
    for t in 0..if per_instance { instances } else { 1 } {
        let instance = per_instance.then_some(t);
        let base = &bases[instance.unwrap_or(0)];
        venues.push(if t == 0 {
            let site = post(&client, base, &first_key, "/sites", json!({"name": "S", "timezone": "UTC"})).await?;
            let facility = post(&client, base, &first_key, "/facilities", json!({"site_id": site, "name": "F"})).await?;
            let door = post(
                &client,
                base,
                &first_key,
                "/doors",
                json!({"facility_id": facility, "name": "D", "supported_auth_types": {"in": ["card"]}}),
            )
            .await?;
            Venue {
                key: first_key.clone(),
                facility,
                door,
                instance,
            }
        } else {
            venue(&client, bin, db, &key_file, &format!("t{t}"), base, instance).await?
        });
    }
    let venues = Arc::new(venues);
    let tenants = venues.len();

    // 1. People writes.
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, bases, venues, next) =
            (client.clone(), bases.clone(), venues.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= u64::from(people) {
                    return Ok::<_, anyhow::Error>(());
                }
                #[allow(clippy::cast_possible_truncation)]
                let n = n as usize;
                let venue = &venues[n % venues.len()];
                let base = venue.base(&bases, n / venues.len());
                let key = &venue.key;
                let person = post(
                    &client,
                    base,
                    key,
                    "/people",
                    json!({"acs_id": format!("P-{n}"), "name": "Ana"}),
                )
                .await?;
                post(
                    &client,
                    base,
                    key,
                    &format!("/people/{person}/credentials"),
                    json!({"kind": "card", "facility_code": 1, "card_number": n}),
                )
                .await?;
                post(&client, base, key, "/members", json!({"person_id": person})).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let written = started.elapsed();
    let rate = f64::from(people) / written.as_secs_f64();
    println!(
        "{people} people written in {:.1} s: {rate:.0} people/s ({:.0} requests/s)",
        written.as_secs_f64(),
        rate * 3.0
    );

    // 2. Convergence.
    let urls: Vec<String> = (0..terminals)
        .map(|i| fleet.device(i).map(|d| d.base_url()).context("device"))
        .collect::<anyhow::Result<_>>()?;
    let urls = Arc::new(urls);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, bases, venues, urls, next) = (
            client.clone(),
            bases.clone(),
            venues.clone(),
            urls.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= urls.len() {
                    return Ok::<_, anyhow::Error>(());
                }
                let venue = &venues[i % venues.len()];
                post(
                    &client,
                    venue.base(&bases, i / venues.len()),
                    &venue.key,
                    "/terminals",
                    json!({"facility_id": venue.facility, "model": "idface", "address": urls[i],
                           "login": "admin", "password": "admin", "door_ids": [venue.door]}),
                )
                .await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let registered = started.elapsed();
    println!(
        "{terminals} terminals registered in {:.1} s",
        registered.as_secs_f64()
    );
    // Tenant t holds the people n < PEOPLE with n % tenants == t.
    let held_by = |t: usize| (people as usize + tenants - 1 - t) / tenants;
    let mut done = vec![false; terminals];
    loop {
        for (i, done) in done.iter_mut().enumerate().filter(|(_, d)| !**d) {
            let device = fleet.device(i).context("device")?.device();
            let expected = held_by(i % tenants);
            *done =
                device.row_count("users")? == expected && device.row_count("cards")? == expected;
        }
        if done.iter().all(|d| *d) {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3_600),
            "not converged within an hour: {} of {terminals} terminals",
            done.iter().filter(|d| **d).count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let converged = started.elapsed();
    println!(
        "every terminal holds every person {:.1} s after the first registration ({:.1} s after the last)",
        converged.as_secs_f64(),
        (converged - registered).as_secs_f64()
    );

    // 3. Decisions.
    let until = Instant::now() + Duration::from_secs(decision_seconds);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, bases, venues, next) =
            (client.clone(), bases.clone(), venues.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < until {
                let n = next.fetch_add(1, Ordering::SeqCst);
                #[allow(clippy::cast_possible_truncation)]
                let n = n as usize;
                let person = n % people as usize;
                let venue = &venues[person % venues.len()];
                let asked = Instant::now();
                let reply = client
                    .post(format!("{}/v1/decisions", venue.base(&bases, n)))
                    .bearer_auth(&venue.key)
                    .json(&json!({"door_id": venue.door,
                        "factors": [{"card": {"facility_code": 1, "card_number": person}}]}))
                    .send()
                    .await?;
                anyhow::ensure!(reply.status().is_success(), "decision: {}", reply.status());
                let body: Json = reply.json().await?;
                anyhow::ensure!(
                    body["result"] == json!("granted"),
                    "a member was refused: {body}"
                );
                latencies.push(asked.elapsed());
            }
            Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    latencies.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let per_second = latencies.len() as f64 / decision_seconds as f64;
    let (p50, p99) = (quantile(&latencies, 0.5), quantile(&latencies, 0.99));
    println!(
        "decisions: {per_second:.0}/s, p50 {p50:.2} ms, p99 {p99:.2} ms ({} in {decision_seconds} s)",
        latencies.len()
    );
    // Recorded figures, in the shape `bench/all.sh` collects (no target).
    let recorded = |figure: String| {
        println!("RESULT: instances, {label}: {figure} (target recorded, ratio -, met)")
    };
    recorded(format!("people writes = {rate:.0}/s"));
    recorded(format!("convergence = {:.1} s", converged.as_secs_f64()));
    recorded(format!("decisions = {per_second:.0}/s"));
    recorded(format!("decision p99 = {p99:.2} ms"));
    println!("load average at the end: {}", load_average());
    drop(servers);
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
