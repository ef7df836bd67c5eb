//! Credentials: what a person presents (face, card, fingerprint, PIN, QR, cloud key,
//! mobile key), their lifecycle, and the effective status derived from disable reasons
//! (docs/domain.md §7.5).
//!
//! This module holds the [`Credential`] itself – how it is issued, its window and uses, a
//! mobile-key copy – and the reading of its state; the rest lives by concept:
//! - `value` – the kinds of credential and their validated payloads (secrets redacted in
//!   `Debug`);
//! - `lifecycle` – transitions (suspend, lock out, revoke, delete, consume) and the state
//!   the store saves;
//! - `status` – disable reasons and the effective status;
//! - `issuing` – the uniqueness rule a new credential must pass.

mod issuing;
mod lifecycle;
mod status;
mod value;

use jiff::Timestamp;

use super::auth::Factor;
use super::id::{CredentialId, PersonId, PhoneId, TenantId};
use super::validation::{InvalidField, Problem, Window};

pub use issuing::{IssueError, check_can_issue};
pub use lifecycle::{CredentialLifecycle, CredentialTransitionError, RevokeReason};
pub use status::{CredentialStatus, DisableReason};
pub use value::{CredentialValue, FingerprintTemplates, Pin, SecretText};

/// A credential of a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// Its id.
    pub id: CredentialId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// The holder.
    pub person_id: PersonId,
    /// What it is.
    pub value: CredentialValue,
    /// `[starts_at, ends_at)`.
    pub window: Window,
    /// How many grants it allows (`Some(1)` for one-time credentials).
    pub max_uses: Option<u32>,
    /// The mobile-key parent this copy was made from.
    pub parent_id: Option<CredentialId>,
    /// When it was issued.
    pub issued_at: Timestamp,
    use_count: u32,
    suspended: bool,
    locked_out: bool,
    failed_attempts: u32,
    revoked: Option<RevokeReason>,
    deleted: bool,
}

impl Credential {
    /// A newly issued credential: unlimited uses, no window, not suspended.
    pub fn issue(
        id: CredentialId,
        tenant_id: TenantId,
        person_id: PersonId,
        value: CredentialValue,
        issued_at: Timestamp,
    ) -> Credential {
        Credential {
            id,
            tenant_id,
            person_id,
            value,
            window: Window::ALWAYS,
            max_uses: None,
            parent_id: None,
            issued_at,
            use_count: 0,
            suspended: false,
            locked_out: false,
            failed_attempts: 0,
            revoked: None,
            deleted: false,
        }
    }

    /// The same credential valid only in `[starts_at, ends_at)` (fields `starts_at`,
    /// `ends_at`).
    pub fn with_window(
        mut self,
        starts_at: Option<Timestamp>,
        ends_at: Option<Timestamp>,
    ) -> Result<Credential, InvalidField> {
        self.window = Window::new(starts_at, ends_at, "starts_at", "ends_at")?;
        Ok(self)
    }

    /// The same credential allowing `max_uses` grants (field `max_uses`, at least 1).
    pub fn with_max_uses(mut self, max_uses: u32) -> Result<Credential, InvalidField> {
        if max_uses == 0 {
            return Err(InvalidField::new(
                "max_uses",
                Problem::OutOfRange { range: "1.." },
            ));
        }
        self.max_uses = Some(max_uses);
        Ok(self)
    }

    /// The copy of this mobile-key parent for `phone_id`: same holder, window and uses,
    /// bound to the phone, `parent_id` set.
    pub fn copy_for_phone(
        &self,
        id: CredentialId,
        phone_id: PhoneId,
        issued_at: Timestamp,
    ) -> Credential {
        Credential {
            id,
            value: CredentialValue::MobileKey {
                phone_id: Some(phone_id),
            },
            parent_id: Some(self.id),
            issued_at,
            use_count: 0,
            suspended: false,
            locked_out: false,
            failed_attempts: 0,
            revoked: None,
            deleted: false,
            ..self.clone()
        }
    }

    /// The factor it provides.
    pub fn factor(&self) -> Factor {
        self.value.factor()
    }

    /// Whether this is a mobile-key parent (configured once, copied to every phone).
    pub fn is_mobile_parent(&self) -> bool {
        matches!(self.value, CredentialValue::MobileKey { phone_id: None })
    }

    /// How many grants it has been used for.
    pub fn use_count(&self) -> u32 {
        self.use_count
    }

    /// Whether it is suspended.
    pub fn is_suspended(&self) -> bool {
        self.suspended
    }

    /// Whether it is locked out.
    pub fn is_locked_out(&self) -> bool {
        self.locked_out
    }

    /// Why it was revoked, if it was.
    pub fn revoked(&self) -> Option<RevokeReason> {
        self.revoked
    }

    /// Whether it is deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted
    }

    /// Neither revoked nor deleted: it counts for uniqueness and can still become active.
    pub fn is_live(&self) -> bool {
        !self.deleted && self.revoked.is_none()
    }
}

/// Builders shared by the credential unit tests.
#[cfg(test)]
mod test_support {
    use jiff::Timestamp;

    use super::{Credential, CredentialValue};
    use crate::card::WiegandCard;
    use crate::domain::id::{CredentialId, PersonId, TenantId};

    /// The instant `s` seconds after the epoch.
    pub(super) fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    /// Card 1,`number` of `person`, issued at the epoch.
    pub(super) fn card(id: u64, person: u64, number: u32) -> Credential {
        Credential::issue(
            CredentialId::new(id),
            TenantId::new(1),
            PersonId::new(person),
            CredentialValue::Card(WiegandCard::new(1, number)),
            ts(0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::card;

    #[test]
    fn max_uses_must_be_at_least_one() {
        assert_eq!(
            card(1, 1, 1).with_max_uses(0).unwrap_err().field,
            "max_uses"
        );
    }
}
