//! The decision and desired-state functions with a large tenant loaded (BENCHMARKS.md, figure 8):
//! 100,000 people each with a card, 1,000 accesses (each for 100 people at one of 10
//! doors, half of them with an office-hours schedule), 20 terminals.
//!
//! `cargo bench -p acs-core --bench domain`

use std::collections::BTreeSet;
use std::hint::black_box;

use acs_core::card::WiegandCard;
use acs_core::domain::*;
use criterion::{Criterion, criterion_group, criterion_main};
use jiff::Timestamp;

const PEOPLE: u64 = 100_000;
const ACCESSES: u64 = 1_000;
const DOORS: u64 = 10;
const TERMINALS: u64 = 20;

fn tenant() -> Snapshot {
    let tenant = TenantId::new(1);
    let mut s = Snapshot::new(Tenant::new(tenant, "Bench").expect("tenant"));
    let site = Site::new(SiteId::new(1), tenant, "Site", "Europe/Madrid").expect("site");
    s.topology.sites.insert(site.id, site);
    let facility = Facility::new(
        FacilityId::new(2),
        SiteId::new(1),
        None,
        "F",
        FacilityKind::Facility,
    )
    .expect("facility");
    s.topology.facilities.insert(facility.id, facility);
    for d in 0..DOORS {
        let door = Door::new(
            DoorId::new(100 + d),
            FacilityId::new(2),
            "door",
            [AuthType::Card, AuthType::Face],
            [AuthType::Card],
        )
        .expect("door");
        s.topology.doors.insert(door.id, door);
    }
    for t in 0..TERMINALS {
        let terminal = Terminal::new(
            TerminalId::new(200 + t),
            TerminalSpec {
                facility_id: FacilityId::new(2),
                model: TerminalModel::IdFace,
                address: format!("http://10.0.1.{t}"),
                login: "admin".into(),
                password: DevicePassword::new("admin"),
                operating_mode: OperatingMode::Standalone,
                door_ids: [DoorId::new(100 + t % DOORS)].into_iter().collect(),
            },
        )
        .expect("terminal");
        s.topology.terminals.insert(terminal.id, terminal);
    }
    let mut office = Schedule::new(ScheduleId::new(300), "Office").expect("schedule");
    let weekdays = WeekdaySet::of([
        jiff::civil::Weekday::Monday,
        jiff::civil::Weekday::Tuesday,
        jiff::civil::Weekday::Wednesday,
        jiff::civil::Weekday::Thursday,
        jiff::civil::Weekday::Friday,
    ]);
    office.spans.push(
        WeeklySpan::new(
            weekdays,
            8 * 3600,
            18 * 3600,
            HolidayClasses::of(&[]).expect("classes"),
        )
        .expect("span"),
    );
    s.schedules.insert(office.id, office);
    let issued: Timestamp = "2026-01-01T00:00:00Z".parse().expect("instant");
    for p in 0..PEOPLE {
        let id = PersonId::new(10_000 + p);
        let person = Person::new(
            id,
            tenant,
            AcsId::parse(&format!("E-{p}")).expect("acs id"),
            "",
        );
        s.people.insert(id, person);
        let card = Credential::issue(
            CredentialId::new(1_000_000 + p),
            tenant,
            id,
            CredentialValue::Card(WiegandCard::new(1, u32::try_from(p).expect("fits"))),
            issued,
        );
        s.credentials.insert(card.id, card);
    }
    for a in 0..ACCESSES {
        let people: BTreeSet<PersonId> = (0..100)
            .map(|i| PersonId::new(10_000 + a * 100 + i))
            .collect();
        let access = Access::new(
            AccessId::new(500_000 + a),
            AccessSpec {
                tenant_id: tenant,
                name: format!("access {a}"),
                kind: AccessKind::Permanent,
                effect: Effect::Permit,
                valid_from: None,
                valid_to: None,
                schedule_id: (a % 2 == 0).then_some(ScheduleId::new(300)),
                site_id: None,
                doors: vec![AccessDoor {
                    door_id: DoorId::new(100 + a % DOORS),
                    lock_unlock: false,
                    in_auth_types: Some([AuthType::Card].into_iter().collect()),
                    out_auth_types: Some(BTreeSet::new()),
                }],
                person_ids: people,
                group_ids: BTreeSet::new(),
            },
        )
        .expect("access");
        s.accesses.insert(access.id, access);
    }
    s
}

fn benches(c: &mut Criterion) {
    let s = tenant();
    // Monday 2026-05-04 10:00 in Madrid: inside office hours.
    let at: Timestamp = "2026-05-04T08:00:00Z".parse().expect("instant");
    // Person 12,345 is in access 123 (odd: no schedule) at door 103.
    let known = [PresentedFactor::Card(WiegandCard::new(1, 12_345))];
    let unknown = [PresentedFactor::Card(WiegandCard::new(9, 9))];
    assert!(decide(&s, &known, DoorId::new(103), Direction::In, at).granted());
    c.bench_function("decide: card granted (100k people, 1k accesses)", |b| {
        b.iter(|| {
            decide(
                black_box(&s),
                black_box(&known),
                DoorId::new(103),
                Direction::In,
                at,
            )
        })
    });
    c.bench_function("decide: unknown card", |b| {
        b.iter(|| {
            decide(
                black_box(&s),
                black_box(&unknown),
                DoorId::new(103),
                Direction::In,
                at,
            )
        })
    });
    let lookup = Lookup::of(&s);
    for (name, presented) in [
        ("decide through the lookup: card granted", &known),
        ("decide through the lookup: unknown card", &unknown),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                decide_with(
                    black_box(&s),
                    Some(&lookup),
                    black_box(presented),
                    DoorId::new(103),
                    Direction::In,
                    at,
                )
            })
        });
    }
    c.bench_function("building the lookup (100k people)", |b| {
        b.iter(|| Lookup::of(black_box(&s)))
    });
    let mut group = c.benchmark_group("desired state");
    group.sample_size(10);
    group.bench_function("one terminal (10,000 people on it)", |b| {
        b.iter(|| desired_state(black_box(&s), TerminalId::new(203), at))
    });
    group.finish();
}

criterion_group!(domain, benches);
criterion_main!(domain);
