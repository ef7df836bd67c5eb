//! Encryption at rest of the secrets the store keeps for the core's own use – today the
//! terminals' device passwords – with ChaCha20-Poly1305 under a 32-byte key that comes
//! from the environment or a key file, never from the database.
//!
//! A sealed value is `{"sealed": "v1:<base64 of nonce ‖ ciphertext>"}` in place of the
//! clear text. The store seals on write and opens on read, so records and the domain never
//! see the difference.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore as _;
use serde_json::{Value as Json, json};

const VERSION: &str = "v1:";
const NONCE_LEN: usize = 12;

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
}
