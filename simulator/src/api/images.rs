//! Face photo commands (docs/device-api.md §4): `user_set_image` (raw JPEG body),
//! `user_set_image_list`, `user_get_image` (JPEG or JSON), `user_get_image_list`,
//! `user_list_images`, `user_destroy_image`, `user_test_image` and
//! `face_template_count_distinct`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value as Json, json};

use super::{ApiError, Call, Reply, members};
use crate::device::images::FaceProblem;
use crate::device::{DeviceError, ImageSelection, SetImageOutcome};
use crate::wire::{MemberError, Members};

/// Most users one `user_get_image_list` call may ask for.
const MAX_IMAGE_LIST: usize = 100;

fn problem_json(p: &FaceProblem) -> Json {
    let mut j = json!({"code": p.code, "message": p.message});
    if let Some(user) = p.match_user_id {
        j["info"] = json!({"match_user_id": user});
    }
    j
}

fn outcome_json(user_id: Option<i64>, o: &SetImageOutcome) -> Json {
    let mut j = Map::new();
    if let Some(id) = user_id {
        j.insert("user_id".into(), json!(id));
    }
    j.insert("success".into(), json!(o.problems.is_empty()));
    j.insert(
        "scores".into(),
        json!({
            "bounds_width": o.scores.bounds_width,
            "horizontal_center_offset": o.scores.horizontal_center_offset,
            "vertical_center_offset": o.scores.vertical_center_offset,
            "center_pose_quality": o.scores.center_pose_quality,
            "sharpness_quality": o.scores.sharpness_quality,
        }),
    );
    if !o.problems.is_empty() {
        j.insert(
            "errors".into(),
            o.problems.iter().map(problem_json).collect(),
        );
    }
    Json::Object(j)
}

pub(super) fn set_image(call: &Call<'_>) -> Result<Reply, ApiError> {
    let user_id = call.query_int("user_id", "int64")?;
    let match_duplicates = call.query_int("match", "int")? != 0;
    let timestamp = call.query_int("timestamp", "int")?;
    let outcome = call
        .device
        .set_user_image(user_id, match_duplicates, timestamp, call.body)?;
    Ok(Reply::Json(outcome_json(Some(user_id), &outcome)))
}

pub(super) fn test_image(call: &Call<'_>) -> Result<Reply, ApiError> {
    let outcome = call.device.test_image(call.body)?;
    Ok(Reply::Json(outcome_json(None, &outcome)))
}

pub(super) fn set_image_list(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json()?;
    let m = members(body)?;
    let match_duplicates = m.opt_bool("match")?.unwrap_or(false);
    let mut results = Vec::new();
    for item in m.array("user_images")? {
        results.push(set_one_image(call, item, match_duplicates));
    }
    Ok(Reply::Json(json!({"results": results})))
}

fn set_one_image(call: &Call<'_>, item: &Json, match_duplicates: bool) -> Json {
    let parsed = (|| -> Result<(i64, i64, Vec<u8>), MemberError> {
        let m = Members::of(item, "user_images")?;
        let user_id = i64::try_from(m.int64("user_id")?)
            .map_err(|_| MemberError::new("user_id", "int64", m.get("user_id")))?;
        let timestamp = m.int("timestamp")?;
        let image = BASE64
            .decode(m.string("image")?)
            .map_err(|_| MemberError::new("image", "string", m.get("image")))?;
        Ok((user_id, timestamp, image))
    })();
    let user_id = item.get("user_id").cloned().unwrap_or(Json::Null);
    let failure = |message: String| json!({"user_id": user_id, "success": false, "errors": [{"code": 1, "message": message}]});
    match parsed {
        Err(e) => failure(format!("Failed: {e}")),
        Ok((id, ts, bytes)) => match call.device.set_user_image(id, match_duplicates, ts, &bytes) {
            Ok(outcome) => outcome_json(Some(id), &outcome),
            Err(e) => failure(e.to_string()),
        },
    }
}

