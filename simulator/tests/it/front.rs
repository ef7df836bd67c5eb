//! The terminal's front through the device API, on a manual scheduler clock:
//! `doors_state` following the relay time after `execute_actions` and after a granted
//! identification, `message_to_screen` on the screen (and in `/_sim/state` and the panel)
//! until its timeout, `buzzer_buzz` recorded, `alarm_status`, `gpio_state`,
//! `reset_to_factory_default`; and what the configuration keys of the front change: the
//! relay time, the beep, the voice messages and the custom messages after a decision.

use std::time::Duration;

use acs_simulator::{ManualTime, Model, Presentation, Simulator, TimeMode, TimeSource};
use axum::http::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::shared::{CARD, seed_card_holder};
use crate::support::{Reply, TEST_EPOCH, TestDevice};

/// A logged-in terminal on a manual scheduler clock, driven through its router.
struct Front {
    d: TestDevice,
    session: String,
}

impl Front {
    async fn new(model: Model) -> Front {
        let sim = Simulator::builder()
            .model(model)
            .seed(4)
            .time(TimeSource::Manual(ManualTime::starting_at(TEST_EPOCH)))
            .time_mode(TimeMode::Manual)
            .build()
            .expect("simulator builds");
        let d = TestDevice::from_simulator(sim);
        let session = d.login().await;
        Front { d, session }
    }

    async fn call(&self, command: &str, body: Json) -> Reply {
        self.d.post(command, Some(&self.session), &body).await
    }

    async fn ok(&self, command: &str, body: Json) -> Json {
        let r = self.call(command, body).await;
        assert_eq!(r.status, StatusCode::OK, "{command}: {}", r.json());
        r.json()
    }

