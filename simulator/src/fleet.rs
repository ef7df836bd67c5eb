//! Fleets: many simulated terminals in one process, each on its own loopback port with its
//! own device id and serial, described by a JSON manifest, and controlled one by one
//! (each terminal's `/_sim/`) or together (the fleet control API, `/_fleet/…`, on a
//! listener of its own so that it keeps answering while terminals are powered off).
//!
//! Fleet-wide control speaks the per-terminal control language: `POST /_fleet/faults`
//! with `{"select": {"fraction": 0.1, "seed": 7}, "clock_skew_seconds": 30}` applies
//! `/_sim/faults {"clock_skew_seconds": 30}` to a seeded 10 % of the fleet.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::SeedableRng as _;
use rand::seq::SliceRandom as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::control::{self, Origin};
use crate::device::Identity;
use crate::model::Model;
use crate::scheduler::{Scheduler, TimeMode};
use crate::terminal::Terminal;
use crate::{RunningSimulator, SimulatorBuilder, SimulatorError};

/// Journal capacity per terminal in a fleet (a single terminal keeps 10,000 exchanges; a
/// thousand terminals keep a thousand each so the fleet's memory stays bounded).
pub const FLEET_JOURNAL_CAPACITY: usize = 1_000;

/// Terminals per loopback address when a fleet binds an IPv4 loopback address on Linux
/// (which routes all of 127.0.0.0/8 to the loopback interface): terminal `i` listens on
/// the bind address plus `i / 1,000` (127.0.0.1, 127.0.0.2, …). Binding ten thousand
/// listeners on one address costs the kernel a search through every port bound there
/// for each new one (BENCHMARKS.md, fleet of 10,000 terminals); a thousand per address
/// keeps that short.
pub const TERMINALS_PER_LOOPBACK_ADDRESS: usize = 1_000;

/// A fleet could not start or a control request could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A terminal's port could not be bound.
    #[error("terminal {index}: cannot listen on {addr}: {source}")]
    Bind {
        /// Index of the terminal in the fleet.
        index: usize,
        /// The address that was refused.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A terminal could not be created (state file unreadable…).
    #[error("terminal {index}: {source}")]
    Terminal {
        /// Index of the terminal in the fleet.
        index: usize,
        /// Why.
        #[source]
        source: SimulatorError,
    },
    /// The selection names terminals the fleet does not have, or is malformed.
    #[error("{0}")]
    Selection(String),
    /// Terminals cannot be spread over addresses from the bind address (not IPv4, or past
    /// the end of the loopback range).
    #[error("{0}")]
    Address(String),
    /// The control path is not one a terminal understands.
    #[error("Unknown control path: /_fleet/{0}")]
    UnknownPath(String),
}

/// Which terminals of a fleet a control request applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// Every terminal.
    All,
    /// These indices.
    Indices(Vec<usize>),
    /// `round(fraction × count)` terminals chosen by a shuffle seeded with `seed`, so the
    /// same request picks the same terminals on every run.
    Fraction {
        /// Between 0 and 1.
        fraction: f64,
        /// Seed of the shuffle.
        seed: u64,
    },
}

