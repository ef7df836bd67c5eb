//! Webhook endpoints, the fan-out of events to the subscribed enabled ones, the delivery
//! log with its failure counter – and, behind [`SealedStore`], secrets that never reach
//! the database in clear (read raw from its tables).

use acs_core::store::seal::SecretKey;
use acs_core::store::{
    AttemptOutcome, Change, Kind, NewAccessEvent, NewDelivery, SealedStore, WebhookEvent,
    WebhookRow, WebhookWrite,
};
use jiff::Timestamp;
use serde_json::json;

use super::{on_both, put};

fn endpoint(id: u64, types: &[&str], enabled: bool) -> WebhookRow {
    let at: Timestamp = "2026-05-04T08:00:00.25Z".parse().unwrap();
    WebhookRow {
        id,
        url: format!("https://hooks.example.com/{id}"),
        description: "desc".to_owned(),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        secret: format!("whsec_secret-{id}"),
        previous_secret: Some((format!("whsec_old-{id}"), at)),
        enabled,
        disabled_reason: (!enabled).then(|| "paused".to_owned()),
        failed_messages: 0,
        created_at: at,
        updated_at: at,
    }
}

fn event(event_type: &str, access_event: Option<usize>) -> WebhookEvent {
    let at: Timestamp = "2026-05-04T08:00:00Z".parse().unwrap();
    WebhookEvent {
        id: format!("evt_{event_type}"),
        event_type: event_type.to_owned(),
        created_at: at,
        data: json!({"n": 1}),
        due_at: at,
        access_event,
    }
}

fn delivery(webhook_id: u64, message_id: u64, outcome: AttemptOutcome) -> NewDelivery {
    NewDelivery {
        webhook_id,
        message_id,
        event_id: "evt_1".to_owned(),
        event_type: "access.denied".to_owned(),
        attempt: 1,
        attempted_at: "2026-05-04T08:00:02.000001Z".parse().unwrap(),
        status_code: Some(503),
        error: Some("unavailable".to_owned()),
        duration_ms: 12,
        outcome,
    }
}

