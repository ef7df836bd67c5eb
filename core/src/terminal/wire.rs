//! The driver's private serde boundary: request bodies and reply shapes of the terminal
//! API (terminal-api.md §1–5, §9), read leniently where firmware differs (a `device_id`
//! as a number or a string) and never through floating point (64-bit card values and
//! device ids stay exact).

use serde::Deserialize;
use serde_json::{Map, Value as Json};

/// `login.fcgi` reply.
#[derive(Debug, Deserialize)]
pub(super) struct LoginReply {
    pub(super) session: String,
}

/// The device's error envelope `{"error": "...", "code": 1}`.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorReply {
    pub(super) error: String,
}

/// `create_objects.fcgi` reply.
#[derive(Debug, Deserialize)]
pub(super) struct IdsReply {
    pub(super) ids: Vec<i64>,
}

/// `modify_objects` / `destroy_objects` reply.
#[derive(Debug, Deserialize)]
pub(super) struct ChangesReply {
    #[serde(default)]
    pub(super) changes: u64,
}

/// `user_set_image.fcgi` reply.
#[derive(Debug, Deserialize)]
pub(super) struct SetImageReply {
    #[serde(default)]
    pub(super) success: bool,
    #[serde(default)]
    pub(super) errors: Vec<Json>,
    #[serde(default)]
    pub(super) info: Option<Map<String, Json>>,
}

/// `user_list_images.fcgi` reply.
#[derive(Debug, Deserialize)]
pub(super) struct ListImagesReply {
    #[serde(default)]
    pub(super) image_info: Vec<ImageInfo>,
    #[serde(default)]
    pub(super) user_ids: Vec<i64>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ImageInfo {
    pub(super) user_id: i64,
    #[serde(default)]
    pub(super) timestamp: i64,
}

/// An integer that may arrive as a JSON number or a decimal string.
pub(super) fn lenient_i64(v: Option<&Json>) -> Option<i64> {
    match v? {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The text of one entry of `errors` (a string or `{"message": …}` / `{"code": …}`).
pub(super) fn error_text(e: &Json) -> String {
    match e {
        Json::String(s) => s.clone(),
        Json::Object(o) => o
            .get("message")
            .or_else(|| o.get("error"))
            .or_else(|| o.get("code"))
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .unwrap_or_else(|| e.to_string()),
        other => other.to_string(),
    }
}
