//! Reports of a run: live progress on the console ([`console`]), a JSON document for
//! tools ([`json`]), JUnit XML for CI ([`junit`]) and one self-contained HTML page for a
//! field engineer's sign-off ([`html`]).
//!
//! Every report only *renders* a [`Run`](crate::outcome::Run) (or, for the console, its
//! parts as they arrive): no report decides a verdict, touches a target or reads the
//! clock, so the same run always renders to the same bytes and reports snapshot
//! cleanly. Writing the rendered text to a file is the caller's job.

use crate::verdict::{RunSummary, Verdict, exit_code};

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

/// The run as a whole, in words, following [`exit_code`]: all passed, some failed, or the
/// run could not be carried out (a harness error, or nothing ran).
pub(crate) fn overall_label(summary: &RunSummary) -> &'static str {
    match exit_code(summary) {
        0 => "PASSED",
        1 => "FAILED",
        _ => "NOT CARRIED OUT",
    }
}

/// Milliseconds, saturating (a case never runs for 584 million years).
pub(crate) fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
