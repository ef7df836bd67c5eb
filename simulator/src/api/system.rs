//! `system_information`, `set_system_time`, `execute_actions`, `reboot`,
//! `user_hash_password` and the small public helpers `get_language` / `init_device_set`
//! (docs/device-api.md §9).

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
