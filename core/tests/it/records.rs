//! Records ⇄ domain: a whole tenant written as records and read back with
//! `records::snapshot` is the same tenant – equal objects, and the same decisions and
//! desired states – and the unique keys make the SQLite store refuse what docs/domain.md §8.3
//! rule 10 forbids (a second live card, a lost or stolen card re-added).

use crate::support::*;
use acs_core::card::WiegandCard;
use acs_core::domain::*;
use acs_core::records::{Stored, snapshot};
use acs_core::store::{Change, Kind, Record, SqliteStore, Store, StoreError, Write};
use jiff::civil::{Weekday, date};
use std::collections::{BTreeMap, BTreeSet};

fn record<T: Stored>(entity: &T) -> Record {
    Record {
        kind: T::KIND,
        id: entity.record_id(),
        data: entity.to_document(),
        version: 1,
    }
}

/// Every object of `s` as a record.
fn records_of(s: &Snapshot) -> Vec<Record> {
    let t = &s.topology;
    let mut records = Vec::new();
    records.extend(t.sites.values().map(record));
    records.extend(t.facilities.values().map(record));
    records.extend(t.doors.values().map(record));
    records.extend(t.terminals.values().map(record));
    records.extend(s.people.values().map(record));
    records.extend(s.credentials.values().map(record));
    records.extend(s.phones.values().map(record));
    records.extend(s.groups.values().map(record));
    records.extend(s.schedules.values().map(record));
    records.extend(s.holiday_calendars.values().map(record));
    records.extend(s.events.values().map(record));
    records.extend(s.memberships.values().map(record));
    records.extend(s.accesses.values().map(record));
    records
}

fn qr(payload: &str) -> CredentialValue {
    CredentialValue::Qr(SecretText::parse("qr", payload).unwrap())
}

fn edit(s: &mut Snapshot, id: u64, change: impl FnOnce(&mut Credential)) {
    change(s.credentials.get_mut(&CredentialId::new(id)).unwrap());
}

