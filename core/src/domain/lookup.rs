//! Indexes over one snapshot for the decision function: credentials by the value a reader
//! presents (card, PIN, QR code, cloud-key token) and memberships by person, so a decision
//! costs what it touches rather than a scan of every credential and membership. A
//! [`Lookup`] describes exactly the snapshot it was built from; the core keeps one per
//! tenant for the snapshot's revision.

use std::collections::HashMap;

use super::credential::{Credential, CredentialValue};
use super::decision::PresentedFactor;
use super::id::{CredentialId, MembershipId, PersonId};
use super::snapshot::Snapshot;
use crate::card::WiegandCard;

/// A presented value, as the decision function compares it (PINs, QR codes and tokens
/// trimmed, as presented values are).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PresentedValue {
    Card(WiegandCard),
    Pin(String),
    Qr(String),
    CloudKey(String),
}

impl PresentedValue {
    fn of_credential(value: &CredentialValue) -> Option<PresentedValue> {
        match value {
            CredentialValue::Card(card) => Some(PresentedValue::Card(*card)),
            CredentialValue::Pin(pin) => Some(PresentedValue::Pin(pin.expose().to_owned())),
            CredentialValue::Qr(qr) => Some(PresentedValue::Qr(qr.expose().to_owned())),
            CredentialValue::CloudKey { token, .. } => {
                Some(PresentedValue::CloudKey(token.expose().to_owned()))
            }
            _ => None,
        }
    }

    fn of_factor(factor: &PresentedFactor) -> Option<PresentedValue> {
        match factor {
            PresentedFactor::Card(card) => Some(PresentedValue::Card(*card)),
            PresentedFactor::Pin(pin) => Some(PresentedValue::Pin(pin.trim().to_owned())),
            PresentedFactor::Qr(qr) => Some(PresentedValue::Qr(qr.trim().to_owned())),
            PresentedFactor::CloudKey { token, .. } => {
                Some(PresentedValue::CloudKey(token.trim().to_owned()))
            }
            _ => None,
        }
    }
}

/// Credentials by presented value and memberships by person, for one snapshot.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    by_value: HashMap<PresentedValue, Vec<CredentialId>>,
    memberships: HashMap<PersonId, Vec<MembershipId>>,
}

impl Lookup {
    /// The indexes of `snapshot` (ids in ascending order under each key).
    pub fn of(snapshot: &Snapshot) -> Lookup {
        let mut lookup = Lookup::default();
        for credential in snapshot.credentials.values() {
            if let Some(key) = PresentedValue::of_credential(&credential.value) {
                lookup.by_value.entry(key).or_default().push(credential.id);
            }
        }
        for membership in snapshot.memberships.values() {
            lookup
                .memberships
                .entry(membership.person_id)
                .or_default()
                .push(membership.id);
        }
        lookup
    }

    /// The credentials that can stand for `factor`, in id order: those holding its value,
    /// or the one a matcher named (face, fingerprint, mobile key). The snapshot's visitors
    /// are not indexed: their credentials are matched by a scan (visitors are rare and
    /// only there for the call that brought them).
    pub(crate) fn candidates<'s>(
        &self,
        snapshot: &'s Snapshot,
        factor: &PresentedFactor,
    ) -> Vec<&'s Credential> {
        let named = match factor {
            PresentedFactor::Face { credential_id, .. }
            | PresentedFactor::Fingerprint { credential_id }
            | PresentedFactor::MobileKey { credential_id } => Some(*credential_id),
            _ => None,
        };
        if let Some(id) = named {
            return snapshot.credentials.get(&id).into_iter().collect();
        }
        let Some(key) = PresentedValue::of_factor(factor) else {
            return Vec::new();
        };
        let mut found: Vec<&Credential> = self
            .by_value
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(|id| snapshot.credentials.get(id))
            .collect();
        if !snapshot.visitors.is_empty() {
            found.extend(snapshot.credentials.values().filter(|c| {
                snapshot.visitors.contains(&c.person_id)
                    && PresentedValue::of_credential(&c.value).as_ref() == Some(&key)
            }));
            found.sort_by_key(|c| c.id);
            found.dedup_by_key(|c| c.id);
        }
        found
    }

    /// The memberships of `person`, in id order.
    pub(crate) fn memberships_of(&self, person: PersonId) -> &[MembershipId] {
        self.memberships.get(&person).map_or(&[], Vec::as_slice)
    }
}
