//! Decision table: one row per situation, covering every reason code (docs/domain.md §8.2, §9).

use crate::support::*;
use acs_core::card::WiegandCard;
use acs_core::domain::*;
use std::collections::BTreeSet;

const NOW: &str = "2024-06-05T10:00:00Z"; // Wednesday, 12:00 in Madrid

/// P1: card, PIN, face, QR; access at the main door and card+PIN at the office.
/// P2: card and PIN, no entitlement. P3: member with a card. P4: attendee of a venue event
/// with a face. P5: one-time cloud key with PIN. P6: mobile key on two phones (one
/// inactive) via a group. Credential 99 belongs to nobody.
fn world() -> Snapshot {
    let mut s = tenant();
    let p1 = add_person(&mut s, 1);
    add_credential(&mut s, 11, p1, card(100));
    add_credential(&mut s, 12, p1, pin("1111"));
    add_credential(&mut s, 13, p1, face(13));
    add_credential(
        &mut s,
        14,
        p1,
        CredentialValue::Qr(SecretText::parse("qr", "qr-1").unwrap()),
    );
    add_access(
        &mut s,
        1,
        permit(
            &[p1],
            vec![access_door(
                MAIN_DOOR,
                &[AuthType::Face, AuthType::Card, AuthType::CardPlusPin],
                &[AuthType::Card],
            )],
        ),
    );
    add_access(
        &mut s,
        2,
        permit(
            &[p1],
            vec![access_door(OFFICE_DOOR, &[AuthType::CardPlusPin], &[])],
        ),
    );

    let p2 = add_person(&mut s, 2);
    add_credential(&mut s, 21, p2, card(200));
    add_credential(&mut s, 22, p2, pin("2222"));

    let p3 = add_person(&mut s, 3);
    add_credential(&mut s, 31, p3, card(300));
    add_member(&mut s, 1, p3, ts("2024-01-01T00:00:00Z"));

    let p4 = add_person(&mut s, 4);
    add_credential(&mut s, 41, p4, face(41));
    add_event(
        &mut s,
        1,
        VENUE,
        "2024-06-05T09:00:00Z",
        "2024-06-05T12:00:00Z",
        &[p4],
    );

    let p5 = add_person(&mut s, 5);
    let key = CredentialValue::CloudKey {
        token: SecretText::parse("token", "tok-5").unwrap(),
        pin: Some(SecretText::parse("pin", "5555").unwrap()),
    };
    add_credential(&mut s, 51, p5, key);
    let one_time = s.credentials[&CredentialId::new(51)]
        .clone()
        .with_max_uses(1)
        .unwrap();
    s.credentials.insert(one_time.id, one_time);
    add_access(
        &mut s,
        3,
        permit(
            &[p5],
            vec![access_door(MAIN_DOOR, &[AuthType::CloudKey], &[])],
        ),
    );

    let p6 = add_person(&mut s, 6);
    add_credential(
        &mut s,
        61,
        p6,
        CredentialValue::MobileKey { phone_id: None },
    );
    for (phone, active) in [(61, true), (62, false)] {
        let phone = Phone {
            id: PhoneId::new(phone),
            person_id: p6,
            active,
            name: None,
            platform: None,
        };
        s.phones.insert(phone.id, phone);
    }
    for (copy, phone) in [(62, 61), (63, 62)] {
        let c = s.credentials[&CredentialId::new(61)].copy_for_phone(
            CredentialId::new(copy),
            PhoneId::new(phone),
            ts("2024-01-01T00:00:00Z"),
        );
        s.credentials.insert(c.id, c);
    }
    let mut group = Group::new(GroupId::new(1), TENANT, "mobile users").unwrap();
    group.members.insert(p6);
    s.groups.insert(group.id, group);
    let mut by_group = permit(
        &[],
        vec![access_door(MAIN_DOOR, &[AuthType::MobileKey], &[])],
    );
    by_group.group_ids.insert(GroupId::new(1));
    add_access(&mut s, 4, by_group);

    add_credential(&mut s, 99, PersonId::new(99), card(999));
    s
}

fn cred(s: &mut Snapshot, id: u64) -> &mut Credential {
    s.credentials.get_mut(&CredentialId::new(id)).unwrap()
}

fn person(s: &mut Snapshot, id: u64) -> &mut Person {
    s.people.get_mut(&PersonId::new(id)).unwrap()
}

