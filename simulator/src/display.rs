//! The terminal's front as a person standing in front of it sees it: the screen text, the
//! enrollment countdown, the status LED, whether it is powered, the last door or Security
//! Box actuation and the last access decisions.
//!
//! Remote enrollment and identification update it; the power loop switches it on and off.
//! It never changes what the device answers on its HTTP API: it only remembers what the
//! hardware would show. Every change bumps a revision that views (the web panel's live
//! stream) watch.
//!
//! The countdown is kept as the scheduler instant it ends at, so a view computes what is
//! left from the scheduler clock – in manual time the countdown moves only when a test
//! advances the clock, exactly like the enrollment it shows.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::device::Logged;
use crate::device::actions::Actuation;
use crate::enroll::EnrollKind;

/// What the screen shows when nothing is happening.
pub const IDLE_TEXT: &str = "Present your credential";

/// How many access decisions the display remembers.
pub const RECENT_EVENTS: usize = 20;

/// The colour of the status LED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Led {
    /// Dark: nothing decided yet (or since the last reboot).
    #[default]
    Off,
    /// Access granted or enrollment succeeded.
    Green,
    /// Access denied or enrollment failed.
    Red,
}

impl Led {
    /// `off`, `green` or `red`.
    pub fn name(self) -> &'static str {
        match self {
            Led::Off => "off",
            Led::Green => "green",
            Led::Red => "red",
        }
    }
}

/// One access decision as the terminal shows and logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessShown {
    /// Id of the `access_logs` row.
    pub log_id: i64,
    /// Device-local epoch second of the decision.
    pub time: i64,
    /// `access_logs.event` (7 granted, 6 denied, 3 not identified…).
    pub event: i64,
    /// Whether the door opened.
    pub granted: bool,
    /// Why (the decision's reason name).
    pub reason: String,
    /// The identified user, if any.
    pub user_id: Option<i64>,
    /// The portal the credential was presented at.
    pub portal_id: i64,
}

/// A door relay or Security Box that opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedShown {
    /// Device-local epoch second.
    pub time: i64,
    /// `door 1` or `sec_box 65793`.
    pub what: String,
}

/// Everything the display shows at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayView {
    /// Whether the terminal is powered.
    pub powered: bool,
    /// The screen text.
    pub text: String,
    /// What is being enrolled (`card`, `face`, `biometry`), while an enrollment runs.
    pub enrolling: Option<&'static str>,
    /// Whole seconds left on the enrollment countdown (rounded up), while it runs.
    pub countdown: Option<u64>,
    /// The status LED.
    pub led: Led,
    /// The last actuation since the last reboot.
    pub last_opened: Option<OpenedShown>,
    /// Number of actuations since the last reboot.
    pub opened_count: usize,
    /// The last decisions, newest first.
    pub events: Vec<AccessShown>,
}

#[derive(Debug)]
struct State {
    powered: bool,
    text: String,
    enrolling: Option<EnrollKind>,
    countdown_until: Option<Duration>,
    led: Led,
    last_opened: Option<OpenedShown>,
    opened_count: usize,
    events: VecDeque<AccessShown>,
}

impl Default for State {
    fn default() -> Self {
        State {
            powered: true,
            text: IDLE_TEXT.to_owned(),
            enrolling: None,
            countdown_until: None,
            led: Led::Off,
            last_opened: None,
            opened_count: 0,
            events: VecDeque::new(),
        }
    }
}

/// The terminal's visible state; clones share it.
#[derive(Debug, Clone)]
pub struct Display {
    state: Arc<Mutex<State>>,
    revision: Arc<watch::Sender<u64>>,
}

impl Default for Display {
    fn default() -> Self {
        Display {
            state: Arc::default(),
            revision: Arc::new(watch::channel(0).0),
        }
    }
}

fn kind_name(kind: EnrollKind) -> &'static str {
    match kind {
        EnrollKind::Card => "card",
        EnrollKind::Face => "face",
        EnrollKind::Biometry => "biometry",
    }
}

/// The screen text when an enrollment of `kind` begins without a `message` of its own.
pub fn enrollment_prompt(kind: EnrollKind) -> &'static str {
    match kind {
        EnrollKind::Face => "Beginning face enrollment, please stand in front of the camera",
        EnrollKind::Card => "Beginning card enrollment, please present your card",
        EnrollKind::Biometry => "Beginning fingerprint enrollment, please place your finger",
    }
}

impl Display {
    /// Applies `f` to the state and tells the watchers.
    fn change(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
        self.touch();
    }

    /// Tells the watchers that something they show changed elsewhere (contingency…).
    pub fn touch(&self) {
        self.revision.send_modify(|r| *r += 1);
    }

    /// A receiver that sees the revision move on every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// An enrollment of `kind` began: the screen shows `message` (or the default prompt)
    /// and, for a face, the countdown that ends at scheduler time `countdown_until`.
    pub fn enrollment_started(
        &self,
        kind: EnrollKind,
        message: Option<&str>,
        countdown_until: Option<Duration>,
    ) {
        let text = message
            .filter(|m| !m.trim().is_empty())
            .unwrap_or(enrollment_prompt(kind))
            .to_owned();
        self.change(|s| {
            s.text = text;
            s.enrolling = Some(kind);
            s.countdown_until = countdown_until;
            s.led = Led::Off;
        });
    }

