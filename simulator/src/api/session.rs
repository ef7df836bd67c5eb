//! `login`, `logout`, `session_is_valid`, `change_login` and `is_first_web_login`
//! (docs/device-api.md §1).

use serde_json::json;

use super::{ApiError, Call, Reply, members};

/// The hint newer firmware adds while factory credentials are in place.
const FIRST_WEB_LOGIN: &str = "First Web Login. Please Change the Credentials";

/// JSON is the documented body; a form (`login=admin&password=admin`) is accepted too,
/// as independent clients send it (docs/device-api.md §1.1).
pub(super) fn login(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = match call.form() {
        Some(form) => form,
        None => call.json()?,
    };
    let m = members(body)?;
    let login = call
        .device
        .login(m.string("login")?, m.string("password")?)?;
    let mut reply = json!({"session": login.token});
    if login.first_web_login {
        reply["message"] = json!(FIRST_WEB_LOGIN);
    }
    tracing::info!("login accepted");
    Ok(Reply::Json(reply))
}

pub(super) fn logout(call: &Call<'_>) -> Result<Reply, ApiError> {
    call.device.logout(call.session);
    Ok(Reply::Json(json!({})))
}

pub(super) fn session_is_valid(call: &Call<'_>) -> Result<Reply, ApiError> {
    let valid = call
        .session
        .is_some_and(|t| call.device.session_is_valid(t));
    Ok(Reply::Json(json!({"session_is_valid": valid})))
}

pub(super) fn change_login(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json()?;
    let m = members(body)?;
    call.device
        .change_login(m.string("login")?, m.string("password")?)?;
    tracing::info!("credentials changed; all sessions ended");
    Ok(Reply::Empty)
}

pub(super) fn is_first_web_login(call: &Call<'_>) -> Result<Reply, ApiError> {
    Ok(Reply::Json(
        json!({"is_first_web_login": call.device.is_first_web_login()}),
    ))
}
