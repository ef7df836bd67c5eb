//! [`DriverError`]: what went wrong with a terminal call, classified by what the caller
//! should do about it, and the one place that turns an HTTP status and body into that
//! classification (docs/device-api.md §2).
//!
//! Error texts never carry a session token, a password or image bytes: transport errors
//! are stored without their URL (which holds `?session=`), and reply snippets come only
//! from the device's own error bodies.

use std::sync::Arc;

use super::wire;

/// A call failed; the variant says what the caller should do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DriverError {
    /// The terminal could not be reached or failed on its side (connection refused or
    /// reset, timeout, 5xx): the terminal is offline or busy, try again later.
    #[error("{command}: terminal unreachable ({detail})")]
    Unreachable {
        /// The command (e.g. `load_objects`).
        command: String,
        /// What happened (`timeout`, `connect`, `status 503: …`).
        detail: String,
        /// The transport error, without its URL.
        #[source]
        source: Option<Arc<reqwest::Error>>,
    },
    /// The device refused this request (4xx with its `{"error": …, "code": …}` envelope):
    /// retrying the same request will not help.
    #[error("{command}: refused by the terminal ({status}): {message}")]
    Rejected {
        /// The command.
        command: String,
        /// HTTP status.
        status: u16,
        /// The device's error text.
        message: String,
    },
    /// The login itself was refused: the configured credentials are wrong and an operator
    /// must fix them; do not loop.
    #[error("login refused by the terminal: {message}")]
    Unauthorized {
        /// The device's error text.
        message: String,
    },
    /// A reply we cannot understand (HTML, not JSON, wrong shape, unexpected status): the
    /// terminal and this driver disagree about the API; report it.
    #[error("{command}: unexpected reply ({detail})")]
    Protocol {
        /// The command.
        command: String,
        /// What was wrong.
        detail: String,
    },
    /// The base URL given to [`super::TerminalClient::new`] is not usable.
    #[error("invalid terminal address '{0}'")]
    Address(String),
}

impl DriverError {
    /// Whether trying again later can help (an unreachable or failing terminal).
    pub fn is_retryable(&self) -> bool {
        matches!(self, DriverError::Unreachable { .. })
    }

    /// A reply `command` got that the driver cannot understand; `detail` says why (a
    /// [`wire::MalformedReply`] or a description of the status).
    pub(super) fn protocol(command: &str, detail: impl std::fmt::Display) -> DriverError {
        DriverError::Protocol {
            command: command.to_owned(),
            detail: detail.to_string(),
        }
    }

    /// A transport failure (no HTTP reply at all).
    pub(super) fn transport(command: &str, error: reqwest::Error) -> DriverError {
        let detail = if error.is_timeout() {
            "timeout"
        } else if error.is_connect() {
            "connect"
        } else if error.is_body() || error.is_decode() {
            "reply body"
        } else {
            "connection"
        };
        DriverError::Unreachable {
            command: command.to_owned(),
            detail: detail.to_owned(),
            source: Some(Arc::new(error.without_url())),
        }
    }

    fn server(command: &str, status: u16, body: &[u8]) -> DriverError {
        let detail = match wire::error_envelope(body) {
            Some(message) => format!("status {status}: {message}"),
            None => format!("status {status}"),
        };
        DriverError::Unreachable {
            command: command.to_owned(),
            detail,
            source: None,
        }
    }
}

/// Classifies a final (non-login) reply: `Ok` with the body for 2xx, the matching error
/// otherwise. A 401 reaching this point came after a fresh login, so it is the device
/// refusing this command (e.g. "Invalid access level" for a privileged command).
pub(super) fn classify(command: &str, status: u16, body: Vec<u8>) -> Result<Vec<u8>, DriverError> {
    match status {
        200..=299 => Ok(body),
        // 408 and 429 are the server asking us to come back later.
        408 | 429 | 500..=599 => Err(DriverError::server(command, status, &body)),
        400..=499 => match wire::error_envelope(&body) {
            Some(message) => Err(DriverError::Rejected {
                command: command.to_owned(),
                status,
                message,
            }),
            // Not the firmware's envelope: lighttpd answering an unknown command (404),
            // or something else that is not the terminal API at all.
            None => Err(DriverError::protocol(
                command,
                format!(
                    "status {status} without the error envelope{}",
                    snippet(&body)
                ),
            )),
        },
        _ => Err(DriverError::protocol(
            command,
            format!("status {status}{}", snippet(&body)),
        )),
    }
}

/// Classifies the reply to `login.fcgi`: the session token, or why there is none.
pub(super) fn classify_login(status: u16, body: &[u8]) -> Result<String, DriverError> {
    const LOGIN: &str = "login";
    match status {
        200..=299 => match wire::login_reply(body) {
            wire::LoginReply::Session(token) => Ok(token),
            // The official SDK treats a reply without a session as refused credentials.
            wire::LoginReply::Refused(message) => Err(DriverError::Unauthorized { message }),
            wire::LoginReply::Unreadable(detail) => Err(DriverError::protocol(LOGIN, detail)),
        },
        408 | 429 | 500..=599 => Err(DriverError::server(LOGIN, status, body)),
        400 | 401 | 403 => Err(DriverError::Unauthorized {
            message: wire::error_envelope(body).unwrap_or_else(|| format!("status {status}")),
        }),
        _ => Err(DriverError::protocol(
            LOGIN,
            format!("status {status}{}", snippet(body)),
        )),
    }
}

/// The start of a body that is not the device's JSON, for an error message. Bodies of
/// error replies never hold our secrets (the device does not echo the request).
fn snippet(body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    if !body.is_ascii() && std::str::from_utf8(body).is_err() {
        return format!(": {} bytes of binary", body.len());
    }
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    format!(": {text:?}")
}
