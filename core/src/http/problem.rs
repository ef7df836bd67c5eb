//! The application's errors as RFC 9457 problem documents (`application/problem+json`):
//! a stable `type` per kind of error, the HTTP status, a human `detail`, and `field`
//! naming the request member at fault when there is one. The only place an
//! [`AppError`] meets HTTP.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{AppError, ErrorKind, RefusalClass};

/// The `type` URI prefix of every problem.
pub const TYPE_PREFIX: &str = "urn:acs:problem:";

/// The HTTP status of an error kind.
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Malformed => StatusCode::BAD_REQUEST,
        ErrorKind::InvalidField | ErrorKind::IdempotencyReused => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::Conflict | ErrorKind::InvalidState => StatusCode::CONFLICT,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Refused { class, .. } => match class {
            RefusalClass::Forbidden => StatusCode::FORBIDDEN,
            RefusalClass::Gone => StatusCode::GONE,
            RefusalClass::Locked => StatusCode::LOCKED,
            RefusalClass::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            RefusalClass::Conflict => StatusCode::CONFLICT,
            RefusalClass::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        },
        ErrorKind::TerminalUnavailable => StatusCode::BAD_GATEWAY,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The problem document of `error`.
pub fn body(error: &AppError) -> serde_json::Value {
    let mut body = json!({
        "type": format!("{TYPE_PREFIX}{}", error.kind.slug()),
        "title": error.kind.title(),
        "status": status(error.kind).as_u16(),
        "detail": error.detail,
    });
    if let Some(field) = &error.field {
        body["field"] = json!(field);
    }
    body
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (status(self.kind), body(&self).to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_document_names_type_status_and_field() {
        let doc = body(&AppError::invalid("valid_to", "must be after valid_from"));
        assert_eq!(doc["type"], "urn:acs:problem:invalid-field");
        assert_eq!(doc["status"], 422);
        assert_eq!(doc["field"], "valid_to");
        let locked = AppError::refused(RefusalClass::Locked, "key-locked", "Key locked", "x");
        assert_eq!(status(locked.kind), StatusCode::LOCKED);
    }
}
