//! Three real `acs-core serve` processes on one SQLite file (short lease and poll
//! intervals through their options) over a simulated fleet: people written through
//! different processes reach every terminal, each terminal is leased by one process, and
//! after one process is killed with SIGKILL mid-sync the others take its terminals over and
//! everything converges again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use acs_core::store::{SqliteStore, Store as _};
use acs_simulator::{Fleet, RunningFleet, Simulator, TimeMode};
use serde_json::{Value as Json, json};

use crate::api_process::{serve_with, tenant};
use crate::bounded::{PATIENCE, http_client};

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

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {PATIENCE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn live_leases(store: &SqliteStore) -> BTreeMap<u64, String> {
    store
        .leases()
        .expect("leases")
        .into_iter()
        .filter(|l| l.live)
        .map(|l| (l.terminal_id, l.holder))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_serve_processes_share_the_terminals_and_survive_a_sigkill() {
    let dir = std::env::temp_dir().join(format!("acs-core-processes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("acs.db");
    let key = tenant(&db);
    let mut processes = Vec::new();
    for i in 0..3 {
        let name = format!("p{i}");
        processes.push(serve_with(
            &db,
            &dir.join(format!("{name}.log")),
            &[
                "--instance-id",
                &name,
                "--poll-ms",
                "25",
                "--lease-ttl-ms",
                "1500",
                "--lease-renew-ms",
                "200",
            ],
        ));
    }
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
    let store = SqliteStore::open(&db).expect("store");
    let leases = live_leases(&store);
    assert_eq!(
        leases.len(),
        TERMINALS,
        "one live lease per terminal: {leases:?}"
    );
    let holders: BTreeSet<&String> = leases.values().collect();
    assert_eq!(holders.len(), 3, "spread over the processes: {leases:?}");

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
            let leases = live_leases(&store);
            leases.len() == TERMINALS && leases.values().all(|h| h != "p2")
        },
    )
    .await;
    drop(processes);
    let _ = std::fs::remove_dir_all(&dir);
}
