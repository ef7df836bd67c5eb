//! Three real `acs-core serve` processes on one database (short lease and poll intervals
//! through their options) over a simulated fleet: people written through different
//! processes reach every terminal, each terminal is leased by one process, and after one
//! process is killed with SIGKILL mid-sync the others take its terminals over and
//! everything converges again. Once on a SQLite file, once on a fresh PostgreSQL database
//! (skipped loudly without `ACS_TEST_POSTGRES_URL`, failing under `CI`).

use std::collections::BTreeSet;

use acs_core::store::{PostgresStore, SqliteStore, Store};
use acs_simulator::{Fleet, RunningFleet, Simulator, TimeMode};
use serde_json::{Value as Json, json};

use crate::api_process::{serve_with, tenant};
use crate::bounded::http_client;
use crate::instances::{live_leases, until};

/// Terminals in the fleet.
const TERMINALS: usize = 12;

async fn post(client: &reqwest::Client, base: &str, key: &str, path: &str, body: Json) -> Json {
    let reply = client
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = reply.status().as_u16();
    let body: Json = reply.json().await.expect("json");
    assert!((200..300).contains(&status), "{path}: {status} {body}");
    body
}

fn registrations(fleet: &RunningFleet, index: usize) -> usize {
    fleet
        .device(index)
        .expect("device")
        .device()
        .rows("users")
        .expect("users")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_serve_processes_share_the_terminals_and_survive_a_sigkill() {
    let dir = std::env::temp_dir().join(format!("acs-core-processes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("acs.db");
    let key = tenant(&db);
    let store = SqliteStore::open(&db).expect("store");
    three_processes(db.as_os_str(), &key, &[], &dir, &store).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_serve_processes_on_postgres_survive_a_sigkill() {
    let Some(database) = crate::store::PgDatabase::create(
        "it::instances_process::three_serve_processes_on_postgres_survive_a_sigkill",
    ) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("acs-core-pg-processes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let key_file = dir.join("secrets.key");
    let key = crate::store::process::tenant(&database.url, &key_file);
    let outbox = dir.join("outbox");
    let more = [
        "--secret-key-file",
        key_file.to_str().expect("UTF-8 path"),
        "--outbox-dir",
        outbox.to_str().expect("UTF-8 path"),
    ];
    let store = PostgresStore::connect_with(&database.url, 2).expect("store");
    three_processes(
        std::ffi::OsStr::new(&database.url),
        &key,
        &more,
        &dir,
        &store,
    )
    .await;
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The scenario on the database `db` (a path or URL), with `more` arguments to each
/// process; `store` reads the leases.
async fn three_processes(
    db: &std::ffi::OsStr,
    key: &str,
    more: &[&str],
    dir: &std::path::Path,
    store: &dyn Store,
) {
    let mut processes = Vec::new();
    for i in 0..3 {
        let name = format!("p{i}");
        let mut args = vec![
            "--instance-id",
            &name,
            "--poll-ms",
            "25",
            "--lease-ttl-ms",
            "1500",
            "--lease-renew-ms",
            "200",
        ];
        args.extend_from_slice(more);
        processes.push(serve_with(
            std::path::Path::new(db),
            &dir.join(format!("{name}.log")),
            &args,
        ));
    }
    let key = key.to_owned();
    let base = |i: usize| processes[i % 3].1.clone();
    let client = http_client();
    let fleet = Fleet::builder(TERMINALS)
        .template(Simulator::builder().time_mode(TimeMode::Scaled(0.0)))
        .seed(31)
        .spawn()
        .await
        .expect("fleet");
    let id = |j: Json| j["id"].as_u64().expect("id");
    let site = id(post(
        &client,
        &base(0),
        &key,
        "/v1/sites",
        json!({"name": "Madrid", "timezone": "Europe/Madrid"}),
    )
    .await);
    let facility = id(post(
        &client,
        &base(1),
        &key,
        "/v1/facilities",
        json!({"site_id": site, "name": "F"}),
    )
    .await);
    let door = id(post(
        &client,
        &base(2),
        &key,
        "/v1/doors",
        json!({"facility_id": facility, "name": "D",
               "supported_auth_types": {"in": ["card"], "out": ["card"]}}),
    )
    .await);
    let group = id(post(
        &client,
        &base(0),
        &key,
        "/v1/groups",
        json!({"name": "Staff"}),
    )
    .await);
    post(
        &client,
        &base(1),
        &key,
        "/v1/accesses",
        json!({"name": "Staff", "kind": "permanent", "doors": [{"door_id": door}],
               "group_ids": [group]}),
    )
    .await;
    for index in 0..TERMINALS {
        let url = fleet.device(index).expect("device").base_url();
        post(
            &client,
            &base(index),
            &key,
            "/v1/terminals",
            json!({"facility_id": facility, "model": "idface", "address": url,
                   "login": "admin", "password": "admin", "door_ids": [door]}),
        )
        .await;
    }
    let mut people = 0;
    let add_person = async |n: u32, via: usize| {
        let person = id(post(
            &client,
            &base(via),
            &key,
            "/v1/people",
            json!({"acs_id": format!("P-{n}"), "name": "Ana"}),
        )
        .await);
        post(
            &client,
            &base(via + 1),
            &key,
            &format!("/v1/people/{person}/credentials"),
            json!({"kind": "card", "facility_code": 123, "card_number": 1000 + n}),
        )
        .await;
        post(
            &client,
            &base(via + 2),
            &key,
            &format!("/v1/groups/{group}/members"),
            json!({"person_id": person}),
        )
        .await;
    };
    for n in 0..4u32 {
        add_person(n, n as usize).await;
        people += 1;
    }
    until("every terminal holds every person", || {
        (0..TERMINALS).all(|i| registrations(&fleet, i) == people)
    })
    .await;
    // Leases settle over a few rounds (a process that started first takes more than its
    // share and gives the surplus back; a lease given back is free until another process's
    // next round takes it), so the spread is awaited, not read once.
    until(
        "one live lease per terminal, spread over the three processes",
        || {
            let leases = live_leases(store);
            let holders: BTreeSet<&String> = leases.values().collect();
            leases.len() == TERMINALS && holders.len() == 3
        },
    )
    .await;

    // SIGKILL p2 while a new person is being written out.
    add_person(99, 0).await;
    people += 1;
    processes[2].0.kill();
    until(
        "every terminal holds every person after the SIGKILL",
        || (0..TERMINALS).all(|i| registrations(&fleet, i) == people),
    )
    .await;
    until(
        "the killed process's terminals are leased by the others",
        || {
            let leases = live_leases(store);
            leases.len() == TERMINALS && leases.values().all(|h| h != "p2")
        },
    )
    .await;
    drop(processes);
}
