//! Standalone identification: decision tables for every rule kind and denial reason
//! (insta), the log row, the door and the monitor pushes, and a property test that random
//! tables never make the device panic and never grant without an allowing rule.

use acs_simulator::device::decide;
use acs_simulator::{Model, Presentation};
use proptest::prelude::*;
use serde_json::{Value as Json, json};

use crate::enrollment::Rig;
use crate::shared::json_reply;
use crate::support::TestDevice;

/// Local wall-clock time: year, month, day, hour, minute.
type Civil = (i64, i64, i64, i64, i64);

async fn create(d: &TestDevice, s: &str, object: &str, values: Json) {
    let r = d
        .post(
            "create_objects",
            Some(s),
            &json!({"object": object, "values": values}),
        )
        .await;
    assert_eq!(
        r.status,
        200,
        "{object}: {}",
        String::from_utf8_lossy(&r.bytes)
    );
}

async fn set_time(d: &TestDevice, s: &str, (year, month, day, hour, minute): Civil) {
    let body = json!({"year": year, "month": month, "day": day, "hour": hour, "minute": minute, "second": 0});
    assert_eq!(d.post("set_system_time", Some(s), &body).await.status, 200);
}

/// A device with people, credentials, rules, schedules and a holiday.
async fn office() -> (TestDevice, String) {
    let d = TestDevice::idface();
    let s = d.login().await;
    create(
        &d,
        &s,
        "users",
        json!([
            {"id": 1, "name": "Allowed by user rule"},
            {"id": 2, "name": "Allowed by group rule"},
            {"id": 3, "name": "Blocked"},
            {"id": 4, "name": "Office hours"},
            {"id": 5, "name": "Night shift"},
            {"id": 6, "name": "Holiday worker"},
            {"id": 7, "name": "Not yet valid", "begin_time": 1_900_000_000},
            {"id": 8, "name": "Expired", "end_time": 1_600_000_000},
            {"id": 9, "name": "No rule"},
            {"id": 10, "name": "Other door only"},
            {"id": 11, "name": "Area rule"},
        ]),
    )
    .await;
    let cards: Vec<Json> = (1..=11)
        .map(|u| json!({"value": 1000 + u, "user_id": u}))
        .collect();
    create(&d, &s, "cards", Json::Array(cards)).await;
    create(
        &d,
        &s,
        "pins",
        json!([{"value": "4321", "user_id": 1, "pin_type": 0}]),
    )
    .await;
    create(
        &d,
        &s,
        "qrcodes",
        json!([{"value": "QR-ONE", "user_id": 1}]),
    )
    .await;
    create(&d, &s, "groups", json!([{"id": 2, "name": "Staff"}])).await;
    create(
        &d,
        &s,
        "user_groups",
        json!([{"user_id": 2, "group_id": 2}, {"user_id": 3, "group_id": 2}]),
    )
    .await;
    // Time zones: 2 office hours Mon–Fri 08:00–18:00; 3 night 22:00–06:00 from Fridays;
    // 4 Mondays 00:00–23:59 but not on class-1 holidays; 5 only on class-1 holidays.
    create(&d, &s, "time_zones", json!([{"id": 2, "name": "Office"}, {"id": 3, "name": "Night"}, {"id": 4, "name": "Mondays"}, {"id": 5, "name": "Holidays"}])).await;
    let span = |tz: i64, start: i64, end: i64, days: &[&str], hol1: i64| {
        let mut v = json!({"time_zone_id": tz, "start": start, "end": end, "sun": 0, "mon": 0, "tue": 0, "wed": 0, "thu": 0, "fri": 0, "sat": 0, "hol1": hol1, "hol2": 0, "hol3": 0});
        for d in days {
            v[*d] = json!(1);
        }
        v
    };
    create(
        &d,
        &s,
        "time_spans",
        json!([
            span(
                2,
                8 * 3600,
                18 * 3600,
                &["mon", "tue", "wed", "thu", "fri"],
                0
            ),
            span(3, 22 * 3600, 6 * 3600, &["fri"], 0),
            span(4, 0, 86_399, &["mon"], 0),
            span(5, 0, 86_399, &[], 1),
        ]),
    )
    .await;
    create(
        &d,
        &s,
        "access_rules",
        json!([
            {"id": 10, "name": "Always", "type": 1, "priority": 0},
            {"id": 11, "name": "Block", "type": 0, "priority": 0},
            {"id": 12, "name": "Office", "type": 1, "priority": 0},
            {"id": 13, "name": "Night", "type": 1, "priority": 0},
            {"id": 14, "name": "Mondays", "type": 1, "priority": 0},
            {"id": 15, "name": "Holidays", "type": 1, "priority": 0},
            {"id": 16, "name": "Door 2 only", "type": 1, "priority": 0},
            {"id": 17, "name": "Inside area", "type": 1, "priority": 0},
        ]),
    )
    .await;
    create(
        &d,
        &s,
        "access_rule_time_zones",
        json!([
            {"access_rule_id": 10, "time_zone_id": 1}, {"access_rule_id": 11, "time_zone_id": 1},
            {"access_rule_id": 12, "time_zone_id": 2}, {"access_rule_id": 13, "time_zone_id": 3},
            {"access_rule_id": 14, "time_zone_id": 4}, {"access_rule_id": 14, "time_zone_id": 5},
            {"access_rule_id": 15, "time_zone_id": 5},
            {"access_rule_id": 16, "time_zone_id": 1}, {"access_rule_id": 17, "time_zone_id": 1},
        ]),
    )
    .await;
    create(
        &d,
        &s,
        "user_access_rules",
        json!([
            {"user_id": 1, "access_rule_id": 10}, {"user_id": 4, "access_rule_id": 12},
            {"user_id": 5, "access_rule_id": 13}, {"user_id": 6, "access_rule_id": 14},
            {"user_id": 7, "access_rule_id": 10}, {"user_id": 8, "access_rule_id": 10},
            {"user_id": 10, "access_rule_id": 16}, {"user_id": 11, "access_rule_id": 17},
        ]),
    )
    .await;
    create(
        &d,
        &s,
        "group_access_rules",
        json!([{"group_id": 2, "access_rule_id": 10}]),
    )
    .await;
    create(
        &d,
        &s,
        "user_access_rules",
        json!([{"user_id": 3, "access_rule_id": 11}]),
    )
    .await;
    create(
        &d,
        &s,
        "portals",
        json!([{"id": 2, "name": "Door 2", "area_from_id": 1, "area_to_id": 1}]),
    )
    .await;
    create(
        &d,
        &s,
        "portal_access_rules",
        json!([{"portal_id": 2, "access_rule_id": 16}]),
    )
    .await;
    create(
        &d,
        &s,
        "area_access_rules",
        json!([{"area_id": 2, "access_rule_id": 17}]),
    )
    .await;
    // 2025-12-01 (a Monday) is a class-1 holiday.
    create(&d, &s, "holidays", json!([{"name": "Holiday", "start": 1_764_547_200, "end": 1_764_633_599, "hol1": 1, "hol2": 0, "hol3": 0, "repeats": 0}])).await;
    (d, s)
}

