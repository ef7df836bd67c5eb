//! Notifications: messages to people (selfie invitations, cloud keys with their PIN,
//! welcome messages) go through a durable outbox.
//!
//! - [`compose`] writes the messages a change causes; the change appends them to the
//!   outbox in its own transaction (`Plan::message`), so a message exists iff its cause
//!   was committed.
//! - [`delivery`] is the background task that hands due messages to a [`Sender`], with
//!   retries and backoff, and records each outcome in the store.
//! - [`webhook::WebhookSender`] posts webhook events to the tenants' endpoints, signed
//!   as [`signature`] describes, and records each attempt in the endpoint's delivery log.
//! - Senders: [`file::FileSender`] (the embedded default: one file per message, so a
//!   delivery repeated after a crash rewrites the same file instead of sending twice) and
//!   [`smtp::SmtpSender`] (e-mail through `lettre`).
//!
//! Message bodies never contain a selfie; a PIN appears only in the message to its owner
//! and never in logs (senders log the message id and channel only).

pub mod compose;
pub mod delivery;
pub mod file;
pub mod signature;
pub mod smtp;
pub mod webhook;

use std::fmt;
use std::sync::Arc;

use crate::store::{Channel, MessageRow};

/// A delivery attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later (network, a busy server, a full disk).
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// Will never work (a refused address); the message is marked failed.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// Something that delivers messages. Called from a blocking thread, one message at a time.
///
/// `message.id` is stable across attempts: a sender that can deduplicate (a file name, a
/// `Message-ID` header) uses it, so a delivery repeated after a crash is recognised.
pub trait Sender: Send + Sync + fmt::Debug + 'static {
    /// Delivers one message.
    fn send(&self, message: &MessageRow) -> Result<(), SendError>;
}

/// The sender of each channel.
#[derive(Debug, Clone)]
pub struct Senders {
    /// E-mails.
    pub email: Arc<dyn Sender>,
    /// Text messages.
    pub text: Arc<dyn Sender>,
    /// Webhook events (the delivery task makes a [`webhook::WebhookSender`] when `None`).
    pub webhook: Option<Arc<dyn Sender>>,
}

impl Senders {
    /// One sender for both channels.
    pub fn all(sender: Arc<dyn Sender>) -> Senders {
        Senders {
            email: sender.clone(),
            text: sender,
            webhook: None,
        }
    }

    /// These senders with a [`webhook::WebhookSender`] for `core` when none was given.
    pub fn with_webhooks_of(mut self, core: &crate::app::Core) -> Senders {
        if self.webhook.is_none() {
            match webhook::WebhookSender::new(core.clone()) {
                Ok(sender) => self.webhook = Some(Arc::new(sender)),
                Err(e) => tracing::error!(error = %e, "no webhook sender"),
            }
        }
        self
    }

    /// The sender for `channel`.
    pub fn of(&self, channel: Channel) -> Option<&Arc<dyn Sender>> {
        match channel {
            Channel::Email => Some(&self.email),
            Channel::Text => Some(&self.text),
            Channel::Webhook => self.webhook.as_ref(),
        }
    }
}
