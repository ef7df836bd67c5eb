//! The HTML report (`--html FILE`): one self-contained page a field engineer can hand
//! over and sign: the device's identity (model, firmware, serial, device id), the date,
//! the counts, an overview of every case, then every case in detail with its reference,
//! expected and actual behaviour and the request/response evidence, and a sign-off box.
//!
//! The page needs nothing but a browser: the CSS is inline, there are no scripts, images,
//! fonts or links outside the page, so it can be mailed, archived or opened offline years
//! later. It is plain semantic HTML (sections with headings, tables with header cells,
//! definition lists) and prints well: every verdict has a text label next to its colour,
//! and a case's details are kept on one page where they fit.
//!
//! Every piece of text from the run is HTML-escaped: evidence is whatever a device
//! answered, and must never become markup.

use std::fmt::Write as _;

use crate::outcome::{CaseResult, Layer, Run};
use crate::verdict::{Overall, Verdict};

use super::{LEGEND, millis, verdict_label};

/// Renders `run` as a complete HTML document, ending in a newline.
pub fn write(run: &Run) -> String {
    let summary = run.summary();
    let identity = &run.target;
    let mut page = String::new();

    let _ = write!(
        page,
        "<!DOCTYPE html>\n\
         <html lang=\"en\">\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Conformance report: {model} {serial}, {started_at}</title>\n\
         <style>\n{STYLE}</style>\n\
         </head>\n\
         <body>\n",
        model = escape(&identity.model),
        serial = escape(&identity.serial),
        started_at = escape(&run.started_at),
    );

    // Header: what was tested, when, and the result in one word.
    let overall = run.overall();
    let overall_class = match overall {
        Overall::Passed => "pass",
        Overall::Failed => "fail",
        Overall::Incomplete => "not-run",
        Overall::NotCarriedOut => "error",
    };
    let _ = write!(
        page,
        "<header>\n\
         <h1>Terminal conformance report</h1>\n\
         <p class=\"overall\">Result: <strong class=\"verdict {overall_class}\">{label}</strong> (exit code {code}){note}</p>\n\
         <table class=\"identity\">\n\
         <tbody>\n",
        label = overall.label(),
        code = overall.exit_code(),
        note = match overall {
            Overall::Passed => "",
            Overall::Incomplete =>
                " — not every selected case was checked: this report is not a sign-off",
            Overall::Failed => " — the terminal did not behave as expected",
            Overall::NotCarriedOut => " — the run could not be carried out",
        },
    );
    let interrupted = if run.interrupted {
        "yes: stopped before every case ran".to_owned()
    } else {
        "no".to_owned()
    };
    for (name, value) in [
        ("Model", &identity.model),
        ("Profile", &identity.profile),
        ("Firmware", &identity.firmware),
        ("Serial number", &identity.serial),
        ("Device id", &identity.device_id),
        ("Target", &identity.target),
        ("Suite", &format!("acs-conformance {}", run.suite_version)),
        ("Interrupted", &interrupted),
        ("Clean-up", &run.cleanup.describe()),
    ] {
        let _ = writeln!(
            page,
            "<tr><th scope=\"row\">{name}</th><td>{}</td></tr>",
            escape(value)
        );
    }
    let _ = write!(
        page,
        "<tr><th scope=\"row\">Date</th><td><time datetime=\"{started_at}\">{started_at}</time></td></tr>\n\
         </tbody>\n\
         </table>\n\
         </header>\n\
         <main>\n",
        started_at = escape(&run.started_at),
    );

    // Summary counts.
    let total_ms: u64 = run
        .results
        .iter()
        .map(|result| millis(result.duration))
        .sum();
    let _ = write!(
        page,
        "<section aria-labelledby=\"summary\">\n\
         <h2 id=\"summary\">Summary</h2>\n\
         <table class=\"summary\">\n\
         <thead><tr><th scope=\"col\">Passed</th><th scope=\"col\">Failed</th>\
         <th scope=\"col\">Skipped</th><th scope=\"col\">Not run</th>\
         <th scope=\"col\">Errors</th><th scope=\"col\">Total</th><th scope=\"col\">Time</th></tr></thead>\n\
         <tbody><tr><td class=\"num\">{passed}</td><td class=\"num\">{failed}</td>\
         <td class=\"num\">{skipped}</td><td class=\"num\">{not_run}</td>\
         <td class=\"num\">{errors}</td><td class=\"num\">{total}</td><td class=\"num\">{total_ms} ms</td></tr></tbody>\n\
         </table>\n\
         {legend}\
         </section>\n",
        legend = legend(),
        passed = summary.passed,
        failed = summary.failed,
        skipped = summary.skipped,
        not_run = summary.not_run,
        errors = summary.errors,
        total = summary.total(),
    );

    // Overview: one row per case, linking to its details.
    page.push_str(
        "<section aria-labelledby=\"cases\">\n\
         <h2 id=\"cases\">Cases</h2>\n\
         <table class=\"overview\">\n\
         <thead><tr><th scope=\"col\">Verdict</th><th scope=\"col\">Case</th>\
         <th scope=\"col\">Title</th><th scope=\"col\">Layer</th>\
         <th scope=\"col\">Changed on the terminal</th><th scope=\"col\">Time</th></tr></thead>\n\
         <tbody>\n",
    );
    for result in &run.results {
        let case = &result.case;
        let _ = writeln!(
            page,
            "<tr><td>{verdict}</td><td><a href=\"#{anchor}\">{id}</a></td><td>{title}</td>\
             <td>{layer}</td><td>{changed}</td><td class=\"num\">{ms} ms</td></tr>",
            changed = escape(&changed(result)),
            verdict = badge(result.verdict),
            anchor = anchor(case.id),
            id = escape(case.id),
            title = escape(case.title),
            layer = layer_name(case.layer),
            ms = millis(result.duration),
        );
    }
    page.push_str("</tbody>\n</table>\n</section>\n");

    // Details of every case.
    page.push_str(
        "<section aria-labelledby=\"details\">\n\
         <h2 id=\"details\">Details</h2>\n",
    );
    for result in &run.results {
        write_case(&mut page, result);
    }
    page.push_str("</section>\n");

    // Sign-off: left blank to be filled in by hand on the printed page.
    page.push_str(
        "<section class=\"signoff\" aria-labelledby=\"signoff\">\n\
         <h2 id=\"signoff\">Sign-off</h2>\n\
         <table>\n\
         <tbody>\n\
         <tr><th scope=\"row\">Engineer</th><td></td></tr>\n\
         <tr><th scope=\"row\">Site</th><td></td></tr>\n\
         <tr><th scope=\"row\">Date</th><td></td></tr>\n\
         <tr><th scope=\"row\">Signature</th><td></td></tr>\n\
         </tbody>\n\
         </table>\n\
         </section>\n\
         </main>\n",
    );
    let _ = write!(
        page,
        "<footer><p>Generated by acs-conformance {version}.</p></footer>\n\
         </body>\n\
         </html>\n",
        version = env!("CARGO_PKG_VERSION"),
    );
    crate::redact::redact(&page)
}

