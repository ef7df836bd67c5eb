//! `get_configuration` and `set_configuration` (docs/device-api.md §9.2).

use serde_json::json;

use super::{ApiError, Call, Reply, members};

pub(super) fn get(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json()?;
    Ok(Reply::Json(call.device.get_configuration(members(body)?)?))
}

pub(super) fn set(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json()?;
    call.device.set_configuration(members(body)?)?;
    Ok(Reply::Json(json!({})))
}
