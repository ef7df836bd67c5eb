//! Outbound callbacks: results the terminal POSTs to a server (async enrollment results
//! to the monitor or the online server). Handlers only queue a [`Callback`] in the
//! [`Outbox`]; one owned background task delivers them in order with a reused HTTP client,
//! a per-request timeout, retries per [`RetryPolicy`], and the callback faults of the fault
//! plan. Every attempt is recorded in the journal (biometric data redacted).
//!
//! The default policy is the firmware's (docs/device-api.md §6.2): three back-to-back attempts,
//! then the notification is dropped. A test can choose exponential backoff instead.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::journal::{CallbackAttempt, Journal};
use crate::scheduler::Scheduler;

/// One notification to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    /// Full URL, e.g. `http://10.0.0.5:8000/api/notifications/card`.
    pub url: String,
    /// The topic or command (`card`, `user_image`, `card_create` …), for the journal.
    pub topic: String,
    /// JSON body.
    pub body: Json,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Device-local time it was produced.
    pub time: i64,
}

/// A notification to the monitor (`http://<hostname>:<port>/<path>/<topic>`), or `None`
/// when no monitor is configured (empty `monitor.hostname`).
pub fn monitor_callback(
    device: &crate::device::Device,
    topic: &str,
    body: Json,
) -> Option<Callback> {
    let config = |k: &str| device.config_value("monitor", k).unwrap_or_default();
    let host = config("hostname");
    if host.is_empty() {
        return None;
    }
    let port = config("port");
    let authority = if port.is_empty() {
        host
    } else {
        format!("{host}:{port}")
    };
    let path = config("path");
    let path = path.trim_matches('/');
    let url = if path.is_empty() {
        format!("http://{authority}/{topic}")
    } else {
        format!("http://{authority}/{path}/{topic}")
    };
    Some(Callback {
        url,
        topic: topic.into(),
        body,
        timeout: timeout_ms(&config("request_timeout")),
        time: device.local_now(),
    })
}

/// A `request_timeout` configuration value (ms) as a duration, within sane bounds
/// (100 ms – 60 s; anything that is not a whole number is the factory 5 s).
pub fn timeout_ms(value: &str) -> Duration {
    crate::device::config::REQUEST_TIMEOUT.read(Some(value))
}

/// How waits between attempts grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// Attempts follow each other at once (the firmware's behaviour).
    Immediate,
    /// `initial`, then doubling, capped at `max`.
    Exponential {
        /// Wait after the first failure.
        initial: Duration,
        /// Largest wait.
        max: Duration,
    },
}

/// How often and how patiently a callback is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts (at least 1).
    pub attempts: u32,
    /// Waits between attempts.
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Backoff::Immediate,
        }
    }
}

/// The wait before attempt `failed + 1`, after `failed` failed attempts (pure).
pub fn backoff_delay(policy: &RetryPolicy, failed: u32) -> Duration {
    match policy.backoff {
        Backoff::Immediate => Duration::ZERO,
        Backoff::Exponential { initial, max } => {
            let factor = 2u32.saturating_pow(failed.saturating_sub(1));
            initial.saturating_mul(factor).min(max)
        }
    }
}

/// Callback faults: what happens to the next callbacks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackFaults {
    /// Drop this many callbacks without sending them.
    pub drop_next: u32,
    /// Send this many callbacks twice.
    pub duplicate_next: u32,
    /// Wait this long (scheduler time) before sending each callback.
    pub delay: Duration,
    /// Hold the next callback and send it after the one that follows.
    pub reorder_next: bool,
}

#[derive(Debug, Default)]
struct Settings {
    policy: RetryPolicy,
    faults: CallbackFaults,
}

/// The queue handlers push callbacks into; clones share it.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Callback>,
    rx: Arc<Mutex<Option<mpsc::UnboundedReceiver<Callback>>>>,
    settings: Arc<Mutex<Settings>>,
}

impl Default for Outbox {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Outbox {
            tx,
            rx: Arc::new(Mutex::new(Some(rx))),
            settings: Arc::default(),
        }
    }
}

impl Outbox {
    /// Queues a callback (never blocks, never fails while the simulator lives).
    pub fn send(&self, callback: Callback) {
        if self.tx.send(callback).is_err() {
            tracing::warn!("callback dropped: delivery task has stopped");
        }
    }

    /// Queues every callback of `callbacks` (none when the destination is not configured).
    pub fn send_all(&self, callbacks: impl IntoIterator<Item = Callback>) {
        callbacks.into_iter().for_each(|c| self.send(c));
    }

