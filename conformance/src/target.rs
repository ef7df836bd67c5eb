//! Targets: the in-process simulator (the default: no set-up, virtual time, the simulator
//! performs the physical steps itself), a simulated fleet, or a real terminal reached by
//! URL (a person performs the physical steps, or nobody with `--unattended`).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use acs_simulator::{Fleet, Model, RunningFleet, RunningSimulator, Simulator, TimeMode};

use crate::context::Ctx;
use crate::core_rig::CallbackConfig;
use crate::operator::{Operator, SimulatorOperator};
use crate::outcome::{Capability, TargetIdentity};
use crate::runner::capabilities_of;

/// A terminal to run against, ready.
#[derive(Debug)]
pub struct Prepared {
    /// The environment for its cases.
    pub ctx: Ctx,
    /// What it can do.
    pub capabilities: BTreeSet<Capability>,
    /// What it is.
    pub identity: TargetIdentity,
}

/// Where a terminal is and how to log in.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    /// How reports name it.
    pub label: &'a str,
    /// Its base URL.
    pub base: &'a str,
    /// Login.
    pub login: &'a str,
    /// Password.
    pub password: &'a str,
}

/// Prepares the terminal at `endpoint`.
pub async fn prepare(
    endpoint: Endpoint<'_>,
    operator: Arc<dyn Operator>,
    capabilities: BTreeSet<Capability>,
    profile: &str,
    callback: Option<CallbackConfig>,
) -> Result<Prepared, String> {
    let Endpoint {
        label,
        base,
        login,
        password,
    } = endpoint;
    let ctx = Ctx::new(
        base,
        login,
        password,
        operator,
        capabilities.clone(),
        profile,
    )?
    .with_callback(callback);
    let info = ctx
        .driver()
        .system_information()
        .await
        .map_err(|e| format!("cannot reach the terminal at {base}: {e}"))?;
    let text = |k: &str| {
        info.raw
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let model = [text("device_name"), text("model"), profile.to_owned()]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    Ok(Prepared {
        ctx,
        capabilities,
        identity: TargetIdentity {
            target: label.to_owned(),
            model,
            firmware: info.version.clone(),
            serial: info.serial.clone(),
            device_id: info.device_id.to_string(),
        },
    })
}

fn loopback_callback() -> CallbackConfig {
    CallbackConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        advertise: None,
    }
}

/// Starts an in-process simulator of `model` in virtual time.
pub async fn simulator(model: Model) -> Result<(RunningSimulator, Prepared), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let sim = Simulator::builder()
        .model(model)
        .seed(7)
        .time_mode(TimeMode::Scaled(0.0))
        .spawn(listener)
        .await
        .map_err(|e| e.to_string())?;
    let base = sim.base_url();
    let prepared = prepare(
        Endpoint {
            label: "simulator",
            base: &base,
            login: "admin",
            password: "admin",
        },
        Arc::new(SimulatorOperator::new(&base)),
        capabilities_of(model.cli_name()),
        model.cli_name(),
        Some(loopback_callback()),
    )
    .await?;
    Ok((sim, prepared))
}

/// Starts a simulated fleet of `count` terminals of `model`.
pub async fn fleet(count: usize, model: Model) -> Result<(RunningFleet, Vec<Prepared>), String> {
    let fleet = Fleet::builder(count)
        .template(Simulator::builder().time_mode(TimeMode::Scaled(0.0)))
        .models([model])
        .seed(11)
        .spawn()
        .await
        .map_err(|e| e.to_string())?;
    let mut prepared = Vec::with_capacity(count);
    for (i, device) in fleet.devices().iter().enumerate() {
        let base = device.base_url();
        prepared.push(
            prepare(
                Endpoint {
                    label: &format!("fleet terminal {i}"),
                    base: &base,
                    login: "admin",
                    password: "admin",
                },
                Arc::new(SimulatorOperator::new(&base)),
                capabilities_of(model.cli_name()),
                model.cli_name(),
                Some(loopback_callback()),
            )
            .await?,
        );
    }
    Ok((fleet, prepared))
}
