//! Documents of the entitlements: facility events with their attendees, memberships and
//! accesses.
//!
//! Shapes (ids are numbers, instants RFC 3339 text, `?` members may be `null` or missing):
//!
//! - event: `{facility_id, name, starts_at, ends_at, attendees, deleted}` (the window's
//!   bounds are always present for events made by `Event::new`) – `attendees` is a
//!   list of `{person_id, added_at}` ordered by person id, `deleted` the final flag the
//!   domain keeps privately (missing reads as `false`);
//! - membership: `{person_id, facility_id?, created_at, removed_at?}` (no `facility_id`:
//!   the whole tenant);
//! - access: `{name, kind, effect, valid_from?, valid_to?, schedule_id?, site_id?, doors, person_ids,
//!   group_ids, status}` – `kind` is `permanent` or `temporary`, `effect` `permit` or
//!   `deny`, each door `{door_id, lock_unlock, in_auth_types?, out_auth_types?}` (auth
//!   types by API name; missing or `null`: every type the door takes), `status` the
//!   provisioning status (`initial`, `creating`, `ready`, `updating`, `deleting`,
//!   `deleted`). A permit stored before missing lists meant the door's, with both lists
//!   empty, granted nothing; it is read as taking the door's types in both directions.
//!
//! None claims a unique key: the domain lets a person attend an event once (one entry per
//! person inside the event's own document), but makes no membership or access unique.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::codec::{
    auth_types_opt, decode, encode, invalid, mirror_enum, rfc3339, rfc3339_opt, window,
};
use super::{CodecError, Stored};
use crate::domain::{
    Access, AccessDoor, AccessId, AccessKind, AuthType, DoorId, Effect, Event, EventId, FacilityId,
    GroupId, Membership, MembershipId, PersonId, ProvisioningStatus, ScheduleId, SiteId, TenantId,
};
use crate::store::{Kind, UniqueKey};

#[derive(Serialize, Deserialize)]
struct AttendeeDoc {
    person_id: u64,
    #[serde(with = "rfc3339")]
    added_at: jiff::Timestamp,
}

#[derive(Serialize, Deserialize)]
struct EventDoc {
    facility_id: u64,
    #[serde(default)]
    name: String,
    // Always both present for events made by `Event::new`; kept optional so that any
    // window `Event::restore` accepts round-trips.
    #[serde(default, with = "rfc3339_opt")]
    starts_at: Option<jiff::Timestamp>,
    #[serde(default, with = "rfc3339_opt")]
    ends_at: Option<jiff::Timestamp>,
    #[serde(default)]
    attendees: Vec<AttendeeDoc>,
    #[serde(default)]
    deleted: bool,
}

impl Stored for Event {
    const KIND: Kind = Kind::Event;

    fn record_id(&self) -> u64 {
        self.id.get()
    }

    fn to_document(&self) -> Json {
        encode(&EventDoc {
            facility_id: self.facility_id.get(),
            name: self.name.clone(),
            starts_at: self.window().from(),
            ends_at: self.window().to(),
            attendees: self
                .attendees()
                .iter()
                .map(|(person, added_at)| AttendeeDoc {
                    person_id: person.get(),
                    added_at: *added_at,
                })
                .collect(),
            deleted: self.is_deleted(),
        })
    }

    fn from_document(tenant: TenantId, id: u64, document: &Json) -> Result<Self, CodecError> {
        let doc: EventDoc = decode(Self::KIND, id, document)?;
        let window = window(
            Self::KIND,
            id,
            doc.starts_at,
            doc.ends_at,
            "starts_at",
            "ends_at",
        )?;
        let mut attendees = BTreeMap::new();
        for attendee in doc.attendees {
            let person = PersonId::new(attendee.person_id);
            if attendees.insert(person, attendee.added_at).is_some() {
                return Err(invalid(
                    Self::KIND,
                    id,
                    format!("person {person} is listed twice among the attendees"),
                ));
            }
        }
        Ok(Event::restore(
            EventId::new(id),
            tenant,
            FacilityId::new(doc.facility_id),
            doc.name,
            window,
            attendees,
            doc.deleted,
        ))
    }

    fn unique_keys(&self) -> Vec<UniqueKey> {
        Vec::new()
    }
}

