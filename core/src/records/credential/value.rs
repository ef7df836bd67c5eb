//! The `value` member of a credential's document: what the credential is, tagged by
//! `kind` – `{kind: "face", photo_ref}`, `{kind: "card", facility_code, number}`,
//! `{kind: "fingerprint", templates}`, `{kind: "pin", pin}`, `{kind: "qr", payload}`,
//! `{kind: "cloud_key", token, pin?}`, `{kind: "mobile_key", phone_id?}` (no phone: the
//! parent). A cloud key's token and PIN are keyed digests already; PINs, QR payloads and
//! device passwords are sealed by the store's sealing layer
//! ([`crate::store::SealedStore`]); API views redact all of them.

use serde::{Deserialize, Serialize};

use super::super::CodecError;
use super::super::codec::refused;
use crate::card::WiegandCard;
use crate::domain::{CredentialValue, FingerprintTemplates, PhoneId, Pin, SecretText};
use crate::store::Kind;

/// A credential's value as stored.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum ValueDoc {
    Face {
        photo_ref: String,
    },
    Card {
        facility_code: u32,
        number: u32,
    },
    Fingerprint {
        templates: Vec<String>,
    },
    Pin {
        pin: String,
    },
    Qr {
        payload: String,
    },
    CloudKey {
        token: String,
        #[serde(default)]
        pin: Option<String>,
    },
    MobileKey {
        #[serde(default)]
        phone_id: Option<u64>,
    },
}

/// The stored form of `value`.
pub(super) fn value_doc(value: &CredentialValue) -> ValueDoc {
    match value {
        CredentialValue::Face { photo_ref } => ValueDoc::Face {
            photo_ref: photo_ref.clone(),
        },
        CredentialValue::Card(card) => ValueDoc::Card {
            facility_code: card.facility_code(),
            number: card.number(),
        },
        CredentialValue::Fingerprint(templates) => ValueDoc::Fingerprint {
            templates: templates.expose().to_vec(),
        },
        CredentialValue::Pin(pin) => ValueDoc::Pin {
            pin: pin.expose().to_owned(),
        },
        CredentialValue::Qr(payload) => ValueDoc::Qr {
            payload: payload.expose().to_owned(),
        },
        CredentialValue::CloudKey { token, pin } => ValueDoc::CloudKey {
            token: token.expose().to_owned(),
            pin: pin.as_ref().map(|p| p.expose().to_owned()),
        },
        CredentialValue::MobileKey { phone_id } => ValueDoc::MobileKey {
            phone_id: phone_id.map(PhoneId::get),
        },
    }
}

/// The value of credential `id` back from its stored form, validated as on issue.
pub(super) fn value_of(id: u64, doc: ValueDoc) -> Result<CredentialValue, CodecError> {
    let refused = || refused(Kind::Credential, id);
    Ok(match doc {
        ValueDoc::Face { photo_ref } => CredentialValue::face(&photo_ref).map_err(refused())?,
        ValueDoc::Card {
            facility_code,
            number,
        } => CredentialValue::Card(WiegandCard::new(facility_code, number)),
        ValueDoc::Fingerprint { templates } => {
            CredentialValue::Fingerprint(FingerprintTemplates::new(templates).map_err(refused())?)
        }
        ValueDoc::Pin { pin } => CredentialValue::Pin(Pin::parse(&pin).map_err(refused())?),
        ValueDoc::Qr { payload } => {
            CredentialValue::Qr(SecretText::parse("qr", &payload).map_err(refused())?)
        }
        ValueDoc::CloudKey { token, pin } => CredentialValue::CloudKey {
            token: SecretText::parse("token", &token).map_err(refused())?,
            pin: pin
                .map(|p| SecretText::parse("pin", &p))
                .transpose()
                .map_err(refused())?,
        },
        ValueDoc::MobileKey { phone_id } => CredentialValue::MobileKey {
            phone_id: phone_id.map(PhoneId::new),
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{issue, round_trip};
    use super::*;

    #[test]
    fn secrets_are_stored_but_not_printed() {
        let cloud = issue(
            52,
            21,
            CredentialValue::CloudKey {
                token: SecretText::parse("token", "tok-XYZ").unwrap(),
                pin: Some(SecretText::parse("pin", "4321").unwrap()),
            },
        );
        let document = round_trip(&cloud);
        assert_eq!(
            document["value"],
            json!({"kind": "cloud_key", "token": "tok-XYZ", "pin": "4321"})
        );
        assert!(!format!("{cloud:?}").contains("tok-XYZ"));

        let finger = issue(
            53,
            21,
            CredentialValue::Fingerprint(
                FingerprintTemplates::new(vec!["AAAA".into(), "BBBB".into()]).unwrap(),
            ),
        );
        let document = round_trip(&finger);
        assert_eq!(document["value"]["templates"], json!(["AAAA", "BBBB"]));
        assert!(!format!("{finger:?}").contains("AAAA"));

        let qr = issue(
            54,
            21,
            CredentialValue::Qr(SecretText::parse("qr", "Q-1").unwrap()),
        );
        assert_eq!(
            round_trip(&qr)["value"],
            json!({"kind": "qr", "payload": "Q-1"})
        );
        let pin = issue(55, 21, CredentialValue::Pin(Pin::parse("000123").unwrap()));
        assert_eq!(
            round_trip(&pin)["value"],
            json!({"kind": "pin", "pin": "000123"})
        );
    }
}