    /// The enrollment ended: captured (green) or failed with the device's `error` code.
    pub fn enrollment_finished(&self, kind: EnrollKind, error: Option<&str>) {
        let what = match kind {
            EnrollKind::Face => "Face",
            EnrollKind::Card => "Card",
            EnrollKind::Biometry => "Fingerprint",
        };
        let (text, led) = match error {
            None => (format!("{what} enrolled"), Led::Green),
            Some("CANCELED") => ("Enrollment cancelled".to_owned(), Led::Red),
            Some(code) => (format!("Enrollment failed: {code}"), Led::Red),
        };
        self.change(|s| {
            s.text = text;
            s.enrolling = None;
            s.countdown_until = None;
            s.led = led;
        });
    }

    /// A presentation was decided and logged: the screen and the LED show the outcome,
    /// the decision joins the recent events and what opened is remembered.
    pub fn access_decided(&self, logged: &Logged, portal_id: i64) {
        let granted = logged.decision.granted();
        let text = match logged.decision.event {
            _ if granted => "Access granted",
            crate::device::decide::event::NOT_IDENTIFIED => "User not identified",
            crate::online::NO_RESPONSE => "No answer from the server",
            _ => "Access denied",
        };
        let shown = AccessShown {
            log_id: logged.log_id,
            time: logged
                .log
                .get("time")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or_default(),
            event: logged.decision.event,
            granted,
            reason: logged.decision.reason.name().to_owned(),
            user_id: logged.decision.user_id,
            portal_id,
        };
        self.change(|s| {
            // A decision during an enrollment does not hide the enrollment's screen.
            if s.enrolling.is_none() {
                s.text = text.to_owned();
                s.led = if granted { Led::Green } else { Led::Red };
            }
            if s.events.len() == RECENT_EVENTS {
                s.events.pop_back();
            }
            s.events.push_front(shown);
            for record in &logged.actuations {
                s.opened_count += 1;
                s.last_opened = Some(OpenedShown {
                    time: record.time,
                    what: match record.actuation {
                        Actuation::Door { door } => format!("door {door}"),
                        Actuation::SecBox { id, .. } => format!("sec_box {id}"),
                    },
                });
            }
        });
    }

    /// Power went off (`false`) or came back (`true`); either way the screen restarts.
    pub fn set_powered(&self, powered: bool) {
        self.change(|s| {
            s.powered = powered;
            s.restart();
        });
    }

    /// The terminal rebooted: the screen restarts, the LED goes dark.
    pub fn rebooted(&self) {
        self.change(State::restart);
    }

    /// Whether the terminal is powered.
    pub fn powered(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .powered
    }

    /// What the display shows when the scheduler clock reads `now`.
    pub fn view(&self, now: Duration) -> DisplayView {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let countdown = s.countdown_until.map(|until| {
            let left = until.saturating_sub(now);
            left.as_secs() + u64::from(left.subsec_nanos() > 0)
        });
        DisplayView {
            powered: s.powered,
            text: s.text.clone(),
            enrolling: s.enrolling.map(kind_name),
            countdown,
            led: s.led,
            last_opened: s.last_opened.clone(),
            opened_count: s.opened_count,
            events: s.events.iter().cloned().collect(),
        }
    }

    /// The scheduler instant the running countdown ends at, if one runs.
    pub fn countdown_until(&self) -> Option<Duration> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .countdown_until
    }
}

impl State {
    fn restart(&mut self) {
        self.text = IDLE_TEXT.to_owned();
        self.enrolling = None;
        self.countdown_until = None;
        self.led = Led::Off;
        self.last_opened = None;
        self.opened_count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdown_is_rounded_up_and_stops_at_zero() {
        let d = Display::default();
        d.enrollment_started(EnrollKind::Face, None, Some(Duration::from_secs(5)));
        let v = d.view(Duration::from_millis(1500));
        assert_eq!(v.countdown, Some(4));
        assert_eq!(v.enrolling, Some("face"));
        assert!(v.text.starts_with("Beginning face enrollment"));
        assert_eq!(d.view(Duration::from_secs(9)).countdown, Some(0));
        d.enrollment_finished(EnrollKind::Face, None);
        let v = d.view(Duration::from_secs(9));
        assert_eq!(
            (v.countdown, v.led, v.text.as_str()),
            (None, Led::Green, "Face enrolled")
        );
    }

    #[test]
    fn failures_are_red_and_a_reboot_clears_the_screen() {
        let d = Display::default();
        let mut rx = d.subscribe();
        d.enrollment_started(EnrollKind::Card, Some("Hold your badge"), None);
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        assert_eq!(d.view(Duration::ZERO).text, "Hold your badge");
        d.enrollment_finished(EnrollKind::Card, Some("TIMEOUT"));
        assert!(rx.has_changed().unwrap());
        let v = d.view(Duration::ZERO);
        assert_eq!(
            (v.led, v.text.as_str()),
            (Led::Red, "Enrollment failed: TIMEOUT")
        );
        d.rebooted();
        let v = d.view(Duration::ZERO);
        assert_eq!((v.led, v.text.as_str()), (Led::Off, IDLE_TEXT));
    }
}
