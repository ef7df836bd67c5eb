//! Images shared between terminals: terminals with the same coverage (facility, serving
//! permit accesses and the factors they require, see [`Coverage`]) and the same operating
//! mode must hold the same image, so one computation at a revision of the core serves them
//! all for as long as the image holds (until its next change). A recomputed image equal
//! to the previous one is the previous one, so a terminal already holding it has nothing
//! to plan.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;

use super::image::DeviceImage;
use crate::domain::TenantId;
use crate::domain::desired::Coverage;

/// What decides an image: the tenant, the coverage and the operating mode.
pub(crate) type ImageKey = (TenantId, Coverage, &'static str);

/// The images computed at the newest revision, by what decides them; clones share them.
#[derive(Debug, Clone)]
pub(crate) struct SharedImages<K = ImageKey> {
    inner: Arc<Mutex<HashMap<K, Computed>>>,
}

impl<K> Default for SharedImages<K> {
    fn default() -> Self {
        SharedImages {
            inner: Arc::default(),
        }
    }
}

#[derive(Debug)]
struct Computed {
    /// The core's revision read before the snapshot the image was computed from.
    revision: u64,
    /// The instant it was computed for.
    at: Timestamp,
    /// The first instant after `at` at which it changes.
    next_change: Option<Timestamp>,
    image: Arc<DeviceImage>,
}

impl<K: std::hash::Hash + Eq> SharedImages<K> {
    /// The image for `key` at `at`, computed by `compute` unless one computed at this
    /// `revision` still holds at `at`. `revision` must have been read before the snapshot
    /// `compute` reads (so an image kept under a revision has seen every change up to it).
    pub(crate) fn get_or_compute(
        &self,
        key: K,
        revision: u64,
        at: Timestamp,
        compute: impl FnOnce() -> (DeviceImage, Option<Timestamp>),
    ) -> (Arc<DeviceImage>, Option<Timestamp>) {
        if let Some(c) = self.lock().get(&key)
            && c.revision == revision
            && c.at <= at
            && c.next_change.is_none_or(|n| at < n)
        {
            return (c.image.clone(), c.next_change);
        }
        let (image, next_change) = compute();
        let mut images = self.lock();
        // An image equal to the one it replaces stays the same allocation, so that a
        // terminal already holding it can tell without comparing (see `Arc::ptr_eq`).
        let image = match images.get(&key) {
            Some(c) if *c.image == image => c.image.clone(),
            _ => Arc::new(image),
        };
        // Images of older revisions serve nobody any more.
        images.retain(|_, c| c.revision >= revision);
        if images.get(&key).is_none_or(|c| c.revision <= revision) {
            images.insert(
                key,
                Computed {
                    revision,
                    at,
                    next_change,
                    image: image.clone(),
                },
            );
        }
        (image, next_change)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Computed>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn at(hour: i64) -> Timestamp {
        Timestamp::from_second(hour * 3600).expect("in range")
    }

    /// Asks for key `key` and says whether it was computed (the image is empty, the next
    /// change nine hours after the instant asked for).
    fn computed(images: &SharedImages<u32>, key: u32, revision: u64, hour: i64) -> bool {
        let ran = Cell::new(false);
        images.get_or_compute(key, revision, at(hour), || {
            ran.set(true);
            (DeviceImage::new(), Some(at(hour + 9)))
        });
        ran.get()
    }

    #[test]
    fn one_computation_serves_a_key_while_the_revision_and_the_image_hold() {
        let images = SharedImages::default();
        assert!(computed(&images, 1, 5, 1));
        assert!(
            !computed(&images, 1, 5, 1),
            "same key, revision and instant"
        );
        assert!(!computed(&images, 1, 5, 9), "still before the next change");
        assert!(computed(&images, 2, 5, 1), "another key");
        assert!(computed(&images, 1, 5, 10), "at the next change");
        assert!(computed(&images, 1, 6, 10), "a newer revision");
        assert!(
            computed(&images, 1, 5, 0),
            "before the instant computed for"
        );
        // A late task of an older revision does not evict the newer image.
        assert!(!computed(&images, 1, 6, 10));
    }

    #[test]
    fn an_equal_recomputation_is_the_same_image() {
        let images = SharedImages::default();
        let empty = || (DeviceImage::new(), None);
        let (first, _) = images.get_or_compute(1_u32, 1, at(1), empty);
        let (again, _) = images.get_or_compute(1, 2, at(1), empty);
        assert!(Arc::ptr_eq(&first, &again));
        let other = || {
            let mut image = DeviceImage::new();
            image.insert(
                "holidays".into(),
                super::super::image::SubjectImage::Holidays { rows: Vec::new() },
            );
            (image, None)
        };
        let (changed, _) = images.get_or_compute(1, 3, at(1), other);
        assert!(!Arc::ptr_eq(&first, &changed));
    }
}
