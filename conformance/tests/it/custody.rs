//! The suite on a customer's terminal: the CLI against a separately started `acs-sim`
//! holding "customer" users, cards, rules and photos, reached only through its URL.
//!
//! - objects in the suite's way (in the reserved range, or holding a card value the suite
//!   uses) make every run refuse to start, `--dry-run` list them, `--reclaim-reserved`
//!   refuse too – and the terminal stays exactly as it was;
//! - customer objects out of the way survive a normal run, a Ctrl-C mid-run (INCOMPLETE,
//!   exit 3, every report says so, the clean-up is complete), a SIGKILL followed by the
//!   next run (the restore journal removes exactly what the killed run created), and a
//!   SIGKILL whose journal is lost (the next run refuses until `--reclaim-reserved`);
//! - a second run against a terminal another run holds refuses with the first one's id;
//! - an operator who answers Enter without presenting anything gets no PASS for LOGS-* and
//!   WORKFLOW-002, though the terminal holds matching access logs of an earlier
//!   presentation;
//! - a `--profile` that contradicts the model the terminal reports is refused unless
//!   `--force-profile`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};

use serde_json::{Value as Json, json};

use crate::cli::{BIN, temp_dir};
use crate::safety::{Terminal, serve};

/// A card value the suite uses (123,45678 + 51: LOGS-001's).
const SUITE_CARD: u64 = 528_281_023_086 + 51;

/// Everything a run could touch: every table, the photos, the configuration.
fn snapshot(t: &Terminal) -> Json {
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
        all.insert(
            table.into(),
            t.call("load_objects", &json!({"object": table}))[table].clone(),
        );
    }
    all.insert("photos".into(), t.call("user_list_images", &json!({})));
    all.insert(
        "configuration".into(),
        t.call(
            "get_configuration",
            &json!({"monitor": ["hostname", "port", "path"], "general": ["online", "local_identification"],
                    "online_client": ["server_id"]}),
        ),
    );
    Json::Object(all)
}

/// The customer's own objects: two users with cards (values next to the suite's but not
/// its own), a PIN, a rule with its time zone, a photo, and a monitor of its own.
fn seed_customer(t: &Terminal) {
    t.call(
        "create_objects",
        &json!({"object": "users", "values": [
            {"id": 5, "name": "Alice", "registration": "A-5"},
            {"id": 6, "name": "Bob", "registration": "B-6"},
            {"id": 989_999_999, "name": "Edge", "registration": "E-1"},
            {"id": 1_010_000_000, "name": "Above", "registration": "E-2"}]}),
    );
    t.call(
        "create_objects",
        &json!({"object": "cards", "values": [
            {"value": 528_281_023_085_u64, "user_id": 5},
            {"value": 528_281_024_086_u64, "user_id": 6},
            {"value": 77, "user_id": 989_999_999}]}),
    );
    t.call(
        "create_objects",
        &json!({"object": "pins", "values": [{"value": "4321", "user_id": 5}]}),
    );
    t.call(
        "create_objects",
        &json!({"object": "time_zones", "values": [{"id": 7, "name": "Office hours"}]}),
    );
    t.call(
        "create_objects",
        &json!({"object": "access_rules", "values": [{"id": 7, "name": "Staff", "type": 1, "priority": 0}]}),
    );
    t.call(
        "create_objects",
        &json!({"object": "access_rule_time_zones", "values": [{"access_rule_id": 7, "time_zone_id": 7}]}),
    );
    t.call(
        "create_objects",
        &json!({"object": "user_access_rules", "values": [{"user_id": 5, "access_rule_id": 7}, {"user_id": 6, "access_rule_id": 7}]}),
    );
    t.call(
        "set_configuration",
        &json!({"monitor": {"hostname": "127.0.0.1", "port": "9", "path": "site/notify"}}),
    );
}

/// The objects in the suite's way: a user (with a card) inside the reserved range, a rule
/// inside it, and a customer card holding a value the suite uses.
fn seed_in_the_way(t: &Terminal) {
    t.call(
        "create_objects",
        &json!({"object": "users", "values": [{"id": 990_000_777, "name": "Carol", "registration": "C-777"}]}),
    );
    t.call(
        "create_objects",
        &json!({"object": "cards", "values": [
            {"value": 12_345, "user_id": 990_000_777},
            {"value": SUITE_CARD, "user_id": 6}]}),
    );
    t.call(
        "create_objects",
        &json!({"object": "access_rules", "values": [{"id": 990_000_500, "name": "Night shift", "type": 1, "priority": 0}]}),
    );
}

