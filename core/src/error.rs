//! The application's error: what went wrong, by what the caller should do about it,
//! without any transport in it. The integrator API turns it into an RFC 9457 problem
//! document (`http::problem`); the receiver, the sync engine and the CLI read its kind and
//! detail directly.

use crate::domain::InvalidField;
use crate::store::StoreError;

/// A refusal's class: how a caller should take it (the HTTP layer maps each to a status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalClass {
    /// Not allowed (a wrong PIN, a denied door).
    Forbidden,
    /// Gone for good (a used or expired invitation).
    Gone,
    /// Locked until someone unlocks it (a cloud key after too many wrong PINs).
    Locked,
    /// Not now: too many requests, try again later.
    TooManyRequests,
    /// Not in this state (an invitation not valid yet).
    Conflict,
    /// The request was carried out and failed on its own terms (a capture the terminal
    /// reported as failed).
    Unprocessable,
}

/// What kind of error it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is not JSON or does not have the expected shape.
    Malformed,
    /// A field is invalid (`field` names it).
    InvalidField,
    /// The thing addressed does not exist for this tenant.
    NotFound,
    /// The resource exists but does not take this method.
    MethodNotAllowed,
    /// A uniqueness or state conflict (a duplicate card …).
    Conflict,
    /// The object's state does not allow the operation (a revoked credential …).
    InvalidState,
    /// Missing, malformed, unknown or revoked API key.
    Unauthorized,
    /// The body is larger than accepted.
    TooLarge,
    /// The same idempotency key came with a different request.
    IdempotencyReused,
    /// A terminal the request needed did not answer (or answered nonsense).
    TerminalUnavailable,
    /// A refusal of its own kind, for public endpoints whose callers act on the kind.
    Refused {
        /// Stable slug (`wrong-pin`, `invitation-used` …).
        slug: &'static str,
        /// Short, fixed title.
        title: &'static str,
        /// How to take it.
        class: RefusalClass,
    },
    /// Something failed on our side; the detail stays generic.
    Internal,
}

impl ErrorKind {
    /// The stable slug of the kind (`invalid-field`, `not-found` …).
    pub fn slug(self) -> &'static str {
        match self {
            ErrorKind::Malformed => "malformed-request",
            ErrorKind::InvalidField => "invalid-field",
            ErrorKind::NotFound => "not-found",
            ErrorKind::MethodNotAllowed => "method-not-allowed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidState => "invalid-state",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::TooLarge => "payload-too-large",
            ErrorKind::IdempotencyReused => "idempotency-key-reused",
            ErrorKind::TerminalUnavailable => "terminal-unavailable",
            ErrorKind::Refused { slug, .. } => slug,
            ErrorKind::Internal => "internal",
        }
    }

    /// The short, fixed title of the kind.
    pub fn title(self) -> &'static str {
        match self {
            ErrorKind::Malformed => "Malformed request",
            ErrorKind::InvalidField => "Invalid field",
            ErrorKind::NotFound => "Not found",
            ErrorKind::MethodNotAllowed => "Method not allowed",
            ErrorKind::Conflict => "Conflict",
            ErrorKind::InvalidState => "Invalid state",
            ErrorKind::Unauthorized => "Unauthorized",
            ErrorKind::TooLarge => "Payload too large",
            ErrorKind::IdempotencyReused => "Idempotency key reused",
            ErrorKind::TerminalUnavailable => "Terminal unavailable",
            ErrorKind::Refused { title, .. } => title,
            ErrorKind::Internal => "Internal error",
        }
    }
}

/// An error of the application.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct AppError {
    /// What kind of error.
    pub kind: ErrorKind,
    /// What happened, for a human.
    pub detail: String,
    /// The request member at fault (`valid_to`, `doors[0].in_auth_types` …).
    pub field: Option<String>,
}

