//! Live progress on the console while a run goes on, then the summary and the details of
//! every failure and harness error.
//!
//! One line per finished case (`PASS     SESSION-001  login answers a session token
//! (12 ms)`), with the reason on an indented line for cases that were skipped, not run or
//! errored. On an interactive terminal (`colour = true`) verdicts are coloured and the
//! case being run is shown on a transient line that its result replaces; otherwise the
//! output is plain text with no escape sequences at all, fit for CI logs and pipes.
//!
//! Progress is best effort: a write error (a closed pipe, a full disk) is ignored, because
//! a run on a real device must go on to its cleanup whatever happens to its console. The
//! JSON, JUnit and HTML reports are the record of a run; this is not.

use std::io::Write;

use crate::outcome::{CaseInfo, CaseResult, Run};
use crate::verdict::Verdict;

use super::{millis, verdict_label};
use crate::verdict::Overall;

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const MAGENTA: &str = "\x1b[35m";
/// Carriage return and "erase the whole line": removes the transient "running" line.
const CLEAR_LINE: &str = "\r\x1b[2K";

/// Width of the verdict column: the longest label, `NOT RUN`.
const LABEL_WIDTH: usize = 7;
/// Indentation of the lines under a case's line.
const INDENT: &str = "         ";

/// Prints a run's progress to `out` as it happens.
#[derive(Debug)]
pub struct Progress<W: Write> {
    /// Every line goes through the redaction of tokens and passwords.
    out: crate::redact::Redacting<W>,
    colour: bool,
    /// A transient "running" line is on screen and must be cleared before the next line.
    transient: bool,
}

impl<W: Write> Progress<W> {
    /// Progress written to `out`; `colour` when `out` is an interactive terminal (colours
    /// and the transient "running" line), `false` for plain text.
    pub fn new(out: W, colour: bool) -> Self {
        Progress {
            out: crate::redact::Redacting::new(out),
            colour,
            transient: false,
        }
    }

    /// Gives the writer back (tests read what was printed).
    pub fn into_inner(self) -> W {
        self.out.into_inner()
    }

    /// A case starts. A case with a physical step gets a line of its own, so the
    /// operator's prompts that follow are seen in context; any other case is shown on a
    /// transient line on an interactive terminal, and not at all in plain text.
    pub fn case_started(&mut self, info: &CaseInfo) {
        self.clear_transient();
        let running = self.paint(DIM, &format!("{:<LABEL_WIDTH$}", "RUN"));
        if info.physical {
            let note = self.paint(DIM, "(physical step: follow the prompts)");
            let _ = writeln!(self.out, "{running}  {}  {}  {note}", info.id, info.title);
        } else if self.colour {
            let _ = write!(self.out, "{running}  {}  {}", info.id, info.title);
            self.transient = true;
        }
        let _ = self.out.flush();
    }

    /// A case ended: its verdict, id, title and duration on one line, and for a skipped,
    /// not-run or errored case the reason on the next.
    pub fn case_finished(&mut self, result: &CaseResult) {
        self.clear_transient();
        let label = self.verdict(result.verdict);
        let _ = writeln!(
            self.out,
            "{label}  {}  {}  ({} ms)",
            result.case.id,
            result.case.title,
            millis(result.duration)
        );
        let shows_reason = matches!(
            result.verdict,
            Verdict::Skipped | Verdict::NotRun | Verdict::Error
        );
        if let (true, Some(reason)) = (shows_reason, &result.expected) {
            let _ = writeln!(self.out, "{INDENT}{}", indent_continuation(reason, INDENT));
        }
        let _ = self.out.flush();
    }

