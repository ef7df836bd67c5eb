//! One simulated terminal as a whole: the device (its tables and rules) plus everything the
//! simulator adds around it – the person in front of it, the scheduler clock, the callback
//! outbox, the fault plan, the enrollment slot and the journal. The HTTP layer, the control
//! API and the library handle all act on a [`Terminal`]; clones share it.

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::callbacks::Outbox;
use crate::device::Device;
use crate::display::Display;
use crate::enroll::Enroller;
use crate::faults::Faults;
use crate::journal::Journal;
use crate::person::Person;
use crate::power::PowerSwitch;
use crate::scheduler::Scheduler;

/// Everything one simulated terminal is made of.
#[derive(Debug, Clone)]
pub struct Terminal {
    /// The device: tables, photos, configuration, sessions, clock.
    pub device: Device,
    /// Every exchange and callback attempt.
    pub journal: Journal,
    /// The scripted person at the device.
    pub person: Person,
    /// The clock for waits.
    pub scheduler: Scheduler,
    /// Callbacks waiting for delivery.
    pub outbox: Outbox,
    /// Request-level faults.
    pub faults: Faults,
    /// Powers the terminal off and on (while it is serving).
    pub power: PowerSwitch,
    /// What a person in front of the terminal sees (screen, countdown, LED, events).
    pub display: Display,
    pub(crate) enroller: Enroller,
    pub(crate) online: crate::online::OnlineState,
    pub(crate) http: reqwest::Client,
    rng: std::sync::Arc<std::sync::Mutex<rand_chacha::ChaCha8Rng>>,
    pub(crate) tasks: TaskTracker,
    pub(crate) shutdown: CancellationToken,
}

impl Terminal {
    /// Assembles a terminal around `device`.
    pub fn new(device: Device, journal: Journal, person: Person, scheduler: Scheduler) -> Self {
        Terminal {
            device,
            journal,
            person,
            scheduler,
            outbox: Outbox::default(),
            faults: Faults::default(),
            power: PowerSwitch::default(),
            display: Display::default(),
            enroller: Enroller::default(),
            online: crate::online::OnlineState::default(),
            http: reqwest::Client::new(),
            rng: std::sync::Arc::new(std::sync::Mutex::new(rand::SeedableRng::seed_from_u64(
                0x0000_411e,
            ))),
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        }
    }

    /// Aborts a running enrollment; returns whether one was running.
    pub fn cancel_enrollment(&self) -> bool {
        self.enroller.cancel()
    }

    /// The `enroller_state` of the device.
    pub fn enroller_state(&self) -> serde_json::Value {
        self.enroller.state_json()
    }

    /// A presentation at the device outside enrollment: identified, decided (by the online
    /// server in online modes), logged, acted on and reported to the monitor.
    pub async fn identify(
        &self,
        presentation: &crate::person::Presentation,
        portal_id: i64,
    ) -> Result<crate::device::Logged, crate::device::DeviceError> {
        crate::online::identify(self, presentation, portal_id).await
    }

    /// Whether the terminal is deciding locally because its online server is lost.
    pub fn in_contingency(&self) -> bool {
        self.online.in_contingency()
    }

    pub(crate) fn rng(&self) -> std::sync::MutexGuard<'_, rand_chacha::ChaCha8Rng> {
        self.rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Relays opened (by `execute_actions`, a grant or an online server's actions): each
    /// stays open on the display for its relay time (docs/device-api.md §9.7).
    pub fn relays_opened(&self, records: &[crate::device::ActuationRecord]) {
        let opened: Vec<_> = records
            .iter()
            .map(|r| {
                (
                    crate::display::Relay::of(&r.actuation),
                    self.device.relay_time(&r.actuation),
                    r.time,
                )
            })
            .collect();
        self.display.opened(self.scheduler.now(), &opened);
    }

    /// The `doors_state.fcgi` reply: every door relay of the model
    /// (`{"doors": [{"id", "open"}]}`) or its Security Box (`{"sec_boxes": […]}`), open
    /// while its relay time runs.
    pub fn doors_state(&self) -> serde_json::Value {
        use crate::display::Relay;
        use crate::model::{DEFAULT_SEC_BOX_ID, DoorDrive};
        let now = self.scheduler.now();
        match self.device.model().door_drive() {
            DoorDrive::Relay { doors } => {
                let doors: Vec<_> = (1..=doors)
                    .map(|id| serde_json::json!({"id": id, "open": self.display.is_open(Relay::Door(id), now)}))
                    .collect();
                serde_json::json!({ "doors": doors })
            }
            DoorDrive::SecBox => {
                let open = self.display.is_open(Relay::SecBox(DEFAULT_SEC_BOX_ID), now);
                serde_json::json!({"sec_boxes": [{"id": DEFAULT_SEC_BOX_ID, "open": open}]})
            }
        }
    }

    /// Reboots: sessions and the running enrollment are lost, tables kept.
    pub fn reboot(&self) {
        self.enroller.cancel();
        self.device.reboot();
        self.display.rebooted();
    }
}
