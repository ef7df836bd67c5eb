//! Desired state of terminals (docs/domain.md §8.1): distribution rules as examples, then
//! properties over generated tenants: monotonic in entitlements, empty without them, and
//! `next_change` exact. The same generated tenants also check that a decision through the
//! snapshot's lookup equals the decision of the scan.

use crate::support::*;
use acs_core::domain::*;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn held(
    s: &Snapshot,
    terminal: TerminalId,
    at: &str,
) -> BTreeMap<CredentialId, BTreeSet<Entitlement>> {
    desired_state(s, terminal, ts(at))
        .people
        .into_values()
        .flat_map(|p| p.credentials)
        .collect()
}

const NOON: &str = "2024-06-05T10:00:00Z";

#[test]
fn enrollment_is_not_distribution() {
    let mut s = tenant();
    let p = add_person(&mut s, 1);
    let selfie = add_credential(&mut s, 1, p, face(1));
    assert!(held(&s, HALL_TERMINAL, NOON).is_empty());
    assert!(held(&s, OFFICE_TERMINAL, NOON).is_empty());
    assert_eq!(
        s.credential_status(selfie, ts(NOON)),
        Some(CredentialStatus::Disabled(
            [DisableReason::NeedsProvisioning].into()
        ))
    );

    let m = add_member(&mut s, 1, p, ts("2024-06-01T00:00:00Z"));
    let state = desired_state(&s, HALL_TERMINAL, ts(NOON));
    assert_eq!(state.people[&p].acs_id.as_str(), "acs-1");
    assert_eq!(
        state.people[&p].credentials[&selfie],
        [Entitlement::Membership(m)].into()
    );
    // The office door takes cards only: its terminal is not given the face, which it could
    // never grant with.
    assert!(held(&s, OFFICE_TERMINAL, NOON).is_empty());
    assert_eq!(
        s.credential_status(selfie, ts(NOON)),
        Some(CredentialStatus::Active)
    );
}

#[test]
fn removing_one_entitlement_keeps_what_another_needs() {
    let mut s = tenant();
    let p = add_person(&mut s, 1);
    let selfie = add_credential(&mut s, 1, p, face(1));
    let m = add_member(&mut s, 1, p, ts("2024-06-01T00:00:00Z"));
    let e = add_event(
        &mut s,
        1,
        VENUE,
        "2024-06-05T09:00:00Z",
        "2024-06-05T12:00:00Z",
        &[p],
    );
    assert_eq!(
        held(&s, HALL_TERMINAL, NOON)[&selfie],
        [Entitlement::Membership(m), Entitlement::Attendee(e)].into()
    );
    s.memberships
        .get_mut(&m)
        .unwrap()
        .remove(ts("2024-06-05T09:30:00Z"))
        .unwrap();
    assert_eq!(
        held(&s, HALL_TERMINAL, NOON)[&selfie],
        [Entitlement::Attendee(e)].into()
    );
    assert!(
        held(&s, OFFICE_TERMINAL, NOON).is_empty(),
        "the event is not at the offices"
    );
    s.events.get_mut(&e).unwrap().remove_attendee(p).unwrap();
    assert!(held(&s, HALL_TERMINAL, NOON).is_empty());
}

#[test]
fn an_access_pushes_only_the_kinds_it_enables() {
    let mut s = tenant();
    let p = add_person(&mut s, 1);
    let badge = add_credential(&mut s, 1, p, card(1));
    add_credential(&mut s, 2, p, face(2));
    let code = add_credential(&mut s, 3, p, pin("1234"));
    let a = add_access(
        &mut s,
        1,
        permit(
            &[p],
            vec![access_door(OFFICE_DOOR, &[AuthType::CardPlusPin], &[])],
        ),
    );
    let office = held(&s, OFFICE_TERMINAL, NOON);
    assert_eq!(
        office.keys().copied().collect::<Vec<_>>(),
        vec![badge, code]
    );
    assert_eq!(office[&badge], [Entitlement::Access(a)].into());
    assert!(held(&s, HALL_TERMINAL, NOON).is_empty());
}

