//! Verdicts of conformance cases and the exit code of a run.
//!
//! Exit codes: 0 PASSED – every selected case that applies to the terminal ran and
//! passed, and the clean-up was complete; 1 FAILED – some case failed; 2 NOT CARRIED OUT –
//! the harness hit an error, or nothing ran at all; 3 INCOMPLETE – nothing failed, but a
//! case was not run (no operator, a missing flag, no callback address, a physical step
//! nobody performed), the run was interrupted, or the clean-up left something behind.
//! Cases skipped because the terminal lacks a capability do not apply to it and never
//! count against a run.

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

/// The run as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Overall {
    /// Every selected case that applies to the terminal ran and passed, and the clean-up
    /// left the terminal as the run found it. Exit code 0.
    Passed,
    /// Some case failed. Exit code 1.
    Failed,
    /// The harness hit an error, or nothing ran at all. Exit code 2.
    NotCarriedOut,
    /// Nothing failed, but not everything was checked: a case was not run (no operator, a
    /// missing flag, no callback address, a step nobody performed), the run was
    /// interrupted, or the clean-up left something behind. Exit code 3.
    Incomplete,
}

impl Overall {
    /// The verdict of a run with `summary`, interrupted or not, cleaned up or not.
    ///
    /// A harness error outranks failures (the failures next to it may be its
    /// consequence); failures outrank incompleteness. Cases skipped because the terminal
    /// lacks a capability do not apply to it and never make a run incomplete.
    pub fn of(summary: &RunSummary, interrupted: bool, cleaned_up: bool) -> Overall {
        if summary.errors > 0 || summary.ran() == 0 {
            Overall::NotCarriedOut
        } else if summary.failed > 0 {
            Overall::Failed
        } else if summary.not_run > 0 || interrupted || !cleaned_up {
            Overall::Incomplete
        } else {
            Overall::Passed
        }
    }

    /// The process exit code: 0 passed, 1 failed, 2 not carried out, 3 incomplete.
    pub fn exit_code(self) -> i32 {
        match self {
            Overall::Passed => 0,
            Overall::Failed => 1,
            Overall::NotCarriedOut => 2,
            Overall::Incomplete => 3,
        }
    }

    /// The word every report shows.
    pub fn label(self) -> &'static str {
        match self {
            Overall::Passed => "PASSED",
            Overall::Failed => "FAILED",
            Overall::NotCarriedOut => "NOT CARRIED OUT",
            Overall::Incomplete => "INCOMPLETE",
        }
    }
}

/// The exit code of an uninterrupted, cleaned-up run with `summary`.
pub fn exit_code(summary: &RunSummary) -> i32 {
    Overall::of(summary, false, true).exit_code()
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
    fn skipped_cases_do_not_apply_but_cases_not_run_make_a_run_incomplete() {
        assert_eq!(code(&[Pass, Skipped]), 0);
        assert_eq!(code(&[Pass, NotRun]), 3);
        assert_eq!(code(&[Skipped, Pass, NotRun, Skipped]), 3);
    }

    #[test]
    fn an_interrupted_or_uncleaned_run_is_incomplete_unless_something_failed() {
        let passed: RunSummary = [Pass, Pass].into_iter().collect();
        assert_eq!(Overall::of(&passed, true, true), Overall::Incomplete);
        assert_eq!(Overall::of(&passed, false, false), Overall::Incomplete);
        assert_eq!(Overall::of(&passed, false, true), Overall::Passed);
        let failed: RunSummary = [Pass, Fail, NotRun].into_iter().collect();
        assert_eq!(Overall::of(&failed, true, false), Overall::Failed);
        assert_eq!(Overall::Incomplete.exit_code(), 3);
        assert_eq!(Overall::Incomplete.label(), "INCOMPLETE");
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
