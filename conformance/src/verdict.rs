//! Verdicts of conformance cases and the exit code of a run.
//!
//! Exit codes (DESIGN.md §5): 0 every case that ran passed, 1 some case failed, 2 the run
//! could not be carried out – the harness hit an error, or nothing ran at all. Skipped
//! cases (the target lacks a capability) and cases not run (they need an operator) never
//! fail a run on their own; but a run in which *only* such cases occurred proved nothing,
//! so it cannot claim success.

/// The outcome of one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The terminal behaved as the case expects.
    Pass,
    /// The terminal behaved differently from what the case expects.
    Fail,
    /// The target lacks a capability the case needs (e.g. face on an iDAccess).
    Skipped,
    /// The case needs a physical step and no operator was available (`--unattended`).
    NotRun,
    /// The harness itself could not run the case (target unreachable, setup or cleanup
    /// failed), so the case says nothing about the terminal.
    Error,
}

/// How many cases of a run ended with each verdict.
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

    /// How many cases ended with `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        match verdict {
            Verdict::Pass => self.passed,
            Verdict::Fail => self.failed,
            Verdict::Skipped => self.skipped,
            Verdict::NotRun => self.not_run,
            Verdict::Error => self.errors,
        }
    }

    /// Cases that actually exercised the terminal: passed or failed.
    pub fn ran(&self) -> usize {
        self.passed + self.failed
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

/// The process exit code for a finished run: 0 all passed, 1 some failed, 2 could not run.
///
/// A harness error outranks failures: when the harness broke, the failures next to it may
/// be its consequence, so the run as a whole is reported as not carried out.
pub fn exit_code(summary: &RunSummary) -> i32 {
    if summary.errors > 0 || summary.ran() == 0 {
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
    fn all_passed_is_zero() {
        assert_eq!(code(&[Pass]), 0);
        assert_eq!(code(&[Pass, Pass, Pass]), 0);
    }

    #[test]
    fn skipped_and_not_run_do_not_fail_a_run() {
        assert_eq!(code(&[Pass, Skipped]), 0);
        assert_eq!(code(&[Pass, NotRun]), 0);
        assert_eq!(code(&[Skipped, Pass, NotRun, Skipped]), 0);
    }

    #[test]
    fn any_failure_is_one() {
        assert_eq!(code(&[Fail]), 1);
        assert_eq!(code(&[Pass, Fail, Pass]), 1);
        assert_eq!(code(&[Fail, Skipped, NotRun]), 1);
    }

    #[test]
    fn any_harness_error_is_two() {
        assert_eq!(code(&[Error]), 2);
        assert_eq!(code(&[Pass, Pass, Error]), 2);
        assert_eq!(code(&[Pass, Fail, Error]), 2);
    }

    #[test]
    fn nothing_ran_is_two() {
        assert_eq!(code(&[]), 2);
        assert_eq!(code(&[Skipped]), 2);
        assert_eq!(code(&[NotRun]), 2);
        assert_eq!(code(&[Skipped, NotRun]), 2);
    }

    #[test]
    fn summary_counts_each_verdict() {
        let s: RunSummary = [Pass, Fail, Skipped, NotRun, Error, Pass]
            .into_iter()
            .collect();
        let expected = RunSummary {
            passed: 2,
            failed: 1,
            skipped: 1,
            not_run: 1,
            errors: 1,
        };
        assert_eq!(s, expected);
        assert_eq!((s.ran(), s.total()), (3, 6));
        for (verdict, n) in [(Pass, 2), (Fail, 1), (Skipped, 1), (NotRun, 1), (Error, 1)] {
            assert_eq!(s.count(verdict), n, "{verdict:?}");
        }
    }

    #[test]
    fn record_adds_one_at_a_time() {
        let mut s = RunSummary::default();
        assert_eq!(s.total(), 0);
        s.record(NotRun);
        s.record(NotRun);
        assert_eq!((s.not_run, s.total(), s.ran()), (2, 2, 0));
    }
}