/// Reads an integer parameter from the query, or else from a JSON body.
fn param_int(call: &Call<'_>, body: &Json, name: &str) -> Result<Option<i64>, ApiError> {
    if call.query(name).is_some() {
        return call.query_int(name, "int64").map(Some);
    }
    match body.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Bool(b)) => Ok(Some(i64::from(*b))),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| MemberError::new(name, "int64", Some(v)).into()),
    }
}

fn body_or_empty(call: &Call<'_>) -> Json {
    // GET requests and raw POSTs carry parameters in the query; a JSON body is optional.
    call.json().cloned().unwrap_or_else(|_| json!({}))
}

pub(super) fn get_image(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = body_or_empty(call);
    let user_id = param_int(call, &body, "user_id")?
        .ok_or_else(|| ApiError::from(MemberError::new("user_id", "int64", None)))?;
    let with_timestamp = param_int(call, &body, "get_timestamp")?.unwrap_or(0) != 0;
    let (jpeg, timestamp) = call.device.user_image(user_id)?;
    if with_timestamp {
        Ok(Reply::Json(
            json!({"timestamp": timestamp, "image": BASE64.encode(jpeg)}),
        ))
    } else {
        Ok(Reply::Jpeg(jpeg))
    }
}

pub(super) fn get_image_list(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json()?;
    let m = members(body)?;
    let ids = m.array("user_ids")?;
    if ids.len() > MAX_IMAGE_LIST {
        return Err(ApiError::bad_request(format!(
            "Too many user_ids (at most {MAX_IMAGE_LIST} per request)"
        )));
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(user_id) = id.as_i64() else {
            return Err(MemberError::new("user_ids", "int64", Some(id)).into());
        };
        out.push(match call.device.user_image(user_id) {
            Ok((jpeg, timestamp)) => {
                json!({"id": user_id, "timestamp": timestamp, "image": BASE64.encode(jpeg)})
            }
            Err(e) => json!({"id": user_id, "error": {"code": 1, "message": e.to_string()}}),
        });
    }
    Ok(Reply::Json(json!({"user_images": out})))
}

pub(super) fn list_images(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = body_or_empty(call);
    let with_timestamp = param_int(call, &body, "get_timestamp")?.unwrap_or(0) != 0;
    let images = call.device.list_images();
    if with_timestamp {
        let info: Vec<Json> = images
            .iter()
            .map(|(id, ts)| json!({"user_id": id, "timestamp": ts}))
            .collect();
        Ok(Reply::Json(json!({"image_info": info})))
    } else {
        let ids: Vec<i64> = images.iter().map(|(id, _)| *id).collect();
        Ok(Reply::Json(json!({"user_ids": ids})))
    }
}

pub(super) fn destroy_image(call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.json()?;
    let m = members(body)?;
    let selection = if m.opt_bool("all")? == Some(true) {
        ImageSelection::All
    } else if m.opt_bool("dangling")? == Some(true) {
        ImageSelection::Dangling
    } else if let Some(ids) = m.opt_array("user_ids")? {
        let ids = ids
            .iter()
            .map(|v| {
                v.as_i64()
                    .ok_or_else(|| MemberError::new("user_ids", "int64", Some(v)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        ImageSelection::Users(ids)
    } else {
        let id = m.int64("user_id")?;
        ImageSelection::Users(vec![
            i64::try_from(id).map_err(|_| DeviceError::NoSuchUser)?,
        ])
    };
    call.device.destroy_images(selection);
    Ok(Reply::Json(json!({})))
}

pub(super) fn face_template_count(call: &Call<'_>) -> Result<Reply, ApiError> {
    let request = json!({"object": "face_templates", "fields": ["user_id"]});
    let rows = call.device.load_objects(members(&request)?)?;
    let mut users: Vec<i64> = rows["face_templates"]
        .as_array()
        .map(|r| r.iter().filter_map(|row| row["user_id"].as_i64()).collect())
        .unwrap_or_default();
    users.sort_unstable();
    users.dedup();
    Ok(Reply::Json(json!({"count": users.len()})))
}
