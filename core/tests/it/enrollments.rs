//! Enrollments are stored: a restart of the core on the same database keeps them, never
//! reuses an id, and resolves what was pending honestly – a synchronous enrollment whose
//! request died with the process fails as interrupted, an asynchronous one finishes when
//! the terminal's result arrives, or fails as expired when none does.

use std::sync::Arc;

use acs_core::app::enrollments::{ASYNC_RESULT_WAIT, Capture, EnrollmentStatus};
use acs_core::domain::{PersonId, TerminalId};
use acs_core::store::SqliteStore;
use serde_json::json;

use crate::api_support::{Api, OFFLINE, START, venue};

#[tokio::test]
async fn enrollments_survive_a_restart_and_pending_ones_are_resolved() {
    let dir = std::env::temp_dir().join(format!("acs-core-enrollments-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("acs.db");
    let (key, tenant, person, first, second, interrupted, waiting) = {
        let api = Api::over(Arc::new(SqliteStore::open(&db).expect("db"))).await;
        let (_, facility, door, first) = venue(&api).await;
        let second = api
            .post(
                "/v1/terminals",
                json!({"facility_id": facility, "model": "idface", "address": OFFLINE,
                       "login": "admin", "password": "s3cret-device", "door_ids": [door]}),
            )
            .await
            .id();
        let person = api
            .post("/v1/people", json!({"acs_id": "E-77", "name": "Ana"}))
            .await
            .id();
        let tenant = api
            .core
            .authenticate(&api.key)
            .await
            .expect("read")
            .expect("the key's tenant")
            .tenant;
        let enrollments = api.core.enrollments();
        let now = api.core.now();
        // A synchronous enrollment whose request is still waiting for the terminal when
        // the process ends, and an asynchronous one waiting for the terminal's result.
        let interrupted = enrollments
            .start(
                tenant,
                TerminalId::new(first),
                PersonId::new(person),
                Capture::Card,
                true,
                now,
            )
            .await
            .expect("started");
        let waiting = enrollments
            .start(
                tenant,
                TerminalId::new(second),
                PersonId::new(person),
                Capture::Card,
                false,
                now,
            )
            .await
            .expect("started");
        (
            api.key.clone(),
            tenant,
            person,
            first,
            second,
            interrupted.id,
            waiting.id,
        )
    };

    let core = acs_core::Core::with_clock(
        Arc::new(SqliteStore::open(&db).expect("db again")),
        acs_core::Clock::manual(START.parse().expect("instant")),
    );
    let api = Api::serve(core, key).await;
    let gone = api
        .get(&format!("/v1/terminals/{first}/enrollments/{interrupted}"))
        .await;
    assert_eq!(gone.status, 200, "{}", gone.json);
    assert_eq!(gone.json["status"], "failed", "{}", gone.json);
    assert!(
        gone.json["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("interrupted")),
        "{}",
        gone.json
    );
    let still = api
        .get(&format!("/v1/terminals/{second}/enrollments/{waiting}"))
        .await;
    assert_eq!(still.json["status"], "pending", "{}", still.json);

    // The terminal's result arrives after the restart: the receiver finishes it.
    let pending = api
        .core
        .enrollments()
        .pending_on(tenant, TerminalId::new(second), api.core.now())
        .await
        .expect("read")
        .expect("still pending after the restart");
    assert_eq!(pending.id, waiting);
    let status = acs_core::enroll::complete(
        &api.core,
        &pending,
        &json!({"card_value": 528_281_023_086_u64}),
    )
    .await
    .expect("recorded");
    let EnrollmentStatus::Succeeded { credential_id } = status else {
        panic!("the result issues a credential: {status:?}");
    };
    let done = api
        .get(&format!("/v1/terminals/{second}/enrollments/{waiting}"))
        .await;
    assert_eq!(done.json["status"], "succeeded", "{}", done.json);
    assert_eq!(done.json["credential_id"], credential_id.get());
    let credentials = api
        .get(&format!("/v1/people/{person}/credentials"))
        .await
        .json;
    assert_eq!(credentials["items"][0]["id"], credential_id.get());

    // New enrollments take new ids; one whose result never comes expires.
    let next = api
        .post(
            &format!("/v1/terminals/{first}/enrollments"),
            json!({"person_id": person, "kind": "face", "sync": false}),
        )
        .await;
    next.problem(502, None);
    let next = next.json["enrollment"]["id"].as_u64().expect("an id");
    assert!(next > waiting && next > interrupted, "{next} reuses an id");
    let expiring = api
        .core
        .enrollments()
        .start(
            tenant,
            TerminalId::new(second),
            PersonId::new(person),
            Capture::Face,
            false,
            api.core.now(),
        )
        .await
        .expect("started");
    assert!(expiring.id > next);
    api.post(
        &format!("/v1/terminals/{second}/enrollments"),
        json!({"person_id": person, "kind": "face", "sync": false}),
    )
    .await
    .problem(409, None);
    let later = api.core.now() + ASYNC_RESULT_WAIT + jiff::SignedDuration::from_secs(1);
    api.core.clock().set(later);
    let expired = api
        .get(&format!(
            "/v1/terminals/{second}/enrollments/{}",
            expiring.id
        ))
        .await;
    assert_eq!(expired.json["status"], "failed", "{}", expired.json);
    assert!(
        expired.json["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("expired")),
        "{}",
        expired.json
    );
    drop(api);
    std::fs::remove_dir_all(&dir).ok();
}