impl Selection {
    /// Reads `"all"`, `[0, 3, 7]` or `{"fraction": 0.1, "seed": 7}` (seed defaults to 0);
    /// an absent selection means all.
    pub fn from_json(value: Option<&Json>) -> Result<Selection, FleetError> {
        let bad = |why: &str| FleetError::Selection(format!("select: {why}"));
        match value {
            None | Some(Json::Null) => Ok(Selection::All),
            Some(Json::String(s)) if s == "all" => Ok(Selection::All),
            Some(Json::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_u64()
                        .and_then(|i| usize::try_from(i).ok())
                        .ok_or_else(|| bad("indices must be non-negative integers"))
                })
                .collect::<Result<_, _>>()
                .map(Selection::Indices),
            Some(Json::Object(o)) => {
                let fraction = o
                    .get("fraction")
                    .and_then(Json::as_f64)
                    .filter(|f| (0.0..=1.0).contains(f))
                    .ok_or_else(|| bad("fraction must be a number between 0 and 1"))?;
                let seed = match o.get("seed") {
                    None => 0,
                    Some(s) => s
                        .as_u64()
                        .ok_or_else(|| bad("seed must be a non-negative integer"))?,
                };
                Ok(Selection::Fraction { fraction, seed })
            }
            Some(_) => Err(bad(
                "expected \"all\", a list of indices or {\"fraction\": f, \"seed\": n}",
            )),
        }
    }

    /// The selected indices of a fleet of `count` terminals, ascending.
    pub fn indices(&self, count: usize) -> Result<Vec<usize>, FleetError> {
        match self {
            Selection::All => Ok((0..count).collect()),
            Selection::Indices(list) => {
                if let Some(i) = list.iter().find(|i| **i >= count) {
                    return Err(FleetError::Selection(format!(
                        "select: terminal {i} does not exist (the fleet has {count})"
                    )));
                }
                let mut list = list.clone();
                list.sort_unstable();
                list.dedup();
                Ok(list)
            }
            Selection::Fraction { fraction, seed } => {
                let mut all: Vec<usize> = (0..count).collect();
                all.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(*seed));
                // The product is at most `count`, so the cast cannot truncate.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let k = ((count as f64) * fraction).round() as usize;
                let mut chosen: Vec<usize> = all.into_iter().take(k.min(count)).collect();
                chosen.sort_unstable();
                Ok(chosen)
            }
        }
    }
}

/// Describes a running fleet: where each terminal is and how to log in (written as JSON
/// by `acs-sim fleet --manifest FILE`, read by the conformance suite and other tools).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The fleet control API (`POST {control_url}/_fleet/…`), when it is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_url: Option<String>,
    /// One entry per terminal, by index.
    pub devices: Vec<ManifestEntry>,
}

/// One terminal of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Position in the fleet (what selections name).
    pub index: usize,
    /// Base URL of the terminal's API, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// CLI spelling of the model (`idface`, `idaccess`, …).
    pub model: String,
    /// `device_id` the terminal reports.
    pub device_id: i64,
    /// Serial number the terminal reports.
    pub serial: String,
    /// MAC address the terminal reports.
    pub mac: String,
    /// Web/API login.
    pub login: String,
    /// Web/API password.
    pub password: String,
}

/// Configures a fleet.
#[derive(Debug, Clone)]
pub struct FleetBuilder {
    count: usize,
    template: SimulatorBuilder,
    models: Vec<Model>,
    bind: IpAddr,
    /// Terminals per address (0: all on `bind`); `None`: the default for `bind`.
    per_address: Option<usize>,
    first_port: u16,
    seed: u64,
    state_dir: Option<PathBuf>,
    journal_capacity: usize,
}

/// Many simulated terminals in one process.
#[derive(Debug)]
pub struct Fleet;

impl Fleet {
    /// Starts configuring a fleet of `count` terminals.
    pub fn builder(count: usize) -> FleetBuilder {
        FleetBuilder {
            count,
            template: SimulatorBuilder::default(),
            models: vec![Model::IdFace],
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            per_address: None,
            first_port: 0,
            seed: 0,
            state_dir: None,
            journal_capacity: FLEET_JOURNAL_CAPACITY,
        }
    }
}

impl FleetBuilder {
    /// How every terminal is configured (credentials, time, policy, callback retry…); the
    /// model, seed, journal capacity and state file are set per terminal by the fleet.
    pub fn template(mut self, template: SimulatorBuilder) -> Self {
        self.template = template;
        self
    }

    /// Models, assigned round-robin (default: all iDFace).
    pub fn models(mut self, models: impl IntoIterator<Item = Model>) -> Self {
        let models: Vec<Model> = models.into_iter().collect();
        if !models.is_empty() {
            self.models = models;
        }
        self
    }

    /// Address terminals bind (default 127.0.0.1); see [`FleetBuilder::per_address`].
    pub fn bind(mut self, ip: IpAddr) -> Self {
        self.bind = ip;
        self
    }

    /// Spreads terminals over consecutive IPv4 addresses from the bind address, `n` per
    /// address (terminal `i` on the bind address plus `i / n`); 0 keeps them all on the
    /// bind address. The default is [`TERMINALS_PER_LOOPBACK_ADDRESS`] when the bind
    /// address is IPv4 loopback on Linux, else 0. The manifest's URLs say where each
    /// terminal is.
    pub fn per_address(mut self, n: usize) -> Self {
        self.per_address = Some(n);
        self
    }

