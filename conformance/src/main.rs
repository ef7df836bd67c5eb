//! `acs-conformance`: runs the conformance catalogue and reports per case.
//!
//! - `acs-conformance` – against an in-process simulator (no set-up);
//! - `acs-conformance --fleet 20` – against 20 simulated terminals;
//! - `acs-conformance --target http://10.0.0.5 --login admin --password … --callback-addr
//!   10.0.0.2:8701` – against a real terminal, prompting for the physical steps; the
//!   configuration is saved to a restore journal first, so that a killed run is undone by
//!   the next one (or by `--restore-only`);
//! - `acs-conformance list` – the catalogue.
//!
//! Exit code 0 PASSED: every selected case that applies to the terminal ran and passed,
//! and the clean-up was complete; 1 FAILED: some case failed; 2 NOT CARRIED OUT: the run
//! could not be carried out (or was refused before it changed anything); 3 INCOMPLETE:
//! nothing failed, but some case did not run, the run was interrupted, or the clean-up
//! left something behind.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use acs_conformance::catalogue::{catalogue, select};
use acs_conformance::core_rig::CallbackConfig;
use acs_conformance::custody::hold::TakeOptions;
use acs_conformance::operator::{HumanOperator, Operator, Unattended};
use acs_conformance::outcome::{CaseInfo, CaseResult, Cleanup, Run};
use acs_conformance::redact::{Redacting, redact};
use acs_conformance::report::console::Progress;
use acs_conformance::restore::RestoreJournal;
use acs_conformance::runner::{self, RunPolicy, Watcher, run};
use acs_conformance::{custody, record, report, target};
use acs_simulator::Model;
use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "acs-conformance",
    version,
    about = "Conformance suite for access-control terminals"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the catalogue.
    List,
    /// Replay a recorded run (`--record DIR`) against the simulator and list where the
    /// simulator answers differently.
    Replay {
        /// The recording directory.
        dir: PathBuf,
        /// Model to simulate.
        #[arg(long, default_value = "idface")]
        profile: String,
        /// Write the simulator's journal of the replay (requests and the callbacks it
        /// sent, all to the replay's own sink) to this file.
        #[arg(long)]
        journal: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// A real terminal's URL (default: an in-process simulator).
    #[arg(long)]
    target: Option<String>,
    /// The terminal's login.
    #[arg(long, default_value = "admin")]
    login: String,
    /// The terminal's password.
    #[arg(long, default_value = "admin", env = "ACS_TERMINAL_PASSWORD")]
    password: String,
    /// Address the core's receiver listens on for the terminal (workflow cases).
    #[arg(long)]
    callback_addr: Option<SocketAddr>,
    /// HOST:PORT the terminal uses to reach the callback address (behind NAT).
    #[arg(long)]
    advertise: Option<String>,
    /// Run against this many simulated terminals.
    #[arg(long)]
    fleet: Option<usize>,
    /// Model (capabilities) of the terminal: idface, idface-max, idaccess, idflex. A real
    /// terminal's own model (from system_information) is used when absent; a profile that
    /// contradicts it is refused unless --force-profile.
    #[arg(long)]
    profile: Option<String>,
    /// Run with --profile even though the terminal reports another model.
    #[arg(long)]
    force_profile: bool,
    /// Take over (remove, then run) objects an earlier run of the suite left on the
    /// terminal; they are recognised by the suite's marker. Objects of anyone else are
    /// never taken over.
    #[arg(long)]
    reclaim_reserved: bool,
    /// Seconds a case waits for the terminal to show the evidence of a physical step the
    /// operator confirmed (an access-log row newer than the prompt).
    #[arg(long, default_value_t = 15)]
    evidence_timeout: u64,
    /// Run only cases whose id starts with one of these (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// Skip cases whose id starts with one of these (repeatable).
    #[arg(long)]
    skip: Vec<String>,
    /// Nobody performs physical steps: such cases are "not run".
    #[arg(long)]
    unattended: bool,
    /// Seconds to wait for the operator's answer to a prompt.
    #[arg(long, default_value_t = 60)]
    operator_timeout: u64,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the JUnit XML report here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write the HTML sign-off report here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Keep every exchange of the cases with the terminal in DIR/exchanges.ndjson.
    #[arg(long)]
    record: Option<PathBuf>,
    /// On a real terminal, also run cases that change its configuration (restored
    /// afterwards).
    #[arg(long)]
    allow_destructive: bool,
    /// List what the run would create and change on the terminal (rehearsed on an
    /// in-process simulator of its model), and what the terminal holds in the suite's way;
    /// send nothing but reads to the terminal.
    #[arg(long)]
    dry_run: bool,
    /// On a real terminal: where the configuration is saved before the run changes it, so
    /// that the next run can restore it if this one is killed (default:
    /// `acs-conformance-restore-<host_port>.json` in the working directory).
    #[arg(long)]
    restore_journal: Option<PathBuf>,
    /// Only apply the restore journal an interrupted run left behind, then exit.
    #[arg(long)]
    restore_only: bool,
}

