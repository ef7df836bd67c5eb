//! Selfie-enroll invitations (docs/domain.md §3.1 and §7.5 "Enrollment / invitation"): the
//! operator asks a person for their face; the person opens a link within its window and
//! submits a selfie, which becomes their face credential (issued, not distributed).
//!
//! Lifecycle: `active → used | expired | superseded`. `expired` is derived from the clock;
//! `used` and `superseded` are stored. Creating a new invitation for a person supersedes
//! every earlier active one ([`supersede_earlier`]). An invitation is reached through a
//! link token that only the person gets; the domain keeps a digest of it, never the token.

use super::id::{CredentialId, InvitationId, PersonId, TenantId};
use super::validation::{InvalidField, Problem, Window};
use jiff::Timestamp;

/// Where the link is sent: at least one of e-mail and text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The e-mail address to send the link to.
    pub email: Option<String>,
    /// The mobile number to text the link to.
    pub text: Option<String>,
}

impl Delivery {
    /// Validates that at least one channel is used (field `send_by_email`).
    pub fn new(email: Option<String>, text: Option<String>) -> Result<Delivery, InvalidField> {
        if email.is_none() && text.is_none() {
            return Err(InvalidField::new(
                "send_by_email",
                Problem::Invalid {
                    expected: "send_by_email or send_by_text (or both) to be true",
                },
            ));
        }
        Ok(Delivery { email, text })
    }
}

/// The stored part of an invitation's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationState {
    /// Waiting for the selfie (or expired, which the clock decides).
    Open,
    /// The selfie was submitted and became this face credential.
    Used {
        /// When.
        at: Timestamp,
        /// The face credential it created.
        credential_id: CredentialId,
    },
    /// A newer invitation for the same person replaced it.
    Superseded {
        /// The newer invitation.
        by: InvitationId,
    },
}

/// An invitation's status at an instant (what the API shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvitationStatus {
    /// Usable now, or from `valid_from` on.
    Active,
    /// Used once; cannot be used again.
    Used,
    /// Its window is over.
    Expired,
    /// A newer invitation replaced it.
    Superseded,
}

impl InvitationStatus {
    /// The status as the API writes it.
    pub fn name(self) -> &'static str {
        match self {
            InvitationStatus::Active => "active",
            InvitationStatus::Used => "used",
            InvitationStatus::Expired => "expired",
            InvitationStatus::Superseded => "superseded",
        }
    }
}

/// Why an invitation's link cannot be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvitationRefused {
    /// Before `valid_from`.
    #[error("this invitation link is not valid yet")]
    NotYetValid,
    /// At or after `expires_at`.
    #[error("this invitation link has expired")]
    Expired,
    /// Already used.
    #[error("this invitation link was already used")]
    Used,
    /// Replaced by a newer invitation.
    #[error("this invitation link was replaced by a newer invitation")]
    Superseded,
}

/// A selfie-enroll invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Its id.
    pub id: InvitationId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// Whose face is asked for.
    pub person_id: PersonId,
    /// Hex SHA-256 digest of the link token.
    pub token_digest: String,
    /// Start of the link's window.
    pub valid_from: Timestamp,
    /// End of the link's window (exclusive).
    pub expires_at: Timestamp,
    /// Where the link was sent.
    pub delivery: Delivery,
    /// When it was created.
    pub created_at: Timestamp,
    /// Stored lifecycle state.
    pub state: InvitationState,
}

impl Invitation {
    /// A new open invitation valid in `[valid_from, expires_at)` (fields `valid_from`,
    /// `expires_at`): the end must be after the start and after `now`.
    pub fn new(
        id: InvitationId,
        tenant_id: TenantId,
        person_id: PersonId,
        token_digest: String,
        (valid_from, expires_at): (Timestamp, Timestamp),
        delivery: Delivery,
        now: Timestamp,
    ) -> Result<Invitation, InvalidField> {
        Window::between(valid_from, expires_at, "valid_from", "expires_at")?;
        if expires_at <= now {
            return Err(InvalidField::new(
                "expires_at",
                Problem::Invalid {
                    expected: "an instant in the future",
                },
            ));
        }
        Ok(Invitation {
            id,
            tenant_id,
            person_id,
            token_digest,
            valid_from,
            expires_at,
            delivery,
            created_at: now,
            state: InvitationState::Open,
        })
    }

    /// Its status at `at`.
    pub fn status_at(&self, at: Timestamp) -> InvitationStatus {
        match self.state {
            InvitationState::Used { .. } => InvitationStatus::Used,
            InvitationState::Superseded { .. } => InvitationStatus::Superseded,
            InvitationState::Open if at >= self.expires_at => InvitationStatus::Expired,
            InvitationState::Open => InvitationStatus::Active,
        }
    }

