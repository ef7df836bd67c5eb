//! The objects API: `load_objects`, `create_objects`, `modify_objects`, `destroy_objects`
//! and `create_or_modify_objects` (docs/device-api.md §3). The rules live in
//! `device::query` and `device::table`; this module only shapes replies.

use serde_json::json;

use super::{ApiError, Call, Reply};

/// `{"changes": n}` printed straight (no secret in it), byte for byte what printing the
/// JSON gives: write replies are answered on every sync.
fn printed_changes(count: usize) -> Reply {
    let mut digits = itoa::Buffer::new();
    let mut out = b"{\"changes\":".to_vec();
    out.extend_from_slice(digits.format(count).as_bytes());
    out.push(b'}');
    Reply::Printed(out, false)
}

/// `{"ids": [n, …]}`, printed as [`printed_changes`] is.
fn printed_ids(ids: &[i64]) -> Reply {
    let mut out = Vec::with_capacity(10 + ids.len() * 8);
    out.extend_from_slice(b"{\"ids\":[");
    let mut digits = itoa::Buffer::new();
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(digits.format(*id).as_bytes());
    }
    out.extend_from_slice(b"]}");
    Reply::Printed(out, false)
}

pub(super) fn load(call: &Call<'_>) -> Result<Reply, ApiError> {
    let (text, holds_secret) = call.device.load_objects_printed(call.members()?)?;
    Ok(Reply::Printed(text, holds_secret))
}

/// A request of the common shape is read straight from its text (`device::written`),
/// here and in `create_or_modify`; any other is read as a JSON document, whose errors
/// the reply reports.
pub(super) fn create(call: &Call<'_>) -> Result<Reply, ApiError> {
    let ids = match call.rows_request() {
        Some(request) => call
            .device
            .create_written(request, call.take_built_rows())?,
        None => call.device.create_objects(call.members()?)?,
    };
    Ok(printed_ids(&ids))
}

pub(super) fn modify(call: &Call<'_>) -> Result<Reply, ApiError> {
    let changes = call.device.modify_objects(call.members()?)?;
    Ok(printed_changes(changes))
}

pub(super) fn destroy(call: &Call<'_>) -> Result<Reply, ApiError> {
    let changes = call.device.destroy_objects(call.members()?)?;
    Ok(printed_changes(changes))
}

/// Sources disagree on the reply key (`changes` in the docs, `ids` in client code), so the
/// reply carries both, as docs/device-api.md §3.6 suggests until hardware settles it.
pub(super) fn create_or_modify(call: &Call<'_>) -> Result<Reply, ApiError> {
    let up = match call.rows_request() {
        Some(request) => call.device.create_or_modify_written(request)?,
        None => call.device.create_or_modify_objects(call.members()?)?,
    };
    Ok(Reply::Json(json!({"changes": up.changes, "ids": up.ids})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(reply: Reply) -> String {
        let Reply::Printed(bytes, false) = reply else {
            panic!("printed without a secret");
        };
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn printed_write_replies_are_the_printed_json() {
        for ids in [vec![], vec![7], vec![1, -2, i64::MAX, i64::MIN]] {
            assert_eq!(text(printed_ids(&ids)), json!({"ids": ids}).to_string());
        }
        for n in [0, 1, 1_000, usize::MAX] {
            assert_eq!(text(printed_changes(n)), json!({"changes": n}).to_string());
        }
    }
}
