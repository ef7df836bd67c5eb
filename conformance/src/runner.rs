//! Running a selection of the catalogue against one terminal held for the run: capability
//! checks, one case after the other with a time limit, the verdict of each with what it
//! changed, and afterwards the release of the terminal (everything the run created
//! removed, the configuration restored – also after Ctrl-C).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::catalogue::Case;
use crate::context::{Ctx, Problem};
use crate::custody::hold::{Hold, Refusal, TakeOptions};
use crate::outcome::{Capability, CaseInfo, CaseResult, Reason, Run, SUITE_VERSION};
use crate::redact::redact;
use crate::target::Prepared;
use crate::verdict::Verdict;

/// Longest a case may take.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(90);

/// What the runner tells whoever watches it.
pub trait Watcher {
    /// A case starts.
    fn started(&mut self, info: &CaseInfo);
    /// A case ended.
    fn finished(&mut self, result: &CaseResult);
}

/// A watcher that ignores everything.
#[derive(Debug, Default)]
pub struct Quiet;

impl Watcher for Quiet {
    fn started(&mut self, _: &CaseInfo) {}
    fn finished(&mut self, _: &CaseResult) {}
}

fn result(
    case: &Case,
    verdict: Verdict,
    reason: Option<Reason>,
    expected: Option<String>,
    actual: Option<String>,
    evidence: Vec<crate::outcome::Exchange>,
    duration: Duration,
) -> CaseResult {
    let clean = |text: Option<String>| text.map(|t| redact(&t));
    CaseResult {
        case: case.info.clone(),
        verdict,
        expected: clean(expected.or_else(|| reason.as_ref().map(Reason::explain))),
        reason,
        changes: Vec::new(),
        actual: clean(actual),
        evidence: evidence
            .into_iter()
            .map(|x| crate::outcome::Exchange {
                request: redact(&x.request),
                response: redact(&x.response),
            })
            .collect(),
        duration,
    }
}

/// A case that did not get to run, for `reason`.
pub fn not_run(case: &Case, reason: Reason) -> CaseResult {
    result(
        case,
        reason.verdict(),
        Some(reason),
        None,
        None,
        Vec::new(),
        Duration::ZERO,
    )
}

/// Runs one case.
pub async fn run_case(case: &Case, ctx: &Ctx, capabilities: &BTreeSet<Capability>) -> CaseResult {
    let started = Instant::now();
    let missing: Vec<String> = case
        .info
        .needs
        .iter()
        .filter(|c| !capabilities.contains(c))
        .map(|c| c.name().to_owned())
        .collect();
    if !missing.is_empty() {
        return not_run(case, Reason::Capability(missing));
    }
    let ctx = match ctx.for_case() {
        Ok(c) => c,
        Err(e) => {
            return result(
                case,
                Verdict::Error,
                None,
                Some(e),
                None,
                Vec::new(),
                started.elapsed(),
            );
        }
    };
    let done = |verdict, reason, expected, actual| {
        result(
            case,
            verdict,
            reason,
            expected,
            actual,
            ctx.evidence(),
            started.elapsed(),
        )
    };
    match tokio::time::timeout(CASE_TIMEOUT, (case.run)(ctx.clone())).await {
        Err(_) => done(
            Verdict::Error,
            None,
            Some(format!(
                "the case did not finish within {} s",
                CASE_TIMEOUT.as_secs()
            )),
            None,
        ),
        Ok(Ok(())) => done(Verdict::Pass, None, None, None),
        Ok(Err(Problem::Fail { expected, actual })) => {
            done(Verdict::Fail, None, Some(expected), Some(actual))
        }
        Ok(Err(Problem::Error(e))) => done(Verdict::Error, None, Some(e), None),
        Ok(Err(Problem::NotRun(reason))) => done(reason.verdict(), Some(reason), None, None),
    }
}

/// How a run treats the device and when it stops.
#[derive(Debug, Clone)]
pub struct RunPolicy {
    /// Whether cases that change the device beyond their own objects (its configuration,
    /// restored afterwards) may run; on a real terminal only with `--allow-destructive`.
    pub allow_changes: bool,
    /// Becomes true when the run must stop (Ctrl-C): the remaining cases are not run and
    /// the clean-up still happens.
    pub stop: tokio::sync::watch::Receiver<bool>,
}

impl RunPolicy {
    /// Everything allowed, never stopped (simulated targets, tests).
    pub fn permissive() -> RunPolicy {
        RunPolicy {
            allow_changes: true,
            stop: tokio::sync::watch::channel(false).1,
        }
    }
}