struct Console(Progress<std::io::Stdout>);

impl Watcher for Console {
    fn started(&mut self, info: &CaseInfo) {
        self.0.case_started(info);
    }
    fn finished(&mut self, result: &CaseResult) {
        self.0.case_finished(result);
    }
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map_or_else(|_| String::new(), |t| t.to_string())
}

fn list() {
    for case in catalogue() {
        let needs: Vec<&str> = case.info.needs.iter().map(|c| c.name()).collect();
        println!(
            "{:<14} {:<9} {}{}  [{}]{}",
            case.info.id,
            format!("{:?}", case.info.layer).to_lowercase(),
            case.info.title,
            if case.info.physical {
                " (physical step)"
            } else {
                ""
            },
            case.info.reference,
            if needs.is_empty() {
                String::new()
            } else {
                format!(" needs {}", needs.join(", "))
            },
        );
    }
}

fn write_reports(args: &RunArgs, run: &Run) -> anyhow::Result<()> {
    let outputs = [
        (&args.json, report::json::write as fn(&Run) -> String),
        (&args.junit, report::junit::write),
        (&args.html, report::html::write),
    ];
    for (path, render) in outputs {
        if let Some(path) = path {
            std::fs::write(path, redact(&render(run)))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}

async fn replay(
    dir: &std::path::Path,
    profile: &str,
    journal: Option<&std::path::Path>,
) -> anyhow::Result<i32> {
    let model: Model = profile.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let exchanges = record::read(dir).map_err(|e| anyhow::anyhow!(e))?;
    let (sim, _) = target::simulator(model)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let sink = record::Sink::start()
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let differences = record::replay(&exchanges, &sim.base_url(), "admin", "admin", &sink)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    for d in &differences {
        println!("DIFF  {d}");
    }
    println!(
        "{} exchanges replayed, {} answered differently by the simulator; callbacks went to the replay's own sink at {} ({} received)",
        exchanges.len(),
        differences.len(),
        sink.address(),
        sink.received()
    );
    if let Some(path) = journal {
        let text = reqwest::get(format!("{}/_sim/journal", sim.base_url()))
            .await?
            .text()
            .await?;
        std::fs::write(path, redact(&text))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(i32::from(!differences.is_empty()))
}

fn parse_model(text: &str) -> anyhow::Result<Model> {
    text.parse().map_err(|e| anyhow::anyhow!("{e}"))
}

/// Becomes true on Ctrl-C or SIGTERM.
fn stop_signal() -> tokio::sync::watch::Receiver<bool> {
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            r = tokio::signal::ctrl_c() => if r.is_err() { return },
            () = terminate => {}
        }
        eprintln!(
            "interrupted: stopping the current case, then cleaning up and writing the reports"
        );
        let _ = stop_tx.send(true);
    });
    stop
}

