//! Identification at the device in standalone mode: a presentation (card, face, finger,
//! PIN, QR) is turned into a credential, decided against the device's tables
//! (`device::decide`), logged in `access_logs`, acted on (door relay / Security Box), and
//! reported to the monitor through the outbox: `dao` with the new row (every value a
//! string), then `door` or `secbox` for what opened (docs/device-api.md §3.9, §6.3).

use serde_json::{Map, Value as Json, json};

use crate::callbacks::monitor_callback;
use crate::device::actions::Actuation;
use crate::device::decide::{self, Credential};
use crate::device::{DeviceError, Logged};
use crate::person::{self, Presentation};
use crate::terminal::Terminal;

/// The default portal of a single-door terminal.
pub const DEFAULT_PORTAL: i64 = 1;

/// Turns a presentation into the credential the device reads, or refuses "nobody".
pub fn credential(
    terminal: &Terminal,
    presentation: &Presentation,
) -> Result<Credential, DeviceError> {
    let model = terminal.device.model();
    let unsupported =
        |what: &str| DeviceError::Invalid(format!("This device has no {what} reader"));
    Ok(match presentation {
        Presentation::Card(v) => Credential::Card(*v),
        Presentation::FaceOf(user) if model.has_face() => {
            let face = terminal.device.face_of(*user);
            Credential::Face(terminal.device.face_owner(&face, None))
        }
        Presentation::FaceImage(jpeg) if model.has_face() => {
            Credential::Face(terminal.device.face_owner(jpeg, None))
        }
        Presentation::FaceOf(_) | Presentation::FaceImage(_) => return Err(unsupported("face")),
        Presentation::Finger { seed } if model.has_fingerprint() => Credential::FingerTemplate(
            decide::finger_template(&person::synthetic_fingerprint(*seed)),
        ),
        Presentation::Finger { .. } => return Err(unsupported("fingerprint")),
        Presentation::Pin(p) => Credential::Pin(p.clone()),
        Presentation::IdAndPassword { user_id, password } => Credential::IdAndPassword {
            user_id: *user_id,
            password: password.clone(),
        },
        Presentation::Qr(q) if model.has_qr() => Credential::Qr(q.clone()),
        Presentation::Qr(_) => return Err(unsupported("QR")),
        Presentation::Password(_) => {
            return Err(DeviceError::Invalid(
                "A password is typed with a user id (user_id + password)".into(),
            ));
        }
        Presentation::Nobody | Presentation::Failure(_) => {
            return Err(DeviceError::Invalid("Nothing to identify".into()));
        }
    })
}

/// Identifies and decides one presentation, logs it, opens the door on a grant and
/// queues the monitor notifications.
pub async fn identify(
    terminal: &Terminal,
    presentation: &Presentation,
    portal_id: i64,
) -> Result<Logged, DeviceError> {
    let credential = credential(terminal, presentation)?;
    let logged = terminal.device.decide_and_log(&credential, portal_id)?;
    tracing::info!(
        event = logged.decision.event,
        reason = logged.decision.reason.name(),
        log_id = logged.log_id,
        "identification decided"
    );
    notify(terminal, &logged, None).await;
    Ok(logged)
}

/// What the terminal's front does after a decision (docs/device-api.md §9.13): the screen
/// shows the online server's `message`, else the configured custom message of the outcome
/// (`identifier.enable_custom_<auth|deny|not_identified>_message`), else its default
/// text; the buzzer beeps when `general.beep_enabled` is `"1"`; a face model plays the
/// outcome's voice message unless its `buzzer.audio_message_*` key is `"disabled"`.
fn front_feedback(
    terminal: &Terminal,
    logged: &Logged,
    portal_id: i64,
    server_message: Option<&str>,
) {
    use crate::display::Sound;
    let device = &terminal.device;
    let config = |section: &str, key: &str| device.config_value(section, key);
    let (custom, voice) = match logged.decision.event {
        _ if logged.decision.granted() => ("auth", "authorized"),
        decide::event::NOT_IDENTIFIED => ("not_identified", "not_identified"),
        _ => ("deny", "not_authorized"),
    };
    let configured = || {
        let enabled = config("identifier", &format!("enable_custom_{custom}_message"));
        (enabled.as_deref() == Some("1"))
            .then(|| config("identifier", &format!("custom_{custom}_message")))
            .flatten()
    };
    let text = server_message
        .map(str::to_owned)
        .filter(|m| !m.is_empty())
        .or_else(|| configured().filter(|m| !m.is_empty()));
    terminal
        .display
        .access_decided(logged, portal_id, text.as_deref());
    let time = logged
        .log
        .get("time")
        .and_then(Json::as_i64)
        .unwrap_or_else(|| device.local_now());
    if config("general", "beep_enabled").as_deref() == Some("1") {
        terminal.display.sounded(Sound::Beep { time });
    }
    if let Some(audio) = config("buzzer", &format!("audio_message_{voice}"))
        && audio != "disabled"
    {
        terminal.display.sounded(Sound::Voice {
            time,
            message: voice,
            audio,
            volume_gain: config("buzzer", "audio_message_volume_gain").unwrap_or_default(),
        });
    }
}

/// Shows the decision on the terminal's front (screen, LED, sounds, relays) and queues the
/// monitor notifications for it: `dao`, then `door` / `secbox`. `server_message` is the
/// online server's on-screen text, if it sent one. With a state file, the notifications
/// leave only once the access log row is on disk: a server never hears of a row the
/// terminal could lose.
pub async fn notify(terminal: &Terminal, logged: &Logged, server_message: Option<&str>) {
    let device = &terminal.device;
    let portal_id = logged
        .log
        .get("portal_id")
        .and_then(Json::as_i64)
        .unwrap_or(DEFAULT_PORTAL);
    front_feedback(terminal, logged, portal_id, server_message);
    terminal.relays_opened(&logged.actuations);
    if let Err(why) = device.wait_durable(device.change_mark()).await {
        tracing::warn!(error = %why, "access log not on disk; reporting it anyway");
    }
    let device_id = device.identity().device_id;
    let values: Map<String, Json> = logged
        .log
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Json::String(s) => s.clone(),
                Json::Null => String::new(),
                other => other.to_string(),
            };
            (k.clone(), Json::String(text))
        })
        .collect();
    let dao = json!({
        "object_changes": [{"object": "access_logs", "type": "inserted", "values": values}],
        "device_id": device_id,
    });
    terminal
        .outbox
        .send_all(monitor_callback(device, "dao", dao));
    for record in &logged.actuations {
        let (topic, body) = match record.actuation {
            Actuation::Door { door } => (
                "door",
                json!({"door": {"id": door, "open": true}, "device_id": device_id, "time": record.time}),
            ),
            Actuation::SecBox { id, .. } => (
                "secbox",
                json!({"secbox": {"id": id, "open": true}, "device_id": device_id, "time": record.time}),
            ),
        };
        terminal
            .outbox
            .send_all(monitor_callback(device, topic, body));
    }
}
