//! Applied state, the access-event stream, the outbox, and values that must read back
//! exactly: instants to the nanosecond, JSON documents with their numbers, key order and
//! text as written.

use acs_core::store::{
    Change, Channel, DeliveryOutcome, Kind, MessageStatus, NewAccessEvent, NewMessage,
};
use jiff::Timestamp;
use serde_json::json;

use super::{on_both, put, tenant_with_ids, writes};

on_both!(applied_state_takes_the_last_mention_of_a_subject, |db| {
    let t = db.create_tenant("acme", "Acme").unwrap().id;
    let named = |pairs: &[(&str, Option<i64>)]| -> Vec<(String, Option<serde_json::Value>)> {
        pairs
            .iter()
            .map(|(s, v)| ((*s).to_owned(), v.map(|v| json!(v))))
            .collect()
    };
    db.set_applied(
        t,
        7,
        &named(&[
            ("a", Some(1)),
            ("a", None),
            ("b", Some(2)),
            ("b", Some(3)),
            ("c", None),
        ]),
    )
    .unwrap();
    assert_eq!(db.applied(t, 7).unwrap(), [("b".to_owned(), json!(3))]);
    db.set_applied(t, 7, &named(&[("b", None), ("b", Some(4)), ("a", Some(5))]))
        .unwrap();
    assert_eq!(
        db.applied(t, 7).unwrap(),
        [("a".to_owned(), json!(5)), ("b".to_owned(), json!(4))]
    );
    // A thousand subjects at once, then all forgotten at once.
    let many: Vec<(String, Option<serde_json::Value>)> = (0..1_000)
        .map(|i| (format!("person:{i}"), Some(json!({"i": i}))))
        .collect();
    db.set_applied(t, 8, &many).unwrap();
    assert_eq!(db.applied(t, 8).unwrap().len(), 1_000);
    let gone: Vec<(String, Option<serde_json::Value>)> =
        many.into_iter().map(|(s, _)| (s, None)).collect();
    db.set_applied(t, 8, &gone).unwrap();
    assert!(db.applied(t, 8).unwrap().is_empty());
});

on_both!(applied_state_per_terminal, |db| {
    let t = db.create_tenant("acme", "Acme").unwrap().id;
    let doc = json!({"pin": "1234", "rules": [1, 2]});
    db.set_applied(
        t,
        7,
        &[
            ("person:2".to_owned(), Some(doc.clone())),
            ("person:10".to_owned(), Some(json!({}))),
            ("Zeta".to_owned(), Some(json!(null))),
        ],
    )
    .unwrap();
    db.set_applied(t, 8, &[("person:2".to_owned(), Some(json!(1)))])
        .unwrap();
    let subjects: Vec<String> = db
        .applied(t, 7)
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        subjects,
        ["Zeta", "person:10", "person:2"],
        "by subject, as bytes"
    );
    assert_eq!(db.applied(t, 7).unwrap()[2].1, doc);
    // Replace one, forget one.
    db.set_applied(
        t,
        7,
        &[
            ("person:2".to_owned(), Some(json!({"pin": "9"}))),
            ("person:10".to_owned(), None),
        ],
    )
    .unwrap();
    assert_eq!(
        db.applied(t, 7).unwrap(),
        [
            ("Zeta".to_owned(), json!(null)),
            ("person:2".to_owned(), json!({"pin": "9"}))
        ]
    );
    assert_eq!(
        db.applied(t, 8).unwrap(),
        [("person:2".to_owned(), json!(1))]
    );
    assert!(db.applied(t, 9).unwrap().is_empty());
});

on_both!(access_events_page_in_increasing_ids, |db| {
    let a = db.create_tenant("a", "A").unwrap().id;
    let b = db.create_tenant("b", "B").unwrap().id;
    let at: Timestamp = "2026-05-04T08:00:00.123456789Z".parse().unwrap();
    let mut all = Vec::new();
    for i in 0..5 {
        let ids = db
            .commit(
                if i == 2 { b } else { a },
                Change {
                    access_events: (0..3)
                        .map(|j| NewAccessEvent {
                            occurred_at: at,
                            data: json!({"i": i, "j": j}),
                        })
                        .collect(),
                    ..Change::default()
                },
            )
            .unwrap();
        assert_eq!(ids.len(), 3);
        all.extend(ids);
    }
    assert!(all.windows(2).all(|w| w[0] < w[1]), "ids increase: {all:?}");
    let page = db.access_events(a, 0, 4).unwrap();
    assert_eq!(page.len(), 4);
    assert_eq!(page[0].id, all[0]);
    assert_eq!(
        (page[0].occurred_at, &page[0].data),
        (at, &json!({"i": 0, "j": 0}))
    );
    let rest = db.access_events(a, page[3].id, 100).unwrap();
    assert_eq!(
        rest.len(),
        8,
        "the other tenant's events are not in the stream"
    );
    assert!(rest.iter().all(|e| e.id > page[3].id));
    assert_eq!(db.access_events(b, 0, 100).unwrap().len(), 3);
});

