//! The simulator's control API under `/_sim/` (JSON, no session): everything the library
//! handle can do, for tests in other languages and for the CLI – queue presentations, set
//! the person's policy, cancel an enrollment, advance the manual clock, inject faults, set
//! the callback retry policy, read the state and the journal.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value as Json, json};

use crate::callbacks::{Backoff, CallbackFaults, RetryPolicy};
use crate::faults::Override;
use crate::person::{Policy, Presentation};
use crate::scheduler::TimeMode;
use crate::terminal::Terminal;
use crate::wire::{MemberError, Members};

type Answer = Result<Json, (StatusCode, String)>;

fn bad(message: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, message.into())
}

impl From<MemberError> for (StatusCode, String) {
    fn from(e: MemberError) -> Self {
        bad(e.to_string())
    }
}

pub(super) async fn dispatch(
    State(t): State<std::sync::Arc<Terminal>>,
    Path(path): Path<String>,
    body: Bytes,
) -> Response {
    if path == "journal" {
        return (
            [(header::CONTENT_TYPE, "application/x-ndjson")],
            t.journal.transcript(),
        )
            .into_response();
    }
    let json: Json = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(j) => j,
            Err(e) => return error(bad(format!("Invalid JSON ({e})"))),
        }
    };
    match apply(&t, &path, &json, Origin::OwnListener).await {
        Ok(j) => axum::Json(j).into_response(),
        Err(e) => error(e),
    }
}

/// Every control path a terminal answers (under `/_sim/` and, fleet-wide, `/_fleet/`).
pub(crate) const PATHS: &[&str] = &[
    "present",
    "policy",
    "cancel_enroll",
    "state",
    "clock/advance",
    "faults",
    "callback_policy",
    "power",
];

/// Where a control request arrived, which decides whether a power-off can be awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The terminal's own `/_sim/`: the request rides the listener being switched off, so
    /// the power-off happens right after the answer.
    OwnListener,
    /// Another listener (the fleet control API): power changes are awaited.
    Elsewhere,
}

/// Applies one control request (`/_sim/{path}` with its JSON body) to a terminal; the fleet
/// control API uses it too, so both speak exactly the same language.
pub(crate) async fn apply(t: &Terminal, path: &str, json: &Json, origin: Origin) -> Answer {
    let m = Members::of(json, "request")?;
    match path {
        "present" => present(t, m).await,
        "policy" => policy(t, m),
        "cancel_enroll" => Ok(json!({"cancelled": t.cancel_enrollment()})),
        "state" => Ok(state(t)),
        "clock/advance" => advance(t, m),
        "faults" => faults(t, m),
        "callback_policy" => callback_policy(t, m),
        "power" => power(t, m, origin).await,
        other => Err((
            StatusCode::NOT_FOUND,
            format!("Unknown control path: /_sim/{other}"),
        )),
    }
}

/// `{"on": false}` powers off until powered on again (the device's own `/_sim/` goes away
/// with it: power it back on through the library or the fleet control API); `{"on": true}`
/// powers on.
async fn power(t: &Terminal, m: Members<'_>, origin: Origin) -> Answer {
    let on = m
        .opt_bool("on")?
        .ok_or_else(|| bad("on (true or false) is required"))?;
    let switched = match (on, origin) {
        (true, _) => t.power.on().await,
        (false, Origin::OwnListener) => t.power.off_later(None),
        (false, Origin::Elsewhere) => t.power.off(None).await,
    };
    if !switched {
        return Err(bad("the terminal is not serving, so it cannot be switched"));
    }
    Ok(json!({"on": on}))
}

fn error((status, message): (StatusCode, String)) -> Response {
    (status, axum::Json(json!({"error": message, "code": 1}))).into_response()
}

async fn present(t: &Terminal, m: Members<'_>) -> Answer {
    let p = if let Some(user) = m.opt_int64("face_of")? {
        Presentation::FaceOf(user)
    } else if let Some(b64) = m.opt_string("face_jpeg")? {
        let jpeg = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| bad("face_jpeg is not base64"))?;
        Presentation::FaceImage(jpeg)
    } else if let Some(v) = m.get("card") {
        let value = crate::wire::json_integer(v)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| MemberError::new("card", "int64", Some(v)))?;
        Presentation::Card(value)
    } else if let Some(v) = m.get("finger") {
        let seed = v
            .as_u64()
            .ok_or_else(|| MemberError::new("finger", "int64", Some(v)))?;
        Presentation::Finger { seed }
    } else if let Some(user_id) = m.opt_int64("user_id")? {
        Presentation::IdAndPassword {
            user_id,
            password: m.string("password")?.to_owned(),
        }
    } else if let Some(password) = m.opt_string("password")? {
        Presentation::Password(password.to_owned())
    } else if let Some(pin) = m.opt_string("pin")? {
        Presentation::Pin(pin.to_owned())
    } else if let Some(qr) = m.opt_string("qr")? {
        Presentation::Qr(qr.to_owned())
    } else if m.opt_bool("nobody")? == Some(true) {
        Presentation::Nobody
    } else if let Some(text) = m.opt_string("failure")? {
        Presentation::Failure(text.to_owned())
    } else {
        return Err(bad(
            "expected one of: face_of, face_jpeg, card, finger, user_id + password, password, pin, qr, nobody, failure",
        ));
    };
    if m.opt_bool("queue")? == Some(true) || t.enroller.is_running() {
        t.person.present(p);
        return Ok(json!({"queued": t.person.queued()}));
    }
    let portal = m
        .opt_int64("portal_id")?
        .unwrap_or(crate::identify::DEFAULT_PORTAL);
    let logged = t
        .identify(&p, portal)
        .await
        .map_err(|e| bad(e.to_string()))?;
    let actuations: Vec<Json> = logged
        .actuations
        .iter()
        .map(|a| match a.actuation {
            crate::device::actions::Actuation::Door { door } => json!({"door": door}),
            crate::device::actions::Actuation::SecBox { id, .. } => json!({"sec_box": id}),
        })
        .collect();
    Ok(json!({
        "granted": logged.decision.granted(),
        "event": logged.decision.event,
        "reason": logged.decision.reason.name(),
        "user_id": logged.decision.user_id,
        "rule_id": logged.decision.rule_id,
        "log_id": logged.log_id,
        "portal_id": portal,
        "actuations": actuations,
    }))
}