    /// The address terminal `index` binds.
    fn address_of(&self, index: usize) -> Result<IpAddr, FleetError> {
        let default = if cfg!(target_os = "linux")
            && matches!(self.bind, IpAddr::V4(ip) if ip.is_loopback())
        {
            TERMINALS_PER_LOOPBACK_ADDRESS
        } else {
            0
        };
        let per = self.per_address.unwrap_or(default);
        if per == 0 {
            return Ok(self.bind);
        }
        let step = index / per;
        if step == 0 {
            return Ok(self.bind);
        }
        let IpAddr::V4(first) = self.bind else {
            return Err(FleetError::Address(format!(
                "terminals can be spread over IPv4 addresses only, not from {}",
                self.bind
            )));
        };
        let address = u32::try_from(step)
            .ok()
            .and_then(|step| u32::from(first).checked_add(step))
            .map(Ipv4Addr::from)
            // Loopback stays loopback: 127.0.0.1 + n must not leave 127/8.
            .filter(|ip| !first.is_loopback() || ip.is_loopback())
            .ok_or_else(|| {
                FleetError::Address(format!(
                    "terminal {index} would need an address {step} past {first}, out of range"
                ))
            })?;
        Ok(IpAddr::V4(address))
    }

    /// Every address the fleet's terminals bind, in order (the bind address first).
    pub fn addresses(&self) -> Result<Vec<IpAddr>, FleetError> {
        let mut out: Vec<IpAddr> = Vec::new();
        for index in 0..self.count {
            let ip = self.address_of(index)?;
            if out.last() != Some(&ip) {
                out.push(ip);
            }
        }
        Ok(out)
    }

    /// Terminal `i` listens on `first_port + i`; 0 (the default) lets the system pick a
    /// free port for each.
    pub fn first_port(mut self, port: u16) -> Self {
        self.first_port = port;
        self
    }

    /// Base seed: terminal `i` is seeded from `seed + i` (identities stay stable across
    /// runs and distinct within the fleet).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Keeps each terminal's state in `dir/terminal-NNNN.json` across restarts.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Exchanges each terminal's journal keeps (default [`FLEET_JOURNAL_CAPACITY`]).
    pub fn journal_capacity(mut self, capacity: usize) -> Self {
        self.journal_capacity = capacity;
        self
    }

    /// Creates and serves every terminal. Terminals share one scheduler clock (so a manual
    /// clock advances the whole fleet) and one HTTP client for their callbacks.
    pub async fn spawn(self) -> Result<RunningFleet, FleetError> {
        let scheduler = self.template.scheduler.clone().unwrap_or_else(|| {
            Scheduler::new(self.template.time_mode.unwrap_or(TimeMode::Scaled(1.0)))
        });
        let http = reqwest::Client::new();
        let mut identities = UniqueIdentities::default();
        let mut devices = Vec::with_capacity(self.count);
        for index in 0..self.count {
            let model = self.models[index % self.models.len()];
            let seed = identities.seed_for(model, self.seed, index, self.count);
            let port = if self.first_port == 0 {
                0
            } else {
                u16::try_from(usize::from(self.first_port) + index).map_err(|_| {
                    FleetError::Selection(format!(
                        "terminal {index} would need a port above 65535 (first port {})",
                        self.first_port
                    ))
                })?
            };
            let addr = SocketAddr::new(self.address_of(index)?, port);
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| FleetError::Bind {
                    index,
                    addr,
                    source,
                })?;
            let mut builder = self
                .template
                .clone()
                .model(model)
                .seed(seed)
                .journal_capacity(self.journal_capacity)
                .shared_scheduler(scheduler.clone())
                .http_client(http.clone());
            if let Some(dir) = &self.state_dir {
                builder = builder.state_file(dir.join(format!("terminal-{index:04}.json")));
            }
            let sim = builder
                .spawn(listener)
                .await
                .map_err(|source| FleetError::Terminal { index, source })?;
            devices.push(sim);
        }
        tracing::info!(count = devices.len(), "fleet listening");
        Ok(RunningFleet {
            login: self.template.settings.login.clone(),
            password: self.template.settings.password.clone(),
            devices,
            scheduler,
            control: None,
        })
    }
}