fn always_closed_schedule(s: &mut Snapshot) -> ScheduleId {
    let mut schedule = Schedule::new(ScheduleId::new(1), "night").unwrap();
    schedule.spans.push(
        WeeklySpan::new(WeekdaySet::ALL, 0, 3600, HolidayClasses::NONE).unwrap(), // 00:00–01:00
    );
    s.schedules.insert(schedule.id, schedule);
    ScheduleId::new(1)
}

fn add_deny(s: &mut Snapshot, schedule: Option<ScheduleId>) {
    let mut spec = permit(&[PersonId::new(1)], vec![access_door(MAIN_DOOR, &[], &[])]);
    spec.effect = Effect::Deny;
    spec.schedule_id = schedule;
    add_access(s, 9, spec);
}

fn c(number: u32) -> PresentedFactor {
    PresentedFactor::Card(WiegandCard::new(1, number))
}

fn p(digits: &str) -> PresentedFactor {
    PresentedFactor::Pin(digits.into())
}

fn f(id: u64, live: bool) -> PresentedFactor {
    PresentedFactor::Face {
        credential_id: CredentialId::new(id),
        live,
    }
}

struct Row {
    name: &'static str,
    setup: fn(&mut Snapshot),
    factors: Vec<PresentedFactor>,
    door: DoorId,
    direction: Direction,
    at: &'static str,
    expected: Outcome,
    auth_type: Option<AuthType>,
}

fn row(name: &'static str, factors: Vec<PresentedFactor>, door: DoorId, expected: Outcome) -> Row {
    Row {
        name,
        setup: |_| {},
        factors,
        door,
        direction: Direction::In,
        at: NOW,
        expected,
        auth_type: None,
    }
}

impl Row {
    fn setup(mut self, setup: fn(&mut Snapshot)) -> Row {
        self.setup = setup;
        self
    }
    fn out(mut self) -> Row {
        self.direction = Direction::Out;
        self
    }
    fn at(mut self, at: &'static str) -> Row {
        self.at = at;
        self
    }
    fn via(mut self, auth_type: AuthType) -> Row {
        self.auth_type = Some(auth_type);
        self
    }
}

fn denied(reason: DenyReason) -> Outcome {
    Outcome::Denied(reason)
}

use DenyReason::*;
const GRANTED: Outcome = Outcome::Granted;