/// Joins the runs of a fleet into one: every case, interrupted if any was, and a clean-up
/// that is complete only if every terminal's was.
fn combine(runs: Vec<Run>) -> Option<Run> {
    let mut iter = runs.into_iter();
    let mut combined = iter.next()?;
    let mut cleanups = vec![(
        combined.target.target.clone(),
        std::mem::take(&mut combined.cleanup),
    )];
    for run in iter {
        combined.interrupted |= run.interrupted;
        combined.results.extend(run.results);
        cleanups.push((run.target.target, run.cleanup));
    }
    let single = cleanups.len() == 1;
    let (mut left, mut why, mut removed) = (Vec::new(), Vec::new(), 0);
    for (terminal, cleanup) in cleanups {
        match cleanup {
            Cleanup::Incomplete { left: l, why: w } => {
                left.extend(l.into_iter().map(|x| {
                    if single {
                        x
                    } else {
                        format!("{terminal}: {x}")
                    }
                }));
                why.push(w);
            }
            Cleanup::Complete { removed: n } => removed += n,
            Cleanup::NotAttempted => {}
        }
    }
    combined.cleanup = if why.is_empty() {
        Cleanup::Complete { removed }
    } else {
        Cleanup::Incomplete {
            left,
            why: why.join("; "),
        }
    };
    Some(combined)
}