    fn settings(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the retry policy.
    pub fn set_policy(&self, policy: RetryPolicy) {
        self.settings().policy = policy;
    }

    /// The retry policy.
    pub fn policy(&self) -> RetryPolicy {
        self.settings().policy
    }

    /// Replaces the callback faults.
    pub fn set_faults(&self, faults: CallbackFaults) {
        self.settings().faults = faults;
    }

    /// The current callback faults.
    pub fn faults(&self) -> CallbackFaults {
        self.settings().faults.clone()
    }

    /// Takes the receiving end (once) for the delivery task.
    fn take_receiver(&self) -> Option<mpsc::UnboundedReceiver<Callback>> {
        self.rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Decides the fate of one callback according to the faults: how many copies to send.
    fn copies(&self) -> (u32, Duration, bool) {
        let mut s = self.settings();
        let f = &mut s.faults;
        let delay = f.delay;
        let reorder = std::mem::take(&mut f.reorder_next);
        if f.drop_next > 0 {
            f.drop_next -= 1;
            return (0, delay, reorder);
        }
        if f.duplicate_next > 0 {
            f.duplicate_next -= 1;
            return (2, delay, reorder);
        }
        (1, delay, reorder)
    }
}

/// Delivers callbacks until `cancel`.
pub async fn run(
    outbox: Outbox,
    journal: Journal,
    scheduler: Scheduler,
    cancel: CancellationToken,
) {
    let Some(mut rx) = outbox.take_receiver() else {
        return;
    };
    let client = match reqwest::Client::builder().build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the callback HTTP client");
            return;
        }
    };
    let mut held: Option<Callback> = None;
    loop {
        let next = tokio::select! {
            cb = rx.recv() => cb,
            () = cancel.cancelled() => None,
        };
        let Some(callback) = next else { break };
        let (copies, delay, reorder) = outbox.copies();
        if copies == 0 {
            journal.record_callback(CallbackAttempt::dropped(&callback));
            continue;
        }
        if reorder && held.is_none() {
            held = Some(callback);
            continue;
        }
        if !delay.is_zero() {
            scheduler.sleep(delay).await;
        }
        for _ in 0..copies {
            deliver(&client, &outbox, &journal, &scheduler, &callback).await;
        }
        if let Some(h) = held.take() {
            deliver(&client, &outbox, &journal, &scheduler, &h).await;
        }
    }
}

async fn deliver(
    client: &reqwest::Client,
    outbox: &Outbox,
    journal: &Journal,
    scheduler: &Scheduler,
    cb: &Callback,
) {
    let policy = outbox.policy();
    for attempt in 1..=policy.attempts.max(1) {
        let result = client
            .post(&cb.url)
            .timeout(cb.timeout)
            .json(&cb.body)
            .send()
            .await;
        let outcome = match &result {
            Ok(r) => Ok(r.status().as_u16()),
            Err(e) => Err(error_text(e)),
        };
        let ok = matches!(outcome, Ok(s) if (200..300).contains(&s));
        journal.record_callback(CallbackAttempt::sent(cb, attempt, outcome));
        if ok {
            return;
        }
        if attempt < policy.attempts {
            scheduler.sleep(backoff_delay(&policy, attempt)).await;
        }
    }
    tracing::warn!(topic = %cb.topic, url = %cb.url, "callback dropped after {} attempts", policy.attempts);
}

fn error_text(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connection refused".into()
    } else {
        "request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_policy_is_three_immediate_attempts() {
        let p = RetryPolicy::default();
        assert_eq!(p.attempts, 3);
        assert_eq!(backoff_delay(&p, 1), Duration::ZERO);
        assert_eq!(backoff_delay(&p, 2), Duration::ZERO);
    }

    #[test]
    fn exponential_backoff_doubles_and_caps() {
        let p = RetryPolicy {
            attempts: 8,
            backoff: Backoff::Exponential {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(1),
            },
        };
        let waits: Vec<u128> = (1..=6).map(|n| backoff_delay(&p, n).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff_delay(&p, 1000), Duration::from_secs(1));
    }

    #[test]
    fn faults_are_consumed_in_order() {
        let o = Outbox::default();
        o.set_faults(CallbackFaults {
            drop_next: 1,
            duplicate_next: 1,
            ..CallbackFaults::default()
        });
        assert_eq!(o.copies().0, 0);
        assert_eq!(o.copies().0, 2);
        assert_eq!(o.copies().0, 1);
    }
}
