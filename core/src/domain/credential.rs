//! Credentials: what a person presents (face, card, fingerprint, PIN, QR, cloud key,
//! mobile key), their lifecycle, and the effective status derived from disable reasons
//! (docs/domain.md §7.5).
//!
//! A credential is *active* iff it has no disable reason. The reasons a credential carries
//! on its own are computed by [`Credential::disable_reasons`]; `needs_provisioning`
//! depends on the entitlements of the whole tenant and is added by
//! [`Snapshot::credential_status`](super::snapshot::Snapshot::credential_status).
//! `revoked` and `deleted` are final; `suspended` and `lockout` can be lifted.
//!
//! Secrets and biometrics never appear in `Debug` output: PINs, QR payloads, cloud-key
//! tokens and fingerprint templates are redacted.

use super::auth::Factor;
use super::id::{CredentialId, PersonId, PhoneId, TenantId};
use super::validation::{InvalidField, Problem, Window, required_text};
use crate::card::WiegandCard;
use jiff::Timestamp;
use std::collections::BTreeSet;
use std::fmt;

/// A PIN: 4 to 12 decimal digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pin(String);

impl Pin {
    /// Validates a PIN (field `pin`).
    pub fn parse(text: &str) -> Result<Pin, InvalidField> {
        let text = text.trim();
        if text.is_empty() {
            return Err(InvalidField::new("pin", Problem::Empty));
        }
        if !(4..=12).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidField::new(
                "pin",
                Problem::Invalid {
                    expected: "4 to 12 decimal digits",
                },
            ));
        }
        Ok(Pin(text.to_owned()))
    }

    /// The digits.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// A secret text credential (QR payload or cloud-key token): trimmed, non-empty, at most
/// 512 characters. Redacted in `Debug`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretText(String);

impl SecretText {
    /// Validates the text, naming `field` on failure.
    pub fn parse(field: &'static str, text: &str) -> Result<SecretText, InvalidField> {
        required_text(field, text, 512).map(SecretText)
    }

    /// The text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(<redacted>)")
    }
}

/// Fingerprint templates (opaque, base64 as the terminal stores them). At least one;
/// `Debug` shows only how many.
#[derive(Clone, PartialEq, Eq)]
pub struct FingerprintTemplates(Vec<String>);

impl FingerprintTemplates {
    /// Validates the templates (field `templates`): at least one, none empty.
    pub fn new(templates: Vec<String>) -> Result<FingerprintTemplates, InvalidField> {
        if templates.is_empty() || templates.iter().any(|t| t.trim().is_empty()) {
            return Err(InvalidField::new("templates", Problem::Empty));
        }
        Ok(FingerprintTemplates(templates))
    }

    /// The templates.
    pub fn expose(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Debug for FingerprintTemplates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FingerprintTemplates({} templates)", self.0.len())
    }
}

/// What a credential is, with its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialValue {
    /// A face; `photo_ref` names the stored photo (the photo itself lives in the store).
    Face {
        /// Reference to the enrolled photo.
        photo_ref: String,
    },
    /// A Wiegand card.
    Card(WiegandCard),
    /// Fingerprint templates.
    Fingerprint(FingerprintTemplates),
    /// A PIN.
    Pin(Pin),
    /// A QR payload.
    Qr(SecretText),
    /// A cloud-key link: its token and, optionally, a PIN that must accompany it.
    CloudKey {
        /// The link token.
        token: SecretText,
        /// The PIN that must be given with the token, if any.
        pin: Option<Pin>,
    },
    /// A mobile key. The parent (configured once) has no phone; each copy is bound to one.
    MobileKey {
        /// The phone of a copy; `None` for the parent.
        phone_id: Option<PhoneId>,
    },
}

impl CredentialValue {
    /// A face credential for the stored photo `photo_ref` (field `photo_ref`).
    pub fn face(photo_ref: &str) -> Result<CredentialValue, InvalidField> {
        Ok(CredentialValue::Face {
            photo_ref: required_text("photo_ref", photo_ref, 512)?,
        })
    }

