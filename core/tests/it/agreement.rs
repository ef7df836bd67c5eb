//! The decision and the desired state agree (docs/domain.md §8.1 rule 2, §8.2 rules 7–8):
//! over generated tenants – doors that declare auth types or declare none, terminals of
//! every model each serving one door, members, attendees and permit accesses that list
//! auth types or list none, with windows and schedules, people and credentials enabled or
//! not – a credential presented at a terminal's door is granted by the decision function
//! exactly when the terminal's desired state holds it for an entitlement, in time, that
//! enables its auth type at that door ("the credential is on the terminal with a rule that
//! admits it").
//!
//! What a door takes and what an entitlement enables is modelled here, independently of
//! the core: a door takes what it declares or, declaring nothing, what the models of the
//! terminals serving it read (and the core's cloud and mobile keys); a membership or an
//! attendance enables all of it, an access what it lists among it (all of it where it
//! lists nothing). Deny accesses and lockdowns are left out: terminals are given no
//! blocking rules (docs/domain.md §12).

use std::collections::BTreeSet;

use acs_core::card::WiegandCard;
use acs_core::domain::*;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use crate::support::ts;

const TENANT: TenantId = TenantId::new(1);
const SITE: SiteId = SiteId::new(1);
/// Facilities 1..=3: a venue, a hall inside it, offices outside.
const FACILITIES: u64 = 3;
const DOORS: u64 = 3;
const TERMINALS: u64 = 4;
const PEOPLE: u64 = 4;
/// Office hours (Monday to Friday, 09:00–18:00 in Madrid).
const OFFICE_HOURS: ScheduleId = ScheduleId::new(1);

/// 2024-06-03 00:00 UTC, a Monday.
fn hour(h: i64) -> Timestamp {
    ts("2024-06-03T00:00:00Z") + SignedDuration::from_hours(h)
}

#[derive(Debug, Clone)]
struct DoorGen {
    facility: u64,
    /// What it declares in and out; `None`: nothing.
    declared: Option<(Vec<AuthType>, Vec<AuthType>)>,
}

#[derive(Debug, Clone)]
struct TerminalGen {
    model: TerminalModel,
    facility: u64,
    door: u64,
}

#[derive(Debug, Clone)]
struct PersonGen {
    /// 0 face, 1 fingerprint, 2 card, 3 PIN, 4 QR.
    kinds: Vec<u8>,
    suspended: bool,
    valid_to: Option<i64>,
    /// A window for every other credential.
    credential_window: Option<(i64, i64)>,
}

/// A door of an access: the door and what it lists in and out (`None`: nothing listed).
type EntryGen = (u64, Option<Vec<AuthType>>, Option<Vec<AuthType>>);

#[derive(Debug, Clone)]
enum GrantGen {
    Member {
        person: u64,
        /// The facility it is limited to (`None`: the whole tenant).
        facility: Option<u64>,
        since: i64,
        removed: Option<i64>,
    },
    Attendee {
        facility: u64,
        start: i64,
        hours: i64,
        people: Vec<u64>,
    },
    Access {
        people: Vec<u64>,
        via_group: bool,
        doors: Vec<EntryGen>,
        window: (Option<i64>, Option<i64>),
        scheduled: bool,
        deleted: bool,
        /// Covers every door of the site (its listed doors only set what is enabled).
        site_wide: bool,
    },
}

fn auth_types() -> impl Strategy<Value = Vec<AuthType>> {
    prop::sample::subsequence(AuthType::ALL.to_vec(), 0..=5)
}

fn door_gen() -> impl Strategy<Value = DoorGen> {
    (
        1..=FACILITIES,
        prop::option::weighted(0.5, (auth_types(), auth_types())),
    )
        .prop_map(|(facility, declared)| DoorGen { facility, declared })
}

fn terminal_gen() -> impl Strategy<Value = TerminalGen> {
    (
        prop::sample::select(TerminalModel::ALL.to_vec()),
        1..=FACILITIES,
        1..=DOORS,
    )
        .prop_map(|(model, facility, door)| TerminalGen {
            model,
            facility,
            door,
        })
}