#[derive(Serialize, Deserialize)]
struct MembershipDoc {
    person_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    facility_id: Option<u64>,
    #[serde(with = "rfc3339")]
    created_at: jiff::Timestamp,
    #[serde(default, with = "rfc3339_opt")]
    removed_at: Option<jiff::Timestamp>,
}

impl Stored for Membership {
    const KIND: Kind = Kind::Membership;

    fn record_id(&self) -> u64 {
        self.id.get()
    }

    fn to_document(&self) -> Json {
        encode(&MembershipDoc {
            person_id: self.person_id.get(),
            facility_id: self.facility_id.map(FacilityId::get),
            created_at: self.created_at,
            removed_at: self.removed_at(),
        })
    }

    fn from_document(tenant: TenantId, id: u64, document: &Json) -> Result<Self, CodecError> {
        let doc: MembershipDoc = decode(Self::KIND, id, document)?;
        Ok(Membership::restore(
            MembershipId::new(id),
            tenant,
            PersonId::new(doc.person_id),
            doc.facility_id.map(FacilityId::new),
            doc.created_at,
            doc.removed_at,
        ))
    }

    fn unique_keys(&self) -> Vec<UniqueKey> {
        Vec::new()
    }
}

mirror_enum!(AccessKindDoc <=> AccessKind { Permanent, Temporary });
mirror_enum!(EffectDoc <=> Effect { Permit, Deny });
mirror_enum!(StatusDoc <=> ProvisioningStatus {
    Initial,
    Creating,
    Ready,
    Updating,
    Deleting,
    Deleted,
});

#[derive(Serialize, Deserialize)]
struct AccessDoorDoc {
    door_id: u64,
    #[serde(default)]
    lock_unlock: bool,
    #[serde(
        default,
        with = "auth_types_opt",
        skip_serializing_if = "Option::is_none"
    )]
    in_auth_types: Option<BTreeSet<AuthType>>,
    #[serde(
        default,
        with = "auth_types_opt",
        skip_serializing_if = "Option::is_none"
    )]
    out_auth_types: Option<BTreeSet<AuthType>>,
}

#[derive(Serialize, Deserialize)]
struct AccessDoc {
    name: String,
    kind: AccessKindDoc,
    effect: EffectDoc,
    #[serde(default, with = "rfc3339_opt")]
    valid_from: Option<jiff::Timestamp>,
    #[serde(default, with = "rfc3339_opt")]
    valid_to: Option<jiff::Timestamp>,
    #[serde(default)]
    schedule_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    site_id: Option<u64>,
    doors: Vec<AccessDoorDoc>,
    #[serde(default)]
    person_ids: Vec<u64>,
    #[serde(default)]
    group_ids: Vec<u64>,
    status: StatusDoc,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    welcome_email_required: bool,
}

impl Stored for Access {
    const KIND: Kind = Kind::Access;

    fn record_id(&self) -> u64 {
        self.id.get()
    }

    fn to_document(&self) -> Json {
        encode(&AccessDoc {
            name: self.name.clone(),
            kind: self.kind.into(),
            effect: self.effect.into(),
            valid_from: self.validity.from(),
            valid_to: self.validity.to(),
            schedule_id: self.schedule_id.map(ScheduleId::get),
            site_id: self.site_id.map(SiteId::get),
            doors: self
                .doors
                .iter()
                .map(|d| AccessDoorDoc {
                    door_id: d.door_id.get(),
                    lock_unlock: d.lock_unlock,
                    in_auth_types: d.in_auth_types.clone(),
                    out_auth_types: d.out_auth_types.clone(),
                })
                .collect(),
            person_ids: self.person_ids.iter().map(|p| p.get()).collect(),
            group_ids: self.group_ids.iter().map(|g| g.get()).collect(),
            status: self.status.into(),
            welcome_email_required: self.welcome_email_required,
        })
    }