    /// The factor this credential provides.
    pub fn factor(&self) -> Factor {
        match self {
            CredentialValue::Face { .. } => Factor::Face,
            CredentialValue::Card(_) => Factor::Card,
            CredentialValue::Fingerprint(_) => Factor::Fingerprint,
            CredentialValue::Pin(_) => Factor::Pin,
            CredentialValue::Qr(_) => Factor::Qr,
            CredentialValue::CloudKey { .. } => Factor::CloudKey,
            CredentialValue::MobileKey { .. } => Factor::MobileKey,
        }
    }
}

/// Why a credential was revoked. All are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevokeReason {
    /// Reported lost: the card value can never be issued again in the tenant.
    Lost,
    /// Reported stolen: the card value can never be issued again in the tenant.
    Stolen,
    /// Damaged (the value may be reissued on a new card).
    Damaged,
    /// The person's relationship ended.
    Terminated,
    /// A mobile-key copy whose phone was deactivated.
    PhoneDeactivated,
    /// A mobile-key copy whose parent was revoked or deleted.
    ParentRevoked,
}

impl RevokeReason {
    /// Whether the value is burnt for good (lost or stolen cards).
    pub fn burns_value(self) -> bool {
        matches!(self, RevokeReason::Lost | RevokeReason::Stolen)
    }
}

/// Why a credential is not active (docs/domain.md §7.5). Declared in the order decisions
/// report them: the first reason present is the one a denial names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DisableReason {
    /// Revoked (final).
    Revoked,
    /// Suspended (reversible).
    Suspended,
    /// Locked out after too many attempts (reversible).
    Lockout,
    /// At or after `ends_at`.
    Expired,
    /// All allowed uses consumed (one-time credentials).
    MaxUses,
    /// Before `starts_at`.
    NotYetActive,
    /// Issued but on no terminal: no entitlement covers any terminal (enrollment ≠
    /// distribution). Only terminal-held kinds and mobile-key parents can carry it.
    NeedsProvisioning,
}

/// A credential's effective status at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialStatus {
    /// No disable reason.
    Active,
    /// One or more disable reasons.
    Disabled(BTreeSet<DisableReason>),
    /// Deleted (final; nothing else applies).
    Deleted,
}

impl CredentialStatus {
    /// Whether the status is `Active`.
    pub fn is_active(&self) -> bool {
        matches!(self, CredentialStatus::Active)
    }
}

/// A lifecycle change that is not allowed from the credential's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialTransitionError {
    /// The credential is deleted; nothing can change it any more.
    #[error("credential is deleted")]
    Deleted,
    /// The credential is revoked; only deletion is still possible.
    #[error("credential is revoked")]
    Revoked,
    /// Suspending an already suspended credential.
    #[error("credential is already suspended")]
    AlreadySuspended,
    /// Unsuspending a credential that is not suspended.
    #[error("credential is not suspended")]
    NotSuspended,
    /// Consuming a credential with no uses left.
    #[error("credential has no uses left")]
    NoUsesLeft,
}

/// Issuing a credential would break a uniqueness rule (docs/domain.md §8.3 rule 10).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// Another live credential of the tenant has this value.
    #[error("{field} is already in use by another credential")]
    Duplicate {
        /// The field at fault (`card`, `pin`, `qr`, `token`).
        field: &'static str,
    },
    /// The card was reported lost or stolen and can never be issued again.
    #[error("card was reported lost or stolen and cannot be issued again")]
    CardLostOrStolen,
    /// The person already has a live face credential.
    #[error("person already has a face credential")]
    FaceAlreadyEnrolled,
}

