//! The driver's private serde boundary: the request bodies and reply shapes of the
//! terminal API (docs/device-api.md §1–5, §9), written from that document and the fixtures,
//! never shared with the simulator.
//!
//! Replies are read leniently where firmware differs (a `device_id` as a number or a
//! decimal string, an empty body for `{}`) and strictly where a wrong shape means we
//! misunderstood the device. Integers go through `serde_json`'s exact i64/u64 paths,
//! never through floating point, so 64-bit card values and device ids above 2^53 stay
//! exact. Nothing here logs.

use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use super::{EnrollKind, RemoteEnroll};

/// A decoded JSON object reply.
pub(super) type Object = Map<String, Json>;

/// A reply whose shape is not the one docs/device-api.md describes: the terminal and this
/// driver disagree about the API. Every variant is reported the same way, as
/// [`DriverError::Protocol`](super::DriverError::Protocol) naming the command; the variant
/// says what was wrong with the reply.
#[derive(Debug, thiserror::Error)]
pub(super) enum MalformedReply {
    /// The body is not JSON at all (an HTML page, text).
    #[error("not JSON ({0})")]
    NotJson(serde_json::Error),
    /// The body is JSON but not an object.
    #[error("a JSON {found} instead of an object")]
    NotAnObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// A member the reply must have is missing.
    #[error("no '{member}' in the reply")]
    MissingMember {
        /// The member.
        member: &'static str,
    },
    /// A member has the wrong JSON type.
    #[error("'{member}' is a {found}")]
    WrongType {
        /// The member.
        member: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// `session` is there but not a non-empty string.
    #[error("'session' is not a non-empty string")]
    EmptySession,
    /// `device_id` is neither a 64-bit integer nor a decimal string of one.
    #[error("'device_id' is a {found} that is not a 64-bit integer")]
    DeviceIdNotAnInteger {
        /// The JSON type found.
        found: &'static str,
    },
    /// A `load_objects` reply without the member named after the table.
    #[error("no '{table}' member in the reply")]
    MissingTable {
        /// The table (`object`) loaded.
        table: String,
    },
    /// A `load_objects` reply whose table member is not an array.
    #[error("'{table}' is a {found}, not an array")]
    TableNotAnArray {
        /// The table loaded.
        table: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// A row of a `load_objects` reply that is not an object.
    #[error("a row of '{table}' is a {found}")]
    RowNotAnObject {
        /// The table loaded.
        table: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// The reply does not have the members and types of the command's reply.
    #[error("{0}")]
    Shape(serde_json::Error),
    /// `create_objects` answered with another number of ids than rows were sent.
    #[error("{got} ids for {expected} rows")]
    IdCount {
        /// Ids in the reply.
        got: usize,
        /// Rows sent.
        expected: usize,
    },
    /// `user_list_images` answered with neither of its known shapes.
    #[error("neither 'image_info' nor 'user_ids' in the reply")]
    NoImageList,
}

// ----- envelopes -------------------------------------------------------------------------

/// The device's error envelope `{"error": "<text>", "code": <int>}`: the text, if `body`
/// is one.
pub(super) fn error_envelope(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Envelope {
        error: String,
    }
    serde_json::from_slice::<Envelope>(body)
        .ok()
        .map(|e| e.error)
}

/// A successful reply as a JSON object; an empty body (or whitespace) counts as `{}`
/// (docs/device-api.md §2: write commands answer either).
pub(super) fn reply_object(body: &[u8]) -> Result<Object, MalformedReply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Object::new());
    }
    match serde_json::from_slice::<Json>(body) {
        Ok(Json::Object(map)) => Ok(map),
        Ok(other) => Err(MalformedReply::NotAnObject {
            found: kind(&other),
        }),
        Err(e) => Err(MalformedReply::NotJson(e)),
    }
}

/// `member` has the JSON type of `found`, which it must not.
fn wrong_type(member: &str, found: &Json) -> MalformedReply {
    MalformedReply::WrongType {
        member: member.to_owned(),
        found: kind(found),
    }
}