fn conformance(url: &str, journal: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["--target", url, "--login", "admin", "--password", "admin"])
        .args(["--callback-addr", "127.0.0.1:0", "--operator-timeout", "30"])
        .arg("--restore-journal")
        .arg(journal)
        .args(extra);
    cmd
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits for the run's first operator prompt on its stderr; answers the stderr reader.
fn wait_for_prompt(run: &mut Child) -> BufReader<ChildStderr> {
    let mut prompts = BufReader::new(run.stderr.take().expect("stderr"));
    let mut line = String::new();
    loop {
        line.clear();
        let n = prompts.read_line(&mut line).expect("line");
        assert!(n > 0, "the run ended before it prompted");
        if line.starts_with(">>> ") {
            return prompts;
        }
    }
}

/// Starts `cmd` with its standard input open and waits for its first operator prompt.
fn at_first_prompt(mut cmd: Command, stdout: Stdio) -> (Child, BufReader<ChildStderr>) {
    let mut run = cmd
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = wait_for_prompt(&mut run);
    (run, stderr)
}

/// A separately started `acs-sim` with a logged-in client and a scratch directory; killed
/// and removed when dropped (also when an assertion fails).
struct Site {
    sim: Child,
    url: String,
    t: Terminal,
    dir: std::path::PathBuf,
    _out: BufReader<std::process::ChildStdout>,
}