/// A tenant using every kind of object and much of their lifecycle state:
///
/// - P1 member (removed on 6 June) with face, card and PIN;
/// - P2 with a card reported lost and a suspended card, access at the main door, plus an
///   access being deleted at the office;
/// - P3 valid until 5 June noon, card and two limited-use QRs (one used up), access at the
///   main door on office hours (Mon–Fri 10:00–20:00 Madrid, not on the 6 June holiday);
/// - P4 in a group with a temporary card / card+PIN access at the office, PIN locked out;
/// - P5 suspended, attendee of a live hall event;
/// - P6 attendee of the hall event and of a deleted office event, face, cloud key with PIN,
///   mobile key with copies on an active phone and on a deactivated one;
/// - P7 member blocked at the main door by a deny access.
fn rich_tenant() -> Snapshot {
    let mut s = tenant();
    let people: Vec<PersonId> = (1..=7).map(|id| add_person(&mut s, id)).collect();
    let [p1, p2, p3, p4, p5, p6, p7] = people[..] else {
        unreachable!()
    };

    let calendar = HolidayCalendar {
        id: HolidayCalendarId::new(1),
        name: "Madrid".into(),
        holidays: vec![
            Holiday::new(
                "Fiesta",
                date(2024, 6, 6),
                date(2024, 6, 6),
                HolidayClasses::of(&[1]).unwrap(),
                true,
            )
            .unwrap(),
        ],
    };
    s.holiday_calendars.insert(calendar.id, calendar);
    let mut office_hours = Schedule::new(ScheduleId::new(1), "Office hours").unwrap();
    office_hours.spans.push(
        WeeklySpan::new(
            WeekdaySet::of([
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
            ]),
            10 * 3600,
            20 * 3600,
            HolidayClasses::NONE,
        )
        .unwrap(),
    );
    office_hours
        .add_one_off(ts("2024-06-08T09:00:00Z"), ts("2024-06-08T09:30:00Z"))
        .unwrap();
    office_hours
        .holiday_calendar_ids
        .push(HolidayCalendarId::new(1));
    s.schedules.insert(office_hours.id, office_hours);

    // P1: member with face, card, PIN.
    add_credential(&mut s, 1, p1, face(1));
    add_credential(&mut s, 2, p1, card(11));
    add_credential(&mut s, 3, p1, pin("1111"));
    add_member(&mut s, 1, p1, ts("2024-06-01T00:00:00Z"));
    s.memberships
        .get_mut(&MembershipId::new(1))
        .unwrap()
        .remove(ts("2024-06-06T00:00:00Z"))
        .unwrap();

    // P2: lost card, suspended card.
    add_credential(&mut s, 4, p2, card(12));
    edit(&mut s, 4, |c| c.revoke(RevokeReason::Lost).unwrap());
    add_credential(&mut s, 5, p2, card(13));
    edit(&mut s, 5, |c| c.suspend().unwrap());
    let main_card = |people: &[PersonId]| {
        permit(
            people,
            vec![access_door(
                MAIN_DOOR,
                &[AuthType::Card, AuthType::Qr, AuthType::Face],
                &[AuthType::Card],
            )],
        )
    };
    add_access(&mut s, 1, main_card(&[p2]));
    add_access(
        &mut s,
        2,
        permit(
            &[p2],
            vec![access_door(OFFICE_DOOR, &[AuthType::Card], &[])],
        ),
    );
    s.accesses.get_mut(&AccessId::new(2)).unwrap().status = ProvisioningStatus::Deleting;

    // P3: validity, limited-use QRs, scheduled access.
    let p3_person = s.people.remove(&p3).unwrap();
    let p3_person = p3_person
        .with_validity(None, Some(ts("2024-06-05T12:00:00Z")))
        .unwrap();
    s.people.insert(p3, p3_person);
    add_credential(&mut s, 6, p3, card(14));
    add_credential(&mut s, 7, p3, qr("Q-3a"));
    add_credential(&mut s, 8, p3, qr("Q-3b"));
    for (id, max) in [(7, 1), (8, 2)] {
        edit(&mut s, id, |c| {
            *c = c.clone().with_max_uses(max).unwrap();
            c.consume().unwrap();
        });
    }
    let mut scheduled = main_card(&[p3]);
    scheduled.schedule_id = Some(ScheduleId::new(1));
    add_access(&mut s, 3, scheduled);

    // P4: group, temporary access, locked-out PIN.
    let mut group = Group::new(GroupId::new(1), TENANT, "Staff").unwrap();
    group.members.insert(p4);
    s.groups.insert(group.id, group);
    add_credential(&mut s, 9, p4, card(15));
    add_credential(&mut s, 10, p4, pin("4444"));
    edit(&mut s, 10, |c| c.lock_out().unwrap());
    let mut temporary = permit(
        &[],
        vec![access_door(
            OFFICE_DOOR,
            &[AuthType::Card, AuthType::CardPlusPin],
            &[AuthType::Card],
        )],
    );
    temporary.group_ids.insert(GroupId::new(1));
    temporary.kind = AccessKind::Temporary;
    temporary.valid_from = Some(ts("2024-06-03T00:00:00Z"));
    temporary.valid_to = Some(ts("2024-06-10T00:00:00Z"));
    add_access(&mut s, 4, temporary);

    // P5: suspended attendee.
    s.people.get_mut(&p5).unwrap().suspend().unwrap();
    add_credential(&mut s, 11, p5, card(16));

    // P6: attendee with face, cloud key, mobile keys.
    add_credential(&mut s, 12, p6, face(12));
    add_credential(
        &mut s,
        13,
        p6,
        CredentialValue::CloudKey {
            token: SecretText::parse("token", "tok-6").unwrap(),
            pin: Some(SecretText::parse("pin", "6666").unwrap()),
        },
    );
    add_credential(
        &mut s,
        14,
        p6,
        CredentialValue::MobileKey { phone_id: None },
    );
    for (phone, active) in [(1, true), (2, false)] {
        let phone = Phone {
            id: PhoneId::new(phone),
            person_id: p6,
            active,
            name: None,
            platform: None,
        };
        s.phones.insert(phone.id, phone);
    }
    let parent = s.credentials[&CredentialId::new(14)].clone();
    for (copy, phone) in [(15, 1), (16, 2)] {
        let copy = parent.copy_for_phone(
            CredentialId::new(copy),
            PhoneId::new(phone),
            ts("2024-06-02T00:00:00Z"),
        );
        s.credentials.insert(copy.id, copy);
    }
    edit(&mut s, 16, |c| {
        c.revoke(RevokeReason::PhoneDeactivated).unwrap()
    });
    add_event(
        &mut s,
        1,
        HALL,
        "2024-06-05T09:00:00Z",
        "2024-06-05T12:00:00Z",
        &[p5, p6],
    );
    add_event(
        &mut s,
        2,
        OFFICES,
        "2024-06-05T09:00:00Z",
        "2024-06-05T12:00:00Z",
        &[p6],
    );
    s.events
        .get_mut(&EventId::new(2))
        .unwrap()
        .delete()
        .unwrap();

    // P7: member, denied at the main door.
    add_credential(&mut s, 17, p7, card(17));
    add_member(&mut s, 2, p7, ts("2024-01-01T00:00:00Z"));
    let mut deny = main_card(&[p7]);
    deny.effect = Effect::Deny;
    add_access(&mut s, 5, deny);
    s
}

