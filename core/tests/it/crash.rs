//! Crash safety of the real `acs-core serve` with its sync engine: people are enrolled and
//! made members (each one pushed to a simulated fleet) while the process is killed with
//! SIGKILL at seeded points – in the middle of the device writes of a sync pass – and
//! restarted on the same database. At the end every acknowledged person, card and
//! membership is still there, and every terminal holds exactly the core's desired state
//! with nothing twice (no user, card or rule link duplicated).
//!
//! `cargo test` kills it a few times; a longer run (RELIABILITY.md, "Faults"):
//! `ACS_CRASH_SEED=1 ACS_CRASH_KILLS=30 cargo test -p acs-core --test it crash -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use acs_simulator::{Fleet, RunningFleet, Simulator, TimeMode};
use serde_json::{Value as Json, json};
use tokio::sync::Mutex;

use crate::api_process::{serve, serve_with, tenant};
use crate::bounded::{bounded, http_client};

const TERMINALS: usize = 3;
/// Device writes of one round after which the kill may fall (seeded within this range).
const KILL_AFTER_WRITES: std::ops::Range<usize> = 1..600;
/// Concurrent enrolling clients.
const WRITERS: u32 = 4;
/// How long anything may take (real time) before the test gives up.
const WITHIN: Duration = Duration::from_secs(60);

/// A seeded sequence (splitmix64), enough to place the kills.
struct Seeded(u64);

impl Seeded {
    fn below(&mut self, range: std::ops::Range<usize>) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        range.start + usize::try_from(z % (range.end - range.start) as u64).unwrap_or(0)
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An integrator's call; `None` when it was not acknowledged (the process died).
async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Json>,
) -> Option<(u16, Json)> {
    let mut req = client.request(method, url).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.ok()?;
    let status = r.status().as_u16();
    let json = r.json().await.unwrap_or(Json::Null);
    Some((status, json))
}

async fn create(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    path: &str,
    body: Json,
) -> Option<u64> {
    match call(
        client,
        reqwest::Method::POST,
        format!("{base}{path}"),
        key,
        Some(body),
    )
    .await
    {
        Some((201, j)) => j["id"].as_u64(),
        _ => None,
    }
}

/// Writes the terminals have been asked to make (tables changed), summed over the fleet.
/// Waits until some terminal records another request – the core runs in another process,
/// and the requests it makes to the devices are this test's signal of its progress. False
/// once `deadline` has passed with none.
async fn device_traffic(
    traffic: &mut [tokio::sync::watch::Receiver<u64>],
    deadline: tokio::time::Instant,
) -> bool {
    let next = futures_util::future::select_all(traffic.iter_mut().map(|t| Box::pin(t.changed())));
    tokio::time::timeout_at(deadline, next).await.is_ok()
}

fn device_writes(fleet: &RunningFleet) -> usize {
    fleet
        .devices()
        .iter()
        .map(|d| {
            [
                "create_objects",
                "destroy_objects",
                "create_or_modify_objects",
            ]
            .iter()
            .map(|c| d.journal().for_command(c).len())
            .sum::<usize>()
        })
        .sum()
}

/// What the integrator was told succeeded: person → (card number, member: `Some(true)`
/// made one, `Some(false)` made one and then removed it, `None` not known).
type Acknowledged = Arc<Mutex<BTreeMap<u64, (Option<u32>, Option<bool>)>>>;

/// Enrolls people with a card and a membership, one after the other, until the API stops
/// answering; records what was acknowledged.
async fn enroll(base: String, key: String, from: u32, acknowledged: Acknowledged) {
    let client = http_client();
    for n in from.. {
        let Some(person) = create(
            &client,
            &base,
            &key,
            "/v1/people",
            json!({"acs_id": format!("K-{n}")}),
        )
        .await
        else {
            return;
        };
        acknowledged.lock().await.insert(person, (None, None));
        let card = create(
            &client,
            &base,
            &key,
            &format!("/v1/people/{person}/credentials"),
            json!({"kind": "card", "facility_code": 5, "card_number": n}),
        )
        .await;
        let Some(_) = card else { return };
        acknowledged.lock().await.insert(person, (Some(n), None));
        let Some(member) = create(
            &client,
            &base,
            &key,
            "/v1/members",
            json!({"person_id": person}),
        )
        .await
        else {
            return;
        };
        acknowledged
            .lock()
            .await
            .insert(person, (Some(n), Some(true)));
        // Every fifth one leaves again (their user must leave every terminal).
        if n % 5 == 0 {
            // Until the removal is acknowledged, either outcome is right.
            acknowledged.lock().await.insert(person, (Some(n), None));
            match call(
                &client,
                reqwest::Method::DELETE,
                format!("{base}/v1/members/{member}"),
                &key,
                None,
            )
            .await
            {
                Some((204, _)) => {
                    acknowledged
                        .lock()
                        .await
                        .insert(person, (Some(n), Some(false)));
                }
                _ => return,
            }
        }
    }
}

