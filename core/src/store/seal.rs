//! Encryption at rest of the secrets the store keeps for the core's own use – today the
//! terminals' device passwords – with ChaCha20-Poly1305 under a 32-byte key that comes
//! from the environment or a key file, never from the database.
//!
//! A sealed value is `{"sealed": "v1:<base64 of nonce ‖ ciphertext>"}` in place of the
//! clear text (a text field such as a message body holds `sealed:v1:…`).
//!
//! Secrets the core never reads back are kept as keyed digests instead:
//! `h1:<hex of HMAC-SHA256>` under a key derived from the same secret key and separated
//! from the sealing key, compared in constant time ([`SecretKey::digest`],
//! [`SecretKey::verify`]). What is sealed and what is digested is decided by
//! [`super::secrets`].

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use serde_json::{Value as Json, json};

const VERSION: &str = "v1:";
const NONCE_LEN: usize = 12;
/// What a sealed text value starts with.
const SEALED_TEXT: &str = "sealed:v1:";
/// What a keyed digest starts with.
const DIGEST: &str = "h1:";
/// Separates the keyed-digest key from the sealing key (both come from one secret key).
const DIGEST_KEY_LABEL: &[u8] = b"acs-core keyed digest v1";

type HmacSha256 = Hmac<sha2::Sha256>;

/// The key sealing secrets at rest. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// A key that could not be read, or a sealed value that could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key text is not 32 bytes in base64.
    #[error("the secret key must be 32 bytes written in base64 (44 characters)")]
    BadKey,
    /// The sealed text is damaged, or was sealed with another key.
    #[error("a sealed secret cannot be opened: wrong key or damaged data")]
    CannotOpen,
}

impl SecretKey {
    /// A fresh random key.
    pub fn generate() -> SecretKey {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        SecretKey(key)
    }

    /// The all-zero key: what a store without a key digests under, so that a bare store
    /// (tests, memory) compares the same way as a sealed one. It protects nothing.
    pub fn unprotected() -> SecretKey {
        SecretKey([0; 32])
    }

    /// Reads a key written by [`SecretKey::to_base64`] (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<SecretKey, SealError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| SealError::BadKey)?;
        Ok(SecretKey(bytes.try_into().map_err(|_| SealError::BadKey)?))
    }

    /// The key as base64 text (for a key file).
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// The HMAC keyed with the digest key, derived from the secret key as
    /// HMAC-SHA256(secret key, label) so that it never equals the sealing key.
    fn digest_mac(&self) -> HmacSha256 {
        let mut derive = hmac_with(&self.0);
        derive.update(DIGEST_KEY_LABEL);
        hmac_with(&derive.finalize().into_bytes())
    }

    /// The keyed digest of `clear`: `h1:<hex of HMAC-SHA256>`. Equal texts have equal
    /// digests (so uniqueness and lookups work on them); without the key they reveal
    /// nothing, not even for short PINs.
    pub fn digest(&self, clear: &str) -> String {
        let mut mac = self.digest_mac();
        mac.update(clear.as_bytes());
        let bytes = mac.finalize().into_bytes();
        let mut text = String::with_capacity(DIGEST.len() + 64);
        text.push_str(DIGEST);
        for b in bytes {
            text.push_str(&format!("{b:02x}"));
        }
        text
    }

    /// Whether `clear` is what `digest` was made from, compared in constant time.
    pub fn verify(&self, clear: &str, digest: &str) -> bool {
        let Some(expected) = digest.strip_prefix(DIGEST).and_then(from_hex) else {
            return false;
        };
        let mut mac = self.digest_mac();
        mac.update(clear.as_bytes());
        mac.verify_slice(&expected).is_ok()
    }

    /// Seals a text field (a message body, a stored reply) as `sealed:v1:<base64>`.
    pub fn seal_text(&self, clear: &str) -> String {
        let sealed = self.seal(clear);
        let inner = sealed["sealed"].as_str().unwrap_or_default();
        format!("sealed:{inner}")
    }

    /// Opens a text made by [`SecretKey::seal_text`].
    pub fn open_text(&self, sealed: &str) -> Result<String, SealError> {
        let inner = sealed
            .strip_prefix("sealed:")
            .ok_or(SealError::CannotOpen)?;
        self.open(&json!({ "sealed": inner }))
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }

    /// Seals `clear` (a fresh nonce each time).
    pub fn seal(&self, clear: &str) -> Json {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), clear.as_bytes())
            // Encryption only fails for inputs beyond the cipher's 256 GiB limit.
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        json!({"sealed": format!("{VERSION}{}", base64::engine::general_purpose::STANDARD.encode(bytes))})
    }

    /// Opens a value made by [`SecretKey::seal`].
    pub fn open(&self, sealed: &Json) -> Result<String, SealError> {
        let text = sealed
            .get("sealed")
            .and_then(Json::as_str)
            .and_then(|t| t.strip_prefix(VERSION))
            .ok_or(SealError::CannotOpen)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| SealError::CannotOpen)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::CannotOpen);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let clear = self
            .cipher()
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| SealError::CannotOpen)?;
        String::from_utf8(clear).map_err(|_| SealError::CannotOpen)
    }
}

