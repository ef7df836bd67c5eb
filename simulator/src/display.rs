//! The terminal's front as a person standing in front of it sees and hears it: the screen
//! text (and a message put there by `message_to_screen`), the enrollment countdown, the
//! status LED, whether it is powered, which door relays or Security Boxes are open, the
//! last actuation, the sounds it made (`buzzer_buzz`, beeps, voice messages) and the last
//! access decisions.
//!
//! Remote enrollment, identification and the screen, buzzer and door commands update it;
//! the power loop switches it on and off. It remembers what the hardware would show, and
//! answers `doors_state` (docs/device-api.md §9.7). Every change bumps a revision that
//! views (the web panel's live stream) watch.
//!
//! Everything that ends by itself – the countdown, a message with a timeout, an open relay
//! – is kept as the scheduler instant it ends at, so a view computes it from the scheduler
//! clock: in manual time a relay closes only when a test advances the clock past its relay
//! time, exactly like the enrollment countdown.

use std::collections::{BTreeMap, VecDeque};
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

/// How many sounds the display remembers.
pub const RECENT_SOUNDS: usize = 20;

/// A relay that opens a door: the internal relay of door N, or a Security Box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Relay {
    /// The internal relay of door N (1-based).
    Door(u8),
    /// The Security Box with this id.
    SecBox(i64),
}

impl Relay {
    /// The relay an actuation drives.
    pub fn of(actuation: &Actuation) -> Relay {
        match *actuation {
            Actuation::Door { door } => Relay::Door(door),
            Actuation::SecBox { id, .. } => Relay::SecBox(id),
        }
    }

    /// `door 1` or `sec_box 65793`.
    pub fn what(self) -> String {
        match self {
            Relay::Door(door) => format!("door {door}"),
            Relay::SecBox(id) => format!("sec_box {id}"),
        }
    }
}

/// A sound the terminal made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sound {
    /// `buzzer_buzz.fcgi`.
    Buzz {
        /// Device-local epoch second.
        time: i64,
        /// Hz.
        frequency: i64,
        /// Percent.
        duty_cycle: i64,
        /// How long it sounded, ms.
        duration_ms: u64,
    },
    /// The beep after an identification (`general.beep_enabled`).
    Beep {
        /// Device-local epoch second.
        time: i64,
    },
    /// A voice message after a decision (iDFace `buzzer.audio_message_*`).
    Voice {
        /// Device-local epoch second.
        time: i64,
        /// `authorized`, `not_authorized` or `not_identified`.
        message: &'static str,
        /// Which recording played: the key's value (`default`, `custom`, …).
        audio: String,
        /// `buzzer.audio_message_volume_gain` when it played.
        volume_gain: String,
    },
}

impl Sound {
    /// The sound as JSON (`/_sim/state`, the panel).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Sound::Buzz {
                time,
                frequency,
                duty_cycle,
                duration_ms,
            } => json!({"time": time, "kind": "buzz", "frequency": frequency,
                        "duty_cycle": duty_cycle, "timeout": duration_ms}),
            Sound::Beep { time } => json!({"time": time, "kind": "beep"}),
            Sound::Voice {
                time,
                message,
                audio,
                volume_gain,
            } => json!({"time": time, "kind": "voice", "message": message, "audio": audio,
                        "volume_gain": volume_gain}),
        }
    }
}

/// A text put on the screen by `message_to_screen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenMessage {
    /// The text.
    pub text: String,
    /// The timeout asked for, ms (0: until replaced or cleared).
    pub timeout_ms: u64,
    /// Scheduler instant it disappears at (`None`: until replaced or cleared).
    until: Option<Duration>,
}

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
    /// The screen text (a `message_to_screen` message while it lasts).
    pub text: String,
    /// The `message_to_screen` message on the screen, while it lasts.
    pub message: Option<ScreenMessage>,
    /// Relays open now (energised for their relay time), in order.
    pub open: Vec<Relay>,
    /// The last sounds, newest first.
    pub sounds: Vec<Sound>,
    /// Number of sounds since the simulator started.
    pub sound_count: u64,
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
    message: Option<ScreenMessage>,
    enrolling: Option<EnrollKind>,
    countdown_until: Option<Duration>,
    led: Led,
    last_opened: Option<OpenedShown>,
    opened_count: usize,
    /// Each relay that opened, with the scheduler instant it closes at.
    open_until: BTreeMap<Relay, Duration>,
    events: VecDeque<AccessShown>,
    sounds: VecDeque<Sound>,
    sound_count: u64,
}

