//! Running a selection of the catalogue against one terminal: capability checks, one case
//! after the other with a time limit, the verdict of each, and afterwards the clean-up of
//! everything in the reserved id range and the restoration of the configuration the run
//! changed (the monitor and online settings the workflow layer points at its core).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::catalogue::Case;
use crate::context::{Ctx, Problem, RESERVED_FROM, RESERVED_TO};
use crate::outcome::{Capability, CaseInfo, CaseResult, Run, TargetIdentity};
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

/// Runs one case.
pub async fn run_case(case: &Case, ctx: &Ctx, capabilities: &BTreeSet<Capability>) -> CaseResult {
    let started = Instant::now();
    let missing: Vec<&str> = case
        .info
        .needs
        .iter()
        .filter(|c| !capabilities.contains(c))
        .map(|c| c.name())
        .collect();
    let result =
        |verdict, expected: Option<String>, actual: Option<String>, ctx: Option<&Ctx>| CaseResult {
            case: case.info.clone(),
            verdict,
            expected,
            actual,
            evidence: ctx.map(Ctx::evidence).unwrap_or_default(),
            duration: started.elapsed(),
        };
    if !missing.is_empty() {
        return result(
            Verdict::Skipped,
            Some(format!("needs {}", missing.join(", "))),
            None,
            None,
        );
    }
    let ctx = match ctx.for_case() {
        Ok(c) => c,
        Err(e) => return result(Verdict::Error, Some(e), None, None),
    };
    match tokio::time::timeout(CASE_TIMEOUT, (case.run)(ctx.clone())).await {
        Err(_) => result(
            Verdict::Error,
            Some(format!(
                "the case did not finish within {} s",
                CASE_TIMEOUT.as_secs()
            )),
            None,
            Some(&ctx),
        ),
        Ok(Ok(())) => result(Verdict::Pass, None, None, Some(&ctx)),
        Ok(Err(Problem::Fail { expected, actual })) => {
            result(Verdict::Fail, Some(expected), Some(actual), Some(&ctx))
        }
        Ok(Err(Problem::Error(e))) => result(Verdict::Error, Some(e), None, Some(&ctx)),
        Ok(Err(Problem::NotRun(why))) => result(Verdict::NotRun, Some(why), None, Some(&ctx)),
    }
}

/// The configuration a run may change, read before it starts.
pub(crate) async fn saved_configuration(ctx: &Ctx) -> Option<Json> {
    ctx.driver()
        .get_configuration(json!({
            "monitor": ["hostname", "port", "path"],
            "general": ["online", "local_identification"],
            "online_client": ["server_id"],
        }))
        .await
        .ok()
}

/// Removes everything in the reserved id range and restores `config`.
pub async fn clean_up(ctx: &Ctx, config: Option<&Json>) -> Result<(), String> {
    let d = ctx.driver();
    let from = |field: &str| {
        json!([{"field": field, "operator": ">=", "value": RESERVED_FROM},
               {"field": field, "operator": "<", "value": RESERVED_TO}])
    };
    if let Ok(images) = d.list_user_images().await {
        for (user, _) in images
            .into_iter()
            .filter(|(u, _)| (RESERVED_FROM..RESERVED_TO).contains(u))
        {
            let _ = d.destroy_user_image(user).await;
        }
    }
    for (table, field) in [
        ("user_access_rules", "user_id"),
        ("user_access_rules", "access_rule_id"),
        ("access_rule_time_zones", "access_rule_id"),
        ("cards", "user_id"),
        ("pins", "user_id"),
        ("qrcodes", "user_id"),
        ("templates", "user_id"),
        ("users", "id"),
        ("time_spans", "time_zone_id"),
        ("access_rules", "id"),
        ("time_zones", "id"),
        ("holidays", "id"),
        ("devices", "id"),
    ] {
        // A table the model lacks is not an error of the clean-up.
        if let Err(e) = d.destroy_objects(table, from(field)).await
            && e.is_retryable()
        {
            return Err(e.to_string());
        }
    }
    if let Some(config) = config
        && config.is_object()
    {
        d.set_configuration(config.clone())
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
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

fn not_run(case: &Case, why: &str) -> CaseResult {
    CaseResult {
        case: case.info.clone(),
        verdict: Verdict::NotRun,
        expected: Some(why.to_owned()),
        actual: None,
        evidence: Vec::new(),
        duration: Duration::ZERO,
    }
}

/// Runs `cases` against the terminal of `ctx`, then cleans up (also after a stop).
pub async fn run(
    cases: &[Case],
    ctx: &Ctx,
    capabilities: &BTreeSet<Capability>,
    target: TargetIdentity,
    started_at: String,
    watcher: &mut dyn Watcher,
    policy: &RunPolicy,
) -> Run {
    let config = saved_configuration(ctx).await;
    let mut stop = policy.stop.clone();
    let mut results = Vec::with_capacity(cases.len());
    for case in cases {
        if *stop.borrow() {
            results.push(not_run(case, "the run was interrupted"));
            continue;
        }
        if case.info.changes_device && !policy.allow_changes {
            let result = CaseResult {
                verdict: Verdict::Skipped,
                expected: Some(
                    "changes the terminal's configuration (restored afterwards); pass --allow-destructive".into(),
                ),
                ..not_run(case, "")
            };
            watcher.finished(&result);
            results.push(result);
            continue;
        }
        watcher.started(&case.info);
        let result = tokio::select! {
            result = run_case(case, ctx, capabilities) => result,
            _ = stop.wait_for(|stopped| *stopped) => not_run(case, "the run was interrupted"),
        };
        watcher.finished(&result);
        results.push(result);
    }
    if let Err(e) = clean_up(ctx, config.as_ref()).await {
        tracing::warn!(error = %e, "clean-up incomplete");
    }
    Run {
        target,
        started_at,
        results,
    }
}

/// What a run of `cases` would change on a terminal, for `--dry-run`.
pub fn dry_run(cases: &[Case]) -> Vec<String> {
    let mut lines = vec![format!(
        "objects: only ids {RESERVED_FROM}..{RESERVED_TO} are created, and removed at the end from users, cards, pins, qrcodes, templates, user_access_rules, access_rules, access_rule_time_zones, time_zones, time_spans, holidays, devices; face photos of those users"
    )];
    lines.push(
        "configuration: monitor (hostname, port, path), general (online, local_identification) and online_client.server_id are read first and restored at the end".into(),
    );
    for case in cases {
        let mut what = Vec::new();
        if case.info.changes_device {
            what.push("changes configuration (restored; needs --allow-destructive)");
        }
        if case.info.physical {
            what.push("needs a physical step");
        }
        if case.info.layer == crate::outcome::Layer::Workflow {
            what.push("the core pushes people to the terminal and points its monitor at the callback address");
        }
        lines.push(format!(
            "{:<14} {}{}",
            case.info.id,
            case.info.title,
            if what.is_empty() {
                String::new()
            } else {
                format!(" — {}", what.join("; "))
            }
        ));
    }
    lines
}

/// What a model can do (for `--profile` and for the simulator).
pub fn capabilities_of(model: &str) -> BTreeSet<Capability> {
    use Capability::*;
    match model {
        "idaccess" | "idflex" => [Fingerprint, Card, Online, Relay].into_iter().collect(),
        _ => [Face, Card, Qr, Online, Relay].into_iter().collect(),
    }
}