/// Every terminal's sync status, once all of them are in sync with `people` people.
async fn converged(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    terminals: &[u64],
    people: usize,
) -> bool {
    for t in terminals {
        let Some((200, s)) = call(
            client,
            reqwest::Method::GET,
            format!("{base}/v1/terminals/{t}/sync"),
            key,
            None,
        )
        .await
        else {
            return false;
        };
        if s["in_sync"] != true || s["pending"] != 0 || s["people"].as_u64() != Some(people as u64)
        {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_sync_and_enrollment_loses_nothing_and_duplicates_nothing() {
    let seed = env_or("ACS_CRASH_SEED", 7_u64);
    let kills = env_or("ACS_CRASH_KILLS", 3_usize);
    let mut rng = Seeded(seed);
    let dir = std::env::temp_dir().join(format!("acs-core-crash-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("acs.db");
    let key = tenant(&db);
    let fleet = Fleet::builder(TERMINALS)
        .template(Simulator::builder().time_mode(TimeMode::Scaled(0.0)))
        .journal_capacity(1_000_000)
        .seed(seed)
        .spawn()
        .await
        .expect("fleet");
    let client = http_client();

    // Killed when dropped, also when an assertion fails.
    let (mut child, mut base) = serve(&db, &dir.join("serve-0.log"));
    let site = create(
        &client,
        &base,
        &key,
        "/v1/sites",
        json!({"name": "S", "timezone": "UTC"}),
    )
    .await
    .expect("site");
    let facility = create(
        &client,
        &base,
        &key,
        "/v1/facilities",
        json!({"site_id": site, "name": "F"}),
    )
    .await
    .expect("facility");
    let door = create(
        &client,
        &base,
        &key,
        "/v1/doors",
        json!({"facility_id": facility, "name": "D",
               "supported_auth_types": {"in": ["card"], "out": ["card"]}}),
    )
    .await
    .expect("door");
    let mut terminals = Vec::new();
    for d in fleet.devices() {
        terminals.push(
            create(
                &client,
                &base,
                &key,
                "/v1/terminals",
                json!({"facility_id": facility, "model": "idface", "address": d.base_url(),
                       "login": "admin", "password": "admin", "door_ids": [door]}),
            )
            .await
            .expect("terminal"),
        );
    }

    let acknowledged: Acknowledged = Arc::default();
    let mut traffic: Vec<_> = fleet
        .devices()
        .iter()
        .map(|d| d.journal().subscribe_entries())
        .collect();
    let mut next = 0_u32;
    for round in 0..kills {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                tokio::spawn(enroll(
                    base.clone(),
                    key.clone(),
                    next + w * 10_000,
                    acknowledged.clone(),
                ))
            })
            .collect();
        let start = device_writes(&fleet);
        let after = rng.below(KILL_AFTER_WRITES);
        let deadline = tokio::time::Instant::now() + WITHIN;
        while device_writes(&fleet) < start + after {
            assert!(
                device_traffic(&mut traffic, deadline).await,
                "round {round}: the core made no device writes"
            );
        }
        child.kill();
        for w in writers {
            bounded(format!("round {round}: a writer to stop after the kill"), w)
                .await
                .expect("writer");
        }
        next += WRITERS * 10_000;
        eprintln!("crash seed {seed}: round {round} killed after {after} device writes");
        // Restarted on the same database; the next round talks to the new process.
        // A read-back every second adopts a user that a request sent just before the kill
        // put on a device after the restarted core had moved on (the device, starved of
        // CPU, may read it late).
        let (restarted, url) = serve_with(
            &db,
            &dir.join(format!("serve-{}.log", round + 1)),
            &["--readback-seconds", "1"],
        );
        (child, base) = (restarted, url);
    }

    // Everything acknowledged is still there.
    let acknowledged = acknowledged.lock().await.clone();
    let members: BTreeSet<u64> = acknowledged
        .iter()
        .filter(|(_, (_, member))| *member == Some(true))
        .map(|(p, _)| *p)
        .collect();
    let left: BTreeSet<u64> = acknowledged
        .iter()
        .filter(|(_, (_, member))| *member == Some(false))
        .map(|(p, _)| *p)
        .collect();
    for (person, (card, _)) in &acknowledged {
        let (status, p) = call(
            &client,
            reqwest::Method::GET,
            format!("{base}/v1/people/{person}"),
            &key,
            None,
        )
        .await
        .expect("answer");
        assert_eq!(status, 200, "acknowledged person {person} lost");
        if let Some(n) = card {
            let (_, creds) = call(
                &client,
                reqwest::Method::GET,
                format!("{base}/v1/people/{person}/credentials"),
                &key,
                None,
            )
            .await
            .expect("answer");
            assert!(
                creds.to_string().contains(&format!("\"card_number\":{n}")),
                "acknowledged card {n} of {person} lost: {creds} ({p})"
            );
        }
    }

    // The fleet converges on the core's desired state, with nothing twice.
    let (_, desired) = call(
        &client,
        reqwest::Method::GET,
        format!("{base}/v1/terminals/{}/desired-state", terminals[0]),
        &key,
        None,
    )
    .await
    .expect("answer");
    let wanted: BTreeSet<u64> = desired["people"]
        .as_array()
        .expect("people")
        .iter()
        .filter_map(|p| p["person_id"].as_u64())
        .collect();
    assert!(
        members.is_subset(&wanted),
        "every acknowledged member is wanted"
    );
    assert!(
        wanted.is_disjoint(&left),
        "no acknowledged removal is undone"
    );
    let deadline = tokio::time::Instant::now() + WITHIN;
    let users_of = |i: usize| -> BTreeSet<u64> {
        fleet.devices()[i]
            .device()
            .rows("users")
            .expect("users")
            .iter()
            .filter_map(|r| r["id"].as_u64())
            .collect()
    };
    while !(converged(&client, &base, &key, &terminals, wanted.len()).await
        && (0..TERMINALS).all(|i| users_of(i) == wanted))
    {
        // The restarted core reads the devices back every second, so traffic keeps coming
        // until it reports them in sync.
        assert!(
            device_traffic(&mut traffic, deadline).await,
            "no convergence after the kills"
        );
    }
    for (i, d) in fleet.devices().iter().enumerate() {
        let rows = |t: &str| d.device().rows(t).expect("table");
        let users: Vec<u64> = rows("users")
            .iter()
            .filter_map(|r| r["id"].as_u64())
            .collect();
        let unique: BTreeSet<u64> = users.iter().copied().collect();
        assert_eq!(users.len(), unique.len(), "terminal {i}: a user twice");
        assert!(
            unique == wanted,
            "terminal {i}: exactly the desired people; extra {:?}, missing {:?}",
            unique.difference(&wanted).collect::<Vec<_>>(),
            wanted.difference(&unique).collect::<Vec<_>>()
        );
        let cards: Vec<(u64, u64)> = rows("cards")
            .iter()
            .filter_map(|r| Some((r["user_id"].as_u64()?, r["value"].as_u64()?)))
            .collect();
        let per_user: BTreeSet<u64> = cards.iter().map(|(u, _)| *u).collect();
        assert_eq!(cards.len(), wanted.len(), "terminal {i}: one card each");
        assert_eq!(per_user, wanted, "terminal {i}: one card each");
        let links = rows("user_access_rules");
        assert_eq!(
            links.len(),
            wanted.len(),
            "terminal {i}: one rule link each"
        );
    }
    eprintln!(
        "crash seed {seed}: {kills} kills; {} people acknowledged ({} left again), {} members on {TERMINALS} terminals",
        acknowledged.len(),
        left.len(),
        wanted.len()
    );
    drop(child);
    fleet.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
}
