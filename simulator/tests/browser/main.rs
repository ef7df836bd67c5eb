//! The web panel in a real browser: headless Chromium driven over WebDriver (chromedriver)
//! opens the panel of a running simulator, watches a face enrollment started through the
//! device API – its screen text, its countdown moving with the manual clock, its result and
//! callback – then presents a card with the panel's own form and sees the access event
//! arrive. A screenshot of the panel is kept as `target/panel-screenshot.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them when absent).
//! Without them the test fails when `CI` is set and is skipped otherwise.
//!
//! Waits are event-driven: the browser resolves a `MutationObserver` promise when the DOM
//! shows what is expected, bounded by the WebDriver script timeout; nothing sleeps.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use acs_simulator::{CallbackSink, ManualTime, RunningSimulator, Simulator, TimeMode, TimeSource};
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value as Json, json};

use crate::shared::{json_reply, seed_card_holder};

// Helpers shared with the `it` test binary.
#[path = "../shared/mod.rs"]
mod shared;

/// Bound on each wait for the browser to show something.
const WAIT: Duration = Duration::from_secs(15);

/// Where Debian installs the browser and its driver (overridable for other systems).
fn tool(env: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    path.is_file().then_some(path)
}

/// chromedriver on a free loopback port; killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(binary: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut child = Command::new(binary)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("chromedriver starts");
        // chromedriver says so on stdout once it listens.
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent && line.contains("started successfully") {
                    let _ = ready_tx.send(());
                    sent = true;
                }
            }
        });
        let mut driver = Driver { child, port };
        if ready_rx.recv_timeout(WAIT).is_err() {
            driver.stop();
            panic!("chromedriver did not start within {WAIT:?}");
        }
        driver
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The workspace's target directory (`CARGO_TARGET_DIR`, else `<workspace>/target`).
fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the simulator sits in the workspace")
        .to_path_buf();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}

/// Resolves once the element `selector` shows `expected` in its text (or, with
/// `attribute`, in that attribute), observed with a `MutationObserver`.
const WAIT_FOR: &str = r#"
const [selector, attribute, expected, done] = arguments;
const seen = () => {
  const el = document.querySelector(selector);
  if (!el) return false;
  const value = attribute ? (el.getAttribute(attribute) || "") : el.textContent;
  return value.includes(expected);
};
if (seen()) { done(true); return; }
const observer = new MutationObserver(() => {
  if (seen()) { observer.disconnect(); done(true); }
});
observer.observe(document.documentElement, {subtree: true, childList: true, characterData: true, attributes: true});
"#;

async fn wait_for(c: &Client, selector: &str, attribute: Option<&str>, expected: &str) {
    let args = vec![json!(selector), json!(attribute), json!(expected)];
    if let Err(e) = c.execute_async(WAIT_FOR, args).await {
        let shown = match c.find(Locator::Css(selector)).await {
            Ok(el) => el.html(false).await.unwrap_or_default(),
            Err(_) => "(no such element)".to_owned(),
        };
        panic!("{selector} never showed {expected:?} ({e}); it shows {shown}");
    }
}

async fn device_post(
    client: &reqwest::Client,
    sim: &RunningSimulator,
    command: &str,
    session: &str,
    body: Json,
) -> Json {
    let r = client
        .post(format!(
            "{}/{command}.fcgi?session={session}",
            sim.base_url()
        ))
        .json(&body)
        .send()
        .await
        .expect("device answers");
    assert_eq!(r.status(), 200, "{command}");
    r.json().await.unwrap_or(Json::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_shows_an_enrollment_and_an_access_in_a_real_browser() {
    let (Some(chromium), Some(chromedriver)) = (
        tool("CHROMIUM", "/usr/bin/chromium"),
        tool("CHROMEDRIVER", "/usr/bin/chromedriver"),
    ) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium and chromedriver are required in CI: apt-get install chromium chromium-driver"
        );
        eprintln!(
            "skipped: the web panel's browser test needs /usr/bin/chromium and /usr/bin/chromedriver \
             (apt-get install chromium chromium-driver)"
        );
        return;
    };

    // The terminal: manual clocks, a callback sink as its monitor.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = Simulator::builder()
        .seed(21)
        .time(TimeSource::Manual(ManualTime::starting_at(1_762_773_300)))
        .time_mode(TimeMode::Manual)
        .spawn(listener)
        .await
        .expect("simulator starts");
    let sink = CallbackSink::start().await.expect("sink starts");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let login = json_reply(
        http.post(format!("{}/login.fcgi", sim.base_url()))
            .json(&json!({"login": "admin", "password": "admin"})),
    )
    .await;
    let session = login["session"].as_str().expect("session").to_owned();
    let monitor = json!({"monitor": {"hostname": sink.host(), "port": sink.port().to_string(), "path": "api/notifications"}});
    device_post(&http, &sim, "set_configuration", &session, monitor).await;

    // The browser.
    let driver = Driver::start(&chromedriver);
    let profile = std::env::temp_dir().join(format!("acs-panel-chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session");
    browser
        .update_timeouts(TimeoutConfiguration::new(Some(WAIT), Some(WAIT), None))
        .await
        .unwrap();

    browser
        .goto(&format!("{}/_sim/ui", sim.base_url()))
        .await
        .expect("the panel opens");
    wait_for(&browser, "#live", None, "Live").await;
    wait_for(&browser, "#screen-text", None, "Present your credential").await;
    wait_for(&browser, "#model", None, "iDFace").await;

    // A face enrollment through the device API: the screen and the countdown.
    device_post(
        &http,
        &sim,
        "remote_enroll",
        &session,
        json!({"type": "face", "save": false, "sync": false, "auto": true, "countdown": 5}),
    )
    .await;
    sim.scheduler().wait_for_sleepers(1).await;
    wait_for(
        &browser,
        "#screen-text",
        None,
        "Beginning face enrollment, please stand in front of the camera",
    )
    .await;
    wait_for(&browser, "#countdown", None, "5").await;
    sim.scheduler().advance(Duration::from_secs(2));
    wait_for(&browser, "#countdown", None, "3").await;
    sim.scheduler().advance(Duration::from_secs(3));
    wait_for(&browser, "#screen-text", None, "Face enrolled").await;
    wait_for(&browser, "#led", Some("class"), "led-green").await;
    // The result went to the monitor, and the panel lists the delivery.
    wait_for(&browser, "#callbacks tbody", None, "user_image").await;
    wait_for(&browser, "#callbacks tbody", None, "HTTP 200").await;

    // A card presented with the panel's form: facility 1, number 100 belongs to user 1.
    let device = sim.device();
    seed_card_holder(device);
    for (field, text) in [("card-facility", "1"), ("card-number", "100")] {
        browser
            .find(Locator::Id(field))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }
    browser
        .find(Locator::Id("present-card"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&browser, "#events tbody tr:first-child", None, "granted").await;
    wait_for(&browser, "#screen-text", None, "Access granted").await;
    wait_for(&browser, "#door", None, "opened 1×").await;
    let logs = device.rows("access_logs").unwrap();
    assert_eq!(
        logs.len(),
        1,
        "the button went through the control API once"
    );
    assert_eq!(logs[0]["user_id"], json!(1));

    let png = browser.screenshot().await.expect("a screenshot");
    let target = target_dir();
    std::fs::create_dir_all(&target).unwrap();
    let path = target.join("panel-screenshot.png");
    std::fs::write(&path, &png).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    eprintln!("panel screenshot: {}", path.display());

    browser.close().await.unwrap();
    drop(driver);
    let _ = std::fs::remove_dir_all(&profile);
    sim.shutdown().await;
}
