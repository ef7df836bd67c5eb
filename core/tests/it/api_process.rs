//! The real `acs-core` binary: a tenant created with `acs-core tenant create`, writes
//! through `acs-core serve`, the process killed (SIGKILL) while writes are in flight, and a
//! restart that still has every acknowledged write. The server's logs never contain the API
//! key, the device password or the selfie.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value as Json, json};
use tokio::sync::Mutex;

use crate::api_support::face_b64;
use crate::bounded::{PATIENCE, bounded, http_client};

const BIN: &str = env!("CARGO_BIN_EXE_acs-core");

/// A child process killed (SIGKILL) and reaped when dropped – also when the test panics –
/// so that no process outlives its test.
#[derive(Debug)]
pub(crate) struct KillOnDrop(Child);

impl KillOnDrop {
    /// Kills the process now (SIGKILL) and waits until it is reaped.
    pub(crate) fn kill(&mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("reaped");
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

pub(crate) fn tenant(db: &Path) -> String {
    let mut command = Command::new(BIN);
    command
        .args([
            "tenant", "create", "--slug", "acme", "--name", "Acme", "--db",
        ])
        .arg(db);
    let (success, stdout, stderr) = run_to_completion(&mut command, "acs-core tenant create");
    assert!(success, "{stderr}");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("API key (shown once): "))
        .expect("the key is printed")
        .trim()
        .to_owned()
}

/// Runs `command` until it exits (killed if it takes longer than [`PATIENCE`]): whether it
/// succeeded, its standard output and its standard error.
pub(crate) fn run_to_completion(command: &mut Command, what: &str) -> (bool, String, String) {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} starts: {e}"));
    let pid = child.id();
    // The wait runs on a thread of its own, so this one can give up after PATIENCE.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(PATIENCE) {
        Ok(output) => {
            let output = output.expect("process output");
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        }
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{what} did not exit within {PATIENCE:?}");
        }
    }
}

/// Starts `acs-core serve` on a free port; returns the process and its base URL.
pub(crate) fn serve(db: &Path, log: &Path) -> (KillOnDrop, String) {
    serve_with(db, log, &[])
}

/// [`serve`] with more arguments.
pub(crate) fn serve_with(db: &Path, log: &Path, more: &[&str]) -> (KillOnDrop, String) {
    let mut child = KillOnDrop(
        Command::new(BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--receiver",
                "127.0.0.1:0",
                "--db",
            ])
            .arg(db)
            .args(more)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("acs-core serve starts"),
    );
    // The banner is read on a thread of its own, so that a server that never prints it
    // fails the test instead of blocking it (the guard then kills it, which ends the read).
    let stdout = child.0.stdout.take().expect("stdout");
    let (banner, read) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = banner.send(line);
    });
    let line = read
        .recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("acs-core serve printed no banner within {PATIENCE:?}"));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    (child, url)
}

async fn post(client: &reqwest::Client, url: &str, key: &str, body: &Json) -> Option<Json> {
    let r = client
        .post(url)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .ok()?;
    if r.status().as_u16() != 201 {
        return None;
    }
    r.json().await.ok()
}

#[tokio::test]
async fn acknowledged_writes_survive_a_sigkill() {
    let dir = std::env::temp_dir().join(format!("acs-core-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("acs.db");
    let log = dir.join("serve.log");
    let key = tenant(&db);
    let (mut child, base) = serve(&db, &log);
    let client = http_client();

    // Secrets that must never reach the logs.
    let site = post(
        &client,
        &format!("{base}/v1/sites"),
        &key,
        &json!({"name": "S", "timezone": "UTC"}),
    )
    .await
    .expect("site");
    let facility = post(
        &client,
        &format!("{base}/v1/facilities"),
        &key,
        &json!({"site_id": site["id"], "name": "F"}),
    )
    .await
    .expect("facility");
    post(
        &client,
        &format!("{base}/v1/terminals"),
        &key,
        &json!({"facility_id": facility["id"], "model": "idface", "address": "http://127.0.0.1:9",
                "login": "admin", "password": "device-pw-XYZZY"}),
    )
    .await
    .expect("terminal");
    post(
        &client,
        &format!("{base}/v1/people"),
        &key,
        &json!({"acs_id": "SELFIE-1", "selfie": face_b64()}),
    )
    .await
    .expect("person");
    let refused = client
        .get(format!("{base}/v1/sites"))
        .bearer_auth("acs_wrong_key-should-not-be-logged")
        .send()
        .await
        .expect("reply");
    assert_eq!(refused.status(), 401);

    // Four writers; the process dies once 40 writes were acknowledged, others in flight.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, base, key) = (client.clone(), base.clone(), key.clone());
        let (acknowledged, count) = (acknowledged.clone(), count.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let acs_id = format!("W{w}-{i}");
                match post(
                    &client,
                    &format!("{base}/v1/people"),
                    &key,
                    &json!({"acs_id": acs_id}),
                )
                .await
                {
                    Some(person) => {
                        acknowledged
                            .lock()
                            .await
                            .push((acs_id, person["id"].as_u64().unwrap_or(0)));
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    None => return,
                }
            }
        }));
    }
    bounded("40 acknowledged writes", async {
        while count.load(Ordering::SeqCst) < 40 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    child.kill();
    for w in writers {
        bounded("a writer to stop after the kill", w)
            .await
            .expect("writer");
    }

    let log2 = dir.join("serve-after-kill.log");
    let (child, base) = serve(&db, &log2);
    let acknowledged = acknowledged.lock().await.clone();
    assert!(acknowledged.len() >= 40);
    for (acs_id, id) in &acknowledged {
        let r = client
            .get(format!("{base}/v1/people/{id}"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("reply");
        assert_eq!(r.status(), 200, "acknowledged {acs_id} lost");
        let person: Json = r.json().await.expect("json");
        assert_eq!(person["acs_id"], acs_id.as_str());
    }
    drop(child);

    let logs = std::fs::read_to_string(&log).expect("log")
        + &std::fs::read_to_string(&log2).expect("log after the kill");
    assert!(
        logs.contains("integrator API listening"),
        "the log is captured"
    );
    for secret in [
        key.as_str(),
        "device-pw-XYZZY",
        "acs_wrong_key-should-not-be-logged",
        &face_b64()[..64],
    ] {
        assert!(!logs.contains(secret), "the log contains a secret");
    }
    std::fs::remove_dir_all(&dir).ok();
}
