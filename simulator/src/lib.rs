//! `acs-simulator`: an emulator of a Control iD access terminal's HTTP API, faithful enough
//! that a client written for real devices cannot tell the difference, plus what hardware
//! cannot give – inspectable state, a request journal and deterministic time.
//!
//! It is an independent second implementation of the terminal API (docs/device-api.md): it
//! shares no types with `acs-core`, and both are tested against `fixtures/protocol/`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use acs_simulator::{Model, Simulator};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let sim = Simulator::builder().model(Model::IdFace).spawn(listener).await?;
//! println!("terminal at {}", sim.base_url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Layout: [`device`] holds the terminal's rules (testable without HTTP), [`api`] turns HTTP
//! into device calls, [`wire`] reads request JSON with the firmware's error wording,
//! [`journal`] records exchanges with their secrets masked, [`persist`] keeps every
//! acknowledged change across restarts and crashes (`--state`), [`model`] describes what
//! each terminal model can do, [`display`] keeps what a person in front of the terminal
//! sees and hears (screen, doors, sounds), which the web panel (`/_sim/ui`) and
//! `/_sim/state` show.

pub mod api;
pub mod callbacks;
mod counter;
pub mod device;
pub mod display;
pub mod enroll;
pub mod faults;
pub mod fleet;
pub mod huge_pages;
pub mod identify;
pub mod journal;
pub mod model;
pub mod online;
mod panel;
pub mod persist;
pub mod person;
pub mod power;
pub mod push;
pub mod scheduler;
pub mod sink;
pub mod terminal;
pub mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use callbacks::{Backoff, CallbackFaults, RetryPolicy};
pub use device::clock::{ManualTime, TimeSource};
pub use device::{Device, DeviceError, DeviceSettings};
pub use faults::Override;
pub use fleet::{
    Fleet, FleetBuilder, FleetError, Manifest, RunningFleet, Selection,
    TERMINALS_PER_LOOPBACK_ADDRESS,
};
pub use journal::Journal;
pub use model::Model;
pub use persist::StateError;
pub use person::{Policy, Presentation};
pub use scheduler::{Scheduler, TimeMode};
pub use sink::CallbackSink;
pub use terminal::Terminal;

/// The simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// The listener's address could not be read.
    #[error("listener: {0}")]
    Listener(#[source] std::io::Error),
    /// The state file could not be loaded.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Configures a simulated terminal.
#[derive(Debug, Clone, Default)]
pub struct SimulatorBuilder {
    settings: DeviceSettings,
    state_file: Option<PathBuf>,
    journal_capacity: Option<usize>,
    time_mode: Option<TimeMode>,
    policy: Policy,
    retry: RetryPolicy,
    scheduler: Option<Scheduler>,
    http: Option<reqwest::Client>,
}

impl SimulatorBuilder {
    /// The model to emulate (default iDFace).
    pub fn model(mut self, model: Model) -> Self {
        self.settings.model = model;
        self
    }

    /// Web/API credentials (default `admin` / `admin`).
    pub fn credentials(mut self, login: impl Into<String>, password: impl Into<String>) -> Self {
        self.settings.login = login.into();
        self.settings.password = password.into();
        self
    }

    /// Seed for the device identity, session tokens and salts (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.settings.seed = seed;
        self
    }

    /// Where "now" comes from (default the host clock).
    pub fn time(mut self, source: TimeSource) -> Self {
        self.settings.time = source;
        self
    }

    /// Initial offset of the device's local time from UTC, in seconds (default 0).
    pub fn utc_offset(mut self, seconds: i64) -> Self {
        self.settings.utc_offset = seconds;
        self
    }

    /// Error text for calls without a valid session; `{command}` is replaced by the
    /// command name (default `Invalid access level for command {command}`).
    pub fn session_error_text(mut self, text: impl Into<String>) -> Self {
        self.settings.session_error = text.into();
        self
    }

    /// Persist tables, photos and configuration in `path` and its change log `path.wal`
    /// (loaded now if they exist); once spawned, every change is on disk before the request
    /// that made it is answered.
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }

    /// How waits pass: real time scaled (default 1.0) or manual (tests advance the clock).
    pub fn time_mode(mut self, mode: TimeMode) -> Self {
        self.time_mode = Some(mode);
        self
    }

    /// What the person does when nothing is queued (default cooperative).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// How callbacks are retried (default: the firmware's three immediate attempts).
    pub fn callback_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Shares `scheduler` with other terminals (a fleet on one manual clock); overrides
    /// [`Self::time_mode`].
    pub fn shared_scheduler(mut self, scheduler: Scheduler) -> Self {
        self.scheduler = Some(scheduler);
        self
    }

    /// Sends callbacks and online requests with `client` (a fleet shares one connection
    /// pool instead of building a client per terminal).
    pub(crate) fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// How many exchanges the journal keeps (default 10,000).
    pub fn journal_capacity(mut self, capacity: usize) -> Self {
        self.journal_capacity = Some(capacity);
        self
    }

    /// Creates the device (loading the state file, if any) without serving it.
    pub fn build(self) -> Result<Simulator, SimulatorError> {
        let seed = self.settings.seed;
        let device = Device::new(self.settings);
        let mut last_change = 0;
        if let Some(path) = &self.state_file {
            last_change = persist::load(&device, path)?.unwrap_or(0);
        }
        let journal = self
            .journal_capacity
            .map_or_else(Journal::default, Journal::with_capacity);
        let person = person::Person::new(seed);
        person.set_policy(self.policy);
        let scheduler = self
            .scheduler
            .unwrap_or_else(|| Scheduler::new(self.time_mode.unwrap_or(TimeMode::Scaled(1.0))));
        let mut terminal = Terminal::new(device, journal, person, scheduler);
        if let Some(client) = self.http {
            terminal.http = client;
        }
        terminal.outbox.set_policy(self.retry);
        Ok(Simulator {
            terminal,
            state_file: self.state_file,
            last_change,
        })
    }

    /// Creates the device and serves it on `listener`.
    pub async fn spawn(self, listener: TcpListener) -> Result<RunningSimulator, SimulatorError> {
        self.build()?.spawn(listener).await
    }
}