#[test]
fn disabled_credentials_and_people_are_absent() {
    let mut s = tenant();
    let p = add_person(&mut s, 1);
    for id in 1..=5 {
        add_credential(&mut s, id, p, card(id as u32));
    }
    add_credential(
        &mut s,
        6,
        p,
        CredentialValue::Qr(SecretText::parse("qr", "q").unwrap()),
    );
    let key = CredentialValue::CloudKey {
        token: SecretText::parse("token", "t").unwrap(),
        pin: None,
    };
    add_credential(&mut s, 7, p, key);
    add_member(&mut s, 1, p, ts("2024-06-01T00:00:00Z"));
    let c = |s: &mut Snapshot, id: u64| {
        s.credentials
            .get_mut(&CredentialId::new(id))
            .unwrap()
            .clone()
    };
    s.credentials
        .get_mut(&CredentialId::new(2))
        .unwrap()
        .suspend()
        .unwrap();
    s.credentials
        .get_mut(&CredentialId::new(3))
        .unwrap()
        .revoke(RevokeReason::Lost)
        .unwrap();
    let expired = c(&mut s, 4)
        .with_window(None, Some(ts("2024-06-02T00:00:00Z")))
        .unwrap();
    s.credentials.insert(expired.id, expired);
    s.credentials
        .get_mut(&CredentialId::new(5))
        .unwrap()
        .delete()
        .unwrap();
    let ids: Vec<u64> = held(&s, HALL_TERMINAL, NOON)
        .keys()
        .map(|c| c.get())
        .collect();
    assert_eq!(ids, vec![1, 6], "only the active terminal-held credentials");

    s.people.get_mut(&p).unwrap().suspend().unwrap();
    assert!(held(&s, HALL_TERMINAL, NOON).is_empty());
}

#[test]
fn deny_accesses_and_deleted_accesses_push_nothing() {
    let mut s = tenant();
    let p = add_person(&mut s, 1);
    add_credential(&mut s, 1, p, card(1));
    let mut spec = permit(&[p], vec![access_door(OFFICE_DOOR, &[AuthType::Card], &[])]);
    spec.effect = Effect::Deny;
    add_access(&mut s, 1, spec);
    assert!(held(&s, OFFICE_TERMINAL, NOON).is_empty());
    let a = add_access(
        &mut s,
        2,
        permit(&[p], vec![access_door(OFFICE_DOOR, &[AuthType::Card], &[])]),
    );
    assert_eq!(held(&s, OFFICE_TERMINAL, NOON).len(), 1);
    s.accesses.get_mut(&a).unwrap().status = ProvisioningStatus::Deleting;
    assert!(held(&s, OFFICE_TERMINAL, NOON).is_empty());
}

#[test]
fn next_change_follows_the_windows() {
    let mut s = tenant();
    let p = add_person(&mut s, 1);
    add_credential(&mut s, 1, p, face(1));
    add_event(
        &mut s,
        1,
        HALL,
        "2024-06-05T09:00:00Z",
        "2024-06-05T12:00:00Z",
        &[p],
    );
    let before = desired_state(&s, HALL_TERMINAL, ts("2024-06-05T08:00:00Z"));
    assert!(before.people.is_empty());
    assert_eq!(before.next_change, Some(ts("2024-06-05T09:00:00Z")));
    let during = desired_state(&s, HALL_TERMINAL, ts("2024-06-05T09:00:00Z"));
    assert_eq!(during.people.len(), 1);
    assert_eq!(during.next_change, Some(ts("2024-06-05T12:00:00Z")));
    assert_eq!(
        desired_state(&s, HALL_TERMINAL, ts("2024-06-05T12:00:00Z")).next_change,
        None
    );

    // A boundary that changes nothing is skipped: the person's validity ends after the event.
    let p = s.people[&p]
        .clone()
        .with_validity(None, Some(ts("2024-06-06T00:00:00Z")))
        .unwrap();
    s.people.insert(p.id, p);
    assert_eq!(
        desired_state(&s, HALL_TERMINAL, ts("2024-06-05T09:00:00Z")).next_change,
        Some(ts("2024-06-05T12:00:00Z"))
    );
}

// ---- properties over generated tenants ------------------------------------------------

const T0: &str = "2024-06-01T00:00:00Z";

fn hour(h: i64) -> Timestamp {
    ts(T0) + SignedDuration::from_hours(h)
}

/// A door of an access with the auth types listed in and out (`None`: the door's).
type DoorEntry = (DoorId, Option<Vec<AuthType>>, Option<Vec<AuthType>>);

