//! What a credential is: its kind with the payload (face, card, fingerprint, PIN, QR, cloud
//! key, mobile key), each validated on creation. Secrets and biometrics never appear in
//! `Debug` output: PINs, QR payloads, cloud-key tokens and fingerprint templates are
//! redacted.

use std::fmt;

use crate::card::WiegandCard;
use crate::domain::auth::Factor;
use crate::domain::id::PhoneId;
use crate::domain::validation::{InvalidField, Problem, required_text};

/// A PIN: 4 to 12 decimal digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pin(String);

impl Pin {
    /// Validates a PIN (field `pin`).
    pub fn parse(text: &str) -> Result<Pin, InvalidField> {
        let text = text.trim();
        if text.is_empty() {
            return Err(InvalidField::new("pin", Problem::Empty));
        }
        if !(4..=12).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidField::new(
                "pin",
                Problem::Invalid {
                    expected: "4 to 12 decimal digits",
                },
            ));
        }
        Ok(Pin(text.to_owned()))
    }

    /// The digits.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// A secret text credential (QR payload or cloud-key token): trimmed, non-empty, at most
/// 512 characters. Redacted in `Debug`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretText(String);

impl SecretText {
    /// Validates the text, naming `field` on failure.
    pub fn parse(field: &'static str, text: &str) -> Result<SecretText, InvalidField> {
        required_text(field, text, 512).map(SecretText)
    }

    /// The text.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `other` is this text, compared in constant time for texts of its length
    /// (for digests of secrets, which all have one length).
    pub fn matches(&self, other: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), other.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(<redacted>)")
    }
}

/// Fingerprint templates (opaque, base64 as the terminal stores them). At least one;
/// `Debug` shows only how many.
#[derive(Clone, PartialEq, Eq)]
pub struct FingerprintTemplates(Vec<String>);

impl FingerprintTemplates {
    /// Validates the templates (field `templates`): at least one, none empty.
    pub fn new(templates: Vec<String>) -> Result<FingerprintTemplates, InvalidField> {
        if templates.is_empty() || templates.iter().any(|t| t.trim().is_empty()) {
            return Err(InvalidField::new("templates", Problem::Empty));
        }
        Ok(FingerprintTemplates(templates))
    }

    /// The templates.
    pub fn expose(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Debug for FingerprintTemplates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FingerprintTemplates({} templates)", self.0.len())
    }
}

/// What a credential is, with its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialValue {
    /// A face; `photo_ref` names the stored photo (the photo itself lives in the store).
    Face {
        /// Reference to the enrolled photo.
        photo_ref: String,
    },
    /// A Wiegand card.
    Card(WiegandCard),
    /// Fingerprint templates.
    Fingerprint(FingerprintTemplates),
    /// A PIN.
    Pin(Pin),
    /// A QR payload.
    Qr(SecretText),
    /// A cloud-key link: its token and, optionally, a PIN that must accompany it. The core
    /// never needs either back, so both are keyed digests made before they reach the
    /// domain, and so are the token and PIN presented with the link.
    CloudKey {
        /// The keyed digest of the link token.
        token: SecretText,
        /// The keyed digest of the PIN that must be given with the token, if any.
        pin: Option<SecretText>,
    },
    /// A mobile key. The parent (configured once) has no phone; each copy is bound to one.
    MobileKey {
        /// The phone of a copy; `None` for the parent.
        phone_id: Option<PhoneId>,
    },
}

impl CredentialValue {
    /// A face credential for the stored photo `photo_ref` (field `photo_ref`).
    pub fn face(photo_ref: &str) -> Result<CredentialValue, InvalidField> {
        Ok(CredentialValue::Face {
            photo_ref: required_text("photo_ref", photo_ref, 512)?,
        })
    }

    /// The factor this credential provides.
    pub fn factor(&self) -> Factor {
        match self {
            CredentialValue::Face { .. } => Factor::Face,
            CredentialValue::Card(_) => Factor::Card,
            CredentialValue::Fingerprint(_) => Factor::Fingerprint,
            CredentialValue::Pin(_) => Factor::Pin,
            CredentialValue::Qr(_) => Factor::Qr,
            CredentialValue::CloudKey { .. } => Factor::CloudKey,
            CredentialValue::MobileKey { .. } => Factor::MobileKey,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_validated_and_secrets_redacted() {
        assert_eq!(Pin::parse("12").unwrap_err().field, "pin");
        assert_eq!(Pin::parse("12a4").unwrap_err().field, "pin");
        assert!(format!("{:?}", Pin::parse("987654").unwrap()).contains("redacted"));
        assert_eq!(SecretText::parse("qr", " ").unwrap_err().field, "qr");
        let templates = FingerprintTemplates::new(vec!["c2VjcmV0".into()]).unwrap();
        assert!(!format!("{templates:?}").contains("c2VjcmV0"));
        assert!(FingerprintTemplates::new(vec![]).is_err());
        assert_eq!(CredentialValue::face(" ").unwrap_err().field, "photo_ref");
    }
}
