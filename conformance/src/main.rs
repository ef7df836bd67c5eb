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
//! Exit code 0: every case that ran passed; 1: some case failed; 2: the run could not be
//! carried out.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use acs_conformance::catalogue::{catalogue, select};
use acs_conformance::core_rig::CallbackConfig;
use acs_conformance::operator::{HumanOperator, Operator, Unattended};
use acs_conformance::outcome::{CaseInfo, CaseResult, Run};
use acs_conformance::report::console::Progress;
use acs_conformance::restore::RestoreJournal;
use acs_conformance::runner::{self, RunPolicy, Watcher, capabilities_of, run};
use acs_conformance::{record, report, target, verdict};
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
    /// Model (capabilities) of the terminal: idface, idface-max, idaccess, idflex.
    #[arg(long, default_value = "idface")]
    profile: String,
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
    /// List what the run would change on the terminal, and change nothing.
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
    if let Some(path) = &args.json {
        std::fs::write(path, report::json::write(run))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit::write(run))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, report::html::write(run))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// With `--record`, routes the cases' traffic through a recording proxy.
async fn recorded(prepared: target::Prepared, args: &RunArgs) -> anyhow::Result<target::Prepared> {
    let Some(dir) = &args.record else {
        return Ok(prepared);
    };
    let proxy = record::start(prepared.ctx.base_url(), dir)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let ctx = prepared
        .ctx
        .through(&proxy)
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok(target::Prepared { ctx, ..prepared })
}

async fn replay(dir: &std::path::Path, profile: &str) -> anyhow::Result<i32> {
    let model: Model = profile.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let exchanges = record::read(dir).map_err(|e| anyhow::anyhow!(e))?;
    let (sim, _) = target::simulator(model)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let differences = record::replay(&exchanges, &sim.base_url(), "admin", "admin")
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    for d in &differences {
        println!("DIFF  {d}");
    }
    println!(
        "{} exchanges replayed, {} answered differently by the simulator",
        exchanges.len(),
        differences.len()
    );
    Ok(i32::from(!differences.is_empty()))
}

async fn execute(args: &RunArgs) -> anyhow::Result<i32> {
    let model: Model = args.profile.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let cases = select(catalogue(), &args.only, &args.skip);
    anyhow::ensure!(!cases.is_empty(), "no case matches --only / --skip");
    anyhow::ensure!(
        !args.restore_only || args.target.is_some(),
        "--restore-only needs --target"
    );
    if args.dry_run {
        for line in runner::dry_run(&cases) {
            println!("{line}");
        }
        return Ok(0);
    }
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: finishing the current case, then cleaning up");
            let _ = stop_tx.send(true);
        }
    });
    let policy = RunPolicy {
        allow_changes: args.target.is_none() || args.allow_destructive,
        stop,
    };
    let mut console = Console(Progress::new(
        std::io::stdout(),
        std::io::stdout().is_terminal(),
    ));
    let started_at = now();
    let mut runs = Vec::new();
    match (&args.target, args.fleet) {
        (Some(url), _) => {
            let operator: Arc<dyn Operator> = if args.unattended {
                Arc::new(Unattended)
            } else {
                Arc::new(HumanOperator::new(Duration::from_secs(
                    args.operator_timeout,
                )))
            };
            let advertise = match &args.advertise {
                Some(text) => Some(
                    text.rsplit_once(':')
                        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
                        .with_context(|| format!("--advertise must be HOST:PORT, got '{text}'"))?,
                ),
                None => None,
            };
            let callback = args
                .callback_addr
                .map(|bind| CallbackConfig { bind, advertise });
            let prepared = target::prepare(
                target::Endpoint {
                    label: url,
                    base: url,
                    login: &args.login,
                    password: &args.password,
                },
                operator,
                capabilities_of(model.cli_name()),
                model.cli_name(),
                callback,
            )
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
            let journal = RestoreJournal::new(
                args.restore_journal
                    .clone()
                    .unwrap_or_else(|| RestoreJournal::default_path(url)),
                url,
            );
            if journal.recover(&prepared.ctx).await? {
                println!(
                    "restored the terminal as an interrupted run found it ({})",
                    journal.path().display()
                );
            }
            if args.restore_only {
                return Ok(0);
            }
            journal.save(&prepared.ctx).await?;
            let prepared = recorded(prepared, args).await?;
            runs.push(
                run(
                    &cases,
                    &prepared.ctx,
                    &prepared.capabilities,
                    prepared.identity,
                    started_at,
                    &mut console,
                    &policy,
                )
                .await,
            );
            // The run cleaned up; this checks it (again) and deletes the journal only when
            // the terminal accepted the restoration.
            if let Err(e) = journal.recover(&prepared.ctx).await {
                eprintln!("acs-conformance: {e}; the next run will try again");
            }
        }
        (None, Some(count)) => {
            let (_fleet, prepared) = target::fleet(count, model)
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            for p in prepared {
                println!("== {} ({})", p.identity.target, p.identity.serial);
                runs.push(
                    run(
                        &cases,
                        &p.ctx,
                        &p.capabilities,
                        p.identity,
                        started_at.clone(),
                        &mut console,
                        &policy,
                    )
                    .await,
                );
            }
        }
        (None, None) => {
            let (_sim, prepared) = target::simulator(model)
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            let prepared = recorded(prepared, args).await?;
            runs.push(
                run(
                    &cases,
                    &prepared.ctx,
                    &prepared.capabilities,
                    prepared.identity,
                    started_at,
                    &mut console,
                    &policy,
                )
                .await,
            );
        }
    }
    let mut combined = runs.remove(0);
    for more in runs {
        combined.results.extend(more.results);
    }
    if args.fleet.is_some() {
        combined.target.target = format!("fleet of {}", args.fleet.unwrap_or(0));
    }
    console.0.finished(&combined);
    write_reports(args, &combined)?;
    Ok(verdict::exit_code(&combined.summary()))
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
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
        Some(Command::Replay { dir, profile }) => match replay(&dir, &profile).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("acs-conformance: {e:#}");
                2
            }
        },
        None => match execute(&cli.run).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("acs-conformance: {e:#}");
                2
            }
        },
    };
    std::process::exit(code);
}
