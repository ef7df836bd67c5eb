//! What a credential request asks for: the request body of every kind, read and checked
//! (and generated values – tokens, PINs – made) before the tenant's write turn.

use jiff::Timestamp;
use rand::Rng as _;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::input::opt_instant;
use crate::card::WiegandCard;
use crate::domain::{CredentialValue, FingerprintTemplates, Pin, SecretText};
use crate::error::AppError;

use super::people::decode_selfie;

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum CredentialIn {
    Face {
        selfie: String,
    },
    Card {
        facility_code: u32,
        card_number: u32,
        starts_at: Option<String>,
        ends_at: Option<String>,
    },
    Pin {
        pin: String,
        starts_at: Option<String>,
        ends_at: Option<String>,
    },
    Qr {
        qr: Option<String>,
        starts_at: Option<String>,
        ends_at: Option<String>,
        max_uses: Option<u32>,
    },
    Fingerprint {
        templates: Vec<String>,
    },
    CloudKey {
        pin: Option<String>,
        starts_at: Option<String>,
        ends_at: Option<String>,
        #[serde(default)]
        one_time: bool,
        #[serde(default)]
        send_by_email: bool,
        #[serde(default)]
        send_by_text: bool,
    },
    MobileKey {
        starts_at: Option<String>,
        ends_at: Option<String>,
    },
}

pub(crate) fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// What a credential request asks for, checked before the tenant's write turn.
#[derive(Clone)]
pub(crate) enum Requested {
    Face(Vec<u8>),
    Value {
        value: CredentialValue,
        starts: Option<Timestamp>,
        ends: Option<Timestamp>,
        max_uses: Option<u32>,
        /// Generated values shown once in the reply.
        shown: serde_json::Map<String, Json>,
        /// Whether to send a cloud key by e-mail and by text.
        send: (bool, bool),
        /// A cloud key's token and PIN in clear, for its messages only (the value holds
        /// their keyed digests).
        clear: Option<Box<(String, String)>>,
    },
}

/// The request checked; a cloud key's token and PIN become keyed digests by `digest`
/// before they reach the credential.
pub(crate) fn requested(
    body: CredentialIn,
    digest: impl Fn(&str) -> String,
) -> Result<Requested, AppError> {
    let window = |starts: Option<String>, ends: Option<String>| {
        Ok::<_, AppError>((
            opt_instant("starts_at", starts.as_deref())?,
            opt_instant("ends_at", ends.as_deref())?,
        ))
    };
    let mut shown = serde_json::Map::new();
    let mut send = (false, false);
    let mut clear = None;
    let (value, (starts, ends), max_uses) = match body {
        CredentialIn::Face { selfie } => {
            return Ok(Requested::Face(decode_selfie("selfie", &selfie)?));
        }
        CredentialIn::Card {
            facility_code,
            card_number,
            starts_at,
            ends_at,
        } => (
            CredentialValue::Card(WiegandCard::new(facility_code, card_number)),
            window(starts_at, ends_at)?,
            None,
        ),
        CredentialIn::Pin {
            pin,
            starts_at,
            ends_at,
        } => (
            CredentialValue::Pin(Pin::parse(&pin)?),
            window(starts_at, ends_at)?,
            None,
        ),
        CredentialIn::Qr {
            qr,
            starts_at,
            ends_at,
            max_uses,
        } => {
            let text = match qr {
                Some(text) => text,
                None => {
                    let text = random_token(24);
                    shown.insert("qr".into(), json!(text));
                    text
                }
            };
            (
                CredentialValue::Qr(SecretText::parse("qr", &text)?),
                window(starts_at, ends_at)?,
                max_uses,
            )
        }
        CredentialIn::Fingerprint { templates } => (
            CredentialValue::Fingerprint(FingerprintTemplates::new(templates)?),
            (None, None),
            None,
        ),
        CredentialIn::CloudKey {
            pin,
            starts_at,
            ends_at,
            one_time,
            send_by_email,
            send_by_text,
        } => {
            let token = random_token(32);
            shown.insert("token".into(), json!(token));
            send = (send_by_email, send_by_text);
            // A cloud key always has a PIN: the operator's, or one made here and shown once.
            let pin = match pin {
                Some(pin) => Pin::parse(&pin)?,
                None => {
                    let digits = random_pin(6);
                    shown.insert("pin".into(), json!(digits));
                    Pin::parse(&digits)?
                }
            };
            let value = CredentialValue::CloudKey {
                token: SecretText::parse("token", &digest(&token))?,
                pin: Some(SecretText::parse("pin", &digest(pin.expose()))?),
            };
            clear = Some(Box::new((token, pin.expose().to_owned())));
            (value, window(starts_at, ends_at)?, one_time.then_some(1))
        }
        CredentialIn::MobileKey { starts_at, ends_at } => (
            CredentialValue::MobileKey { phone_id: None },
            window(starts_at, ends_at)?,
            None,
        ),
    };
    Ok(Requested::Value {
        value,
        starts,
        ends,
        max_uses,
        shown,
        send,
        clear,
    })
}

/// `len` random decimal digits.
pub(crate) fn random_pin(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}
