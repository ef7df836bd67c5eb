//! Verdicts of conformance cases and the exit code of a run.
//!
//! Exit codes (DESIGN.md §5): 0 every case that ran passed, 1 some case failed, 2 the run
//! could not be carried out (a harness error, or nothing ran at all). Skipped cases (the
//! target lacks a capability) and cases not run (they need an operator) never fail a run.

/// The outcome of one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The terminal behaved as the case expects.
    Pass,
    /// The terminal behaved differently.
    Fail,
    /// The target lacks a capability the case needs.
    Skipped,
    /// The case needs a physical step and no operator was available.
    NotRun,
    /// The harness itself could not run the case.
    Error,
}

/// How many cases ended with each verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Cases skipped for a missing capability.
    pub skipped: usize,
    /// Cases not run for want of an operator.
    pub not_run: usize,
    /// Cases the harness could not run.
    pub errors: usize,
}

impl RunSummary {
    /// Counts one more verdict.
    pub fn record(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Pass => self.passed += 1,
            Verdict::Fail => self.failed += 1,
            Verdict::Skipped => self.skipped += 1,
            Verdict::NotRun => self.not_run += 1,
            Verdict::Error => self.errors += 1,
        }
    }

    /// Every case counted.
    pub fn total(&self) -> usize {
        self.passed + self.failed + self.skipped + self.not_run + self.errors
    }
}

impl FromIterator<Verdict> for RunSummary {
    fn from_iter<I: IntoIterator<Item = Verdict>>(iter: I) -> Self {
        let mut summary = RunSummary::default();
        iter.into_iter().for_each(|v| summary.record(v));
        summary
    }
}

/// The process exit code for a finished run.
pub fn exit_code(summary: &RunSummary) -> i32 {
    if summary.errors > 0 || summary.passed + summary.failed == 0 {
        2
    } else if summary.failed > 0 {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::*;

    fn code(verdicts: &[Verdict]) -> i32 {
        exit_code(&verdicts.iter().copied().collect())
    }

    #[test]
    fn all_passed_is_zero_even_with_skips() {
        assert_eq!(code(&[Pass, Pass]), 0);
        assert_eq!(code(&[Pass, Skipped, NotRun]), 0);
    }

    #[test]
    fn any_failure_is_one() {
        assert_eq!(code(&[Pass, Fail, Skipped]), 1);
    }

    #[test]
    fn harness_errors_or_nothing_run_is_two() {
        assert_eq!(code(&[Pass, Fail, Error]), 2);
        assert_eq!(code(&[]), 2);
        assert_eq!(code(&[Skipped, NotRun]), 2);
    }

    #[test]
    fn summary_counts_each_verdict() {
        let s: RunSummary = [Pass, Fail, Skipped, NotRun, Error, Pass]
            .into_iter()
            .collect();
        assert_eq!(
            (
                s.passed,
                s.failed,
                s.skipped,
                s.not_run,
                s.errors,
                s.total()
            ),
            (2, 1, 1, 1, 1, 6)
        );
    }
}