fn write_case(page: &mut String, result: &CaseResult) {
    let case = &result.case;
    let _ = write!(
        page,
        "<article class=\"case {class}\" id=\"{anchor}\">\n\
         <h3>{verdict} {id} — {title}</h3>\n\
         <dl class=\"facts\">\n\
         <dt>Reference</dt><dd>{reference}</dd>\n\
         <dt>Layer</dt><dd>{layer}</dd>\n\
         <dt>Needs</dt><dd>{needs}</dd>\n\
         <dt>Physical step</dt><dd>{physical}</dd>\n\
         <dt>Changed on the terminal</dt><dd>{changes}</dd>\n\
         <dt>Duration</dt><dd>{ms} ms</dd>\n",
        class = verdict_class(result.verdict),
        anchor = anchor(case.id),
        verdict = badge(result.verdict),
        id = escape(case.id),
        title = escape(case.title),
        reference = escape(case.reference),
        layer = layer_name(case.layer),
        needs = if case.needs.is_empty() {
            "nothing beyond the basic API".to_owned()
        } else {
            case.needs
                .iter()
                .map(|capability| capability.name())
                .collect::<Vec<_>>()
                .join(", ")
        },
        physical = if case.physical {
            "yes: a person acts at the terminal"
        } else {
            "no"
        },
        changes = escape(&changed(result)),
        ms = millis(result.duration),
    );
    // For a failure `expected` is what should have happened; otherwise it says why the
    // case has no pass/fail verdict.
    let expected_name = match result.verdict {
        Verdict::Pass | Verdict::Fail => "Expected",
        Verdict::Skipped | Verdict::NotRun | Verdict::Error => "Reason",
    };
    for (name, value) in [
        (expected_name, &result.expected),
        ("Actual", &result.actual),
    ] {
        if let Some(value) = value {
            let _ = writeln!(page, "<dt>{name}</dt><dd><pre>{}</pre></dd>", escape(value));
        }
    }
    page.push_str("</dl>\n");
    if !result.evidence.is_empty() {
        page.push_str("<h4>Evidence</h4>\n<ol class=\"evidence\">\n");
        for exchange in &result.evidence {
            let _ = writeln!(
                page,
                "<li><dl>\
                 <dt>Request</dt><dd><pre>{}</pre></dd>\
                 <dt>Response</dt><dd><pre>{}</pre></dd>\
                 </dl></li>",
                escape(&exchange.request),
                escape(&exchange.response),
            );
        }
        page.push_str("</ol>\n");
    }
    page.push_str("</article>\n");
}

