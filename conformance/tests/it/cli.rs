//! The `acs-conformance` binary end to end: a run with every report, the catalogue
//! listing, a bad selection, a real-terminal run against a separately started `acs-sim`
//! reached only through its URL with the operator's prompts answered by a script, and a
//! clean-up that leaves a device exactly as it was found.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use acs_conformance::catalogue::{Case, catalogue, select};
use acs_conformance::custody::hold::TakeOptions;
use acs_conformance::outcome::Run;
use acs_conformance::restore::RestoreJournal;
use acs_conformance::runner::{Quiet, RunPolicy, run};
use acs_conformance::target::{self, Prepared};
use acs_simulator::Model;
use serde_json::{Value as Json, json};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_acs-conformance");

pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("acs-conformance-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn a_run_writes_every_report_and_exits_0() {
    let dir = temp_dir("reports");
    let out = Command::new(BIN)
        .args(["--only", "SESSION", "--only", "CONFIG", "--json"])
        .arg(dir.join("run.json"))
        .arg("--junit")
        .arg(dir.join("run.xml"))
        .arg("--html")
        .arg(dir.join("run.html"))
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("SESSION-001"), "{stdout}");
    let report: Json =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).expect("json")).expect("JSON");
    assert_eq!(
        report.to_string().matches("\"verdict\":\"pass\"").count(),
        14,
        "{report}"
    );
    let xml = std::fs::read_to_string(dir.join("run.xml")).expect("xml");
    assert!(xml.contains("<testsuite") && xml.contains("SESSION-001"));
    let html = std::fs::read_to_string(dir.join("run.html")).expect("html");
    assert!(html.contains("CONFIG-004"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn list_prints_the_catalogue_and_a_bad_selection_exits_2() {
    let out = Command::new(BIN).arg("list").output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for case in catalogue() {
        assert!(text.contains(case.info.id), "{} listed", case.info.id);
    }
    let out = Command::new(BIN)
        .args(["--only", "NO-SUCH-CASE"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .args([
            "--target",
            "http://127.0.0.1:9",
            "--unattended",
            "--only",
            "SESSION-001",
        ])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unreachable terminal cannot be tested"
    );
}

/// Finds the `acs-sim` binary next to this test's profile directory, building it only
/// when it is missing or older than the simulator's sources. `cargo test --workspace`
/// has built it already, with the workspace's features; building it again here as a
/// single package would compile it anew with other features (half a minute of a CI
/// machine, in the middle of the other tests).
pub(crate) fn acs_sim() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test binary");
            let profile = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("profile dir");
            let binary = profile.join("acs-sim");
            if !up_to_date(&binary) {
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                let status = Command::new(cargo)
                    .args([
                        "build",
                        "--quiet",
                        "-p",
                        "acs-simulator",
                        "--bin",
                        "acs-sim",
                    ])
                    .status()
                    .expect("cargo runs");
                assert!(status.success());
            }
            binary
        })
        .clone()
}

/// Whether `binary` exists and is newer than every source it is built from (the
/// simulator's files, the manifests and the lock file).
fn up_to_date(binary: &std::path::Path) -> bool {
    fn newest(path: &std::path::Path) -> std::time::SystemTime {
        let Ok(meta) = std::fs::metadata(path) else {
            return std::time::SystemTime::UNIX_EPOCH;
        };
        let own = meta.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH);
        if !meta.is_dir() {
            return own;
        }
        std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| newest(&entry.path()))
            .fold(own, std::cmp::max)
    }
    let Ok(built) = std::fs::metadata(binary).and_then(|m| m.modified()) else {
        return false;
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    [
        "simulator/src",
        "simulator/Cargo.toml",
        "Cargo.toml",
        "Cargo.lock",
    ]
    .iter()
    .all(|source| newest(&root.join(source)) <= built)
}

