//! The core's one retry policy: exponential backoff with jitter ([`Backoff`]).
//!
//! After the `n`-th consecutive failure (counting from 0) the delay's *ceiling* is
//! `initial × factorⁿ`, capped at `max`; the delay itself is drawn below the ceiling
//! ([`Jitter`]) from a random generator of its own – seeded from the thread's generator, or
//! from a fixed seed in tests. Thousands of terminals that went offline together, or
//! messages that failed together, therefore spread their retries instead of coming back in
//! lockstep. Every delay lies in `[0, max]`.
//!
//! Used by the sync engine (a terminal that cannot be reached, `crate::sync`) and by the
//! outbox's delivery task (a temporary send failure, `crate::notify::delivery`).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// How a delay is drawn below its ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform in `[0, ceiling]`: the widest spread, but a retry may come at once.
    Full,
    /// Uniform in `[ceiling / 2, ceiling]`: spread, yet never sooner than half the ceiling
    /// (a failing peer is not retried in a tight loop).
    Equal,
}

/// Exponential backoff with jitter: the delays before successive retries.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    factor: u32,
    jitter: Jitter,
    /// Consecutive failures so far (the next delay's exponent).
    failures: u32,
    rng: StdRng,
}

impl Backoff {
    /// Delays whose ceiling starts at `initial` and doubles up to `max`, with
    /// [`Jitter::Equal`], drawn from a generator seeded from the thread's.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            factor: 2,
            jitter: Jitter::Equal,
            failures: 0,
            rng: StdRng::from_rng(&mut rand::rng()),
        }
    }

    /// The same backoff with the ceiling multiplied by `factor` (at least 1) per failure.
    pub fn with_factor(mut self, factor: u32) -> Backoff {
        self.factor = factor.max(1);
        self
    }

    /// The same backoff drawing its delays with `jitter`.
    pub fn with_jitter(mut self, jitter: Jitter) -> Backoff {
        self.jitter = jitter;
        self
    }

    /// The same backoff drawing from a generator seeded with `seed` (reproducible delays).
    pub fn seeded(mut self, seed: u64) -> Backoff {
        self.rng = StdRng::seed_from_u64(seed);
        self
    }

    /// The largest delay after `failures` earlier consecutive failures: `initial ×
    /// factor^failures`, at most `max`.
    pub fn ceiling(&self, failures: u32) -> Duration {
        self.factor
            .checked_pow(failures)
            .and_then(|m| self.initial.checked_mul(m))
            .map_or(self.max, |c| c.min(self.max))
    }

    /// A delay drawn for the retry after `failures` earlier consecutive failures (for
    /// callers that keep the count themselves, like the outbox's `attempts`).
    pub fn delay(&mut self, failures: u32) -> Duration {
        let ceiling = u64::try_from(self.ceiling(failures).as_nanos()).unwrap_or(u64::MAX);
        let nanos = match self.jitter {
            Jitter::Full => self.rng.random_range(0..=ceiling),
            Jitter::Equal => ceiling / 2 + self.rng.random_range(0..=ceiling - ceiling / 2),
        };
        Duration::from_nanos(nanos)
    }

    /// The delay before the next retry, counting one more consecutive failure.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.delay(self.failures);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// Forgets the failures after a success: the next delay is drawn below `initial` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const INITIAL: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(60);

    fn delays(backoff: &mut Backoff, n: usize) -> Vec<Duration> {
        (0..n).map(|_| backoff.next_delay()).collect()
    }

    #[test]
    fn two_backoffs_with_the_same_parameters_draw_different_delays() {
        // As the engine makes them: each seeded from the thread's generator.
        let mut a = Backoff::new(INITIAL, MAX);
        let mut b = Backoff::new(INITIAL, MAX);
        assert_ne!(delays(&mut a, 8), delays(&mut b, 8));
        // Reproducibly, with two seeds.
        let mut a = Backoff::new(INITIAL, MAX).seeded(1);
        let mut b = Backoff::new(INITIAL, MAX).seeded(2);
        assert_ne!(delays(&mut a, 8), delays(&mut b, 8));
    }

    #[test]
    fn a_fleet_failing_together_does_not_retry_in_lockstep() {
        for jitter in [Jitter::Full, Jitter::Equal] {
            let first: BTreeSet<Duration> = (0..1000)
                .map(|seed| {
                    Backoff::new(INITIAL, MAX)
                        .with_jitter(jitter)
                        .seeded(seed)
                        .next_delay()
                })
                .collect();
            assert!(first.len() > 990, "{jitter:?}: {} distinct", first.len());
        }
    }

    #[test]
    fn every_delay_stays_within_zero_and_max() {
        for jitter in [Jitter::Full, Jitter::Equal] {
            for factor in [1, 2, 3, 10] {
                let mut backoff = Backoff::new(INITIAL, MAX)
                    .with_factor(factor)
                    .with_jitter(jitter)
                    .seeded(u64::from(factor));
                for failures in 0..200 {
                    let ceiling = backoff.ceiling(failures);
                    assert!(ceiling <= MAX);
                    let delay = backoff.next_delay();
                    assert!(
                        delay <= ceiling,
                        "{jitter:?} ×{factor}: {delay:?} > {ceiling:?}"
                    );
                    if jitter == Jitter::Equal {
                        assert!(delay >= ceiling / 2, "{delay:?} < half of {ceiling:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_ceiling_grows_by_the_factor_up_to_max_and_a_success_resets_it() {
        let mut backoff = Backoff::new(INITIAL, MAX).seeded(7);
        let ceilings: Vec<u64> = (0..8).map(|n| backoff.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff.ceiling(u32::MAX), MAX, "no overflow");
        delays(&mut backoff, 10);
        backoff.reset();
        assert!(backoff.next_delay() <= INITIAL);
    }

    #[test]
    fn the_same_seed_draws_the_same_delays() {
        let mut a = Backoff::new(INITIAL, MAX).seeded(42);
        let mut b = Backoff::new(INITIAL, MAX).seeded(42);
        assert_eq!(delays(&mut a, 8), delays(&mut b, 8));
    }
}
