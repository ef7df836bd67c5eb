//! The outbox's delivery task: hands every due message to its channel's
//! [`Sender`](super::Sender), records the outcome, and sleeps until the next message is due
//! or a write appends one.
//!
//! Retries ([`crate::retry::Backoff`]): a temporary failure is tried again after a delay
//! whose ceiling is 10 s, 20 s, 40 s … (doubling, at most one hour), each drawn between half
//! the ceiling and the ceiling so that messages that failed together are not retried
//! together, for up to [`MAX_ATTEMPTS`] attempts; then, or at once for a permanent failure,
//! the message is marked `failed`. A message is marked `sent` only after its sender
//! returned, so a crash in between delivers it again on restart (the senders make that
//! repeat harmless: see [`super::file`]).
//!
//! With several instances on one database each round claims the messages it takes
//! (`Store::due_messages`): no two instances deliver a message at once, and a message
//! claimed by an instance that died is due again when its claim ([`CLAIM`]) runs out.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::{SendError, Senders};
use crate::app::Core;
use crate::retry::Backoff;
use crate::store::{DeliveryOutcome, MessageRow};

/// Attempts before a message is given up.
pub const MAX_ATTEMPTS: u32 = 8;

/// The ceiling of the delay after a message's first failed attempt.
const FIRST_RETRY: Duration = Duration::from_secs(10);

/// The longest delay between two attempts.
const LONGEST_RETRY: Duration = Duration::from_secs(3600);

/// Messages taken from the store per round.
const BATCH: usize = 50;

/// How long a claimed message is this instance's to deliver: another instance takes it
/// over when this one dies (or hangs) with the claim.
pub const CLAIM: Duration = Duration::from_secs(120);

/// When to try again after `attempts` failed attempts (`None`: give up).
pub fn retry_at(now: Timestamp, attempts: u32) -> Option<Timestamp> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let delay = Backoff::new(FIRST_RETRY, LONGEST_RETRY).delay(attempts.saturating_sub(1));
    now.checked_add(SignedDuration::try_from(delay).ok()?).ok()
}

/// Delivers one message and returns the outcome to record.
async fn deliver(senders: &Senders, message: MessageRow, now: Timestamp) -> DeliveryOutcome {
    let Some(sender) = senders.of(message.message.channel).map(Arc::clone) else {
        return DeliveryOutcome::Failed {
            error: format!("no sender for {}", message.message.channel.as_str()),
            retry_at: None,
        };
    };
    let attempts = message.attempts + 1;
    let message_id = message.id;
    let result = tokio::task::spawn_blocking(move || sender.send(&message))
        .await
        .unwrap_or_else(|e| Err(SendError::Temporary(format!("sender task failed: {e}"))));
    match result {
        Ok(()) => DeliveryOutcome::Sent(now),
        Err(e) => {
            let retry = match e {
                SendError::Temporary(_) => retry_at(now, attempts),
                SendError::Permanent(_) => None,
            };
            tracing::warn!(message_id, attempts, error = %e, given_up = retry.is_none(), "message delivery failed");
            DeliveryOutcome::Failed {
                error: e.to_string(),
                retry_at: retry,
            }
        }
    }
}

/// Delivers every message due now; returns how many attempts were made.
pub async fn deliver_due(
    core: &Core,
    senders: &Senders,
) -> Result<usize, crate::store::StoreError> {
    let made;
    let senders = if senders.webhook.is_none() {
        made = senders.clone().with_webhooks_of(core);
        &made
    } else {
        senders
    };
    let mut attempts = 0;
    loop {
        let now = core.now();
        let store = core.store().clone();
        let claimer = core.instance_id();
        let due =
            tokio::task::spawn_blocking(move || store.due_messages(now, BATCH, &claimer, CLAIM))
                .await
                .unwrap_or_else(|e| {
                    Err(crate::store::StoreError::Corrupt(format!(
                        "outbox task failed: {e}"
                    )))
                })?;
        if due.is_empty() {
            return Ok(attempts);
        }
        for message in due {
            let id = message.id;
            let outcome = deliver(senders, message, now).await;
            let store = core.store().clone();
            tokio::task::spawn_blocking(move || store.record_delivery(id, &outcome))
                .await
                .unwrap_or_else(|e| {
                    Err(crate::store::StoreError::Corrupt(format!(
                        "outbox task failed: {e}"
                    )))
                })?;
            attempts += 1;
        }
    }
}

/// Runs the delivery task until the process ends.
pub async fn run(core: Core, senders: Senders) {
    let senders = senders.with_webhooks_of(&core);
    loop {
        if let Err(e) = deliver_due(&core, &senders).await {
            tracing::error!(error = %e, "outbox delivery failed; retrying in a minute");
        }
        let store = core.store().clone();
        let next = tokio::task::spawn_blocking(move || store.next_message_due())
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let next = next.unwrap_or_else(|| core.now() + SignedDuration::from_secs(60));
        tokio::select! {
            () = core.outbox_appended() => {}
            () = core.clock().sleep_until(next) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The delay `retry_at` chose after `attempts` failed attempts, from the epoch.
    fn delay_after(attempts: u32) -> SignedDuration {
        let t0 = Timestamp::UNIX_EPOCH;
        retry_at(t0, attempts).expect("retried").duration_since(t0)
    }

    #[test]
    fn retries_back_off_with_jitter_and_stop() {
        for (attempts, ceiling) in [(1, 10), (2, 20), (3, 40), (7, 640)] {
            let ceiling = SignedDuration::from_secs(ceiling);
            for _ in 0..50 {
                let delay = delay_after(attempts);
                assert!(
                    ceiling / 2 <= delay && delay <= ceiling,
                    "attempt {attempts}: {delay:?} outside [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
            }
        }
        assert_eq!(retry_at(Timestamp::UNIX_EPOCH, MAX_ATTEMPTS), None);
    }

    #[test]
    fn messages_that_failed_together_are_not_retried_together() {
        let delays: std::collections::BTreeSet<SignedDuration> =
            (0..100).map(|_| delay_after(1)).collect();
        assert!(delays.len() > 90, "{} distinct delays", delays.len());
    }
}
