//! Reading requests: the JSON body extractor (errors name the member at fault, bodies over
//! the limit get 413), the `Idempotency-Key` that comes with it, ids in paths, and the
//! spellings of the API's enums and instants, and nullable members of a change.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use jiff::Timestamp;
use serde::Deserialize as _;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;
use sha2::{Digest as _, Sha256};

use super::MAX_BODY_BYTES;
use crate::app::Idempotency;
use crate::domain::{
    AccessKind, AuthType, Direction, Effect, FacilityKind, OperatingMode, RevokeReason,
};
use crate::error::AppError;

/// A JSON body of type `T`, with the request's idempotency key (if any).
#[derive(Debug)]
pub(crate) struct Input<T> {
    /// The parsed body.
    pub body: T,
    /// `Idempotency-Key` with a digest of the request.
    pub idempotency: Option<Idempotency>,
}

impl<T: DeserializeOwned> FromRequest<super::ApiState> for Input<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, _: &super::ApiState) -> Result<Self, Self::Rejection> {
        let key = req
            .headers()
            .get("idempotency-key")
            .map(|v| {
                v.to_str()
                    .ok()
                    .map(str::trim)
                    .filter(|k| !k.is_empty() && k.len() <= 255)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        AppError::invalid(
                            "Idempotency-Key",
                            "Idempotency-Key must be 1 to 255 visible characters",
                        )
                    })
            })
            .transpose()?;
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|ct| ct.starts_with("application/json"));
        if !json {
            return Err(AppError::malformed(
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let method = req.method().to_string();
        let path = req.uri().path().to_owned();
        let bytes = Bytes::from_request(req, &())
            .await
            .map_err(|_| AppError::too_large(MAX_BODY_BYTES))?;
        let body = parse(&bytes)?;
        let idempotency = key.map(|key| {
            let mut digest = Sha256::new();
            digest.update(method.as_bytes());
            digest.update(b" ");
            digest.update(path.as_bytes());
            digest.update(b"\n");
            digest.update(&bytes);
            Idempotency {
                key,
                fingerprint: digest
                    .finalize()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
            }
        });
        Ok(Input { body, idempotency })
    }
}

/// Parses a JSON body; errors name the member path (`doors[0].door_id`).
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // "missing field `acs_id`": the field at fault is the missing one.
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
            .map(|name| {
                if path == "." {
                    name.to_owned()
                } else {
                    format!("{path}.{name}")
                }
            });
        if inner.is_syntax() || inner.is_eof() {
            AppError::malformed(format!("the body is not valid JSON: {inner}"))
        } else if let Some(field) = missing {
            AppError::invalid(field.clone(), format!("{field} is required"))
        } else if path == "." {
            AppError::malformed(format!(
                "the body does not have the expected shape: {inner}"
            ))
        } else {
            AppError::invalid(path.clone(), format!("{path}: {inner}"))
        }
    })
}

/// An id in a path segment.
pub(crate) fn path_id(what: &str, raw: &str) -> Result<u64, AppError> {
    raw.parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| AppError::not_found(what, raw))
}

/// An RFC 3339 instant.
pub(crate) fn instant(field: &str, text: &str) -> Result<Timestamp, AppError> {
    text.parse().map_err(|_| {
        AppError::invalid(
            field,
            format!("{field} must be an RFC 3339 instant such as 2026-05-01T09:00:00Z"),
        )
    })
}

/// An optional RFC 3339 instant.
pub(crate) fn opt_instant(field: &str, text: Option<&str>) -> Result<Option<Timestamp>, AppError> {
    text.map(|t| instant(field, t)).transpose()
}

fn one_of<T: Copy>(field: &str, text: &str, all: &[(&str, T)]) -> Result<T, AppError> {
    all.iter()
        .find(|(name, _)| *name == text)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
            AppError::invalid(
                field,
                format!("{field} must be one of: {}", names.join(", ")),
            )
        })
}

/// An auth type by name (`card`, `card_plus_pin` …).
pub(crate) fn auth_type(field: &str, text: &str) -> Result<AuthType, AppError> {
    let all: Vec<(&str, AuthType)> = AuthType::ALL.iter().map(|a| (a.name(), *a)).collect();
    one_of(field, text, &all)
}

/// A list of auth types.
pub(crate) fn auth_types(field: &str, names: &[String]) -> Result<Vec<AuthType>, AppError> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| auth_type(&format!("{field}[{i}]"), n))
        .collect()
}

/// The spellings of the API's small enums.
pub(crate) const FACILITY_KINDS: &[(&str, FacilityKind)] = &[
    ("facility", FacilityKind::Facility),
    ("section", FacilityKind::Section),
    ("area", FacilityKind::Area),
    ("apb_area", FacilityKind::ApbArea),
];
/// Operating modes.
pub(crate) const OPERATING_MODES: &[(&str, OperatingMode)] = &[
    ("standalone", OperatingMode::Standalone),
    ("pro", OperatingMode::Pro),
    ("enterprise", OperatingMode::Enterprise),
];
/// Access kinds.
pub(crate) const ACCESS_KINDS: &[(&str, AccessKind)] = &[
    ("permanent", AccessKind::Permanent),
    ("temporary", AccessKind::Temporary),
];
/// Access effects.
pub(crate) const EFFECTS: &[(&str, Effect)] = &[("permit", Effect::Permit), ("deny", Effect::Deny)];
/// Reasons an operator may give for revoking.
pub(crate) const REVOKE_REASONS: &[(&str, RevokeReason)] = &[
    ("lost", RevokeReason::Lost),
    ("stolen", RevokeReason::Stolen),
    ("damaged", RevokeReason::Damaged),
    ("terminated", RevokeReason::Terminated),
];
/// Directions.
pub(crate) const DIRECTIONS: &[(&str, Direction)] =
    &[("in", Direction::In), ("out", Direction::Out)];

/// Reads one of `all` by name, naming `field` on failure.
pub(crate) fn named<T: Copy>(field: &str, text: &str, all: &[(&str, T)]) -> Result<T, AppError> {
    one_of(field, text, all)
}

/// The name of `value` in `all`.
pub(crate) fn name_of<T: Copy + PartialEq>(value: T, all: &[(&'static str, T)]) -> &'static str {
    all.iter()
        .find(|(_, v)| *v == value)
        .map_or("unknown", |(n, _)| *n)
}

/// `{"person_id": …}`: the body that adds a person (an attendee, a member, a group
/// member).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PersonRef {
    /// The person.
    pub(crate) person_id: u64,
}

/// A member that is there, `null` included (serde reads a `null` `Option` as absent): use
/// with `#[serde(default, deserialize_with = "present")]`.
pub(crate) fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Json>, D::Error> {
    Json::deserialize(d).map(Some)
}

/// A nullable text member of a change: absent (`None`), cleared (`Some(None)`, from `null`)
/// or set; anything else names the field.
pub(crate) fn nullable_text(
    field: &str,
    value: Option<&Json>,
) -> Result<Option<Option<String>>, AppError> {
    match value {
        None => Ok(None),
        Some(Json::Null) => Ok(Some(None)),
        Some(Json::String(text)) => Ok(Some(Some(text.clone()))),
        Some(_) => Err(AppError::invalid(
            field,
            format!("{field} must be a string or null"),
        )),
    }
}
