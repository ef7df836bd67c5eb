//! A write's plan: what one change puts into the store (records, blobs, audit entries,
//! access events, outbox messages, idempotent replies) and how it is then applied to the
//! tenant's in-memory snapshot; and how each entity lives in a snapshot.

use jiff::Timestamp;
use serde_json::Value as Json;

use crate::domain::Snapshot;
use crate::error::AppError;
use crate::records::Stored;
use crate::store::{AuditEntry, Blob, Change, IdempotentReply, Kind, NewAccessEvent, Write};

/// One change to apply to the in-memory snapshot once the store committed.
type Apply = Box<dyn FnOnce(&mut Snapshot) + Send>;

/// Everything one write changes: the store change and how to apply it to the snapshot.
#[derive(Default)]
pub struct Plan {
    pub(super) change: Change,
    pub(super) apply: Vec<Apply>,
    pub(super) ids: Vec<u64>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("change", &self.change)
            .field("apply", &self.apply.len())
            .finish_non_exhaustive()
    }
}

impl Plan {
    /// A fresh record id (reserved from the store before the write ran).
    pub fn next_id(&mut self) -> Result<u64, AppError> {
        self.ids.pop().ok_or_else(|| {
            tracing::error!("a write needed more ids than it reserved");
            AppError::internal()
        })
    }

    /// Creates or replaces `entity` (and, with `blob`, its binary data).
    pub fn put<T>(&mut self, entity: T, blob: Option<Blob>)
    where
        T: Stored + InSnapshot + Send + 'static,
    {
        self.change.writes.push(Write::Put {
            kind: T::KIND,
            id: entity.record_id(),
            data: entity.to_document(),
            unique: entity.unique_keys(),
            blob,
        });
        self.apply.push(Box::new(move |s| entity.insert_into(s)));
    }

    /// Deletes the record of kind `T` with `id`.
    pub fn delete<T>(&mut self, id: u64)
    where
        T: Stored + InSnapshot,
    {
        self.change.writes.push(Write::Delete { kind: T::KIND, id });
        self.apply.push(Box::new(move |s| T::remove_from(s, id)));
    }

    /// Records `action` on a record in the audit trail.
    pub fn audit(&mut self, action: &str, kind: Kind, record_id: Option<u64>) {
        self.change.audit.push(AuditEntry {
            action: action.to_owned(),
            kind,
            record_id,
            actor: String::new(),
        });
    }

    /// Appends an access event (with, when the tenant has webhook endpoints, the webhook
    /// event describing it: `Core::prepare_webhook_events`).
    pub fn access_event(&mut self, occurred_at: Timestamp, data: Json) {
        self.change
            .access_events
            .push(NewAccessEvent { occurred_at, data });
    }

    /// Appends a message to the outbox, in the same transaction.
    pub fn message(&mut self, message: crate::store::NewMessage) {
        self.change.messages.push(message);
    }

    /// Remembers the reply of an idempotent create, in the same transaction.
    pub fn remember(&mut self, key: &Idempotency, status: u16, body: &Json) {
        self.change.idempotency = Some(IdempotentReply {
            key: key.key.clone(),
            fingerprint: key.fingerprint.clone(),
            status,
            body: body.to_string(),
        });
    }
}

/// An `Idempotency-Key` with the digest of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The key.
    pub key: String,
    /// Digest of method, path and body.
    pub fingerprint: String,
}

/// How an entity lives in a [`Snapshot`].
pub trait InSnapshot: Sized {
    /// Inserts or replaces it.
    fn insert_into(self, snapshot: &mut Snapshot);
    /// Removes the one with `id`.
    fn remove_from(snapshot: &mut Snapshot, id: u64);
}

macro_rules! in_snapshot {
    ($ty:ty, $id:ident, |$s:ident| $map:expr) => {
        impl InSnapshot for $ty {
            fn insert_into(self, $s: &mut Snapshot) {
                $map.insert(self.id, self);
            }
            fn remove_from($s: &mut Snapshot, id: u64) {
                $map.remove(&crate::domain::$id::new(id));
            }
        }
    };
}

in_snapshot!(crate::domain::Site, SiteId, |s| s.topology.sites);
in_snapshot!(crate::domain::Facility, FacilityId, |s| s
    .topology
    .facilities);
in_snapshot!(crate::domain::Door, DoorId, |s| s.topology.doors);
in_snapshot!(crate::domain::Terminal, TerminalId, |s| s
    .topology
    .terminals);
in_snapshot!(crate::domain::Person, PersonId, |s| s.people);
in_snapshot!(crate::domain::Credential, CredentialId, |s| s.credentials);
in_snapshot!(crate::domain::Phone, PhoneId, |s| s.phones);
in_snapshot!(crate::domain::Group, GroupId, |s| s.groups);
in_snapshot!(crate::domain::Schedule, ScheduleId, |s| s.schedules);
in_snapshot!(crate::domain::HolidayCalendar, HolidayCalendarId, |s| s
    .holiday_calendars);
in_snapshot!(crate::domain::Event, EventId, |s| s.events);
in_snapshot!(crate::domain::Membership, MembershipId, |s| s.memberships);
in_snapshot!(crate::domain::Access, AccessId, |s| s.accesses);
in_snapshot!(crate::domain::Invitation, InvitationId, |s| s.invitations);