fn table() -> Vec<Row> {
    vec![
        row("card grants", vec![c(100)], MAIN_DOOR, GRANTED).via(AuthType::Card),
        row("face grants", vec![f(13, true)], MAIN_DOOR, GRANTED).via(AuthType::Face),
        row(
            "card and face: the first declared single factor",
            vec![c(100), f(13, true)],
            MAIN_DOOR,
            GRANTED,
        )
        .via(AuthType::Face),
        row("card grants out", vec![c(100)], MAIN_DOOR, GRANTED)
            .out()
            .via(AuthType::Card),
        row(
            "face not enabled out",
            vec![f(13, true)],
            MAIN_DOOR,
            denied(AuthTypeNotAllowed),
        )
        .out(),
        row(
            "qr not enabled",
            vec![PresentedFactor::Qr("qr-1".into())],
            MAIN_DOOR,
            denied(AuthTypeNotAllowed),
        ),
        row(
            "card alone at a card+PIN door",
            vec![c(100)],
            OFFICE_DOOR,
            denied(SecondFactorMissing),
        ),
        row(
            "card and own PIN",
            vec![c(100), p("1111")],
            OFFICE_DOOR,
            GRANTED,
        )
        .via(AuthType::CardPlusPin),
        row(
            "PIN first, then card",
            vec![p("1111"), c(100)],
            OFFICE_DOOR,
            GRANTED,
        )
        .via(AuthType::CardPlusPin),
        row(
            "card and someone else's PIN",
            vec![c(100), p("2222")],
            OFFICE_DOOR,
            denied(UnknownCredential),
        ),
        row(
            "card and someone else's card",
            vec![c(100), c(200)],
            MAIN_DOOR,
            denied(UnknownCredential),
        ),
        row(
            "unknown card",
            vec![c(12345)],
            MAIN_DOOR,
            denied(UnknownCredential),
        ),
        row(
            "nothing presented",
            vec![],
            MAIN_DOOR,
            denied(UnknownCredential),
        ),
        row(
            "unknown PIN",
            vec![p("9999")],
            MAIN_DOOR,
            denied(UnknownCredential),
        ),
        row(
            "deleted card",
            vec![c(100)],
            MAIN_DOOR,
            denied(UnknownCredential),
        )
        .setup(|s| cred(s, 11).delete().unwrap()),
        row(
            "credential of a missing person",
            vec![c(999)],
            MAIN_DOOR,
            denied(UnknownUser),
        ),
        row(
            "expired card",
            vec![c(100)],
            MAIN_DOOR,
            denied(CredentialExpired),
        )
        .setup(|s| {
            let expired = cred(s, 11)
                .clone()
                .with_window(None, Some(ts("2024-06-01T00:00:00Z")))
                .unwrap();
            s.credentials.insert(expired.id, expired);
        }),
        row(
            "card not yet active",
            vec![c(100)],
            MAIN_DOOR,
            denied(CredentialNotYetActive),
        )
        .setup(|s| {
            let later = cred(s, 11)
                .clone()
                .with_window(Some(ts("2024-07-01T00:00:00Z")), None)
                .unwrap();
            s.credentials.insert(later.id, later);
        }),
        row(
            "revoked card",
            vec![c(100)],
            MAIN_DOOR,
            denied(CredentialRevoked),
        )
        .setup(|s| cred(s, 11).revoke(RevokeReason::Stolen).unwrap()),
        row(
            "suspended card",
            vec![c(100)],
            MAIN_DOOR,
            denied(CredentialSuspended),
        )
        .setup(|s| cred(s, 11).suspend().unwrap()),
        row(
            "suspended PIN of a card+PIN pair",
            vec![c(100), p("1111")],
            OFFICE_DOOR,
            denied(CredentialSuspended),
        )
        .setup(|s| cred(s, 12).suspend().unwrap()),
        row(
            "revoked beats suspended",
            vec![c(100), p("1111")],
            OFFICE_DOOR,
            denied(CredentialRevoked),
        )
        .setup(|s| {
            cred(s, 12).suspend().unwrap();
            cred(s, 11).revoke(RevokeReason::Lost).unwrap();
        }),
        row(
            "locked-out card",
            vec![c(100)],
            MAIN_DOOR,
            denied(TooManyAttempts),
        )
        .setup(|s| cred(s, 11).lock_out().unwrap()),
        row(
            "suspended person",
            vec![c(100)],
            MAIN_DOOR,
            denied(UserInactive),
        )
        .setup(|s| person(s, 1).suspend().unwrap()),
        row(
            "disabled person",
            vec![c(100)],
            MAIN_DOOR,
            denied(UserInactive),
        )
        .setup(|s| person(s, 1).enabled = false),
        row(
            "person past validity",
            vec![c(100)],
            MAIN_DOOR,
            denied(UserInactive),
        )
        .setup(|s| {
            let p = person(s, 1)
                .clone()
                .with_validity(None, Some(ts("2024-06-05T09:59:59Z")))
                .unwrap();
            s.people.insert(p.id, p);
        }),
        row(
            "inactive tenant",
            vec![c(100)],
            MAIN_DOOR,
            denied(UserInactive),
        )
        .setup(|s| s.tenant.active = false),
        row(
            "schedule closed",
            vec![c(100)],
            MAIN_DOOR,
            denied(NotInSchedule),
        )
        .setup(|s| {
            let schedule = always_closed_schedule(s);
            s.accesses.get_mut(&AccessId::new(1)).unwrap().schedule_id = Some(schedule);
        }),
        row(
            "schedule open (00:30 Madrid)",
            vec![c(100)],
            MAIN_DOOR,
            GRANTED,
        )
        .at("2024-06-04T22:30:00Z")
        .setup(|s| {
            let schedule = always_closed_schedule(s);
            s.accesses.get_mut(&AccessId::new(1)).unwrap().schedule_id = Some(schedule);
        }),
        row(
            "unknown schedule fails closed",
            vec![c(100)],
            MAIN_DOOR,
            denied(NotInSchedule),
        )
        .setup(|s| {
            s.accesses.get_mut(&AccessId::new(1)).unwrap().schedule_id = Some(ScheduleId::new(404))
        }),
        row(
            "temporary access expired",
            vec![c(100)],
            MAIN_DOOR,
            denied(NotInSchedule),
        )
        .setup(|s| {
            let mut spec = permit(
                &[PersonId::new(1)],
                vec![access_door(MAIN_DOOR, &[AuthType::Card], &[])],
            );
            spec.kind = AccessKind::Temporary;
            spec.valid_to = Some(ts("2024-06-05T10:00:00Z"));
            s.accesses.remove(&AccessId::new(1));
            add_access(s, 1, spec);
        }),
        row(
            "access being deleted",
            vec![c(100)],
            MAIN_DOOR,
            denied(NoEntitlement),
        )
        .setup(|s| {
            s.accesses.get_mut(&AccessId::new(1)).unwrap().status = ProvisioningStatus::Deleting
        }),
        row(
            "deny rule in force",
            vec![c(100)],
            MAIN_DOOR,
            denied(BlockedByRule),
        )
        .setup(|s| add_deny(s, None)),
        row(
            "deny rule blocks out too",
            vec![c(100)],
            MAIN_DOOR,
            denied(BlockedByRule),
        )
        .out()
        .setup(|s| add_deny(s, None)),
        row(
            "deny rule outside its schedule",
            vec![c(100)],
            MAIN_DOOR,
            GRANTED,
        )
        .setup(|s| {
            let schedule = always_closed_schedule(s);
            add_deny(s, Some(schedule));
        }),
        row(
            "face fails liveness",
            vec![f(13, false)],
            MAIN_DOOR,
            denied(LivenessFailed),
        ),
        row(
            "door in lockdown",
            vec![c(100)],
            MAIN_DOOR,
            denied(Lockdown),
        )
        .setup(|s| {
            s.locked_down_doors.insert(MAIN_DOOR);
        }),
        row(
            "unknown door",
            vec![c(100)],
            DoorId::new(77),
            denied(DeviceError),
        ),
        row(
            "no entitlement",
            vec![c(200)],
            MAIN_DOOR,
            denied(NoEntitlement),
        ),
        row("member at the office", vec![c(300)], OFFICE_DOOR, GRANTED).via(AuthType::Card),
        row(
            "member leaving the office",
            vec![c(300)],
            OFFICE_DOOR,
            GRANTED,
        )
        .out(),
        row(
            "member uses an auth type the door lacks",
            vec![c(300)],
            SIDE_DOOR,
            denied(AuthTypeNotAllowed),
        ),
        row(
            "removed member",
            vec![c(300)],
            OFFICE_DOOR,
            denied(NoEntitlement),
        )
        .setup(|s| {
            s.memberships
                .get_mut(&MembershipId::new(1))
                .unwrap()
                .remove(ts("2024-06-01T00:00:00Z"))
                .unwrap();
        }),
        row(
            "attendee in the hall during the event",
            vec![f(41, true)],
            MAIN_DOOR,
            GRANTED,
        )
        .via(AuthType::Face),
        row(
            "attendee after the event",
            vec![f(41, true)],
            MAIN_DOOR,
            denied(NotInSchedule),
        )
        .at("2024-06-05T12:00:00Z"),
        row(
            "attendee before the event",
            vec![f(41, true)],
            MAIN_DOOR,
            denied(NotInSchedule),
        )
        .at("2024-06-05T08:59:59Z"),
        row(
            "attendee outside the venue",
            vec![f(41, true)],
            OFFICE_DOOR,
            denied(NoEntitlement),
        ),
        row(
            "attendee of a deleted event",
            vec![f(41, true)],
            MAIN_DOOR,
            denied(NoEntitlement),
        )
        .setup(|s| {
            s.events
                .get_mut(&EventId::new(1))
                .unwrap()
                .delete()
                .unwrap()
        }),
        row(
            "cloud key with its PIN",
            vec![PresentedFactor::CloudKey {
                token: "tok-5".into(),
                pin: Some("5555".into()),
            }],
            MAIN_DOOR,
            GRANTED,
        )
        .via(AuthType::CloudKey),
        row(
            "cloud key without its PIN",
            vec![PresentedFactor::CloudKey {
                token: "tok-5".into(),
                pin: None,
            }],
            MAIN_DOOR,
            denied(SecondFactorMissing),
        ),
        row(
            "one-time cloud key already used",
            vec![PresentedFactor::CloudKey {
                token: "tok-5".into(),
                pin: Some("5555".into()),
            }],
            MAIN_DOOR,
            denied(CredentialExpired),
        )
        .setup(|s| cred(s, 51).consume().unwrap()),
        row(
            "mobile key via group",
            vec![PresentedFactor::MobileKey {
                credential_id: CredentialId::new(62),
            }],
            MAIN_DOOR,
            GRANTED,
        )
        .via(AuthType::MobileKey),
        row(
            "mobile key on a deactivated phone",
            vec![PresentedFactor::MobileKey {
                credential_id: CredentialId::new(63),
            }],
            MAIN_DOOR,
            denied(CredentialRevoked),
        ),
        row(
            "mobile key whose parent is suspended",
            vec![PresentedFactor::MobileKey {
                credential_id: CredentialId::new(62),
            }],
            MAIN_DOOR,
            denied(CredentialSuspended),
        )
        .setup(|s| cred(s, 61).suspend().unwrap()),
        row(
            "mobile-key parent is not presentable",
            vec![PresentedFactor::MobileKey {
                credential_id: CredentialId::new(61),
            }],
            MAIN_DOOR,
            denied(UnknownCredential),
        ),
        row(
            "left the group",
            vec![PresentedFactor::MobileKey {
                credential_id: CredentialId::new(62),
            }],
            MAIN_DOOR,
            denied(NoEntitlement),
        )
        .setup(|s| {
            s.groups.get_mut(&GroupId::new(1)).unwrap().members.clear();
        }),
    ]
}

