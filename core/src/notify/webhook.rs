//! The webhook sender: posts an outbox message of [`Channel::Webhook`] to its endpoint,
//! signed ([`super::signature`]), and records the attempt in the endpoint's delivery log
//! (status, error, duration) – which disables the endpoint after repeated failure
//! (`Core::record_webhook_delivery`).
//!
//! A 2xx answer within [`TIMEOUT`] is a delivery; anything else (another status, a refused
//! connection, a timeout) is a temporary failure the outbox retries with its backoff, the
//! same event id on every attempt. Redirects are not followed. A message for an endpoint
//! deleted or disabled meanwhile fails at once, without a request.
//!
//! [`Channel::Webhook`]: crate::store::Channel::Webhook

use std::time::{Duration, Instant};

use super::signature::{self, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::{SendError, Sender};
use crate::app::Core;
use crate::store::{AttemptOutcome, MessageRow, NewDelivery};

/// How long a receiver has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The longest error text kept in the delivery log.
const MAX_ERROR: usize = 200;

/// Posts webhook messages for the core's tenants.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    core: Core,
    client: reqwest::Client,
}

impl WebhookSender {
    /// A sender for `core`'s endpoints.
    pub fn new(core: Core) -> Result<WebhookSender, SendError> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("acs-core-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SendError::Temporary(format!("HTTP client: {e}")))?;
        Ok(WebhookSender { core, client })
    }

    /// Makes one attempt and records it.
    async fn attempt(&self, message: &MessageRow) -> Result<(), SendError> {
        let tenant = message.tenant_id;
        let endpoint_id: u64 = message.message.recipient.parse().map_err(|_| {
            SendError::Permanent(format!(
                "'{}' is not an endpoint id",
                message.message.recipient
            ))
        })?;
        let store = self.core.store().clone();
        let endpoint = tokio::task::spawn_blocking(move || store.webhooks(tenant))
            .await
            .map_err(|e| SendError::Temporary(format!("store task failed: {e}")))?
            .map_err(|e| SendError::Temporary(format!("store: {e}")))?
            .into_iter()
            .find(|w| w.id == endpoint_id)
            .ok_or_else(|| SendError::Permanent("the endpoint was deleted".to_owned()))?;
        if !endpoint.enabled {
            return Err(SendError::Permanent("the endpoint is disabled".to_owned()));
        }
        let body = message.message.body.clone();
        let event_id = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|b| b["id"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let now = self.core.now();
        let timestamp = now.as_second();
        let mut secrets = vec![endpoint.secret.as_str()];
        if let Some((previous, until)) = &endpoint.previous_secret
            && *until > now
        {
            secrets.push(previous);
        }
        let signature = signature::header(&secrets, timestamp, body.as_bytes());
        let started = Instant::now();
        let answer = self
            .client
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header(ID_HEADER, &event_id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status_code, error) = match answer {
            Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None),
            Ok(r) => (
                Some(r.status().as_u16()),
                Some(format!("the receiver answered {}", r.status())),
            ),
            Err(e) => {
                let e = e.without_url();
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "could not connect"
                } else {
                    "request failed"
                };
                (None, Some(format!("{kind}: {e}")))
            }
        };
        let error = error.map(|e| e.chars().take(MAX_ERROR).collect::<String>());
        let attempt = message.attempts + 1;
        let outcome = match &error {
            None => AttemptOutcome::Delivered,
            Some(_) if attempt >= super::delivery::MAX_ATTEMPTS => AttemptOutcome::GivenUp,
            Some(_) => AttemptOutcome::Failed,
        };
        tracing::debug!(
            message_id = message.id,
            webhook_id = endpoint_id,
            attempt,
            outcome = outcome.as_str(),
            duration_ms,
            "webhook attempt"
        );
        let delivery = NewDelivery {
            webhook_id: endpoint_id,
            message_id: message.id,
            event_id,
            event_type: message.message.subject.clone(),
            attempt,
            attempted_at: now,
            status_code,
            error: error.clone(),
            duration_ms,
            outcome,
        };
        self.core
            .record_webhook_delivery(tenant, delivery)
            .await
            .map_err(|e| SendError::Temporary(format!("recording the attempt: {}", e.detail)))?;
        match error {
            None => Ok(()),
            Some(e) => Err(SendError::Temporary(e)),
        }
    }
}

impl Sender for WebhookSender {
    fn send(&self, message: &MessageRow) -> Result<(), SendError> {
        // Called on a blocking thread of the runtime: the request runs on the runtime.
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| SendError::Temporary(format!("no runtime: {e}")))?;
        runtime.block_on(self.attempt(message))
    }
}