async fn execute(args: &RunArgs) -> anyhow::Result<i32> {
    let requested = args.profile.as_deref().map(parse_model).transpose()?;
    let cases = select(catalogue(), &args.only, &args.skip);
    anyhow::ensure!(!cases.is_empty(), "no case matches --only / --skip");
    anyhow::ensure!(
        !args.restore_only || args.target.is_some(),
        "--restore-only needs --target"
    );
    let operator = || -> Arc<dyn Operator> {
        if args.unattended {
            Arc::new(Unattended)
        } else {
            Arc::new(HumanOperator::new(Duration::from_secs(
                args.operator_timeout,
            )))
        }
    };
    let advertise = match &args.advertise {
        Some(text) => Some(
            text.rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
                .with_context(|| format!("--advertise must be HOST:PORT, got '{text}'"))?,
        ),
        None => None,
    };
    let real = match &args.target {
        Some(url) => {
            let prepared = target::prepare(
                target::Endpoint {
                    label: url,
                    base: url,
                    login: &args.login,
                    password: &args.password,
                },
                operator(),
                requested,
                args.force_profile,
                args.callback_addr
                    .map(|bind| CallbackConfig { bind, advertise }),
            )
            .await;
            match prepared {
                Ok(p) => Some((url, p)),
                // A dry run can be planned away from the terminal.
                Err(e) if args.dry_run => {
                    println!("terminal: not read ({e}); what a run would do follows");
                    None
                }
                Err(e) => return Err(anyhow::anyhow!(e)),
            }
        }
        None => None,
    };
    let model = match &real {
        Some((_, p)) => parse_model(&p.identity.profile)?,
        None => requested.unwrap_or(Model::IdFace),
    };
    if args.dry_run {
        if let Some((_, prepared)) = &real {
            let found = custody::survey::survey(prepared.ctx.driver())
                .await
                .map_err(|e| anyhow::anyhow!(redact(&e)))?;
            println!(
                "terminal: {} ({}), profile {}",
                prepared.identity.target, prepared.identity.model, prepared.identity.profile
            );
            match &found.lock {
                Some(lock) if lock.live(custody::lock::now()) => {
                    println!("in use: {}", custody::lock::in_use(lock))
                }
                _ => {}
            }
            if !found.foreign.is_empty() {
                println!(
                    "the run would refuse to start: objects of someone else where the suite would write:"
                );
                for line in &found.foreign {
                    println!("  {line}");
                }
            }
            if !found.leftovers.is_empty() {
                println!(
                    "left by an earlier run of the suite (removed only with --reclaim-reserved):"
                );
                for line in found.leftover_lines() {
                    println!("  {line}");
                }
            }
            if found.foreign.is_empty() && found.leftovers.is_empty() {
                println!("the reserved range and the suite's values are free");
            }
        }
        for line in runner::dry_run(&cases, model)
            .await
            .map_err(|e| anyhow::anyhow!(e))?
        {
            println!("{line}");
        }
        return Ok(0);
    }
    let policy = RunPolicy {
        allow_changes: args.target.is_none() || args.allow_destructive,
        stop: stop_signal(),
    };
    let mut console = Console(Progress::new(
        std::io::stdout(),
        std::io::stdout().is_terminal(),
    ));
    let started_at = now();
    let recorder = match &args.record {
        Some(dir) => Some(record::Recorder::create(dir).map_err(|e| anyhow::anyhow!(e))?),
        None => None,
    };
    let evidence = Duration::from_secs(args.evidence_timeout);
    let mut runs = Vec::new();
    match (real, args.fleet) {
        (Some((url, prepared)), _) => {
            let journal = RestoreJournal::new(
                args.restore_journal
                    .clone()
                    .unwrap_or_else(|| RestoreJournal::default_path(url)),
                url,
            );
            if args.restore_only {
                match journal.recover(prepared.ctx.driver()).await? {
                    Some(done) => println!(
                        "restored the terminal as an interrupted run left it ({}): removed {}",
                        journal.path().display(),
                        if done.removed.is_empty() {
                            "nothing".to_owned()
                        } else {
                            done.removed.join("; ")
                        }
                    ),
                    None => println!(
                        "no restore journal at {}: nothing to restore",
                        journal.path().display()
                    ),
                }
                return Ok(0);
            }
            let prepared = target::Prepared {
                ctx: prepared.ctx.with_evidence_wait(evidence),
                ..prepared
            };
            let options = TakeOptions {
                journal,
                reclaim: args.reclaim_reserved,
                recorder,
            };
            runs.push(
                run(
                    &cases,
                    &prepared,
                    started_at,
                    &mut console,
                    &policy,
                    options,
                )
                .await?,
            );
        }
        (None, Some(count)) => {
            let (_fleet, prepared) = target::fleet(count, model)
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            for p in prepared {
                println!("== {} ({})", p.identity.target, p.identity.serial);
                let options = TakeOptions {
                    journal: RestoreJournal::in_memory(p.ctx.base_url()),
                    reclaim: false,
                    recorder: None,
                };
                runs.push(
                    run(
                        &cases,
                        &p,
                        started_at.clone(),
                        &mut console,
                        &policy,
                        options,
                    )
                    .await?,
                );
            }
        }
        (None, None) => {
            let (_sim, prepared) = target::simulator(model)
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            let options = TakeOptions {
                journal: RestoreJournal::in_memory(prepared.ctx.base_url()),
                reclaim: false,
                recorder,
            };
            runs.push(
                run(
                    &cases,
                    &prepared,
                    started_at,
                    &mut console,
                    &policy,
                    options,
                )
                .await?,
            );
        }
    }
    let mut combined = combine(runs).context("no terminal was run against")?;
    if let Some(count) = args.fleet {
        combined.target.target = format!("fleet of {count}");
    }
    console.0.finished(&combined);
    write_reports(args, &combined)?;
    Ok(combined.overall().exit_code())
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(|| Redacting::new(std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let code = match cli.command {
        Some(Command::List) => {
            list();
            0
        }
        Some(Command::Replay {
            dir,
            profile,
            journal,
        }) => match replay(&dir, &profile, journal.as_deref()).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("acs-conformance: {}", redact(&format!("{e:#}")));
                2
            }
        },
        None => match execute(&cli.run).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("acs-conformance: {}", redact(&format!("{e:#}")));
                2
            }
        },
    };
    std::process::exit(code);
}
