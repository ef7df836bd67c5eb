//! The suite's safety rails on real devices, tested against the simulator:
//!
//! - a run leaves every object outside the reserved id range (990,000,000–1,009,999,999)
//!   byte-identical, rows at the range's edges included;
//! - a run killed with SIGKILL after it changed the terminal's configuration leaves a
//!   restore journal, and the next invocation restores configuration and objects;
//! - a full run with debug logging, every report and `--record` never writes the terminal's
//!   password, a session token or the photos it uploaded, and neither does the simulator's
//!   log or journal.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};

use acs_conformance::catalogue::{catalogue, select};
use acs_conformance::runner::RunPolicy;
use acs_conformance::target;
use acs_simulator::Model;
use base64::Engine as _;
use serde_json::{Value as Json, json};

use crate::cli::{BIN, acs_sim, device_tables, run_quietly, temp_dir};

const FACE_A: &[u8] = include_bytes!("../../../fixtures/images/face-a.jpg");
const FACE_B: &[u8] = include_bytes!("../../../fixtures/images/face-b.jpg");

fn row(v: Json) -> serde_json::Map<String, Json> {
    v.as_object().cloned().expect("object")
}

#[tokio::test]
async fn objects_outside_the_reserved_range_stay_byte_identical() {
    let (sim, prepared) = target::simulator(Model::IdFace).await.expect("simulator");
    let device = sim.device();
    let edges = [1, 989_999_999, 1_010_000_000, 2_000_000_000];
    for id in edges {
        device
            .seed_rows(
                "users",
                &[row(json!({"id": id, "name": format!("Site {id}"), "registration": format!("S-{id}")}))],
            )
            .expect("user");
        device
            .seed_rows("cards", &[row(json!({"value": 7_000 + id, "user_id": id}))])
            .expect("card");
    }
    device
        .seed_rows(
            "access_rules",
            &[row(
                json!({"id": 989_999_999, "name": "Site rule", "type": 1, "priority": 0}),
            )],
        )
        .expect("rule");
    device
        .seed_rows(
            "user_access_rules",
            &[row(
                json!({"user_id": 989_999_999, "access_rule_id": 989_999_999}),
            )],
        )
        .expect("user rule");
    device
        .set_user_image(1_010_000_000, false, 5, FACE_B)
        .expect("photo");
    let before = device_tables(device);
    let photo = device.user_image(1_010_000_000).expect("photo");
    let result = run_quietly(
        &select(catalogue(), &[], &[]),
        &prepared,
        &RunPolicy::permissive(),
    )
    .await;
    assert_eq!(result.summary().failed, 0);
    assert_eq!(
        device_tables(device).to_string(),
        before.to_string(),
        "byte-identical"
    );
    assert_eq!(device.user_image(1_010_000_000).expect("photo"), photo);
}

