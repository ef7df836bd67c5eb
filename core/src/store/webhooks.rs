//! Webhook endpoints as stored, the events a [`Change`](super::Change) fans out to them
//! and the log of delivery attempts.
//!
//! An event is not stored on its own: the commit that appends it writes one outbox message
//! ([`super::Channel::Webhook`]) per enabled endpoint of the tenant subscribed to its type,
//! in the same transaction, so an event exists for its endpoints iff its cause was
//! committed. The message's body is the event as delivered (`{id, type, created_at, data}`),
//! its recipient the endpoint's id.

use jiff::Timestamp;
use serde_json::Value as Json;

/// A webhook endpoint as stored. The secrets are in clear here; the store seals them at
/// rest when it has a key.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRow {
    /// Its id (from the store's id sequence).
    pub id: u64,
    /// Where events are posted (`http` or `https`).
    pub url: String,
    /// What the integrator called it.
    pub description: String,
    /// The event types it receives.
    pub event_types: Vec<String>,
    /// The signing secret (`whsec_…`).
    pub secret: String,
    /// The secret before the last rotation and until when it still signs.
    pub previous_secret: Option<(String, Timestamp)>,
    /// Whether events are delivered to it (false once disabled).
    pub enabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Consecutive messages given up (reset by a delivery).
    pub failed_messages: u32,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last changed.
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for WebhookRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRow")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .field("enabled", &self.enabled)
            .field("failed_messages", &self.failed_messages)
            .finish_non_exhaustive()
    }
}

impl WebhookRow {
    /// Whether it receives events of `event_type`.
    pub fn receives(&self, event_type: &str) -> bool {
        self.enabled && self.event_types.iter().any(|t| t == event_type)
    }
}

/// A change to an endpoint, committed with the rest of a [`Change`](super::Change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookWrite {
    /// Creates or replaces the endpoint (its delivery log is kept).
    Put(WebhookRow),
    /// Deletes the endpoint and its delivery log.
    Delete(u64),
}

/// An event for the tenant's endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    /// Stable id (`evt_…`), the same on every attempt and for every endpoint: receivers
    /// deduplicate by it.
    pub id: String,
    /// Its type (`access.granted` …).
    pub event_type: String,
    /// When it happened.
    pub created_at: Timestamp,
    /// Its fields.
    pub data: Json,
    /// When it is first due for delivery (the core's "now" at the commit).
    pub due_at: Timestamp,
    /// The access event of the same change it describes (an index into the change's
    /// access events): the commit adds that event's id to `data` as `access_event_id`.
    pub access_event: Option<usize>,
}

impl WebhookEvent {
    /// The body delivered: `{id, type, created_at, data}`.
    pub fn body(&self) -> Json {
        serde_json::json!({
            "id": self.id,
            "type": self.event_type,
            "created_at": self.created_at.to_string(),
            "data": self.data,
        })
    }
}

/// The outbox messages that fan `events` out to the tenant's enabled `endpoints` (id and
/// space-separated event types, by id): one per event and subscribed endpoint, the
/// access event's id (from `access_event_ids`, the change's appended events) added to
/// the data of an event that describes one. What both backends' commits append.
pub(crate) fn fan_out_messages(
    events: &[WebhookEvent],
    access_event_ids: &[u64],
    endpoints: &[(u64, String)],
) -> Vec<super::NewMessage> {
    let mut messages = Vec::new();
    if endpoints.is_empty() {
        return messages;
    }
    for event in events {
        let mut event = event.clone();
        if let Some(access_event_id) = event.access_event.and_then(|i| access_event_ids.get(i)) {
            event.data["access_event_id"] = serde_json::json!(access_event_id);
        }
        let body = event.body().to_string();
        for (endpoint, types) in endpoints {
            if !types.split(' ').any(|t| t == event.event_type) {
                continue;
            }
            messages.push(super::NewMessage {
                channel: super::Channel::Webhook,
                recipient: endpoint.to_string(),
                subject: event.event_type.clone(),
                body: body.clone(),
                cause: event.event_type.clone(),
                record_id: Some(*endpoint),
                created_at: event.due_at,
            });
        }
    }
    messages
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx: the endpoint's count of failed messages is reset.
    Delivered,
    /// Failed; the message will be tried again.
    Failed,
    /// Failed and the message is given up: the endpoint's count of failed messages grows.
    GivenUp,
}

impl AttemptOutcome {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::GivenUp => "given_up",
        }
    }

    /// The outcome stored as `name`.
    pub fn parse(name: &str) -> Option<AttemptOutcome> {
        match name {
            "delivered" => Some(AttemptOutcome::Delivered),
            "failed" => Some(AttemptOutcome::Failed),
            "given_up" => Some(AttemptOutcome::GivenUp),
            _ => None,
        }
    }
}

/// One delivery attempt, committed with a [`Change`](super::Change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The endpoint.
    pub webhook_id: u64,
    /// The outbox message.
    pub message_id: u64,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// Which attempt of the message (1, 2 …).
    pub attempt: u32,
    /// When it was made.
    pub attempted_at: Timestamp,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<u16>,
    /// Why it failed (never contains the body or the secret).
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// How it ended.
    pub outcome: AttemptOutcome,
}

/// A delivery attempt as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// Its id (increasing).
    pub id: u64,
    /// The attempt.
    pub delivery: NewDelivery,
}
