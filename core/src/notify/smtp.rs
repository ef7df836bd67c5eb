//! E-mail through SMTP with `lettre` (`smtp://host:port`, `smtps://…`, with
//! `user:password@` and `?tls=required` as lettre's URL syntax allows). The outbox message
//! id becomes the `Message-ID` header, so a repeated delivery is recognisable by the
//! receiving side.

use lettre::message::{Mailbox, header::ContentType};
use lettre::{Message, SmtpTransport, Transport as _};

use super::{SendError, Sender};
use crate::store::MessageRow;

/// Sends e-mails through one SMTP server.
pub struct SmtpSender {
    transport: SmtpTransport,
    from: Mailbox,
    domain: String,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds credentials: show only the sender address.
        f.debug_struct("SmtpSender")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// The SMTP settings were unusable.
#[derive(Debug, thiserror::Error)]
pub enum SmtpConfigError {
    /// The URL was refused.
    #[error("SMTP URL: {0}")]
    Url(String),
    /// The sender address was refused.
    #[error("sender address '{0}' is not an e-mail address")]
    From(String),
}

impl SmtpSender {
    /// A sender through the server at `url`, sending as `from`.
    pub fn new(url: &str, from: &str) -> Result<SmtpSender, SmtpConfigError> {
        let transport = SmtpTransport::from_url(url)
            .map_err(|e| SmtpConfigError::Url(e.to_string()))?
            .build();
        let from: Mailbox = from
            .parse()
            .map_err(|_| SmtpConfigError::From(from.to_owned()))?;
        let domain = from.email.domain().to_owned();
        Ok(SmtpSender {
            transport,
            from,
            domain,
        })
    }
}

impl Sender for SmtpSender {
    fn send(&self, message: &MessageRow) -> Result<(), SendError> {
        let m = &message.message;
        let to: Mailbox = m.recipient.parse().map_err(|_| {
            SendError::Permanent(format!("'{}' is not an e-mail address", m.recipient))
        })?;
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .message_id(Some(format!("<acs-outbox-{}@{}>", message.id, self.domain)))
            .header(ContentType::TEXT_PLAIN)
            .body(m.body.clone())
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        self.transport.send(&email).map_err(|e| {
            if e.is_permanent() {
                SendError::Permanent(e.to_string())
            } else {
                SendError::Temporary(e.to_string())
            }
        })?;
        tracing::info!(message_id = message.id, "message sent by SMTP");
        Ok(())
    }
}
