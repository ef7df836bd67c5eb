//! The JUnit XML report (`--junit FILE`), for CI systems that show test results.
//!
//! One `<testsuites>` root holding one `<testsuite name="acs-conformance">`, whose
//! `<properties>` carry the target's identity, and one `<testcase>` per case:
//! `classname` is the layer (`protocol` / `workflow`), `name` is `"ID title"`, `time` is
//! in seconds. A failed case gets `<failure>`, a harness error `<error>` (both with the
//! expected / actual text, the reference and the evidence as the element's text), a case
//! not run an `<error type="not_run_<reason>">` (it was selected and not carried out), and
//! a case that does not apply to the terminal `<skipped>` with the reason as its
//! `message`. A last `<testcase classname="run">` stands for the run as a whole: it passes
//! only when the run PASSED, so an interrupted or incomplete run is never green in CI.
//!
//! The output keeps to the Jenkins JUnit schema (`junit-10.xsd` of the Jenkins xUnit
//! plugin, the de-facto JUnit XML definition CI tools accept): in particular the
//! `<testsuites>` root carries only the attributes that schema allows (`name`, `tests`,
//! `failures`, `errors`, `time`; *not* `skipped`), and a `<testcase>` holds only
//! `<failure>`, `<error>`, `<skipped>`, `<system-out>` and `<system-err>`. The
//! integration tests validate the output against that schema, vendored with its licence
//! as `conformance/schema/junit-10.xsd`, with `xmllint`.
//!
//! Written by hand rather than with the `quick-junit` crate, because that crate always
//! writes `skipped` on `<testsuites>`, which the schema above rejects, and it would bring
//! `chrono` and `uuid` into a workspace that uses `jiff`, only to format one timestamp
//! (`started_at` is already RFC 3339 and is written as is).

use std::fmt::Write as _;

use crate::outcome::{CaseResult, Layer, Run};
use crate::verdict::{Overall, Verdict};

/// The name of the one test suite.
pub const SUITE_NAME: &str = "acs-conformance";

/// Renders `run` as a JUnit XML document (UTF-8, with an XML declaration), ending in a
/// newline.
pub fn write(run: &Run) -> String {
    let summary = run.summary();
    let overall = run.overall();
    // One test case per catalogue case, plus one for the run itself, which fails unless
    // the run PASSED: an interrupted or incomplete run is never green in CI. A case not
    // run is an error (it was selected and could not be carried out); a case skipped
    // because the terminal lacks a capability is skipped.
    let tests = summary.total() + 1;
    let skipped = summary.skipped;
    let run_failed = usize::from(overall != Overall::Passed);
    let (failures, errors) = (
        summary.failed,
        summary.errors + summary.not_run + run_failed,
    );
    let time = seconds(
        run.results
            .iter()
            .map(|result| super::millis(result.duration))
            .sum(),
    );

    let mut xml = String::new();
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"{name}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time}\">",
        name = SUITE_NAME,
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{name}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" timestamp=\"{timestamp}\" time=\"{time}\">",
        name = SUITE_NAME,
        timestamp = attribute(&run.started_at),
    );
    xml.push_str("    <properties>\n");
    for (name, value) in [
        ("target", &run.target.target),
        ("model", &run.target.model),
        ("firmware", &run.target.firmware),
        ("serial", &run.target.serial),
        ("device_id", &run.target.device_id),
        ("profile", &run.target.profile),
        ("suite_version", &run.suite_version),
        ("result", &overall.label().to_owned()),
        ("exit_code", &overall.exit_code().to_string()),
        ("interrupted", &run.interrupted.to_string()),
        ("cleanup", &run.cleanup.describe()),
    ] {
        let _ = writeln!(
            xml,
            "      <property name=\"{name}\" value=\"{value}\"/>",
            value = attribute(value),
        );
    }
    xml.push_str("    </properties>\n");
    for result in &run.results {
        write_case(&mut xml, result);
    }
    let _ = write!(
        xml,
        "    <testcase classname=\"run\" name=\"RUN result: {label}\" time=\"0.000\"",
        label = overall.label()
    );
    if overall == Overall::Passed {
        xml.push_str("/>\n");
    } else {
        let mut why = Vec::new();
        if summary.not_run > 0 {
            why.push(format!("{} case(s) not run", summary.not_run));
        }
        if run.interrupted {
            why.push("the run was interrupted".to_owned());
        }
        if !run.cleanup.is_complete() {
            why.push(format!("clean-up {}", run.cleanup.describe()));
        }
        if summary.failed > 0 {
            why.push(format!("{} case(s) failed", summary.failed));
        }
        if summary.errors > 0 {
            why.push(format!("{} harness error(s)", summary.errors));
        }
        let message = format!(
            "the run is {} (exit code {}): {}",
            overall.label(),
            overall.exit_code(),
            why.join("; ")
        );
        let _ = write!(
            xml,
            ">\n      <error type=\"run_{kind}\" message=\"{message}\"/>\n    </testcase>\n",
            kind = overall.label().to_ascii_lowercase().replace(' ', "_"),
            message = attribute(&message),
        );
    }
    xml.push_str("  </testsuite>\n");
    xml.push_str("</testsuites>\n");
    crate::redact::redact(&xml)
}