#[derive(Debug, Clone)]
enum Grant {
    Member {
        person: u64,
        since: i64,
        removed: Option<i64>,
    },
    Attendee {
        facility: FacilityId,
        start: i64,
        hours: i64,
        people: Vec<u64>,
    },
    Access {
        people: Vec<u64>,
        via_group: bool,
        doors: Vec<DoorEntry>,
        window: (Option<i64>, Option<i64>),
        deny: bool,
        deleted: bool,
    },
}

#[derive(Debug, Clone)]
struct PersonSpec {
    kinds: Vec<u8>,
    suspended: bool,
    valid_to: Option<i64>,
    credential_window: Option<(i64, i64)>,
}

const PEOPLE: u64 = 4;

fn person_strategy() -> impl Strategy<Value = PersonSpec> {
    (
        prop::collection::vec(0u8..5, 1..4),
        prop::bool::weighted(0.15),
        prop::option::weighted(0.3, 0i64..200),
        prop::option::weighted(0.3, (0i64..100, 1i64..100)),
    )
        .prop_map(
            |(kinds, suspended, valid_to, credential_window)| PersonSpec {
                kinds,
                suspended,
                valid_to,
                credential_window,
            },
        )
}

fn auth_subset(door: DoorId, direction: Direction) -> impl Strategy<Value = Vec<AuthType>> {
    let supported: Vec<AuthType> = tenant().topology.doors[&door]
        .supported(direction)
        .iter()
        .copied()
        .collect();
    prop::sample::subsequence(supported.clone(), 0..=supported.len())
}

fn grant_strategy() -> impl Strategy<Value = Grant> {
    let people = || prop::collection::vec(1..=PEOPLE, 1..3);
    let door = prop::sample::select(vec![MAIN_DOOR, OFFICE_DOOR, SIDE_DOOR]).prop_flat_map(|d| {
        (
            Just(d),
            prop::option::weighted(0.75, auth_subset(d, Direction::In)),
            prop::option::weighted(0.75, auth_subset(d, Direction::Out)),
        )
    });
    prop_oneof![
        (1..=PEOPLE, 0i64..100, prop::option::of(0i64..200)).prop_map(
            |(person, since, removed)| Grant::Member {
                person,
                since,
                removed: removed.map(|r| since + r)
            }
        ),
        (
            prop::sample::select(vec![VENUE, HALL, OFFICES]),
            0i64..150,
            1i64..50,
            people()
        )
            .prop_map(|(facility, start, hours, people)| Grant::Attendee {
                facility,
                start,
                hours,
                people
            }),
        (
            people(),
            prop::bool::ANY,
            prop::collection::vec(door, 1..3),
            (prop::option::of(0i64..100), prop::option::of(1i64..150)),
            prop::bool::weighted(0.3),
            prop::bool::weighted(0.1),
        )
            .prop_map(|(people, via_group, doors, (from, len), deny, deleted)| {
                Grant::Access {
                    people,
                    via_group,
                    doors,
                    window: (from, len.map(|l| from.unwrap_or(0) + l)),
                    deny,
                    deleted,
                }
            }),
    ]
}

/// The tenant with its people and credentials, no entitlements.
fn people_world(people: &[PersonSpec]) -> Snapshot {
    let mut s = tenant();
    let mut next = 1;
    for (i, spec) in people.iter().enumerate() {
        let p = add_person(&mut s, i as u64 + 1);
        if spec.suspended {
            s.people.get_mut(&p).unwrap().suspend().unwrap();
        }
        if let Some(to) = spec.valid_to {
            let person = s.people[&p]
                .clone()
                .with_validity(None, Some(hour(to)))
                .unwrap();
            s.people.insert(p, person);
        }
        for kind in &spec.kinds {
            let value = match kind {
                0 => face(next),
                1 => card(next as u32),
                2 => pin(&format!("{:04}", 1000 + next)),
                3 => CredentialValue::Qr(SecretText::parse("qr", &format!("qr-{next}")).unwrap()),
                _ => CredentialValue::CloudKey {
                    token: SecretText::parse("token", &format!("t-{next}")).unwrap(),
                    pin: None,
                },
            };
            let id = add_credential(&mut s, next, p, value);
            if let (Some((start, len)), true) = (spec.credential_window, next % 2 == 0) {
                let c = s.credentials[&id]
                    .clone()
                    .with_window(Some(hour(start)), Some(hour(start + len)))
                    .unwrap();
                s.credentials.insert(id, c);
            }
            next += 1;
        }
    }
    s
}