/// The lifecycle state a credential keeps in private fields (changed only through its
/// transitions), as the store saves it with [`Credential::lifecycle`] and brings it back
/// with [`Credential::restore_lifecycle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CredentialLifecycle {
    /// How many grants it has been used for.
    pub use_count: u32,
    /// Whether it is suspended.
    pub suspended: bool,
    /// Whether it is locked out.
    pub locked_out: bool,
    /// Wrong PINs given with it since the last success or lockout clearance.
    pub failed_attempts: u32,
    /// Why it was revoked, if it was.
    pub revoked: Option<RevokeReason>,
    /// Whether it is deleted.
    pub deleted: bool,
}

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

    /// Its lifecycle state, for the store.
    pub fn lifecycle(&self) -> CredentialLifecycle {
        CredentialLifecycle {
            use_count: self.use_count,
            suspended: self.suspended,
            locked_out: self.locked_out,
            failed_attempts: self.failed_attempts,
            revoked: self.revoked,
            deleted: self.deleted,
        }
    }

    /// The same credential with `lifecycle` put back exactly as saved.
    ///
    /// For the store only, when reading a credential back: it bypasses the transition
    /// rules (it can un-revoke or un-delete), so anything acting on a user's request must
    /// use [`Credential::suspend`], [`Credential::revoke`], [`Credential::delete`] … instead.
    pub fn restore_lifecycle(mut self, lifecycle: CredentialLifecycle) -> Credential {
        let CredentialLifecycle {
            use_count,
            suspended,
            locked_out,
            failed_attempts,
            revoked,
            deleted,
        } = lifecycle;
        self.use_count = use_count;
        self.suspended = suspended;
        self.locked_out = locked_out;
        self.failed_attempts = failed_attempts;
        self.revoked = revoked;
        self.deleted = deleted;
        self
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

    fn check_mutable(&self) -> Result<(), CredentialTransitionError> {
        if self.deleted {
            Err(CredentialTransitionError::Deleted)
        } else if self.revoked.is_some() {
            Err(CredentialTransitionError::Revoked)
        } else {
            Ok(())
        }
    }

    /// Suspends it (reversible).
    pub fn suspend(&mut self) -> Result<(), CredentialTransitionError> {
        self.check_mutable()?;
        if self.suspended {
            return Err(CredentialTransitionError::AlreadySuspended);
        }
        self.suspended = true;
        Ok(())
    }

    /// Lifts a suspension.
    pub fn unsuspend(&mut self) -> Result<(), CredentialTransitionError> {
        self.check_mutable()?;
        if !self.suspended {
            return Err(CredentialTransitionError::NotSuspended);
        }
        self.suspended = false;
        Ok(())
    }

    /// Locks it out (e.g. after too many failed attempts).
    pub fn lock_out(&mut self) -> Result<(), CredentialTransitionError> {
        self.check_mutable()?;
        self.locked_out = true;
        Ok(())
    }

    /// Clears a lockout (and the count of wrong PINs).
    pub fn clear_lockout(&mut self) -> Result<(), CredentialTransitionError> {
        self.check_mutable()?;
        self.locked_out = false;
        self.failed_attempts = 0;
        Ok(())
    }

    /// Counts a wrong PIN given with this credential; the `limit`-th wrong PIN in a row
    /// locks it out. Returns whether it is locked out now.
    pub fn record_wrong_pin(&mut self, limit: u32) -> Result<bool, CredentialTransitionError> {
        self.check_mutable()?;
        self.failed_attempts = self.failed_attempts.saturating_add(1);
        if self.failed_attempts >= limit.max(1) {
            self.locked_out = true;
        }
        Ok(self.locked_out)
    }

    /// Forgets earlier wrong PINs after a right one.
    pub fn record_right_pin(&mut self) {
        self.failed_attempts = 0;
    }

    /// Wrong PINs given since the last right one or lockout clearance.
    pub fn failed_attempts(&self) -> u32 {
        self.failed_attempts
    }

    /// Revokes it for good. A suspended credential can be revoked; a revoked one cannot be
    /// revoked again or brought back.
    pub fn revoke(&mut self, reason: RevokeReason) -> Result<(), CredentialTransitionError> {
        self.check_mutable()?;
        self.revoked = Some(reason);
        Ok(())
    }

    /// Deletes it for good (allowed from any state but deleted).
    pub fn delete(&mut self) -> Result<(), CredentialTransitionError> {
        if self.deleted {
            return Err(CredentialTransitionError::Deleted);
        }
        self.deleted = true;
        Ok(())
    }

    /// Records one grant; fails if no uses are left.
    pub fn consume(&mut self) -> Result<(), CredentialTransitionError> {
        self.check_mutable()?;
        if self.max_uses.is_some_and(|max| self.use_count >= max) {
            return Err(CredentialTransitionError::NoUsesLeft);
        }
        self.use_count += 1;
        Ok(())
    }

    /// The disable reasons the credential carries on its own at `at` (everything but
    /// `needs_provisioning`, which depends on the tenant's entitlements).
    pub fn disable_reasons(&self, at: Timestamp) -> BTreeSet<DisableReason> {
        let mut reasons = BTreeSet::new();
        if self.revoked.is_some() {
            reasons.insert(DisableReason::Revoked);
        }
        if self.suspended {
            reasons.insert(DisableReason::Suspended);
        }
        if self.locked_out {
            reasons.insert(DisableReason::Lockout);
        }
        if self.window.is_after(at) {
            reasons.insert(DisableReason::Expired);
        }
        if self.max_uses.is_some_and(|max| self.use_count >= max) {
            reasons.insert(DisableReason::MaxUses);
        }
        if self.window.is_before(at) {
            reasons.insert(DisableReason::NotYetActive);
        }
        reasons
    }
}