#[test]
fn a_real_terminal_by_url_with_a_scripted_operator() {
    let mut sim = Command::new(acs_sim())
        .args(["serve", "--port", "0", "--time-scale", "0", "--seed", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("acs-sim starts");
    let mut banner = String::new();
    BufReader::new(sim.stdout.take().expect("stdout"))
        .read_line(&mut banner)
        .expect("banner");
    let url = banner
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("url")
        .to_owned();
    let dir = temp_dir("remote");
    let mut run = Command::new(BIN)
        .args(["--target", &url, "--login", "admin", "--password", "admin"])
        .args(["--callback-addr", "127.0.0.1:0", "--operator-timeout", "20"])
        .arg("--restore-journal")
        .arg(dir.join("restore.json"))
        .args([
            "--only",
            "SESSION",
            "--only",
            "LOGS",
            "--only",
            "ENROLL-001",
            "--only",
            "WORKFLOW-002",
        ])
        .arg("--json")
        .arg(dir.join("run.json"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("acs-conformance starts");
    let mut answers = run.stdin.take().expect("stdin");
    let prompts = BufReader::new(run.stderr.take().expect("stderr"));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let http = reqwest::Client::new();
    let mut prompted = 0;
    let mut log = Vec::new();
    for line in prompts.lines() {
        let line = line.expect("line");
        let Some(prompt) = line.strip_prefix(">>> ") else {
            log.push(line);
            continue;
        };
        prompted += 1;
        // Perform the step through the simulator's control API, as a person would at the
        // device, then answer.
        let value: u64 = prompt
            .split("(value ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|v| v.parse().ok())
            .expect("a card prompt");
        let mut body = json!({"card": value});
        if prompt.contains("enrollment") {
            body["queue"] = json!(true);
        }
        let presented = runtime
            .block_on(http.post(format!("{url}/_sim/present")).json(&body).send())
            .expect("the simulator answers");
        assert!(presented.status().is_success());
        writeln!(answers, "done").expect("answer");
    }
    let status = run.wait().expect("exits");
    sim.kill().ok();
    sim.wait().ok();
    assert!(prompted >= 5, "the operator was prompted ({prompted})");
    let text = std::fs::read_to_string(dir.join("run.json")).unwrap_or_default();
    assert_eq!(
        status.code(),
        Some(0),
        "stderr:\n{}\nreport: {text}",
        log.join("\n")
    );
    let report: Json = serde_json::from_str(&text).expect("JSON");
    let text = report.to_string();
    assert!(!text.contains("\"verdict\":\"not_run\""), "{text}");
    assert!(!text.contains("\"verdict\":\"fail\""), "{text}");
    assert!(text.contains("WORKFLOW-002"));
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs `cases` on a prepared target under `policy`, with no progress output.
pub(crate) async fn run_quietly(cases: &[Case], prepared: &Prepared, policy: &RunPolicy) -> Run {
    let options = TakeOptions {
        journal: RestoreJournal::in_memory(prepared.ctx.base_url()),
        reclaim: false,
        recorder: None,
    };
    run(cases, prepared, "t".into(), &mut Quiet, policy, options)
        .await
        .expect("the run may start")
}

pub(crate) fn device_tables(device: &acs_simulator::Device) -> Json {
    let mut all = serde_json::Map::new();
    for table in [
        "users",
        "cards",
        "pins",
        "qrcodes",
        "templates",
        "user_access_rules",
        "access_rules",
        "access_rule_time_zones",
        "time_zones",
        "time_spans",
        "holidays",
        "devices",
    ] {
        all.insert(table.into(), json!(device.rows(table).expect(table)));
    }
    all.insert("images".into(), json!(device.list_images()));
    Json::Object(all)
}

#[tokio::test]
async fn clean_up_leaves_the_device_as_it_was_found() {
    let (sim, prepared) = target::simulator(Model::IdFace).await.expect("simulator");
    let device = sim.device();
    // Something of the site's own that the run must not touch.
    let row = json!({"id": 5, "name": "Site user", "registration": "S-5"});
    device
        .seed_rows("users", &[row.as_object().cloned().expect("object")])
        .expect("seeded");
    let config = json!({"monitor": ["hostname", "port", "path"], "general": ["online"]});
    let before_tables = device_tables(device);
    let before_config = prepared
        .ctx
        .driver()
        .get_configuration(config.clone())
        .await
        .expect("config");
    let cases = select(catalogue(), &[], &[]);
    let result = run_quietly(&cases, &prepared, &RunPolicy::permissive()).await;
    assert_eq!(result.summary().failed, 0);
    assert_eq!(device_tables(device), before_tables);
    assert_eq!(
        prepared
            .ctx
            .driver()
            .get_configuration(config)
            .await
            .expect("config"),
        before_config
    );
}

#[test]
fn a_recorded_run_replays_against_the_simulator_and_differences_are_listed() {
    let dir = temp_dir("record");
    let out = Command::new(BIN)
        .args([
            "--only", "SESSION", "--only", "OBJECTS", "--only", "IMAGES", "--record",
        ])
        .arg(&dir)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let recording = std::fs::read_to_string(dir.join("exchanges.ndjson")).expect("recording");
    assert!(recording.lines().count() > 50, "every exchange is kept");
    assert!(
        !recording.contains("\"password\":\"admin\""),
        "passwords are masked"
    );
    let replay = Command::new(BIN)
        .arg("replay")
        .arg(&dir)
        .output()
        .expect("replays");
    let text = String::from_utf8_lossy(&replay.stdout);
    assert_eq!(replay.status.code(), Some(0), "{text}");
    assert!(text.contains("0 answered differently"), "{text}");

    // A terminal that answered otherwise is reported.
    let changed: Vec<String> = recording
        .lines()
        .map(|line| {
            if line.contains("\"path\":\"/load_objects.fcgi\"") && line.contains("\"status\":200") {
                line.replacen("\"status\":200", "\"status\":400", 1)
            } else {
                line.to_owned()
            }
        })
        .collect();
    std::fs::write(dir.join("exchanges.ndjson"), changed.join("\n") + "\n").expect("write");
    let replay = Command::new(BIN)
        .arg("replay")
        .arg(&dir)
        .output()
        .expect("replays");
    let text = String::from_utf8_lossy(&replay.stdout);
    assert_eq!(replay.status.code(), Some(1), "{text}");
    assert!(
        text.contains("DIFF")
            && text
                .contains("/load_objects.fcgi: status 400 on the terminal, 200 on the simulator"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_dry_run_lists_what_would_change_and_touches_nothing() {
    let out = Command::new(BIN)
        .args(["--target", "http://127.0.0.1:9", "--dry-run"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("990000000..1010000000"), "{text}");
    assert!(
        text.contains("CONFIG-002") && text.contains("--allow-destructive"),
        "{text}"
    );
}

#[tokio::test]
async fn cases_that_change_the_configuration_need_permission() {
    let (_sim, prepared) = target::simulator(Model::IdFace).await.expect("simulator");
    let cases = select(catalogue(), &["CONFIG-002".to_owned()], &[]);
    let careful = RunPolicy {
        allow_changes: false,
        ..RunPolicy::permissive()
    };
    let result = run_quietly(&cases, &prepared, &careful).await;
    assert_eq!(
        result.results[0].verdict,
        acs_conformance::verdict::Verdict::NotRun
    );
    assert_eq!(
        result.results[0].reason.as_ref().map(|r| r.kind()),
        Some("flag"),
        "the reason is the missing flag, not a capability"
    );
    assert!(
        result.results[0]
            .expected
            .as_deref()
            .is_some_and(|e| e.contains("--allow-destructive"))
    );
    assert_eq!(
        result.overall(),
        acs_conformance::verdict::Overall::NotCarriedOut,
        "nothing ran"
    );
    let (stop_tx, stop) = tokio::sync::watch::channel(true);
    let stopped = RunPolicy {
        allow_changes: true,
        stop,
    };
    let result = run_quietly(&cases, &prepared, &stopped).await;
    assert_eq!(
        result.results[0].verdict,
        acs_conformance::verdict::Verdict::NotRun,
        "an interrupted run runs nothing more"
    );
    drop(stop_tx);
}

#[test]
fn a_fleet_run_covers_every_terminal() {
    let out = Command::new(BIN)
        .args([
            "--fleet",
            "3",
            "--only",
            "SESSION-001",
            "--only",
            "WORKFLOW-001",
        ])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for i in 0..3 {
        assert!(text.contains(&format!("fleet terminal {i}")), "{text}");
    }
    assert!(text.contains("6 passed"), "{text}");
}

#[test]
fn a_replay_points_every_callback_at_itself_never_at_the_recorded_hosts() {
    let dir = temp_dir("replay-hosts");
    let lines = [
        json!({"seq": 1, "method": "POST", "path": "/login.fcgi", "query": "", "request_type": "application/json",
               "request": "{\"login\":\"admin\",\"password\":\"***\"}", "status": 200,
               "response_type": "application/json", "response": "{\"session\":\"***\"}"}),
        json!({"seq": 2, "method": "POST", "path": "/set_configuration.fcgi", "query": "session=***",
               "request_type": "application/json",
               "request": "{\"monitor\":{\"hostname\":\"203.0.113.7\",\"port\":\"80\",\"path\":\"api/notifications\"}}",
               "status": 200, "response_type": "application/json", "response": "{}"}),
        json!({"seq": 3, "method": "POST", "path": "/create_objects.fcgi", "query": "session=***",
               "request_type": "application/json",
               "request": "{\"object\":\"devices\",\"values\":[{\"id\":1000000000,\"name\":\"acs-core\",\"ip\":\"203.0.113.7:8701\",\"public_key\":\"\"}]}",
               "status": 200, "response_type": "application/json", "response": "{\"ids\":[1000000000]}"}),
        json!({"seq": 4, "method": "POST", "path": "/create_objects.fcgi", "query": "session=***",
               "request_type": "application/json",
               "request": "{\"object\":\"users\",\"values\":[{\"id\":990000001,\"name\":\"x\",\"registration\":\"CF-1\"}]}",
               "status": 200, "response_type": "application/json", "response": "{\"ids\":[990000001]}"}),
        json!({"seq": 5, "method": "POST", "path": "/remote_enroll.fcgi", "query": "session=***",
               "request_type": "application/json",
               "request": "{\"type\":\"face\",\"user_id\":990000001,\"save\":false,\"sync\":false,\"auto\":true,\"countdown\":1}",
               "status": 200, "response_type": "application/json", "response": "{}"}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("exchanges.ndjson"), text).expect("recording");
    let journal = dir.join("journal.json");
    let out = Command::new(BIN)
        .arg("replay")
        .arg(&dir)
        .arg("--journal")
        .arg(&journal)
        .output()
        .expect("replays");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.code().is_some(), "{shown}");
    assert!(
        shown.contains("callbacks went to the replay's own sink at 127.0.0.1:"),
        "{shown}"
    );
    let journal = std::fs::read_to_string(&journal).expect("journal");
    assert!(
        journal.contains("set_configuration"),
        "the journal holds the replay: {journal}"
    );
    assert!(
        !journal.contains("203.0.113.7"),
        "no request or callback names the recorded host: {journal}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