    async fn control(&self, path: &str, body: Json) -> Json {
        let r = self
            .d
            .send(
                Method::POST,
                &format!("/_sim/{path}"),
                &[("content-type", "application/json")],
                body.to_string().into_bytes(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "/_sim/{path}");
        r.json()
    }

    async fn panel(&self) -> Json {
        self.d
            .send(Method::GET, "/_sim/ui/state", &[], Vec::new())
            .await
            .json()
    }

    /// Presents a card at the door (outside enrollment: decided at once).
    async fn present(&self, card: u64) -> Json {
        self.control("present", json!({"card": card})).await
    }

    /// The screen text, as `/_sim/state` reports it.
    async fn screen(&self) -> Json {
        self.control("state", json!({})).await["screen"]["text"].clone()
    }

    fn advance_ms(&self, ms: u64) {
        self.d
            .sim
            .terminal()
            .scheduler
            .advance(Duration::from_millis(ms));
    }
}

fn closed(model: Model) -> Json {
    match model {
        Model::IdAccess => json!({"doors": [{"id": 1, "open": false}]}),
        _ => json!({"sec_boxes": [{"id": 65793, "open": false}]}),
    }
}

fn open(model: Model) -> Json {
    match model {
        Model::IdAccess => json!({"doors": [{"id": 1, "open": true}]}),
        _ => json!({"sec_boxes": [{"id": 65793, "open": true}]}),
    }
}

#[tokio::test]
async fn doors_state_shows_a_door_open_for_its_relay_time() {
    for model in [Model::IdFace, Model::IdAccess, Model::IdFlex] {
        let f = Front::new(model).await;
        assert_eq!(
            f.ok("doors_state", json!({})).await,
            closed(model),
            "{model}"
        );
        let action = match model {
            Model::IdAccess => json!({"action": "door", "parameters": "door=1"}),
            _ => json!({"action": "sec_box", "parameters": "id=65793, reason=3"}),
        };
        f.ok("execute_actions", json!({"actions": [action]})).await;
        assert_eq!(f.ok("doors_state", json!({})).await, open(model), "{model}");
        assert_eq!(
            f.panel().await["door"]["open"].as_array().map(Vec::len),
            Some(1)
        );
        // The factory relay time is 3 s.
        f.advance_ms(2999);
        assert_eq!(f.ok("doors_state", json!({})).await, open(model), "{model}");
        f.advance_ms(1);
        assert_eq!(
            f.ok("doors_state", json!({})).await,
            closed(model),
            "{model}"
        );
        assert_eq!(f.panel().await["door"]["open"], json!([]));

        // A grant opens it too (the portal's factory action).
        seed_card_holder(f.d.sim.device());
        let logged =
            f.d.sim
                .terminal()
                .identify(&Presentation::Card(CARD), 1)
                .await;
        assert!(logged.expect("decided").decision.granted(), "{model}");
        assert_eq!(f.ok("doors_state", json!({})).await, open(model), "{model}");
        // A reboot drops the relay.
        f.control("faults", json!({"reboot": true})).await;
        let session = f.d.login().await;
        let r = f.d.post("doors_state", Some(&session), &json!({})).await;
        assert_eq!(r.json(), closed(model), "{model}");
    }
}

#[tokio::test]
async fn the_security_box_relay_time_comes_from_its_row() {
    let f = Front::new(Model::IdFace).await;
    f.ok(
        "modify_objects",
        json!({"object": "sec_boxs", "values": {"relay_timeout": 10_000}, "where": {"sec_boxs": {"id": 65793}}}),
    )
    .await;
    f.ok(
        "execute_actions",
        json!({"actions": [{"action": "sec_box", "parameters": "id=65793"}]}),
    )
    .await;
    f.advance_ms(9_999);
    assert_eq!(f.ok("doors_state", json!({})).await, open(Model::IdFace));
    f.advance_ms(1);
    assert_eq!(f.ok("doors_state", json!({})).await, closed(Model::IdFace));
}

#[tokio::test]
async fn a_message_stays_on_the_screen_for_its_timeout() {
    let f = Front::new(Model::IdFace).await;
    let idle = f.control("state", json!({})).await["screen"]["text"].clone();
    f.ok(
        "message_to_screen",
        json!({"message": "Welcome, Ana", "timeout": 2000}),
    )
    .await;
    let state = f.control("state", json!({})).await;
    assert_eq!(state["screen"]["text"], "Welcome, Ana");
    assert_eq!(
        state["screen"]["message"],
        json!({"text": "Welcome, Ana", "timeout": 2000})
    );
    assert_eq!(f.panel().await["screen"]["text"], "Welcome, Ana");
    f.advance_ms(2000);
    let state = f.control("state", json!({})).await;
    assert_eq!(state["screen"]["text"], idle);
    assert_eq!(state["screen"]["message"], Json::Null);

    // Without a timeout it stays until replaced; an empty message clears it.
    f.ok("message_to_screen", json!({"message": "Out of order"}))
        .await;
    f.advance_ms(3_600_000);
    assert_eq!(f.panel().await["screen"]["text"], "Out of order");
    f.ok("message_to_screen", json!({"message": "", "timeout": 0}))
        .await;
    assert_eq!(f.panel().await["screen"]["text"], idle);

    for (body, error) in [
        (
            json!({"timeout": 5}),
            "Invalid member 'message' (string expected, got undefined)",
        ),
        (
            json!({"message": "x", "timeout": "5"}),
            "Invalid member 'timeout' (int expected, got string)",
        ),
        (
            json!({"message": "x", "timeout": -1}),
            "Invalid value for timeout: -1",
        ),
    ] {
        let r = f.call("message_to_screen", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.json(), json!({"error": error, "code": 1}));
    }
}

#[tokio::test]
async fn the_buzzer_is_recorded() {
    let f = Front::new(Model::IdAccess).await;
    assert_eq!(f.control("state", json!({})).await["sounds"]["count"], 0);
    f.ok(
        "buzzer_buzz",
        json!({"frequency": 2000, "duty_cycle": 40, "timeout": 5000}),
    )
    .await;
    let sounds = f.control("state", json!({})).await["sounds"].clone();
    assert_eq!(sounds["count"], 1);
    assert_eq!(
        sounds["recent"][0],
        json!({"time": TEST_EPOCH, "kind": "buzz", "frequency": 2000, "duty_cycle": 40, "timeout": 3000}),
        "at most 3 s"
    );
    f.ok("buzzer_buzz", json!({})).await;
    let sounds = f.panel().await["sounds"].clone();
    assert_eq!(sounds["count"], 2);
    assert_eq!(sounds["recent"][0]["frequency"], 4000);
    let r = f.call("buzzer_buzz", json!({"duty_cycle": 101})).await;
    assert_eq!(
        r.json(),
        json!({"error": "Invalid value for duty_cycle: 101", "code": 1})
    );
}

#[tokio::test]
async fn alarm_and_gpio_answer_as_a_board_without_alarms_or_mapped_pins() {
    let f = Front::new(Model::IdFace).await;
    assert_eq!(
        f.ok("alarm_status", json!({})).await,
        json!({"active": false, "cause": 0})
    );
    let r = f.call("gpio_state", json!({"gpio": 3})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json(), json!({"error": "GPIO not mapped: 3", "code": 1}));
}

#[tokio::test]
async fn a_factory_reset_empties_the_device_and_ends_the_sessions() {
    let f = Front::new(Model::IdFaceMax).await;
    f.ok(
        "create_objects",
        json!({"object": "users", "values": [{"id": 3, "name": "Bo"}]}),
    )
    .await;
    f.ok(
        "set_configuration",
        json!({"monitor": {"hostname": "10.0.0.9"}}),
    )
    .await;
    let changed = f
        .call("change_login", json!({"login": "ops", "password": "Ops-1"}))
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    let s =
        f.d.post("login", None, &json!({"login": "ops", "password": "Ops-1"}))
            .await
            .json()["session"]
            .as_str()
            .expect("session")
            .to_owned();
    let r =
        f.d.post(
            "reset_to_factory_default",
            Some(&s),
            &json!({"keep_network_info": true}),
        )
        .await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({})));
    assert!(!f.d.sim.device().session_is_valid(&s));
    let login =
        f.d.post(
            "login",
            None,
            &json!({"login": "admin", "password": "admin"}),
        )
        .await
        .json();
    assert!(
        login["message"].is_string(),
        "first web login again: {login}"
    );
    let s = login["session"].as_str().expect("session");
    let users =
        f.d.post("load_objects", Some(s), &json!({"object": "users"}))
            .await;
    assert_eq!(users.json(), json!({"users": []}));
    let monitor =
        f.d.post(
            "get_configuration",
            Some(s),
            &json!({"monitor": ["hostname"]}),
        )
        .await;
    assert_eq!(monitor.json(), json!({"monitor": {"hostname": ""}}));
    assert_eq!(
        f.d.sim.device().rows("groups").expect("groups").len(),
        1,
        "factory rows are back"
    );
}