    fn from_document(tenant: TenantId, id: u64, document: &Json) -> Result<Self, CodecError> {
        let doc: AccessDoc = decode(Self::KIND, id, document)?;
        let effect: Effect = doc.effect.into();
        // Built field by field rather than through `Access::new`, which would reset the
        // status to `initial`; the window is checked as there.
        Ok(Access {
            id: AccessId::new(id),
            tenant_id: tenant,
            name: doc.name,
            kind: doc.kind.into(),
            effect,
            validity: window(
                Self::KIND,
                id,
                doc.valid_from,
                doc.valid_to,
                "valid_from",
                "valid_to",
            )?,
            schedule_id: doc.schedule_id.map(ScheduleId::new),
            site_id: doc.site_id.map(SiteId::new),
            doors: doc
                .doors
                .into_iter()
                .map(|d| {
                    let empty = |set: &Option<BTreeSet<AuthType>>| {
                        set.as_ref().is_some_and(BTreeSet::is_empty)
                    };
                    // Written before a missing list meant the door's (a permit can no
                    // longer list nothing in both directions).
                    let legacy = effect == Effect::Permit
                        && empty(&d.in_auth_types)
                        && empty(&d.out_auth_types);
                    AccessDoor {
                        door_id: DoorId::new(d.door_id),
                        lock_unlock: d.lock_unlock,
                        in_auth_types: d.in_auth_types.filter(|_| !legacy),
                        out_auth_types: d.out_auth_types.filter(|_| !legacy),
                    }
                })
                .collect(),
            person_ids: doc.person_ids.into_iter().map(PersonId::new).collect(),
            group_ids: doc.group_ids.into_iter().map(GroupId::new).collect(),
            status: doc.status.into(),
            welcome_email_required: doc.welcome_email_required,
        })
    }

