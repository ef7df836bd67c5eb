//! Memberships: continuous access for a person until removed, to the whole tenant or to one
//! facility (Veridas members, docs/domain.md §8.1 rule 4).
//!
//! A membership is in effect during `[created_at, removed_at)`: at every door and on every
//! terminal of the tenant, or, scoped to a facility ([`Membership::within`]), at the doors
//! within that facility (its sub-facilities included) and on the terminals serving them.

use super::id::{FacilityId, MembershipId, PersonId, TenantId};
use jiff::Timestamp;

/// Removing a membership that is already removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("membership is already removed")]
pub struct AlreadyRemoved;

/// A person's membership of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Its id.
    pub id: MembershipId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The member.
    pub person_id: PersonId,
    /// The facility it is limited to; `None`: the whole tenant.
    pub facility_id: Option<FacilityId>,
    /// When it started.
    pub created_at: Timestamp,
    removed_at: Option<Timestamp>,
}

impl Membership {
    /// A tenant-wide membership starting at `created_at`.
    pub fn new(
        id: MembershipId,
        tenant_id: TenantId,
        person_id: PersonId,
        created_at: Timestamp,
    ) -> Membership {
        Membership {
            id,
            tenant_id,
            person_id,
            facility_id: None,
            created_at,
            removed_at: None,
        }
    }

    /// The same membership limited to the doors within `facility`.
    pub fn within(mut self, facility: FacilityId) -> Membership {
        self.facility_id = Some(facility);
        self
    }

    /// A membership exactly as the store saved it, `removed_at` included.
    ///
    /// For the store only, when reading a membership back: `removed_at` is set directly,
    /// bypassing [`Membership::remove`] (and its clamping to `created_at`).
    pub fn restore(
        id: MembershipId,
        tenant_id: TenantId,
        person_id: PersonId,
        facility_id: Option<FacilityId>,
        created_at: Timestamp,
        removed_at: Option<Timestamp>,
    ) -> Membership {
        Membership {
            id,
            tenant_id,
            person_id,
            facility_id,
            created_at,
            removed_at,
        }
    }

    /// When it was removed, if it was.
    pub fn removed_at(&self) -> Option<Timestamp> {
        self.removed_at
    }

    /// Removes it as of `at` (never earlier than `created_at`; final).
    pub fn remove(&mut self, at: Timestamp) -> Result<(), AlreadyRemoved> {
        if self.removed_at.is_some() {
            return Err(AlreadyRemoved);
        }
        self.removed_at = Some(at.max(self.created_at));
        Ok(())
    }

    /// Whether it is in effect at `at`.
    pub fn is_active_at(&self, at: Timestamp) -> bool {
        self.created_at <= at && self.removed_at.is_none_or(|r| at < r)
    }

    /// The instants after `at` where [`Membership::is_active_at`] may flip.
    pub fn boundaries_after(&self, at: Timestamp) -> impl Iterator<Item = Timestamp> {
        [Some(self.created_at), self.removed_at]
            .into_iter()
            .flatten()
            .filter(move |b| *b > at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_until_removed() {
        let ts = |s| Timestamp::from_second(s).unwrap();
        let mut m = Membership::new(
            MembershipId::new(1),
            TenantId::new(1),
            PersonId::new(1),
            ts(10),
        );
        assert!(!m.is_active_at(ts(9)));
        assert!(m.is_active_at(ts(1_000_000)));
        m.remove(ts(50)).unwrap();
        assert_eq!(m.remove(ts(60)), Err(AlreadyRemoved));
        assert!(m.is_active_at(ts(49)));
        assert!(!m.is_active_at(ts(50)));
        assert_eq!(m.boundaries_after(ts(10)).collect::<Vec<_>>(), vec![ts(50)]);
    }
}
