//! The web panel's endpoints: the page and its assets (right content types, nothing fetched
//! from the network), the state endpoint following an enrollment's screen and countdown and
//! an identification's LED and event, the live stream delivering a change (and ending when
//! the terminal powers off), and the fleet overview's pages.

use std::time::Duration;

use acs_simulator::{Fleet, ManualTime, Model, Simulator, TimeMode, TimeSource};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value as Json, json};

use crate::shared::{CARD, json_reply, seed_card_holder};
use crate::support::{self, TEST_EPOCH, pct};

/// Bound on every wait in these tests (never reached when things work).
const WAIT: Duration = Duration::from_secs(10);

/// A terminal on a manual scheduler clock, driven through its router.
struct Panel {
    sim: Simulator,
    router: axum::Router,
}

impl Panel {
    fn new() -> Panel {
        let sim = Simulator::builder()
            .model(Model::IdFace)
            .seed(3)
            .time(TimeSource::Manual(ManualTime::starting_at(TEST_EPOCH)))
            .time_mode(TimeMode::Manual)
            .build()
            .expect("simulator builds");
        let router = sim.router();
        Panel { sim, router }
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<&Json>,
    ) -> (StatusCode, String, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(uri);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let reply = support::call(&self.router, req.body(body).expect("request builds")).await;
        (
            reply.status,
            reply.content_type.unwrap_or_default(),
            reply.bytes,
        )
    }

    async fn post(&self, uri: &str, body: &Json) -> Json {
        let (status, _, bytes) = self.call(Method::POST, uri, Some(body)).await;
        let json: Json = serde_json::from_slice(&bytes).expect("JSON reply");
        assert_eq!(status, StatusCode::OK, "{uri}: {json}");
        json
    }

    async fn state(&self) -> Json {
        let (status, content_type, bytes) = self.call(Method::GET, "/_sim/ui/state", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        serde_json::from_slice(&bytes).expect("state is JSON")
    }

    async fn login(&self) -> String {
        let reply = self
            .post(
                "/login.fcgi",
                &json!({"login": "admin", "password": "admin"}),
            )
            .await;
        reply["session"].as_str().expect("session").to_owned()
    }

    /// Waits until the display has changed `n` more times.
    async fn display_changes(&self, rx: &mut tokio::sync::watch::Receiver<u64>, n: usize) {
        for _ in 0..n {
            tokio::time::timeout(WAIT, rx.changed())
                .await
                .expect("the display changes in time")
                .expect("display alive");
        }
    }
}

/// Fails when `text` names anything outside the page's own origin.
#[track_caller]
fn assert_self_contained(name: &str, text: &str) {
    for scheme in [
        "http://",
        "https://",
        "url(//",
        "src=\"//",
        "href=\"//",
        "@import",
    ] {
        assert!(!text.contains(scheme), "{name} refers to {scheme}…");
    }
}

#[tokio::test]
async fn page_and_assets_are_served_and_self_contained() {
    let p = Panel::new();
    for (path, kind) in [
        ("/_sim/ui", "text/html"),
        ("/_sim/ui/", "text/html"),
        ("/_sim/ui/panel.css", "text/css"),
        ("/_sim/ui/panel.js", "text/javascript"),
    ] {
        let (status, content_type, bytes) = p.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        assert_self_contained(path, &String::from_utf8(bytes).expect("UTF-8"));
    }
    let (_, _, html) = p.call(Method::GET, "/_sim/ui", None).await;
    let html = String::from_utf8(html).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.contains("<html lang=\"en\">"));
    for landmark in ["<main", "<header", "role=\"status\"", "<label", "<table"] {
        assert!(html.contains(landmark), "the page has {landmark}");
    }
    // The device API is unchanged around the panel: unknown paths keep the device's envelope.
    let (status, _, bytes) = p.call(Method::GET, "/_sim/uix", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&bytes).contains("Unknown control path"));
}