const INSTANTS: [&str; 8] = [
    "2024-06-03T07:00:00Z", // Monday 09:00 in Madrid: before office hours
    "2024-06-05T10:00:00Z", // Wednesday noon: event live, office hours
    "2024-06-05T11:59:59Z", // last second of P3's validity
    "2024-06-05T20:00:00Z", // Wednesday 22:00: event over
    "2024-06-06T10:00:00Z", // Thursday holiday, P1's membership removed
    "2024-06-08T09:15:00Z", // Saturday, inside the one-off window
    "2024-06-08T10:00:00Z", // Saturday, outside it
    "2024-06-11T10:00:00Z", // after the temporary access
];

fn presentations() -> Vec<Vec<PresentedFactor>> {
    let card = |n| PresentedFactor::Card(WiegandCard::new(1, n));
    let pin = |p: &str| PresentedFactor::Pin(p.into());
    let face = |id, live| PresentedFactor::Face {
        credential_id: CredentialId::new(id),
        live,
    };
    let mut all: Vec<Vec<PresentedFactor>> = (11..=17).chain([99]).map(|n| vec![card(n)]).collect();
    all.extend([
        vec![pin("1111")],
        vec![pin("4444")],
        vec![card(11), pin("1111")],
        vec![card(15), pin("4444")],
        vec![PresentedFactor::Qr("Q-3a".into())],
        vec![PresentedFactor::Qr("Q-3b".into())],
        vec![face(1, true)],
        vec![face(1, false)],
        vec![face(12, true)],
        vec![PresentedFactor::CloudKey {
            token: "tok-6".into(),
            pin: Some("6666".into()),
        }],
        vec![PresentedFactor::CloudKey {
            token: "tok-6".into(),
            pin: None,
        }],
        vec![PresentedFactor::MobileKey {
            credential_id: CredentialId::new(15),
        }],
        vec![PresentedFactor::MobileKey {
            credential_id: CredentialId::new(16),
        }],
    ]);
    all
}