#[test]
fn decision_table() {
    let mut failures = Vec::new();
    for row in table() {
        let mut snapshot = world();
        (row.setup)(&mut snapshot);
        let decision = decide(&snapshot, &row.factors, row.door, row.direction, ts(row.at));
        if decision.outcome != row.expected {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                row.name, row.expected, decision.outcome
            ));
        }
        if row.auth_type.is_some() && decision.auth_type != row.auth_type {
            failures.push(format!(
                "{}: expected auth type {:?}, got {:?}",
                row.name, row.auth_type, decision.auth_type
            ));
        }
        if decision.granted() {
            let person = decision.person_id.and_then(|p| snapshot.people.get(&p));
            if decision.acs_id.is_none() || decision.acs_id.as_ref() != person.map(|p| &p.acs_id) {
                failures.push(format!(
                    "{}: grant without the person's acs_id: {decision:?}",
                    row.name
                ));
            }
            if decision.rules.is_empty() || decision.auth_type.is_none() {
                failures.push(format!(
                    "{}: grant without rule or auth type: {decision:?}",
                    row.name
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn table_covers_every_reason_code() {
    let covered: BTreeSet<DenyReason> = table()
        .iter()
        .filter_map(|row| match row.expected {
            Outcome::Denied(reason) => Some(reason),
            Outcome::Granted => None,
        })
        .collect();
    let all: BTreeSet<DenyReason> = DenyReason::ALL.into_iter().collect();
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(missing.is_empty(), "no row for {missing:?}");
    let codes: BTreeSet<&str> = DenyReason::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(codes.len(), DenyReason::ALL.len(), "codes are distinct");
}

#[test]
fn grant_reports_rules_credentials_and_one_time_consumption() {
    let snapshot = world();
    let decision = decide(
        &snapshot,
        &[c(100), p("1111")],
        OFFICE_DOOR,
        Direction::In,
        ts(NOW),
    );
    assert!(decision.granted());
    assert_eq!(decision.acs_id.as_ref().map(AcsId::as_str), Some("acs-1"));
    assert_eq!(decision.credential_id, Some(CredentialId::new(11)));
    assert_eq!(
        decision.credential_ids,
        vec![CredentialId::new(11), CredentialId::new(12)]
    );
    assert_eq!(decision.rules, vec![Entitlement::Access(AccessId::new(2))]);
    assert!(decision.consume.is_empty());

    let key = [PresentedFactor::CloudKey {
        token: "tok-5".into(),
        pin: Some("5555".into()),
    }];
    let decision = decide(&snapshot, &key, MAIN_DOOR, Direction::In, ts(NOW));
    assert_eq!(decision.consume, vec![CredentialId::new(51)]);

    // Consuming as the decision says makes the next attempt fail.
    let mut after = snapshot;
    for id in &decision.consume {
        after.credentials.get_mut(id).unwrap().consume().unwrap();
    }
    let again = decide(&after, &key, MAIN_DOOR, Direction::In, ts(NOW));
    assert_eq!(again.reason(), Some(DenyReason::CredentialExpired));
}

#[test]
fn blocked_decision_names_the_deny_rule() {
    let mut snapshot = world();
    add_deny(&mut snapshot, None);
    let decision = decide(&snapshot, &[c(100)], MAIN_DOOR, Direction::In, ts(NOW));
    assert_eq!(decision.rules, vec![Entitlement::Access(AccessId::new(9))]);
    assert_eq!(decision.acs_id.as_ref().map(AcsId::as_str), Some("acs-1"));
}

#[test]
fn timestamps_in_the_table_are_what_they_claim() {
    // NOW is a Wednesday noon in Madrid (the schedule rows rely on it).
    let madrid = time_zone("tz", "Europe/Madrid").unwrap();
    let wall = madrid.to_datetime(ts(NOW));
    assert_eq!(
        (wall.weekday(), wall.hour()),
        (jiff::civil::Weekday::Wednesday, 12)
    );
}
