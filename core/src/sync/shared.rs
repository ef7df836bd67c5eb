//! Images shared between terminals: terminals with the same coverage (facility, where their
//! doors are and the factors they take, serving permit accesses and the factors they
//! require, see [`Coverage`]) and the same operating
//! mode must hold the same image, so one computation at a revision of the core serves them
//! all for as long as the image holds (until its next change). A recomputed image equal
//! to the previous one is the previous one, so a terminal already holding it has nothing
//! to plan.
//!
//! A change of the core wakes every terminal at once; the first to ask for an image
//! computes it and the others asking for the same one at the same revision wait for that
//! computation instead of repeating it (with 10,000 people each computation is tens of
//! milliseconds of a core).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};

use jiff::Timestamp;

use super::image::DeviceImage;
use super::plan::changed_keys;
use crate::domain::TenantId;
use crate::domain::desired::Coverage;

/// What decides an image: the tenant, the coverage and the operating mode.
pub(crate) type ImageKey = (TenantId, Coverage, &'static str);

/// An image as terminals get it.
#[derive(Debug, Clone)]
pub(crate) struct SharedImage {
    /// The image.
    pub(crate) image: Arc<DeviceImage>,
    /// The first instant after the one it was computed for at which it changes.
    pub(crate) next_change: Option<Timestamp>,
    /// How it differs from the image it replaced, if it replaced one.
    pub(crate) delta: Option<Arc<Delta>>,
}

/// The subjects in which an image differs from the one it replaced: a terminal that
/// holds that one plans only these (computed once for all the terminals, not per
/// terminal over the whole image).
#[derive(Debug)]
pub(crate) struct Delta {
    /// The replaced image. A weak reference keeps its allocation, so no later image can
    /// take its address while this exists.
    from: Weak<DeviceImage>,
    /// The keys that differ, in key order ([`super::plan::changed_keys`]).
    pub(crate) changed: Vec<String>,
}

impl Delta {
    /// Whether `held` is the image this delta starts from.
    pub(crate) fn starts_from(&self, held: &Arc<DeviceImage>) -> bool {
        std::ptr::eq(self.from.as_ptr(), Arc::as_ptr(held))
    }
}

/// The images computed at the newest revision, by what decides them; clones share them.
#[derive(Debug, Clone)]
pub(crate) struct SharedImages<K = ImageKey> {
    inner: Arc<Mutex<HashMap<K, Slot>>>,
}

impl<K> Default for SharedImages<K> {
    fn default() -> Self {
        SharedImages {
            inner: Arc::default(),
        }
    }
}

#[derive(Debug)]
struct Slot {
    /// The newest image computed for the key, if any.
    computed: Option<Computed>,
    /// A computation under way.
    flight: Option<Arc<Flight>>,
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
    delta: Option<Arc<Delta>>,
}

impl Computed {
    fn shared(&self) -> SharedImage {
        SharedImage {
            image: self.image.clone(),
            next_change: self.next_change,
            delta: self.delta.clone(),
        }
    }

    fn serves(&self, revision: u64, at: Timestamp) -> bool {
        self.revision == revision && self.at <= at && self.next_change.is_none_or(|n| at < n)
    }
}

/// A computation under way, which callers asking for the same image wait for.
#[derive(Debug)]
struct Flight {
    revision: u64,
    at: Timestamp,
    /// `None` while running; then the image, or `Err` when the computation was abandoned
    /// (it panicked), after which each waiter computes for itself.
    outcome: Mutex<Option<Result<SharedImage, ()>>>,
    landed: Condvar,
    /// Callers waiting (for tests to tell when a caller is waiting).
    waiting: std::sync::atomic::AtomicUsize,
}

impl Flight {
    fn land(&self, outcome: Result<SharedImage, ()>) {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        self.landed.notify_all();
    }

    fn wait(&self) -> Result<SharedImage, ()> {
        self.waiting
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(landed) = outcome.as_ref() {
                return landed.clone();
            }
            outcome = self
                .landed
                .wait(outcome)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Lands a flight as abandoned, and takes it off its slot, if its computation unwinds
/// before landing it.
struct Abandon<'a, K: std::hash::Hash + Eq + Clone> {
    images: &'a SharedImages<K>,
    key: &'a K,
    flight: Option<&'a Arc<Flight>>,
}

impl<K: std::hash::Hash + Eq + Clone> Drop for Abandon<'_, K> {
    fn drop(&mut self) {
        let Some(flight) = self.flight else {
            return;
        };
        if let Some(slot) = self.images.lock().get_mut(self.key)
            && slot.flight.as_ref().is_some_and(|f| Arc::ptr_eq(f, flight))
        {
            slot.flight = None;
        }
        flight.land(Err(()));
    }
}

impl<K: std::hash::Hash + Eq + Clone> SharedImages<K> {
    /// The image for `key` at `at`, computed by `compute` unless one computed at this
    /// `revision` still holds at `at` or is being computed for an instant at or before
    /// `at`. `revision` must have been read before the snapshot `compute` reads (so an
    /// image kept under a revision has seen every change up to it).
    pub(crate) fn get_or_compute(
        &self,
        key: K,
        revision: u64,
        at: Timestamp,
        compute: impl FnOnce() -> (DeviceImage, Option<Timestamp>),
    ) -> SharedImage {
        let flight = {
            let mut images = self.lock();
            let slot = images.entry(key.clone()).or_insert(Slot {
                computed: None,
                flight: None,
            });
            if let Some(c) = slot.computed.as_ref().filter(|c| c.serves(revision, at)) {
                return c.shared();
            }
            match &slot.flight {
                Some(f) if f.revision == revision && f.at <= at => Err(f.clone()),
                _ => {
                    let f = Arc::new(Flight {
                        revision,
                        at,
                        outcome: Mutex::new(None),
                        landed: Condvar::new(),
                        waiting: std::sync::atomic::AtomicUsize::new(0),
                    });
                    slot.flight = Some(f.clone());
                    Ok(f)
                }
            }
        };
        let flight = match flight {
            Ok(mine) => mine,
            Err(theirs) => match theirs.wait() {
                Ok(shared) if shared.next_change.is_none_or(|n| at < n) => return shared,
                // It no longer holds at `at`, or it was abandoned: compute alone.
                _ => return self.compute(key, revision, at, compute, None),
            },
        };
        let abandon_key = key.clone();
        let mut abandon = Abandon {
            images: self,
            key: &abandon_key,
            flight: Some(&flight),
        };
        let image = self.compute(key, revision, at, compute, Some(&flight));
        abandon.flight = None;
        flight.land(Ok(image.clone()));
        image
    }

    /// Computes the image and keeps it unless a newer revision's is kept already; the
    /// flight, if any, is cleared from the slot when it is still the slot's.
    fn compute(
        &self,
        key: K,
        revision: u64,
        at: Timestamp,
        compute: impl FnOnce() -> (DeviceImage, Option<Timestamp>),
        flight: Option<&Arc<Flight>>,
    ) -> SharedImage {
        let (image, next_change) = compute();
        let mut images = self.lock();
        // Images of older revisions serve nobody any more.
        images.retain(|_, slot| {
            slot.flight.is_some()
                || slot
                    .computed
                    .as_ref()
                    .is_some_and(|c| c.revision >= revision)
        });
        let slot = images.entry(key).or_insert(Slot {
            computed: None,
            flight: None,
        });
        if let Some(f) = flight
            && slot
                .flight
                .as_ref()
                .is_some_and(|mine| Arc::ptr_eq(mine, f))
        {
            slot.flight = None;
        }
        // An image equal to the one it replaces stays the same allocation, so that a
        // terminal already holding it can tell without comparing (see `Arc::ptr_eq`); one
        // that differs carries what differs.
        let (image, delta) = match &slot.computed {
            Some(c) => {
                let changed = changed_keys(&c.image, &image);
                if changed.is_empty() {
                    (c.image.clone(), c.delta.clone())
                } else {
                    let delta = Delta {
                        from: Arc::downgrade(&c.image),
                        changed,
                    };
                    (Arc::new(image), Some(Arc::new(delta)))
                }
            }
            None => (Arc::new(image), None),
        };
        let computed = Computed {
            revision,
            at,
            next_change,
            image,
            delta,
        };
        let shared = computed.shared();
        if slot
            .computed
            .as_ref()
            .is_none_or(|c| c.revision <= revision)
        {
            slot.computed = Some(computed);
        }
        shared
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Slot>> {
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
        let first = images.get_or_compute(1_u32, 1, at(1), empty).image;
        let again = images.get_or_compute(1, 2, at(1), empty).image;
        assert!(Arc::ptr_eq(&first, &again));
        let other = || {
            let mut image = DeviceImage::new();
            image.insert(
                "holidays".into(),
                super::super::image::SubjectImage::Holidays { rows: Vec::new() },
            );
            (image, None)
        };
        let changed = images.get_or_compute(1, 3, at(1), other);
        assert!(!Arc::ptr_eq(&first, &changed.image));
        let delta = changed.delta.expect("what changed");
        assert_eq!(delta.changed, vec!["holidays".to_owned()]);
        assert!(delta.starts_from(&first), "from the image it replaced");
        assert!(!delta.starts_from(&changed.image));
        let again = images.get_or_compute(1, 4, at(1), other);
        assert!(Arc::ptr_eq(&again.image, &changed.image));
        assert!(
            again.delta.is_some_and(|d| d.starts_from(&first)),
            "an equal recomputation keeps the delta of the image it keeps"
        );
    }

    #[test]
    fn a_second_caller_waits_for_the_computation_under_way() {
        let images: SharedImages<u32> = SharedImages::default();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let (proceed_tx, proceed) = std::sync::mpsc::channel::<()>();
        let first = {
            let images = images.clone();
            std::thread::spawn(move || {
                images.get_or_compute(1, 7, at(1), || {
                    started_tx.send(()).expect("started");
                    proceed.recv().expect("proceed");
                    (DeviceImage::new(), None)
                })
            })
        };
        started.recv().expect("the first computation is under way");
        let second = {
            let images = images.clone();
            std::thread::spawn(move || {
                let ran = Cell::new(false);
                let image = images.get_or_compute(1, 7, at(2), || {
                    ran.set(true);
                    (DeviceImage::new(), None)
                });
                (image, ran.get())
            })
        };
        // Let the first computation finish only once the second caller waits for it.
        let flight = images.lock()[&1].flight.clone().expect("a flight");
        while flight.waiting.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        proceed_tx.send(()).expect("proceed");
        let first = first.join().expect("first");
        let (second, ran) = second.join().expect("second");
        assert!(!ran, "the second caller did not compute");
        assert!(Arc::ptr_eq(&first.image, &second.image));
        assert!(images.lock()[&1].flight.is_none(), "the flight is cleared");
    }

    #[test]
    fn an_abandoned_computation_lets_the_waiters_compute() {
        let images: SharedImages<u32> = SharedImages::default();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            images.get_or_compute(1, 7, at(1), || panic!("computation failed"))
        }));
        assert!(panicked.is_err());
        assert!(
            images.lock()[&1].flight.is_none(),
            "the abandoned flight is taken off its slot"
        );
        assert!(computed(&images, 1, 7, 1), "the next caller computes");
        assert!(!computed(&images, 1, 7, 1), "and its image is kept");
    }
}