#[test]
fn snapshot_rebuilds_the_tenant_from_its_records() {
    let original = rich_tenant();
    let mut records = records_of(&original);
    assert_eq!(
        records.len(),
        1 + 3 + 3 + 2 + 7 + 17 + 2 + 1 + 1 + 1 + 2 + 2 + 5
    );
    let rebuilt = snapshot(original.tenant.clone(), &records).unwrap();
    assert_eq!(rebuilt, original);

    // Order does not matter.
    records.reverse();
    assert_eq!(
        snapshot(original.tenant.clone(), &records).unwrap(),
        original
    );

    // Through JSON text, as the store keeps documents.
    for r in &mut records {
        r.data = serde_json::from_str(&r.data.to_string()).unwrap();
    }
    assert_eq!(
        snapshot(original.tenant.clone(), &records).unwrap(),
        original
    );
}

#[test]
fn rebuilt_snapshot_decides_and_distributes_the_same() {
    let original = rich_tenant();
    let rebuilt = snapshot(original.tenant.clone(), &records_of(&original)).unwrap();

    let mut outcomes = BTreeSet::new();
    for at in INSTANTS.map(ts) {
        for terminal in [HALL_TERMINAL, OFFICE_TERMINAL, TerminalId::new(99)] {
            assert_eq!(
                desired_state(&rebuilt, terminal, at),
                desired_state(&original, terminal, at),
                "terminal {terminal} at {at}"
            );
        }
        for id in original.credentials.keys() {
            assert_eq!(
                rebuilt.credential_status(*id, at),
                original.credential_status(*id, at),
                "credential {id} at {at}"
            );
        }
        for factors in presentations() {
            for door in [MAIN_DOOR, OFFICE_DOOR, SIDE_DOOR, DoorId::new(99)] {
                for direction in [Direction::In, Direction::Out] {
                    let expected = decide(&original, &factors, door, direction, at);
                    let got = decide(&rebuilt, &factors, door, direction, at);
                    assert_eq!(
                        got, expected,
                        "{factors:?} at door {door} {direction:?} {at}"
                    );
                    outcomes.insert(format!("{:?}", expected.outcome));
                }
            }
        }
    }
    // The comparison is not vacuous: the grid reaches grants and many deny reasons.
    assert!(outcomes.contains("Granted"), "{outcomes:?}");
    assert!(outcomes.len() >= 10, "{outcomes:?}");

    // And the desired state is not empty everywhere.
    let held: BTreeMap<_, _> = [HALL_TERMINAL, OFFICE_TERMINAL]
        .map(|t| {
            (
                t,
                desired_state(&rebuilt, t, ts(INSTANTS[1])).credential_ids(),
            )
        })
        .into();
    assert!(held.values().all(|ids| !ids.is_empty()), "{held:?}");
}

#[test]
fn lifecycle_state_survives_the_round_trip() {
    let original = rich_tenant();
    let records = records_of(&original);
    let rebuilt = snapshot(original.tenant, &records).unwrap();
    let c = |id| &rebuilt.credentials[&CredentialId::new(id)];
    assert_eq!(c(4).revoked(), Some(RevokeReason::Lost));
    assert!(c(5).is_suspended());
    assert_eq!(c(7).use_count(), 1);
    assert!(c(10).is_locked_out());
    assert_eq!(c(15).parent_id, Some(CredentialId::new(14)));
    assert!(rebuilt.people[&PersonId::new(5)].is_suspended());
    assert!(rebuilt.events[&EventId::new(2)].is_deleted());
    assert_eq!(
        rebuilt.memberships[&MembershipId::new(1)].removed_at(),
        Some(ts("2024-06-06T00:00:00Z"))
    );
    assert_eq!(
        rebuilt.accesses[&AccessId::new(2)].status,
        ProvisioningStatus::Deleting
    );
}