/// Completes when the run must stop; never, when nobody can stop it any more (the sender
/// is gone).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    if stop.wait_for(|stopped| *stopped).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Runs `cases` against the terminal of `ctx` (held by `hold`, whose guard tells what each
/// case changed); answers the results and whether the run was interrupted.
pub async fn run_cases(
    cases: &[Case],
    ctx: &Ctx,
    capabilities: &BTreeSet<Capability>,
    watcher: &mut dyn Watcher,
    policy: &RunPolicy,
    hold: Option<&Hold>,
) -> (Vec<CaseResult>, bool) {
    let mut stop = policy.stop.clone();
    let mut interrupted = false;
    let mut results = Vec::with_capacity(cases.len());
    for case in cases {
        if *stop.borrow() {
            interrupted = true;
            let result = not_run(case, Reason::Interrupted);
            watcher.finished(&result);
            results.push(result);
            continue;
        }
        if case.info.changes_device && !policy.allow_changes {
            let result = not_run(case, Reason::Flag("--allow-destructive (it changes the terminal's configuration, restored afterwards)".into()));
            watcher.finished(&result);
            results.push(result);
            continue;
        }
        if let Some(hold) = hold {
            hold.refresh().await;
        }
        watcher.started(&case.info);
        let mut result = tokio::select! {
            result = run_case(case, ctx, capabilities) => result,
            () = stopped(&mut stop) => {
                interrupted = true;
                not_run(case, Reason::Interrupted)
            }
        };
        if let Some(hold) = hold {
            result.changes = hold.guard().take_changes();
        }
        watcher.finished(&result);
        results.push(result);
    }
    (results, interrupted)
}

/// Holds the terminal of `prepared`, runs `cases` against it, releases it, and answers the
/// run with its clean-up status; `Err` when the run may not start (nothing was changed).
pub async fn run(
    cases: &[Case],
    prepared: &Prepared,
    started_at: String,
    watcher: &mut dyn Watcher,
    policy: &RunPolicy,
    options: TakeOptions,
) -> Result<Run, Refusal> {
    let hold = Hold::take(&prepared.ctx, options).await?;
    for line in &hold.recovered {
        tracing::warn!("{line}");
    }
    let (results, interrupted) = run_cases(
        cases,
        hold.ctx(),
        &prepared.capabilities,
        watcher,
        policy,
        Some(&hold),
    )
    .await;
    let refusals = hold.guard().refusals();
    let mut cleanup = hold.release().await;
    if !refusals.is_empty() {
        tracing::warn!(
            count = refusals.len(),
            "the guard refused requests of the run"
        );
    }
    if let crate::outcome::Cleanup::Incomplete { why, .. } = &mut cleanup {
        *why = redact(why);
    }
    Ok(Run {
        suite_version: SUITE_VERSION.to_owned(),
        target: prepared.identity.clone(),
        started_at,
        results,
        interrupted,
        cleanup,
    })
}

/// What a run of `cases` would create and change on a terminal of `model`, for
/// `--dry-run`: the run is rehearsed on an in-process simulator of that model through the
/// same guard, and what its ledger and each case recorded is listed. Nothing is sent to a
/// real terminal.
pub async fn dry_run(cases: &[Case], model: acs_simulator::Model) -> Result<Vec<String>, String> {
    let (_sim, prepared) = crate::target::simulator(model).await?;
    let mut lines = Vec::new();
    let options = TakeOptions {
        journal: crate::restore::RestoreJournal::in_memory(prepared.ctx.base_url()),
        reclaim: false,
        recorder: None,
    };
    let hold = Hold::take(&prepared.ctx, options)
        .await
        .map_err(|e| e.to_string())?;
    let (results, _) = run_cases(
        cases,
        hold.ctx(),
        &prepared.capabilities,
        &mut Quiet,
        &RunPolicy::permissive(),
        Some(&hold),
    )
    .await;
    let ledger = hold.guard().ledger();
    let cleanup = hold.release().await;
    lines.push(format!(
        "objects the run creates (ids {}..{}; removed at the end by these keys, with their cards, PINs, QR codes, templates, rule links and photos):",
        crate::context::RESERVED_FROM,
        crate::context::RESERVED_TO
    ));
    for line in ledger.lines() {
        lines.push(format!("  {line}"));
    }
    lines.push(
        "configuration: monitor (hostname, port, path), general (online, local_identification) and online_client.server_id are read first and restored at the end".into(),
    );
    lines.push("per case:".into());
    for r in &results {
        let what = if r.changes.is_empty() {
            "reads only".to_owned()
        } else {
            r.changes.join("; ")
        };
        let mut notes = Vec::new();
        if r.case.changes_device {
            notes.push("needs --allow-destructive");
        }
        if r.case.physical {
            notes.push("needs a physical step");
        }
        lines.push(format!(
            "  {:<14} {what}{}",
            r.case.id,
            if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join(", "))
            }
        ));
    }
    if !cleanup.is_complete() {
        lines.push(format!("rehearsal clean-up: {}", cleanup.describe()));
    }
    Ok(lines)
}

/// What a model can do (for `--profile` and for the simulator).
pub fn capabilities_of(model: &str) -> BTreeSet<Capability> {
    use Capability::*;
    match model {
        "idaccess" | "idflex" => [Fingerprint, Card, Online, Relay].into_iter().collect(),
        _ => [Face, Card, Qr, Online, Relay].into_iter().collect(),
    }
}
