//! Several core instances on one database: three in-process cores, each with its own
//! connections to one SQLite file (as three `acs-core serve` processes would have), its
//! own integrator API, change feed, relay and leased sync engine, over a fleet of
//! simulated terminals. People and cards created through different instances reach every
//! terminal; each terminal is leased by one instance; an instance killed mid-sync (its
//! runtime dropped, nothing released) has its terminals taken over; every instance streams
//! every access event once, in id order; concurrent creates with colliding `acs_id`s keep
//! uniqueness and lose no acknowledged write; one idempotency key sent to both
//! surviving instances at once creates once.
//!
//! The backend is a parameter ([`Backend`]): a SQLite file, and a fresh database on the
//! PostgreSQL server of `ACS_TEST_POSTGRES_URL` (skipped loudly without one, failing under
//! `CI`, as the store suite). The fleet size is `ACS_INSTANCES_TERMINALS` (default 24;
//! CI runs the PostgreSQL case again with 1,000).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use acs_core::Core;
use acs_core::app::{Clock, InstanceOptions};
use acs_core::store::{PostgresStore, SqliteStore, Store};
use acs_core::sync::{LeaseOptions, SyncEngine, SyncOptions};
use acs_simulator::{Fleet, Simulator, TimeMode};
use serde_json::json;

use crate::api_support::Api;
use crate::bounded::PATIENCE;
use crate::sync::users;

/// Where the instances' database lives.
#[derive(Clone)]
enum Backend {
    /// A SQLite file (WAL: several connections, several processes).
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database (its URL); each instance has a pool of its own.
    Postgres(String),
}

impl Backend {
    fn open(&self) -> Arc<dyn Store> {
        match self {
            Backend::Sqlite(path) => Arc::new(SqliteStore::open(path).expect("store")),
            Backend::Postgres(url) => {
                Arc::new(PostgresStore::connect_with(url, 8).expect("PostgreSQL store"))
            }
        }
    }
}

/// One instance: its core, API and sync engine, on a runtime of its own so that it can be
/// killed without any clean-up running.
struct Instance {
    core: Core,
    api: Api,
    engine: Option<SyncEngine>,
    _instance: acs_core::app::Instance,
}

/// Short leases, so that a killed instance's terminals are taken over quickly; they grow
/// with the fleet, as a slow machine running a debug build needs longer to renew a few
/// hundred leases while syncing their terminals.
fn lease_options() -> LeaseOptions {
    let per_terminal = Duration::from_millis(4) * u32::try_from(fleet_size()).unwrap_or(0);
    LeaseOptions {
        ttl: Duration::from_millis(1500) + per_terminal,
        renew_every: Duration::from_millis(200),
        slack: 1,
    }
}

async fn start(backend: &Backend, name: &str, key: &str) -> Instance {
    let core = Core::with_clock(backend.open(), Clock::System);
    core.set_instance_id(name);
    let instance = core
        .start_instance(InstanceOptions {
            poll: Duration::from_millis(25),
            ..InstanceOptions::default()
        })
        .await
        .expect("instance");
    let engine = SyncEngine::spawn(
        core.clone(),
        SyncOptions {
            retry_initial: Duration::from_millis(20),
            retry_max: Duration::from_millis(200),
            leases: Some(lease_options()),
            ..SyncOptions::default()
        },
    );
    let api = Api::serve(core.clone(), key.to_owned()).await;
    Instance {
        core,
        api,
        engine: Some(engine),
        _instance: instance,
    }
}