/// Checks that `value` may be issued to `person_id` in `tenant_id` given the `existing`
/// credentials (docs/domain.md §8.3 rule 10):
/// card, PIN, QR and cloud-key token values are unique among the tenant's live
/// credentials; a card reported lost or stolen can never be issued again (even after its
/// credential was deleted); a person has at most one live face.
pub fn check_can_issue<'a>(
    existing: impl IntoIterator<Item = &'a Credential>,
    tenant_id: TenantId,
    person_id: PersonId,
    value: &CredentialValue,
) -> Result<(), IssueError> {
    for other in existing {
        if other.tenant_id != tenant_id {
            continue;
        }
        if let (CredentialValue::Card(a), CredentialValue::Card(b)) = (&other.value, value) {
            if a == b && other.revoked.is_some_and(RevokeReason::burns_value) {
                return Err(IssueError::CardLostOrStolen);
            }
        }
        if !other.is_live() {
            continue;
        }
        let duplicate = match (&other.value, value) {
            (CredentialValue::Card(a), CredentialValue::Card(b)) => (a == b).then_some("card"),
            (CredentialValue::Pin(a), CredentialValue::Pin(b)) => (a == b).then_some("pin"),
            (CredentialValue::Qr(a), CredentialValue::Qr(b)) => (a == b).then_some("qr"),
            (
                CredentialValue::CloudKey { token: a, .. },
                CredentialValue::CloudKey { token: b, .. },
            ) => (a == b).then_some("token"),
            (CredentialValue::Face { .. }, CredentialValue::Face { .. })
                if other.person_id == person_id =>
            {
                return Err(IssueError::FaceAlreadyEnrolled);
            }
            _ => None,
        };
        if let Some(field) = duplicate {
            return Err(IssueError::Duplicate { field });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn card(id: u64, person: u64, number: u32) -> Credential {
        Credential::issue(
            CredentialId::new(id),
            TenantId::new(1),
            PersonId::new(person),
            CredentialValue::Card(WiegandCard::new(1, number)),
            ts(0),
        )
    }

    #[test]
    fn status_follows_window_and_uses() {
        let mut c = card(1, 1, 7)
            .with_window(Some(ts(10)), Some(ts(20)))
            .unwrap()
            .with_max_uses(1)
            .unwrap();
        assert_eq!(
            c.disable_reasons(ts(5)),
            [DisableReason::NotYetActive].into()
        );
        assert!(c.disable_reasons(ts(10)).is_empty());
        assert_eq!(c.disable_reasons(ts(20)), [DisableReason::Expired].into());
        c.consume().unwrap();
        assert_eq!(c.consume(), Err(CredentialTransitionError::NoUsesLeft));
        assert_eq!(c.disable_reasons(ts(15)), [DisableReason::MaxUses].into());
    }

    #[test]
    fn suspension_is_reversible_revocation_is_not() {
        let mut c = card(1, 1, 7);
        c.suspend().unwrap();
        assert_eq!(
            c.suspend(),
            Err(CredentialTransitionError::AlreadySuspended)
        );
        assert_eq!(c.disable_reasons(ts(0)), [DisableReason::Suspended].into());
        c.unsuspend().unwrap();
        assert!(c.disable_reasons(ts(0)).is_empty());
        c.suspend().unwrap();
        c.revoke(RevokeReason::Lost).unwrap();
        assert_eq!(c.unsuspend(), Err(CredentialTransitionError::Revoked));
        assert_eq!(
            c.revoke(RevokeReason::Damaged),
            Err(CredentialTransitionError::Revoked)
        );
        assert!(c.disable_reasons(ts(0)).contains(&DisableReason::Revoked));
        c.delete().unwrap();
        assert_eq!(c.delete(), Err(CredentialTransitionError::Deleted));
        assert_eq!(c.suspend(), Err(CredentialTransitionError::Deleted));
    }

    #[test]
    fn lockout_is_a_disable_reason() {
        let mut c = card(1, 1, 7);
        c.lock_out().unwrap();
        assert_eq!(c.disable_reasons(ts(0)), [DisableReason::Lockout].into());
        c.clear_lockout().unwrap();
        assert!(c.disable_reasons(ts(0)).is_empty());
    }

    #[test]
    fn cards_are_unique_among_live_credentials() {
        let value = CredentialValue::Card(WiegandCard::new(1, 7));
        let t = TenantId::new(1);
        let existing = card(1, 1, 7);
        assert_eq!(
            check_can_issue([&existing], t, PersonId::new(2), &value),
            Err(IssueError::Duplicate { field: "card" })
        );
        assert!(check_can_issue([&existing], TenantId::new(2), PersonId::new(2), &value).is_ok());

        let mut damaged = card(1, 1, 7);
        damaged.revoke(RevokeReason::Damaged).unwrap();
        assert!(check_can_issue([&damaged], t, PersonId::new(2), &value).is_ok());

        let mut lost = card(1, 1, 7);
        lost.revoke(RevokeReason::Stolen).unwrap();
        lost.delete().unwrap();
        assert_eq!(
            check_can_issue([&lost], t, PersonId::new(2), &value),
            Err(IssueError::CardLostOrStolen)
        );
    }

    #[test]
    fn one_face_per_person_and_unique_pins() {
        let t = TenantId::new(1);
        let face = Credential::issue(
            CredentialId::new(1),
            t,
            PersonId::new(1),
            CredentialValue::face("photo/1").unwrap(),
            ts(0),
        );
        let new_face = CredentialValue::face("photo/2").unwrap();
        assert_eq!(
            check_can_issue([&face], t, PersonId::new(1), &new_face),
            Err(IssueError::FaceAlreadyEnrolled)
        );
        assert!(check_can_issue([&face], t, PersonId::new(2), &new_face).is_ok());

        let pin = Credential::issue(
            CredentialId::new(2),
            t,
            PersonId::new(1),
            CredentialValue::Pin(Pin::parse("1234").unwrap()),
            ts(0),
        );
        let same = CredentialValue::Pin(Pin::parse("1234").unwrap());
        assert_eq!(
            check_can_issue([&pin], t, PersonId::new(2), &same),
            Err(IssueError::Duplicate { field: "pin" })
        );
    }

    #[test]
    fn values_are_validated_and_secrets_redacted() {
        assert_eq!(Pin::parse("12").unwrap_err().field, "pin");
        assert_eq!(Pin::parse("12a4").unwrap_err().field, "pin");
        assert!(format!("{:?}", Pin::parse("987654").unwrap()).contains("redacted"));
        assert_eq!(SecretText::parse("qr", " ").unwrap_err().field, "qr");
        let templates = FingerprintTemplates::new(vec!["c2VjcmV0".into()]).unwrap();
        assert!(!format!("{templates:?}").contains("c2VjcmV0"));
        assert!(FingerprintTemplates::new(vec![]).is_err());
        assert_eq!(CredentialValue::face(" ").unwrap_err().field, "photo_ref");
        assert_eq!(
            card(1, 1, 1).with_max_uses(0).unwrap_err().field,
            "max_uses"
        );
    }
}
