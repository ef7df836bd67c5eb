//! Secrets stay secret: `GET /_sim/journal` shows no PIN, password or session token –
//! whether they travelled in requests, replies, the query string or callbacks – and the
//! state file is private to its owner (0600 on Unix) and holds neither the web password in
//! clear nor any session token.

use std::path::PathBuf;

use acs_simulator::{CallbackSink, Simulator, TimeMode};
use serde_json::{Value as Json, json};
use tokio::net::TcpListener;

use crate::support::pct;

/// A fresh directory for one test's state file.
fn state_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("acs-sim-secrets-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("device.json")
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn post(&self, command: &str, session: &str, body: Json) -> Json {
        let r = self
            .http
            .post(format!(
                "{}/{command}.fcgi?session={}",
                self.base,
                pct(session)
            ))
            .json(&body)
            .send()
            .await
            .expect("request");
        assert!(r.status().is_success(), "{command}: {}", r.status());
        let text = r.text().await.expect("body");
        serde_json::from_str(&text).unwrap_or(Json::Null)
    }

    async fn login(&self, login: &str, password: &str) -> String {
        let r: Json = self
            .http
            .post(format!("{}/login.fcgi", self.base))
            .json(&json!({"login": login, "password": password}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        r["session"].as_str().expect("session").to_owned()
    }

    async fn form_login(&self, login: &str, password: &str) -> String {
        let r: Json = self
            .http
            .post(format!("{}/login.fcgi", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("login={login}&password={}", pct(password)))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        r["session"].as_str().expect("session").to_owned()
    }
}

#[tokio::test]
async fn the_journal_and_the_state_file_keep_secrets() {
    let path = state_file("journal");
    let sink = CallbackSink::start().await.expect("sink");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sim = Simulator::builder()
        .seed(5)
        .time_mode(TimeMode::Manual)
        .state_file(path.clone())
        .spawn(listener)
        .await
        .expect("spawn");
    let c = Client {
        http: reqwest::Client::new(),
        base: sim.base_url(),
    };
    let mut tokens = vec![c.login("admin", "admin").await];
    tokens.push(c.form_login("admin", "admin").await);
    let s = tokens[0].clone();
    let monitor = json!({"monitor": {"hostname": sink.host(), "port": sink.port().to_string()}});
    c.post("set_configuration", &s, monitor).await;
    let config =
        json!({"onvif": {"rtsp_password": "Rtsp-Secret-1"}, "pjsip": {"password": "Sip-Secret-1"}});
    c.post("set_configuration", &s, config).await;
    c.post(
        "get_configuration",
        &s,
        json!({"onvif": ["rtsp_password"], "pjsip": ["password"]}),
    )
    .await;

    // PINs written, read back, filtered on, changed and deleted, both where forms.
    c.post(
        "create_objects",
        &s,
        json!({"object": "users", "values": [{"id": 1, "name": "Ana"}]}),
    )
    .await;
    c.post(
        "create_objects",
        &s,
        json!({"object": "pins", "values": [{"value": "40404", "user_id": 1}]}),
    )
    .await;
    let pins = c.post("load_objects", &s, json!({"object": "pins"})).await;
    assert_eq!(
        pins["pins"][0]["value"], "40404",
        "the reply itself is real"
    );
    c.post(
        "load_objects",
        &s,
        json!({"object": "users", "where": {"pins": {"value": "40404"}}}),
    )
    .await;
    c.post(
        "modify_objects",
        &s,
        json!({"object": "pins", "values": {"value": "50505"}, "where": [{"field": "value", "value": "40404"}]}),
    )
    .await;
    c.post(
        "create_or_modify_objects",
        &s,
        json!({"object": "pins", "values": [{"id": 7, "value": "60606", "user_id": 1}]}),
    )
    .await;
    // A PIN typed at the door: logged in access_logs and reported to the monitor (dao).
    let r: Json = c
        .http
        .post(format!("{}/_sim/present", c.base))
        .json(&json!({"pin": "50505"}))
        .send()
        .await
        .expect("present")
        .json()
        .await
        .expect("json");
    assert_eq!(r["user_id"], 1, "{r}");
    let dao = sink.wait_for(1).await;
    assert!(
        dao[0].body.windows(5).any(|w| w == b"50505"),
        "the monitor gets the PIN"
    );
    c.post("load_objects", &s, json!({"object": "access_logs"}))
        .await;
    c.post(
        "destroy_objects",
        &s,
        json!({"object": "pins", "where": {"pins": {"value": ["50505", "60606"]}}}),
    )
    .await;
    c.post("user_hash_password", &s, json!({"password": "Hash-Me-1"}))
        .await;
    // Writes without a session: their bodies are read before the session is checked,
    // and are journaled as masked as any other.
    let refused = [
        (
            "create_objects",
            json!({"object": "pins", "values": [{"value": "70707", "user_id": 1}]}),
        ),
        (
            "create_or_modify_objects",
            json!({"object": "users", "values": [{"id": 1, "password": "No-Session-1"}]}),
        ),
        (
            "modify_objects",
            json!({"object": "users", "values": {"password": "No-Session-2"}}),
        ),
        (
            "create_objects",
            json!({"object": "users", "values": [{"id": 2, "password": "No-Session-3", "x": [1]}]}),
        ),
    ];
    for (command, body) in refused {
        let r = c
            .http
            .post(format!("{}/{command}.fcgi?session=not-a-session", c.base))
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 401, "{command}");
    }

    // New credentials: every old session ends; the new password logs in.
    c.post(
        "change_login",
        &s,
        json!({"login": "root", "password": "Web-Secret-1"}),
    )
    .await;
    tokens.push(c.login("root", "Web-Secret-1").await);
    tokens.push(c.form_login("root", "Web-Secret-1").await);
    c.post("load_objects", &tokens[2], json!({"object": "groups"}))
        .await;
    // A token in the query under an encoded name is still masked.
    c.http
        .post(format!(
            "{}/session_is_valid.fcgi?sess%69on={}",
            c.base,
            pct(&tokens[3])
        ))
        .send()
        .await
        .expect("request");

    let journal = c
        .http
        .get(format!("{}/_sim/journal", c.base))
        .send()
        .await
        .expect("journal")
        .text()
        .await
        .expect("text");
    // The refused writes are journaled, their secrets masked and the rest as sent.
    let refused: Vec<Json> = journal
        .lines()
        .filter_map(|line| serde_json::from_str::<Json>(line).ok())
        .filter(|entry| entry["status"] == 401)
        .map(|entry| json!([entry["command"], entry["request"]]))
        .collect();
    assert_eq!(
        refused,
        [
            json!(["create_objects", {"object": "pins", "values": [{"value": "***", "user_id": 1}]}]),
            json!(["create_or_modify_objects", {"object": "users", "values": [{"id": 1, "password": "***"}]}]),
            json!(["modify_objects", {"object": "users", "values": {"password": "***"}}]),
            json!(["create_objects", {"object": "users", "values": [{"id": 2, "password": "***", "x": [1]}]}]),
        ]
    );
    let secrets = [
        "40404",
        "50505",
        "60606",
        "Web-Secret-1",
        "Rtsp-Secret-1",
        "Sip-Secret-1",
        "Hash-Me-1",
        "70707",
        "No-Session-1",
        "No-Session-2",
        "No-Session-3",
    ];
    for secret in secrets
        .iter()
        .copied()
        .chain(tokens.iter().map(String::as_str))
    {
        assert!(!journal.contains(secret), "the journal shows {secret}");
        assert!(
            !journal.contains(&pct(secret)),
            "the journal shows {secret}, encoded"
        );
    }
    assert!(journal.contains(r#""command":"login""#), "{journal}");
    assert!(
        journal.contains(r#""topic":"dao""#),
        "callbacks are journaled"
    );
    assert!(
        journal.contains(r#""login":"root""#),
        "logins are not secret"
    );
    sim.shutdown().await;

    let text = std::fs::read_to_string(&path).expect("state file");
    for secret in std::iter::once("Web-Secret-1").chain(tokens.iter().map(String::as_str)) {
        assert!(!text.contains(secret), "the state file holds {secret}");
    }
    let saved: Json = serde_json::from_str(&text).expect("json");
    assert_eq!(saved["login"], "root");
    assert_eq!(saved["password_sha256"].as_str().map(str::len), Some(64));
    assert!(saved.get("password").is_none());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "state file mode {mode:o}");
    }
    // The digest is enough to log in again after a restart.
    let sim = Simulator::builder()
        .seed(5)
        .state_file(path.clone())
        .build()
        .expect("restart");
    assert!(sim.device().login("root", "Web-Secret-1").is_ok());
    assert!(sim.device().login("root", "wrong").is_err());
    std::fs::remove_dir_all(path.parent().expect("dir")).ok();
}

#[tokio::test]
async fn a_state_file_with_the_password_in_clear_is_rewritten_without_it() {
    let path = state_file("v1");
    // A version-1 file as older simulators wrote it, world-readable.
    let sim = Simulator::builder().seed(9).build().expect("build");
    let mut old = acs_simulator::persist::snapshot(sim.device());
    let o = old.as_object_mut().expect("object");
    o.insert("version".into(), json!(1));
    o.remove("password_sha256");
    o.remove("password_salt");
    o.insert("login".into(), json!("ops"));
    o.insert("password".into(), json!("Old-Clear-1"));
    std::fs::write(&path, old.to_string()).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sim = Simulator::builder()
        .seed(9)
        .state_file(path.clone())
        .spawn(listener)
        .await
        .expect("spawn");
    assert!(sim.device().login("ops", "Old-Clear-1").is_ok());
    sim.shutdown().await;
    let text = std::fs::read_to_string(&path).expect("state file");
    assert!(!text.contains("Old-Clear-1"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "state file mode {mode:o}");
    }
    std::fs::remove_dir_all(path.parent().expect("dir")).ok();
}