#[tokio::test]
async fn decision_table() {
    let (d, s) = office().await;
    let monday_noon = (2025, 11, 10, 12, 0);
    let cases: Vec<(&str, Civil, Presentation)> = vec![
        ("unknown card", monday_noon, Presentation::Card(999)),
        ("user rule", monday_noon, Presentation::Card(1001)),
        ("group rule", monday_noon, Presentation::Card(1002)),
        (
            "blocking rule wins over the group's allow",
            monday_noon,
            Presentation::Card(1003),
        ),
        (
            "office hours, Monday noon",
            monday_noon,
            Presentation::Card(1004),
        ),
        (
            "office hours, Monday 19:00",
            (2025, 11, 10, 19, 0),
            Presentation::Card(1004),
        ),
        (
            "office hours, Saturday noon",
            (2025, 11, 15, 12, 0),
            Presentation::Card(1004),
        ),
        (
            "night span, Friday 23:00",
            (2025, 11, 14, 23, 0),
            Presentation::Card(1005),
        ),
        (
            "night span, Saturday 02:00 (after a Friday)",
            (2025, 11, 15, 2, 0),
            Presentation::Card(1005),
        ),
        (
            "night span, Saturday 23:00",
            (2025, 11, 15, 23, 0),
            Presentation::Card(1005),
        ),
        (
            "night span, Friday 02:00 (after a Thursday)",
            (2025, 11, 14, 2, 0),
            Presentation::Card(1005),
        ),
        (
            "Mondays rule on an ordinary Monday",
            monday_noon,
            Presentation::Card(1006),
        ),
        (
            "Mondays rule on a class-1 holiday Monday (holiday span)",
            (2025, 12, 1, 12, 0),
            Presentation::Card(1006),
        ),
        (
            "office hours on a class-1 holiday Monday noon",
            (2025, 12, 1, 12, 0),
            Presentation::Card(1004),
        ),
        ("not yet valid", monday_noon, Presentation::Card(1007)),
        ("expired", monday_noon, Presentation::Card(1008)),
        ("no rule", monday_noon, Presentation::Card(1009)),
        (
            "rule placed on another portal",
            monday_noon,
            Presentation::Card(1010),
        ),
        (
            "rule placed on the destination area",
            monday_noon,
            Presentation::Card(1011),
        ),
        ("PIN", monday_noon, Presentation::Pin("4321".into())),
        ("wrong PIN", monday_noon, Presentation::Pin("0000".into())),
        ("QR code", monday_noon, Presentation::Qr("QR-ONE".into())),
    ];
    let mut table = Vec::new();
    for (name, time, presentation) in cases {
        set_time(&d, &s, time).await;
        let logged = d.sim.terminal().identify(&presentation, 1).await.unwrap();
        table.push(json!({
            "case": name, "event": logged.decision.event, "reason": logged.decision.reason.name(),
            "user_id": logged.decision.user_id, "rule_id": logged.decision.rule_id,
        }));
    }
    insta::assert_json_snapshot!("decision_table", table);
}