/// Picks seeds so that no two terminals of a fleet share a serial or a device id (a serial
/// has 24 random bits, so a thousand plain seeds would collide now and then).
#[derive(Debug, Default)]
struct UniqueIdentities {
    serials: HashSet<String>,
    device_ids: HashSet<i64>,
}

impl UniqueIdentities {
    fn seed_for(&mut self, model: Model, base: u64, index: usize, count: usize) -> u64 {
        let index = index as u64;
        let stride = (count as u64).max(1);
        let mut attempt = 0_u64;
        loop {
            let seed = base
                .wrapping_add(index)
                .wrapping_add(attempt.wrapping_mul(stride));
            let identity = Identity::generate(model, seed);
            if !self.serials.contains(&identity.serial)
                && !self.device_ids.contains(&identity.device_id)
            {
                self.serials.insert(identity.serial);
                self.device_ids.insert(identity.device_id);
                return seed;
            }
            attempt += 1;
        }
    }
}

/// What one terminal answered to a fleet-wide control request.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlOutcome {
    /// Index of the terminal.
    pub index: usize,
    /// Its answer, or the error it gave.
    pub result: Result<Json, String>,
}

/// A serving fleet. Dropping it stops every terminal; [`RunningFleet::shutdown`] also waits
/// for them (and their state files).
#[derive(Debug)]
pub struct RunningFleet {
    devices: Vec<RunningSimulator>,
    scheduler: Scheduler,
    login: String,
    password: String,
    control: Option<(SocketAddr, CancellationToken)>,
}

impl RunningFleet {
    /// Number of terminals.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether the fleet has no terminal.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Every terminal, by index.
    pub fn devices(&self) -> &[RunningSimulator] {
        &self.devices
    }

    /// Terminal `index`.
    pub fn device(&self, index: usize) -> Option<&RunningSimulator> {
        self.devices.get(index)
    }

    /// The clock every terminal of the fleet waits on.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// Where each terminal is and how to log in.
    pub fn manifest(&self) -> Manifest {
        Manifest {
            control_url: self.control.as_ref().map(|(a, _)| format!("http://{a}")),
            devices: self
                .devices
                .iter()
                .enumerate()
                .map(|(index, d)| {
                    let identity = d.device().identity();
                    ManifestEntry {
                        index,
                        url: d.base_url(),
                        model: d.device().model().cli_name().to_owned(),
                        device_id: identity.device_id,
                        serial: identity.serial,
                        mac: identity.mac,
                        login: self.login.clone(),
                        password: self.password.clone(),
                    }
                })
                .collect(),
        }
    }

    /// Writes the manifest as pretty JSON to `path` (atomically: a temporary file renamed).
    pub fn write_manifest(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(&self.manifest()).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, path)
    }

    /// Applies the control request `path` (as `/_sim/{path}`) to the selected terminals,
    /// concurrently; answers per terminal, by index.
    pub async fn control(
        &self,
        selection: &Selection,
        path: &str,
        request: &Json,
    ) -> Result<Vec<ControlOutcome>, FleetError> {
        let terminals: Vec<Terminal> = self.devices.iter().map(|d| d.terminal().clone()).collect();
        apply_to(&terminals, selection, path, request).await
    }

    /// Powers the selected terminals off (until [`Self::power_on`]); returns their indices.
    pub async fn power_off(&self, selection: &Selection) -> Result<Vec<usize>, FleetError> {
        self.switched(selection, false).await
    }

    /// Powers the selected terminals on again; returns their indices.
    pub async fn power_on(&self, selection: &Selection) -> Result<Vec<usize>, FleetError> {
        self.switched(selection, true).await
    }

    async fn switched(&self, selection: &Selection, on: bool) -> Result<Vec<usize>, FleetError> {
        let outcomes = self.control(selection, "power", &json!({"on": on})).await?;
        Ok(outcomes.into_iter().map(|o| o.index).collect())
    }

    /// Moves the local clock of the selected terminals by `seconds`.
    pub async fn skew_clocks(
        &self,
        selection: &Selection,
        seconds: i64,
    ) -> Result<Vec<usize>, FleetError> {
        let outcomes = self
            .control(selection, "faults", &json!({"clock_skew_seconds": seconds}))
            .await?;
        Ok(outcomes.into_iter().map(|o| o.index).collect())
    }

    /// Serves the fleet control API (`GET /_fleet/manifest`, `POST /_fleet/{path}`) on
    /// `listener` until the fleet shuts down; the manifest then carries its URL.
    pub fn serve_control(&mut self, listener: TcpListener) -> std::io::Result<SocketAddr> {
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let state = ControlState {
            terminals: self.devices.iter().map(|d| d.terminal().clone()).collect(),
            manifest: std::sync::Arc::new(std::sync::Mutex::new(Json::Null)),
        };
        let app = axum::Router::new()
            .route("/_fleet/manifest", axum::routing::get(manifest_handler))
            .route("/_fleet/{*path}", axum::routing::post(control_handler))
            .with_state(state.clone())
            .merge(crate::panel::overview::routes(state.terminals.clone()));
        let shutdown = stop.clone();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
            {
                tracing::error!(error = %e, "fleet control listener failed");
            }
        });
        self.control = Some((addr, stop));
        let manifest = serde_json::to_value(self.manifest()).unwrap_or(Json::Null);
        *state
            .manifest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = manifest;
        Ok(addr)
    }

    /// Stops every terminal and the control API, and waits for them.
    pub async fn shutdown(mut self) {
        if let Some((_, stop)) = self.control.take() {
            stop.cancel();
        }
        let mut stopping = JoinSet::new();
        for d in std::mem::take(&mut self.devices) {
            stopping.spawn(d.shutdown());
        }
        while stopping.join_next().await.is_some() {}
    }
}