impl Site {
    /// `acs-sim serve` with `args` (each test's own seed keeps their directories apart).
    fn start(args: &[&str]) -> Site {
        let (sim, url, out) = serve(&[], args, Stdio::null());
        let t = Terminal::login(&url, "admin");
        Site {
            sim,
            t,
            dir: temp_dir(&format!("custody-{}", args.join("-"))),
            url,
            _out: out,
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.sim.kill().ok();
        self.sim.wait().ok();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn signal(run: &Child, name: &str) {
    let status = Command::new("kill")
        .args([name, &run.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
fn objects_in_the_suites_way_make_every_run_refuse_and_stay_untouched() {
    let site = Site::start(&["--seed", "21"]);
    let (url, t) = (site.url.clone(), &site.t);
    seed_customer(t);
    seed_in_the_way(t);
    let before = snapshot(t);
    let dir = site.dir.clone();
    let journal = dir.join("restore.json");

    let dry = conformance(&url, &journal, &["--dry-run"])
        .output()
        .expect("runs");
    let shown = text(&dry);
    assert_eq!(dry.status.code(), Some(0), "{shown}");
    for item in [
        "user 990000777 'Carol'",
        &format!("card {SUITE_CARD} of user 6 (a card value the suite uses)"),
        "access_rules 990000500 'Night shift'",
    ] {
        assert!(shown.contains(item), "the dry run lists {item}: {shown}");
    }
    assert!(shown.contains("would refuse to start"), "{shown}");
    assert!(
        shown.contains("users 990000001"),
        "it lists what a run would create: {shown}"
    );
    assert_eq!(snapshot(t), before, "a dry run changes nothing");

    for extra in [
        &["--unattended"][..],
        &["--unattended", "--reclaim-reserved", "--allow-destructive"],
    ] {
        let out = conformance(&url, &journal, extra).output().expect("runs");
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {shown}");
        assert!(shown.contains("did not create"), "{shown}");
        assert!(shown.contains("user 990000777 'Carol'"), "{shown}");
        assert!(shown.contains("a card value the suite uses"), "{shown}");
        assert_eq!(snapshot(t), before, "{extra:?}: nothing changed");
        assert!(!journal.exists(), "a refused run leaves no journal");
    }
}

#[test]
fn customer_objects_survive_a_run_an_interrupt_a_kill_and_a_lost_journal() {
    let site = Site::start(&["--seed", "22"]);
    let (url, t) = (site.url.clone(), &site.t);
    seed_customer(t);
    let photo = include_bytes!("../../../fixtures/images/face-b.jpg");
    let stored = t.upload_photo(5, photo);
    assert_eq!(
        stored["success"], true,
        "the customer's photo is stored: {stored}"
    );
    let before = snapshot(t);
    let dir = site.dir.clone();
    let journal = dir.join("restore.json");
    let reports = |name: &str| {
        [
            "--json".to_owned(),
            dir.join(format!("{name}.json")).display().to_string(),
            "--junit".to_owned(),
            dir.join(format!("{name}.xml")).display().to_string(),
            "--html".to_owned(),
            dir.join(format!("{name}.html")).display().to_string(),
        ]
    };

    // A whole run, nobody at the terminal: every case that needs no person runs.
    let args = reports("normal");
    let mut extra: Vec<&str> = vec!["--unattended", "--allow-destructive"];
    extra.extend(args.iter().map(String::as_str));
    let out = conformance(&url, &journal, &extra).output().expect("runs");
    let shown = text(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "not run cases make it INCOMPLETE: {shown}"
    );
    assert!(
        shown.contains("Result: INCOMPLETE (exit code 3)"),
        "{shown}"
    );
    assert!(shown.contains("Clean-up: complete"), "{shown}");
    let report: Json =
        serde_json::from_slice(&std::fs::read(dir.join("normal.json")).expect("json"))
            .expect("JSON");
    assert!(
        report["summary"]["passed"].as_u64().unwrap_or(0) > 40,
        "{}",
        report["summary"]
    );
    assert_eq!(report["run"]["cleanup"]["status"], "complete");
    assert_eq!(
        snapshot(t),
        before,
        "a normal run leaves the customer's terminal as it was"
    );
    assert!(
        !journal.exists(),
        "the journal is gone after a complete clean-up"
    );

    // Ctrl-C at the first physical step: INCOMPLETE in every report, cleaned up.
    let args = reports("interrupted");
    let (run, _stderr) = at_first_prompt(
        conformance(
            &url,
            &journal,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        ),
        Stdio::piped(),
    );
    assert_ne!(snapshot(t), before, "the run had created its objects");
    signal(&run, "-INT");
    let out = run.wait_with_output().expect("ends");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(3), "{shown}");
    assert!(shown.contains("Result: INCOMPLETE"), "{shown}");
    assert!(shown.contains("Interrupted"), "{shown}");
    let report: Json =
        serde_json::from_slice(&std::fs::read(dir.join("interrupted.json")).expect("json"))
            .expect("JSON");
    assert_eq!(report["summary"]["result"], "INCOMPLETE");
    assert_eq!(report["summary"]["exit_code"], 3);
    assert_eq!(report["run"]["interrupted"], true);
    assert_eq!(report["run"]["cleanup"]["status"], "complete");
    assert!(
        report["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .any(|c| c["reason"]["kind"] == "interrupted"),
        "interrupted cases say so"
    );
    let xml = std::fs::read_to_string(dir.join("interrupted.xml")).expect("xml");
    assert!(
        xml.contains("RUN result: INCOMPLETE") && xml.contains("run_incomplete"),
        "{xml}"
    );
    assert!(!xml.contains(r#"errors="0""#), "JUnit is not green: {xml}");
    let html = std::fs::read_to_string(dir.join("interrupted.html")).expect("html");
    assert!(html.contains(">INCOMPLETE</strong>") && html.contains("not a sign-off"));
    assert_eq!(snapshot(t), before, "Ctrl-C cleans up");

    // SIGKILL at the first physical step; the next run undoes it from the journal.
    let (mut run, _stderr) = at_first_prompt(conformance(&url, &journal, &[]), Stdio::null());
    run.kill().expect("SIGKILL");
    run.wait().expect("reaped");
    assert!(
        journal.exists(),
        "the killed run's journal names what it created"
    );
    assert_ne!(snapshot(t), before, "nobody cleaned up after SIGKILL");
    let out = conformance(&url, &journal, &["--unattended", "--only", "SESSION"])
        .output()
        .expect("runs");
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("restored the terminal as an interrupted run left it"),
        "{shown}"
    );
    assert_eq!(
        snapshot(t),
        before,
        "the next run removed exactly what the killed one created"
    );

    // SIGKILL, and the journal is lost (another laptop): the next run refuses until the
    // leftovers are reclaimed on purpose.
    let (mut run, _stderr) = at_first_prompt(conformance(&url, &journal, &[]), Stdio::null());
    run.kill().expect("SIGKILL");
    run.wait().expect("reaped");
    std::fs::remove_file(&journal).expect("journal removed");
    let left = snapshot(t);
    let out = conformance(&url, &journal, &["--unattended", "--only", "SESSION"])
        .output()
        .expect("runs");
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(shown.contains("--reclaim-reserved"), "{shown}");
    assert!(
        shown.contains("in use by another conformance run"),
        "the killed run's lock has not expired yet: {shown}"
    );
    assert_eq!(snapshot(t), left, "refusing changes nothing");
    // Once the lock has expired, what is left is recognised by the suite's marker.
    t.call(
        "modify_objects",
        &json!({"object": "users", "values": {"name": "acs-conformance dead 1 2"},
                "where": {"users": {"id": 1_009_999_999}}}),
    );
    let left = snapshot(t);
    let out = conformance(&url, &journal, &["--unattended", "--only", "SESSION"])
        .output()
        .expect("runs");
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("an earlier conformance run left objects"),
        "{shown}"
    );
    assert!(
        shown.contains("users 99000"),
        "it lists the leftovers: {shown}"
    );
    assert_eq!(snapshot(t), left, "refusing changes nothing");
    let out = conformance(
        &url,
        &journal,
        &["--unattended", "--only", "SESSION", "--reclaim-reserved"],
    )
    .output()
    .expect("runs");
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert_eq!(
        snapshot(t),
        before,
        "reclaiming removed the suite's leftovers only"
    );
}

#[test]
fn a_second_run_against_a_held_terminal_refuses_with_the_first_ones_id() {
    let site = Site::start(&["--seed", "23"]);
    let (url, t) = (site.url.clone(), &site.t);
    seed_customer(t);
    let before = snapshot(t);
    let dir = site.dir.clone();
    let (mut first, _stderr) = at_first_prompt(
        conformance(
            &url,
            &dir.join("first.json"),
            &["--only", "SESSION", "--only", "LOGS-001"],
        ),
        Stdio::piped(),
    );
    let out = conformance(
        &url,
        &dir.join("second.json"),
        &["--unattended", "--only", "SESSION"],
    )
    .output()
    .expect("runs");
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("in use by another conformance run ("),
        "{shown}"
    );
    assert!(
        shown.contains("started 20"),
        "the first run's start time: {shown}"
    );
    writeln!(first.stdin.as_mut().expect("stdin"), "skip").expect("answer");
    let out = first.wait_with_output().expect("ends");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        snapshot(t),
        before,
        "the first run cleaned up, the second touched nothing"
    );
}

#[test]
fn an_operator_who_presents_nothing_gets_no_pass_from_stale_logs() {
    let site = Site::start(&["--seed", "24"]);
    let (url, t) = (site.url.clone(), &site.t);
    // An earlier presentation of every card the LOGS cases use: rows a careless check
    // would take for this run's.
    for n in [51_u64, 52, 777, 102] {
        assert!(
            t.control("present", &json!({"card": 528_281_023_086_u64 + n})),
            "presented"
        );
    }
    let logs = t.call("load_objects", &json!({"object": "access_logs"}));
    assert!(
        logs["access_logs"].as_array().is_some_and(|l| l.len() >= 3),
        "{logs}"
    );
    let dir = site.dir.clone();
    let mut run = conformance(
        &url,
        &dir.join("restore.json"),
        &[
            "--only",
            "LOGS",
            "--only",
            "WORKFLOW-002",
            "--evidence-timeout",
            "1",
            "--json",
        ],
    )
    .arg(dir.join("run.json"))
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("starts");
    let mut answers = run.stdin.take().expect("stdin");
    for _ in 0..4 {
        writeln!(answers).expect("Enter");
    }
    let out = run.wait_with_output().expect("ends");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "nothing ran, so nothing was shown: {shown}"
    );
    let report: Json =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).expect("json")).expect("JSON");
    let cases = report["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 4);
    for case in cases {
        assert_eq!(case["verdict"], "not_run", "{case}");
        assert_eq!(case["reason"]["kind"], "no_fresh_evidence", "{case}");
    }
}

#[test]
fn a_profile_that_contradicts_the_terminals_model_is_refused_unless_forced() {
    let site = Site::start(&["--seed", "25", "--model", "idaccess"]);
    let url = site.url.clone();
    let dir = site.dir.clone();
    let journal = dir.join("restore.json");
    let out = conformance(
        &url,
        &journal,
        &["--unattended", "--only", "SESSION", "--profile", "idface"],
    )
    .output()
    .expect("runs");
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("reports the model iDAccess, but --profile idface"),
        "{shown}"
    );
    assert!(shown.contains("--force-profile"), "{shown}");

    let out = conformance(
        &url,
        &journal,
        &["--unattended", "--only", "SESSION", "--json"],
    )
    .arg(dir.join("detected.json"))
    .output()
    .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Json =
        serde_json::from_slice(&std::fs::read(dir.join("detected.json")).expect("json"))
            .expect("JSON");
    assert_eq!(
        report["run"]["target"]["profile"], "idaccess",
        "the terminal's own model"
    );

    let out = conformance(
        &url,
        &journal,
        &[
            "--unattended",
            "--only",
            "SESSION",
            "--profile",
            "idface",
            "--force-profile",
        ],
    )
    .output()
    .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "forced on purpose: {}",
        text(&out)
    );
}