/// A simulated terminal that is not yet serving: useful to drive the router directly.
#[derive(Debug)]
pub struct Simulator {
    terminal: Terminal,
    state_file: Option<PathBuf>,
    /// Number of the last change the loaded state file holds.
    last_change: u64,
}

impl Simulator {
    /// Starts configuring a simulator.
    pub fn builder() -> SimulatorBuilder {
        SimulatorBuilder::default()
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.terminal.device
    }

    /// The request journal.
    pub fn journal(&self) -> &Journal {
        &self.terminal.journal
    }

    /// The whole terminal (person, scheduler, faults, outbox).
    pub fn terminal(&self) -> &Terminal {
        &self.terminal
    }

    /// The device's HTTP router (for in-process tests without sockets). Asynchronous
    /// enrollment works in-process too; callbacks are only delivered once spawned.
    pub fn router(&self) -> axum::Router {
        api::router(self.terminal.clone())
    }

    /// Serves the device on `listener` until shut down.
    pub async fn spawn(self, listener: TcpListener) -> Result<RunningSimulator, SimulatorError> {
        let addr = listener.local_addr().map_err(SimulatorError::Listener)?;
        let terminal = self.terminal;
        terminal.device.set_listen_addr(addr);
        let cancel = terminal.shutdown.clone();
        let tracker = terminal.tasks.clone();
        tracker.spawn(power::serve(
            terminal.clone(),
            listener,
            addr,
            cancel.clone(),
        ));
        tracker.spawn(callbacks::run(
            terminal.outbox.clone(),
            terminal.journal.clone(),
            terminal.scheduler.clone(),
            cancel.clone(),
        ));
        if let Some(path) = self.state_file {
            // From here on every change is on disk before the request that made it is
            // answered (docs/device-api.md §11.4).
            terminal.device.keep_change_log(self.last_change);
            tracker.spawn(persist::run(terminal.device.clone(), path, cancel.clone()));
        }
        tracing::debug!(%addr, model = %terminal.device.model(), "simulated terminal listening");
        Ok(RunningSimulator {
            addr,
            terminal,
            cancel,
            tracker,
        })
    }
}

/// A simulated terminal serving HTTP. Dropping it stops the server (without waiting);
/// [`RunningSimulator::shutdown`] stops it and waits until the state file is written.
#[derive(Debug)]
pub struct RunningSimulator {
    addr: SocketAddr,
    terminal: Terminal,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl RunningSimulator {
    /// `http://127.0.0.1:<port>` – where clients reach the terminal.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The device, to seed or inspect its state.
    pub fn device(&self) -> &Device {
        &self.terminal.device
    }

    /// The request journal.
    pub fn journal(&self) -> &Journal {
        &self.terminal.journal
    }

    /// The whole terminal (person, scheduler, faults, outbox, power).
    pub fn terminal(&self) -> &Terminal {
        &self.terminal
    }

    /// Queues something the person will present to the next capture (remote enrollment).
    pub fn present(&self, presentation: Presentation) {
        self.terminal.person.present(presentation);
    }

    /// Presents something for identification at portal 1 (outside enrollment) and returns
    /// the decision with the access-log id.
    pub async fn identify(
        &self,
        presentation: &Presentation,
    ) -> Result<device::Logged, DeviceError> {
        self.terminal
            .identify(presentation, identify::DEFAULT_PORTAL)
            .await
    }

    /// Sets what the person does when nothing is queued.
    pub fn set_policy(&self, policy: Policy) {
        self.terminal.person.set_policy(policy);
    }

    /// The scheduler clock (advance it in manual mode).
    pub fn scheduler(&self) -> &Scheduler {
        &self.terminal.scheduler
    }

    /// Request-level faults.
    pub fn faults(&self) -> &faults::Faults {
        &self.terminal.faults
    }

    /// Powers off (connections refused, volatile state lost) until [`Self::power_on`].
    pub async fn power_off(&self) -> bool {
        self.terminal.power.off(None).await
    }

    /// Powers on again on the same address.
    pub async fn power_on(&self) -> bool {
        self.terminal.power.on().await
    }

    /// Stops serving, cancels enrollments, finishes in-flight requests and writes the
    /// state file one last time.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
