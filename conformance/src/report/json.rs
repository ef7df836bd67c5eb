//! The JSON report (`--json FILE`): one pretty-printed document per run, for tools and
//! for archiving next to the HTML report.
//!
//! The document's shape is a contract with whoever reads it, so its fields are spelled
//! out here in private structs rather than derived from the in-memory types: renaming a
//! field in [`outcome`](crate::outcome) must not silently change the file. (Verdicts,
//! layers and capabilities use their serde spellings, `not_run`, `protocol`, `face` …,
//! which are also what the CLI accepts.) Field order is the declaration order below;
//! every field is always present (`null` when absent), so consumers never have to guess.
//! Bump [`FORMAT_VERSION`] on any incompatible change.
//!
//! ```json
//! {
//!   "format": "acs-conformance-report",
//!   "format_version": 1,
//!   "run": { "suite_version": "0.2.0", "started_at": "…",
//!            "target": { "target": "…", "model": "…", "profile": "idface", … },
//!            "interrupted": false,
//!            "cleanup": { "status": "complete", "removed": 12 } },
//!   "summary": { "total": 5, "passed": 1, "failed": 1, "skipped": 1, "not_run": 1,
//!                "errors": 1, "result": "NOT_CARRIED_OUT", "exit_code": 2 },
//!   "cases": [ { "id": "SESSION-001", "title": "…", "reference": "…",
//!                "layer": "protocol", "needs": ["card"], "physical": false,
//!                "changes_device": false, "verdict": "fail",
//!                "reason": { "kind": "no_operator", "detail": null },
//!                "expected": "…", "actual": "…", "changes": ["created users 990000001"],
//!                "evidence": [{ "request": "…", "response": "…" }],
//!                "duration_ms": 12 } ]
//! }
//! ```

use serde::Serialize;

use crate::outcome::{Capability, CaseResult, Cleanup, Layer, Reason, Run, TargetIdentity};
use crate::verdict::{Overall, Verdict};

/// Value of the document's `format_version` field.
pub const FORMAT_VERSION: u32 = 2;

/// Renders `run` as a pretty-printed JSON document, ending in a newline.
pub fn write(run: &Run) -> String {
    let summary = run.summary();
    let document = Document {
        format: "acs-conformance-report",
        format_version: FORMAT_VERSION,
        run: RunDoc {
            suite_version: &run.suite_version,
            started_at: &run.started_at,
            target: TargetDoc::from(&run.target),
            interrupted: run.interrupted,
            cleanup: &run.cleanup,
        },
        summary: SummaryDoc {
            total: summary.total(),
            passed: summary.passed,
            failed: summary.failed,
            skipped: summary.skipped,
            not_run: summary.not_run,
            errors: summary.errors,
            result: run.overall(),
            exit_code: run.overall().exit_code(),
        },
        cases: run.results.iter().map(CaseDoc::from).collect(),
    };
    let mut text = serde_json::to_string_pretty(&document)
        .expect("the document has only string keys and plain values, so it always serializes");
    text.push('\n');
    crate::redact::redact(&text)
}

#[derive(Serialize)]
struct Document<'a> {
    format: &'static str,
    format_version: u32,
    run: RunDoc<'a>,
    summary: SummaryDoc,
    cases: Vec<CaseDoc<'a>>,
}

#[derive(Serialize)]
struct RunDoc<'a> {
    suite_version: &'a str,
    started_at: &'a str,
    target: TargetDoc<'a>,
    interrupted: bool,
    cleanup: &'a Cleanup,
}

#[derive(Serialize)]
struct TargetDoc<'a> {
    target: &'a str,
    model: &'a str,
    profile: &'a str,
    firmware: &'a str,
    serial: &'a str,
    device_id: &'a str,
}

impl<'a> From<&'a TargetIdentity> for TargetDoc<'a> {
    fn from(identity: &'a TargetIdentity) -> Self {
        TargetDoc {
            target: &identity.target,
            model: &identity.model,
            profile: &identity.profile,
            firmware: &identity.firmware,
            serial: &identity.serial,
            device_id: &identity.device_id,
        }
    }
}

#[derive(Serialize)]
struct ExchangeDoc<'a> {
    request: &'a str,
    response: &'a str,
}

#[derive(Serialize)]
struct SummaryDoc {
    total: usize,
    passed: usize,
    failed: usize,
    skipped: usize,
    not_run: usize,
    errors: usize,
    result: Overall,
    exit_code: i32,
}

#[derive(Serialize)]
struct CaseDoc<'a> {
    id: &'a str,
    title: &'a str,
    reference: &'a str,
    layer: Layer,
    needs: &'a [Capability],
    physical: bool,
    changes_device: bool,
    verdict: Verdict,
    reason: Option<&'a Reason>,
    expected: Option<&'a str>,
    actual: Option<&'a str>,
    changes: &'a [String],
    evidence: Vec<ExchangeDoc<'a>>,
    duration_ms: u64,
}

impl<'a> From<&'a CaseResult> for CaseDoc<'a> {
    fn from(result: &'a CaseResult) -> Self {
        CaseDoc {
            id: result.case.id,
            title: result.case.title,
            reference: result.case.reference,
            layer: result.case.layer,
            needs: &result.case.needs,
            physical: result.case.physical,
            changes_device: result.case.changes_device,
            verdict: result.verdict,
            reason: result.reason.as_ref(),
            expected: result.expected.as_deref(),
            actual: result.actual.as_deref(),
            changes: &result.changes,
            evidence: result
                .evidence
                .iter()
                .map(|exchange| ExchangeDoc {
                    request: &exchange.request,
                    response: &exchange.response,
                })
                .collect(),
            duration_ms: super::millis(result.duration),
        }
    }
}