fn apply(s: &mut Snapshot, id: u64, grant: &Grant) {
    let person = |p: &u64| PersonId::new(*p);
    match grant {
        Grant::Member {
            person: p,
            since,
            removed,
        } => {
            let m = add_member(s, id, person(p), hour(*since));
            if let Some(r) = removed {
                s.memberships.get_mut(&m).unwrap().remove(hour(*r)).unwrap();
            }
        }
        Grant::Attendee {
            facility,
            start,
            hours,
            people,
        } => {
            let mut e = Event::new(
                EventId::new(id),
                TENANT,
                *facility,
                "",
                hour(*start),
                hour(start + hours),
            )
            .unwrap();
            for p in people {
                let _ = e.add_attendee(person(p), hour(0));
            }
            s.events.insert(e.id, e);
        }
        Grant::Access {
            people,
            via_group,
            doors,
            window,
            deny,
            deleted,
        } => {
            let mut seen = BTreeSet::new();
            let doors: Vec<AccessDoor> = doors
                .iter()
                .filter(|(d, _, _)| seen.insert(*d))
                .map(|(d, i, o)| {
                    let set = |list: &Option<Vec<AuthType>>| {
                        list.as_ref()
                            .map(|l| l.iter().copied().collect::<BTreeSet<_>>())
                    };
                    let mut entry = AccessDoor {
                        door_id: *d,
                        lock_unlock: false,
                        in_auth_types: set(i),
                        out_auth_types: set(o),
                    };
                    // A permit listing nothing either way is refused: take the door's.
                    let nothing =
                        |l: &Option<BTreeSet<AuthType>>| l.as_ref().is_some_and(BTreeSet::is_empty);
                    if !deny && nothing(&entry.in_auth_types) && nothing(&entry.out_auth_types) {
                        entry.in_auth_types = None;
                    }
                    entry
                })
                .collect();
            let mut spec = permit(&[], doors);
            spec.valid_from = window.0.map(hour);
            spec.valid_to = window.1.map(hour);
            if *deny {
                spec.effect = Effect::Deny;
            }
            let ids: BTreeSet<PersonId> = people.iter().map(person).collect();
            if *via_group {
                let mut g = Group::new(GroupId::new(id), TENANT, "g").unwrap();
                g.members = ids;
                s.groups.insert(g.id, g);
                spec.group_ids.insert(GroupId::new(id));
            } else {
                spec.person_ids = ids;
            }
            let a = add_access(s, id, spec);
            if *deleted {
                s.accesses.get_mut(&a).unwrap().status = ProvisioningStatus::Deleting;
            }
        }
    }
}

fn world(people: &[PersonSpec], grants: &[Grant]) -> Snapshot {
    let mut s = people_world(people);
    for (i, grant) in grants.iter().enumerate() {
        apply(&mut s, i as u64 + 1, grant);
    }
    s
}

