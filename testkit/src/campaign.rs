//! The fuzz-campaign runner: a fixed seed, no failure persistence, a case count from the
//! environment, and a line on stderr with the count and duration (the figures of
//! RELIABILITY.md).

use std::fmt::Debug;
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestCaseResult, TestRng, TestRunner};

/// The seed when `ACS_FUZZ_SEED` is not set.
pub const DEFAULT_SEED: u64 = 9;

/// Inputs per campaign: `ACS_FUZZ_CASES`, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("ACS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The campaigns' seed: `ACS_FUZZ_SEED`, else [`DEFAULT_SEED`].
pub fn seed() -> u64 {
    std::env::var("ACS_FUZZ_SEED")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_SEED)
}

/// Runs `test` on [`cases`]`(default)` inputs drawn from `strategy` with the [`seed`];
/// reports the count and duration on stderr as `fuzz campaign {name}: …` and panics with
/// proptest's (shrunk) failure. `name` says whose campaign it is, e.g. `core/api`.
pub fn campaign<S>(name: &str, default: u32, strategy: S, test: impl Fn(S::Value) -> TestCaseResult)
where
    S: Strategy,
    S::Value: Debug,
{
    let n = cases(default);
    let seed = seed();
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let config = ProptestConfig {
        cases: n,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
    let started = Instant::now();
    let result = runner.run(&strategy, test);
    eprintln!(
        "fuzz campaign {name}: {n} inputs, seed {seed}, {:.1?}",
        started.elapsed()
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// The start of a reply (300 characters at most, lossy UTF-8), for failure messages.
pub fn excerpt(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(300).collect()
}

/// A reply's body as JSON, or a failed case saying that `what` did not answer JSON.
pub fn json_or_fail(bytes: &[u8], what: &str) -> Result<serde_json::Value, TestCaseError> {
    serde_json::from_slice(bytes)
        .map_err(|e| TestCaseError::fail(format!("{what}: not JSON ({e}): {}", excerpt(bytes))))
}