fn policy(t: &Terminal, m: Members<'_>) -> Answer {
    let p: Policy = m.string("policy")?.parse().map_err(bad)?;
    t.person.set_policy(p);
    Ok(json!({"policy": if p == Policy::Cooperative { "cooperative" } else { "absent" }}))
}

fn state(t: &Terminal) -> Json {
    let identity = t.device.identity();
    let view = t.display.view(t.scheduler.now());
    json!({
        "model": t.device.model().cli_name(),
        "device_id": identity.device_id,
        "serial": identity.serial,
        "local_time": t.device.local_now(),
        "sessions": t.device.session_count(),
        "enroller": t.enroller_state(),
        "queued_presentations": t.person.queued(),
        "policy": if t.person.policy() == Policy::Cooperative { "cooperative" } else { "absent" },
        "scheduler": {
            "mode": match t.scheduler.mode() { TimeMode::Manual => "manual".to_owned(), TimeMode::Scaled(s) => format!("scaled {s}") },
            "elapsed_ms": t.scheduler.elapsed().as_millis() as u64,
            "sleepers": t.scheduler.sleepers(),
        },
        "actuations": t.device.actuations().len(),
        "screen": crate::panel::screen_json(t, &view),
        "doors": t.doors_state(),
        "sounds": {
            "count": view.sound_count,
            "recent": view.sounds.iter().map(crate::display::Sound::to_json).collect::<Vec<_>>(),
        },
    })
}

fn seconds(m: &Members<'_>, name: &str) -> Result<Option<Duration>, (StatusCode, String)> {
    match m.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
            .map(|s| Some(Duration::from_secs_f64(s)))
            .ok_or_else(|| bad(format!("{name} must be a non-negative number of seconds"))),
    }
}

fn advance(t: &Terminal, m: Members<'_>) -> Answer {
    if t.scheduler.mode() != TimeMode::Manual {
        return Err(bad(
            "the scheduler clock is not manual (start with --time-scale manual)",
        ));
    }
    let by = seconds(&m, "seconds")?.ok_or_else(|| bad("seconds is required"))?;
    t.scheduler.advance(by);
    Ok(json!({"elapsed_ms": t.scheduler.elapsed().as_millis() as u64}))
}

fn faults(t: &Terminal, m: Members<'_>) -> Answer {
    if m.opt_bool("clear")? == Some(true) {
        t.faults.clear();
        t.outbox.set_faults(CallbackFaults::default());
    }
    if let Some(latency) = seconds(&m, "latency_seconds")? {
        t.faults.set_latency(latency);
    }
    if let Some(Json::Object(o)) = m.get("override") {
        let o = Members::from_map(o);
        let status = o.int("status")?;
        t.faults.add_override(Override {
            command: o.string("command")?.trim_end_matches(".fcgi").to_owned(),
            remaining: u32::try_from(o.opt_int("count")?.unwrap_or(1))
                .map_err(|_| bad("count must be positive"))?,
            status: u16::try_from(status)
                .ok()
                .filter(|s| (100..600).contains(s))
                .ok_or_else(|| bad("status must be an HTTP status"))?,
            body: o.get("body").cloned().unwrap_or_else(|| json!({})),
        });
    }
    if let Some(Json::Object(c)) = m.get("callbacks") {
        let c = Members::from_map(c);
        let count = |name: &str| -> Result<u32, (StatusCode, String)> {
            Ok(u32::try_from(c.opt_int(name)?.unwrap_or(0)).unwrap_or(0))
        };
        t.outbox.set_faults(CallbackFaults {
            drop_next: count("drop_next")?,
            duplicate_next: count("duplicate_next")?,
            delay: seconds(&c, "delay_seconds")?.unwrap_or_default(),
            reorder_next: c.opt_bool("reorder_next")?.unwrap_or(false),
        });
    }
    if m.opt_bool("expire_sessions")? == Some(true) {
        t.device.expire_sessions();
    }
    if let Some(skew) = m.opt_int64("clock_skew_seconds")? {
        t.device.skew_clock(skew);
    }
    if m.opt_bool("reboot")? == Some(true) {
        t.reboot();
    }
    if let Some(off) = seconds(&m, "power_off_seconds")?
        && !t.power.off_later(Some(off))
    {
        return Err(bad(
            "the terminal is not serving, so it cannot be powered off",
        ));
    }
    Ok(json!({}))
}

fn callback_policy(t: &Terminal, m: Members<'_>) -> Answer {
    let attempts = u32::try_from(m.int("attempts")?)
        .ok()
        .filter(|a| *a >= 1)
        .ok_or_else(|| bad("attempts must be at least 1"))?;
    let backoff = match (seconds(&m, "initial_seconds")?, seconds(&m, "max_seconds")?) {
        (None, _) => Backoff::Immediate,
        (Some(initial), max) => Backoff::Exponential {
            initial,
            max: max.unwrap_or(initial * 64),
        },
    };
    t.outbox.set_policy(RetryPolicy { attempts, backoff });
    Ok(json!({"attempts": attempts}))
}
