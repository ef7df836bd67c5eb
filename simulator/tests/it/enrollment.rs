//! Remote enrollment over a real socket with a manual scheduler clock and a CallbackSink:
//! every type × sync/async × save on/off × cooperative/absent/cancel, asserting replies,
//! callbacks and what was stored. No test sleeps: the clock moves only when advanced, and
//! only after the device is known to be waiting.

use std::time::Duration;

use acs_simulator::{
    CallbackSink, Model, Policy, Presentation, RunningSimulator, Simulator, TimeMode,
};
use serde_json::{Value as Json, json};

use crate::support::pct;

pub(crate) struct Rig {
    pub(crate) sim: RunningSimulator,
    pub(crate) sink: CallbackSink,
    client: reqwest::Client,
    session: String,
}

impl Rig {
    pub(crate) async fn new(model: Model) -> Rig {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim = Simulator::builder()
            .model(model)
            .seed(11)
            .time_mode(TimeMode::Manual)
            .spawn(listener)
            .await
            .unwrap();
        let sink = CallbackSink::start().await.unwrap();
        let client = reqwest::Client::new();
        let mut rig = Rig {
            sim,
            sink,
            client,
            session: String::new(),
        };
        let (_, login) = rig
            .post("login", json!({"login": "admin", "password": "admin"}))
            .await;
        rig.session = login["session"].as_str().unwrap().to_owned();
        let monitor = json!({"monitor": {"hostname": rig.sink.host(), "port": rig.sink.port().to_string(), "path": "api/notifications"}});
        assert_eq!(rig.post("set_configuration", monitor).await.0, 200);
        let users =
            json!({"object": "users", "values": [{"id": 5, "name": "Ana", "registration": "R5"}]});
        assert_eq!(rig.post("create_objects", users).await.0, 200);
        rig
    }

