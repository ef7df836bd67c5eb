//! Phones and multi-phone sync of mobile keys.
//!
//! A phone carries an optional display name ("Ana's work phone") and platform (iOS or
//! Android), so a person with several phones can tell them apart; neither affects access.
//!
//! A mobile key is configured once, as a *parent* credential without a phone. Every active
//! phone of the holder gets its own *copy* (a credential with `parent_id` set and bound to
//! the phone), now and whenever a phone is enrolled later. Deactivating a phone revokes its
//! copies; revoking or deleting the parent revokes all copies. Suspending the parent does
//! not touch the copies: a copy's effective status includes its parent's, so it stops
//! working while the parent is suspended and works again when the suspension is lifted.
//!
//! [`mobile_key_sync`] computes the copies to create and to revoke; the caller allocates ids
//! and applies them with [`Credential::copy_for_phone`] and [`Credential::revoke`]. Applying
//! the result and calling it again yields nothing to do.

use super::credential::{Credential, CredentialValue, RevokeReason};
use super::id::{CredentialId, PersonId, PhoneId};
use super::validation::{InvalidField, Problem, required_text};
use std::collections::BTreeMap;

/// The longest phone name, in characters.
pub const PHONE_NAME_MAX: usize = 100;

/// The operating system of a phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// Apple iOS.
    Ios,
    /// Google Android.
    Android,
}

impl Platform {
    /// The name in documents and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Ios => "ios",
            Platform::Android => "android",
        }
    }

    /// Parses the API name; fails naming `field`.
    pub fn parse(field: &'static str, text: &str) -> Result<Platform, InvalidField> {
        match text {
            "ios" => Ok(Platform::Ios),
            "android" => Ok(Platform::Android),
            _ => Err(InvalidField::new(
                field,
                Problem::Invalid {
                    expected: "\"ios\" or \"android\"",
                },
            )),
        }
    }
}

/// A phone's display name: trimmed, not empty, at most [`PHONE_NAME_MAX`] characters, no
/// control characters; fails naming `field`.
pub fn phone_name(field: &'static str, text: &str) -> Result<String, InvalidField> {
    required_text(field, text, PHONE_NAME_MAX)
}

/// A phone of a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    /// Its id.
    pub id: PhoneId,
    /// Its owner.
    pub person_id: PersonId,
    /// Whether it is active; only active phones carry mobile-key copies.
    pub active: bool,
    /// Its display name, if given ([`phone_name`]).
    pub name: Option<String>,
    /// Its platform, if given.
    pub platform: Option<Platform>,
}

/// What to do to bring one person's mobile-key copies in line with their phones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MobileKeySync {
    /// Copies to create: (parent credential, phone).
    pub create: Vec<(CredentialId, PhoneId)>,
    /// Copies to revoke, with the reason.
    pub revoke: Vec<(CredentialId, RevokeReason)>,
}

impl MobileKeySync {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.revoke.is_empty()
    }
}

