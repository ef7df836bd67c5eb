//! A terminal persists what it acknowledged: the `acs-sim` binary serving with `--state`
//! is killed with SIGKILL in the middle of a burst of `create_objects` from several
//! clients, restarted on the same state file, and killed again – six times (`ACS_SIM_KILLS`
//! for more) – and after
//! every restart each acknowledged user is there (and each acknowledged configuration
//! change). Users whose request was cut off by the kill may or may not be there: they were
//! never acknowledged.
//!
//! The binary is the one Cargo builds for this package's tests (`CARGO_BIN_EXE_acs-sim`);
//! it listens on port 0 and prints its address on its first line.

#![cfg(unix)]

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value as Json, json};

use crate::support::pct;

const BIN: &str = env!("CARGO_BIN_EXE_acs-sim");
/// Clients sending at the same time.
const CLIENTS: u64 = 6;
/// Kills (each followed by a restart on the same state file); `ACS_SIM_KILLS` runs more.
fn kills() -> u64 {
    std::env::var("ACS_SIM_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .filter(|k| *k >= 1)
        .unwrap_or(6)
}
/// Acknowledged creates per round before the kill (the clients are still sending then).
const ACKS_PER_ROUND: usize = 950;
/// Bound on every wait (never reached when things work).
const WAIT: Duration = Duration::from_secs(60);

/// One `acs-sim serve --state` process.
struct Served {
    child: Child,
    url: String,
    /// The process's stdout, kept open for as long as it runs.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Served {
    fn start(state: &Path) -> Served {
        let mut child = Command::new(BIN)
            .args(["serve", "--port", "0", "--seed", "21", "--state"])
            .arg(state)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("acs-sim starts");
        let mut banner = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        stdout.read_line(&mut banner).expect("banner");
        let url = banner
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {banner:?}"))
            .to_owned();
        Served {
            child,
            url,
            _stdout: stdout,
        }
    }

    /// SIGKILL: no shutdown, no last snapshot.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .build()
        .expect("client")
}

async fn login(http: &reqwest::Client, url: &str) -> String {
    let r: Json = http
        .post(format!("{url}/login.fcgi"))
        .json(&json!({"login": "admin", "password": "admin"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    r["session"].as_str().expect("session").to_owned()
}

async fn post(http: &reqwest::Client, url: &str, session: &str, command: &str, body: Json) -> Json {
    let r = http
        .post(format!("{url}/{command}.fcgi?session={}", pct(session)))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "{command}");
    r.json().await.expect("json")
}

/// Every user id stored, and the monitor hostname.
async fn stored(url: &str) -> (BTreeSet<i64>, String) {
    let http = client();
    let s = login(&http, url).await;
    let users = post(
        &http,
        url,
        &s,
        "load_objects",
        json!({"object": "users", "fields": ["id"]}),
    )
    .await;
    let ids = users["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["id"].as_i64().expect("id"))
        .collect();
    let config = post(
        &http,
        url,
        &s,
        "get_configuration",
        json!({"monitor": ["hostname"]}),
    )
    .await;
    let hostname = config["monitor"]["hostname"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (ids, hostname)
}

/// What the clients of one round were told: the acknowledged ids, and their number as a
/// channel the test waits on.
#[derive(Clone)]
struct Acks {
    ids: Arc<Mutex<Vec<i64>>>,
    count: Arc<tokio::sync::watch::Sender<usize>>,
}

/// One client: creates user after user until the terminal goes away; each id the terminal
/// acknowledged (200 with that id) is recorded in `acks`.
async fn burst(url: String, round: u64, client_no: u64, acks: Acks) {
    let http = client();
    let Ok(r) = http
        .post(format!("{url}/login.fcgi"))
        .json(&json!({"login": "admin", "password": "admin"}))
        .send()
        .await
    else {
        return;
    };
    let Ok(login) = r.json::<Json>().await else {
        return;
    };
    let session = pct(login["session"].as_str().unwrap_or_default());
    for n in 0.. {
        let id = i64::try_from(round * 10_000_000 + client_no * 1_000_000 + n).expect("id");
        let body = json!({"object": "users", "values": [{"id": id, "name": format!("U{id}"), "registration": format!("R{id}")}]});
        let sent = http
            .post(format!("{url}/create_objects.fcgi?session={session}"))
            .json(&body)
            .send()
            .await;
        let Ok(r) = sent else {
            return; // killed: this one was never acknowledged
        };
        if r.status() != 200 {
            return;
        }
        match r.json::<Json>().await {
            Ok(reply) if reply == json!({"ids": [id]}) => {
                acks.ids.lock().expect("acks").push(id);
                acks.count.send_modify(|n| *n += 1);
            }
            _ => return,
        }
    }
}

fn temp_state() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("acs-sim-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("terminal.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_burst_loses_no_acknowledged_write() {
    let state = temp_state();
    let kills = kills();
    let mut acknowledged: BTreeSet<i64> = BTreeSet::new();
    let mut hostname = String::new();
    let mut kept = 0;
    for round in 0..=kills {
        let served = Served::start(&state);
        let (ids, host) = stored(&served.url).await;
        let lost: Vec<&i64> = acknowledged.difference(&ids).collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} of {} acknowledged creates lost, e.g. {:?}",
            lost.len(),
            acknowledged.len(),
            &lost[..lost.len().min(5)]
        );
        assert_eq!(
            host, hostname,
            "round {round}: an acknowledged setting was lost"
        );
        kept = ids.len();
        if round == kills {
            served.kill();
            break;
        }

        // An acknowledged configuration change, then the burst.
        let http = client();
        let s = login(&http, &served.url).await;
        hostname = format!("round-{round}.example");
        post(
            &http,
            &served.url,
            &s,
            "set_configuration",
            json!({"monitor": {"hostname": hostname}}),
        )
        .await;
        let acks = Acks {
            ids: Arc::new(Mutex::new(Vec::new())),
            count: Arc::new(tokio::sync::watch::channel(0).0),
        };
        let mut progress = acks.count.subscribe();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| tokio::spawn(burst(served.url.clone(), round, c, acks.clone())))
            .collect();
        tokio::time::timeout(WAIT, progress.wait_for(|n| *n >= ACKS_PER_ROUND))
            .await
            .expect("the burst made progress")
            .expect("clients alive");
        // Mid-burst: every client still has a request in flight or about to leave.
        served.kill();
        for c in clients {
            tokio::time::timeout(WAIT, c)
                .await
                .expect("client ended")
                .expect("client task");
        }
        let acked = acks.ids.lock().expect("acks").clone();
        assert!(acked.len() >= ACKS_PER_ROUND);
        acknowledged.extend(acked);
    }
    let total = acknowledged.len();
    assert!(
        total >= 5_500,
        "only {total} acknowledged creates over {kills} kills"
    );
    eprintln!(
        "{kills} SIGKILLs mid-burst, {total} acknowledged creates, 0 lost ({} created but cut off before the answer, kept)",
        kept - total
    );
    std::fs::remove_dir_all(state.parent().expect("dir")).ok();
}
