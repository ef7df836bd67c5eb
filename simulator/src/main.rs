//! `acs-sim`: run a simulated Control iD terminal from the command line.
//!
//! `acs-sim serve --port 8080 --model idface --login admin --password admin --state dev.json`
//! serves one terminal until Ctrl-C, then shuts down cleanly (writing the state file).

use std::net::IpAddr;
use std::path::PathBuf;

use acs_simulator::{Model, Policy, Simulator, TimeMode};
use anyhow::Context as _;
use clap::{Parser, Subcommand};

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
    /// Web/API login.
    #[arg(long, default_value = "admin", env = "ACS_SIM_LOGIN")]
    login: String,
    /// Web/API password.
    #[arg(long, default_value = "admin", env = "ACS_SIM_PASSWORD")]
    password: String,
    /// Keep tables, photos and configuration in this file across restarts.
    #[arg(long, env = "ACS_SIM_STATE")]
    state: Option<PathBuf>,
    /// Seed for the device id, serial and session tokens.
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind((args.bind, args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.bind, args.port))?;
    let mut builder = Simulator::builder()
        .model(args.model)
        .credentials(args.login, args.password)
        .seed(args.seed)
        .utc_offset(args.utc_offset)
        .time_mode(args.time_scale)
        .policy(args.policy);
    if let Some(state) = args.state {
        builder = builder.state_file(state);
    }
    let sim = builder
        .spawn(listener)
        .await
        .context("cannot start the terminal")?;
    let identity = sim.device().identity();
    println!(
        "{} (serial {}, device_id {}) listening on {}",
        args.model,
        identity.serial,
        identity.device_id,
        sim.base_url()
    );
    println!(
        "try: curl -s -X POST {}/login.fcgi -H 'Content-Type: application/json' -d '{{\"login\":\"admin\",\"password\":\"admin\"}}'",
        sim.base_url()
    );
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(())
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