/// What a case changed on the terminal, in one line.
fn changed(result: &CaseResult) -> String {
    if result.changes.is_empty() {
        match result.verdict {
            Verdict::Skipped | Verdict::NotRun => "nothing (not run)".to_owned(),
            _ => "nothing (reads only)".to_owned(),
        }
    } else {
        format!(
            "{} — removed / restored by the clean-up",
            result.changes.join("; ")
        )
    }
}

/// The legend of verdicts and results, as a definition list.
fn legend() -> String {
    let mut out = String::from("<dl class=\"legend\">\n");
    for (term, meaning) in LEGEND {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(term), escape(meaning));
    }
    out.push_str("</dl>\n<p class=\"legend\">References name documents of the acs repository (<code>docs/device-api.md</code>: the terminal API as the suite and simulator understand it; <code>docs/domain.md</code>: the core's model). The suite touches only objects it created (ids 990,000,000–1,009,999,999, recorded in its restore journal) and restores the configuration it changed.</p>\n");
    out
}

/// The verdict as a coloured label that still reads in black and white.
fn badge(verdict: Verdict) -> String {
    format!(
        "<span class=\"verdict {}\">{}</span>",
        verdict_class(verdict),
        verdict_label(verdict)
    )
}

fn verdict_class(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Skipped => "skipped",
        Verdict::NotRun => "not-run",
        Verdict::Error => "error",
    }
}

fn layer_name(layer: Layer) -> &'static str {
    match layer {
        Layer::Protocol => "protocol",
        Layer::Workflow => "workflow",
    }
}

/// The fragment id of a case's details.
fn anchor(id: &str) -> String {
    escape(&format!("case-{id}"))
}

/// Escapes `value` for element content and double- or single-quoted attributes. Control
/// characters other than tab and line breaks are shown the way Rust writes them, so a
/// stray byte in a device's answer is visible rather than silently dropped.
fn escape(value: &str) -> String {
    // Secrets are masked before escaping hides their quotes from the redaction.
    let value = crate::redact::redact(value);
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            '\t' | '\n' | '\r' => escaped.push(c),
            c if c.is_control() => {
                let _ = write!(escaped, "\\u{{{:x}}}", u32::from(c));
            }
            c => escaped.push(c),
        }
    }
    escaped
}

const STYLE: &str = r#"body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1b1f24; background: #fff; max-width: 62rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .4rem; }
h2 { font-size: 1.25rem; border-bottom: 2px solid #1b1f24; padding-bottom: .15rem; margin: 2rem 0 .6rem; }
h3 { font-size: 1.05rem; margin: 0 0 .5rem; }
h4 { font-size: .95rem; margin: .8rem 0 .3rem; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #b8bec6; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #eef1f4; }
.identity th { width: 12rem; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.overall { font-size: 1.1rem; margin: .4rem 0 .8rem; }
.legend { font-size: .9rem; color: #444c56; }
.verdict { display: inline-block; min-width: 5.2em; padding: .05rem .4rem; border: 1px solid #1b1f24; border-radius: 3px; font-weight: 700; text-align: center; color: #fff; }
.verdict.pass { background: #1a7f37; }
.verdict.fail { background: #cf222e; }
.verdict.skipped { background: #6e7781; }
.verdict.not-run { background: #9a6700; }
.verdict.error { background: #8250df; }
.case { border: 1px solid #b8bec6; border-left: 6px solid #6e7781; padding: .6rem .8rem; margin: .8rem 0; break-inside: avoid; }
.case.pass { border-left-color: #1a7f37; }
.case.fail { border-left-color: #cf222e; }
.case.not-run { border-left-color: #9a6700; }
.case.error { border-left-color: #8250df; }
dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: .2rem 1rem; margin: 0; }
dt { font-weight: 600; }
dd { margin: 0; }
pre { margin: 0; padding: .3rem .5rem; white-space: pre-wrap; overflow-wrap: anywhere; font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f6f8fa; border: 1px solid #d8dee4; }
.evidence { padding-left: 1.5rem; margin: 0; }
.evidence li { margin-bottom: .5rem; }
.signoff { break-inside: avoid; }
.signoff th { width: 12rem; }
.signoff td { height: 2.4rem; }
footer { margin-top: 2rem; font-size: .85rem; color: #444c56; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  .verdict { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
  h2, h3, h4 { break-after: avoid; }
  a { color: inherit; text-decoration: none; }
}
"#;
