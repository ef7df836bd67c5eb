//! The scheduler clock: how long the simulated terminal waits (enrollment countdowns,
//! capture timeouts, callback retries, power-off periods), as opposed to the device's local
//! wall clock (`device::clock`), which is what the device *reports*.
//!
//! Three modes: real time, real time scaled (`0.01` makes a 5 s countdown take 50 ms), and
//! manual, where nothing moves until a test calls [`Scheduler::advance`]. In manual mode a
//! test can wait for the simulator to start waiting ([`Scheduler::wait_for_sleepers`]), so
//! no test ever needs a real sleep.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// How waits pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeMode {
    /// Waits take `scale` times their nominal duration (1.0 = real time).
    Scaled(f64),
    /// Waits end only when the test advances the clock.
    Manual,
}

#[derive(Debug)]
struct Inner {
    mode: TimeMode,
    /// Manual mode: virtual time elapsed since creation.
    now: watch::Sender<Duration>,
    /// Manual mode: number of tasks currently waiting.
    sleepers: watch::Sender<usize>,
    waiting: AtomicUsize,
    /// Manual mode: the deadline of every task waiting (so a test can tell a wait that is
    /// due from one that is not).
    deadlines: std::sync::Mutex<Vec<Duration>>,
    /// Scaled mode: when the scheduler was created (for [`Scheduler::now`]).
    started: tokio::time::Instant,
}

/// The scheduler clock; clones share it.
#[derive(Debug, Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

impl Default for Scheduler {
    fn default() -> Self {
        Scheduler::new(TimeMode::Scaled(1.0))
    }
}

impl Scheduler {
    /// A scheduler in `mode`. A non-positive or non-finite scale means "no waiting at all".
    pub fn new(mode: TimeMode) -> Self {
        Scheduler {
            inner: Arc::new(Inner {
                mode,
                now: watch::channel(Duration::ZERO).0,
                sleepers: watch::channel(0).0,
                waiting: AtomicUsize::new(0),
                deadlines: std::sync::Mutex::default(),
                started: tokio::time::Instant::now(),
            }),
        }
    }

    /// A manual scheduler.
    pub fn manual() -> Self {
        Scheduler::new(TimeMode::Manual)
    }

    /// The mode.
    pub fn mode(&self) -> TimeMode {
        self.inner.mode
    }

