//! The objects API: `load_objects`, `create_objects`, `modify_objects`, `destroy_objects`
//! and `create_or_modify_objects` (docs/device-api.md §3). The rules live in
//! `device::query` and `device::table`; this module only shapes replies.

use serde_json::json;

use super::{ApiError, Call, Reply, members};

pub(super) fn load(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json()?;
    let (text, holds_secret) = call.device.load_objects_printed(members(body)?)?;
    Ok(Reply::Printed(text, holds_secret))
}

pub(super) fn create(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json()?;
    let ids = call.device.create_objects(members(body)?)?;
    Ok(Reply::Json(json!({"ids": ids})))
}

pub(super) fn modify(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json()?;
    let changes = call.device.modify_objects(members(body)?)?;
    Ok(Reply::Json(json!({"changes": changes})))
}

pub(super) fn destroy(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json()?;
    let changes = call.device.destroy_objects(members(body)?)?;
    Ok(Reply::Json(json!({"changes": changes})))
}

/// Sources disagree on the reply key (`changes` in the docs, `ids` in client code), so the
/// reply carries both, as docs/device-api.md §3.6 suggests until hardware settles it.
pub(super) fn create_or_modify(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json()?;
    let up = call.device.create_or_modify_objects(members(body)?)?;
    Ok(Reply::Json(json!({"changes": up.changes, "ids": up.ids})))
}
