//! The person in front of the device: a queue of scripted presentations that enrollment
//! (and later identification) consumes, and the policy that decides what happens when the
//! queue is empty.
//!
//! `cooperative` (the default) makes a plausible credential appear: synthetic JPEG faces,
//! fingerprint bitmaps of `width × height` bytes and card values, all drawn from a seeded
//! RNG so that runs are reproducible. `absent` means nobody comes and the device times out.

use std::collections::VecDeque;
use std::io::Cursor;
use std::sync::{Arc, Mutex, PoisonError};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Width of a synthetic fingerprint bitmap.
pub const FINGER_WIDTH: u32 = 256;
/// Height of a synthetic fingerprint bitmap.
pub const FINGER_HEIGHT: u32 = 288;

/// One thing the person does at the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presentation {
    /// Shows the face of an enrolled user (the device recognises it as that user's face).
    FaceOf(i64),
    /// Shows a face whose photo is exactly these JPEG bytes.
    FaceImage(Vec<u8>),
    /// Holds a card with this value to the reader.
    Card(u64),
    /// Puts a finger on the reader; `seed` makes the bitmap distinct per finger.
    Finger {
        /// Distinguishes fingers (same seed = same finger).
        seed: u64,
    },
    /// Types a PIN.
    Pin(String),
    /// Types a password (enrollment of a password; at the door a password needs a user id,
    /// see [`Presentation::IdAndPassword`]).
    Password(String),
    /// Types a user id and that user's password on the keypad.
    IdAndPassword {
        /// `users.id` typed.
        user_id: i64,
        /// The password typed (checked against `users.password` / `users.salt`).
        password: String,
    },
    /// Shows a QR code.
    Qr(String),
    /// Nobody comes: the device times out.
    Nobody,
    /// The capture fails with this device error.
    Failure(String),
}

/// What happens when the queue is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// A plausible credential appears after the countdown.
    #[default]
    Cooperative,
    /// Nobody comes.
    Absent,
}

impl std::str::FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cooperative" => Ok(Policy::Cooperative),
            "absent" => Ok(Policy::Absent),
            other => Err(format!(
                "unknown policy '{other}' (expected cooperative or absent)"
            )),
        }
    }
}

/// What the device is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// A face.
    Face,
    /// A card.
    Card,
    /// A finger.
    Finger,
    /// A PIN typed on the keypad.
    Pin,
    /// A password typed on the keypad.
    Password,
}

#[derive(Debug)]
struct Inner {
    queue: VecDeque<Presentation>,
    policy: Policy,
    rng: ChaCha8Rng,
}

/// The scripted person; clones share the same queue.
#[derive(Debug, Clone)]
pub struct Person {
    inner: Arc<Mutex<Inner>>,
}

