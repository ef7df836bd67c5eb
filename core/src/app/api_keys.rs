//! Tenant API keys: `acs_<prefix>_<secret>`, shown once at creation and stored only as a
//! SHA-256 digest (the keys are long random strings, so a plain digest is enough and a
//! lookup stays one indexed query). A revoked key stops working at once.

use rand::Rng as _;
use sha2::{Digest as _, Sha256};

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A freshly generated key: the secret to hand over once, and what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    /// The whole key (`acs_…`); never stored, never logged.
    pub secret: String,
    /// Its public prefix (shown in listings).
    pub prefix: String,
    /// Its digest (stored).
    pub hash: String,
}

fn random_text(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Generates a new key.
pub(super) fn generate() -> GeneratedKey {
    let prefix = random_text(8);
    let secret = format!("acs_{prefix}_{}", random_text(32));
    GeneratedKey {
        hash: digest(&secret),
        prefix,
        secret,
    }
}

/// The stored digest of a key.
pub(super) fn digest(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_only_their_digest_matches() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(&format!("acs_{}_", a.prefix)));
        assert_eq!(digest(&a.secret), a.hash);
        assert_ne!(digest(&b.secret), a.hash);
        assert!(!a.hash.contains(&a.secret));
    }
}