/// `acs-sim serve` on 127.0.0.1:0 with `args`, its environment extended by `envs`; its
/// URL, and its stdout after the banner.
pub(crate) fn serve(
    envs: &[(&str, &str)],
    args: &[&str],
    stderr: Stdio,
) -> (Child, String, BufReader<std::process::ChildStdout>) {
    let mut sim = Command::new(acs_sim())
        .envs(envs.iter().copied())
        .args(["serve", "--port", "0", "--time-scale", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("acs-sim starts");
    let mut out = BufReader::new(sim.stdout.take().expect("stdout"));
    let mut banner = String::new();
    out.read_line(&mut banner).expect("banner");
    let url = banner
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("url")
        .to_owned();
    (sim, url, out)
}

/// A logged-in client of a terminal served by `acs-sim`.
pub(crate) struct Terminal {
    /// The terminal's URL.
    pub(crate) url: String,
    session: String,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Terminal {
    pub(crate) fn login(url: &str, password: &str) -> Terminal {
        let http = reqwest::Client::new();
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let r: Json = rt
            .block_on(async {
                http.post(format!("{url}/login.fcgi"))
                    .json(&json!({"login": "admin", "password": password}))
                    .send()
                    .await?
                    .json()
                    .await
            })
            .expect("login");
        Terminal {
            url: url.to_owned(),
            session: r["session"].as_str().expect("session").to_owned(),
            http,
            rt,
        }
    }

    pub(crate) fn call(&self, command: &str, body: &Json) -> Json {
        self.rt.block_on(async {
            let r = self
                .http
                .post(format!(
                    "{}/{command}.fcgi?session={}",
                    self.url, self.session
                ))
                .json(body)
                .send()
                .await
                .expect("the terminal answers");
            assert!(r.status().is_success(), "{command}: {}", r.status());
            r.json().await.unwrap_or(Json::Null)
        })
    }

    /// Stores `jpeg` as the face photo of `user`.
    pub(crate) fn upload_photo(&self, user: i64, jpeg: &[u8]) -> Json {
        self.rt.block_on(async {
            let r = self
                .http
                .post(format!(
                    "{}/user_set_image.fcgi?session={}&user_id={user}&timestamp=1700000000&match=0",
                    self.url, self.session
                ))
                .header("Content-Type", "application/octet-stream")
                .body(jpeg.to_vec())
                .send()
                .await
                .expect("the terminal answers");
            r.json().await.unwrap_or(Json::Null)
        })
    }

    /// A POST of `body` to the simulator's control API (`/_sim/<what>`); whether it
    /// succeeded.
    pub(crate) fn control(&self, what: &str, body: &Json) -> bool {
        self.rt.block_on(async {
            self.http
                .post(format!("{}/_sim/{what}", self.url))
                .json(body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
    }

    /// The tables a run touches and the configuration it may change.
    fn state(&self) -> (Json, Json) {
        let mut tables = serde_json::Map::new();
        for t in [
            "users",
            "cards",
            "user_access_rules",
            "access_rules",
            "devices",
        ] {
            tables.insert(
                t.into(),
                self.call("load_objects", &json!({"object": t}))[t].clone(),
            );
        }
        let config = self.call(
            "get_configuration",
            &json!({"monitor": ["hostname", "port", "path"], "general": ["online", "local_identification"],
                    "online_client": ["server_id"]}),
        );
        (Json::Object(tables), config)
    }
}

#[test]
fn a_run_killed_mid_way_is_restored_by_the_next_invocation() {
    let (mut sim, url, _out) = serve(&[], &["--seed", "5"], Stdio::null());
    let t = Terminal::login(&url, "admin");
    t.call(
        "create_objects",
        &json!({"object": "users", "values": [{"id": 5, "name": "Site"}, {"id": 989_999_999, "name": "Edge"}]}),
    );
    t.call(
        "create_objects",
        &json!({"object": "cards", "values": [{"value": 55, "user_id": 5}]}),
    );
    // The site's own monitor: loopback, nothing listening.
    t.call(
        "set_configuration",
        &json!({"monitor": {"hostname": "127.0.0.1", "port": "9", "path": "site/notify"}}),
    );
    let before = t.state();
    let dir = temp_dir("killed");
    let journal = dir.join("restore.json");
    let mut run = Command::new(BIN)
        .args(["--target", &url, "--login", "admin", "--password", "admin"])
        .args(["--callback-addr", "127.0.0.1:0", "--only", "WORKFLOW-002"])
        .arg("--restore-journal")
        .arg(&journal)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("acs-conformance starts");
    // The case has pushed a reserved person to the terminal and pointed its monitor at the
    // core when it asks the operator to present the card: kill it there.
    let prompts = BufReader::new(run.stderr.take().expect("stderr"));
    let mut prompted = false;
    for line in prompts.lines() {
        if line.expect("line").starts_with(">>> ") {
            prompted = true;
            break;
        }
    }
    assert!(prompted, "the run reached the operator prompt");
    assert!(journal.exists(), "the journal is written before any change");
    let during = t.state();
    assert_ne!(during.1, before.1, "the run changed the configuration");
    run.kill().expect("SIGKILL");
    run.wait().expect("reaped");
    assert_eq!(t.state(), during, "nobody restored anything after SIGKILL");

    let out = Command::new(BIN)
        .args(["--target", &url, "--login", "admin", "--password", "admin"])
        .arg("--restore-journal")
        .arg(&journal)
        .arg("--restore-only")
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("restored the terminal"), "{text}");
    assert_eq!(t.state(), before, "configuration and objects as found");
    assert!(!journal.exists(), "the journal is gone once applied");
    sim.kill().ok();
    sim.wait().ok();
    std::fs::remove_dir_all(&dir).ok();
}

/// Reads everything under `dir` (reports, recordings) as bytes.
fn files_under(dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push((
                path.display().to_string(),
                std::fs::read(&path).expect("file"),
            ));
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_secret_or_photo_in_any_output_of_a_full_run() {
    const PASSWORD: &str = "Pw-9f3Kq-unusual-secret";
    const SEED: u64 = 11;
    let dir = temp_dir("secrets");
    let sim_log = std::fs::File::create(dir.join("acs-sim.log")).expect("log file");
    let (mut sim, url, mut sim_out) = serve(
        &[("RUST_LOG", "debug")],
        &["--seed", "11", "--password", PASSWORD],
        Stdio::from(sim_log),
    );
    // Every token this terminal can have issued: its sessions come from a seeded generator.
    let mut sessions = acs_simulator::device::sessions::Sessions::new(SEED);
    let tokens: Vec<String> = (0..500).map(|_| sessions.open(0)).collect();
    let mine = Terminal::login(&url, PASSWORD);
    assert_eq!(mine.session, tokens[0], "the token sequence is predicted");

    let reports = dir.join("reports");
    std::fs::create_dir_all(&reports).expect("dir");
    let out = Command::new(BIN)
        .env("RUST_LOG", "debug")
        .args(["--target", &url, "--login", "admin", "--password", PASSWORD])
        .args([
            "--callback-addr",
            "127.0.0.1:0",
            "--unattended",
            "--allow-destructive",
        ])
        .arg("--json")
        .arg(reports.join("run.json"))
        .arg("--junit")
        .arg(reports.join("run.xml"))
        .arg("--html")
        .arg(reports.join("run.html"))
        .arg("--record")
        .arg(reports.join("recording"))
        .arg("--restore-journal")
        .arg(dir.join("restore.json"))
        .output()
        .expect("acs-conformance runs");
    assert!(
        matches!(out.status.code(), Some(0 | 1 | 3)),
        "the run was carried out: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let journal = mine
        .rt
        .block_on(async {
            reqwest::get(format!("{url}/_sim/journal"))
                .await?
                .bytes()
                .await
        })
        .expect("journal")
        .to_vec();
    sim.kill().ok();
    sim.wait().ok();
    let mut sim_stdout = Vec::new();
    sim_out.read_to_end(&mut sim_stdout).ok();

    let mut outputs = vec![
        ("acs-conformance stdout".to_owned(), out.stdout),
        ("acs-conformance stderr (debug log)".to_owned(), out.stderr),
        ("acs-sim stdout".to_owned(), sim_stdout),
        ("acs-sim journal".to_owned(), journal),
    ];
    files_under(&dir, &mut outputs);
    let total: usize = outputs.iter().map(|(_, b)| b.len()).sum();
    assert!(
        total > 10_000,
        "the run produced output to search ({total} bytes)"
    );
    assert!(
        outputs
            .iter()
            .any(|(name, b)| name.ends_with("acs-sim.log") && !b.is_empty()),
        "the simulator logged at debug level"
    );

    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut secrets: Vec<(String, Vec<u8>)> = vec![("password".into(), PASSWORD.into())];
    for (i, token) in tokens.iter().enumerate() {
        secrets.push((format!("session token #{i}"), token.clone().into_bytes()));
        let encoded: String = form_urlencoded_byte_serialize(token);
        if encoded != *token {
            secrets.push((
                format!("session token #{i} (encoded)"),
                encoded.into_bytes(),
            ));
        }
    }
    for (name, photo) in [("face-a.jpg", FACE_A), ("face-b.jpg", FACE_B)] {
        let encoded = b64(photo);
        // A stretch from the middle: any dump of the photo, whole or in part, contains it.
        let mid = (encoded.len() / 2) / 4 * 4;
        secrets.push((
            format!("{name} as base64"),
            encoded.as_bytes()[mid..mid + 64].to_vec(),
        ));
        let raw = photo.len() / 2;
        secrets.push((format!("{name} bytes"), photo[raw..raw + 64].to_vec()));
    }
    let mut leaks = Vec::new();
    for (what, secret) in &secrets {
        for (name, bytes) in &outputs {
            if contains(bytes, secret) {
                leaks.push(format!("{what} in {name}"));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets in the output: {leaks:#?}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Percent-encodes a token as a query value (`/` → `%2F`).
fn form_urlencoded_byte_serialize(value: &str) -> String {
    value.replace('/', "%2F")
}