    /// The run ended: the details of every failure and harness error (expected, actual,
    /// the reference and the evidence), then the counts and the overall result.
    pub fn finished(&mut self, run: &Run) {
        self.clear_transient();
        for (heading, verdict) in [("Failures", Verdict::Fail), ("Errors", Verdict::Error)] {
            let mut results = run
                .results
                .iter()
                .filter(|result| result.verdict == verdict)
                .peekable();
            if results.peek().is_none() {
                continue;
            }
            let heading = self.paint(BOLD, heading);
            let _ = writeln!(self.out, "\n{heading}:");
            for result in results {
                self.details(result);
            }
        }

        let summary = run.summary();
        let total_ms: u64 = run
            .results
            .iter()
            .map(|result| millis(result.duration))
            .sum();
        let _ = writeln!(
            self.out,
            "\nTarget: {}  model {} (profile {})  firmware {}  serial {}  device {}  (acs-conformance {})",
            run.target.target,
            run.target.model,
            run.target.profile,
            run.target.firmware,
            run.target.serial,
            run.target.device_id,
            run.suite_version
        );
        let _ = writeln!(
            self.out,
            "Summary: {} passed, {} failed, {} skipped, {} not run, {} ({}, {} ms)",
            summary.passed,
            summary.failed,
            summary.skipped,
            summary.not_run,
            count(summary.errors, "error"),
            count(summary.total(), "case"),
            total_ms
        );
        let not_run: Vec<&CaseResult> = run
            .results
            .iter()
            .filter(|r| r.verdict == Verdict::NotRun)
            .collect();
        if !not_run.is_empty() {
            let _ = writeln!(self.out, "Not run:");
            for r in not_run {
                let _ = writeln!(
                    self.out,
                    "  {}  {}",
                    r.case.id,
                    r.reason.as_ref().map(|x| x.explain()).unwrap_or_default()
                );
            }
        }
        if run.interrupted {
            let _ = writeln!(
                self.out,
                "Interrupted: the run was stopped before every case ran"
            );
        }
        let _ = writeln!(self.out, "Clean-up: {}", run.cleanup.describe());
        let result = run.overall();
        let overall = match result {
            Overall::Passed => self.paint(GREEN, result.label()),
            Overall::Failed => self.paint(RED, result.label()),
            Overall::Incomplete | Overall::NotCarriedOut => self.paint(MAGENTA, result.label()),
        };
        let overall = self.paint(
            BOLD,
            &format!("{overall} (exit code {})", result.exit_code()),
        );
        let _ = writeln!(self.out, "Result: {overall}");
        let _ = self.out.flush();
    }

    fn details(&mut self, result: &CaseResult) {
        let label = self.verdict(result.verdict);
        let _ = writeln!(
            self.out,
            "\n{label}  {}  {}",
            result.case.id, result.case.title
        );
        let _ = writeln!(self.out, "{INDENT}reference: {}", result.case.reference);
        let field_indent = format!("{INDENT}           ");
        // On a failure `expected` is what should have happened; otherwise it says why the
        // case has no pass/fail verdict.
        let expected_name = if result.verdict == Verdict::Fail {
            "expected: "
        } else {
            "reason:   "
        };
        for (name, value) in [
            (expected_name, &result.expected),
            ("actual:   ", &result.actual),
        ] {
            if let Some(value) = value {
                let _ = writeln!(
                    self.out,
                    "{INDENT}{name} {}",
                    indent_continuation(value, &field_indent)
                );
            }
        }
        if !result.evidence.is_empty() {
            let _ = writeln!(self.out, "{INDENT}evidence:");
            let exchange_indent = format!("{INDENT}    ");
            for exchange in &result.evidence {
                let _ = writeln!(
                    self.out,
                    "{INDENT}  > {}",
                    indent_continuation(&exchange.request, &exchange_indent)
                );
                let _ = writeln!(
                    self.out,
                    "{INDENT}  < {}",
                    indent_continuation(&exchange.response, &exchange_indent)
                );
            }
        }
    }

    /// The verdict's label, padded to the column width and coloured when colour is on.
    fn verdict(&self, verdict: Verdict) -> String {
        let label = format!("{:<LABEL_WIDTH$}", verdict_label(verdict));
        let style = match verdict {
            Verdict::Pass => GREEN,
            Verdict::Fail => RED,
            Verdict::Skipped | Verdict::NotRun => YELLOW,
            Verdict::Error => MAGENTA,
        };
        self.paint(style, &label)
    }

    fn paint(&self, style: &str, text: &str) -> String {
        if self.colour {
            format!("{style}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }

    fn clear_transient(&mut self) {
        if self.transient {
            let _ = write!(self.out, "{CLEAR_LINE}");
            self.transient = false;
        }
    }
}

/// `1 case`, `2 cases`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Indents every line of `text` after the first by `indent`, so multi-line values line
/// up under the first.
fn indent_continuation(text: &str, indent: &str) -> String {
    text.lines()
        .collect::<Vec<_>>()
        .join(&format!("\n{indent}"))
}