/// The copies to create and revoke for `person_id`, given all `credentials` and `phones`
/// (any person's; others are ignored).
///
/// Every live mobile-key parent of the person needs exactly one live copy per active
/// phone of the person. A live copy is revoked when its phone is gone or inactive
/// ([`RevokeReason::PhoneDeactivated`]) or its parent is gone, revoked or deleted
/// ([`RevokeReason::ParentRevoked`]). Output is sorted by id.
pub fn mobile_key_sync<'a>(
    credentials: impl IntoIterator<Item = &'a Credential>,
    phones: impl IntoIterator<Item = &'a Phone>,
    person_id: PersonId,
) -> MobileKeySync {
    let credentials: BTreeMap<CredentialId, &Credential> = credentials
        .into_iter()
        .filter(|c| c.person_id == person_id)
        .map(|c| (c.id, c))
        .collect();
    let phones: BTreeMap<PhoneId, &Phone> = phones
        .into_iter()
        .filter(|p| p.person_id == person_id)
        .map(|p| (p.id, p))
        .collect();
    let mut sync = MobileKeySync::default();

    for copy in credentials.values().filter(|c| c.is_live()) {
        let (
            Some(parent_id),
            CredentialValue::MobileKey {
                phone_id: Some(phone_id),
            },
        ) = (copy.parent_id, &copy.value)
        else {
            continue;
        };
        let parent_live = credentials.get(&parent_id).is_some_and(|p| p.is_live());
        let phone_active = phones.get(phone_id).is_some_and(|p| p.active);
        if !parent_live {
            sync.revoke.push((copy.id, RevokeReason::ParentRevoked));
        } else if !phone_active {
            sync.revoke.push((copy.id, RevokeReason::PhoneDeactivated));
        }
    }

    for parent in credentials
        .values()
        .filter(|c| c.is_live() && c.is_mobile_parent())
    {
        for phone in phones.values().filter(|p| p.active) {
            let has_copy = credentials.values().any(|c| {
                c.is_live()
                    && c.parent_id == Some(parent.id)
                    && c.value
                        == CredentialValue::MobileKey {
                            phone_id: Some(phone.id),
                        }
            });
            if !has_copy {
                sync.create.push((parent.id, phone.id));
            }
        }
    }
    sync
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::id::TenantId;
    use jiff::Timestamp;

    fn parent() -> Credential {
        Credential::issue(
            CredentialId::new(10),
            TenantId::new(1),
            PersonId::new(1),
            CredentialValue::MobileKey { phone_id: None },
            Timestamp::UNIX_EPOCH,
        )
    }

    fn phone(id: u64, active: bool) -> Phone {
        Phone {
            id: PhoneId::new(id),
            person_id: PersonId::new(1),
            active,
            name: None,
            platform: None,
        }
    }

    /// Applies a sync result the way a store would, allocating ids from `next_id`.
    fn apply(credentials: &mut Vec<Credential>, sync: &MobileKeySync, next_id: &mut u64) {
        for (parent_id, phone_id) in &sync.create {
            let parent = credentials.iter().find(|c| c.id == *parent_id).unwrap();
            let copy = parent.copy_for_phone(
                CredentialId::new(*next_id),
                *phone_id,
                Timestamp::UNIX_EPOCH,
            );
            *next_id += 1;
            credentials.push(copy);
        }
        for (id, reason) in &sync.revoke {
            let c = credentials.iter_mut().find(|c| c.id == *id).unwrap();
            c.revoke(*reason).unwrap();
        }
    }

    #[test]
    fn every_active_phone_gets_a_copy_now_and_later() {
        let mut credentials = vec![parent()];
        let mut phones = vec![phone(1, true), phone(2, false)];
        let mut next_id = 100;
        let sync = mobile_key_sync(&credentials, &phones, PersonId::new(1));
        assert_eq!(sync.create, vec![(CredentialId::new(10), PhoneId::new(1))]);
        apply(&mut credentials, &sync, &mut next_id);
        assert!(mobile_key_sync(&credentials, &phones, PersonId::new(1)).is_empty());

        // A phone enrolled later gets its copy too.
        phones.push(phone(3, true));
        let sync = mobile_key_sync(&credentials, &phones, PersonId::new(1));
        assert_eq!(sync.create, vec![(CredentialId::new(10), PhoneId::new(3))]);
        apply(&mut credentials, &sync, &mut next_id);

        // Deactivating a phone revokes exactly its copy.
        phones[0].active = false;
        let sync = mobile_key_sync(&credentials, &phones, PersonId::new(1));
        assert_eq!(
            sync.revoke,
            vec![(CredentialId::new(100), RevokeReason::PhoneDeactivated)]
        );
        assert!(sync.create.is_empty());
        apply(&mut credentials, &sync, &mut next_id);
        assert!(mobile_key_sync(&credentials, &phones, PersonId::new(1)).is_empty());
    }

    #[test]
    fn revoking_the_parent_revokes_every_copy() {
        let mut credentials = vec![parent()];
        let phones = vec![phone(1, true), phone(2, true)];
        let mut next_id = 100;
        let sync = mobile_key_sync(&credentials, &phones, PersonId::new(1));
        apply(&mut credentials, &sync, &mut next_id);
        assert_eq!(credentials.len(), 3);
        credentials[0].revoke(RevokeReason::Terminated).unwrap();
        let sync = mobile_key_sync(&credentials, &phones, PersonId::new(1));
        assert_eq!(
            sync.revoke,
            vec![
                (CredentialId::new(100), RevokeReason::ParentRevoked),
                (CredentialId::new(101), RevokeReason::ParentRevoked)
            ]
        );
        assert!(sync.create.is_empty());
    }
}