const TERMINALS: [TerminalId; 2] = [HALL_TERMINAL, OFFICE_TERMINAL];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn adding_an_entitlement_never_removes_a_credential(
        people in prop::collection::vec(person_strategy(), PEOPLE as usize),
        grants in prop::collection::vec(grant_strategy(), 0..5),
        extra in grant_strategy(),
        at in 0i64..200,
    ) {
        let before = world(&people, &grants);
        let mut after = before.clone();
        apply(&mut after, 100, &extra);
        for terminal in TERMINALS {
            let small = desired_state(&before, terminal, hour(at));
            let large = desired_state(&after, terminal, hour(at));
            for (person, desired) in &small.people {
                for (credential, required_by) in &desired.credentials {
                    let kept = large.people.get(person).and_then(|p| p.credentials.get(credential));
                    prop_assert!(kept.is_some(), "{:?} lost on {:?} after adding {:?}", credential, terminal, extra);
                    prop_assert!(required_by.is_subset(kept.unwrap()));
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn without_entitlements_terminals_hold_nothing(
        people in prop::collection::vec(person_strategy(), PEOPLE as usize),
        grants in prop::collection::vec(grant_strategy(), 1..6),
        at in 0i64..200,
    ) {
        let mut s = world(&people, &grants);
        s.memberships.clear();
        s.events.clear();
        s.accesses.clear();
        for terminal in TERMINALS {
            let state = desired_state(&s, terminal, hour(at));
            prop_assert!(state.people.is_empty());
            prop_assert_eq!(state.next_change, None);
        }
        for id in s.credentials.keys() {
            let status = s.credential_status(*id, hour(at)).unwrap();
            prop_assert!(!status.is_active() || !s.credentials[id].factor().is_terminal_held());
        }
    }

    #[test]
    fn next_change_is_exact(
        people in prop::collection::vec(person_strategy(), PEOPLE as usize),
        grants in prop::collection::vec(grant_strategy(), 0..6),
        at in 0i64..200,
    ) {
        let s = world(&people, &grants);
        for terminal in TERMINALS {
            let state = desired_state(&s, terminal, hour(at));
            let end = state.next_change.unwrap_or(hour(400));
            // Every boundary in the generated data is on a whole hour: sample each hour.
            let mut t = hour(at) + SignedDuration::from_hours(1);
            while t < end {
                prop_assert_eq!(&desired_state(&s, terminal, t).people, &state.people, "changed at {} before {:?}", t, state.next_change);
                t += SignedDuration::from_hours(1);
            }
            if let Some(next) = state.next_change {
                prop_assert!(next > hour(at));
                prop_assert_ne!(&desired_state(&s, terminal, next).people, &state.people);
            }
        }
    }

    #[test]
    fn a_grant_at_a_terminal_door_is_backed_by_its_desired_state(
        people in prop::collection::vec(person_strategy(), PEOPLE as usize),
        grants in prop::collection::vec(grant_strategy(), 0..6),
        at in 0i64..200,
        person in 1..=PEOPLE,
    ) {
        // Whatever the core grants at a terminal's door with a terminal-held credential,
        // the terminal was told to hold (so standalone and online decisions agree).
        let s = world(&people, &grants);
        let credentials: Vec<Credential> = s.credentials.values().filter(|c| c.person_id.get() == person).cloned().collect();
        for credential in credentials.iter().filter(|c| c.factor().is_terminal_held()) {
            let factor = match &credential.value {
                CredentialValue::Face { .. } => PresentedFactor::Face { credential_id: credential.id, live: true },
                CredentialValue::Card(card) => PresentedFactor::Card(*card),
                CredentialValue::Pin(pin) => PresentedFactor::Pin(pin.expose().into()),
                CredentialValue::Qr(qr) => PresentedFactor::Qr(qr.expose().into()),
                _ => continue,
            };
            for door in [MAIN_DOOR, OFFICE_DOOR, SIDE_DOOR] {
                for direction in [Direction::In, Direction::Out] {
                    let decision = decide(&s, std::slice::from_ref(&factor), door, direction, hour(at));
                    if decision.granted() {
                        let backed = s.topology.terminals_serving(door).any(|t| {
                            desired_state(&s, t.id, hour(at)).credential_ids().contains(&credential.id)
                        });
                        prop_assert!(backed, "{:?} granted at {:?} but on no terminal", credential.id, door);
                    }
                }
            }
        }
    }
}

/// What a reader would present for `credential` (a matcher names faces and fingers).
fn presented(credential: &Credential) -> Option<PresentedFactor> {
    Some(match &credential.value {
        CredentialValue::Card(card) => PresentedFactor::Card(*card),
        CredentialValue::Pin(pin) => PresentedFactor::Pin(format!(" {} ", pin.expose())),
        CredentialValue::Qr(qr) => PresentedFactor::Qr(qr.expose().to_owned()),
        CredentialValue::Face { .. } => PresentedFactor::Face {
            credential_id: credential.id,
            live: true,
        },
        CredentialValue::Fingerprint(_) => PresentedFactor::Fingerprint {
            credential_id: credential.id,
        },
        _ => return None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The decision through the snapshot's indexes is the decision of the scan, for every
    /// credential presented alone and with each other credential, at every door.
    #[test]
    fn decisions_through_the_lookup_equal_the_scan(
        people in prop::collection::vec(person_strategy(), PEOPLE as usize),
        grants in prop::collection::vec(grant_strategy(), 0..6),
        at in 0i64..200,
    ) {
        let s = world(&people, &grants);
        let lookup = Lookup::of(&s);
        let factors: Vec<PresentedFactor> = s.credentials.values().filter_map(presented).collect();
        let mut presentations: Vec<Vec<PresentedFactor>> =
            factors.iter().map(|f| vec![f.clone()]).collect();
        for (i, a) in factors.iter().enumerate() {
            for b in &factors[i + 1..] {
                presentations.push(vec![a.clone(), b.clone()]);
            }
        }
        presentations.push(vec![PresentedFactor::Pin("no such pin".into())]);
        for door in [MAIN_DOOR, OFFICE_DOOR, SIDE_DOOR] {
            for direction in [Direction::In, Direction::Out] {
                for presentation in &presentations {
                    let scanned = decide(&s, presentation, door, direction, hour(at));
                    let looked_up =
                        decide_with(&s, Some(&lookup), presentation, door, direction, hour(at));
                    prop_assert_eq!(scanned, looked_up, "{:?} at {:?}", presentation, door);
                }
            }
        }
    }
}

/// The status of `changed` computed before the change is applied, and after (on a copy of
/// the snapshot holding it), agree.
fn status_before_equals_after(s: &Snapshot, changed: &Credential, at: Timestamp) {
    let mut after = s.clone();
    after.credentials.insert(changed.id, changed.clone());
    assert_eq!(
        Some(s.status_as_held(changed, at)),
        after.credential_status(changed.id, at),
        "{changed:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// A credential being issued or changed (suspended, resumed, given a window, revoked)
    /// gets the status it has once applied, without the snapshot being copied.
    #[test]
    fn the_status_of_a_change_is_the_status_once_applied(
        people in prop::collection::vec(person_strategy(), PEOPLE as usize),
        grants in prop::collection::vec(grant_strategy(), 0..6),
        at in 0i64..200,
        window in (0i64..150, 1i64..100),
    ) {
        let s = world(&people, &grants);
        for c in s.credentials.values() {
            let mut suspended = c.clone();
            if suspended.suspend().is_ok() {
                status_before_equals_after(&s, &suspended, hour(at));
                let mut resumed = suspended.clone();
                if resumed.unsuspend().is_ok() {
                    status_before_equals_after(&s, &resumed, hour(at));
                }
            }
            if let Ok(windowed) =
                c.clone().with_window(Some(hour(window.0)), Some(hour(window.0 + window.1)))
            {
                status_before_equals_after(&s, &windowed, hour(at));
            }
            let mut revoked = c.clone();
            if revoked.revoke(RevokeReason::Damaged).is_ok() {
                status_before_equals_after(&s, &revoked, hour(at));
            }
        }
        for person in s.people.keys() {
            let new = Credential::issue(CredentialId::new(9_000), TENANT, *person, card(9_000), hour(0));
            status_before_equals_after(&s, &new, hour(at));
        }
    }
}

#[test]
fn a_mobile_key_parent_is_judged_with_its_copies_under_its_new_version() {
    let mut s = tenant();
    let p = add_person(&mut s, 1);
    let parent = add_credential(&mut s, 10, p, CredentialValue::MobileKey { phone_id: None });
    for (phone, active) in [(20, true), (21, false)] {
        let phone = Phone {
            id: PhoneId::new(phone),
            person_id: p,
            active,
            name: None,
            platform: None,
        };
        let copy = s.credentials[&parent].copy_for_phone(
            CredentialId::new(phone.id.get() + 10),
            phone.id,
            hour(0),
        );
        s.phones.insert(phone.id, phone);
        s.credentials.insert(copy.id, copy);
    }
    let mut suspended = s.credentials[&parent].clone();
    suspended.suspend().unwrap();
    status_before_equals_after(&s, &suspended, hour(1));
    s.credentials.insert(parent, suspended.clone());
    let mut resumed = suspended;
    resumed.unsuspend().unwrap();
    status_before_equals_after(&s, &resumed, hour(1));
    let later = s.credentials[&parent]
        .clone()
        .with_window(Some(hour(5)), None)
        .unwrap();
    status_before_equals_after(&s, &later, hour(1));
    let new_parent = Credential::issue(
        CredentialId::new(99),
        TENANT,
        p,
        CredentialValue::MobileKey { phone_id: None },
        hour(0),
    );
    status_before_equals_after(&s, &new_parent, hour(1));
}
