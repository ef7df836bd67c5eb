//! The panel's picture of one terminal as JSON: identity, operating mode, power and
//! connection, the display (screen text and message, countdown, LED), the door (open
//! relays), the sounds, the last access decisions and callback deliveries, the person's
//! policy and the scheduler clock.
//!
//! It only reads the terminal; `GET /_sim/ui/state` serves it and the live stream sends
//! it again after every change.

use serde_json::{Value as Json, json};

use crate::display::{AccessShown, DisplayView, Sound};
use crate::model::DoorDrive;
use crate::person::Policy;
use crate::scheduler::TimeMode;
use crate::terminal::Terminal;

/// Callback attempts shown per terminal, newest first.
pub(crate) const RECENT_CALLBACKS: usize = 8;

/// How the terminal decides: locally, or by asking its online server.
pub(crate) fn operating_mode(t: &Terminal) -> &'static str {
    let config = |section: &str, key: &str| t.device.config_value(section, key);
    if config("general", "online").as_deref() != Some("1") {
        "standalone"
    } else if config("general", "local_identification").as_deref() == Some("0") {
        "online enterprise"
    } else {
        "online pro"
    }
}

/// `off`, `contingency` (online server lost), `online` or `standalone`.
pub(crate) fn connection(t: &Terminal, powered: bool) -> &'static str {
    if !powered {
        "off"
    } else if t.in_contingency() {
        "contingency"
    } else if operating_mode(t) == "standalone" {
        "standalone"
    } else {
        "online"
    }
}

fn event_json(e: &AccessShown) -> Json {
    json!({
        "log_id": e.log_id,
        "time": e.time,
        "event": e.event,
        "granted": e.granted,
        "reason": e.reason,
        "user_id": e.user_id,
        "portal_id": e.portal_id,
    })
}

/// The screen: its text, the `message_to_screen` message while it lasts, the enrollment
/// under way and its countdown, and whether it stays lit when idle
/// (`general.screen_always_on`).
pub(crate) fn screen_json(t: &Terminal, v: &DisplayView) -> Json {
    let message = v
        .message
        .as_ref()
        .map(|m| json!({"text": m.text, "timeout": m.timeout_ms}));
    let always_on = t
        .device
        .config_value("general", "screen_always_on")
        .as_deref()
        == Some("1");
    json!({"text": v.text, "message": message, "enrolling": v.enrolling,
           "countdown": v.countdown, "always_on": always_on})
}

/// The full picture of one terminal (the device panel).
pub(crate) fn terminal_json(t: &Terminal) -> Json {
    let view = t.display.view(t.scheduler.now());
    let model = t.device.model();
    let identity = t.device.identity();
    let callbacks: Vec<Json> = t
        .journal
        .callbacks()
        .iter()
        .rev()
        .take(RECENT_CALLBACKS)
        .map(|c| {
            json!({
                "seq": c.seq,
                "time": c.time,
                "topic": c.topic,
                "attempt": c.attempt,
                "status": c.outcome.as_ref().ok(),
                "error": c.outcome.as_ref().err(),
                "delivered": c.delivered(),
            })
        })
        .collect();
    let drive = match model.door_drive() {
        DoorDrive::Relay { .. } => "relay",
        DoorDrive::SecBox => "sec_box",
    };
    let (time_mode, scale) = match t.scheduler.mode() {
        TimeMode::Manual => ("manual", None),
        TimeMode::Scaled(s) => ("scaled", Some(s)),
    };
    json!({
        "model": model.cli_name(),
        "model_name": model.display_name(),
        "device_id": identity.device_id,
        "serial": identity.serial,
        "local_time": t.device.local_now(),
        "mode": operating_mode(t),
        "powered": view.powered,
        "connection": connection(t, view.powered),
        "screen": screen_json(t, &view),
        "led": view.led.name(),
        "door": {
            "drive": drive,
            "open": view.open.iter().map(|r| r.what()).collect::<Vec<_>>(),
            "opened_count": view.opened_count,
            "last_opened": view.last_opened.as_ref().map(|o| json!({"time": o.time, "what": o.what})),
        },
        "sounds": {
            "count": view.sound_count,
            "recent": view.sounds.iter().map(Sound::to_json).collect::<Vec<_>>(),
        },
        "events": view.events.iter().map(event_json).collect::<Vec<_>>(),
        "callbacks": callbacks,
        "person": {
            "policy": if t.person.policy() == Policy::Cooperative { "cooperative" } else { "absent" },
            "queued": t.person.queued(),
        },
        "enroller": t.enroller_state(),
        "capabilities": {
            "face": model.has_face(),
            "card": model.has_card(),
            "fingerprint": model.has_fingerprint(),
            "qr": model.has_qr(),
        },
        "clock": {"mode": time_mode, "scale": scale, "elapsed_ms": u64::try_from(t.scheduler.elapsed().as_millis()).unwrap_or(u64::MAX)},
    })
}

/// A compact line for the fleet overview: no history, only the latest decision.
pub(crate) fn summary_json(index: usize, t: &Terminal) -> Json {
    let view = t.display.view(t.scheduler.now());
    let identity = t.device.identity();
    let url = t
        .device
        .system_snapshot()
        .listen
        .map(|a| format!("http://{a}"));
    json!({
        "index": index,
        "url": url,
        "model": t.device.model().cli_name(),
        "device_id": identity.device_id,
        "serial": identity.serial,
        "mode": operating_mode(t),
        "powered": view.powered,
        "connection": connection(t, view.powered),
        "screen": screen_json(t, &view),
        "led": view.led.name(),
        "last_event": view.events.first().map(event_json),
    })
}