fn message(recipient: &str, at: Timestamp) -> NewMessage {
    NewMessage {
        channel: Channel::Email,
        recipient: recipient.to_owned(),
        subject: "Welcome".to_owned(),
        body: "Hello ✓".to_owned(),
        cause: "person.created".to_owned(),
        record_id: Some(12),
        created_at: at,
    }
}

on_both!(outbox_due_deliveries_and_pages, |db| {
    let t = db.create_tenant("acme", "Acme").unwrap().id;
    let t0: Timestamp = "2026-05-04T08:00:00.5Z".parse().unwrap();
    let t1: Timestamp = "2026-05-04T08:00:01Z".parse().unwrap();
    db.commit(
        t,
        Change {
            messages: vec![message("a@example.com", t1), message("b@example.com", t0)],
            ..Change::default()
        },
    )
    .unwrap();
    assert_eq!(db.next_message_due().unwrap(), Some(t0));
    assert!(
        db.due_messages(
            "2026-05-04T08:00:00Z".parse().unwrap(),
            10,
            "suite",
            std::time::Duration::ZERO
        )
        .unwrap()
        .is_empty()
    );
    let due = db
        .due_messages(t1, 10, "suite", std::time::Duration::ZERO)
        .unwrap();
    let recipients: Vec<&str> = due.iter().map(|m| m.message.recipient.as_str()).collect();
    assert_eq!(
        recipients,
        ["b@example.com", "a@example.com"],
        "the longest due first"
    );
    assert_eq!(due[0].message, message("b@example.com", t0));
    assert_eq!(
        (due[0].status, due[0].attempts),
        (MessageStatus::Pending, 0)
    );

    let (first, second) = (due[1].id, due[0].id);
    let retry: Timestamp = "2026-05-04T09:00:00Z".parse().unwrap();
    db.record_delivery(
        first,
        &DeliveryOutcome::Failed {
            error: "smtp: 451".to_owned(),
            retry_at: Some(retry),
        },
    )
    .unwrap();
    db.record_delivery(second, &DeliveryOutcome::Sent(t1))
        .unwrap();
    assert_eq!(db.next_message_due().unwrap(), Some(retry));
    let page = db.messages(t, 0, 10).unwrap();
    assert_eq!(
        page.iter().map(|m| m.id).collect::<Vec<_>>(),
        [first, second]
    );
    assert_eq!(
        (
            page[0].status,
            page[0].attempts,
            page[0].last_error.as_deref(),
            page[0].next_attempt_at
        ),
        (MessageStatus::Pending, 1, Some("smtp: 451"), retry)
    );
    assert_eq!(
        (page[1].status, page[1].sent_at),
        (MessageStatus::Sent, Some(t1))
    );
    // A failure without a retry gives the message up; a finished message is left alone.
    db.record_delivery(
        first,
        &DeliveryOutcome::Failed {
            error: "bounced".to_owned(),
            retry_at: None,
        },
    )
    .unwrap();
    db.record_delivery(first, &DeliveryOutcome::Sent(t1))
        .unwrap();
    let page = db.messages(t, first, 10).unwrap();
    assert_eq!(page.len(), 1);
    let given_up = &db.messages(t, 0, 1).unwrap()[0];
    assert_eq!(
        (given_up.status, given_up.attempts),
        (MessageStatus::Failed, 2)
    );
    assert_eq!(db.next_message_due().unwrap(), None);
    assert!(
        db.due_messages(retry, 10, "suite", std::time::Duration::ZERO)
            .unwrap()
            .is_empty()
    );
});

on_both!(instants_and_documents_read_back_exactly, |db| {
    let (t, ids) = tenant_with_ids(&*db, "acme", 1);
    let document = json!({
        "zeta": 1, "alpha": [1.5, -0.0, 1e300, 12345678901234567u64, -9007199254740993i64],
        "text": "quote \" backslash \\ tab \t newline \n nul-free é 😀 \u{1f}",
        "nested": {"b": null, "a": true, "empty": {}, "list": []},
        "float": 0.1
    });
    db.commit(
        t,
        writes(vec![put(Kind::Person, ids[0], document.clone(), &[])]),
    )
    .unwrap();
    let stored = db.records(t).unwrap().remove(0).data;
    assert_eq!(stored, document);
    assert_eq!(
        stored.to_string(),
        document.to_string(),
        "key order and numbers as written"
    );
    for text in [
        "2026-05-04T08:00:00Z",
        "2026-05-04T08:00:00.000000001Z",
        "2026-05-04T08:00:00.123456789Z",
        "1970-01-01T00:00:00Z",
        "2099-12-31T23:59:59.999999999Z",
    ] {
        let at: Timestamp = text.parse().unwrap();
        let ids = db
            .commit(
                t,
                Change {
                    access_events: vec![NewAccessEvent {
                        occurred_at: at,
                        data: document.clone(),
                    }],
                    ..Change::default()
                },
            )
            .unwrap();
        let read = db.access_events(t, ids[0] - 1, 1).unwrap().remove(0);
        assert_eq!(read.occurred_at, at, "{text}");
        assert_eq!(read.data.to_string(), document.to_string());
    }
});
