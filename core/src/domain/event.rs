//! Facility events and their attendees (Veridas events, docs/domain.md §7.3, §7.5, §8.1 rule 3).
//!
//! An event takes place at a facility during `[starts_at, ends_at)`. Attendees are added and
//! removed one by one. An attendee is entitled at the facility's doors and terminals only
//! while the event is live; deleting the event ends every attendee's entitlement.

use super::id::{EventId, FacilityId, PersonId, TenantId};
use super::validation::{InvalidField, Window, required_text};
use jiff::Timestamp;
use std::collections::BTreeMap;

/// Where an event is in its lifecycle at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventStatus {
    /// Before `starts_at`.
    Scheduled,
    /// In `[starts_at, ends_at)`.
    Live,
    /// At or after `ends_at`.
    Ended,
    /// Deleted (final).
    Deleted,
}

/// A change to an event that its state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The event is deleted.
    #[error("event is deleted")]
    Deleted,
    /// The person already attends.
    #[error("person is already an attendee")]
    AlreadyAttending,
    /// The person does not attend.
    #[error("person is not an attendee")]
    NotAttending,
}

/// An event at a facility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its id.
    pub id: EventId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// Where it takes place; its terminals and doors (and those of nested facilities) are
    /// covered.
    pub facility_id: FacilityId,
    /// Display name (may be empty).
    pub name: String,
    window: Window,
    attendees: BTreeMap<PersonId, Timestamp>,
    deleted: bool,
}

impl Event {
    /// An event during `[starts_at, ends_at)` (fields `starts_at`, `ends_at`).
    pub fn new(
        id: EventId,
        tenant_id: TenantId,
        facility_id: FacilityId,
        name: &str,
        starts_at: Timestamp,
        ends_at: Timestamp,
    ) -> Result<Event, InvalidField> {
        let name = if name.trim().is_empty() {
            String::new()
        } else {
            required_text("name", name, 200)?
        };
        Ok(Event {
            id,
            tenant_id,
            facility_id,
            name,
            window: Window::between(starts_at, ends_at, "starts_at", "ends_at")?,
            attendees: BTreeMap::new(),
            deleted: false,
        })
    }

    /// An event exactly as the store saved it: its window, its attendees with when each
    /// was added, and whether it is deleted.
    ///
    /// For the store only, when reading an event back: the name is not validated and the
    /// attendees and `deleted` are set directly, bypassing [`Event::add_attendee`] and
    /// [`Event::delete`].
    pub fn restore(
        id: EventId,
        tenant_id: TenantId,
        facility_id: FacilityId,
        name: String,
        window: Window,
        attendees: BTreeMap<PersonId, Timestamp>,
        deleted: bool,
    ) -> Event {
        Event {
            id,
            tenant_id,
            facility_id,
            name,
            window,
            attendees,
            deleted,
        }
    }

    /// `[starts_at, ends_at)`.
    pub fn window(&self) -> Window {
        self.window
    }

    /// The lifecycle status at `at`.
    pub fn status(&self, at: Timestamp) -> EventStatus {
        if self.deleted {
            EventStatus::Deleted
        } else if self.window.is_before(at) {
            EventStatus::Scheduled
        } else if self.window.is_after(at) {
            EventStatus::Ended
        } else {
            EventStatus::Live
        }
    }

    /// Whether it is deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted
    }

    /// The attendees, with when each was added.
    pub fn attendees(&self) -> &BTreeMap<PersonId, Timestamp> {
        &self.attendees
    }

    /// Whether `person` attends.
    pub fn is_attendee(&self, person: PersonId) -> bool {
        self.attendees.contains_key(&person)
    }

    /// Adds one attendee.
    pub fn add_attendee(
        &mut self,
        person: PersonId,
        added_at: Timestamp,
    ) -> Result<(), EventError> {
        if self.deleted {
            return Err(EventError::Deleted);
        }
        if self.attendees.contains_key(&person) {
            return Err(EventError::AlreadyAttending);
        }
        self.attendees.insert(person, added_at);
        Ok(())
    }

    /// Removes one attendee.
    pub fn remove_attendee(&mut self, person: PersonId) -> Result<(), EventError> {
        if self.deleted {
            return Err(EventError::Deleted);
        }
        self.attendees
            .remove(&person)
            .map(|_| ())
            .ok_or(EventError::NotAttending)
    }

    /// Deletes the event (final).
    pub fn delete(&mut self) -> Result<(), EventError> {
        if self.deleted {
            return Err(EventError::Deleted);
        }
        self.deleted = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn event() -> Event {
        Event::new(
            EventId::new(1),
            TenantId::new(1),
            FacilityId::new(1),
            "Concert",
            ts(100),
            ts(200),
        )
        .unwrap()
    }

    #[test]
    fn lifecycle_follows_the_window() {
        let mut e = event();
        assert_eq!(e.status(ts(99)), EventStatus::Scheduled);
        assert_eq!(e.status(ts(100)), EventStatus::Live);
        assert_eq!(e.status(ts(200)), EventStatus::Ended);
        e.delete().unwrap();
        assert_eq!(e.status(ts(150)), EventStatus::Deleted);
        assert_eq!(e.delete(), Err(EventError::Deleted));
    }

    #[test]
    fn attendees_one_by_one() {
        let mut e = event();
        let p = PersonId::new(7);
        e.add_attendee(p, ts(1)).unwrap();
        assert_eq!(e.add_attendee(p, ts(2)), Err(EventError::AlreadyAttending));
        assert!(e.is_attendee(p));
        e.remove_attendee(p).unwrap();
        assert_eq!(e.remove_attendee(p), Err(EventError::NotAttending));
        e.delete().unwrap();
        assert_eq!(e.add_attendee(p, ts(3)), Err(EventError::Deleted));
    }

    #[test]
    fn end_must_follow_start() {
        let err = Event::new(
            EventId::new(1),
            TenantId::new(1),
            FacilityId::new(1),
            "",
            ts(200),
            ts(100),
        )
        .unwrap_err();
        assert_eq!(err.field, "ends_at");
    }
}