    /// Waits `nominal` scheduler time. Any duration is fine, [`Duration::MAX`] included: a
    /// wait too long to represent lasts until the end of time (it never panics).
    pub async fn sleep(&self, nominal: Duration) {
        match self.inner.mode {
            TimeMode::Scaled(scale) => {
                if scale.is_finite() && scale > 0.0 {
                    let real = Duration::try_from_secs_f64(nominal.as_secs_f64() * scale)
                        .unwrap_or(Duration::MAX);
                    // tokio sleeps "forever" when the deadline cannot be represented.
                    tokio::time::sleep(real).await;
                } else {
                    tokio::task::yield_now().await;
                }
            }
            TimeMode::Manual => {
                let mut now = self.inner.now.subscribe();
                let deadline = now.borrow().saturating_add(nominal);
                let _guard = SleeperGuard::enter(&self.inner, deadline);
                while *now.borrow_and_update() < deadline {
                    if now.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Manual mode: moves virtual time forward, waking every wait that is due.
    /// In scaled mode this does nothing (real time moves by itself).
    pub fn advance(&self, by: Duration) {
        if self.inner.mode == TimeMode::Manual {
            self.inner
                .now
                .send_modify(|now| *now = now.saturating_add(by));
        }
    }

    /// Manual mode: virtual time elapsed so far.
    pub fn elapsed(&self) -> Duration {
        *self.inner.now.borrow()
    }

    /// Nominal scheduler time since creation, in both modes: what a wait of `d` started
    /// now will have reached when it ends is `now() + d`. With a zero scale every wait is
    /// already over, so it is [`Duration::MAX`].
    pub fn now(&self) -> Duration {
        match self.inner.mode {
            TimeMode::Manual => self.elapsed(),
            TimeMode::Scaled(scale) if scale.is_finite() && scale > 0.0 => {
                Duration::try_from_secs_f64(self.inner.started.elapsed().as_secs_f64() / scale)
                    .unwrap_or(Duration::MAX)
            }
            TimeMode::Scaled(_) => Duration::MAX,
        }
    }

    /// Manual mode: a receiver that sees virtual time move (for views that show a
    /// countdown without waiting on the clock themselves).
    pub fn subscribe_time(&self) -> watch::Receiver<Duration> {
        self.inner.now.subscribe()
    }

    /// Number of tasks currently waiting on this scheduler (manual mode).
    pub fn sleepers(&self) -> usize {
        *self.inner.sleepers.borrow()
    }

    /// Manual mode: waiting tasks whose deadline has passed but which have not run yet.
    pub fn due_sleepers(&self) -> usize {
        let now = self.elapsed();
        self.inner
            .deadlines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|d| **d <= now)
            .count()
    }

    /// Manual mode: returns once the simulator has taken in a move of the clock – no wait
    /// is due any more and at least `n` tasks wait again – or `done` holds (the work that
    /// waited has ended). Between a wait that ends and the next one a task runs without
    /// waiting, so `n` (how many waited before the move) tells "done with this instant"
    /// from "not yet back to waiting".
    pub async fn settled(&self, n: usize, mut done: impl FnMut() -> bool) {
        let mut rx = self.inner.sleepers.subscribe();
        loop {
            if done() || (self.due_sleepers() == 0 && *rx.borrow_and_update() >= n) {
                return;
            }
            // A sleeper leaving or arriving changes the count; poll between changes too,
            // since work may end without any task waiting.
            let _ = tokio::time::timeout(Duration::from_millis(5), rx.changed()).await;
        }
    }

    /// Manual mode: returns once at least `n` tasks are waiting, so a test can advance the
    /// clock knowing the simulator is already waiting.
    pub async fn wait_for_sleepers(&self, n: usize) {
        let mut rx = self.inner.sleepers.subscribe();
        while *rx.borrow_and_update() < n {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

struct SleeperGuard<'a>(&'a Inner, Duration);

impl<'a> SleeperGuard<'a> {
    fn enter(inner: &'a Inner, deadline: Duration) -> Self {
        inner
            .deadlines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(deadline);
        let n = inner.waiting.fetch_add(1, Ordering::SeqCst) + 1;
        inner.sleepers.send_replace(n);
        SleeperGuard(inner, deadline)
    }
}

impl Drop for SleeperGuard<'_> {
    fn drop(&mut self) {
        let mut deadlines = self
            .0
            .deadlines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = deadlines.iter().position(|d| *d == self.1) {
            deadlines.swap_remove(i);
        }
        drop(deadlines);
        let n = self.0.waiting.fetch_sub(1, Ordering::SeqCst) - 1;
        self.0.sleepers.send_replace(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleep_ends_only_when_advanced() {
        let s = Scheduler::manual();
        let task = tokio::spawn({
            let s = s.clone();
            async move { s.sleep(Duration::from_secs(5)).await }
        });
        s.wait_for_sleepers(1).await;
        s.advance(Duration::from_secs(4));
        tokio::task::yield_now().await;
        assert!(!task.is_finished());
        assert_eq!(s.sleepers(), 1);
        s.advance(Duration::from_secs(1));
        task.await.unwrap();
        assert_eq!(s.sleepers(), 0);
        assert_eq!(s.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn settled_waits_for_a_due_sleeper_to_run_and_wait_again() {
        let s = Scheduler::manual();
        let task = tokio::spawn({
            let s = s.clone();
            async move {
                s.sleep(Duration::from_secs(1)).await;
                s.sleep(Duration::from_secs(1)).await;
            }
        });
        s.wait_for_sleepers(1).await;
        assert_eq!(s.due_sleepers(), 0);
        s.advance(Duration::from_secs(1));
        s.settled(1, || false).await;
        assert_eq!((s.due_sleepers(), s.sleepers()), (0, 1), "back to waiting");
        s.advance(Duration::from_secs(1));
        s.settled(1, || task.is_finished()).await;
        assert_eq!(s.sleepers(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_longest_waits_never_panic() {
        let scaled = Scheduler::new(TimeMode::Scaled(1.0));
        let manual = Scheduler::manual();
        manual.advance(Duration::from_secs(1));
        for s in [scaled, manual] {
            let waiting = tokio::time::timeout(Duration::from_secs(3600), s.sleep(Duration::MAX));
            assert!(waiting.await.is_err(), "still waiting after an hour");
        }
        let manual = Scheduler::manual();
        manual.advance(Duration::MAX);
        manual.advance(Duration::MAX);
        assert_eq!(manual.elapsed(), Duration::MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn scaled_sleep_is_shortened() {
        let s = Scheduler::new(TimeMode::Scaled(0.01));
        let start = tokio::time::Instant::now();
        s.sleep(Duration::from_secs(5)).await;
        assert_eq!(start.elapsed(), Duration::from_millis(50));
    }
}