    /// Whether its link can be used at `at`, and why not.
    pub fn check_usable(&self, at: Timestamp) -> Result<(), InvitationRefused> {
        match self.status_at(at) {
            InvitationStatus::Used => Err(InvitationRefused::Used),
            InvitationStatus::Superseded => Err(InvitationRefused::Superseded),
            InvitationStatus::Expired => Err(InvitationRefused::Expired),
            InvitationStatus::Active if at < self.valid_from => Err(InvitationRefused::NotYetValid),
            InvitationStatus::Active => Ok(()),
        }
    }

    /// Marks it used by the face credential `credential_id` at `at`.
    pub fn use_for(
        &mut self,
        credential_id: CredentialId,
        at: Timestamp,
    ) -> Result<(), InvitationRefused> {
        self.check_usable(at)?;
        self.state = InvitationState::Used { at, credential_id };
        Ok(())
    }
}

/// The invitations of `person_id` that `newer` supersedes: every one still open (expired
/// ones included, so that a late click names the newer link), marked superseded.
pub fn supersede_earlier<'a>(
    invitations: impl IntoIterator<Item = &'a Invitation>,
    person_id: PersonId,
    newer: InvitationId,
) -> Vec<Invitation> {
    invitations
        .into_iter()
        .filter(|i| i.person_id == person_id && i.id != newer)
        .filter(|i| i.state == InvitationState::Open)
        .map(|i| {
            let mut i = i.clone();
            i.state = InvitationState::Superseded { by: newer };
            i
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::ToSpan;

    fn at(hours: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + hours.hours()
    }

    fn invitation(id: u64, from: i64, to: i64) -> Invitation {
        Invitation::new(
            InvitationId::new(id),
            TenantId::new(1),
            PersonId::new(7),
            "digest".into(),
            (at(from), at(to)),
            Delivery::new(Some("ana@example.com".into()), None).unwrap(),
            at(0),
        )
        .unwrap()
    }

    #[test]
    fn an_invitation_is_active_inside_its_window_and_expires_after() {
        let i = invitation(1, 1, 25);
        assert_eq!(i.check_usable(at(0)), Err(InvitationRefused::NotYetValid));
        assert_eq!(i.status_at(at(0)), InvitationStatus::Active);
        assert_eq!(i.check_usable(at(1)), Ok(()));
        assert_eq!(i.status_at(at(25)), InvitationStatus::Expired);
        assert_eq!(i.check_usable(at(25)), Err(InvitationRefused::Expired));
    }

    #[test]
    fn a_used_invitation_cannot_be_used_again() {
        let mut i = invitation(1, 0, 24);
        i.use_for(CredentialId::new(9), at(2)).unwrap();
        assert_eq!(i.status_at(at(3)), InvitationStatus::Used);
        assert_eq!(
            i.use_for(CredentialId::new(10), at(3)),
            Err(InvitationRefused::Used)
        );
    }

    #[test]
    fn a_new_invitation_supersedes_open_ones_only() {
        let open = invitation(1, 0, 24);
        let mut used = invitation(2, 0, 24);
        used.use_for(CredentialId::new(9), at(1)).unwrap();
        let newer = invitation(3, 0, 24);
        let superseded = supersede_earlier([&open, &used, &newer], PersonId::new(7), newer.id);
        assert_eq!(superseded.len(), 1);
        assert_eq!(superseded[0].id, open.id);
        assert_eq!(
            superseded[0].check_usable(at(2)),
            Err(InvitationRefused::Superseded)
        );
    }

    #[test]
    fn windows_and_channels_are_validated() {
        let bad = Invitation::new(
            InvitationId::new(1),
            TenantId::new(1),
            PersonId::new(7),
            "d".into(),
            (at(5), at(4)),
            Delivery::new(None, Some("+34600123456".into())).unwrap(),
            at(0),
        );
        assert_eq!(bad.unwrap_err().field, "expires_at");
        let past = Invitation::new(
            InvitationId::new(1),
            TenantId::new(1),
            PersonId::new(7),
            "d".into(),
            (at(0), at(1)),
            Delivery::new(None, Some("+34600123456".into())).unwrap(),
            at(2),
        );
        assert_eq!(past.unwrap_err().field, "expires_at");
        assert_eq!(
            Delivery::new(None, None).unwrap_err().field,
            "send_by_email"
        );
    }
}
