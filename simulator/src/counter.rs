//! Counters that tasks watch (the journal's entries and callbacks, the device's revision):
//! bumped on every request, they wake their receivers only when there are any.
//!
//! A watch channel's sender wakes every slot of its notifier on each send, a lock each,
//! whether or not anyone listens; most of a fleet's terminals have nobody watching.

use tokio::sync::watch;

/// Counts one more on `count`, waking its receivers only when there are any. A receiver
/// subscribing later reads the count as it is (a count moved while nobody watched is not
/// reported as a change to it, which it could not have waited for).
pub(crate) fn bump(count: &watch::Sender<u64>) {
    let watched = count.receiver_count() > 0;
    count.send_if_modified(|n| {
        *n += 1;
        watched
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bump_wakes_receivers_and_is_read_without_any() {
        let count = watch::channel(0).0;
        bump(&count);
        let mut rx = count.subscribe();
        assert_eq!(*rx.borrow(), 1);
        assert!(!rx.has_changed().unwrap());
        bump(&count);
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 2);
        drop(rx);
        bump(&count);
        assert_eq!(*count.subscribe().borrow(), 3);
    }
}
