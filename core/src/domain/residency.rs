//! Which people a tenant's [`Snapshot`] keeps in memory: those an entitlement names (a
//! membership, an event's attendance, an access, a group). Terminals hold and decisions
//! grant only such people, so the decision and desired-state functions need nobody else;
//! everyone else is *filed* (kept in the store alone) and brought into the snapshot as a
//! *visitor* for the one call that is about them. Memory then grows with the people who
//! are entitled, not with every person ever enrolled.
//!
//! The rule is conservative: any membership, event or access naming a person counts,
//! whatever its state (removed, ended, deleted), as does being in a group.

use std::collections::BTreeSet;

use super::id::PersonId;
use super::snapshot::Snapshot;

impl Snapshot {
    /// Every person some entitlement names (with repeats).
    fn named_people(&self) -> impl Iterator<Item = PersonId> + '_ {
        let members = self.memberships.values().map(|m| m.person_id);
        let attendees = self
            .events
            .values()
            .flat_map(|e| e.attendees().keys().copied());
        let subjects = self
            .accesses
            .values()
            .flat_map(|a| a.person_ids.iter().copied());
        let grouped = self.groups.values().flat_map(|g| g.members.iter().copied());
        members.chain(attendees).chain(subjects).chain(grouped)
    }

    /// The people some entitlement names: those the snapshot must keep.
    pub fn entitled_people(&self) -> BTreeSet<PersonId> {
        self.named_people().collect()
    }

    /// Those of `candidates` some entitlement names (one pass over the entitlements).
    pub fn entitled_among(&self, candidates: &BTreeSet<PersonId>) -> BTreeSet<PersonId> {
        if candidates.is_empty() {
            return BTreeSet::new();
        }
        self.named_people()
            .filter(|p| candidates.contains(p))
            .collect()
    }

    /// Takes `people` and what they own (credentials, phones, invitations) out of the
    /// snapshot, and out of the visitors.
    pub fn file(&mut self, people: &BTreeSet<PersonId>) {
        if people.is_empty() {
            return;
        }
        for person in people {
            self.people.remove(person);
            self.visitors.remove(person);
        }
        self.credentials
            .retain(|_, c| !people.contains(&c.person_id));
        self.phones.retain(|_, p| !people.contains(&p.person_id));
        self.invitations
            .retain(|_, i| !people.contains(&i.person_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        AcsId, Credential, CredentialId, CredentialValue, Group, GroupId, Membership, MembershipId,
        Person, Tenant, TenantId,
    };
    use jiff::Timestamp;

    const TENANT: TenantId = TenantId::new(1);

    fn person(s: &mut Snapshot, id: u64) {
        let p = Person::new(
            PersonId::new(id),
            TENANT,
            AcsId::parse(&format!("P-{id}")).unwrap(),
            "",
        );
        s.people.insert(p.id, p);
        let c = Credential::issue(
            CredentialId::new(id * 100),
            TENANT,
            PersonId::new(id),
            CredentialValue::Pin(crate::domain::Pin::parse(&format!("{id}4321")).unwrap()),
            Timestamp::UNIX_EPOCH,
        );
        s.credentials.insert(c.id, c);
    }

    #[test]
    fn only_the_people_an_entitlement_names_stay() {
        let mut s = Snapshot::new(Tenant::new(TENANT, "T").unwrap());
        for id in 1..=4 {
            person(&mut s, id);
        }
        let m = Membership::new(
            MembershipId::new(10),
            TENANT,
            PersonId::new(1),
            Timestamp::UNIX_EPOCH,
        );
        s.memberships.insert(m.id, m);
        let mut g = Group::new(GroupId::new(11), TENANT, "G").unwrap();
        g.members.insert(PersonId::new(3));
        s.groups.insert(g.id, g);
        s.visitors.insert(PersonId::new(2));

        let candidates = BTreeSet::from([PersonId::new(1), PersonId::new(2)]);
        assert_eq!(
            s.entitled_among(&candidates),
            BTreeSet::from([PersonId::new(1)])
        );

        let keep = s.entitled_people();
        let filed = s
            .people
            .keys()
            .filter(|p| !keep.contains(p))
            .copied()
            .collect();
        s.file(&filed);
        let kept: Vec<u64> = s.people.keys().map(|p| p.get()).collect();
        assert_eq!(kept, [1, 3]);
        let credentials: Vec<u64> = s.credentials.keys().map(|c| c.get()).collect();
        assert_eq!(credentials, [100, 300]);
        assert!(s.visitors.is_empty());
    }
}
