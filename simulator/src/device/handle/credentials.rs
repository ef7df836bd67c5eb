//! Credentials captured or stored on the device: PINs and passwords typed at enrollment, and face photos (set, test, read, list, destroy, match).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::device::images::{FaceAnalysis, Photo};
use crate::device::*;

impl Device {
    /// Saves a PIN enrolled at the keypad: it replaces the user's ordinary PIN
    /// (`pin_type` 0; a duress PIN stays).
    pub fn enroll_pin(&self, user_id: i64, pin: &str) -> Result<(), DeviceError> {
        self.mutate(|s| {
            if !s.user_exists(user_id) {
                return Err(DeviceError::NoSuchUser);
            }
            s.db.atomically(|db| {
                let pins = db.table("pins")?;
                let old: Vec<i64> = pins
                    .rowids_where_eq("user_id", i128::from(user_id))
                    .into_iter()
                    .filter(|id| {
                        pins.row(*id)
                            .is_some_and(|r| pins.cell(r, "pin_type").as_int().unwrap_or(0) == 0)
                    })
                    .collect();
                db.delete("pins", &old)?;
                let row = json!({"user_id": user_id, "value": pin, "pin_type": 0});
                db.insert("pins", &[object(row)])?;
                Ok(())
            })?;
            Ok(())
        })
    }

    /// Saves a password enrolled at the keypad as the user's `password` / `salt` (the
    /// digest of §9.5 with a new salt).
    pub fn enroll_password(&self, user_id: i64, password: &str) -> Result<(), DeviceError> {
        self.mutate(|s| {
            if !s.user_exists(user_id) {
                return Err(DeviceError::NoSuchUser);
            }
            let salt: String = (0..32)
                .map(|_| char::from(b"0123456789abcdef"[s.rng.random_range(0..16)]))
                .collect();
            let digest = decide::password_digest(password, &salt);
            let values = object(json!({"password": digest, "salt": salt}));
            s.db.update("users", &values, &[user_id])?;
            s.log_changes("update", "users", &[user_id]);
            Ok(())
        })
    }

    /// `user_set_image.fcgi`.
    pub fn set_user_image(
        &self,
        user_id: i64,
        match_duplicates: bool,
        timestamp: i64,
        bytes: &[u8],
    ) -> Result<SetImageOutcome, DeviceError> {
        let analysis = images::analyse(bytes);
        self.mutate(|s| {
            if !s.user_exists(user_id) {
                return Err(DeviceError::NoSuchUser);
            }
            let FaceAnalysis {
                scores,
                mut problems,
                digest,
            } = analysis?;
            if problems.is_empty()
                && match_duplicates
                && let Some(owner) = s.photos.owner_of(&digest, user_id)
            {
                problems.push(images::face_exists(owner));
            }
            if problems.is_empty() {
                let keep = s.config.value("general", "keep_user_image") != Some("0");
                s.photos.put(
                    user_id,
                    Photo {
                        jpeg: keep.then(|| bytes.to_vec()),
                        timestamp,
                        digest,
                    },
                );
                s.store_face_template(user_id, &digest, timestamp)?;
            }
            Ok(SetImageOutcome { scores, problems })
        })
    }

    /// `user_test_image.fcgi`: scores without storing.
    pub fn test_image(&self, bytes: &[u8]) -> Result<SetImageOutcome, DeviceError> {
        let a = images::analyse(bytes)?;
        Ok(SetImageOutcome {
            scores: a.scores,
            problems: a.problems,
        })
    }

    /// The stored JPEG and its timestamp.
    pub fn user_image(&self, user_id: i64) -> Result<(Vec<u8>, i64), DeviceError> {
        let s = self.lock();
        if !s.user_exists(user_id) {
            return Err(DeviceError::NoSuchUser);
        }
        match s.photos.get(user_id) {
            Some(Photo {
                jpeg: Some(jpeg),
                timestamp,
                ..
            }) => Ok((jpeg.clone(), *timestamp)),
            _ => Err(DeviceError::NoImage),
        }
    }

    /// `(user_id, timestamp)` of every stored photo, by user id.
    pub fn list_images(&self) -> Vec<(i64, i64)> {
        self.lock()
            .photos
            .iter()
            .filter(|(_, p)| p.jpeg.is_some())
            .map(|(id, p)| (id, p.timestamp))
            .collect()
    }

    /// `user_destroy_image.fcgi`.
    pub fn destroy_images(&self, which: ImageSelection) {
        let _ = self.mutate(|s| {
            match which {
                ImageSelection::Users(ids) => {
                    for id in ids {
                        s.photos.remove(id);
                    }
                }
                ImageSelection::All => s.photos.retain(|_| false),
                ImageSelection::Dangling => {
                    let users =
                        s.db.table("users")
                            .map(|t| t.rows().map(|(id, _)| id).collect::<Vec<_>>());
                    let users = users.unwrap_or_default();
                    s.photos.retain(|id| users.binary_search(&id).is_ok());
                }
            }
            Ok::<(), DeviceError>(())
        });
    }

    /// The face a person "of user N" shows: that user's stored photo, or a synthetic face
    /// that is always the same for the same user.
    pub fn face_of(&self, user_id: i64) -> Vec<u8> {
        if let Ok((jpeg, _)) = self.user_image(user_id) {
            return jpeg;
        }
        let seed = (user_id as u64) ^ self.lock().identity.device_id as u64;
        crate::person::synthetic_face(&mut ChaCha8Rng::seed_from_u64(seed))
    }

    /// The user (other than `except`) whose enrolled face these bytes are.
    pub fn face_owner(&self, jpeg: &[u8], except: Option<i64>) -> Option<i64> {
        let digest: [u8; 32] = Sha256::digest(jpeg).into();
        self.lock()
            .photos
            .owner_of(&digest, except.unwrap_or(i64::MIN))
    }
}
