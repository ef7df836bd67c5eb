//! `system_information`, `set_system_time`, `execute_actions`, `reboot`,
//! `user_hash_password`, the small public helpers `get_language` / `init_device_set`, and
//! the terminal's front and hardware: `doors_state`, `message_to_screen`, `buzzer_buzz`,
//! `alarm_status`, `gpio_state`, `reset_to_factory_default`, `template_sync_init` /
//! `template_sync_end` (docs/device-api.md §9).

use serde_json::{Value as Json, json};

use super::{ApiError, Call, Reply, members};
use crate::model::Model;

pub(super) fn information(call: &Call<'_>) -> Result<Reply, ApiError> {
    let s = call.device.system_snapshot();
    let model = s.model;
    let device_id = if model.device_id_as_string() {
        json!(s.identity.device_id.to_string())
    } else {
        json!(s.identity.device_id)
    };
    let port = s.listen.map_or(80, |a| a.port());
    let ip = s
        .listen
        .map_or_else(|| "192.168.0.129".to_owned(), |a| a.ip().to_string());
    let hostname = format!("CID-{}", s.identity.serial.replace('/', "-"));
    let mut reply = json!({
        "uptime": {
            "days": s.uptime / 86_400,
            "hours": s.uptime / 3_600 % 24,
            "minutes": s.uptime / 60 % 60,
            "seconds": s.uptime % 60,
        },
        "time": s.local_time,
        "daylight_savings_time_active": false,
        "memory": {
            "disk": {"free": 2_147_483_648_i64, "total": 3_959_422_976_i64},
            "ram": {"free": 268_435_456_i64, "total": 1_041_137_664_i64},
        },
        "license": {"users": model.license_users(), "device": 0, "type": 0},
        "biometrics": {
            "max_num_records": model.template_capacity(),
            "max_possible_num_records": model.template_capacity(),
        },
        "network": {
            "mac": s.identity.mac,
            "ip": ip,
            "netmask": "255.255.255.0",
            "gateway": "192.168.0.1",
            "primary_dns": "8.8.8.8",
            "secondary_dns": "8.8.4.4",
            "custom_hostname_enabled": false,
            "device_hostname": hostname,
            "web_server_port": port,
            "ssl_enabled": false,
            "self_signed_certificate": true,
            "dhcp_enabled": false,
            "ten_mbps": false,
        },
        "auth802_1x": {},
        "serial": s.identity.serial,
        "version": model.firmware_version(),
        "device_id": device_id,
        "online": s.online,
        "online_available": model.online_available(),
        "device_name": model.device_name(),
        "device_two_names": model.display_name(),
    });
    if matches!(model, Model::IdFace | Model::IdFaceMax | Model::IdFlex) {
        reply["secbox_version"] = json!("2.2.3");
    }
    Ok(Reply::Json(reply))
}

pub(super) fn language(call: &Call<'_>) -> Result<Reply, ApiError> {
    let language = call
        .device
        .config_value("general", "language")
        .unwrap_or_else(|| "en_US".into());
    Ok(Reply::Json(json!({"language": language})))
}

pub(super) fn init_device_set(_call: &Call<'_>) -> Result<Reply, ApiError> {
    Ok(Reply::Json(json!({"init_device_set": true})))
}

pub(super) fn set_time(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json()?;
    call.device.set_system_time(members(body)?)?;
    Ok(Reply::Json(json!({})))
}

pub(super) fn execute_actions(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json()?;
    let m = members(body)?;
    let actions: &[Json] = m.array("actions")?;
    let done = call.device.execute_actions(actions)?;
    for record in &done {
        tracing::info!(actuation = ?record.actuation, "action executed");
    }
    call.terminal.relays_opened(&done);
    Ok(Reply::Json(json!({})))
}

/// `doors_state.fcgi` (§9.7): each door relay or Security Box, open while energised.
pub(super) fn doors_state(call: &Call<'_>) -> Result<Reply, ApiError> {
    Ok(Reply::Json(call.terminal.doors_state()))
}