impl AppError {
    fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        AppError {
            kind,
            detail: detail.into(),
            field: None,
        }
    }

    /// The body is not JSON or does not have the expected shape.
    pub fn malformed(detail: impl Into<String>) -> Self {
        AppError::new(ErrorKind::Malformed, detail)
    }

    /// A field is invalid (names it).
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        AppError {
            field: Some(field.into()),
            ..AppError::new(ErrorKind::InvalidField, detail)
        }
    }

    /// The thing addressed does not exist for this tenant.
    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        AppError::new(ErrorKind::NotFound, format!("{what} {id} does not exist"))
    }

    /// No route here.
    pub fn no_route(path: &str) -> Self {
        AppError::new(ErrorKind::NotFound, format!("no such endpoint: {path}"))
    }

    /// The resource does not take `method`.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        AppError::new(
            ErrorKind::MethodNotAllowed,
            format!("{path} does not take {method}"),
        )
    }

    /// A uniqueness or state conflict (duplicate card, already removed …).
    pub fn conflict(field: Option<&str>, detail: impl Into<String>) -> Self {
        AppError {
            field: field.map(str::to_owned),
            ..AppError::new(ErrorKind::Conflict, detail)
        }
    }

    /// The state of the object does not allow the operation (revoked credential …).
    pub fn invalid_state(detail: impl Into<String>) -> Self {
        AppError::new(ErrorKind::InvalidState, detail)
    }

    /// Missing, malformed, unknown or revoked API key.
    pub fn unauthorized() -> Self {
        AppError::new(
            ErrorKind::Unauthorized,
            "a valid API key is required in 'Authorization: Bearer <key>'",
        )
    }

    /// The body is larger than accepted.
    pub fn too_large(limit: usize) -> Self {
        AppError::new(
            ErrorKind::TooLarge,
            format!("the request body must be at most {limit} bytes"),
        )
    }

    /// The same idempotency key came with a different request.
    pub fn idempotency_mismatch(key: &str) -> Self {
        AppError::new(
            ErrorKind::IdempotencyReused,
            format!("Idempotency-Key '{key}' was already used with a different request"),
        )
    }

    /// A refusal of its own kind (`invitation-used`, `wrong-pin`, `rate-limited` …), for
    /// the public endpoints whose callers act on the kind.
    pub fn refused(
        class: RefusalClass,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        AppError::new(ErrorKind::Refused { slug, title, class }, detail)
    }

    /// A terminal the request needed did not answer; `detail` says what happened.
    pub fn terminal_unavailable(detail: impl Into<String>) -> Self {
        AppError::new(ErrorKind::TerminalUnavailable, detail)
    }

    /// Something failed on our side; the detail stays generic.
    pub fn internal() -> Self {
        AppError::new(
            ErrorKind::Internal,
            "the request could not be completed; nothing was changed",
        )
    }
}

impl From<InvalidField> for AppError {
    fn from(e: InvalidField) -> Self {
        let detail = e.to_string();
        AppError::invalid(e.field, detail)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            // A secret value (PIN, QR payload, token) is never repeated back.
            StoreError::Conflict { scope, value } => match scope {
                // The device answering at the address given is another terminal's, in this
                // tenant or another one (which is not named).
                "device_id" => AppError::conflict(
                    Some("address"),
                    format!(
                        "the device at this address (device_id {value}) is already registered as a terminal"
                    ),
                ),
                "acs_id" | "card" | "burned_card" => {
                    AppError::conflict(Some(scope), format!("{scope} '{value}' is already in use"))
                }
                _ => AppError::conflict(Some(scope), format!("this {scope} is already in use")),
            },
            StoreError::Missing { kind, id } => AppError::not_found(kind.as_str(), id),
            StoreError::IdempotencyMismatch(key) => AppError::idempotency_mismatch(&key),
            other => {
                tracing::error!(error = %other, "store failure");
                AppError::internal()
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
            let problem = AppError::from(StoreError::Conflict {
                scope,
                value: "4321-secret".into(),
            });
            assert_eq!(problem.kind, ErrorKind::Conflict);
            assert_eq!(problem.field.as_deref(), Some(scope));
            assert!(!problem.detail.contains("4321"), "{}", problem.detail);
        }
        let problem = AppError::from(StoreError::Conflict {
            scope: "acs_id",
            value: "E-1".into(),
        });
        assert_eq!(problem.detail, "acs_id 'E-1' is already in use");
    }

    #[test]
    fn every_kind_has_a_slug_and_a_title() {
        let refused = ErrorKind::Refused {
            slug: "wrong-pin",
            title: "Wrong PIN",
            class: RefusalClass::Forbidden,
        };
        assert_eq!(refused.slug(), "wrong-pin");
        assert_eq!(
            ErrorKind::IdempotencyReused.slug(),
            "idempotency-key-reused"
        );
        assert_eq!(ErrorKind::Internal.title(), "Internal error");
    }
}
