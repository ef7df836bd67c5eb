//! Reports of a run: live progress on the console ([`console`]), a JSON document for
//! tools ([`json`]), JUnit XML for CI ([`junit`]) and one self-contained HTML page for a
//! field engineer's sign-off ([`html`]).
//!
//! Every report only *renders* a [`Run`](crate::outcome::Run) (or, for the console, its
//! parts as they arrive): no report decides a verdict, touches a target or reads the
//! clock, so the same run always renders to the same bytes and reports snapshot
//! cleanly. Writing the rendered text to a file is the caller's job.

use crate::verdict::Verdict;

pub mod console;
pub mod html;
pub mod json;
pub mod junit;

/// The upper-case label every report shows next to (or instead of) a verdict's colour, so
/// a report stays readable printed in black and white or by someone who cannot tell the
/// colours apart.
pub(crate) fn verdict_label(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Skipped => "SKIP",
        Verdict::NotRun => "NOT RUN",
        Verdict::Error => "ERROR",
    }
}

/// The legend every report gives for the verdicts and the run's result.
pub(crate) const LEGEND: [(&str, &str); 8] = [
    (
        "PASS",
        "the terminal behaved as the case expects, on evidence the case itself produced",
    ),
    ("FAIL", "the terminal behaved differently"),
    (
        "SKIP",
        "the case does not apply: the terminal lacks a capability it needs",
    ),
    (
        "NOT RUN",
        "the case could not be carried out, for the reason given with it: a flag the run was not given (--allow-destructive), no person at the terminal (--unattended), no address the terminal can reach the core on (--callback-addr), a physical step nobody performed (no evidence newer than the prompt), or an interrupted run",
    ),
    (
        "ERROR",
        "the harness could not run the case, so it says nothing about the terminal",
    ),
    (
        "Result PASSED",
        "every selected case that applies ran and passed, and the clean-up was complete (exit code 0)",
    ),
    (
        "Result INCOMPLETE",
        "nothing failed, but a case was not run, the run was interrupted, or the clean-up left something behind (exit code 3); not a sign-off",
    ),
    (
        "Result FAILED / NOT CARRIED OUT",
        "some case failed (exit code 1) / the harness could not carry the run out (exit code 2)",
    ),
];

/// Milliseconds, saturating (a case never runs for 584 million years).
pub(crate) fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