impl Person {
    /// A person with an empty queue, cooperative, drawing synthetic credentials from `seed`.
    pub fn new(seed: u64) -> Self {
        Person {
            inner: Arc::new(Mutex::new(Inner {
                queue: VecDeque::new(),
                policy: Policy::Cooperative,
                rng: ChaCha8Rng::seed_from_u64(seed ^ 0xFACE),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a presentation.
    pub fn present(&self, p: Presentation) {
        self.lock().queue.push_back(p);
    }

    /// Sets the policy for an empty queue.
    pub fn set_policy(&self, policy: Policy) {
        self.lock().policy = policy;
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.lock().policy
    }

    /// Presentations still queued.
    pub fn queued(&self) -> usize {
        self.lock().queue.len()
    }

    /// Forgets every queued presentation.
    pub fn clear(&self) {
        self.lock().queue.clear();
    }

    /// The next presentation for a device waiting for `wanted`: the queue's head, or what
    /// the policy makes up.
    pub fn next(&self, wanted: Wanted) -> Presentation {
        let mut inner = self.lock();
        if let Some(p) = inner.queue.pop_front() {
            return p;
        }
        match inner.policy {
            Policy::Absent => Presentation::Nobody,
            Policy::Cooperative => match wanted {
                Wanted::Face => Presentation::FaceImage(synthetic_face(&mut inner.rng)),
                Wanted::Card => {
                    Presentation::Card(inner.rng.random_range(1..=u64::from(u32::MAX)) | (1 << 32))
                }
                Wanted::Finger => Presentation::Finger {
                    seed: inner.rng.random(),
                },
                Wanted::Pin => {
                    Presentation::Pin(format!("{:04}", inner.rng.random_range(0..10_000)))
                }
                Wanted::Password => Presentation::Password(
                    (0..8)
                        .map(|_| {
                            char::from(
                                b"abcdefghjkmnpqrstuvwxyz23456789"[inner.rng.random_range(0..31)],
                            )
                        })
                        .collect(),
                ),
            },
        }
    }
}

/// A synthetic 240×240 JPEG face: an oval with eyes on a coloured background.
pub fn synthetic_face(rng: &mut impl Rng) -> Vec<u8> {
    let bg: [u8; 3] = rng.random();
    let skin: [u8; 3] = [
        rng.random_range(150..240),
        rng.random_range(110..200),
        rng.random_range(90..170),
    ];
    let (cx, cy) = (120.0f32, 115.0f32);
    let img = image::RgbImage::from_fn(240, 240, |x, y| {
        let (dx, dy) = ((x as f32 - cx) / 70.0, (y as f32 - cy) / 90.0);
        let eye = |ex: f32| ((x as f32 - ex).powi(2) + (y as f32 - 95.0).powi(2)) < 64.0;
        if eye(95.0) || eye(145.0) {
            image::Rgb([20, 20, 20])
        } else if dx * dx + dy * dy <= 1.0 {
            image::Rgb(skin)
        } else {
            image::Rgb([bg[0] ^ (x as u8), bg[1], bg[2] ^ (y as u8)])
        }
    });
    let mut out = Cursor::new(Vec::new());
    // Encoding an in-memory RGB image into a Vec cannot fail.
    let _ = img.write_to(&mut out, image::ImageFormat::Jpeg);
    out.into_inner()
}

/// An 8-bit grayscale fingerprint-like bitmap of `FINGER_WIDTH × FINGER_HEIGHT` bytes,
/// the same for the same `seed`.
pub fn synthetic_fingerprint(seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (fx, fy): (f32, f32) = (rng.random_range(0.05..0.12), rng.random_range(0.05..0.12));
    let phase: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    (0..FINGER_HEIGHT)
        .flat_map(|y| (0..FINGER_WIDTH).map(move |x| (x, y)))
        .map(|(x, y)| {
            let (dx, dy) = (x as f32 - 128.0, y as f32 - 144.0);
            let r = (dx * dx * fx + dy * dy * fy).sqrt();
            let ridge = ((r + phase).sin() * 0.5 + 0.5) * 255.0;
            ridge as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_first_then_policy() {
        let p = Person::new(1);
        p.present(Presentation::Card(5));
        assert_eq!(p.next(Wanted::Card), Presentation::Card(5));
        assert!(matches!(p.next(Wanted::Card), Presentation::Card(_)));
        p.set_policy(Policy::Absent);
        assert_eq!(p.next(Wanted::Face), Presentation::Nobody);
    }

    #[test]
    fn synthetic_credentials_are_reproducible() {
        let a = Person::new(9).next(Wanted::Face);
        let b = Person::new(9).next(Wanted::Face);
        assert_eq!(a, b);
        let Presentation::FaceImage(jpeg) = a else {
            panic!("face expected")
        };
        assert!(
            crate::device::images::analyse(&jpeg)
                .unwrap()
                .problems
                .is_empty()
        );
        assert_eq!(synthetic_fingerprint(3), synthetic_fingerprint(3));
        assert_eq!(
            synthetic_fingerprint(3).len(),
            (FINGER_WIDTH * FINGER_HEIGHT) as usize
        );
        assert_ne!(synthetic_fingerprint(3), synthetic_fingerprint(4));
    }
}
