//! How domain objects are stored: each entity ⇄ a JSON document in a [`Record`], with the
//! uniqueness claims the store must enforce, and a tenant's records ⇄ a [`Snapshot`].
//!
//! This is the store's serde boundary (the domain has no serde). Documents are versioned by
//! their shape only through additive changes: a new optional member gets a default when it
//! is missing, so old rows stay readable.

use serde_json::Value as Json;

use crate::domain::{Snapshot, Tenant, TenantId};
use crate::store::{Kind, Record, UniqueKey};

/// A stored document could not be turned back into a domain object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {id}: {reason}")]
pub struct CodecError {
    /// The record's kind.
    pub kind: Kind,
    /// The record's id.
    pub id: u64,
    /// What is wrong.
    pub reason: String,
}

/// A domain entity the store keeps as one record.
pub trait Stored: Sized {
    /// Its record kind.
    const KIND: Kind;
    /// Its id (the record id).
    fn record_id(&self) -> u64;
    /// Its document: every field, secrets included (the store's sealing layer seals or
    /// digests them at rest, `store::secrets`; API views are built elsewhere and redact
    /// them).
    fn to_document(&self) -> Json;
    /// The entity back from its document.
    fn from_document(tenant: TenantId, id: u64, document: &Json) -> Result<Self, CodecError>;
    /// The claims the store must keep unique within the tenant while this object lives
    /// (e.g. `acs_id`, a live card's facility code and number, a PIN, a QR payload).
    fn unique_keys(&self) -> Vec<UniqueKey>;
}

mod codec;
pub(crate) mod credential;
mod entitlement;
pub mod invitation;
mod people;
mod schedule;
pub(crate) mod topology;

/// The [`Snapshot`] of `tenant` rebuilt from its records (any order, every kind).
///
/// Each record becomes its entity with [`Stored::from_document`]; the first record that
/// cannot be read back fails the whole snapshot. Lockdowns are not records, so
/// `locked_down_doors` starts empty. Deleted objects that are still stored (credentials,
/// events, accesses being deleted) are included, as the domain expects.
pub fn snapshot(tenant: Tenant, records: &[Record]) -> Result<Snapshot, CodecError> {
    let mut snapshot = Snapshot::new(tenant);
    for record in records {
        insert(&mut snapshot, record)?;
    }
    Ok(snapshot)
}

/// Reads `record` into `snapshot` as its entity (replacing the one with its id).
pub fn insert(snapshot: &mut Snapshot, record: &Record) -> Result<(), CodecError> {
    fn read<T: Stored>(tenant: TenantId, record: &Record) -> Result<T, CodecError> {
        T::from_document(tenant, record.id, &record.data)
    }

    let id = snapshot.tenant.id;
    match record.kind {
        Kind::Site => {
            let site: crate::domain::Site = read(id, record)?;
            snapshot.topology.sites.insert(site.id, site);
        }
        Kind::Facility => {
            let facility: crate::domain::Facility = read(id, record)?;
            snapshot.topology.facilities.insert(facility.id, facility);
        }
        Kind::Door => {
            let door: crate::domain::Door = read(id, record)?;
            snapshot.topology.doors.insert(door.id, door);
        }
        Kind::Terminal => {
            let terminal: crate::domain::Terminal = read(id, record)?;
            snapshot.topology.terminals.insert(terminal.id, terminal);
        }
        Kind::Person => {
            let person: crate::domain::Person = read(id, record)?;
            snapshot.people.insert(person.id, person);
        }
        Kind::Credential => {
            let credential: crate::domain::Credential = read(id, record)?;
            snapshot.credentials.insert(credential.id, credential);
        }
        Kind::Phone => {
            let phone: crate::domain::Phone = read(id, record)?;
            snapshot.phones.insert(phone.id, phone);
        }
        Kind::Group => {
            let group: crate::domain::Group = read(id, record)?;
            snapshot.groups.insert(group.id, group);
        }
        Kind::Schedule => {
            let schedule: crate::domain::Schedule = read(id, record)?;
            snapshot.schedules.insert(schedule.id, schedule);
        }
        Kind::HolidayCalendar => {
            let calendar: crate::domain::HolidayCalendar = read(id, record)?;
            snapshot.holiday_calendars.insert(calendar.id, calendar);
        }
        Kind::Event => {
            let event: crate::domain::Event = read(id, record)?;
            snapshot.events.insert(event.id, event);
        }
        Kind::Membership => {
            let membership: crate::domain::Membership = read(id, record)?;
            snapshot.memberships.insert(membership.id, membership);
        }
        Kind::Access => {
            let access: crate::domain::Access = read(id, record)?;
            snapshot.accesses.insert(access.id, access);
        }
        Kind::Invitation => {
            let invitation: crate::domain::Invitation = read(id, record)?;
            snapshot.invitations.insert(invitation.id, invitation);
        }
        // Not part of a snapshot: the application reads enrollments by kind.
        Kind::Enrollment => {}
        // Webhook endpoints live in a table of their own, never among the records.
        Kind::Webhook => {}
    }
    Ok(())
}