    fn unique_keys(&self) -> Vec<UniqueKey> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccessSpec, EventStatus};
    use jiff::Timestamp;
    use serde_json::json;

    const TENANT: TenantId = TenantId::new(3);

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn event_round_trips_attendees_and_deletion() {
        let mut event = Event::new(
            EventId::new(91),
            TENANT,
            FacilityId::new(9),
            "Concert",
            ts("2024-06-01T18:00:00Z"),
            ts("2024-06-01T23:00:00Z"),
        )
        .unwrap();
        event
            .add_attendee(PersonId::new(22), ts("2024-05-02T10:00:00Z"))
            .unwrap();
        event
            .add_attendee(PersonId::new(21), ts("2024-05-01T10:00:00.001Z"))
            .unwrap();
        event.delete().unwrap();
        let document = event.to_document();
        assert_eq!(
            document,
            json!({
                "facility_id": 9,
                "name": "Concert",
                "starts_at": "2024-06-01T18:00:00Z",
                "ends_at": "2024-06-01T23:00:00Z",
                "attendees": [
                    {"person_id": 21, "added_at": "2024-05-01T10:00:00.001Z"},
                    {"person_id": 22, "added_at": "2024-05-02T10:00:00Z"},
                ],
                "deleted": true,
            })
        );
        let back = Event::from_document(TENANT, 91, &document).unwrap();
        assert_eq!(back, event);
        assert_eq!(
            back.status(ts("2024-06-01T19:00:00Z")),
            EventStatus::Deleted
        );
        assert!(event.unique_keys().is_empty());
    }

    #[test]
    fn event_documents_are_checked() {
        let document = json!({
            "facility_id": 9,
            "starts_at": "2024-06-01T18:00:00Z",
            "ends_at": "2024-06-01T23:00:00Z",
            "attendees": [
                {"person_id": 21, "added_at": "2024-05-01T10:00:00Z"},
                {"person_id": 21, "added_at": "2024-05-02T10:00:00Z"},
            ],
        });
        let err = Event::from_document(TENANT, 91, &document).unwrap_err();
        assert!(err.reason.contains("twice"), "{}", err.reason);
        let mut backwards = document;
        backwards["attendees"] = json!([]);
        backwards["ends_at"] = json!("2024-06-01T17:00:00Z");
        assert!(Event::from_document(TENANT, 91, &backwards).is_err());
    }

    #[test]
    fn membership_round_trips_removal() {
        let mut membership = Membership::new(
            MembershipId::new(95),
            TENANT,
            PersonId::new(21),
            ts("2024-01-01T00:00:00Z"),
        );
        let live = membership.to_document();
        assert_eq!(live["removed_at"], json!(null));
        assert_eq!(
            Membership::from_document(TENANT, 95, &live).unwrap(),
            membership
        );
        membership.remove(ts("2024-03-01T12:00:00Z")).unwrap();
        let document = membership.to_document();
        assert_eq!(
            document,
            json!({
                "person_id": 21,
                "created_at": "2024-01-01T00:00:00Z",
                "removed_at": "2024-03-01T12:00:00Z",
            })
        );
        let back = Membership::from_document(TENANT, 95, &document).unwrap();
        assert_eq!(back, membership);
        assert_eq!(back.removed_at(), Some(ts("2024-03-01T12:00:00Z")));
        assert!(membership.unique_keys().is_empty());
        let scoped = membership.within(FacilityId::new(7));
        let document = scoped.to_document();
        assert_eq!(document["facility_id"], json!(7));
        assert_eq!(
            Membership::from_document(TENANT, 95, &document).unwrap(),
            scoped
        );
    }

    #[test]
    fn access_round_trips_doors_subjects_and_status() {
        let mut access = Access::new(
            AccessId::new(99),
            AccessSpec {
                tenant_id: TENANT,
                name: "Night shift".into(),
                kind: AccessKind::Temporary,
                effect: Effect::Deny,
                valid_from: Some(ts("2024-01-01T00:00:00Z")),
                valid_to: Some(ts("2024-12-31T23:59:59Z")),
                schedule_id: Some(ScheduleId::new(71)),
                site_id: None,
                doors: vec![
                    AccessDoor {
                        door_id: DoorId::new(12),
                        lock_unlock: true,
                        in_auth_types: Some([AuthType::CardPlusPin, AuthType::Face].into()),
                        out_auth_types: Some([AuthType::Card].into()),
                    },
                    AccessDoor {
                        door_id: DoorId::new(11),
                        lock_unlock: false,
                        in_auth_types: Some(BTreeSet::new()),
                        out_auth_types: Some([AuthType::QrPlusPin].into()),
                    },
                    AccessDoor {
                        door_id: DoorId::new(13),
                        lock_unlock: false,
                        in_auth_types: None,
                        out_auth_types: Some(BTreeSet::new()),
                    },
                ],
                person_ids: [PersonId::new(21)].into(),
                group_ids: [GroupId::new(41), GroupId::new(42)].into(),
            },
        )
        .unwrap();
        access.status = ProvisioningStatus::Deleting;
        let document = access.to_document();
        assert_eq!(
            document,
            json!({
                "name": "Night shift",
                "kind": "temporary",
                "effect": "deny",
                "valid_from": "2024-01-01T00:00:00Z",
                "valid_to": "2024-12-31T23:59:59Z",
                "schedule_id": 71,
                "doors": [
                    {"door_id": 12, "lock_unlock": true,
                     "in_auth_types": ["face", "card_plus_pin"], "out_auth_types": ["card"]},
                    {"door_id": 11, "lock_unlock": false,
                     "in_auth_types": [], "out_auth_types": ["qr_plus_pin"]},
                    {"door_id": 13, "lock_unlock": false, "out_auth_types": []},
                ],
                "person_ids": [21],
                "group_ids": [41, 42],
                "status": "deleting",
            })
        );
        assert_eq!(
            Access::from_document(TENANT, 99, &document).unwrap(),
            access
        );
        assert!(access.unique_keys().is_empty());

        let mut bad = document;
        bad["status"] = json!("archived");
        assert!(Access::from_document(TENANT, 99, &bad).is_err());
    }

    #[test]
    fn a_permit_stored_listing_nothing_takes_the_doors_types() {
        let document = json!({
            "name": "Staff", "kind": "permanent", "effect": "permit",
            "doors": [{"door_id": 12, "lock_unlock": false,
                       "in_auth_types": [], "out_auth_types": []},
                      {"door_id": 13, "lock_unlock": false,
                       "in_auth_types": ["card"], "out_auth_types": []}],
            "person_ids": [21], "status": "ready",
        });
        let access = Access::from_document(TENANT, 98, &document).unwrap();
        assert_eq!(access.doors[0].in_auth_types, None);
        assert_eq!(access.doors[0].out_auth_types, None);
        assert_eq!(access.doors[1].in_auth_types, Some([AuthType::Card].into()));
        assert_eq!(access.doors[1].out_auth_types, Some(BTreeSet::new()));
        let rewritten = access.to_document();
        assert_eq!(
            rewritten["doors"][0],
            json!({"door_id": 12, "lock_unlock": false})
        );
        assert_eq!(
            Access::from_document(TENANT, 98, &rewritten).unwrap(),
            access
        );
    }
}