fn person_gen() -> impl Strategy<Value = PersonGen> {
    (
        prop::collection::vec(0u8..5, 1..4),
        prop::bool::weighted(0.1),
        prop::option::weighted(0.2, 0i64..150),
        prop::option::weighted(0.2, (0i64..100, 1i64..100)),
    )
        .prop_map(
            |(kinds, suspended, valid_to, credential_window)| PersonGen {
                kinds,
                suspended,
                valid_to,
                credential_window,
            },
        )
}

fn grant_gen() -> impl Strategy<Value = GrantGen> {
    let people = || prop::collection::vec(1..=PEOPLE, 1..3);
    let entry = (
        1..=DOORS,
        prop::option::weighted(0.6, auth_types()),
        prop::option::weighted(0.6, auth_types()),
    );
    prop_oneof![
        (
            1..=PEOPLE,
            prop::option::of(1..=FACILITIES),
            0i64..100,
            prop::option::of(0i64..150)
        )
            .prop_map(|(person, facility, since, removed)| GrantGen::Member {
                person,
                facility,
                since,
                removed: removed.map(|r| since + r),
            }),
        (1..=FACILITIES, 0i64..150, 1i64..50, people()).prop_map(
            |(facility, start, hours, people)| GrantGen::Attendee {
                facility,
                start,
                hours,
                people,
            }
        ),
        (
            people(),
            prop::bool::ANY,
            prop::collection::vec(entry, 1..3),
            (prop::option::of(0i64..100), prop::option::of(1i64..150)),
            prop::bool::weighted(0.4),
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.25),
        )
            .prop_map(
                |(people, via_group, doors, (from, len), scheduled, deleted, site_wide)| {
                    GrantGen::Access {
                        people,
                        via_group,
                        doors,
                        window: (from, len.map(|l| from.unwrap_or(0) + l)),
                        scheduled,
                        deleted,
                        site_wide,
                    }
                }
            ),
    ]
}

/// The independent model: the factors a terminal of `model` reads.
fn reads(model: TerminalModel) -> &'static [Factor] {
    match model {
        TerminalModel::IdFace | TerminalModel::IdFaceMax => {
            &[Factor::Face, Factor::Card, Factor::Pin, Factor::Qr]
        }
        TerminalModel::IdAccess | TerminalModel::IdFlex => {
            &[Factor::Fingerprint, Factor::Card, Factor::Pin]
        }
        _ => &[
            Factor::Face,
            Factor::Fingerprint,
            Factor::Card,
            Factor::Pin,
            Factor::Qr,
        ],
    }
}

/// The independent model: what `door` takes in `direction`.
fn takes(s: &Snapshot, door: &Door, direction: Direction) -> BTreeSet<AuthType> {
    if !door.supported_in.is_empty() || !door.supported_out.is_empty() {
        return match direction {
            Direction::In => door.supported_in.clone(),
            Direction::Out => door.supported_out.clone(),
        };
    }
    let mut taken = BTreeSet::new();
    for terminal in s.topology.terminals.values() {
        if !terminal.door_ids.contains(&door.id) {
            continue;
        }
        for auth_type in AuthType::ALL {
            let readable = auth_type.factors().iter().all(|f| {
                matches!(f, Factor::CloudKey | Factor::MobileKey)
                    || reads(terminal.model).contains(f)
            });
            if readable {
                taken.insert(auth_type);
            }
        }
    }
    taken
}