#[tokio::test]
async fn state_follows_an_enrollment_screen_countdown_and_result() {
    let p = Panel::new();
    let idle = p.state().await;
    assert_eq!(idle["model"], "idface");
    assert_eq!(idle["mode"], "standalone");
    assert_eq!(idle["connection"], "standalone");
    assert_eq!(idle["powered"], true);
    assert_eq!(idle["led"], "off");
    assert_eq!(idle["screen"]["countdown"], Json::Null);

    let session = p.login().await;
    let mut display = p.sim.terminal().display.subscribe();
    let started = p
        .post(
            &format!("/remote_enroll.fcgi?session={}", pct(&session)),
            &json!({"type": "face", "save": false, "sync": false, "auto": true, "countdown": 5}),
        )
        .await;
    assert_eq!(started, json!({}));
    p.sim.terminal().scheduler.wait_for_sleepers(1).await;

    let s = p.state().await;
    assert_eq!(
        s["screen"]["text"],
        "Beginning face enrollment, please stand in front of the camera"
    );
    assert_eq!(s["screen"]["enrolling"], "face");
    assert_eq!(s["screen"]["countdown"], 5);
    assert_eq!(s["enroller"]["enroller_state"], "ENROLL_FACE_STATE");

    p.post("/_sim/clock/advance", &json!({"seconds": 2})).await;
    assert_eq!(p.state().await["screen"]["countdown"], 3);

    display.mark_unchanged();
    p.post("/_sim/clock/advance", &json!({"seconds": 3})).await;
    p.display_changes(&mut display, 1).await;
    let s = p.state().await;
    assert_eq!(s["screen"]["text"], "Face enrolled");
    assert_eq!(s["screen"]["countdown"], Json::Null);
    assert_eq!(s["screen"]["enrolling"], Json::Null);
    assert_eq!(s["led"], "green");

    // A cancelled enrollment ends red.
    p.post(
        &format!("/remote_enroll.fcgi?session={}", pct(&session)),
        &json!({"type": "card", "sync": false, "message": "Hold your badge"}),
    )
    .await;
    p.sim.terminal().scheduler.wait_for_sleepers(1).await;
    assert_eq!(p.state().await["screen"]["text"], "Hold your badge");
    display.mark_unchanged();
    assert_eq!(
        p.post("/_sim/cancel_enroll", &json!({})).await["cancelled"],
        true
    );
    p.display_changes(&mut display, 1).await;
    let s = p.state().await;
    assert_eq!(
        (s["screen"]["text"].as_str(), s["led"].as_str()),
        (Some("Enrollment cancelled"), Some("red"))
    );
}

#[tokio::test]
async fn a_card_presentation_lights_the_led_opens_the_door_and_logs_the_event() {
    let p = Panel::new();
    seed_card_holder(p.sim.device());

    let granted = p.post("/_sim/present", &json!({"card": CARD})).await;
    assert_eq!(granted["granted"], true, "{granted}");
    let s = p.state().await;
    assert_eq!(s["led"], "green");
    assert_eq!(s["screen"]["text"], "Access granted");
    assert_eq!(s["door"]["drive"], "sec_box");
    assert_eq!(s["door"]["opened_count"], 1);
    assert_eq!(s["events"][0]["granted"], true);
    assert_eq!(s["events"][0]["user_id"], 1);
    assert_eq!(s["events"][0]["log_id"], granted["log_id"]);

    let refused = p.post("/_sim/present", &json!({"card": 77})).await;
    assert_eq!(refused["granted"], false);
    let s = p.state().await;
    assert_eq!(s["led"], "red");
    assert_eq!(s["screen"]["text"], "User not identified");
    assert_eq!(s["events"].as_array().unwrap().len(), 2);
    assert_eq!(s["events"][0]["log_id"], refused["log_id"], "newest first");
    assert_eq!(s["door"]["opened_count"], 1);

    // A reboot clears the screen and the LED but not the access log.
    p.post("/_sim/faults", &json!({"reboot": true})).await;
    let s = p.state().await;
    assert_eq!(
        (s["led"].as_str(), s["door"]["opened_count"].as_u64()),
        (Some("off"), Some(0))
    );
    assert_eq!(s["events"].as_array().unwrap().len(), 2);
}