impl Default for State {
    fn default() -> Self {
        State {
            powered: true,
            text: IDLE_TEXT.to_owned(),
            message: None,
            enrolling: None,
            countdown_until: None,
            led: Led::Off,
            last_opened: None,
            opened_count: 0,
            open_until: BTreeMap::new(),
            events: VecDeque::new(),
            sounds: VecDeque::new(),
            sound_count: 0,
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
    kind.name()
}

/// The screen text when an enrollment of `kind` begins without a `message` of its own.
pub fn enrollment_prompt(kind: EnrollKind) -> &'static str {
    match kind {
        EnrollKind::Face => "Beginning face enrollment, please stand in front of the camera",
        EnrollKind::Card => "Beginning card enrollment, please present your card",
        EnrollKind::Biometry => "Beginning fingerprint enrollment, please place your finger",
        EnrollKind::Pin => "Beginning PIN enrollment, please type your PIN",
        EnrollKind::Password => "Beginning password enrollment, please type your password",
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
            s.message = None;
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
            EnrollKind::Pin => "PIN",
            EnrollKind::Password => "Password",
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

    /// The screen text of a decision when no custom message is configured.
    pub fn decision_text(logged: &Logged) -> &'static str {
        match logged.decision.event {
            _ if logged.decision.granted() => "Access granted",
            crate::device::decide::event::NOT_IDENTIFIED => "User not identified",
            crate::online::NO_RESPONSE => "No answer from the server",
            _ => "Access denied",
        }
    }

    /// A presentation was decided and logged: the screen shows `text` (or the default
    /// text of the outcome) and the LED the outcome, and the decision joins the recent
    /// events. What opened is reported separately ([`Display::opened`]).
    pub fn access_decided(&self, logged: &Logged, portal_id: i64, text: Option<&str>) {
        let granted = logged.decision.granted();
        let text = text.unwrap_or(Display::decision_text(logged));
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
                s.message = None;
                s.led = if granted { Led::Green } else { Led::Red };
            }
            if s.events.len() == RECENT_EVENTS {
                s.events.pop_back();
            }
            s.events.push_front(shown);
        });
    }

    /// Relays opened at scheduler time `now`, each `(relay, relay time, device-local time)`:
    /// each stays open until its relay time has passed (an opening while open restarts
    /// it), and the last one is remembered.
    pub fn opened(&self, now: Duration, opened: &[(Relay, Duration, i64)]) {
        if opened.is_empty() {
            return;
        }
        self.change(|s| {
            for &(relay, hold, time) in opened {
                s.open_until.insert(relay, now.saturating_add(hold));
                s.opened_count += 1;
                s.last_opened = Some(OpenedShown {
                    time,
                    what: relay.what(),
                });
            }
        });
    }

    /// Whether `relay` is open at scheduler time `now`.
    pub fn is_open(&self, relay: Relay, now: Duration) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .open_until
            .get(&relay)
            .is_some_and(|until| now < *until)
    }

    /// `message_to_screen`: shows `text` until scheduler time `until` (`None`: until
    /// replaced or cleared); an empty text clears the message.
    pub fn show_message(&self, text: &str, timeout_ms: u64, until: Option<Duration>) {
        self.change(|s| {
            s.message = (!text.is_empty()).then(|| ScreenMessage {
                text: text.to_owned(),
                timeout_ms,
                until,
            });
        });
    }

    /// Records a sound.
    pub fn sounded(&self, sound: Sound) {
        self.change(|s| {
            if s.sounds.len() == RECENT_SOUNDS {
                s.sounds.pop_back();
            }
            s.sounds.push_front(sound);
            s.sound_count += 1;
        });
    }

    /// The next scheduler instant after `now` at which something shown ends by itself
    /// (a message times out, a relay closes), for views that refresh on their own.
    pub fn next_change(&self, now: Duration) -> Option<Duration> {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.open_until
            .values()
            .copied()
            .chain(s.message.as_ref().and_then(|m| m.until))
            .filter(|t| *t > now)
            .min()
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
        let message = s
            .message
            .clone()
            .filter(|m| m.until.is_none_or(|until| now < until));
        DisplayView {
            powered: s.powered,
            text: message
                .as_ref()
                .map_or_else(|| s.text.clone(), |m| m.text.clone()),
            message,
            open: s
                .open_until
                .iter()
                .filter(|(_, until)| now < **until)
                .map(|(relay, _)| *relay)
                .collect(),
            sounds: s.sounds.iter().cloned().collect(),
            sound_count: s.sound_count,
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
    /// The screen restarts and every relay drops (sounds and events are history).
    fn restart(&mut self) {
        self.text = IDLE_TEXT.to_owned();
        self.message = None;
        self.open_until.clear();
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
    fn relays_close_after_their_relay_time_and_messages_time_out() {
        let d = Display::default();
        let door = Relay::Door(1);
        d.opened(
            Duration::from_secs(10),
            &[(door, Duration::from_secs(3), 1000)],
        );
        assert!(d.is_open(door, Duration::from_secs(12)));
        assert!(!d.is_open(door, Duration::from_secs(13)));
        assert_eq!(d.view(Duration::from_secs(11)).open, vec![door]);
        assert_eq!(
            d.next_change(Duration::from_secs(11)),
            Some(Duration::from_secs(13))
        );
        d.show_message("Hello", 2000, Some(Duration::from_secs(20)));
        let v = d.view(Duration::from_secs(19));
        assert_eq!(
            (v.text.as_str(), v.message.map(|m| m.timeout_ms)),
            ("Hello", Some(2000))
        );
        assert_eq!(d.view(Duration::from_secs(20)).text, IDLE_TEXT);
        d.show_message("Stay", 0, None);
        assert_eq!(d.view(Duration::MAX).text, "Stay");
        d.show_message("", 0, None);
        assert_eq!(d.view(Duration::ZERO).text, IDLE_TEXT);
        d.opened(Duration::ZERO, &[(door, Duration::from_secs(3), 1000)]);
        d.rebooted();
        assert!(!d.is_open(door, Duration::ZERO), "a reboot drops the relay");
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
