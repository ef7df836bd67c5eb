//! Errors of the integrator API as RFC 9457 problem documents
//! (`application/problem+json`): a stable `type` per kind of error, the HTTP status, a
//! human `detail`, and `field` naming the request member at fault when there is one.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::InvalidField;
use crate::store::StoreError;

/// An error answered to an integrator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ApiProblem {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable slug, the last part of `type` (`invalid-field`, `not-found` …).
    pub kind: &'static str,
    /// Short, fixed title of the kind.
    pub title: &'static str,
    /// What happened, for a human.
    pub detail: String,
    /// The request member at fault (`valid_to`, `doors[0].in_auth_types` …).
    pub field: Option<String>,
}

/// The `type` URI prefix of every problem.
pub const TYPE_PREFIX: &str = "urn:acs:problem:";

impl ApiProblem {
    fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: String) -> Self {
        ApiProblem {
            status,
            kind,
            title,
            detail,
            field: None,
        }
    }

    /// The body is not JSON or does not have the expected shape.
    pub fn malformed(detail: impl Into<String>) -> Self {
        ApiProblem::new(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "Malformed request",
            detail.into(),
        )
    }

    /// A field is invalid (names it).
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let field = field.into();
        ApiProblem {
            field: Some(field),
            ..ApiProblem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-field",
                "Invalid field",
                detail.into(),
            )
        }
    }

    /// The thing addressed does not exist for this tenant.
    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        ApiProblem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("{what} {id} does not exist"),
        )
    }

    /// No route here.
    pub fn no_route(path: &str) -> Self {
        ApiProblem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("no such endpoint: {path}"),
        )
    }

    /// A uniqueness or state conflict (duplicate card, already removed …).
    pub fn conflict(field: Option<&str>, detail: impl Into<String>) -> Self {
        ApiProblem {
            field: field.map(str::to_owned),
            ..ApiProblem::new(StatusCode::CONFLICT, "conflict", "Conflict", detail.into())
        }
    }

    /// The state of the object does not allow the operation (revoked credential …).
    pub fn invalid_state(detail: impl Into<String>) -> Self {
        ApiProblem::new(
            StatusCode::CONFLICT,
            "invalid-state",
            "Invalid state",
            detail.into(),
        )
    }

    /// Missing, malformed, unknown or revoked API key.
    pub fn unauthorized() -> Self {
        ApiProblem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "a valid API key is required in 'Authorization: Bearer <key>'".into(),
        )
    }

    /// The body is larger than the API accepts.
    pub fn too_large(limit: usize) -> Self {
        ApiProblem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            format!("the request body must be at most {limit} bytes"),
        )
    }

    /// The same idempotency key came with a different request.
    pub fn idempotency_mismatch(key: &str) -> Self {
        ApiProblem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency key reused",
            format!("Idempotency-Key '{key}' was already used with a different request"),
        )
    }

    /// A refusal of its own kind (`invitation-used`, `wrong-pin`, `rate-limited` …), for
    /// the public endpoints whose callers act on the kind.
    pub fn refused(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        ApiProblem::new(status, kind, title, detail.into())
    }

    /// Something failed on our side; the detail stays generic.
    pub fn internal() -> Self {
        ApiProblem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the request could not be completed; nothing was changed".into(),
        )
    }

    /// The JSON document.
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({
            "type": format!("{TYPE_PREFIX}{}", self.kind),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(field) = &self.field {
            body["field"] = json!(field);
        }
        body
    }
}

impl IntoResponse for ApiProblem {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body().to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

impl From<InvalidField> for ApiProblem {
    fn from(e: InvalidField) -> Self {
        let detail = e.to_string();
        ApiProblem::invalid(e.field, detail)
    }
}

impl From<StoreError> for ApiProblem {
    fn from(e: StoreError) -> Self {
        match e {
            // A secret value (PIN, QR payload, token) is never repeated back.
            StoreError::Conflict { scope, value } => match scope {
                "acs_id" | "card" | "burned_card" => ApiProblem::conflict(
                    Some(scope),
                    format!("{scope} '{value}' is already in use"),
                ),
                _ => ApiProblem::conflict(Some(scope), format!("this {scope} is already in use")),
            },
            StoreError::Missing { kind, id } => ApiProblem::not_found(kind.as_str(), id),
            StoreError::IdempotencyMismatch(key) => ApiProblem::idempotency_mismatch(&key),
            other => {
                tracing::error!(error = %other, "store failure");
                ApiProblem::internal()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflict_on_a_secret_value_never_repeats_it() {
        for scope in ["pin", "qr", "cloud_key", "invitation_token"] {
            let problem = ApiProblem::from(StoreError::Conflict {
                scope,
                value: "4321-secret".into(),
            });
            assert_eq!(problem.status, StatusCode::CONFLICT);
            assert_eq!(problem.field.as_deref(), Some(scope));
            assert!(!problem.detail.contains("4321"), "{}", problem.detail);
        }
        let problem = ApiProblem::from(StoreError::Conflict {
            scope: "acs_id",
            value: "E-1".into(),
        });
        assert_eq!(problem.detail, "acs_id 'E-1' is already in use");
    }
}
