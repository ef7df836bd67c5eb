//! [`Snapshot`]: one tenant's domain objects at a moment, the input of the decision and
//! desired-state functions, plus the lookups both share.
//!
//! A snapshot is plain data; the store builds it, the pure functions read it. It holds one
//! tenant's objects only, so nothing here checks tenant ids again.

use super::access::Access;
use super::credential::{Credential, CredentialStatus, CredentialValue, DisableReason};
use super::desired;
use super::event::Event;
use super::group::Group;
use super::id::{
    AccessId, CredentialId, DoorId, EventId, GroupId, HolidayCalendarId, InvitationId,
    MembershipId, PersonId, PhoneId, ScheduleId,
};
use super::invitation::Invitation;
use super::membership::Membership;
use super::person::Person;
use super::phone::Phone;
use super::schedule::{HolidayCalendar, Schedule};
use super::topology::{Tenant, Topology};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::collections::{BTreeMap, BTreeSet};

/// An entitlement: why a person may pass, and why a terminal must hold their credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entitlement {
    /// A tenant-wide membership.
    Membership(MembershipId),
    /// Attendance of a facility event.
    Attendee(EventId),
    /// An access rule (direct or through a group).
    Access(AccessId),
}

/// One tenant's domain objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The tenant; an inactive tenant grants nothing and its terminals hold nothing.
    pub tenant: Tenant,
    /// Sites, facilities, doors and terminals.
    pub topology: Topology,
    /// People by id.
    pub people: BTreeMap<PersonId, Person>,
    /// Credentials by id (deleted ones may be present; they are ignored).
    pub credentials: BTreeMap<CredentialId, Credential>,
    /// Phones by id.
    pub phones: BTreeMap<PhoneId, Phone>,
    /// Groups by id.
    pub groups: BTreeMap<GroupId, Group>,
    /// Schedules by id.
    pub schedules: BTreeMap<ScheduleId, Schedule>,
    /// Holiday calendars by id.
    pub holiday_calendars: BTreeMap<HolidayCalendarId, HolidayCalendar>,
    /// Events by id.
    pub events: BTreeMap<EventId, Event>,
    /// Memberships by id.
    pub memberships: BTreeMap<MembershipId, Membership>,
    /// Accesses by id.
    pub accesses: BTreeMap<AccessId, Access>,
    /// Selfie-enroll invitations by id.
    pub invitations: BTreeMap<InvitationId, Invitation>,
    /// Doors in lockdown: nobody is granted there.
    pub locked_down_doors: BTreeSet<DoorId>,
    /// Filed people (no entitlement names them) brought in from the store for the call
    /// under way, with what they own, and filed again when it ends
    /// ([`super::residency`]). The decision indexes of a revision do not cover them.
    pub visitors: BTreeSet<PersonId>,
}

impl Snapshot {
    /// An empty snapshot of `tenant`.
    pub fn new(tenant: Tenant) -> Snapshot {
        Snapshot {
            tenant,
            topology: Topology::default(),
            people: BTreeMap::new(),
            credentials: BTreeMap::new(),
            phones: BTreeMap::new(),
            groups: BTreeMap::new(),
            schedules: BTreeMap::new(),
            holiday_calendars: BTreeMap::new(),
            events: BTreeMap::new(),
            memberships: BTreeMap::new(),
            accesses: BTreeMap::new(),
            invitations: BTreeMap::new(),
            locked_down_doors: BTreeSet::new(),
            visitors: BTreeSet::new(),
        }
    }

    /// The groups `person` is a member of.
    pub fn groups_of(&self, person: PersonId) -> BTreeSet<GroupId> {
        self.groups
            .values()
            .filter(|g| g.members.contains(&person))
            .map(|g| g.id)
            .collect()
    }

    /// The people an access applies to: its people and the members of its groups.
    pub fn access_subjects(&self, access: &Access) -> BTreeSet<PersonId> {
        let mut subjects = access.person_ids.clone();
        for group_id in &access.group_ids {
            if let Some(group) = self.groups.get(group_id) {
                subjects.extend(group.members.iter().copied());
            }
        }
        subjects
    }