    pub(crate) async fn post(&self, command: &str, body: Json) -> (u16, Json) {
        let url = format!(
            "{}/{command}.fcgi?session={}",
            self.sim.base_url(),
            pct(&self.session)
        );
        let r = self
            .client
            .post(url)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Json::Null))
    }

    /// Starts a request that will block, waits until the device waits, returns the handle.
    async fn start(
        &self,
        command: &'static str,
        body: Json,
    ) -> tokio::task::JoinHandle<(u16, Json)> {
        let url = format!(
            "{}/{command}.fcgi?session={}",
            self.sim.base_url(),
            pct(&self.session)
        );
        let client = self.client.clone();
        let handle = tokio::spawn(async move {
            let r = client.post(url).json(&body).send().await.expect("request");
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Json::Null))
        });
        self.sim.scheduler().wait_for_sleepers(1).await;
        handle
    }

    fn advance(&self, seconds: u64) {
        self.sim.scheduler().advance(Duration::from_secs(seconds));
    }

    /// Moves the manual clock a second at a time until no enrollment runs (bounded), so a
    /// wait the device starts after an earlier one ended is covered too.
    async fn advance_until_idle(&self) -> u64 {
        let idle = || self.sim.terminal().enroller_state()["enroller_state"] == "NORMAL_STATE";
        let mut waiting = self.sim.scheduler().sleepers();
        for elapsed in 0..120 {
            self.settled(waiting).await;
            if idle() {
                return elapsed;
            }
            // Settled: the count is what waits at this instant.
            waiting = self.sim.scheduler().sleepers();
            self.advance(1);
        }
        panic!("enrollment still running after 120 s of scheduler time");
    }

    /// Waits (bounded) until the device has taken in the clock's last move: no wait is due
    /// and `waiting` tasks wait again, or no enrollment runs any more.
    async fn settled(&self, waiting: usize) {
        let t = self.sim.terminal().clone();
        let idle = move || t.enroller_state()["enroller_state"] == "NORMAL_STATE";
        tokio::time::timeout(
            Duration::from_secs(10),
            self.sim.scheduler().settled(waiting, idle),
        )
        .await
        .expect("the device settles");
    }

    /// Waits (yielding, bounded) until no enrollment runs.
    pub(crate) async fn enrollment_finished(&self) {
        let t = self.sim.terminal().clone();
        tokio::time::timeout(Duration::from_secs(10), async move {
            while t.enroller_state()["enroller_state"] != "NORMAL_STATE" {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("enrollment ended");
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Person {
    Cooperative,
    Absent,
    Cancels,
}

fn kind_for(model: Model) -> &'static [&'static str] {
    if model.has_face() {
        &["card", "face", "pin", "password"]
    } else {
        &["card", "biometry", "pin", "password"]
    }
}

/// Members the reply / callback carries for each type.
fn result_member(kind: &str) -> &'static str {
    match kind {
        "card" => "card_value",
        "face" => "user_image",
        "pin" => "pin_value",
        "password" => "password_value",
        _ => "fingerprints",
    }
}

fn stored_rows(sim: &RunningSimulator, kind: &str) -> usize {
    match kind {
        "card" => sim.device().rows("cards").unwrap().len(),
        "face" => sim.device().list_images().len(),
        "pin" => sim.device().rows("pins").unwrap().len(),
        "password" => sim
            .device()
            .rows("users")
            .unwrap()
            .iter()
            .filter(|u| u["password"].is_string())
            .count(),
        _ => sim.device().rows("templates").unwrap().len(),
    }
}

async fn async_case(model: Model, kind: &str, save: bool, person: Person) {
    let case = format!("{model} {kind} async save={save} {person:?}");
    let rig = Rig::new(model).await;
    if person == Person::Absent {
        rig.sim.set_policy(Policy::Absent);
    }
    let body = json!({"type": kind, "user_id": 5, "save": save, "sync": false, "auto": true, "countdown": 3, "message": "Look at the camera"});
    let pending = rig.start("remote_enroll", body).await;
    let state = rig.sim.terminal().enroller_state();
    assert!(
        state["enroller_state"]
            .as_str()
            .unwrap()
            .starts_with("ENROLL_"),
        "{case}: {state}"
    );
    let (status, reply) = pending.await.unwrap();
    assert_eq!(
        (status, &reply),
        (200, &json!({})),
        "{case}: async answers at once"
    );
    match person {
        Person::Cooperative => rig.advance(3),
        Person::Absent => {
            let waited = rig.advance_until_idle().await;
            assert!(waited >= 30, "{case}: gave up after {waited} s");
        }
        Person::Cancels => {
            let (status, _) = rig.post("cancel_remote_enroll", json!({})).await;
            assert_eq!(status, 200, "{case}");
        }
    }
    rig.enrollment_finished().await;
    let success = person == Person::Cooperative;
    let state = rig.sim.terminal().enroller_state();
    assert_eq!(state["enroller_state"], "NORMAL_STATE", "{case}");
    assert_eq!(
        stored_rows(&rig.sim, kind),
        usize::from(success && save),
        "{case}: stored only on success with save"
    );
    if !success {
        assert_eq!(state["last_enroll_error"], "UNKNOWN", "{case}");
        assert!(
            rig.sink.received().is_empty(),
            "{case}: no callback without a result"
        );
    }
    if success && !save {
        let got = rig.sink.wait_for(1).await;
        let topic = match kind {
            "card" => "card",
            "face" => "user_image",
            "pin" => "pin",
            "password" => "password",
            _ => "template",
        };
        assert_eq!(got[0].path, format!("/api/notifications/{topic}"), "{case}");
        let body = got[0].json.clone().unwrap();
        assert_eq!(body["user_id"], 5, "{case}");
        assert_eq!(
            body["device_id"],
            rig.sim.device().identity().device_id,
            "{case}"
        );
        assert!(body.get(result_member(kind)).is_some(), "{case}: {body}");
    }
    if success && save {
        assert!(
            rig.sink.received().is_empty(),
            "{case}: save reports no monitor topic"
        );
    }
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn every_async_combination() {
    for model in [Model::IdFace, Model::IdAccess] {
        for kind in kind_for(model) {
            for save in [false, true] {
                for person in [Person::Cooperative, Person::Absent, Person::Cancels] {
                    async_case(model, kind, save, person).await;
                }
            }
        }
    }
}

async fn sync_case(model: Model, kind: &str, save: bool, person: Person) -> Json {
    let case = format!("{model} {kind} sync save={save} {person:?}");
    let rig = Rig::new(model).await;
    if person == Person::Absent {
        rig.sim.set_policy(Policy::Absent);
    }
    let body = json!({"type": kind, "user_id": 5, "save": save, "sync": true, "countdown": 3});
    let pending = rig.start("remote_enroll", body).await;
    match person {
        Person::Cooperative => rig.advance(3),
        Person::Absent => {
            rig.advance_until_idle().await;
        }
        Person::Cancels => {
            assert_eq!(rig.post("cancel_remote_enroll", json!({})).await.0, 200);
        }
    }
    let (status, reply) = pending.await.unwrap();
    assert_eq!(status, 200, "{case}");
    let success = person == Person::Cooperative;
    assert_eq!(reply["success"], success, "{case}: {reply}");
    assert_eq!(
        stored_rows(&rig.sim, kind),
        usize::from(success && save),
        "{case}"
    );
    assert!(
        rig.sink.received().is_empty(),
        "{case}: synchronous results are not called back"
    );
    rig.sim.shutdown().await;
    reply
}

#[tokio::test]
async fn every_sync_combination() {
    for model in [Model::IdFace, Model::IdAccess] {
        for kind in kind_for(model) {
            for save in [false, true] {
                let ok = sync_case(model, kind, save, Person::Cooperative).await;
                assert!(ok.get(result_member(kind)).is_some(), "{ok}");
                let timeout = sync_case(model, kind, save, Person::Absent).await;
                assert_eq!(timeout, json!({"success": false, "error": "TIMEOUT"}));
                let cancelled = sync_case(model, kind, save, Person::Cancels).await;
                assert_eq!(cancelled, json!({"success": false, "error": "CANCELED"}));
            }
        }
    }
}

#[tokio::test]
async fn sync_replies_have_the_documented_shape() {
    let redact = |mut v: Json| {
        for k in ["user_image"] {
            if v.get(k).is_some() {
                v[k] = json!("[base64 jpeg]");
            }
        }
        if let Some(f) = v.get_mut("fingerprints").and_then(|f| f.get_mut(0)) {
            f["image"] = json!("[base64 bitmap]");
        }
        v
    };
    for (model, kind) in [
        (Model::IdFace, "card"),
        (Model::IdFace, "face"),
        (Model::IdAccess, "biometry"),
    ] {
        let reply = redact(sync_case(model, kind, false, Person::Cooperative).await);
        insta::assert_json_snapshot!(format!("remote_enroll_sync_{kind}"), reply, {".device_id" => "[device_id]"});
    }
}

#[tokio::test]
async fn scripted_presentations_and_duplicate_faces() {
    let rig = Rig::new(Model::IdFace).await;
    rig.sim.present(Presentation::Card(528_281_023_086));
    let pending = rig
        .start(
            "remote_enroll",
            json!({"type": "card", "user_id": 5, "save": true, "sync": true}),
        )
        .await;
    rig.advance(1);
    let (_, reply) = pending.await.unwrap();
    assert_eq!(reply["card_value"], 528_281_023_086_u64);
    assert_eq!(
        rig.sim.device().rows("cards").unwrap()[0]["value"],
        528_281_023_086_u64
    );

    // User 6's face is user 5's stored photo: FACE_EXISTS with the owner.
    let jpeg = crate::support::jpeg(9);
    rig.sim.device().set_user_image(5, true, 1, &jpeg).unwrap();
    assert_eq!(
        rig.post(
            "create_objects",
            json!({"object": "users", "values": [{"id": 6}]})
        )
        .await
        .0,
        200
    );
    rig.sim.present(Presentation::FaceImage(jpeg));
    let pending = rig
        .start(
            "remote_enroll",
            json!({"type": "face", "user_id": 6, "save": true, "sync": true, "countdown": 2}),
        )
        .await;
    rig.advance(2);
    let (_, reply) = pending.await.unwrap();
    assert_eq!(
        reply,
        json!({"success": false, "error": "FACE_EXISTS", "info": {"match_user_id": 5}})
    );
    assert_eq!(
        rig.sim.terminal().enroller_state()["last_enroll_error"],
        "FACE_EXISTS"
    );

    rig.sim
        .present(Presentation::Failure("Low sharpness".into()));
    let pending = rig
        .start(
            "remote_enroll",
            json!({"type": "face", "user_id": 6, "sync": true, "countdown": 1}),
        )
        .await;
    rig.advance(1);
    assert_eq!(
        pending.await.unwrap().1,
        json!({"success": false, "error": "Low sharpness"})
    );
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn refused_requests() {
    let rig = Rig::new(Model::IdFace).await;
    let cases = [
        (
            json!({"type": "card", "save": true, "sync": true}),
            "User does not exist",
        ),
        (
            json!({"type": "card", "user_id": 99, "save": true}),
            "User does not exist",
        ),
        (
            json!({"type": "biometry", "user_id": 5}),
            "Enrollment type not supported by this device: biometry",
        ),
        (
            json!({"type": "iris", "user_id": 5}),
            "Invalid enrollment type: iris",
        ),
        (
            json!({"user_id": 5}),
            "Invalid member 'type' (string expected, got undefined)",
        ),
        (
            json!({"type": "card", "user_id": "5"}),
            "Invalid member 'user_id' (int64 expected, got string)",
        ),
    ];
    for (body, text) in cases {
        let (status, reply) = rig.post("remote_enroll", body.clone()).await;
        assert_eq!(
            (status, reply),
            (400, json!({"error": text, "code": 1})),
            "{body}"
        );
    }
    // A second enrollment while one runs is refused; the first one is unaffected.
    let first = rig
        .start(
            "remote_enroll",
            json!({"type": "card", "user_id": 5, "sync": true}),
        )
        .await;
    let (status, reply) = rig
        .post(
            "remote_enroll",
            json!({"type": "face", "user_id": 5, "sync": true}),
        )
        .await;
    assert_eq!(
        (status, reply),
        (
            400,
            json!({"error": "Enrollment already in progress", "code": 1})
        )
    );
    rig.advance(1);
    assert_eq!(first.await.unwrap().1["success"], true);
    // registration resolves the user.
    let pending = rig
        .start(
            "remote_enroll",
            json!({"type": "card", "registration": "R5", "save": true, "sync": true}),
        )
        .await;
    rig.advance(1);
    assert_eq!(pending.await.unwrap().1["user_id"], 5);
    rig.sim.shutdown().await;
}

/// Replaces base64 payloads (photos, bitmaps, templates) so snapshots stay readable.
fn redact_payloads(mut v: Json) -> Json {
    for key in ["user_image", "template"] {
        if v.get(key).is_some() {
            v[key] = json!("[base64]");
        }
    }
    if let Some(face) = v.get_mut("face") {
        face["image"] = json!("[base64]");
    }
    if let Some(f) = v.get_mut("fingerprints").and_then(|f| f.get_mut(0)) {
        f["image"] = json!("[base64]");
    }
    v["device_id"] = json!("[device_id]");
    v
}

#[tokio::test]
async fn callback_bodies_per_destination() {
    let mut bodies = Vec::new();
    for (model, kind, online, extract) in [
        (Model::IdFace, "card", false, false),
        (Model::IdFace, "face", false, false),
        (Model::IdAccess, "biometry", false, false),
        (Model::IdFace, "card", true, false),
        (Model::IdFace, "face", true, false),
        (Model::IdAccess, "biometry", true, false),
        (Model::IdAccess, "biometry", true, true),
        (Model::IdFace, "pin", false, false),
        (Model::IdAccess, "password", false, false),
        (Model::IdFace, "pin", true, false),
        (Model::IdAccess, "password", true, false),
    ] {
        let rig = Rig::new(model).await;
        if online {
            let ip = format!("{}:{}", rig.sink.host(), rig.sink.port());
            let server = json!({"object": "devices", "values": [{"id": 9, "name": "Server", "ip": ip, "public_key": ""}]});
            assert_eq!(rig.post("create_objects", server).await.0, 200);
            let extract = if extract { "1" } else { "0" };
            let cfg = json!({"general": {"online": "1"}, "online_client": {"server_id": "9", "extract_template": extract}});
            assert_eq!(rig.post("set_configuration", cfg).await.0, 200);
        }
        let (status, _) = rig
            .post(
                "remote_enroll",
                json!({"type": kind, "user_id": 5, "countdown": 1}),
            )
            .await;
        assert_eq!(status, 200);
        rig.advance_until_idle().await;
        let got = rig.sink.wait_for(1).await;
        bodies.push(
            json!({"path": got[0].path, "body": redact_payloads(got[0].json.clone().unwrap())}),
        );
        rig.sim.shutdown().await;
    }
    insta::assert_json_snapshot!("async_result_callbacks", bodies);
}

/// Sends `remote_enroll` synchronously for user 5 and returns the reply once the device has
/// read what the person typed (one second of scheduler time).
async fn typed(rig: &Rig, kind: &str, save: bool) -> Json {
    let pending = rig
        .start(
            "remote_enroll",
            json!({"type": kind, "user_id": 5, "save": save, "sync": true}),
        )
        .await;
    rig.advance(1);
    pending.await.unwrap().1
}

#[tokio::test]
async fn a_pin_or_password_typed_at_the_keypad_is_enrolled() {
    let rig = Rig::new(Model::IdAccess).await;
    let device_id = rig.sim.device().identity().device_id;
    let duress =
        json!({"object": "pins", "values": [{"value": "9999", "user_id": 5, "pin_type": 1}]});
    assert_eq!(rig.post("create_objects", duress).await.0, 200);

    rig.sim.present(Presentation::Pin("2580".into()));
    let pending = rig
        .start(
            "remote_enroll",
            json!({"type": "pin", "user_id": 5, "save": true, "sync": true}),
        )
        .await;
    assert_eq!(
        rig.sim.terminal().enroller_state()["enroller_state"],
        "ENROLL_PIN_STATE"
    );
    rig.advance(1);
    assert_eq!(
        pending.await.unwrap().1,
        json!({"success": true, "user_id": 5, "device_id": device_id, "pin_value": "2580"})
    );
    assert_eq!(rig.sim.terminal().enroller_state()["last_enroll"], "pin");
    // A new PIN replaces the ordinary one; the duress PIN stays.
    rig.sim.present(Presentation::Pin("1357".into()));
    typed(&rig, "pin", true).await;
    let pins: Vec<(Json, Json)> = rig
        .sim
        .device()
        .rows("pins")
        .unwrap()
        .into_iter()
        .map(|p| (p["value"].clone(), p["pin_type"].clone()))
        .collect();
    assert_eq!(
        pins,
        vec![(json!("9999"), json!(1)), (json!("1357"), json!(0))]
    );
    // The enrolled PIN identifies the user at the door.
    let logged = rig
        .sim
        .identify(&Presentation::Pin("1357".into()))
        .await
        .unwrap();
    assert_eq!(logged.decision.user_id, Some(5));

    rig.sim
        .present(Presentation::Password("Tr0ub4dor&3".into()));
    let reply = typed(&rig, "password", true).await;
    assert_eq!(reply["password_value"], "Tr0ub4dor&3");
    let user = rig.sim.device().rows("users").unwrap()[0].clone();
    assert_eq!(
        user["password"].as_str().map(str::len),
        Some(64),
        "{user:?}"
    );
    assert_ne!(user["password"], "Tr0ub4dor&3", "stored as a salted digest");
    let logged = rig
        .sim
        .identify(&Presentation::IdAndPassword {
            user_id: 5,
            password: "Tr0ub4dor&3".into(),
        })
        .await
        .unwrap();
    assert_eq!(logged.decision.user_id, Some(5), "the password identifies");

    // The cooperative person types something plausible; an empty entry fails.
    let reply = typed(&rig, "pin", false).await;
    assert!(
        reply["pin_value"]
            .as_str()
            .is_some_and(|p| p.len() == 4 && p.bytes().all(|b| b.is_ascii_digit())),
        "{reply}"
    );
    rig.sim.present(Presentation::Pin(String::new()));
    assert_eq!(
        typed(&rig, "pin", true).await,
        json!({"success": false, "error": "Empty PIN"})
    );
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn auto_waits_for_the_countdown_and_manual_takes_the_photo_when_confirmed() {
    let rig = Rig::new(Model::IdFace).await;
    // Manual (auto false, the default): the person confirms once in view; no countdown.
    let pending = rig
        .start(
            "remote_enroll",
            json!({"type": "face", "user_id": 5, "sync": true, "countdown": 10}),
        )
        .await;
    let screen = rig.sim.terminal().display.view(rig.sim.scheduler().now());
    assert_eq!(screen.countdown, None, "no countdown without auto");
    rig.advance(1);
    assert_eq!(pending.await.unwrap().1["success"], true);

    // Automatic: the photo is taken when the countdown ends, not before.
    let pending = rig
        .start(
            "remote_enroll",
            json!({"type": "face", "user_id": 5, "sync": true, "auto": true, "countdown": 10}),
        )
        .await;
    let screen = rig.sim.terminal().display.view(rig.sim.scheduler().now());
    assert_eq!(screen.countdown, Some(10));
    let waiting = rig.sim.scheduler().sleepers();
    rig.advance(9);
    rig.settled(waiting).await;
    assert_eq!(
        rig.sim.terminal().enroller_state()["enroller_state"],
        "ENROLL_FACE_STATE",
        "still counting down"
    );
    rig.advance(1);
    assert_eq!(pending.await.unwrap().1["success"], true);
    rig.sim.shutdown().await;
}
