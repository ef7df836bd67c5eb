//! Face photos (docs/device-api.md §4): the JPEG check, the quality scores a terminal reports,
//! duplicate-face detection, and the photo store behind `user_set_image`,
//! `user_get_image`, `user_list_images` and `user_destroy_image`.
//!
//! There is no computer vision here. Scores are derived deterministically from the image
//! (its size, whether it has any contrast) and its digest; two photos are "the same face"
//! when their bytes are identical, which is how tests and the scripted person present a
//! known face.
//!
//! Decoding is the costly part, and a fleet receives the same photo once per terminal, so
//! the conclusions about recent photos are remembered process-wide by their digest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Cursor;
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use sha2::{Digest, Sha256};

/// Largest image body the device takes (2 MB, docs/device-api.md §4.1).
pub const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;
/// Largest width or height the decoder accepts.
pub const MAX_DIMENSION: u32 = 4096;

/// The image bytes were refused outright (HTTP 400, code 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// Not a decodable JPEG.
    #[error("Image file not recognized. Image should be either JPG or PNG.")]
    NotRecognized,
    /// Larger than the device accepts.
    #[error(
        "Image too large (max {MAX_IMAGE_BYTES} bytes, {MAX_DIMENSION}x{MAX_DIMENSION} pixels)"
    )]
    TooLarge,
}

/// The quality scores the terminal reports for a face photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaceScores {
    /// Width of the detected face, pixels.
    pub bounds_width: i64,
    /// Horizontal offset of the face from the centre.
    pub horizontal_center_offset: i64,
    /// Vertical offset of the face from the centre.
    pub vertical_center_offset: i64,
    /// Pose quality (0–1000).
    pub center_pose_quality: i64,
    /// Sharpness quality (0–1000).
    pub sharpness_quality: i64,
}

/// One face-enrolment failure reported inside a 200 reply (`errors[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceProblem {
    /// Face error code (docs/device-api.md §4.1 table).
    pub code: i64,
    /// The device's message.
    pub message: &'static str,
    /// For code 3: the user whose face this already is.
    pub match_user_id: Option<i64>,
}

impl FaceProblem {
    fn new(code: i64, message: &'static str) -> Self {
        FaceProblem {
            code,
            message,
            match_user_id: None,
        }
    }
}

/// What the device concluded about a photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceAnalysis {
    /// Scores as reported.
    pub scores: FaceScores,
    /// Quality problems (empty = acceptable).
    pub problems: Vec<FaceProblem>,
    /// SHA-256 of the bytes: the face's identity for duplicate detection.
    pub digest: [u8; 32],
}

/// How many photos' conclusions are remembered (then the memory starts afresh).
const REMEMBERED: usize = 4096;

/// Conclusions about recently analysed photos, by digest (identical bytes, identical
/// conclusion: the analysis is a function of the bytes alone).
static ANALYSED: LazyLock<Mutex<Analysed>> = LazyLock::new(Mutex::default);

/// Conclusions by digest.
type Analysed = HashMap<[u8; 32], Result<FaceAnalysis, ImageError>>;

fn remembered() -> MutexGuard<'static, Analysed> {
    ANALYSED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Checks and scores a photo.
pub fn analyse(bytes: &[u8]) -> Result<FaceAnalysis, ImageError> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ImageError::TooLarge);
    }
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(ImageError::NotRecognized);
    }
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    if let Some(known) = remembered().get(&digest).cloned() {
        return known;
    }
    let outcome = decode_and_score(bytes, digest);
    let mut memory = remembered();
    if memory.len() >= REMEMBERED {
        memory.clear();
    }
    memory.insert(digest, outcome.clone());
    outcome
}

fn decode_and_score(bytes: &[u8], digest: [u8; 32]) -> Result<FaceAnalysis, ImageError> {
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image::ImageFormat::Jpeg);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(128 * 1024 * 1024);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => ImageError::TooLarge,
        _ => ImageError::NotRecognized,
    })?;
    let luma = decoded.to_luma8();
    let (width, height) = luma.dimensions();
    let first = luma.pixels().next().map_or(0, |p| p.0[0]);
    let flat = luma.pixels().all(|p| p.0[0].abs_diff(first) <= 2);

    let spread = |byte: u8, range: i64| i64::from(byte) % (2 * range + 1) - range;
    let scores = FaceScores {
        bounds_width: i64::from(width.min(height)) * 5 / 8,
        horizontal_center_offset: spread(digest[0], 90),
        vertical_center_offset: spread(digest[1], 90),
        center_pose_quality: 600 + i64::from(digest[2]) % 300,
        sharpness_quality: 500 + i64::from(digest[3]) % 450,
    };
    let mut problems = Vec::new();
    if flat {
        problems.push(FaceProblem::new(2, "Face not detected"));
    } else if scores.bounds_width < 60 {
        problems.push(FaceProblem::new(5, "Face too distant"));
    } else if scores.bounds_width > 800 {
        problems.push(FaceProblem::new(6, "Face too close"));
    }
    Ok(FaceAnalysis {
        scores,
        problems,
        digest,
    })
}