/// Whether a stored value is sealed.
pub fn is_sealed(value: &Json) -> bool {
    value.get("sealed").is_some()
}

/// Whether a text field holds a sealed text ([`SecretKey::seal_text`]).
pub fn is_sealed_text(text: &str) -> bool {
    text.starts_with(SEALED_TEXT)
}

/// Whether a text is a keyed digest ([`SecretKey::digest`]).
pub fn is_digest(text: &str) -> bool {
    text.strip_prefix(DIGEST)
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An HMAC-SHA256 under `key` (HMAC takes keys of any length).
fn hmac_with(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as hmac::Mac>::new_from_slice(key)
        .unwrap_or_else(|_| <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default()))
}

fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_their_key_only() {
        let key = SecretKey::generate();
        let sealed = key.seal("s3cret");
        assert!(!sealed.to_string().contains("s3cret"));
        assert_ne!(sealed, key.seal("s3cret"), "a fresh nonce each time");
        assert_eq!(key.open(&sealed).as_deref(), Ok("s3cret"));
        assert_eq!(
            SecretKey::generate().open(&sealed),
            Err(SealError::CannotOpen)
        );
        let again = SecretKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(again.open(&sealed).as_deref(), Ok("s3cret"));
        assert_eq!(
            SecretKey::from_base64("short").err(),
            Some(SealError::BadKey)
        );
        assert!(format!("{key:?}").contains("redacted"));
    }

    #[test]
    fn digests_are_keyed_stable_and_verified() {
        let key = SecretKey::generate();
        let digest = key.digest("4711");
        assert!(is_digest(&digest), "{digest}");
        assert!(!digest.contains("4711"));
        assert_eq!(digest, key.digest("4711"), "equal texts, equal digests");
        assert_ne!(digest, key.digest("4712"));
        assert_ne!(digest, SecretKey::generate().digest("4711"), "keyed");
        assert!(key.verify("4711", &digest));
        assert!(!key.verify("4712", &digest));
        assert!(!key.verify("4711", "h1:00"));
        assert!(!key.verify("4711", "4711"));
        assert!(!is_digest("h1:xyz"));
        // The digest key is not the sealing key: a digest is not the MAC of the sealing key.
        let mut plain = hmac_with(&key.0);
        plain.update(b"4711");
        let plain: String = plain
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_ne!(digest, format!("h1:{plain}"));
    }

    #[test]
    fn sealed_texts_open_with_their_key() {
        let key = SecretKey::generate();
        let sealed = key.seal_text("Your PIN is 918273");
        assert!(is_sealed_text(&sealed) && !sealed.contains("918273"));
        assert_eq!(key.open_text(&sealed).as_deref(), Ok("Your PIN is 918273"));
        assert!(SecretKey::generate().open_text(&sealed).is_err());
        assert!(key.open_text("Your PIN").is_err());
    }
}