#[test]
fn an_unreadable_record_fails_the_snapshot_naming_it() {
    let original = rich_tenant();
    let mut records = records_of(&original);
    let door = records
        .iter_mut()
        .find(|r| r.kind == Kind::Door)
        .expect("a door record");
    door.data["supported_in"] = serde_json::json!(["telepathy"]);
    let id = door.id;
    let err = snapshot(original.tenant, &records).unwrap_err();
    assert_eq!((err.kind, err.id), (Kind::Door, id));
}

// ---- the store enforces the claims ----

fn put<T: Stored>(entity: &T) -> Change {
    Change {
        writes: vec![Write::Put {
            kind: T::KIND,
            id: entity.record_id(),
            data: entity.to_document(),
            unique: entity.unique_keys(),
            blob: None,
        }],
        ..Change::default()
    }
}

fn conflict_scope(result: Result<Vec<u64>, StoreError>) -> Option<&'static str> {
    match result {
        Ok(_) => None,
        Err(StoreError::Conflict { scope, .. }) => Some(scope),
        Err(other) => panic!("unexpected store error: {other}"),
    }
}

#[test]
fn the_store_refuses_live_duplicates_and_burnt_cards() {
    let store = SqliteStore::in_memory().unwrap();
    let tenant = store.create_tenant("acme", "Acme").unwrap();
    let t = TenantId::new(tenant.id);
    let ids = store.allocate_ids(8).unwrap();
    let person = Person::new(PersonId::new(ids[0]), t, AcsId::parse("E-1").unwrap(), "");
    store.commit(tenant.id, put(&person)).unwrap();
    let twin = Person::new(PersonId::new(ids[7]), t, AcsId::parse("E-1").unwrap(), "");
    assert_eq!(
        conflict_scope(store.commit(tenant.id, put(&twin))),
        Some("acs_id")
    );

    let issue = |id: u64, number: u32| {
        Credential::issue(
            CredentialId::new(id),
            t,
            person.id,
            CredentialValue::Card(WiegandCard::new(7, number)),
            ts("2024-01-01T00:00:00Z"),
        )
    };

    // A live card blocks its number, as a card.
    let mut first = issue(ids[1], 100);
    store.commit(tenant.id, put(&first)).unwrap();
    assert_eq!(
        conflict_scope(store.commit(tenant.id, put(&issue(ids[2], 100)))),
        Some("card")
    );

    // Reported lost (and even deleted), it keeps blocking it, as burnt.
    first.revoke(RevokeReason::Lost).unwrap();
    store.commit(tenant.id, put(&first)).unwrap();
    assert_eq!(
        conflict_scope(store.commit(tenant.id, put(&issue(ids[2], 100)))),
        Some("burned_card")
    );
    first.delete().unwrap();
    store.commit(tenant.id, put(&first)).unwrap();
    assert_eq!(
        conflict_scope(store.commit(tenant.id, put(&issue(ids[2], 100)))),
        Some("burned_card")
    );

    // A damaged card frees its number once revoked; so does a deleted one.
    let mut damaged = issue(ids[3], 200);
    store.commit(tenant.id, put(&damaged)).unwrap();
    damaged.revoke(RevokeReason::Damaged).unwrap();
    store.commit(tenant.id, put(&damaged)).unwrap();
    let reissued = issue(ids[4], 200);
    assert_eq!(
        conflict_scope(store.commit(tenant.id, put(&reissued))),
        None
    );
    let mut deleted = reissued;
    deleted.delete().unwrap();
    store.commit(tenant.id, put(&deleted)).unwrap();
    assert_eq!(
        conflict_scope(store.commit(tenant.id, put(&issue(ids[5], 200)))),
        None
    );

    // What the store holds reads back as the same credentials.
    let stored = store.records(tenant.id).unwrap();
    let rebuilt = snapshot(Tenant::new(t, "Acme").unwrap(), &stored).unwrap();
    assert_eq!(rebuilt.credentials[&first.id], first);
    assert_eq!(rebuilt.credentials[&damaged.id], damaged);
    assert_eq!(rebuilt.people[&person.id], person);
}
