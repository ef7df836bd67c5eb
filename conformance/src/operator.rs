//! Operators perform the physical steps of a case: holding a card to the reader, standing
//! in front of the camera, putting a finger on the sensor.
//!
//! - [`SimulatorOperator`] does it itself through the simulator's `/_sim/present` control
//!   API (over HTTP, so it works for an in-process simulator and for a separately started
//!   `acs-sim` alike).
//! - [`HumanOperator`] prompts on the console ("hold card 123,45678 to the reader now")
//!   and waits for the answer on standard input, with a timeout; `done` (or an empty line)
//!   means performed, `skip` means not performed. A confirmation alone proves nothing:
//!   the case then looks for evidence newer than the prompt on the terminal.
//! - [`Unattended`] performs nothing: cases that need a step end as "not run".

use std::io::BufRead as _;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Mutex;

use crate::outcome::Reason;

/// A physical step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Hold the card with this 64-bit value (facility code × 2^32 + number) to the reader.
    Card(u64),
    /// Stand in front of the camera as the person whose photo is this JPEG.
    Face(Vec<u8>),
    /// Type this PIN on the keypad.
    Pin(String),
}

impl Step {
    /// The prompt a person reads.
    pub fn prompt(&self) -> String {
        match self {
            Step::Card(v) => {
                let (fc, n) = (v >> 32, v & 0xFFFF_FFFF);
                format!("hold card {fc},{n} (value {v}) to the reader")
            }
            Step::Face(_) => {
                "stand in front of the camera (the test person of fixtures/images/face-a.jpg)"
                    .into()
            }
            Step::Pin(p) => format!("type PIN {p} on the keypad"),
        }
    }
}

/// When a step is performed: for identification at the door, or as the next capture of a
/// running enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// Present it at the door now.
    Identify,
    /// Keep it for the enrollment the terminal is (about to be) running.
    Enrollment,
}

/// Did the step happen?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Performed {
    /// Yes.
    Done,
    /// No (nobody there, declined, timed out), with why.
    NotPerformed(crate::outcome::Reason),
}

/// A boxed future (operators are used as trait objects).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Whoever performs physical steps.
pub trait Operator: Send + Sync + std::fmt::Debug {
    /// Performs `step`.
    fn perform<'a>(&'a self, step: &'a Step, moment: Moment) -> BoxFuture<'a, Performed>;
}

/// Performs steps through a simulator's control API.
#[derive(Debug, Clone)]
pub struct SimulatorOperator {
    base: String,
    http: reqwest::Client,
}

impl SimulatorOperator {
    /// For the simulator at `base` (`http://127.0.0.1:…`).
    pub fn new(base: &str) -> SimulatorOperator {
        SimulatorOperator {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }
}

impl Operator for SimulatorOperator {
    fn perform<'a>(&'a self, step: &'a Step, moment: Moment) -> BoxFuture<'a, Performed> {
        Box::pin(async move {
            use base64::Engine as _;
            let mut body = match step {
                Step::Card(v) => json!({"card": v}),
                Step::Face(jpeg) => {
                    json!({"face_jpeg": base64::engine::general_purpose::STANDARD.encode(jpeg)})
                }
                Step::Pin(p) => json!({"pin": p}),
            };
            if moment == Moment::Enrollment {
                body["queue"] = json!(true);
            }
            match self
                .http
                .post(format!("{}/_sim/present", self.base))
                .json(&body)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => Performed::Done,
                Ok(r) => Performed::NotPerformed(Reason::StepNotPerformed(format!(
                    "the simulator answered {}",
                    r.status()
                ))),
                Err(e) => Performed::NotPerformed(Reason::StepNotPerformed(format!(
                    "the simulator is unreachable: {e}"
                ))),
            }
        })
    }
}

/// Prompts a person on the console and reads the answer from standard input.
#[derive(Debug)]
pub struct HumanOperator {
    timeout: Duration,
    lines: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<String>>>,
}

impl HumanOperator {
    /// Waits at most `timeout` for each answer.
    pub fn new(timeout: Duration) -> HumanOperator {
        HumanOperator {
            timeout,
            lines: Mutex::new(None),
        }
    }

    async fn next_line(&self) -> Option<String> {
        let mut guard = self.lines.lock().await;
        let rx = guard.get_or_insert_with(|| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            std::thread::spawn(move || {
                let stdin = std::io::stdin();
                for line in stdin.lock().lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        });
        tokio::time::timeout(self.timeout, rx.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Operator for HumanOperator {
    fn perform<'a>(&'a self, step: &'a Step, moment: Moment) -> BoxFuture<'a, Performed> {
        Box::pin(async move {
            let when = match moment {
                Moment::Identify => "at the door",
                Moment::Enrollment => "for the enrollment about to start (when the terminal asks)",
            };
            eprintln!(
                ">>> {} {when} — then press Enter (or type 'skip'), {} s",
                step.prompt(),
                self.timeout.as_secs()
            );
            match self.next_line().await {
                None => Performed::NotPerformed(Reason::StepNotPerformed(format!(
                    "no answer from the operator within {} s",
                    self.timeout.as_secs()
                ))),
                Some(answer) if answer.trim().eq_ignore_ascii_case("skip") => {
                    Performed::NotPerformed(Reason::StepNotPerformed(
                        "the operator skipped the step".into(),
                    ))
                }
                Some(_) => Performed::Done,
            }
        })
    }
}

/// Performs nothing (`--unattended`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unattended;

impl Operator for Unattended {
    fn perform<'a>(&'a self, _step: &'a Step, _moment: Moment) -> BoxFuture<'a, Performed> {
        Box::pin(async { Performed::NotPerformed(Reason::NoOperator) })
    }
}