/// The kinds of the sounds recorded since `before`, oldest first.
async fn sounds_since(f: &Front, before: u64) -> Vec<Json> {
    let sounds = f.control("state", json!({})).await["sounds"].clone();
    let count = sounds["count"].as_u64().expect("count");
    let mut recent: Vec<Json> = sounds["recent"]
        .as_array()
        .expect("recent")
        .iter()
        .take(usize::try_from(count - before).expect("small"))
        .map(|s| {
            s.get("message")
                .cloned()
                .unwrap_or_else(|| s["kind"].clone())
        })
        .collect();
    recent.reverse();
    recent
}

#[tokio::test]
async fn decisions_beep_speak_and_show_the_custom_messages() {
    let f = Front::new(Model::IdFace).await;
    seed_card_holder(f.d.sim.device());

    // Factory: beep on, voice messages on, no custom message.
    f.present(CARD).await;
    assert_eq!(f.screen().await, "Access granted");
    assert_eq!(
        sounds_since(&f, 0).await,
        vec![json!("beep"), json!("authorized")]
    );
    f.present(1).await;
    assert_eq!(f.screen().await, "User not identified");
    assert_eq!(
        sounds_since(&f, 2).await,
        vec![json!("beep"), json!("not_identified")]
    );

    f.ok(
        "set_configuration",
        json!({"general": {"beep_enabled": "0"},
               "buzzer": {"audio_message_authorized": "disabled", "audio_message_volume_gain": "3"},
               "identifier": {"enable_custom_auth_message": "1", "custom_auth_message": "Bem-vinda, Ana",
                              "enable_custom_not_identified_message": "1", "custom_not_identified_message": "Quem é você?",
                              "enable_custom_deny_message": "0", "custom_deny_message": "Not shown"}}),
    )
    .await;
    f.present(CARD).await;
    assert_eq!(f.screen().await, "Bem-vinda, Ana");
    assert_eq!(
        sounds_since(&f, 4).await,
        Vec::<Json>::new(),
        "no beep, voice disabled"
    );
    f.present(1).await;
    assert_eq!(f.screen().await, "Quem é você?");
    let last = f.control("state", json!({})).await["sounds"]["recent"][0].clone();
    assert_eq!(
        (&last["message"], &last["audio"], &last["volume_gain"]),
        (&json!("not_identified"), &json!("default"), &json!("3"))
    );
    // A denial (the card's user loses the rule) keeps the default text: its custom
    // message is not enabled.
    f.ok(
        "destroy_objects",
        json!({"object": "user_access_rules", "where": {"user_access_rules": {"user_id": 1}}}),
    )
    .await;
    f.present(CARD).await;
    assert_eq!(f.screen().await, "Access denied");
    assert_eq!(
        f.panel().await["sounds"]["recent"][0]["message"],
        "not_authorized"
    );
}

#[tokio::test]
async fn the_idaccess_relay_time_is_general_relay1_timeout() {
    let f = Front::new(Model::IdAccess).await;
    f.ok(
        "set_configuration",
        json!({"general": {"relay1_timeout": "500", "relay2_timeout": "7000"}}),
    )
    .await;
    let door = json!({"actions": [{"action": "door", "parameters": "door=1"}]});
    f.ok("execute_actions", door.clone()).await;
    f.advance_ms(499);
    assert_eq!(f.ok("doors_state", json!({})).await, open(Model::IdAccess));
    f.advance_ms(1);
    assert_eq!(
        f.ok("doors_state", json!({})).await,
        closed(Model::IdAccess)
    );
    // Junk is the factory 3 s; a huge value is at most an hour.
    f.ok(
        "set_configuration",
        json!({"general": {"relay1_timeout": "soon"}}),
    )
    .await;
    f.ok("execute_actions", door.clone()).await;
    f.advance_ms(2999);
    assert_eq!(f.ok("doors_state", json!({})).await, open(Model::IdAccess));
    f.advance_ms(1);
    assert_eq!(
        f.ok("doors_state", json!({})).await,
        closed(Model::IdAccess)
    );
    f.ok(
        "set_configuration",
        json!({"general": {"relay1_timeout": "99999999999999999999"}}),
    )
    .await;
    f.ok("execute_actions", door).await;
    f.advance_ms(3_600_000);
    assert_eq!(
        f.ok("doors_state", json!({})).await,
        closed(Model::IdAccess)
    );
}
