//! The notifications outbox as stored: messages appended by a [`Change`](super::Change)
//! and their delivery state (`pending → sent | failed`, with attempts and the instant of
//! the next one).

use jiff::Timestamp;

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// E-mail.
    Email,
    /// Text message (SMS).
    Text,
    /// A webhook event posted to an endpoint ([`super::webhooks`]): the recipient is the
    /// endpoint's id, the subject the event's type, the body the event as delivered.
    Webhook,
}

impl Channel {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Text => "text",
            Channel::Webhook => "webhook",
        }
    }

    /// The channel stored as `name`.
    pub fn parse(name: &str) -> Option<Channel> {
        match name {
            "email" => Some(Channel::Email),
            "text" => Some(Channel::Text),
            "webhook" => Some(Channel::Webhook),
            _ => None,
        }
    }
}

/// A message to append to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// How it travels.
    pub channel: Channel,
    /// The address or number.
    pub recipient: String,
    /// Subject line (e-mail) or a short title.
    pub subject: String,
    /// Text of the message.
    pub body: String,
    /// What caused it (`invitation.created`, `cloud_key.issued`, `welcome.mobile_key` …).
    pub cause: String,
    /// The record it is about.
    pub record_id: Option<u64>,
    /// When it was written (first attempt at once).
    pub created_at: Timestamp,
}

/// Where a message is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    /// Not delivered yet; will be attempted at `next_attempt_at`.
    Pending,
    /// Handed to the sender.
    Sent,
    /// Given up after the last allowed attempt.
    Failed,
}

impl MessageStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Pending => "pending",
            MessageStatus::Sent => "sent",
            MessageStatus::Failed => "failed",
        }
    }

    /// The status stored as `name`.
    pub fn parse(name: &str) -> Option<MessageStatus> {
        match name {
            "pending" => Some(MessageStatus::Pending),
            "sent" => Some(MessageStatus::Sent),
            "failed" => Some(MessageStatus::Failed),
            _ => None,
        }
    }
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    /// Its id (increasing; also the key senders use to recognise a repeated delivery).
    pub id: u64,
    /// The tenant whose change caused it.
    pub tenant_id: u64,
    /// The message.
    pub message: NewMessage,
    /// Delivery state.
    pub status: MessageStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending messages).
    pub next_attempt_at: Timestamp,
    /// When it was handed to the sender.
    pub sent_at: Option<Timestamp>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Delivered at this instant.
    Sent(Timestamp),
    /// Failed; try again at `retry_at`, or give up when `None`.
    Failed {
        /// Why (never contains the message body).
        error: String,
        /// When to try again.
        retry_at: Option<Timestamp>,
    },
}