fn kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// An integer that may arrive as a JSON number or a decimal string (iDFace 6.x sends
/// `device_id` as a string).
fn lenient_i64(value: &Json) -> Option<i64> {
    match value {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

// ----- session (§1) -------------------------------------------------------------------

/// `login.fcgi` body.
pub(super) fn login_request(login: &str, password: &str) -> Json {
    json!({"login": login, "password": password})
}

/// What a 2xx reply to `login.fcgi` says.
pub(super) enum LoginReply {
    /// `{"session": "<token>"}` (newer firmware may add a `message` hint).
    Session(String),
    /// No session but an error text: refused credentials (the official SDK's reading).
    Refused(String),
    /// Anything else.
    Unreadable(MalformedReply),
}

pub(super) fn login_reply(body: &[u8]) -> LoginReply {
    let reply = match reply_object(body) {
        Ok(reply) => reply,
        Err(detail) => return LoginReply::Unreadable(detail),
    };
    match reply.get("session") {
        Some(Json::String(token)) if !token.is_empty() => LoginReply::Session(token.clone()),
        Some(_) => LoginReply::Unreadable(MalformedReply::EmptySession),
        None => match reply.get("error") {
            Some(Json::String(message)) => LoginReply::Refused(message.clone()),
            _ => LoginReply::Unreadable(MalformedReply::MissingMember { member: "session" }),
        },
    }
}

// ----- objects (§3) -------------------------------------------------------------------

/// `load_objects.fcgi` body: the caller's members (`where`, `fields`, `order`, …) plus
/// `object`, which always names `object`.
pub(super) fn load_request(object: &str, mut request: Object) -> Json {
    request.insert("object".into(), Json::String(object.to_owned()));
    Json::Object(request)
}

/// The rows of a `load_objects` reply, which is keyed by the table name.
pub(super) fn rows(mut reply: Object, object: &str) -> Result<Vec<Object>, MalformedReply> {
    let Some(rows) = reply.remove(object) else {
        return Err(MalformedReply::MissingTable {
            table: object.to_owned(),
        });
    };
    let Json::Array(rows) = rows else {
        return Err(MalformedReply::TableNotAnArray {
            table: object.to_owned(),
            found: kind(&rows),
        });
    };
    rows.into_iter()
        .map(|row| match row {
            Json::Object(row) => Ok(row),
            other => Err(MalformedReply::RowNotAnObject {
                table: object.to_owned(),
                found: kind(&other),
            }),
        })
        .collect()
}

/// `create_objects` / `create_or_modify_objects` body: `values` is always an array
/// (§3.3: a bare object is refused).
pub(super) fn values_request(object: &str, values: Vec<Object>) -> Json {
    json!({"object": object, "values": values})
}

/// `{"ids": [...]}` of `create_objects`, one per created row.
pub(super) fn ids(reply: Object, expected: usize) -> Result<Vec<i64>, MalformedReply> {
    #[derive(Deserialize)]
    struct Ids {
        ids: Vec<i64>,
    }
    let Ids { ids } = serde_json::from_value(Json::Object(reply)).map_err(MalformedReply::Shape)?;
    if ids.len() != expected {
        return Err(MalformedReply::IdCount {
            got: ids.len(),
            expected,
        });
    }
    Ok(ids)
}

/// `modify_objects` body: `values` is one object applied to every matching row (§3.4).
pub(super) fn modify_request(object: &str, values: Object, where_: Json) -> Json {
    let mut body = json!({"object": object, "values": values});
    with_where(&mut body, where_);
    body
}

/// `destroy_objects` body (§3.5).
pub(super) fn destroy_request(object: &str, where_: Json) -> Json {
    let mut body = json!({"object": object});
    with_where(&mut body, where_);
    body
}

/// Adds `where` unless it is `null`: a missing `where` selects every row, which is what a
/// `null` condition means to the caller.
fn with_where(body: &mut Json, where_: Json) {
    if !where_.is_null() {
        body["where"] = where_;
    }
}

/// `{"changes": n}` of `modify_objects` / `destroy_objects`.
pub(super) fn changes(reply: Object) -> Result<u64, MalformedReply> {
    #[derive(Deserialize)]
    struct Changes {
        changes: u64,
    }
    serde_json::from_value::<Changes>(Json::Object(reply))
        .map(|c| c.changes)
        .map_err(MalformedReply::Shape)
}

// ----- images (§4) --------------------------------------------------------------------

/// Query parameters of `user_set_image.fcgi` (the session is added by the caller).
pub(super) fn set_image_query(
    user_id: i64,
    timestamp: i64,
    match_duplicates: bool,
) -> Vec<(&'static str, String)> {
    vec![
        ("user_id", user_id.to_string()),
        ("match", if match_duplicates { "1" } else { "0" }.to_owned()),
        ("timestamp", timestamp.to_string()),
    ]
}

/// The verdict of `user_set_image.fcgi`.
pub(super) struct SetImageReply {
    pub(super) success: bool,
    pub(super) errors: Vec<String>,
    pub(super) duplicate_of: Option<i64>,
}

/// Reads `{"user_id", "success", "scores", "errors": [{"code", "message", "info":
/// {"match_user_id"}}]}` (§4.1).
pub(super) fn set_image_reply(reply: Object) -> Result<SetImageReply, MalformedReply> {
    let success = match reply.get("success") {
        Some(Json::Bool(b)) => *b,
        Some(other) => return Err(wrong_type("success", other)),
        None => return Err(MalformedReply::MissingMember { member: "success" }),
    };
    let items = match reply.get("errors") {
        None | Some(Json::Null) => &[][..],
        Some(Json::Array(items)) => items.as_slice(),
        Some(other) => return Err(wrong_type("errors", other)),
    };
    let match_user_id = |holder: &Json| {
        holder
            .get("info")
            .and_then(|info| info.get("match_user_id"))
            .and_then(lenient_i64)
    };
    let duplicate_of = items
        .iter()
        .find_map(match_user_id)
        .or_else(|| match_user_id(&Json::Object(reply.clone())));
    Ok(SetImageReply {
        success,
        errors: items.iter().map(face_error_text).collect(),
        duplicate_of,
    })
}

/// The text of one `errors[]` item: `{"code": 8, "message": "Low sharpness"}` or a bare
/// string.
fn face_error_text(item: &Json) -> String {
    match item {
        Json::String(text) => text.clone(),
        Json::Object(o) => match (o.get("message").or_else(|| o.get("error")), o.get("code")) {
            (Some(Json::String(text)), _) => text.clone(),
            (_, Some(code)) => format!("face error {code}"),
            _ => item.to_string(),
        },
        other => other.to_string(),
    }
}

/// `user_destroy_image.fcgi` body for one user.
pub(super) fn destroy_image_request(user_id: i64) -> Json {
    json!({"user_id": user_id})
}

/// `(user_id, timestamp)` from `user_list_images.fcgi?get_timestamp=1`
/// (`{"image_info": [{"user_id", "timestamp"}]}`); a firmware that ignores
/// `get_timestamp` answers `{"user_ids": [...]}`, read with timestamp 0.
pub(super) fn image_list(reply: Object) -> Result<Vec<(i64, i64)>, MalformedReply> {
    #[derive(Deserialize)]
    struct ImageInfo {
        user_id: i64,
        timestamp: i64,
    }
    #[derive(Deserialize)]
    struct Listing {
        image_info: Option<Vec<ImageInfo>>,
        user_ids: Option<Vec<i64>>,
    }
    let listing: Listing =
        serde_json::from_value(Json::Object(reply)).map_err(MalformedReply::Shape)?;
    match (listing.image_info, listing.user_ids) {
        (Some(info), _) => Ok(info.into_iter().map(|i| (i.user_id, i.timestamp)).collect()),
        (None, Some(ids)) => Ok(ids.into_iter().map(|id| (id, 0)).collect()),
        (None, None) => Err(MalformedReply::NoImageList),
    }
}

// ----- enrollment (§5) ----------------------------------------------------------------

/// `remote_enroll.fcgi` body (§5.1). The screen text goes in `message`, the member the
/// official SDK and examples send.
pub(super) fn remote_enroll_request(request: &RemoteEnroll) -> Json {
    let kind = match request.kind {
        EnrollKind::Face => "face",
        EnrollKind::Card => "card",
        EnrollKind::Biometry => "biometry",
    };
    let mut body = json!({
        "type": kind,
        "user_id": request.user_id,
        "save": request.save,
        "sync": request.sync,
        "auto": request.auto,
    });
    if let Some(countdown) = request.countdown {
        body["countdown"] = json!(countdown);
    }
    if let Some(message) = &request.message {
        body["message"] = json!(message);
    }
    if request.kind == EnrollKind::Biometry {
        body["panic_finger"] = json!(i64::from(request.panic_finger));
    }
    body
}

// ----- system (§9) --------------------------------------------------------------------

/// The members of `system_information` the core uses.
pub(super) struct Identity {
    pub(super) device_id: i64,
    pub(super) serial: String,
    pub(super) version: String,
    pub(super) time: Option<i64>,
}

pub(super) fn identity(reply: &Object) -> Result<Identity, MalformedReply> {
    let device_id = match reply.get("device_id") {
        Some(value) => lenient_i64(value)
            .ok_or_else(|| MalformedReply::DeviceIdNotAnInteger { found: kind(value) })?,
        None => {
            return Err(MalformedReply::MissingMember {
                member: "device_id",
            });
        }
    };
    let text = |member: &str| match reply.get(member) {
        Some(Json::String(s)) => Ok(s.clone()),
        Some(Json::Number(n)) => Ok(n.to_string()),
        None | Some(Json::Null) => Ok(String::new()),
        Some(other) => Err(wrong_type(member, other)),
    };
    Ok(Identity {
        device_id,
        serial: text("serial")?,
        version: text("version")?,
        time: reply.get("time").and_then(lenient_i64),
    })
}

/// `set_system_time.fcgi` body: the local wall clock's fields, every one an int (§9.4).
pub(super) fn system_time_request(local: jiff::civil::DateTime) -> Json {
    json!({"day": local.day(), "month": local.month(), "year": local.year(),
           "hour": local.hour(), "minute": local.minute(), "second": local.second()})
}

/// `execute_actions.fcgi` body: `{"actions": [{"action", "parameters"}]}` (§9.3).
pub(super) fn actions_request(actions: Json) -> Json {
    json!({"actions": actions})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Json) -> Object {
        match value {
            Json::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn device_id_as_number_or_string_stays_exact() {
        for reply in [
            json!({"device_id": 4408801109375138_i64, "serial": "0M0200/0278A2", "version": "6.23.0"}),
            json!({"device_id": "4408801109375138", "serial": "0M0200/0278A2", "version": "6.23.0"}),
        ] {
            let id = identity(&object(reply)).expect("identity");
            assert_eq!(id.device_id, 4_408_801_109_375_138);
            assert_eq!(id.serial, "0M0200/0278A2");
        }
        assert!(identity(&object(json!({"device_id": 1.5}))).is_err());
    }

    #[test]
    fn duplicate_face_is_read_from_the_error_item() {
        let reply = object(json!({"user_id": 2, "success": false, "scores": {},
            "errors": [{"code": 3, "message": "Face exists", "info": {"match_user_id": 1}}]}));
        let r = set_image_reply(reply).expect("reply");
        assert!(!r.success);
        assert_eq!(r.errors, vec!["Face exists".to_owned()]);
        assert_eq!(r.duplicate_of, Some(1));
    }

    #[test]
    fn empty_body_is_an_empty_object_and_html_is_not() {
        assert_eq!(reply_object(b"").expect("empty"), Object::new());
        assert_eq!(reply_object(b" \n").expect("blank"), Object::new());
        assert!(reply_object(b"<html>404</html>").is_err());
        assert!(reply_object(b"[1]").is_err());
    }

    #[test]
    fn malformed_replies_say_what_is_wrong() {
        let users = |reply: Json| rows(object(reply), "users").expect_err("malformed");
        let missing = users(json!({"cards": []}));
        assert!(matches!(missing, MalformedReply::MissingTable { .. }));
        assert_eq!(missing.to_string(), "no 'users' member in the reply");
        assert_eq!(
            users(json!({"users": {}})).to_string(),
            "'users' is a object, not an array"
        );
        assert_eq!(
            users(json!({"users": [1]})).to_string(),
            "a row of 'users' is a number"
        );
        let short = ids(object(json!({"ids": [1]})), 2).expect_err("one id for two rows");
        assert!(matches!(
            short,
            MalformedReply::IdCount {
                got: 1,
                expected: 2
            }
        ));
        assert!(matches!(
            changes(object(json!({"changes": "3"}))),
            Err(MalformedReply::Shape(_))
        ));
        assert!(matches!(
            reply_object(b"<html>"),
            Err(MalformedReply::NotJson(_))
        ));
        assert_eq!(
            set_image_reply(object(json!({"success": 1})))
                .err()
                .map(|e| e.to_string()),
            Some("'success' is a number".to_owned())
        );
        assert!(matches!(
            login_reply(br#"{"session": ""}"#),
            LoginReply::Unreadable(MalformedReply::EmptySession)
        ));
    }

    #[test]
    fn null_where_is_omitted() {
        assert_eq!(
            destroy_request("users", Json::Null),
            json!({"object": "users"})
        );
        assert_eq!(
            destroy_request("users", json!({"users": {"id": 1}})),
            json!({"object": "users", "where": {"users": {"id": 1}}})
        );
    }
}