/// A "Face exists" problem pointing at `user_id`.
pub fn face_exists(user_id: i64) -> FaceProblem {
    FaceProblem {
        code: 3,
        message: "Face exists",
        match_user_id: Some(user_id),
    }
}

/// A stored photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    /// The JPEG bytes as uploaded (`None` when `general.keep_user_image` is `"0"`).
    pub jpeg: Option<Vec<u8>>,
    /// The caller-chosen version.
    pub timestamp: i64,
    /// Face identity.
    pub digest: [u8; 32],
}

/// Every user's photo.
#[derive(Debug, Clone, Default)]
pub struct Photos {
    by_user: BTreeMap<i64, Photo>,
    /// Users whose photo was stored or removed since the state file's change log last took
    /// them (`None`: not tracked).
    changed: Option<BTreeSet<i64>>,
}

/// Two photo sets are equal when they hold the same photos (what is tracked is not part
/// of it).
impl PartialEq for Photos {
    fn eq(&self, other: &Self) -> bool {
        self.by_user == other.by_user
    }
}

impl Eq for Photos {}

impl Photos {
    /// The photo of `user_id`.
    pub fn get(&self, user_id: i64) -> Option<&Photo> {
        self.by_user.get(&user_id)
    }

    fn note(&mut self, user_id: i64) {
        if let Some(changed) = &mut self.changed {
            changed.insert(user_id);
        }
    }

    /// Stores or replaces a photo.
    pub fn put(&mut self, user_id: i64, photo: Photo) {
        self.by_user.insert(user_id, photo);
        self.note(user_id);
    }

    /// Removes one photo; returns whether there was one.
    pub fn remove(&mut self, user_id: i64) -> bool {
        let removed = self.by_user.remove(&user_id).is_some();
        if removed {
            self.note(user_id);
        }
        removed
    }

    /// Removes every photo for which `keep` is false.
    pub fn retain(&mut self, mut keep: impl FnMut(i64) -> bool) {
        let gone: Vec<i64> = self
            .by_user
            .keys()
            .copied()
            .filter(|id| !keep(*id))
            .collect();
        for id in gone {
            self.remove(id);
        }
    }

    /// Starts (or stops) remembering which users' photos change.
    pub fn set_tracking(&mut self, on: bool) {
        self.changed = on.then(BTreeSet::new);
    }

    /// Each user whose photo changed since the last call, with the photo now (`None`:
    /// removed).
    pub fn take_changes(&mut self) -> Vec<(i64, Option<Photo>)> {
        let Some(changed) = self.changed.as_mut() else {
            return Vec::new();
        };
        std::mem::take(changed)
            .into_iter()
            .map(|id| (id, self.by_user.get(&id).cloned()))
            .collect()
    }

    /// Photos in user-id order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &Photo)> {
        self.by_user.iter().map(|(id, p)| (*id, p))
    }

    /// Another user whose face has this digest.
    pub fn owner_of(&self, digest: &[u8; 32], except: i64) -> Option<i64> {
        self.by_user
            .iter()
            .find(|(id, p)| **id != except && &p.digest == digest)
            .map(|(id, _)| *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(width: u32, height: u32, pattern: bool) -> Vec<u8> {
        let img = image::GrayImage::from_fn(width, height, |x, y| {
            image::Luma([if pattern {
                ((x * 7 + y * 3) % 256) as u8
            } else {
                128
            }])
        });
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    #[test]
    fn accepts_a_textured_jpeg() {
        let a = analyse(&jpeg(320, 320, true)).unwrap();
        assert!(a.problems.is_empty());
        assert_eq!(a.scores.bounds_width, 200);
        assert_eq!(analyse(&jpeg(320, 320, true)).unwrap(), a, "deterministic");
    }

    #[test]
    fn refuses_non_jpeg_and_reports_quality_problems() {
        assert_eq!(
            analyse(b"\x89PNG\r\n").unwrap_err(),
            ImageError::NotRecognized
        );
        assert_eq!(
            analyse(&[0xFF, 0xD8, 0xFF, 0, 1]).unwrap_err(),
            ImageError::NotRecognized
        );
        assert_eq!(analyse(&jpeg(320, 320, false)).unwrap().problems[0].code, 2);
        assert_eq!(analyse(&jpeg(64, 64, true)).unwrap().problems[0].code, 5);
    }
}
