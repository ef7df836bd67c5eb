//! Webhook signatures: every request carries
//!
//! - `Acs-Webhook-Id: evt_…` – the event's id, the same on every attempt;
//! - `Acs-Webhook-Timestamp: <Unix seconds>` – when this attempt was signed;
//! - `Acs-Webhook-Signature: v1=<hex> [v1=<hex>]` – HMAC-SHA256, keyed with the endpoint's
//!   secret exactly as shown (`whsec_…`), of `"{timestamp}.{body}"`; during a rotation
//!   the previous secret signs too, one `v1=` per secret, separated by a space.
//!
//! A receiver recomputes the HMAC over the raw body, compares it in constant time with
//! each `v1=` value and refuses a timestamp more than [`REPLAY_WINDOW`] seconds from its
//! own clock.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header with the event's id.
pub const ID_HEADER: &str = "acs-webhook-id";
/// Header with the instant of signing (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "acs-webhook-timestamp";
/// Header with the signatures.
pub const SIGNATURE_HEADER: &str = "acs-webhook-signature";

/// How far (seconds) a receiver should accept a timestamp from its own clock.
pub const REPLAY_WINDOW: i64 = 300;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The timestamp is outside the replay window.
    #[error("the timestamp is more than {REPLAY_WINDOW} s away from now")]
    Stale,
    /// No `v1=` value matches.
    #[error("no signature matches")]
    Mismatch,
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The hex HMAC-SHA256 of `"{timestamp}.{body}"` under `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    mac(secret, timestamp, body)
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `Acs-Webhook-Signature` value: one `v1=` per secret.
pub fn header(secrets: &[&str], timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| format!("v1={}", sign(s, timestamp, body)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks a request as a receiver would: the timestamp within [`REPLAY_WINDOW`] of `now`
/// (Unix seconds) and one `v1=` value made with `secret`.
pub fn verify(
    secret: &str,
    signature_header: &str,
    timestamp: i64,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    if (now - timestamp).abs() > REPLAY_WINDOW {
        return Err(SignatureError::Stale);
    }
    let matches = signature_header
        .split(' ')
        .filter_map(|v| v.strip_prefix("v1="))
        .filter_map(|hex| {
            (hex.len() % 2 == 0)
                .then(|| {
                    (0..hex.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                        .collect::<Option<Vec<u8>>>()
                })
                .flatten()
        })
        .any(|bytes| mac(secret, timestamp, body).verify_slice(&bytes).is_ok());
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_vector() {
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            sign("whsec_test", 1_700_000_000, br#"{"a":1}"#),
            "38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn signatures_verify_with_either_secret_within_the_window_only() {
        let body = br#"{"id":"evt_1"}"#;
        let both = header(&["whsec_new", "whsec_old"], 1000, body);
        assert_eq!(verify("whsec_new", &both, 1000, body, 1100), Ok(()));
        assert_eq!(verify("whsec_old", &both, 1000, body, 1100), Ok(()));
        assert_eq!(
            verify("whsec_other", &both, 1000, body, 1100),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("whsec_new", &both, 1000, b"{}", 1100),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("whsec_new", &both, 1000, body, 1000 + REPLAY_WINDOW + 1),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify("whsec_new", "v1=zz v2=00", 1000, body, 1000),
            Err(SignatureError::Mismatch)
        );
    }
}