/// The independent model: what `entitlement` enables at `door` in `direction`.
fn enables(
    s: &Snapshot,
    entitlement: Entitlement,
    door: &Door,
    direction: Direction,
) -> BTreeSet<AuthType> {
    let taken = takes(s, door, direction);
    match entitlement {
        Entitlement::Membership(_) | Entitlement::Attendee(_) => taken,
        Entitlement::Access(id) => {
            let access = &s.accesses[&id];
            // Listed, or (covering the door's site) every type the door takes.
            let listed_entry = access.doors.iter().find(|d| d.door_id == door.id);
            let in_site = s.topology.facilities[&door.facility_id].site_id;
            let entry = match listed_entry {
                Some(entry) => entry.clone(),
                None if access.site_id == Some(in_site) => AccessDoor {
                    door_id: door.id,
                    lock_unlock: false,
                    in_auth_types: None,
                    out_auth_types: None,
                },
                None => return BTreeSet::new(),
            };
            let listed = match direction {
                Direction::In => &entry.in_auth_types,
                Direction::Out => &entry.out_auth_types,
            };
            match listed {
                Some(listed) => listed.intersection(&taken).copied().collect(),
                None => taken,
            }
        }
    }
}

/// The auth type of one factor alone.
fn alone(factor: Factor) -> AuthType {
    match factor {
        Factor::Face => AuthType::Face,
        Factor::Fingerprint => AuthType::Fingerprint,
        Factor::Card => AuthType::Card,
        Factor::Pin => AuthType::Pin,
        Factor::Qr => AuthType::Qr,
        Factor::CloudKey => AuthType::CloudKey,
        Factor::MobileKey => AuthType::MobileKey,
    }
}

