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

/// Prepares the terminal at `endpoint`: reads its `system_information`, settles the
/// profile (see [`profile`]) and builds the cases' environment with its capabilities.
pub async fn prepare(
    endpoint: Endpoint<'_>,
    operator: Arc<dyn Operator>,
    requested: Option<Model>,
    force_profile: bool,
    callback: Option<CallbackConfig>,
) -> Result<Prepared, String> {
    let Endpoint {
        label,
        base,
        login,
        password,
    } = endpoint;
    let probe = Ctx::new(base, login, password, operator.clone(), BTreeSet::new(), "")?;
    let info =
        probe.driver().system_information().await.map_err(|e| {
            crate::redact::redact(&format!("cannot reach the terminal at {base}: {e}"))
        })?;
    let text = |k: &str| {
        info.raw
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let reported = text("device_name");
    let model = profile(&reported, requested, force_profile)?;
    let capabilities = capabilities_of(model.cli_name());
    let ctx = Ctx::new(
        base,
        login,
        password,
        operator,
        capabilities.clone(),
        model.cli_name(),
    )?
    .with_callback(callback);
    let shown = [reported, text("model"), model.display_name().to_owned()]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    Ok(Prepared {
        ctx,
        capabilities,
        identity: TargetIdentity {
            target: label.to_owned(),
            model: shown,
            profile: model.cli_name().to_owned(),
            firmware: info.version.clone(),
            serial: info.serial.clone(),
            device_id: info.device_id.to_string(),
        },
    })
}

/// The profile to run with: the model the terminal reports (`system_information`'s
/// `device_name`), unless `requested` names another one – which is refused unless `force`
/// says the difference is on purpose.
pub fn profile(reported: &str, requested: Option<Model>, force: bool) -> Result<Model, String> {
    let family = |m: Model| m.device_name().eq_ignore_ascii_case(reported.trim());
    let detected = Model::ALL.into_iter().find(|m| family(*m));
    match (requested, detected) {
        (Some(wanted), _) if force => Ok(wanted),
        (Some(wanted), Some(_)) if family(wanted) => Ok(wanted),
        (Some(wanted), Some(found)) => Err(format!(
            "the terminal reports the model {reported}, but --profile {} was given; its cases would be judged by the wrong capabilities. Pass --profile {} (or --force-profile to run as {} on purpose)",
            wanted.cli_name(),
            found.cli_name(),
            wanted.cli_name()
        )),
        (Some(wanted), None) => {
            tracing::warn!(
                reported,
                profile = wanted.cli_name(),
                "the terminal's model is not one the suite knows; running with the given profile"
            );
            Ok(wanted)
        }
        (None, Some(found)) => Ok(found),
        (None, None) => Err(format!(
            "cannot tell the terminal's model from system_information (device_name '{reported}'); pass --profile"
        )),
    }
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
        Some(model),
        false,
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
                Some(model),
                false,
                Some(loopback_callback()),
            )
            .await?,
        );
    }
    Ok((fleet, prepared))
}
