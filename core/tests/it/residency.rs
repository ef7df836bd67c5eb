//! Filed people: the core holds in memory only the people an entitlement names; everyone
//! else lives in the store alone and is read in for the call that is about them. Every
//! endpoint must answer about a filed person as it would about a held one, and the
//! snapshot must be back to the entitled people once the call ends.

use std::sync::Arc;

use acs_core::store::{SqliteStore, Store};
use acs_core::{Clock, Core};
use serde_json::json;

use crate::api_support::{Api, START, face_b64, venue};

/// The ids of the people the tenant's snapshot holds.
async fn held(core: &Core) -> Vec<u64> {
    let tenant = core.tenant_ids().await.expect("tenants")[0];
    core.read(tenant, |s| {
        assert!(s.visitors.is_empty(), "a visitor stayed after its call");
        s.people.keys().map(|p| p.get()).collect()
    })
    .await
    .expect("read")
}

#[tokio::test]
async fn people_without_an_entitlement_are_filed_and_still_answered_for() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("store"));
    let api = Api::over(store.clone()).await;
    let (_, facility, door, _) = venue(&api).await;
    let a = api
        .post(
            "/v1/people",
            json!({"acs_id": "F-1", "name": "Ana", "selfie": face_b64()}),
        )
        .await
        .id();
    let b = api
        .post("/v1/people", json!({"acs_id": "F-2", "name": "Bea"}))
        .await
        .id();
    let card = api
        .post(
            &format!("/v1/people/{b}/credentials"),
            json!({"kind": "card", "facility_code": 7, "card_number": 77}),
        )
        .await;
    assert_eq!(card.status, 201, "{}", card.json);
    let card = card.id();
    assert_eq!(
        held(&api.core).await,
        Vec::<u64>::new(),
        "nobody is entitled"
    );

    // Reads about filed people.
    let listed = api.get("/v1/people?limit=1").await;
    assert_eq!(listed.json["items"][0]["id"], a, "{}", listed.json);
    let next = listed.json["next_after"].as_u64().expect("a second page");
    let listed = api.get(&format!("/v1/people?after={next}")).await;
    assert_eq!(listed.json["items"][0]["acs_id"], "F-2", "{}", listed.json);
    assert_eq!(listed.json["next_after"], json!(null));
    let person = api.get(&format!("/v1/people/{b}")).await;
    assert_eq!(person.json["credentials"][0]["id"], card, "{}", person.json);
    let credential = api.get(&format!("/v1/credentials/{card}")).await;
    assert_eq!(
        credential.json["disable_reasons"],
        json!(["needs_provisioning"]),
        "{}",
        credential.json
    );
    assert_eq!(api.get(&format!("/v1/people/{a}/selfie")).await.status, 200);
    assert_eq!(api.get("/v1/people/999999").await.status, 404);

    // A filed person's card at a door is theirs, not a stranger's.
    let factor =
        json!({"door_id": door, "factors": [{"card": {"facility_code": 7, "card_number": 77}}]});
    let denied = api.post("/v1/decisions", factor.clone()).await;
    assert_eq!(
        denied.json["reason_code"], "no_entitlement",
        "{}",
        denied.json
    );
    assert_eq!(denied.json["acs_id"], "F-2", "{}", denied.json);

    // The issuing rules see a filed person's credentials.
    api.post(
        &format!("/v1/people/{a}/credentials"),
        json!({"kind": "card", "facility_code": 7, "card_number": 77}),
    )
    .await
    .problem(409, Some("card"));
    api.post(
        &format!("/v1/credentials/{card}/revoke"),
        json!({"reason": "stolen"}),
    )
    .await;
    let again = api
        .post(
            &format!("/v1/people/{a}/credentials"),
            json!({"kind": "card", "facility_code": 7, "card_number": 77}),
        )
        .await;
    again.problem(409, Some("card_number"));
    let burned = api.post("/v1/decisions", factor).await;
    assert_eq!(
        burned.json["reason_code"], "credential_revoked",
        "{}",
        burned.json
    );
    assert_eq!(burned.json["acs_id"], "F-2", "{}", burned.json);
    // So is a revoked PIN (its value is free again, but the credential still decides until
    // it is deleted).
    let pin = api
        .post(
            &format!("/v1/people/{b}/credentials"),
            json!({"kind": "pin", "pin": "864209"}),
        )
        .await
        .id();
    api.post(
        &format!("/v1/credentials/{pin}/revoke"),
        json!({"reason": "damaged"}),
    )
    .await;
    let typed = json!({"door_id": door, "factors": [{"pin": " 864209"}]});
    let revoked = api.post("/v1/decisions", typed.clone()).await;
    assert_eq!(
        revoked.json["reason_code"], "credential_revoked",
        "{}",
        revoked.json
    );
    assert_eq!(revoked.json["acs_id"], "F-2", "{}", revoked.json);
    assert_eq!(
        api.delete(&format!("/v1/credentials/{pin}")).await.status,
        204
    );
    let gone = api.post("/v1/decisions", typed).await;
    assert_eq!(
        gone.json["reason_code"], "unknown_credential",
        "{}",
        gone.json
    );
    assert_eq!(held(&api.core).await, Vec::<u64>::new());

    // An entitlement brings the person in; losing it files them again.
    let event = api
        .post(
            "/v1/events",
            json!({"facility_id": facility, "name": "Gala",
                   "starts_at": "2026-05-04T07:00:00Z", "ends_at": "2026-05-04T23:00:00Z"}),
        )
        .await
        .id();
    let added = api
        .post(
            &format!("/v1/events/{event}/attendees"),
            json!({"person_id": a}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.json);
    assert_eq!(added.json["acs_id"], "F-1");
    assert_eq!(held(&api.core).await, vec![a]);
    let group = api
        .post("/v1/groups", json!({"name": "Staff", "member_ids": [b]}))
        .await;
    assert_eq!(group.status, 201, "{}", group.json);
    assert_eq!(held(&api.core).await, vec![a, b]);
    let removed = api
        .delete(&format!("/v1/events/{event}/attendees/{a}"))
        .await;
    assert_eq!(removed.status, 204);
    assert_eq!(held(&api.core).await, vec![b]);

    // A filed person's invitation is answered for, and goes with the person.
    let c = api
        .post("/v1/people", json!({"acs_id": "F-3", "name": "Cai"}))
        .await
        .id();
    let invitation = api
        .post(
            &format!("/v1/people/{c}/selfie-invitations"),
            json!({"send_by_email": true, "email": "cai@example.com"}),
        )
        .await;
    assert_eq!(invitation.status, 201, "{}", invitation.json);
    let invitation = invitation.id();
    let shown = api
        .get(&format!("/v1/selfie-invitations/{invitation}"))
        .await;
    assert_eq!(shown.json["person_id"], c, "{}", shown.json);
    assert_eq!(api.delete(&format!("/v1/people/{c}")).await.status, 204);
    let tenant = api.core.tenant_ids().await.expect("tenants")[0];
    assert_eq!(
        store.owned_records(tenant.get(), c).expect("records"),
        Vec::new(),
        "nothing of a deleted person stays behind"
    );
    assert_eq!(
        api.get(&format!("/v1/selfie-invitations/{invitation}"))
            .await
            .status,
        404
    );
    assert_eq!(held(&api.core).await, vec![b]);

    // A core started over the same store holds the entitled people only.
    let restarted = Core::with_clock(store, Clock::manual(START.parse().expect("instant")));
    assert_eq!(held(&restarted).await, vec![b]);
}