fn build(
    doors: &[DoorGen],
    terminals: &[TerminalGen],
    people: &[PersonGen],
    grants: &[GrantGen],
    tenant_active: bool,
) -> Snapshot {
    let mut tenant = Tenant::new(TENANT, "Acme").unwrap();
    tenant.active = tenant_active;
    let mut s = Snapshot::new(tenant);
    let site = Site::new(SITE, TENANT, "Madrid", "Europe/Madrid").unwrap();
    s.topology.sites.insert(site.id, site);
    for (id, parent) in [(1, None), (2, Some(1)), (3, None)] {
        let f = Facility::new(
            FacilityId::new(id),
            SITE,
            parent.map(FacilityId::new),
            "f",
            FacilityKind::Facility,
        )
        .unwrap();
        s.topology.facilities.insert(f.id, f);
    }
    for (i, d) in doors.iter().enumerate() {
        let (declared_in, declared_out) = d.declared.clone().unwrap_or_default();
        let door = Door::new(
            DoorId::new(i as u64 + 1),
            FacilityId::new(d.facility),
            "d",
            declared_in,
            declared_out,
        )
        .unwrap();
        s.topology.doors.insert(door.id, door);
    }
    for (i, t) in terminals.iter().enumerate() {
        let terminal = Terminal::new(
            TerminalId::new(i as u64 + 1),
            TerminalSpec {
                facility_id: FacilityId::new(t.facility),
                model: t.model,
                address: format!("http://10.0.0.{}", i + 1),
                login: "admin".into(),
                password: DevicePassword::new("admin"),
                operating_mode: OperatingMode::Standalone,
                door_ids: [DoorId::new(t.door)].into(),
            },
        )
        .unwrap();
        s.topology.terminals.insert(terminal.id, terminal);
    }
    let mut office = Schedule::new(OFFICE_HOURS, "office").unwrap();
    office.spans.push(
        WeeklySpan::new(
            WeekdaySet::of([
                jiff::civil::Weekday::Monday,
                jiff::civil::Weekday::Tuesday,
                jiff::civil::Weekday::Wednesday,
                jiff::civil::Weekday::Thursday,
                jiff::civil::Weekday::Friday,
            ]),
            9 * 3600,
            18 * 3600,
            HolidayClasses::NONE,
        )
        .unwrap(),
    );
    s.schedules.insert(office.id, office);

    let mut next = 1;
    for (i, p) in people.iter().enumerate() {
        let id = PersonId::new(i as u64 + 1);
        let mut person = Person::new(
            id,
            TENANT,
            AcsId::parse(&format!("acs-{}", i + 1)).unwrap(),
            "",
        );
        if p.suspended {
            person.suspend().unwrap();
        }
        if let Some(to) = p.valid_to {
            person = person.with_validity(None, Some(hour(to))).unwrap();
        }
        s.people.insert(id, person);
        for kind in &p.kinds {
            let value = match kind {
                0 => CredentialValue::face(&format!("photos/{next}.jpg")).unwrap(),
                1 => CredentialValue::Fingerprint(
                    FingerprintTemplates::new(vec![format!("dGVtcGxhdGU{next}")]).unwrap(),
                ),
                2 => CredentialValue::Card(WiegandCard::new(1, next as u32)),
                3 => CredentialValue::Pin(Pin::parse(&format!("{:04}", 1000 + next)).unwrap()),
                _ => CredentialValue::Qr(SecretText::parse("qr", &format!("qr-{next}")).unwrap()),
            };
            let mut credential = Credential::issue(
                CredentialId::new(next),
                TENANT,
                id,
                value,
                ts("2024-01-01T00:00:00Z"),
            );
            if let (Some((start, len)), true) = (p.credential_window, next % 2 == 0) {
                credential = credential
                    .with_window(Some(hour(start)), Some(hour(start + len)))
                    .unwrap();
            }
            s.credentials.insert(credential.id, credential);
            next += 1;
        }
    }

    for (i, grant) in grants.iter().enumerate() {
        let id = i as u64 + 1;
        let person = |p: &u64| PersonId::new(*p);
        match grant {
            GrantGen::Member {
                person: p,
                facility,
                since,
                removed,
            } => {
                let mut m = Membership::new(MembershipId::new(id), TENANT, person(p), hour(*since));
                if let Some(f) = facility {
                    m = m.within(FacilityId::new(*f));
                }
                if let Some(r) = removed {
                    m.remove(hour(*r)).unwrap();
                }
                s.memberships.insert(m.id, m);
            }
            GrantGen::Attendee {
                facility,
                start,
                hours,
                people,
            } => {
                let mut e = Event::new(
                    EventId::new(id),
                    TENANT,
                    FacilityId::new(*facility),
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
            GrantGen::Access {
                people,
                via_group,
                doors,
                window,
                scheduled,
                deleted,
                site_wide,
            } => {
                // Listed types the door does not take are refused when written: keep the
                // ones it takes; an entry listing nothing either way takes the door's.
                let mut seen = BTreeSet::new();
                let mut entries = Vec::new();
                for (door, listed_in, listed_out) in doors {
                    if !seen.insert(*door) {
                        continue;
                    }
                    let d = &s.topology.doors[&DoorId::new(*door)];
                    let keep = |listed: &Option<Vec<AuthType>>, direction| {
                        let taken = takes(&s, d, direction);
                        listed.as_ref().map(|l| {
                            l.iter()
                                .copied()
                                .filter(|a| taken.contains(a))
                                .collect::<BTreeSet<_>>()
                        })
                    };
                    let mut entry = AccessDoor {
                        door_id: d.id,
                        lock_unlock: false,
                        in_auth_types: keep(listed_in, Direction::In),
                        out_auth_types: keep(listed_out, Direction::Out),
                    };
                    let nothing =
                        |l: &Option<BTreeSet<AuthType>>| l.as_ref().is_some_and(BTreeSet::is_empty);
                    if nothing(&entry.in_auth_types) && nothing(&entry.out_auth_types) {
                        entry.in_auth_types = None;
                    }
                    entries.push(entry);
                }
                let mut spec = AccessSpec {
                    tenant_id: TENANT,
                    name: "a".into(),
                    kind: AccessKind::Permanent,
                    effect: Effect::Permit,
                    valid_from: window.0.map(hour),
                    valid_to: window.1.map(hour),
                    schedule_id: scheduled.then_some(OFFICE_HOURS),
                    site_id: site_wide.then_some(SITE),
                    doors: entries,
                    person_ids: BTreeSet::new(),
                    group_ids: BTreeSet::new(),
                };
                let subjects: BTreeSet<PersonId> = people.iter().map(person).collect();
                if *via_group {
                    let mut g = Group::new(GroupId::new(id), TENANT, "g").unwrap();
                    g.members = subjects;
                    s.groups.insert(g.id, g);
                    spec.group_ids.insert(GroupId::new(id));
                } else {
                    spec.person_ids = subjects;
                }
                let mut access = Access::new(AccessId::new(id), spec).unwrap();
                validate_access_doors(&s.topology, access.effect, &access.doors).unwrap();
                if *deleted {
                    access.status = ProvisioningStatus::Deleting;
                }
                s.accesses.insert(access.id, access);
            }
        }
    }
    s
}

/// What a reader presents for `credential`.
fn presented(credential: &Credential) -> PresentedFactor {
    match &credential.value {
        CredentialValue::Face { .. } => PresentedFactor::Face {
            credential_id: credential.id,
            live: true,
        },
        CredentialValue::Fingerprint(_) => PresentedFactor::Fingerprint {
            credential_id: credential.id,
        },
        CredentialValue::Card(card) => PresentedFactor::Card(*card),
        CredentialValue::Pin(pin) => PresentedFactor::Pin(pin.expose().into()),
        CredentialValue::Qr(qr) => PresentedFactor::Qr(qr.expose().into()),
        other => panic!("not generated: {other:?}"),
    }
}

/// Whether `terminal`'s desired state lets `credential` in at its door at `at`: the
/// terminal holds it for an entitlement in time (a schedule is the terminal's to keep)
/// that enables its auth type there.
fn desired_lets_in(
    s: &Snapshot,
    terminal: &Terminal,
    credential: &Credential,
    at: Timestamp,
) -> bool {
    let door = &s.topology.doors[terminal.door_ids.first().expect("one door")];
    let zone = &s.topology.sites[&SITE].time_zone;
    let state = desired_state(s, terminal.id, at);
    let Some(required_by) = state
        .people
        .get(&credential.person_id)
        .and_then(|p| p.credentials.get(&credential.id))
    else {
        return false;
    };
    required_by.iter().any(|entitlement| {
        let in_time = match entitlement {
            Entitlement::Access(id) => s.schedule_active(s.accesses[id].schedule_id, zone, at),
            _ => true,
        };
        in_time
            && enables(s, *entitlement, door, Direction::In).contains(&alone(credential.factor()))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_desired_state_lets_in_exactly_whom_the_decision_grants(
        doors in prop::collection::vec(door_gen(), DOORS as usize),
        terminals in prop::collection::vec(terminal_gen(), 1..=TERMINALS as usize),
        people in prop::collection::vec(person_gen(), PEOPLE as usize),
        grants in prop::collection::vec(grant_gen(), 0..6),
        tenant_active in prop::bool::weighted(0.95),
        at in 0i64..200,
    ) {
        let s = build(&doors, &terminals, &people, &grants, tenant_active);
        let at = hour(at);
        for terminal in s.topology.terminals.values() {
            let door = *terminal.door_ids.first().expect("one door");
            for credential in s.credentials.values() {
                let decision = decide(&s, &[presented(credential)], door, Direction::In, at);
                let held = desired_lets_in(&s, terminal, credential, at);
                prop_assert_eq!(
                    decision.granted(),
                    held,
                    "credential {:?} ({:?}) at terminal {:?} ({:?}, door {:?}): decision {:?}",
                    credential.id,
                    credential.factor(),
                    terminal.id,
                    terminal.model,
                    door,
                    decision.outcome
                );
            }
            // Nothing superfluous: a terminal holds a credential only for an entitlement
            // that uses its kind at its door (alone or with another factor, in or out).
            let door = &s.topology.doors[&door];
            for person in desired_state(&s, terminal.id, at).people.values() {
                for (credential, required_by) in &person.credentials {
                    let factor = s.credentials[credential].factor();
                    for entitlement in required_by {
                        let used = [Direction::In, Direction::Out].into_iter().any(|d| {
                            enables(&s, *entitlement, door, d)
                                .iter()
                                .any(|a| a.factors().contains(&factor))
                        });
                        prop_assert!(
                            used,
                            "{:?} ({:?}) held on {:?} for {:?}, which uses no {:?} there",
                            credential,
                            factor,
                            terminal.id,
                            entitlement,
                            factor
                        );
                    }
                }
            }
        }
    }
}