/// A non-negative integer member, or the device's refusal naming it.
fn non_negative(m: &crate::wire::Members<'_>, name: &str, default: i64) -> Result<u64, ApiError> {
    let value = m.opt_int(name)?.unwrap_or(default);
    u64::try_from(value)
        .map_err(|_| ApiError::bad_request(format!("Invalid value for {name}: {value}")))
}

/// `message_to_screen.fcgi` (§9.8): `{"message", "timeout"}` – the text stays on the screen
/// for `timeout` ms (0 or absent: until another message, a decision or an enrollment
/// replaces it; an empty message clears it).
pub(super) fn message_to_screen(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json()?;
    let m = members(body)?;
    let message = m.string("message")?;
    let timeout = non_negative(&m, "timeout", 0)?;
    let t = call.terminal;
    let until = (timeout > 0).then(|| {
        t.scheduler
            .now()
            .saturating_add(std::time::Duration::from_millis(timeout))
    });
    t.display.show_message(message, timeout, until);
    tracing::info!(
        timeout,
        chars = message.chars().count(),
        "message shown on the screen"
    );
    Ok(Reply::Json(json!({})))
}

/// Longest buzz the firmware plays (docs: `timeout` ≤ 3000 ms).
const MAX_BUZZ_MS: u64 = 3000;

/// `buzzer_buzz.fcgi` (§9.9): `{"frequency", "duty_cycle", "timeout"}` – the buzzer sounds;
/// the simulator records it (`/_sim/state` `sounds`, the panel).
pub(super) fn buzzer_buzz(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json()?;
    let m = members(body)?;
    let frequency = non_negative(&m, "frequency", 4000)?;
    let duty_cycle = non_negative(&m, "duty_cycle", 50)?;
    if duty_cycle > 100 {
        return Err(ApiError::bad_request(format!(
            "Invalid value for duty_cycle: {duty_cycle}"
        )));
    }
    let timeout = non_negative(&m, "timeout", 1000)?.min(MAX_BUZZ_MS);
    let sound = crate::display::Sound::Buzz {
        time: call.device.local_now(),
        frequency: i64::try_from(frequency).unwrap_or(i64::MAX),
        duty_cycle: i64::try_from(duty_cycle).unwrap_or(100),
        duration_ms: timeout,
    };
    call.terminal.display.sounded(sound);
    tracing::info!(frequency, duty_cycle, timeout, "buzzer sounded");
    Ok(Reply::Json(json!({})))
}

/// `alarm_status.fcgi` (§9.10): the simulator raises no alarm.
pub(super) fn alarm_status(_call: &Call<'_>) -> Result<Reply, ApiError> {
    Ok(Reply::Json(json!({"active": false, "cause": 0})))
}

/// `gpio_state.fcgi` (§9.10): no GPIO pin is mapped on a simulated board, so every pin is
/// refused the way the firmware refuses an unmapped one (400).
pub(super) fn gpio_state(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json()?;
    let pin = members(body)?.int("gpio")?;
    Err(ApiError::bad_request(format!("GPIO not mapped: {pin}")))
}

/// `reset_to_factory_default.fcgi` (§9.11): back to the factory state, then a reboot.
pub(super) fn reset_to_factory(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json()?;
    // Accepted for its type only: the simulator has no network settings to keep.
    members(body)?.opt_bool("keep_network_info")?;
    call.device.reset_to_factory();
    call.terminal.reboot();
    tracing::info!("reset to factory defaults and rebooted");
    Ok(Reply::Json(json!({})))
}

/// `template_sync_init.fcgi` / `template_sync_end.fcgi` (§9.10): bracket a bulk load of
/// fingerprint templates; the simulator needs no preparation, so both only answer.
pub(super) fn template_sync(_call: &Call<'_>) -> Result<Reply, ApiError> {
    Ok(Reply::Json(json!({})))
}

pub(super) fn reboot(call: &Call<'_>) -> Result<Reply, ApiError> {
    call.terminal.reboot();
    tracing::info!("device rebooted (sessions dropped, tables kept)");
    Ok(Reply::Json(json!({})))
}

pub(super) fn hash_password(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json()?;
    let m = members(body)?;
    let (password, salt) = call.device.hash_password(m.string("password")?);
    Ok(Reply::Json(json!({"password": password, "salt": salt})))
}