/// Reads the stream until an event whose data satisfies `wanted`; returns that data.
async fn next_state(
    response: &mut reqwest::Response,
    buffer: &mut String,
    wanted: impl Fn(&Json) -> bool,
) -> Json {
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let data: String = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            if event.lines().any(|l| l == "event: state") {
                let json: Json = serde_json::from_str(&data).expect("event data is JSON");
                if wanted(&json) {
                    return json;
                }
            }
        }
        let chunk = tokio::time::timeout(WAIT, response.chunk())
            .await
            .expect("an event in time")
            .expect("stream readable")
            .expect("stream still open");
        buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
    }
}

#[tokio::test]
async fn the_live_stream_delivers_changes_and_ends_at_power_off() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = Simulator::builder()
        .seed(5)
        .time_mode(TimeMode::Manual)
        .spawn(listener)
        .await
        .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut stream = client
        .get(format!("{}/_sim/ui/events", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let content_type = stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let mut buffer = String::new();
    let first = next_state(&mut stream, &mut buffer, |_| true).await;
    assert_eq!(first["events"], json!([]));

    let presented = client
        .post(format!("{}/_sim/present", sim.base_url()))
        .json(&json!({"card": 123}))
        .send()
        .await
        .unwrap();
    assert_eq!(presented.status(), 200);
    let changed = next_state(&mut stream, &mut buffer, |s| {
        s["events"].as_array().is_some_and(|e| !e.is_empty())
    })
    .await;
    assert_eq!(changed["led"], "red");
    assert_eq!(changed["events"][0]["granted"], false);

    // The open stream does not keep the listener from closing.
    assert!(
        tokio::time::timeout(WAIT, sim.power_off())
            .await
            .expect("powered off in time")
    );
    let end = tokio::time::timeout(WAIT, async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(end.is_ok(), "the stream ends when the terminal powers off");
    assert!(sim.power_on().await);
    let state = json_reply(client.get(format!("{}/_sim/ui/state", sim.base_url()))).await;
    assert_eq!(state["powered"], true);
    tokio::time::timeout(WAIT, sim.shutdown())
        .await
        .expect("shut down in time");
}

#[tokio::test]
async fn the_fleet_overview_pages_through_terminals() {
    let mut fleet = Fleet::builder(3)
        .template(Simulator::builder().time_mode(TimeMode::Manual))
        .models([Model::IdFace, Model::IdAccess])
        .seed(40)
        .spawn()
        .await
        .expect("fleet starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control = format!("http://{}", fleet.serve_control(listener).unwrap());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for (path, kind) in [
        ("/_fleet/ui", "text/html"),
        ("/_fleet/ui/panel.css", "text/css"),
        ("/_fleet/ui/overview.js", "text/javascript"),
    ] {
        let r = client.get(format!("{control}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        assert_self_contained(path, &r.text().await.unwrap());
    }
    let page = |query: &'static str| {
        let client = client.clone();
        let url = format!("{control}/_fleet/ui/state{query}");
        async move { json_reply(client.get(url)).await }
    };
    let all = page("").await;
    assert_eq!(
        (all["total"].as_u64(), all["powered"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(all["terminals"].as_array().unwrap().len(), 3);
    let second = page("?offset=1&limit=1").await;
    let t = &second["terminals"][0];
    assert_eq!(second["terminals"].as_array().unwrap().len(), 1);
    assert_eq!(t["index"], 1);
    assert_eq!(t["model"], "idaccess");
    assert_eq!(t["url"], fleet.device(1).unwrap().base_url());
    assert_eq!(
        t["device_id"],
        fleet.device(1).unwrap().device().identity().device_id
    );

    let off = client
        .post(format!("{control}/_fleet/power"))
        .json(&json!({"select": [2], "on": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 200);
    let after = page("?offset=2").await;
    assert_eq!(after["powered"], 2);
    assert_eq!(after["terminals"][0]["connection"], "off");
    assert_eq!(page("?offset=99").await["terminals"], json!([]));
    fleet.shutdown().await;
}
