//! The catalogue: every case with its stable id, title, reference, needs, and the fault
//! that breaks exactly the rule it checks (the suite's own tests run each case against a
//! simulator with that fault and expect a failure, so no case can pass vacuously).

use serde_json::Value as Json;

use crate::cases;
use crate::context::{CaseOutcome, Ctx};
use crate::operator::BoxFuture;
use crate::outcome::{Capability, CaseInfo, Layer};

/// A fault injected into a simulator through `/_sim/faults`: the next `count` calls of
/// `command` answer `status` with `body` instead of running.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// The command (without `.fcgi`).
    pub command: &'static str,
    /// Status to answer.
    pub status: u16,
    /// Body to answer.
    pub body: Json,
    /// How many calls.
    pub count: u32,
}

/// How a case runs.
pub type Runner = fn(Ctx) -> BoxFuture<'static, CaseOutcome>;

/// One case.
#[derive(Debug, Clone)]
pub struct Case {
    /// What it is.
    pub info: CaseInfo,
    /// How it runs.
    pub run: Runner,
    /// The fault that breaks the rule it checks (for the suite's self-test).
    pub breaking_fault: Fault,
}

/// Declares a case.
#[allow(clippy::too_many_arguments)]
pub(crate) fn case(
    id: &'static str,
    title: &'static str,
    reference: &'static str,
    layer: Layer,
    needs: &[Capability],
    physical: bool,
    changes_device: bool,
    run: Runner,
    breaking_fault: Fault,
) -> Case {
    Case {
        info: CaseInfo {
            id,
            title,
            reference,
            layer,
            needs: needs.to_vec(),
            physical,
            changes_device,
        },
        run,
        breaking_fault,
    }
}

/// A fault answering `status` with `body` to the next call of `command`.
pub(crate) fn fault(command: &'static str, status: u16, body: Json) -> Fault {
    Fault {
        command,
        status,
        body,
        count: 1,
    }
}

/// Every case, in order.
pub fn catalogue() -> Vec<Case> {
    let mut all = Vec::new();
    all.extend(cases::session::cases());
    all.extend(cases::errors::cases());
    all.extend(cases::objects::cases());
    all.extend(cases::images::cases());
    all.extend(cases::config::cases());
    all.extend(cases::enroll::cases());
    all.extend(cases::logs::cases());
    all.extend(cases::workflow::cases());
    all
}

/// Selects cases: `only` (if not empty) keeps ids starting with one of its prefixes,
/// `skip` drops ids starting with one of its prefixes.
pub fn select(cases: Vec<Case>, only: &[String], skip: &[String]) -> Vec<Case> {
    cases
        .into_iter()
        .filter(|c| only.is_empty() || only.iter().any(|p| c.info.id.starts_with(p.as_str())))
        .filter(|c| !skip.iter().any(|p| c.info.id.starts_with(p.as_str())))
        .collect()
}
