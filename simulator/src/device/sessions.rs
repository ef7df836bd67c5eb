//! Login sessions (docs/device-api.md §1): opaque 24-character tokens from `[A-Za-z0-9/]`,
//! valid until logout, `change_login` or a reboot. Sessions are volatile: they are never
//! persisted, so a reboot or restart always drops them.

use foldhash::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Token alphabet: base64 without `+` (a form decoder would turn it into a space).
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/";
/// Token length seen on real iDFace and Amico devices.
pub const TOKEN_LEN: usize = 24;

/// The live sessions of one device.
#[derive(Debug)]
pub struct Sessions {
    live: HashMap<String, Session>,
    rng: ChaCha8Rng,
}

/// What the device remembers about a session.
#[derive(Debug)]
pub struct Session {
    /// UTC epoch second the session was opened.
    pub opened_at: i64,
    /// UTC epoch second of the last authenticated command (moved by commands that only
    /// read the device, so it is kept apart from the rest of the state's locking).
    pub last_used: AtomicI64,
}

impl Sessions {
    /// No sessions; tokens drawn from an RNG seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Sessions {
            live: HashMap::default(),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5e55_10e5),
        }
    }

    /// Opens a session and returns its token.
    pub fn open(&mut self, now: i64) -> String {
        loop {
            let token: String = (0..TOKEN_LEN)
                .map(|_| char::from(ALPHABET[self.rng.random_range(0..ALPHABET.len())]))
                .collect();
            if !self.live.contains_key(&token) {
                self.live.insert(
                    token.clone(),
                    Session {
                        opened_at: now,
                        last_used: AtomicI64::new(now),
                    },
                );
                return token;
            }
        }
    }

    /// Whether `token` is a live session.
    pub fn is_valid(&self, token: &str) -> bool {
        self.live.contains_key(token)
    }

    /// Marks the session used; returns whether it is live.
    pub fn touch(&self, token: &str, now: i64) -> bool {
        match self.live.get(token) {
            Some(s) => {
                s.last_used.store(now, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Ends one session (logout).
    pub fn close(&mut self, token: &str) {
        self.live.remove(token);
    }

    /// Ends every session (change_login, reboot).
    pub fn clear(&mut self) {
        self.live.clear();
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_device_shape_and_are_deterministic() {
        let mut a = Sessions::new(7);
        let mut b = Sessions::new(7);
        let ta = a.open(0);
        assert_eq!(ta, b.open(0));
        assert_eq!(ta.len(), TOKEN_LEN);
        assert!(ta.bytes().all(|c| ALPHABET.contains(&c)));
        assert!(a.is_valid(&ta));
        a.close(&ta);
        assert!(!a.is_valid(&ta));
    }
}