/// The fleet's size: `ACS_INSTANCES_TERMINALS`, 24 by default.
fn fleet_size() -> usize {
    std::env::var("ACS_INSTANCES_TERMINALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24)
}

/// Polls `done` until it holds; panics naming `what` after the tests' patience.
/// The patience grows with the fleet: a thousand terminals take a while to be written
/// out by three instances in a debug build.
pub(crate) async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let patience = PATIENCE + Duration::from_millis(150) * u32::try_from(fleet_size()).unwrap_or(0);
    let deadline = tokio::time::Instant::now() + patience;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {patience:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) fn live_leases(store: &dyn Store) -> BTreeMap<u64, String> {
    store
        .leases()
        .expect("leases")
        .into_iter()
        .filter(|l| l.live)
        .map(|l| (l.terminal_id, l.holder))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_share_one_sqlite_file() {
    let dir = std::env::temp_dir().join(format!("acs-core-instances-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    three_instances(Backend::Sqlite(dir.join("acs.db"))).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_share_one_postgres_database() {
    let Some(database) = crate::store::PgDatabase::create(
        "it::instances::three_instances_share_one_postgres_database",
    ) else {
        return;
    };
    three_instances(Backend::Postgres(database.url.clone())).await;
}

async fn three_instances(backend: Backend) {
    let terminals = fleet_size();
    let key = {
        let core = Core::new(backend.open());
        core.create_tenant("acme", "Acme")
            .await
            .expect("tenant")
            .1
            .secret
    };
    // Instance 2 runs on a runtime of its own: dropping that runtime is its kill -9.
    let doomed_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let doomed = {
        let backend = backend.clone();
        let key = key.clone();
        doomed_runtime
            .spawn(async move { start(&backend, "i2", &key).await })
            .await
            .expect("instance 2")
    };
    let mut instances = vec![
        start(&backend, "i0", &key).await,
        start(&backend, "i1", &key).await,
    ];
    let apis = |i: usize| -> &Api {
        if i % 3 == 2 {
            &doomed.api
        } else {
            &instances[i % 3].api
        }
    };
    let mut streams: Vec<_> = [&instances[0].core, &instances[1].core, &doomed.core]
        .iter()
        .map(|c| c.subscribe())
        .collect();

    let fleet = Fleet::builder(terminals)
        .template(Simulator::builder().time_mode(TimeMode::Scaled(0.0)))
        .seed(24)
        .spawn()
        .await
        .expect("fleet");
    let site = apis(0)
        .post(
            "/v1/sites",
            json!({"name": "Madrid", "timezone": "Europe/Madrid"}),
        )
        .await
        .id();
    let facility = apis(1)
        .post("/v1/facilities", json!({"site_id": site, "name": "F"}))
        .await
        .id();
    let door = apis(2)
        .post(
            "/v1/doors",
            json!({"facility_id": facility, "name": "D",
                   "supported_auth_types": {"in": ["card"], "out": ["card"]}}),
        )
        .await
        .id();
    let group = apis(0)
        .post("/v1/groups", json!({"name": "Staff"}))
        .await
        .id();
    apis(1)
        .post(
            "/v1/accesses",
            json!({"name": "Staff", "kind": "permanent", "doors": [{"door_id": door}],
                   "group_ids": [group]}),
        )
        .await
        .id();
    let mut terminal_ids = Vec::new();
    for index in 0..terminals {
        let url = fleet.device(index).expect("device").base_url();
        let reply = apis(index)
            .post(
                "/v1/terminals",
                json!({"facility_id": facility, "model": "idface", "address": url,
                       "login": "admin", "password": "admin", "door_ids": [door]}),
            )
            .await;
        terminal_ids.push(reply.id());
    }
    let mut people = BTreeSet::new();
    for n in 0..6u32 {
        let api = apis(n as usize);
        let acs_id = format!("P-{n}");
        let person = api
            .post("/v1/people", json!({"acs_id": acs_id, "name": "Ana"}))
            .await
            .id();
        api.post(
            &format!("/v1/people/{person}/credentials"),
            json!({"kind": "card", "facility_code": 123, "card_number": 1000 + n}),
        )
        .await
        .id();
        let added = apis(n as usize + 1)
            .post(
                &format!("/v1/groups/{group}/members"),
                json!({"person_id": person}),
            )
            .await;
        assert!((200..300).contains(&added.status), "{:?}", added.json);
        people.insert(acs_id);
    }

    // Every terminal converges; each is leased by one live instance, and all three share.
    until("every terminal holds every person", || {
        (0..terminals).all(|i| users(&fleet, i).len() == people.len())
    })
    .await;
    let store = backend.open();
    // A lease may be between holders for a moment (given back by one instance, not yet
    // taken by another), and an instance that started first gives its surplus back over a
    // few rounds: wait until each terminal has one and all three instances hold some.
    until(
        "one live lease per terminal, spread over the three instances",
        || {
            let leases = live_leases(&*store);
            let holders: BTreeSet<&String> = leases.values().collect();
            leases.len() == terminals && holders.len() == 3
        },
    )
    .await;
    let leases = live_leases(&*store);

    // Access events recorded through every instance (decisions at the door).
    for n in 0..9u32 {
        let decision = apis(n as usize)
            .post(
                "/v1/decisions",
                json!({"door_id": door,
                       "factors": [{"card": {"facility_code": 123, "card_number": 1000 + n % 6}}]}),
            )
            .await;
        assert_eq!(decision.json["result"], "granted", "{}", decision.json);
    }

    // Kill instance 2 mid-sync: a new person is being written out when it dies.
    let late = apis(0)
        .post("/v1/people", json!({"acs_id": "P-late", "name": "Late"}))
        .await
        .id();
    apis(0)
        .post(
            &format!("/v1/people/{late}/credentials"),
            json!({"kind": "card", "facility_code": 123, "card_number": 4242}),
        )
        .await
        .id();
    let added = apis(1)
        .post(
            &format!("/v1/groups/{group}/members"),
            json!({"person_id": late}),
        )
        .await;
    assert!((200..300).contains(&added.status), "{:?}", added.json);
    people.insert("P-late".to_owned());
    let held_by_doomed: BTreeSet<u64> = leases
        .iter()
        .filter(|(_, h)| h.as_str() == "i2")
        .map(|(t, _)| *t)
        .collect();
    doomed_runtime.shutdown_background();
    let doomed_stream = streams.pop().expect("stream of instance 2");
    drop(doomed_stream);
    until("every terminal holds every person after the kill", || {
        (0..terminals).all(|i| users(&fleet, i).len() == people.len())
    })
    .await;
    until("the dead instance's terminals are leased again", || {
        let leases = live_leases(&*store);
        held_by_doomed
            .iter()
            .all(|t| leases.get(t).is_some_and(|h| h != "i2"))
    })
    .await;

    // Every access event (a credential issued records one) was recorded once and is
    // streamed by each surviving instance once, in id order.
    let tenant = acs_core::domain::TenantId::new(1);
    let recorded: Vec<u64> = store
        .access_events(tenant.get(), 0, 10_000)
        .expect("events")
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(recorded.len(), 9, "{recorded:?}");
    for (i, stream) in streams.iter_mut().enumerate() {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while seen.len() < recorded.len() {
            let event = tokio::time::timeout_at(deadline, stream.recv())
                .await
                .unwrap_or_else(|_| panic!("instance {i} streamed only {seen:?} of {recorded:?}"))
                .expect("stream");
            seen.push(event.event.id);
        }
        assert_eq!(
            seen, recorded,
            "instance {i} streams every event once, in order"
        );
    }

    // Concurrency: 50 clients over the two survivors, colliding acs_ids and cards.
    let clients: Vec<_> = (0..50u32)
        .map(|c| {
            let api_base = instances[(c % 2) as usize].api.base.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let http = crate::bounded::http_client();
                let acs_id = format!("C-{}", c % 10);
                let person = http
                    .post(format!("{api_base}/v1/people"))
                    .bearer_auth(&key)
                    .json(&json!({"acs_id": acs_id, "name": "Racer"}))
                    .send()
                    .await
                    .expect("request");
                let status = person.status().as_u16();
                let body: serde_json::Value = person.json().await.expect("json");
                assert!(status == 201 || status == 409, "{status} {body}");
                let mut created = Vec::new();
                if status == 201 {
                    let id = body["id"].as_u64().expect("id");
                    created.push(("people", id));
                    let card = http
                        .post(format!("{api_base}/v1/people/{id}/credentials"))
                        .bearer_auth(&key)
                        .json(&json!({"kind": "card", "facility_code": 7, "card_number": c % 5}))
                        .send()
                        .await
                        .expect("request");
                    let status = card.status().as_u16();
                    let body: serde_json::Value = card.json().await.expect("json");
                    assert!(status == 201 || status == 409, "{status} {body}");
                    if status == 201 {
                        created.push(("credentials", body["id"].as_u64().expect("id")));
                    }
                }
                created
            })
        })
        .collect();
    let mut created = Vec::new();
    for client in clients {
        created.extend(client.await.expect("client"));
    }
    let people_made = created.iter().filter(|(k, _)| *k == "people").count();
    let cards_made = created.iter().filter(|(k, _)| *k == "credentials").count();
    assert_eq!(people_made, 10, "one person per acs_id: {created:?}");
    assert!(cards_made <= 5, "one card per number: {created:?}");
    // Reads are served from each instance's snapshot, which the change feed brings up to
    // date within a poll.
    for instance in &instances {
        for (kind, id) in &created {
            let deadline = tokio::time::Instant::now() + PATIENCE;
            loop {
                let reply = instance.api.get(&format!("/v1/{kind}/{id}")).await;
                if reply.status == 200 {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{kind} {id} never readable on an instance: {:?}",
                    reply.json
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    // One Idempotency-Key sent concurrently to both instances: one create, replays.
    let racers: Vec<_> = (0..10usize)
        .map(|c| {
            let api_base = instances[c % 2].api.base.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let reply = crate::bounded::http_client()
                    .post(format!("{api_base}/v1/people"))
                    .bearer_auth(&key)
                    .header("Idempotency-Key", "same-request")
                    .json(&json!({"acs_id": "I-1", "name": "Once"}))
                    .send()
                    .await
                    .expect("request");
                let status = reply.status().as_u16();
                let body: serde_json::Value = reply.json().await.expect("json");
                (status, body["id"].as_u64())
            })
        })
        .collect();
    let mut replies = BTreeSet::new();
    for racer in racers {
        replies.insert(racer.await.expect("racer"));
    }
    assert_eq!(
        replies.len(),
        1,
        "every racer got the one create: {replies:?}"
    );
    assert!(
        replies
            .iter()
            .all(|(status, id)| *status == 201 && id.is_some())
    );

    for instance in &mut instances {
        if let Some(engine) = instance.engine.take() {
            engine.shutdown().await;
        }
    }
    // A graceful shutdown gives the leases back.
    let left = live_leases(&*store);
    assert!(
        left.is_empty(),
        "every lease given back or expired: {left:?}"
    );
}

/// A write acknowledged by one instance is seen by the next read on another, without
/// waiting for the change feed (polled here once an hour): a facility created on one
/// and a door in it created through the other, then read back there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_on_one_instance_sees_what_another_acknowledged() {
    let dir = std::env::temp_dir().join(format!("acs-core-read-yours-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let backend = Backend::Sqlite(dir.join("acs.db"));
    let key = Core::new(backend.open())
        .create_tenant("acme", "Acme")
        .await
        .expect("tenant")
        .1
        .secret;
    let mut apis = Vec::new();
    let mut followers = Vec::new();
    for name in ["a", "b"] {
        let core = Core::with_clock(backend.open(), Clock::System);
        core.set_instance_id(name);
        followers.push(
            core.start_instance(InstanceOptions {
                poll: Duration::from_secs(3_600),
                ..InstanceOptions::default()
            })
            .await
            .expect("instance"),
        );
        apis.push(Api::serve(core, key.clone()).await);
    }
    // Both have the tenant in memory before anything is written.
    for api in &apis {
        assert_eq!(api.get("/v1/sites").await.status, 200);
    }
    let site = apis[0]
        .post("/v1/sites", json!({"name": "S", "timezone": "UTC"}))
        .await
        .id();
    let facility = apis[1]
        .post("/v1/facilities", json!({"site_id": site, "name": "F"}))
        .await
        .id();
    let door = apis[0]
        .post(
            "/v1/doors",
            json!({"facility_id": facility, "name": "D", "supported_auth_types": {"in": ["card"]}}),
        )
        .await
        .id();
    let read = apis[1].get(&format!("/v1/doors/{door}")).await;
    assert_eq!(read.status, 200, "{:?}", read.json);
    assert_eq!(read.json["facility_id"], json!(facility));
    drop(followers);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tenant created after the instances started and written through one of them only:
/// the other hears of it from the change feed alone, takes its share of the tenant's
/// terminals and syncs them (before, it never learnt of the tenant and its share of the
/// terminals stayed unsynced).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_written_through_one_instance_is_synced_by_both() {
    let dir = std::env::temp_dir().join(format!("acs-core-late-tenant-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let backend = Backend::Sqlite(dir.join("acs.db"));
    let first = Core::new(backend.open())
        .create_tenant("first", "First")
        .await
        .expect("tenant")
        .1
        .secret;
    let a = start(&backend, "a", &first).await;
    let b = start(&backend, "b", &first).await;
    let late = Core::new(backend.open())
        .create_tenant("late", "Late")
        .await
        .expect("tenant")
        .1
        .secret;
    let api = Api::serve(a.core.clone(), late).await;
    let terminals = 4;
    let fleet = Fleet::builder(terminals)
        .template(Simulator::builder().time_mode(TimeMode::Scaled(0.0)))
        .seed(5)
        .spawn()
        .await
        .expect("fleet");
    let site = api
        .post("/v1/sites", json!({"name": "S", "timezone": "UTC"}))
        .await
        .id();
    let facility = api
        .post("/v1/facilities", json!({"site_id": site, "name": "F"}))
        .await
        .id();
    let door = api
        .post(
            "/v1/doors",
            json!({"facility_id": facility, "name": "D", "supported_auth_types": {"in": ["card"]}}),
        )
        .await
        .id();
    for index in 0..terminals {
        let url = fleet.device(index).expect("device").base_url();
        api.post(
            "/v1/terminals",
            json!({"facility_id": facility, "model": "idface", "address": url,
                   "login": "admin", "password": "admin", "door_ids": [door]}),
        )
        .await
        .id();
    }
    let person = api
        .post("/v1/people", json!({"acs_id": "L-1", "name": "Ana"}))
        .await
        .id();
    api.post(
        &format!("/v1/people/{person}/credentials"),
        json!({"kind": "card", "facility_code": 1, "card_number": 7}),
    )
    .await
    .id();
    api.post("/v1/members", json!({"person_id": person}))
        .await
        .id();
    until("every terminal of the late tenant holds its member", || {
        (0..terminals).all(|i| users(&fleet, i).contains("L-1"))
    })
    .await;
    let leases = live_leases(&*backend.open());
    assert!(
        leases.values().any(|holder| holder == "b"),
        "b syncs a share of the late tenant's terminals: {leases:?}"
    );
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}