#[tokio::test]
async fn the_holiday_worker_is_let_in_only_by_the_holiday_class() {
    let (d, s) = office().await;
    create(
        &d,
        &s,
        "user_access_rules",
        json!([{"user_id": 9, "access_rule_id": 15}]),
    )
    .await;
    set_time(&d, &s, (2025, 12, 1, 9, 0)).await;
    assert!(
        d.sim
            .terminal()
            .identify(&Presentation::Card(1009), 1)
            .await
            .unwrap()
            .decision
            .granted()
    );
    set_time(&d, &s, (2025, 12, 2, 9, 0)).await;
    assert!(
        !d.sim
            .terminal()
            .identify(&Presentation::Card(1009), 1)
            .await
            .unwrap()
            .decision
            .granted()
    );
}

#[tokio::test]
async fn a_grant_is_logged_opens_the_door_and_is_pushed_to_the_monitor() {
    let rig = Rig::new(Model::IdFace).await;
    for (object, values) in [
        (
            "cards",
            json!([{"value": 528_281_023_086_u64, "user_id": 5}]),
        ),
        (
            "user_access_rules",
            json!([{"user_id": 5, "access_rule_id": 1}]),
        ),
    ] {
        assert_eq!(
            rig.post(
                "create_objects",
                json!({"object": object, "values": values})
            )
            .await
            .0,
            200
        );
    }
    let url = format!("{}/_sim/present", rig.sim.base_url());
    let reply = json_reply(
        reqwest::Client::new()
            .post(url)
            .json(&json!({"card": 528_281_023_086_u64})),
    )
    .await;
    assert_eq!(reply["granted"], true, "{reply}");
    assert_eq!(reply["rule_id"], 1);
    assert_eq!(reply["actuations"], json!([{"sec_box": 65793}]));
    let log_id = reply["log_id"].as_i64().unwrap();

    let (_, logs) = rig
        .post(
            "load_objects",
            json!({"object": "access_logs", "where": {"access_logs": {"id": log_id}}}),
        )
        .await;
    let row = &logs["access_logs"][0];
    assert_eq!(row["event"], 7);
    assert_eq!(row["identifier_id"], 2_003_398_144_i64, "win\\0 for a card");
    assert_eq!(row["card_value"], 528_281_023_086_u64);
    assert_eq!(row["portal_id"], 1);
    assert_eq!(row["user_id"], 5);
    assert_eq!(row["time"], rig.sim.device().local_now());

    let got = rig.sink.wait_for(2).await;
    assert_eq!(got[0].path, "/api/notifications/dao");
    let dao = got[0].json.clone().unwrap();
    let values = &dao["object_changes"][0]["values"];
    assert_eq!(dao["object_changes"][0]["type"], "inserted");
    assert_eq!(values["event"], "7", "dao values are strings");
    assert_eq!(values["card_value"], "528281023086");
    assert_eq!(values["id"], log_id.to_string());
    assert_eq!(dao["device_id"], rig.sim.device().identity().device_id);
    assert_eq!(got[1].path, "/api/notifications/secbox");
    assert_eq!(
        got[1].json.as_ref().unwrap()["secbox"],
        json!({"id": 65793, "open": true})
    );

    // A denial is logged and pushed, and opens nothing.
    let reply = json_reply(
        reqwest::Client::new()
            .post(format!("{}/_sim/present", rig.sim.base_url()))
            .json(&json!({"card": 1})),
    )
    .await;
    assert_eq!(
        (reply["event"].as_i64(), reply["reason"].as_str()),
        (Some(3), Some("not_identified"))
    );
    let got = rig.sink.wait_for(3).await;
    assert_eq!(
        got[2].json.as_ref().unwrap()["object_changes"][0]["values"]["event"],
        "3"
    );
    assert_eq!(rig.sim.device().actuations().len(), 1);
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn faces_and_fingers_are_identified_by_what_was_enrolled() {
    let d = TestDevice::idface();
    let s = d.login().await;
    create(&d, &s, "users", json!([{"id": 1}, {"id": 2}])).await;
    create(
        &d,
        &s,
        "user_access_rules",
        json!([{"user_id": 1, "access_rule_id": 1}]),
    )
    .await;
    let jpeg = crate::support::jpeg(4);
    d.sim.device().set_user_image(1, true, 1, &jpeg).unwrap();
    let t = d.sim.terminal();
    let face = t.identify(&Presentation::FaceImage(jpeg), 1).await.unwrap();
    assert_eq!((face.decision.event, face.decision.user_id), (7, Some(1)));
    assert_eq!(face.log["identifier_id"], 1_717_658_368_i64, "fac\\0");
    assert_eq!(
        t.identify(&Presentation::FaceOf(1), 1)
            .await
            .unwrap()
            .decision
            .user_id,
        Some(1)
    );
    assert_eq!(
        t.identify(&Presentation::FaceOf(2), 1)
            .await
            .unwrap()
            .decision
            .event,
        3,
        "user 2 has no enrolled face"
    );
    assert!(
        t.identify(&Presentation::Finger { seed: 1 }, 1)
            .await
            .is_err(),
        "iDFace has no fingerprint reader"
    );

    let d = TestDevice::new(Model::IdAccess);
    let s = d.login().await;
    create(&d, &s, "users", json!([{"id": 3}])).await;
    create(
        &d,
        &s,
        "user_access_rules",
        json!([{"user_id": 3, "access_rule_id": 1}]),
    )
    .await;
    let template = decide::finger_template(&acs_simulator::person::synthetic_fingerprint(42));
    create(
        &d,
        &s,
        "templates",
        json!([{"user_id": 3, "finger_position": 0, "finger_type": 0, "template": template}]),
    )
    .await;
    let t = d.sim.terminal();
    let finger = t
        .identify(&Presentation::Finger { seed: 42 }, 1)
        .await
        .unwrap();
    assert_eq!(
        (finger.decision.event, finger.decision.user_id),
        (7, Some(3))
    );
    assert_eq!(finger.actuations.len(), 1, "the relay opened door 1");
    assert_eq!(
        t.identify(&Presentation::Finger { seed: 43 }, 1)
            .await
            .unwrap()
            .decision
            .event,
        3
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Random rules, links and spans: never a panic, and every grant names an allowing rule
    /// that reaches the user, is active now, and no active blocking rule reaches them.
    #[test]
    fn grants_always_have_an_allowing_rule(
        rules in prop::collection::vec((any::<bool>(), 0i64..86_400, 0i64..86_400, any::<u8>()), 1..5),
        user_links in prop::collection::vec((1i64..4, 0usize..5), 0..8),
        group_links in prop::collection::vec(0usize..5, 0..3),
        portal_links in prop::collection::vec(0usize..5, 0..3),
        now in 1_700_000_000i64..1_800_000_000,
        card in 1u64..5,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let d = TestDevice::idface();
            let s = d.login().await;
            create(&d, &s, "users", json!([{"id": 1}, {"id": 2}, {"id": 3}])).await;
            create(&d, &s, "cards", json!([{"value": 1, "user_id": 1}, {"value": 2, "user_id": 2}, {"value": 3, "user_id": 3}])).await;
            create(&d, &s, "user_groups", json!([{"user_id": 1, "group_id": 1}, {"user_id": 2, "group_id": 1}])).await;
            for (i, (allow, start, end, days)) in rules.iter().enumerate() {
                let id = 100 + i as i64;
                create(&d, &s, "access_rules", json!([{"id": id, "type": i64::from(*allow), "priority": 0}])).await;
                create(&d, &s, "time_zones", json!([{"id": id}])).await;
                let flags: Vec<i64> = (0..7).map(|b| i64::from(days >> b & 1)).collect();
                create(&d, &s, "time_spans", json!([{"time_zone_id": id, "start": start, "end": end,
                    "sun": flags[0], "mon": flags[1], "tue": flags[2], "wed": flags[3], "thu": flags[4], "fri": flags[5], "sat": flags[6],
                    "hol1": 0, "hol2": 0, "hol3": 0}])).await;
                create(&d, &s, "access_rule_time_zones", json!([{"access_rule_id": id, "time_zone_id": id}])).await;
            }
            let rule = |i: usize| 100 + (i % rules.len()) as i64;
            let mut seen = std::collections::BTreeSet::new();
            for (user, i) in &user_links {
                if seen.insert((*user, rule(*i))) {
                    create(&d, &s, "user_access_rules", json!([{"user_id": user, "access_rule_id": rule(*i)}])).await;
                }
            }
            for i in group_links.iter().map(|i| rule(*i)).collect::<std::collections::BTreeSet<_>>() {
                create(&d, &s, "group_access_rules", json!([{"group_id": 1, "access_rule_id": i}])).await;
            }
            for i in portal_links.iter().map(|i| rule(*i)).collect::<std::collections::BTreeSet<_>>() {
                create(&d, &s, "portal_access_rules", json!([{"portal_id": 1, "access_rule_id": i}])).await;
            }
            d.sim.device().skew_clock(now - d.sim.device().local_now());
            let logged = d.sim.terminal().identify(&Presentation::Card(card), 1).await.unwrap();
            let (t, now) = (d.sim.device(), d.sim.device().local_now());
            let rows = t.rows("access_rules").unwrap();
            if logged.decision.granted() {
                let user = logged.decision.user_id.unwrap();
                let rule_id = logged.decision.rule_id.unwrap();
                let rule_row = rows.iter().find(|r| r["id"] == rule_id).unwrap();
                prop_assert_eq!(&rule_row["type"], &json!(1));
                prop_assert_eq!(user, card as i64, "card N belongs to user N");
                let blocking_active = rows.iter().filter(|r| r["type"] == 0).any(|r| {
                    let id = r["id"].as_i64().unwrap();
                    t.rule_reaches_and_active(id, user, 1, now)
                });
                prop_assert!(!blocking_active, "granted although a blocking rule is active");
                prop_assert!(t.rule_reaches_and_active(rule_id, user, 1, now));
            }
            prop_assert_eq!(t.rows("access_logs").unwrap().len(), 1);
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn a_user_id_and_password_typed_on_the_keypad_is_checked_against_the_stored_hash() {
    let d = TestDevice::idface();
    let s = d.login().await;
    let hashed = d
        .post("user_hash_password", Some(&s), &json!({"password": "2468"}))
        .await
        .json();
    create(
        &d,
        &s,
        "users",
        json!([{"id": 4, "name": "Keypad", "password": hashed["password"], "salt": hashed["salt"]},
               {"id": 5, "name": "No password"}]),
    )
    .await;
    create(
        &d,
        &s,
        "user_access_rules",
        json!([{"user_id": 4, "access_rule_id": 1}, {"user_id": 5, "access_rule_id": 1}]),
    )
    .await;
    let t = d.sim.terminal();
    let typed = |user_id: i64, password: &str| Presentation::IdAndPassword {
        user_id,
        password: password.to_owned(),
    };
    let right = t.identify(&typed(4, "2468"), 1).await.unwrap();
    assert_eq!((right.decision.event, right.decision.user_id), (7, Some(4)));
    assert_eq!(right.log["identifier_id"], 0x7061_7300_i64, "pas\\0");
    for (user, password) in [(4, "1357"), (5, ""), (99, "2468")] {
        let wrong = t.identify(&typed(user, password), 1).await.unwrap();
        assert_eq!(
            (wrong.decision.event, wrong.decision.user_id),
            (3, None),
            "user {user} with {password:?}"
        );
    }
}