impl Drop for RunningFleet {
    fn drop(&mut self) {
        if let Some((_, stop)) = &self.control {
            stop.cancel();
        }
    }
}

async fn apply_to(
    terminals: &[Terminal],
    selection: &Selection,
    path: &str,
    request: &Json,
) -> Result<Vec<ControlOutcome>, FleetError> {
    if !control::PATHS.contains(&path) {
        return Err(FleetError::UnknownPath(path.to_owned()));
    }
    let indices = selection.indices(terminals.len())?;
    let mut running = JoinSet::new();
    for index in indices {
        let terminal = terminals[index].clone();
        let path = path.to_owned();
        let request = request.clone();
        running.spawn(async move {
            let result = control::apply(&terminal, &path, &request, Origin::Elsewhere)
                .await
                .map_err(|(_, message)| message);
            ControlOutcome { index, result }
        });
    }
    let mut outcomes = Vec::new();
    while let Some(done) = running.join_next().await {
        if let Ok(outcome) = done {
            outcomes.push(outcome);
        }
    }
    outcomes.sort_by_key(|o| o.index);
    Ok(outcomes)
}

#[derive(Debug, Clone)]
struct ControlState {
    terminals: std::sync::Arc<[Terminal]>,
    manifest: std::sync::Arc<std::sync::Mutex<Json>>,
}

async fn manifest_handler(State(state): State<ControlState>) -> Response {
    let manifest = state
        .manifest
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    axum::Json(manifest).into_response()
}

async fn control_handler(
    State(state): State<ControlState>,
    UrlPath(path): UrlPath<String>,
    body: axum::body::Bytes,
) -> Response {
    let fail = |status: StatusCode, message: String| {
        (status, axum::Json(json!({"error": message, "code": 1}))).into_response()
    };
    let mut request: Json = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(j) => j,
            Err(e) => return fail(StatusCode::BAD_REQUEST, format!("Invalid JSON ({e})")),
        }
    };
    let Some(fields) = request.as_object_mut() else {
        return fail(
            StatusCode::BAD_REQUEST,
            "the request must be a JSON object".to_owned(),
        );
    };
    let selection = match Selection::from_json(fields.remove("select").as_ref()) {
        Ok(s) => s,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match apply_to(&state.terminals, &selection, &path, &request).await {
        Ok(outcomes) => {
            let results: Vec<Json> = outcomes
                .into_iter()
                .map(|o| match o.result {
                    Ok(answer) => json!({"index": o.index, "ok": answer}),
                    Err(error) => json!({"index": o.index, "error": error}),
                })
                .collect();
            axum::Json(json!({"results": results})).into_response()
        }
        Err(e @ FleetError::UnknownPath(_)) => fail(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => fail(StatusCode::BAD_REQUEST, e.to_string()),
    }
}
