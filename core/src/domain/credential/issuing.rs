//! The uniqueness rule of issuing (docs/domain.md §8.3 rule 10): card, PIN, QR and
//! cloud-key token values are unique among the tenant's live credentials; a card reported
//! lost or stolen can never be issued again; a person has at most one live face.

use super::{Credential, CredentialValue, RevokeReason};
use crate::domain::id::{PersonId, TenantId};

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
    use super::super::Pin;
    use super::super::test_support::{card, ts};
    use super::*;
    use crate::card::WiegandCard;
    use crate::domain::id::CredentialId;

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
}