fn write_case(xml: &mut String, result: &CaseResult) {
    let case = &result.case;
    let classname = match case.layer {
        Layer::Protocol => "protocol",
        Layer::Workflow => "workflow",
    };
    let _ = write!(
        xml,
        "    <testcase classname=\"{classname}\" name=\"{name}\" time=\"{time}\"",
        name = attribute(&format!("{} {}", case.id, case.title)),
        time = seconds(super::millis(result.duration)),
    );
    let expected = result.expected.as_deref();
    match result.verdict {
        Verdict::Pass => xml.push_str("/>\n"),
        Verdict::Fail => {
            let message = match (expected, result.actual.as_deref()) {
                (Some(expected), Some(actual)) => format!("expected {expected}, got {actual}"),
                (Some(expected), None) => format!("expected {expected}"),
                (None, Some(actual)) => format!("got {actual}"),
                (None, None) => "the terminal did not behave as the case expects".to_owned(),
            };
            write_problem(xml, "failure", "fail", &message, result);
        }
        Verdict::Error => {
            let message = expected
                .or(result.actual.as_deref())
                .unwrap_or("the harness could not run the case");
            write_problem(xml, "error", "harness_error", message, result);
        }
        Verdict::Skipped => {
            let reason = expected.unwrap_or("a capability the case needs is absent");
            write_skipped(xml, "skipped", &format!("skipped: {reason}"));
        }
        Verdict::NotRun => {
            let reason = expected.unwrap_or("the case could not be carried out");
            let kind = result.reason.as_ref().map_or("not_run", |r| r.kind());
            write_problem(
                xml,
                "error",
                &format!("not_run_{kind}"),
                &format!("not run: {reason}"),
                result,
            );
        }
    }
}

/// `<failure>` or `<error>`: a one-line message, the details as the element's text.
fn write_problem(xml: &mut String, element: &str, kind: &str, message: &str, result: &CaseResult) {
    let _ = writeln!(
        xml,
        ">\n      <{element} message=\"{message}\" type=\"{kind}\">{details}</{element}>\n    </testcase>",
        message = attribute(message),
        details = text(&details(result)),
    );
}

/// `<skipped>`; `kind` tells a skipped case (capability absent) from one not run.
fn write_skipped(xml: &mut String, kind: &str, message: &str) {
    let _ = writeln!(
        xml,
        ">\n      <skipped message=\"{message}\" type=\"{kind}\"/>\n    </testcase>",
        message = attribute(message),
    );
}

/// The plain-text body of a failure or error: reference, expected, actual, evidence.
fn details(result: &CaseResult) -> String {
    let mut details = String::new();
    let _ = writeln!(details, "reference: {}", result.case.reference);
    if let Some(expected) = &result.expected {
        // On a failure `expected` is what should have happened; otherwise it says why the
        // case has no pass/fail verdict.
        let name = if result.verdict == Verdict::Fail {
            "expected"
        } else {
            "reason"
        };
        let _ = writeln!(details, "{name}: {expected}");
    }
    if let Some(actual) = &result.actual {
        let _ = writeln!(details, "actual: {actual}");
    }
    for (n, exchange) in result.evidence.iter().enumerate() {
        let _ = writeln!(
            details,
            "\nexchange {}\nrequest: {}\nresponse: {}",
            n + 1,
            exchange.request,
            exchange.response
        );
    }
    details
}

/// Milliseconds as the seconds JUnit expects, e.g. `0.012`.
fn seconds(millis: u64) -> String {
    format!("{}.{:03}", millis / 1000, millis % 1000)
}

/// Escapes `value` for a double-quoted attribute. Tabs and line breaks become character
/// references, because a parser would otherwise normalise them to spaces.
fn attribute(value: &str) -> String {
    escape(value, true)
}

/// Escapes `value` for element content. `>` is escaped too, so `]]>` cannot occur.
fn text(value: &str) -> String {
    escape(value, false)
}

fn escape(value: &str, in_attribute: bool) -> String {
    // Secrets are masked before escaping hides their quotes from the redaction.
    let value = crate::redact::redact(value);
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' if in_attribute => escaped.push_str("&quot;"),
            '\n' if in_attribute => escaped.push_str("&#10;"),
            '\t' if in_attribute => escaped.push_str("&#9;"),
            '\r' => escaped.push_str("&#13;"),
            '\n' | '\t' => escaped.push(c),
            // Not allowed in XML 1.0 at all, not even as a character reference: show it
            // the way Rust would write it, so a stray byte in a response stays visible.
            c if is_forbidden_in_xml(c) => {
                let _ = write!(escaped, "\\u{{{:x}}}", u32::from(c));
            }
            c => escaped.push(c),
        }
    }
    escaped
}

/// Characters outside XML 1.0's `Char` production (Rust strings hold no surrogates).
fn is_forbidden_in_xml(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_keeps_line_breaks_in_attributes() {
        assert_eq!(
            attribute("a<b & \"c\">\n\td"),
            "a&lt;b &amp; &quot;c&quot;&gt;&#10;&#9;d"
        );
        assert_eq!(text("a<b & \"c\"]]>\nd"), "a&lt;b &amp; \"c\"]]&gt;\nd");
    }

    #[test]
    fn shows_characters_xml_cannot_hold() {
        assert_eq!(text("esc\u{1b}[0m nul\u{0}"), "esc\\u{1b}[0m nul\\u{0}");
        assert_eq!(text("\r\n"), "&#13;\n");
    }

    #[test]
    fn formats_seconds_with_milliseconds() {
        assert_eq!(seconds(0), "0.000");
        assert_eq!(seconds(12), "0.012");
        assert_eq!(seconds(61_005), "61.005");
    }
}