on_both!(endpoints_fan_out_and_deliveries, |db| {
    let tenant = db.create_tenant("acme", "Acme").unwrap().id;
    let other = db.create_tenant("other", "Other").unwrap().id;
    let ids = db.allocate_ids(3).unwrap();
    let rows = [
        endpoint(ids[0], &["access.denied", "access.granted"], true),
        endpoint(ids[1], &["access.granted"], true),
        endpoint(ids[2], &["access.denied"], false),
    ];
    let change = Change {
        webhooks: rows.iter().cloned().map(WebhookWrite::Put).collect(),
        ..Change::default()
    };
    db.commit(tenant, change).unwrap();
    assert_eq!(db.webhooks(tenant).unwrap(), rows);
    assert!(db.webhooks(other).unwrap().is_empty());
    // Another tenant can neither take over nor delete an endpoint.
    let stolen = Change {
        webhooks: vec![WebhookWrite::Put(endpoint(
            ids[0],
            &["access.denied"],
            true,
        ))],
        ..Change::default()
    };
    assert!(db.commit(other, stolen).is_err());
    let deleted = Change {
        webhooks: vec![WebhookWrite::Delete(ids[0])],
        ..Change::default()
    };
    db.commit(other, deleted).unwrap();
    assert_eq!(db.webhooks(tenant).unwrap().len(), 3);

    let events = Change {
        access_events: vec![NewAccessEvent {
            occurred_at: "2026-05-04T08:00:00Z".parse().unwrap(),
            data: json!({}),
        }],
        webhook_events: vec![
            event("access.denied", Some(0)),
            event("access.granted", None),
        ],
        ..Change::default()
    };
    let access_ids = db.commit(tenant, events).unwrap();
    let sent = db.messages(tenant, 0, 10).unwrap();
    let summary: Vec<(String, String)> = sent
        .iter()
        .map(|m| (m.message.recipient.clone(), m.message.subject.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (ids[0].to_string(), "access.denied".to_owned()),
            (ids[0].to_string(), "access.granted".to_owned()),
            (ids[1].to_string(), "access.granted".to_owned()),
        ]
    );
    let body: serde_json::Value = serde_json::from_str(&sent[0].message.body).unwrap();
    assert_eq!(body["data"]["access_event_id"], json!(access_ids[0]));
    assert_eq!(sent[0].message.record_id, Some(ids[0]));

    // Attempts: a failure is logged, a give-up counts, a delivery resets the count.
    let record = |outcome, message| {
        let change = Change {
            webhook_deliveries: vec![delivery(ids[0], message, outcome)],
            ..Change::default()
        };
        db.commit(tenant, change).unwrap();
    };
    record(AttemptOutcome::Failed, sent[0].id);
    record(AttemptOutcome::GivenUp, sent[0].id);
    record(AttemptOutcome::GivenUp, sent[1].id);
    assert_eq!(db.webhooks(tenant).unwrap()[0].failed_messages, 2);
    let log = db.webhook_deliveries(tenant, ids[0], 0, 10).unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(
        log[0].delivery,
        delivery(ids[0], sent[0].id, AttemptOutcome::Failed)
    );
    assert_eq!(
        db.webhook_deliveries(tenant, ids[0], log[0].id, 1).unwrap()[0].id,
        log[1].id
    );
    assert!(
        db.webhook_deliveries(other, ids[0], 0, 10)
            .unwrap()
            .is_empty()
    );
    record(AttemptOutcome::Delivered, sent[1].id);
    assert_eq!(db.webhooks(tenant).unwrap()[0].failed_messages, 0);
    // Deleting the endpoint takes its log along; a late attempt is dropped quietly.
    let delete = Change {
        webhooks: vec![WebhookWrite::Delete(ids[0])],
        ..Change::default()
    };
    db.commit(tenant, delete).unwrap();
    record(AttemptOutcome::Delivered, sent[1].id);
    assert!(
        db.webhook_deliveries(tenant, ids[0], 0, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(db.webhooks(tenant).unwrap().len(), 2);
});

on_both!(sealed_store_keeps_secrets_out_of_the_tables, |db| {
    let key = SecretKey::generate();
    let db = db.wrap(|store| SealedStore::new(store, key.clone()));
    let tenant = db.create_tenant("acme", "Acme").unwrap().id;
    let ids = db.allocate_ids(3).unwrap();
    let hook = endpoint(ids[0], &["access.denied"], true);
    let credential = json!({"person_id": ids[1], "value": {"kind": "pin", "pin": "739164"}});
    let change = Change {
        writes: vec![
            put(
                Kind::Person,
                ids[1],
                json!({"acs_id": "P-1"}),
                &[("acs_id", "P-1")],
            ),
            put(
                Kind::Credential,
                ids[2],
                credential.clone(),
                &[("pin", "739164")],
            ),
        ],
        webhooks: vec![WebhookWrite::Put(hook.clone())],
        messages: vec![acs_core::store::NewMessage {
            channel: acs_core::store::Channel::Text,
            recipient: "+34600000000".to_owned(),
            subject: "PIN".to_owned(),
            body: "your PIN is 739164".to_owned(),
            cause: "credential.created".to_owned(),
            record_id: Some(ids[2]),
            created_at: Timestamp::now(),
        }],
        ..Change::default()
    };
    db.commit(tenant, change).unwrap();
    db.set_applied(
        tenant,
        5,
        &[("person:1".to_owned(), Some(json!({"pin": "739164"})))],
    )
    .unwrap();
    // Read back in clear through the store …
    assert_eq!(db.webhooks(tenant).unwrap(), [hook]);
    assert_eq!(
        db.owned_records(tenant, ids[1]).unwrap()[1].data,
        credential
    );
    assert_eq!(
        db.messages(tenant, 0, 1).unwrap()[0].message.body,
        "your PIN is 739164"
    );
    assert_eq!(
        db.applied(tenant, 5).unwrap()[0].1,
        json!({"pin": "739164"})
    );
    assert_eq!(
        db.claim(tenant, "pin", "739164").unwrap(),
        Some(ids[2]),
        "found by its clear value (the store digests it)"
    );
    // … but never in clear in the tables.
    for sql in [
        "SELECT secret FROM webhooks",
        "SELECT previous_secret FROM webhooks",
        "SELECT data FROM records",
        "SELECT value FROM unique_keys",
        "SELECT body FROM outbox",
        "SELECT data FROM applied_state",
    ] {
        let raw = db.raw_texts(sql);
        assert!(!raw.is_empty(), "{sql}");
        assert!(
            raw.iter()
                .all(|v| !v.contains("739164") && !v.contains("whsec_")),
            "{sql}: {raw:?}"
        );
    }
    assert!(
        db.raw_texts("SELECT value FROM unique_keys")
            .contains(&"P-1".to_owned())
    );
});
