//! Fixtures shared by the integration tests: one tenant in Madrid with two facilities, three
//! doors and two terminals, and helpers to add people, credentials and entitlements.

use acs_core::card::WiegandCard;
use acs_core::domain::*;
use jiff::Timestamp;
use std::collections::BTreeSet;

pub(crate) const TENANT: TenantId = TenantId::new(1);
pub(crate) const SITE: SiteId = SiteId::new(1);
/// The venue; contains `HALL`.
pub(crate) const VENUE: FacilityId = FacilityId::new(1);
/// A hall inside the venue.
pub(crate) const HALL: FacilityId = FacilityId::new(2);
/// Offices, outside the venue.
pub(crate) const OFFICES: FacilityId = FacilityId::new(3);
/// Main door of the hall: many auth types in, card only out.
pub(crate) const MAIN_DOOR: DoorId = DoorId::new(1);
/// Office door: card, card + PIN.
pub(crate) const OFFICE_DOOR: DoorId = DoorId::new(2);
/// A second hall door, served by the hall terminal too.
pub(crate) const SIDE_DOOR: DoorId = DoorId::new(3);
/// The hall terminal (main + side door).
pub(crate) const HALL_TERMINAL: TerminalId = TerminalId::new(1);
/// The office terminal.
pub(crate) const OFFICE_TERMINAL: TerminalId = TerminalId::new(2);

/// Parses an RFC 3339 instant.
#[track_caller]
pub(crate) fn ts(text: &str) -> Timestamp {
    text.parse().expect("valid RFC 3339 instant")
}

/// The fixture tenant with its topology and nothing else.
pub(crate) fn tenant() -> Snapshot {
    let mut s = Snapshot::new(Tenant::new(TENANT, "Acme").unwrap());
    let site = Site::new(SITE, TENANT, "Madrid", "Europe/Madrid").unwrap();
    s.topology.sites.insert(site.id, site);
    for (id, parent) in [(VENUE, None), (HALL, Some(VENUE)), (OFFICES, None)] {
        let f = Facility::new(id, SITE, parent, "f", FacilityKind::Facility).unwrap();
        s.topology.facilities.insert(f.id, f);
    }
    let main_in = [
        AuthType::Face,
        AuthType::Card,
        AuthType::Pin,
        AuthType::Qr,
        AuthType::CardPlusPin,
        AuthType::FacePlusPin,
        AuthType::CloudKey,
        AuthType::MobileKey,
    ];
    let doors = [
        Door::new(MAIN_DOOR, HALL, "main", main_in, [AuthType::Card]).unwrap(),
        Door::new(
            OFFICE_DOOR,
            OFFICES,
            "office",
            [AuthType::Card, AuthType::CardPlusPin],
            [AuthType::Card],
        )
        .unwrap(),
        Door::new(SIDE_DOOR, HALL, "side", [AuthType::Face], [AuthType::Face]).unwrap(),
    ];
    for door in doors {
        s.topology.doors.insert(door.id, door);
    }
    for (id, facility, doors) in [
        (HALL_TERMINAL, HALL, vec![MAIN_DOOR, SIDE_DOOR]),
        (OFFICE_TERMINAL, OFFICES, vec![OFFICE_DOOR]),
    ] {
        let terminal = Terminal::new(
            id,
            TerminalSpec {
                facility_id: facility,
                model: TerminalModel::IdFace,
                address: format!("http://10.0.0.{}", id.get()),
                login: "admin".into(),
                password: DevicePassword::new("admin"),
                operating_mode: OperatingMode::Standalone,
                door_ids: doors.into_iter().collect(),
            },
        )
        .unwrap();
        s.topology.terminals.insert(terminal.id, terminal);
    }
    s
}

/// Adds person `id` with `acs_id` `acs-{id}`.
pub(crate) fn add_person(s: &mut Snapshot, id: u64) -> PersonId {
    let person = Person::new(
        PersonId::new(id),
        TENANT,
        AcsId::parse(&format!("acs-{id}")).unwrap(),
        "",
    );
    s.people.insert(person.id, person);
    PersonId::new(id)
}

/// Adds credential `id` of `person` with `value`.
pub(crate) fn add_credential(
    s: &mut Snapshot,
    id: u64,
    person: PersonId,
    value: CredentialValue,
) -> CredentialId {
    let c = Credential::issue(
        CredentialId::new(id),
        TENANT,
        person,
        value,
        ts("2024-01-01T00:00:00Z"),
    );
    s.credentials.insert(c.id, c);
    CredentialId::new(id)
}

/// A card value.
pub(crate) fn card(number: u32) -> CredentialValue {
    CredentialValue::Card(WiegandCard::new(1, number))
}

/// A PIN value.
pub(crate) fn pin(digits: &str) -> CredentialValue {
    CredentialValue::Pin(Pin::parse(digits).unwrap())
}

/// A face value.
pub(crate) fn face(id: u64) -> CredentialValue {
    CredentialValue::face(&format!("photos/{id}.jpg")).unwrap()
}

/// An access door entry.
pub(crate) fn access_door(
    door: DoorId,
    in_types: &[AuthType],
    out_types: &[AuthType],
) -> AccessDoor {
    AccessDoor {
        door_id: door,
        lock_unlock: false,
        in_auth_types: Some(in_types.iter().copied().collect()),
        out_auth_types: Some(out_types.iter().copied().collect()),
    }
}

/// A permanent permit access spec for `people` at `doors`, 24/7.
pub(crate) fn permit(people: &[PersonId], doors: Vec<AccessDoor>) -> AccessSpec {
    AccessSpec {
        tenant_id: TENANT,
        name: "access".into(),
        kind: AccessKind::Permanent,
        effect: Effect::Permit,
        valid_from: None,
        valid_to: None,
        schedule_id: None,
        site_id: None,
        doors,
        person_ids: people.iter().copied().collect(),
        group_ids: BTreeSet::new(),
    }
}

/// Adds access `id` built from `spec`.
pub(crate) fn add_access(s: &mut Snapshot, id: u64, spec: AccessSpec) -> AccessId {
    let access = Access::new(AccessId::new(id), spec).unwrap();
    validate_access_doors(&s.topology, access.effect, &access.doors).unwrap();
    s.accesses.insert(access.id, access);
    AccessId::new(id)
}

/// Adds membership `id` of `person` from `since`.
pub(crate) fn add_member(
    s: &mut Snapshot,
    id: u64,
    person: PersonId,
    since: Timestamp,
) -> MembershipId {
    let m = Membership::new(MembershipId::new(id), TENANT, person, since);
    s.memberships.insert(m.id, m);
    MembershipId::new(id)
}

/// Adds event `id` at `facility` during `[start, end)` with `attendees`.
pub(crate) fn add_event(
    s: &mut Snapshot,
    id: u64,
    facility: FacilityId,
    start: &str,
    end: &str,
    attendees: &[PersonId],
) -> EventId {
    let mut e = Event::new(
        EventId::new(id),
        TENANT,
        facility,
        "event",
        ts(start),
        ts(end),
    )
    .unwrap();
    for person in attendees {
        e.add_attendee(*person, ts(start)).unwrap();
    }
    s.events.insert(e.id, e);
    EventId::new(id)
}
