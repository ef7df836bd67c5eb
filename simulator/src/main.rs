//! `acs-sim`: run a simulated Control iD terminal from the command line.
//!
//! `acs-sim serve --port 8080 --model idface --login admin --password admin --state dev.json`
//! serves one terminal until Ctrl-C, then shuts down cleanly (writing the state file).
//! `acs-sim fleet --count 1000 --manifest fleet.json` serves a thousand terminals, writes
//! where each one is, and serves the fleet control API. Both serve the web panel: each
//! terminal's at `/_sim/ui` on its own port, the fleet's overview at `/_fleet/ui`.

use std::net::IpAddr;
use std::path::PathBuf;

use acs_simulator::{Fleet, Model, Policy, Simulator, SimulatorBuilder, TimeMode};
use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Serving thousands of requests a second allocates many small JSON values; mimalloc
/// handles that markedly better than the system allocator (BENCHMARKS.md, figure 1).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "acs-sim",
    version,
    about = "Simulated Control iD access terminals"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve one simulated terminal.
    Serve(ServeArgs),
    /// Serve a fleet of simulated terminals, each on its own port.
    Fleet(FleetArgs),
}

/// How each terminal is set up (shared by `serve` and `fleet`).
#[derive(Debug, clap::Args)]
struct TerminalArgs {
    /// Web/API login.
    #[arg(long, default_value = "admin", env = "ACS_SIM_LOGIN")]
    login: String,
    /// Web/API password.
    #[arg(long, default_value = "admin", env = "ACS_SIM_PASSWORD")]
    password: String,
    /// Seed for the device id, serial and session tokens (a fleet seeds terminal i from
    /// seed + i).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Scale of the scheduler clock for waits (countdowns, timeouts, retries): 1 is real
    /// time, 0.01 makes a 5 s countdown take 50 ms; `manual` waits until
    /// `POST /_sim/clock/advance`.
    #[arg(long, default_value = "1", value_parser = parse_time_scale)]
    time_scale: TimeMode,
    /// What the person at the device does when nothing is queued: cooperative or absent.
    #[arg(long, default_value = "cooperative")]
    policy: Policy,
    /// Offset of the device's local clock from UTC, in seconds (e.g. -10800 for UTC-3).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    utc_offset: i64,
}

impl TerminalArgs {
    fn builder(&self) -> SimulatorBuilder {
        Simulator::builder()
            .credentials(self.login.clone(), self.password.clone())
            .seed(self.seed)
            .utc_offset(self.utc_offset)
            .time_mode(self.time_scale)
            .policy(self.policy)
    }
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TCP port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080, env = "ACS_SIM_PORT")]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1", env = "ACS_SIM_BIND")]
    bind: IpAddr,
    /// Terminal model: idface, idface-max, idaccess or idflex.
    #[arg(long, default_value = "idface", env = "ACS_SIM_MODEL")]
    model: Model,
    /// Keep tables, photos and configuration in this file across restarts.
    #[arg(long, env = "ACS_SIM_STATE")]
    state: Option<PathBuf>,
    #[command(flatten)]
    terminal: TerminalArgs,
}

#[derive(Debug, clap::Args)]
struct FleetArgs {
    /// Number of terminals.
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// Models, assigned round-robin (comma-separated: idface,idaccess,…).
    #[arg(long, default_value = "idface", value_delimiter = ',')]
    models: Vec<Model>,
    /// Address terminals bind (the first of several with --per-address).
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Terminals per address: terminal i binds the bind address plus i / N (127.0.0.1,
    /// 127.0.0.2, …); 0 puts them all on the bind address. Default: 1000 on an IPv4
    /// loopback address on Linux, else 0.
    #[arg(long)]
    per_address: Option<usize>,
    /// Terminal i listens on first-port + i; 0 picks a free port for each.
    #[arg(long, default_value_t = 0)]
    first_port: u16,
    /// Port of the fleet control API (`/_fleet/…`); 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    control_port: u16,
    /// Write the manifest (URL, model, device id, serial, credentials of each terminal)
    /// to this JSON file.
    #[arg(long, default_value = "fleet.json")]
    manifest: PathBuf,
    /// Keep each terminal's state in DIR/terminal-NNNN.json across restarts.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    #[command(flatten)]
    terminal: TerminalArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    if let Err(e) = acs_simulator::huge_pages::avoid_transparent_huge_pages() {
        tracing::debug!(error = %e, "transparent huge pages stay as the system sets them");
    }
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Fleet(args) => fleet(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind((args.bind, args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.bind, args.port))?;
    let mut builder = args.terminal.builder().model(args.model);
    if let Some(state) = args.state {
        builder = builder.state_file(state);
    }
    let sim = builder
        .spawn(listener)
        .await
        .context("cannot start the terminal")?;
    let identity = sim.device().identity();
    say(format_args!(
        "{} (serial {}, device_id {}) listening on {}",
        args.model,
        identity.serial,
        identity.device_id,
        sim.base_url()
    ));
    say(format_args!("web panel: {}/_sim/ui", sim.base_url()));
    say(format_args!(
        "try: curl -s -X POST {}/login.fcgi -H 'Content-Type: application/json' -d '{{\"login\":\"{}\",\"password\":\"…\"}}'",
        sim.base_url(),
        args.terminal.login
    ));
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(())
}

async fn fleet(args: FleetArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut builder = Fleet::builder(args.count)
        .template(args.terminal.builder())
        .models(args.models)
        .bind(args.bind)
        .first_port(args.first_port)
        .seed(args.terminal.seed);
    if let Some(n) = args.per_address {
        builder = builder.per_address(n);
    }
    let addresses = builder.addresses().context("cannot spread the fleet")?;
    let addresses = match addresses.as_slice() {
        [] => args.bind.to_string(),
        [one] => one.to_string(),
        [first, .., last] => format!("{} addresses, {first} to {last}", addresses.len()),
    };
    if let Some(dir) = args.state_dir {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        builder = builder.state_dir(dir);
    }
    let mut fleet = builder.spawn().await.context("cannot start the fleet")?;
    let control = tokio::net::TcpListener::bind((args.bind, args.control_port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.bind, args.control_port))?;
    let control = fleet
        .serve_control(control)
        .context("cannot serve the fleet control API")?;
    fleet
        .write_manifest(&args.manifest)
        .with_context(|| format!("cannot write {}", args.manifest.display()))?;
    say(format_args!(
        "{} terminals listening on {} (started in {} ms); manifest in {}; fleet control at http://{control}/_fleet/; overview at http://{control}/_fleet/ui",
        fleet.len(),
        addresses,
        started.elapsed().as_millis(),
        args.manifest.display(),
    ));
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    tracing::info!("shutting down");
    fleet.shutdown().await;
    Ok(())
}

/// Prints a line for whoever started the simulator. A closed stdout (`acs-sim serve | head
/// -1`, a parent that read the address and went) must not bring the terminal down, as
/// `println!` would by panicking: the line is dropped.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn parse_time_scale(s: &str) -> Result<TimeMode, String> {
    if s.eq_ignore_ascii_case("manual") {
        return Ok(TimeMode::Manual);
    }
    match s.parse::<f64>() {
        Ok(scale) if scale.is_finite() && scale >= 0.0 => Ok(TimeMode::Scaled(scale)),
        _ => Err(format!(
            "expected a non-negative number or 'manual', got '{s}'"
        )),
    }
}