    /// Whether schedule `schedule_id` is active at `at` in `tz`. No schedule means 24/7; a
    /// schedule id that does not resolve is never active (fail closed).
    pub fn schedule_active(
        &self,
        schedule_id: Option<ScheduleId>,
        tz: &TimeZone,
        at: Timestamp,
    ) -> bool {
        let Some(schedule_id) = schedule_id else {
            return true;
        };
        let Some(schedule) = self.schedules.get(&schedule_id) else {
            return false;
        };
        let calendars: Vec<&HolidayCalendar> = schedule
            .holiday_calendar_ids
            .iter()
            .filter_map(|id| self.holiday_calendars.get(id))
            .collect();
        schedule.is_active(at, tz, &calendars)
    }

    /// The disable reasons of `credential` at `at` that do not depend on distribution: its
    /// own, plus for a mobile-key copy its parent's and `revoked` if its phone is gone or
    /// inactive (before the phone sync has revoked it).
    pub fn disable_reasons(
        &self,
        credential: &Credential,
        at: Timestamp,
    ) -> BTreeSet<DisableReason> {
        let parent = credential
            .parent_id
            .map(|parent_id| self.credentials.get(&parent_id));
        self.disable_reasons_under(credential, parent, at)
    }

    /// [`Snapshot::disable_reasons`] with the parent given: `Some(parent)` for a copy
    /// (`Some(None)` when the parent is gone), `None` for a credential that is no copy.
    fn disable_reasons_under(
        &self,
        credential: &Credential,
        parent: Option<Option<&Credential>>,
        at: Timestamp,
    ) -> BTreeSet<DisableReason> {
        let mut reasons = credential.disable_reasons(at);
        match parent {
            None => {}
            Some(Some(parent)) if !parent.is_deleted() => {
                reasons.extend(parent.disable_reasons(at));
            }
            Some(_) => {
                reasons.insert(DisableReason::Revoked);
            }
        }
        if let CredentialValue::MobileKey {
            phone_id: Some(phone_id),
        } = credential.value
        {
            if !self.phones.get(&phone_id).is_some_and(|p| p.active) {
                reasons.insert(DisableReason::Revoked);
            }
        }
        reasons
    }

    /// The effective status of a credential at `at` (docs/domain.md §7.5), or `None` if it is
    /// not in the snapshot.
    ///
    /// `needs_provisioning` is added when nothing else disables it but it is not where it
    /// must be to be usable: a terminal-held credential (face, fingerprint, card, PIN, QR)
    /// that no terminal's desired state contains (enrolled, not distributed), or a
    /// mobile-key parent with no live copy on an active phone.
    pub fn credential_status(&self, id: CredentialId, at: Timestamp) -> Option<CredentialStatus> {
        let credential = self.credentials.get(&id)?;
        Some(self.status_as_held(credential, at))
    }

    /// The status `credential` has at `at` once it is the snapshot's record of its id: the
    /// status of a credential being issued or changed, computed before the change is
    /// applied and without copying the snapshot. The same as
    /// [`Snapshot::credential_status`] on a snapshot holding `credential`.
    pub fn status_as_held(&self, credential: &Credential, at: Timestamp) -> CredentialStatus {
        if credential.is_deleted() {
            return CredentialStatus::Deleted;
        }
        let mut reasons = self.disable_reasons(credential, at);
        if reasons.is_empty() && self.needs_provisioning(credential, at) {
            reasons.insert(DisableReason::NeedsProvisioning);
        }
        if reasons.is_empty() {
            CredentialStatus::Active
        } else {
            CredentialStatus::Disabled(reasons)
        }
    }

    fn needs_provisioning(&self, credential: &Credential, at: Timestamp) -> bool {
        if credential.factor().is_terminal_held() {
            !self
                .topology
                .terminals
                .keys()
                .any(|terminal| desired::holds(self, *terminal, credential, at))
        } else if credential.is_mobile_parent() {
            // The copies are judged under `credential` as given, which may be a new version
            // of the parent the snapshot holds.
            !self.credentials.values().any(|copy| {
                copy.parent_id == Some(credential.id)
                    && copy.is_live()
                    && self
                        .disable_reasons_under(copy, Some(Some(credential)), at)
                        .is_empty()
            })
        } else {
            false
        }
    }
}
