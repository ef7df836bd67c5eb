//! The integrator API end to end over HTTP: the seeds' workflows (enroll with a selfie →
//! issued not distributed → member / attendee / access → on the terminal → decision with
//! the `acs_id` → streamed), bad input answered with problem+json naming the field and
//! changing nothing, pagination, idempotency, API keys, and persistence across restarts.

use std::sync::Arc;

use acs_core::store::SqliteStore;
use serde_json::{Value as Json, json};

use crate::api_support::{Api, face_b64, venue};
use crate::bounded::bounded;

async fn enroll(api: &Api, acs_id: &str) -> (u64, u64) {
    let r = api
        .post(
            "/v1/people",
            json!({"acs_id": acs_id, "name": "Ana", "selfie": face_b64()}),
        )
        .await;
    let person = r.id();
    assert_eq!(r.json["acs_id"], acs_id);
    assert_eq!(
        r.json["credentials"][0]["disable_reasons"],
        json!(["needs_provisioning"]),
        "issued, not distributed"
    );
    (
        person,
        r.json["credentials"][0]["id"].as_u64().expect("face id"),
    )
}

async fn desired_people(api: &Api, terminal: u64) -> Vec<u64> {
    let r = api
        .get(&format!("/v1/terminals/{terminal}/desired-state"))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    r.json["people"]
        .as_array()
        .expect("people")
        .iter()
        .map(|p| p["person_id"].as_u64().expect("id"))
        .collect()
}

#[tokio::test]
async fn enroll_then_member_then_face_grants_with_the_acs_id_and_is_streamed() {
    let api = Api::start().await;
    let (_, _, door, terminal) = venue(&api).await;
    let (person, face) = enroll(&api, "E-1001").await;
    assert_eq!(desired_people(&api, terminal).await, Vec::<u64>::new());

    // Open the stream before the decision: it must deliver the grant.
    let mut stream = api
        .client()
        .get(format!("{}/v1/access-events/stream", api.base))
        .bearer_auth(&api.key)
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);

    let member = api
        .post("/v1/members", json!({"person_id": person}))
        .await
        .id();
    assert_eq!(desired_people(&api, terminal).await, vec![person]);
    let credential = api.get(&format!("/v1/credentials/{face}")).await;
    assert_eq!(credential.json["status"], "active", "{}", credential.json);

    let decision = api
        .post(
            "/v1/decisions",
            json!({"door_id": door, "factors": [{"face": {"credential_id": face}}]}),
        )
        .await;
    assert_eq!(decision.status, 200, "{}", decision.json);
    assert_eq!(decision.json["result"], "granted", "{}", decision.json);
    assert_eq!(decision.json["acs_id"], "E-1001");
    assert_eq!(decision.json["rules"], json!([{"member_id": member}]));

    let text = bounded("an event on the stream", async {
        let mut text = String::new();
        while !text.contains("\n\n") {
            let chunk = stream.chunk().await.expect("chunk").expect("open stream");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    })
    .await;
    assert!(text.contains("event: access.granted"), "{text}");
    assert!(text.contains("\"acs_id\":\"E-1001\""), "{text}");

    let listed = api.get("/v1/access-events").await;
    assert_eq!(listed.json["items"][0]["acs_id"], "E-1001");

    // Removing the membership takes the person off the terminal and denies.
    assert_eq!(
        api.delete(&format!("/v1/members/{member}")).await.status,
        204
    );
    assert_eq!(desired_people(&api, terminal).await, Vec::<u64>::new());
    let denied = api
        .post(
            "/v1/decisions",
            json!({"door_id": door, "factors": [{"face": {"credential_id": face}}]}),
        )
        .await;
    assert_eq!(denied.json["result"], "denied");
    assert_eq!(denied.json["reason_code"], "no_entitlement");
}

#[tokio::test]
async fn a_facility_member_is_let_in_only_within_that_facility() {
    let api = Api::start().await;
    let (site, hall, hall_door, hall_terminal) = venue(&api).await;
    let lab = api
        .post("/v1/facilities", json!({"site_id": site, "name": "Lab"}))
        .await
        .id();
    let lab_door = api
        .post(
            "/v1/doors",
            json!({"facility_id": lab, "name": "Lab door",
                   "supported_auth_types": {"in": ["face"], "out": []}}),
        )
        .await
        .id();
    let lab_terminal = api
        .post(
            "/v1/terminals",
            json!({"facility_id": lab, "model": "idface", "address": "http://127.0.0.1:9",
                   "login": "admin", "password": "lab-pass", "door_ids": [lab_door]}),
        )
        .await
        .id();
    let (person, face) = enroll(&api, "E-8").await;

    api.post(
        "/v1/members",
        json!({"person_id": person, "facility_id": 999_999}),
    )
    .await
    .problem(422, Some("facility_id"));
    let member = api
        .post(
            "/v1/members",
            json!({"person_id": person, "facility_id": lab}),
        )
        .await;
    assert_eq!(member.status, 201, "{}", member.json);
    assert_eq!(member.json["facility_id"], lab);
    let member = member.id();
    // One live membership per person and scope; a tenant-wide one is another scope.
    api.post(
        "/v1/members",
        json!({"person_id": person, "facility_id": lab}),
    )
    .await
    .problem(409, Some("person_id"));

    // Only the lab's terminal holds the person, and only the lab's door lets them in.
    assert_eq!(desired_people(&api, lab_terminal).await, vec![person]);
    assert_eq!(desired_people(&api, hall_terminal).await, Vec::<u64>::new());
    let decide = |door: u64| {
        api.post(
            "/v1/decisions",
            json!({"door_id": door, "factors": [{"face": {"credential_id": face}}]}),
        )
    };
    let at_lab = decide(lab_door).await;
    assert_eq!(at_lab.json["result"], "granted", "{}", at_lab.json);
    assert_eq!(at_lab.json["rules"], json!([{"member_id": member}]));
    let at_hall = decide(hall_door).await;
    assert_eq!(at_hall.json["result"], "denied", "{}", at_hall.json);
    assert_eq!(at_hall.json["reason_code"], "no_entitlement");

    // Lists by facility; the facility cannot be deleted while it has a member.
    let of_lab = api
        .get(&format!("/v1/members?facility_id={lab}"))
        .await
        .json;
    assert_eq!(
        of_lab["items"].as_array().map(Vec::len),
        Some(1),
        "{of_lab}"
    );
    let of_hall = api
        .get(&format!("/v1/members?facility_id={hall}"))
        .await
        .json;
    assert_eq!(of_hall["items"], json!([]));
    api.get("/v1/members?facility_id=x")
        .await
        .problem(422, None);
    // The lab's door and terminal come first; then the member is what keeps it.
    api.delete(&format!("/v1/terminals/{lab_terminal}")).await;
    api.delete(&format!("/v1/doors/{lab_door}")).await;
    let refused = api.delete(&format!("/v1/facilities/{lab}")).await;
    refused.problem(409, None);
    assert!(
        refused.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("member {member}"))),
        "{}",
        refused.json
    );
}

#[tokio::test]
async fn attendees_reach_the_facility_only_for_the_event_window() {
    let api = Api::start().await;
    let (_, facility, door, terminal) = venue(&api).await;
    let (person, face) = enroll(&api, "E-7").await;
    let event = api
        .post(
            "/v1/events",
            json!({"facility_id": facility, "name": "Concert",
                   "starts_at": "2026-05-04T18:00:00Z", "ends_at": "2026-05-04T23:00:00Z"}),
        )
        .await;
    assert_eq!(event.json["status"], "scheduled");
    let event = event.id();
    let added = api
        .post(
            &format!("/v1/events/{event}/attendees"),
            json!({"person_id": person}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.json);
    api.post(
        &format!("/v1/events/{event}/attendees"),
        json!({"person_id": person}),
    )
    .await
    .problem(409, Some("person_id"));

    let desired = api
        .get(&format!("/v1/terminals/{terminal}/desired-state"))
        .await;
    assert_eq!(desired.json["people"], json!([]), "not before the event");
    assert_eq!(desired.json["next_change"], "2026-05-04T18:00:00Z");

    api.set_now("2026-05-04T19:00:00Z");
    assert_eq!(desired_people(&api, terminal).await, vec![person]);
    let granted = api
        .post(
            "/v1/decisions",
            json!({"door_id": door, "factors": [{"face": {"credential_id": face}}]}),
        )
        .await;
    assert_eq!(granted.json["rules"], json!([{"event_id": event}]));

    api.set_now("2026-05-04T23:00:00Z");
    assert_eq!(
        desired_people(&api, terminal).await,
        Vec::<u64>::new(),
        "gone at the end"
    );

    let attendees = api.get(&format!("/v1/events/{event}/attendees")).await;
    assert_eq!(attendees.json["items"][0]["acs_id"], "E-7");
    assert_eq!(
        api.delete(&format!("/v1/events/{event}/attendees/{person}"))
            .await
            .status,
        204
    );
    api.delete(&format!("/v1/events/{event}/attendees/{person}"))
        .await
        .problem(404, None);
}

#[tokio::test]
async fn an_access_for_a_site_covers_its_doors_those_added_later_included() {
    let api = Api::start().await;
    let (site, facility, door, terminal) = venue(&api).await;
    let (person, face) = enroll(&api, "E-10").await;
    let elsewhere = api
        .post(
            "/v1/sites",
            json!({"name": "Lisbon", "timezone": "Europe/Lisbon"}),
        )
        .await
        .id();
    let far = api
        .post(
            "/v1/facilities",
            json!({"site_id": elsewhere, "name": "Far"}),
        )
        .await
        .id();
    let far_door = api
        .post(
            "/v1/doors",
            json!({"facility_id": far, "name": "Far door",
                   "supported_auth_types": {"in": ["face"], "out": []}}),
        )
        .await
        .id();

    api.post(
        "/v1/accesses",
        json!({"name": "Everywhere", "kind": "permanent", "site_id": 999_999, "person_ids": [person]}),
    )
    .await
    .problem(422, Some("site_id"));
    api.post(
        "/v1/accesses",
        json!({"name": "Mixed", "kind": "permanent", "site_id": site,
               "doors": [{"door_id": far_door}], "person_ids": [person]}),
    )
    .await
    .problem(422, Some("doors[0].door_id"));
    let access = api
        .post(
            "/v1/accesses",
            json!({"name": "Madrid staff", "kind": "permanent", "site_id": site, "person_ids": [person]}),
        )
        .await;
    assert_eq!(access.status, 201, "{}", access.json);
    assert_eq!(access.json["site_id"], site);
    assert_eq!(access.json["doors"], json!([]));
    let access = access.id();
    assert_eq!(desired_people(&api, terminal).await, vec![person]);

    let decide = |door: u64| {
        api.post(
            "/v1/decisions",
            json!({"door_id": door, "factors": [{"face": {"credential_id": face}}]}),
        )
    };
    let granted = decide(door).await;
    assert_eq!(granted.json["result"], "granted", "{}", granted.json);
    assert_eq!(granted.json["rules"], json!([{"access_id": access}]));
    // A door added to the site later is covered without touching the access.
    let later = api
        .post(
            "/v1/doors",
            json!({"facility_id": facility, "name": "Back",
                   "supported_auth_types": {"in": ["face"], "out": []}}),
        )
        .await
        .id();
    assert_eq!(decide(later).await.json["result"], "granted");
    let denied = decide(far_door).await;
    assert_eq!(
        denied.json["reason_code"], "no_entitlement",
        "{}",
        denied.json
    );

    // Listed by site and by door; the site cannot be deleted under a live access.
    let ids = |page: Json| -> Vec<u64> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|a| a["id"].as_u64().expect("id"))
            .collect()
    };
    assert_eq!(
        ids(api.get(&format!("/v1/accesses?site_id={site}")).await.json),
        vec![access]
    );
    assert_eq!(
        ids(api.get(&format!("/v1/accesses?door_id={later}")).await.json),
        vec![access]
    );
    assert!(
        ids(api
            .get(&format!("/v1/accesses?site_id={elsewhere}"))
            .await
            .json)
        .is_empty()
    );
    assert!(
        ids(api
            .get(&format!("/v1/accesses?door_id={far_door}"))
            .await
            .json)
        .is_empty()
    );
    api.get("/v1/accesses?site=1").await.problem(422, None);
    let refused = api.delete(&format!("/v1/sites/{site}")).await;
    refused.problem(409, None);
    assert!(
        refused.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("access {access}"))),
        "{}",
        refused.json
    );
}

#[tokio::test]
async fn accesses_are_validated_updated_and_deleted() {
    let api = Api::start().await;
    let (_, _, door, terminal) = venue(&api).await;
    let (person, _) = enroll(&api, "E-9").await;
    let card = api
        .post(
            &format!("/v1/people/{person}/credentials"),
            json!({"kind": "card", "facility_code": 123, "card_number": 45678}),
        )
        .await;
    assert_eq!(card.json["kind"], "card", "{}", card.json);

    api.post(
        "/v1/accesses",
        json!({"name": "Visitor", "kind": "temporary", "doors": [{"door_id": door, "in_auth_types": ["card"]}],
               "person_ids": [person]}),
    )
    .await
    .problem(422, Some("valid_to"));
    api.post(
        "/v1/accesses",
        json!({"name": "Bad", "kind": "permanent", "doors": [{"door_id": door, "in_auth_types": ["fingerprint"]}]}),
    )
    .await
    .problem(422, Some("doors[0].in_auth_types"));
    api.post(
        "/v1/accesses",
        json!({"name": "Bad", "kind": "permanent", "doors": [{"door_id": door, "in_auth_types": ["retina"]}]}),
    )
    .await
    .problem(422, Some("doors[0].in_auth_types[0]"));

    let schedule = api
        .post(
            "/v1/schedules",
            json!({"name": "Office hours", "weekly_spans": [{"weekdays": ["mon","tue","wed","thu","fri"], "start": "09:00", "end": "18:00"}]}),
        )
        .await
        .id();
    let access = api
        .post(
            "/v1/accesses",
            json!({"name": "Visitor", "kind": "temporary", "valid_to": "2026-05-05T00:00:00Z",
                   "schedule_id": schedule,
                   "doors": [{"door_id": door, "in_auth_types": ["card"]}], "person_ids": [person]}),
        )
        .await;
    assert_eq!(access.json["status"], "ready", "{}", access.json);
    let access = access.id();
    assert_eq!(desired_people(&api, terminal).await, vec![person]);

    // 08:00 UTC is 10:00 in Madrid: inside office hours.
    let card_factor = json!({"door_id": door, "factors": [{"card": {"facility_code": 123, "card_number": 45678}}]});
    let granted = api.post("/v1/decisions", card_factor.clone()).await;
    assert_eq!(granted.json["result"], "granted", "{}", granted.json);
    api.set_now("2026-05-04T17:00:00Z");
    let late = api.post("/v1/decisions", card_factor.clone()).await;
    assert_eq!(late.json["reason_code"], "not_in_schedule", "{}", late.json);

    let updated = api
        .put(
            &format!("/v1/accesses/{access}"),
            json!({"name": "Visitor (all day)", "kind": "temporary", "valid_to": "2026-05-05T00:00:00Z",
                   "doors": [{"door_id": door, "in_auth_types": ["card"]}], "person_ids": [person]}),
        )
        .await;
    assert_eq!(
        updated.json["name"], "Visitor (all day)",
        "{}",
        updated.json
    );
    assert_eq!(
        api.post("/v1/decisions", card_factor.clone()).await.json["result"],
        "granted"
    );

    // Expired: no longer granted, no longer on the terminal.
    api.set_now("2026-05-05T00:00:00Z");
    assert_eq!(desired_people(&api, terminal).await, Vec::<u64>::new());
    assert_eq!(
        api.delete(&format!("/v1/accesses/{access}")).await.status,
        204
    );
    assert_eq!(
        api.get(&format!("/v1/accesses/{access}")).await.json["status"],
        "deleted"
    );
    api.delete(&format!("/v1/accesses/{access}"))
        .await
        .problem(404, None);
}

/// Counts every list, to prove a refused request changed nothing.
async fn census(api: &Api) -> Json {
    let mut counts = serde_json::Map::new();
    for list in [
        "sites",
        "facilities",
        "doors",
        "terminals",
        "people",
        "members",
        "events",
        "accesses",
        "schedules",
    ] {
        let r = api.get(&format!("/v1/{list}?limit=500")).await;
        counts.insert(
            list.into(),
            json!(r.json["items"].as_array().map_or(0, Vec::len)),
        );
    }
    Json::Object(counts)
}

#[tokio::test]
async fn bad_input_is_a_problem_naming_the_field_and_changes_nothing() {
    let api = Api::start().await;
    let (_, facility, _, _) = venue(&api).await;
    let (person, _) = enroll(&api, "E-1").await;
    api.post(
        &format!("/v1/people/{person}/credentials"),
        json!({"kind": "card", "facility_code": 1, "card_number": 2}),
    )
    .await
    .id();
    let before = census(&api).await;

    let big = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        vec![0xFF_u8; 3 * 1024 * 1024],
    );
    let cases: Vec<(&str, Json, u16, Option<&str>)> = vec![
        (
            "/v1/people",
            json!({"acs_id": "E-2", "selfie": "***"}),
            422,
            Some("selfie"),
        ),
        (
            "/v1/people",
            json!({"acs_id": "E-2", "selfie": "aGVsbG8="}),
            422,
            Some("selfie"),
        ),
        (
            "/v1/people",
            json!({"acs_id": "E-2", "selfie": big}),
            422,
            Some("selfie"),
        ),
        ("/v1/people", json!({"acs_id": "E-1"}), 409, Some("acs_id")),
        ("/v1/people", json!({"acs_id": "  "}), 422, Some("acs_id")),
        (
            "/v1/people",
            json!({"name": "no acs id"}),
            422,
            Some("acs_id"),
        ),
        (
            "/v1/people",
            json!({"acs_id": "E-3", "colour": "blue"}),
            422,
            None,
        ),
        (
            "/v1/people",
            json!({"acs_id": "E-3", "valid_from": "2026-06-01T00:00:00Z", "valid_to": "2026-05-01T00:00:00Z"}),
            422,
            Some("valid_to"),
        ),
        (
            "/v1/people",
            json!({"acs_id": "E-3", "valid_to": "tomorrow"}),
            422,
            Some("valid_to"),
        ),
        (
            "/v1/events",
            json!({"facility_id": 999_999, "starts_at": "2026-05-04T18:00:00Z", "ends_at": "2026-05-04T19:00:00Z"}),
            422,
            Some("facility_id"),
        ),
        (
            "/v1/events",
            json!({"facility_id": facility, "starts_at": "2026-05-04T18:00:00Z", "ends_at": "2026-05-04T17:00:00Z"}),
            422,
            Some("ends_at"),
        ),
        (
            "/v1/sites",
            json!({"name": "Nowhere", "timezone": "Mars/Olympus"}),
            422,
            Some("timezone"),
        ),
        (
            "/v1/sites",
            json!({"name": 7, "timezone": "UTC"}),
            422,
            Some("name"),
        ),
        (
            "/v1/members",
            json!({"person_id": 424_242}),
            422,
            Some("person_id"),
        ),
        (
            "/v1/schedules",
            json!({"name": "x", "weekly_spans": [{"weekdays": ["mon"], "start": "25:00", "end": "26:00"}]}),
            422,
            Some("weekly_spans[0].start"),
        ),
    ];
    for (path, body, status, field) in cases {
        let reply = api.post(path, body.clone()).await;
        assert_eq!(
            reply.status,
            status,
            "{path} {}: {}",
            body.to_string().chars().take(120).collect::<String>(),
            reply.json
        );
        reply.problem(status, field);
    }
    api.post(
        &format!("/v1/people/{person}/credentials"),
        json!({"kind": "card", "facility_code": 1, "card_number": 2}),
    )
    .await
    .problem(409, Some("card"));
    api.post_raw("/v1/sites", "application/json", b"{\"name\": ")
        .await
        .problem(400, None);
    api.post_raw("/v1/sites", "text/plain", b"name=x")
        .await
        .problem(400, None);
    assert_eq!(census(&api).await, before, "nothing changed");
}

#[tokio::test]
async fn lost_cards_never_return_and_phones_carry_mobile_keys() {
    let api = Api::start().await;
    venue(&api).await;
    let (person, _) = enroll(&api, "E-5").await;
    let card = api
        .post(
            &format!("/v1/people/{person}/credentials"),
            json!({"kind": "card", "facility_code": 9, "card_number": 9}),
        )
        .await
        .id();
    let revoked = api
        .post(
            &format!("/v1/credentials/{card}/revoke"),
            json!({"reason": "lost"}),
        )
        .await;
    assert_eq!(
        revoked.json["disable_reasons"],
        json!(["revoked"]),
        "{}",
        revoked.json
    );
    api.post(&format!("/v1/credentials/{card}/unsuspend"), json!({}))
        .await
        .problem(409, None);
    assert_eq!(
        api.delete(&format!("/v1/credentials/{card}")).await.status,
        204
    );
    api.post(
        &format!("/v1/people/{person}/credentials"),
        json!({"kind": "card", "facility_code": 9, "card_number": 9}),
    )
    .await
    .problem(409, None);

    // A mobile key configured once reaches every phone, now and later.
    let phone_a = api
        .post(&format!("/v1/people/{person}/phones"), json!({}))
        .await
        .id();
    let key = api
        .post(
            &format!("/v1/people/{person}/credentials"),
            json!({"kind": "mobile_key"}),
        )
        .await
        .id();
    let phone_b = api
        .post(&format!("/v1/people/{person}/phones"), json!({}))
        .await
        .id();
    let copies = |creds: &Json| -> Vec<(u64, String)> {
        creds["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|c| c["parent_id"] == key)
            .map(|c| {
                (
                    c["phone_id"].as_u64().expect("phone"),
                    c["status"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let creds = api
        .get(&format!("/v1/people/{person}/credentials"))
        .await
        .json;
    assert_eq!(
        copies(&creds),
        vec![
            (phone_a, "active".to_owned()),
            (phone_b, "active".to_owned())
        ]
    );
    assert_eq!(
        api.post(&format!("/v1/phones/{phone_a}/deactivate"), json!({}))
            .await
            .status,
        200
    );
    let creds = api
        .get(&format!("/v1/people/{person}/credentials"))
        .await
        .json;
    assert_eq!(
        copies(&creds),
        vec![
            (phone_a, "disabled".to_owned()),
            (phone_b, "active".to_owned())
        ]
    );
}

#[tokio::test]
async fn phones_carry_a_name_and_platform_that_can_change() {
    let api = Api::start().await;
    let (person, _) = enroll(&api, "E-6").await;
    let work = api
        .post(
            &format!("/v1/people/{person}/phones"),
            json!({"name": "  Work phone ", "platform": "android"}),
        )
        .await;
    assert_eq!(work.status, 201, "{}", work.json);
    assert_eq!(work.json["name"], "Work phone");
    assert_eq!(work.json["platform"], "android");
    let work = work.id();
    let bare = api
        .post(&format!("/v1/people/{person}/phones"), json!({}))
        .await;
    assert_eq!(bare.json["name"], Json::Null);
    assert_eq!(bare.json["platform"], Json::Null);

    // Bad members are refused naming the field, and nothing is created.
    api.post(
        &format!("/v1/people/{person}/phones"),
        json!({"platform": "symbian"}),
    )
    .await
    .problem(422, Some("platform"));
    api.post(
        &format!("/v1/people/{person}/phones"),
        json!({"name": "   "}),
    )
    .await
    .problem(422, Some("name"));
    api.post(
        &format!("/v1/people/{person}/phones"),
        json!({"colour": "red"}),
    )
    .await
    .problem(422, Some("colour"));
    let listed = api.get(&format!("/v1/people/{person}/phones")).await.json;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );

    // PATCH changes what it names; null clears; the phone stays active.
    let renamed = api
        .patch(&format!("/v1/phones/{work}"), json!({"name": "Old phone"}))
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.json);
    assert_eq!(renamed.json["name"], "Old phone");
    assert_eq!(renamed.json["platform"], "android");
    assert_eq!(renamed.json["active"], true);
    let cleared = api
        .patch(&format!("/v1/phones/{work}"), json!({"platform": null}))
        .await;
    assert_eq!(cleared.json["platform"], Json::Null);
    assert_eq!(cleared.json["name"], "Old phone");
    api.patch(&format!("/v1/phones/{work}"), json!({"platform": 3}))
        .await
        .problem(422, Some("platform"));
    let got = api.get(&format!("/v1/phones/{work}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json, cleared.json);
    api.get("/v1/phones/999999").await.problem(404, None);
}

#[tokio::test]
async fn lists_page_through_every_item_once() {
    let api = Api::start().await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(
            api.post(
                "/v1/sites",
                json!({"name": format!("Site {i}"), "timezone": "UTC"}),
            )
            .await
            .id(),
        );
    }
    let mut seen = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let path = match after {
            Some(a) => format!("/v1/sites?limit=3&after={a}"),
            None => "/v1/sites?limit=3".to_owned(),
        };
        let page = api.get(&path).await.json;
        seen.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|s| s["id"].as_u64().expect("id")),
        );
        match page["next_after"].as_u64() {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, created);
    api.get("/v1/sites?limit=0")
        .await
        .problem(422, Some("limit"));
    api.get("/v1/sites?limit=501")
        .await
        .problem(422, Some("limit"));
    api.get("/v1/sites?colour=red")
        .await
        .problem(422, Some("query"));
}

#[tokio::test]
async fn fifty_identical_requests_at_once_all_get_the_first_answer() {
    let api = Api::start().await;
    let body = json!({"name": "Once", "timezone": "UTC"});
    let replies = futures_util::future::join_all((0..50).map(|_| {
        api.send_as(
            Some(&api.key),
            "POST",
            "/v1/sites",
            Some(&body),
            Some("same-key"),
        )
    }))
    .await;
    let first = &replies[0];
    for reply in &replies {
        assert_eq!(reply.status, 201, "{}", reply.json);
        assert_eq!(reply.json, first.json, "the same answer");
    }
    assert_eq!(
        api.get("/v1/sites").await.json["items"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "one site"
    );
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_reply_and_refuse_other_requests() {
    let api = Api::start().await;
    let body = json!({"name": "Once", "timezone": "UTC"});
    let first = api
        .send_as(
            Some(&api.key),
            "POST",
            "/v1/sites",
            Some(&body),
            Some("k-1"),
        )
        .await;
    let again = api
        .send_as(
            Some(&api.key),
            "POST",
            "/v1/sites",
            Some(&body),
            Some("k-1"),
        )
        .await;
    assert_eq!((first.status, again.status), (201, 201));
    assert_eq!(first.json, again.json);
    assert_eq!(
        api.get("/v1/sites").await.json["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    api.send_as(
        Some(&api.key),
        "POST",
        "/v1/sites",
        Some(&json!({"name": "Other", "timezone": "UTC"})),
        Some("k-1"),
    )
    .await
    .problem(422, None);
}

#[tokio::test]
async fn api_keys_are_required_rotatable_and_revocable() {
    let api = Api::start().await;
    for key in [None, Some("acs_nope_nope"), Some("not-a-key")] {
        api.send_as(key, "GET", "/v1/sites", None, None)
            .await
            .problem(401, None);
    }
    let issued = api.post("/v1/api-keys", json!({"label": "rotation"})).await;
    assert_eq!(issued.status, 201);
    let new_key = issued.json["key"].as_str().expect("secret once").to_owned();
    let listed = api.get("/v1/api-keys").await.json;
    assert!(
        !listed.to_string().contains(&new_key),
        "secrets are never listed"
    );
    assert_eq!(
        api.send_as(Some(&new_key), "GET", "/v1/sites", None, None)
            .await
            .status,
        200
    );
    let id = issued.json["id"].as_u64().expect("id");
    assert_eq!(api.delete(&format!("/v1/api-keys/{id}")).await.status, 204);
    api.send_as(Some(&new_key), "GET", "/v1/sites", None, None)
        .await
        .problem(401, None);
    api.get("/v1/nowhere").await.problem(404, None);
}

#[tokio::test]
async fn everything_survives_a_restart_of_the_core() {
    let dir = std::env::temp_dir().join(format!("acs-core-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("acs.db");
    let (key, person, terminal) = {
        let api = Api::over(Arc::new(SqliteStore::open(&db).expect("db"))).await;
        let (_, _, _, terminal) = venue(&api).await;
        let (person, _) = enroll(&api, "E-42").await;
        api.post("/v1/members", json!({"person_id": person}))
            .await
            .id();
        (api.key.clone(), person, terminal)
    };
    let core = acs_core::Core::with_clock(
        Arc::new(SqliteStore::open(&db).expect("db again")),
        acs_core::Clock::manual(crate::api_support::START.parse().expect("instant")),
    );
    let api = Api::serve(core, key).await;
    assert_eq!(
        api.get(&format!("/v1/people/{person}")).await.json["acs_id"],
        "E-42"
    );
    assert_eq!(desired_people(&api, terminal).await, vec![person]);
    let selfie = api
        .client()
        .get(format!("{}/v1/people/{person}/selfie", api.base))
        .bearer_auth(&api.key)
        .send()
        .await
        .expect("selfie");
    assert_eq!(
        selfie.bytes().await.expect("bytes").as_ref(),
        crate::api_support::FACE
    );
    api.post("/v1/people", json!({"acs_id": "E-42"}))
        .await
        .problem(409, Some("acs_id"));
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn suspensions_groups_calendars_and_references_behave() {
    let api = Api::start().await;
    let (site, facility, door, terminal) = venue(&api).await;
    let (person, _) = enroll(&api, "E-11").await;
    let pin = api
        .post(
            &format!("/v1/people/{person}/credentials"),
            json!({"kind": "pin", "pin": "8642"}),
        )
        .await
        .id();
    let group = api.post("/v1/groups", json!({"name": "Staff"})).await.id();
    let added = api
        .post(
            &format!("/v1/groups/{group}/members"),
            json!({"person_id": person}),
        )
        .await;
    assert_eq!(added.json["member_ids"], json!([person]), "{}", added.json);
    api.post(
        &format!("/v1/groups/{group}/members"),
        json!({"person_id": person}),
    )
    .await
    .problem(409, Some("person_id"));
    let calendar = api
        .post("/v1/holiday-calendars", json!({"name": "Spain", "holidays": [
            {"name": "Labour day", "start": "2026-05-01", "classes": [1], "repeats_yearly": true}]}))
        .await
        .id();
    assert_eq!(
        api.get(&format!("/v1/holiday-calendars/{calendar}"))
            .await
            .json["holidays"][0]["end"],
        "2026-05-01"
    );
    let schedule = api
        .post(
            "/v1/schedules",
            json!({"name": "Nights", "holiday_calendar_ids": [calendar],
            "weekly_spans": [{"weekdays": ["mon"], "start": "22:00", "end": "06:00"}]}),
        )
        .await;
    assert_eq!(
        schedule.json["weekly_spans"][0]["end"], "06:00:00",
        "{}",
        schedule.json
    );
    let access = api
        .post(
            "/v1/accesses",
            json!({"name": "Staff PIN", "kind": "permanent",
            "doors": [{"door_id": door, "in_auth_types": ["pin"]}], "group_ids": [group]}),
        )
        .await
        .id();
    assert_eq!(desired_people(&api, terminal).await, vec![person]);
    let pin_at_door = json!({"door_id": door, "factors": [{"pin": "8642"}]});
    assert_eq!(
        api.post("/v1/decisions", pin_at_door.clone()).await.json["result"],
        "granted"
    );

    // Suspensions deny with their reason and lift again.
    assert_eq!(
        api.post(&format!("/v1/credentials/{pin}/suspend"), json!({}))
            .await
            .status,
        200
    );
    assert_eq!(
        api.post("/v1/decisions", pin_at_door.clone()).await.json["reason_code"],
        "credential_suspended"
    );
    api.post(&format!("/v1/credentials/{pin}/unsuspend"), json!({}))
        .await
        .id();
    let suspended = api
        .post(&format!("/v1/people/{person}/suspend"), json!({}))
        .await;
    assert_eq!(suspended.json["suspended"], true);
    assert_eq!(
        api.post("/v1/decisions", pin_at_door.clone()).await.json["reason_code"],
        "user_inactive"
    );
    api.post(&format!("/v1/people/{person}/suspend"), json!({}))
        .await
        .problem(409, None);
    api.post(&format!("/v1/people/{person}/unsuspend"), json!({}))
        .await
        .id();
    assert_eq!(
        api.post("/v1/decisions", pin_at_door.clone()).await.json["result"],
        "granted"
    );

    // Things still referred to cannot be deleted; once free they can.
    for (path, status) in [
        (format!("/v1/sites/{site}"), 409),
        (format!("/v1/facilities/{facility}"), 409),
        (format!("/v1/doors/{door}"), 409),
        (format!("/v1/groups/{group}"), 409),
        (format!("/v1/holiday-calendars/{calendar}"), 409),
    ] {
        api.delete(&path).await.problem(status, None);
    }
    assert_eq!(
        api.delete(&format!("/v1/groups/{group}/members/{person}"))
            .await
            .status,
        204
    );
    assert_eq!(desired_people(&api, terminal).await, Vec::<u64>::new());
    assert_eq!(
        api.delete(&format!("/v1/accesses/{access}")).await.status,
        204
    );
    assert_eq!(api.delete(&format!("/v1/groups/{group}")).await.status, 204);
    assert_eq!(
        api.delete(&format!("/v1/terminals/{terminal}"))
            .await
            .status,
        204
    );
    assert_eq!(api.delete(&format!("/v1/doors/{door}")).await.status, 204);
    assert_eq!(
        api.get(&format!("/v1/terminals/{terminal}")).await.status,
        404
    );

    // Deleting a person frees their acs_id.
    assert_eq!(
        api.delete(&format!("/v1/people/{person}")).await.status,
        204
    );
    api.get(&format!("/v1/people/{person}"))
        .await
        .problem(404, None);
    api.post("/v1/people", json!({"acs_id": "E-11"})).await.id();
}

#[tokio::test]
async fn a_method_a_resource_does_not_take_gets_a_problem_document() {
    let api = Api::start().await;
    let reply = api
        .send_as(Some(&api.key), "PATCH", "/v1/sites", Some(&json!({})), None)
        .await;
    assert_eq!(reply.status, 405, "{}", reply.json);
    assert_eq!(reply.content_type, "application/problem+json");
    assert_eq!(reply.json["type"], "urn:acs:problem:method-not-allowed");
    assert!(
        reply.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("PATCH")),
        "{}",
        reply.json
    );
}

#[tokio::test]
async fn access_events_and_people_are_filtered_and_a_person_is_found_by_acs_id() {
    let api = Api::start().await;
    let (_, _, door, _) = venue(&api).await;
    let (ana, ana_face) = enroll(&api, "E-2001").await;
    let (bea, bea_face) = enroll(&api, "E-2002").await;
    api.post("/v1/members", json!({"person_id": ana}))
        .await
        .id();
    // Ana is let in twice, Bea (no entitlement) is refused once.
    for face in [ana_face, bea_face, ana_face] {
        let decided = api
            .post(
                "/v1/decisions",
                json!({"door_id": door, "factors": [{"face": {"credential_id": face}}]}),
            )
            .await;
        assert_eq!(decided.status, 200, "{}", decided.json);
    }
    let count =
        |reply: &crate::api_support::Reply| reply.json["items"].as_array().map_or(0, Vec::len);
    assert_eq!(count(&api.get("/v1/access-events").await), 3);
    assert_eq!(count(&api.get("/v1/access-events?acs_id=E-2001").await), 2);
    assert_eq!(
        count(&api.get(&format!("/v1/access-events?person_id={bea}")).await),
        1
    );
    assert_eq!(count(&api.get("/v1/access-events?result=denied").await), 1);
    assert_eq!(
        count(
            &api.get(&format!("/v1/access-events?door_id={door}&result=granted"))
                .await
        ),
        2
    );
    assert_eq!(
        count(
            &api.get("/v1/access-events?until=2000-01-01T00:00:00Z")
                .await
        ),
        0
    );
    // A filtered page is filled from further events, and its cursor goes on.
    let first = api.get("/v1/access-events?acs_id=E-2001&limit=1").await;
    assert_eq!(count(&first), 1);
    let after = first.json["next_after"].as_u64().expect("a cursor");
    let second = api
        .get(&format!(
            "/v1/access-events?acs_id=E-2001&limit=1&after={after}"
        ))
        .await;
    assert_eq!(count(&second), 1);
    assert_ne!(first.json["items"][0]["id"], second.json["items"][0]["id"]);
    api.get("/v1/access-events?result=maybe")
        .await
        .problem(422, Some("result"));
    api.get("/v1/access-events?since=yesterday")
        .await
        .problem(422, Some("since"));

    assert_eq!(count(&api.get("/v1/people?acs_id=E-2002").await), 1);
    assert_eq!(count(&api.get("/v1/people?name_prefix=Nobody").await), 0);
    assert_eq!(count(&api.get("/v1/people?status=active").await), 2);
    api.get("/v1/people?status=gone")
        .await
        .problem(422, Some("status"));
    let found = api.get("/v1/people/by-acs-id/E-2002").await;
    assert_eq!(found.status, 200, "{}", found.json);
    assert_eq!(found.json["id"], bea);
    api.get("/v1/people/by-acs-id/E-9999")
        .await
        .problem(404, None);
}

#[tokio::test]
async fn a_persons_name_and_contact_are_patched_or_replaced() {
    let api = Api::start().await;
    let person = api
        .post(
            "/v1/people",
            json!({"acs_id": "E-3001", "name": "Ana", "email": "ana@example.com",
                   "phone_number": "+34600000001"}),
        )
        .await
        .id();
    let path = format!("/v1/people/{person}");
    let renamed = api
        .send_as(
            Some(&api.key),
            "PATCH",
            &path,
            Some(&json!({"name": "Ana María"})),
            None,
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.json);
    assert_eq!(renamed.json["name"], "Ana María");
    assert_eq!(renamed.json["email"], "ana@example.com", "untouched");
    let cleared = api
        .send_as(
            Some(&api.key),
            "PATCH",
            &path,
            Some(&json!({"email": null})),
            None,
        )
        .await;
    assert_eq!(cleared.json["email"], Json::Null);
    assert_eq!(cleared.json["phone_number"], "+34600000001");
    let replaced = api
        .send_as(
            Some(&api.key),
            "PUT",
            &path,
            Some(&json!({"name": "A. M."})),
            None,
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.json);
    assert_eq!(
        replaced.json["phone_number"],
        Json::Null,
        "PUT clears what it omits"
    );
    api.send_as(
        Some(&api.key),
        "PUT",
        &path,
        Some(&json!({"email": null})),
        None,
    )
    .await
    .problem(422, Some("name"));
    api.send_as(
        Some(&api.key),
        "PATCH",
        &path,
        Some(&json!({"email": 7})),
        None,
    )
    .await
    .problem(422, Some("email"));
    assert_eq!(
        api.get(&path).await.json["name"],
        "A. M.",
        "refusals changed nothing"
    );
}

#[tokio::test]
async fn a_failed_enrollment_is_a_problem_document_carrying_the_enrollment() {
    let api = Api::start().await;
    // Nothing listens there (loopback): the terminal does not answer.
    let (_, _, _, terminal) = crate::api_support::venue_at(&api, "http://127.0.0.1:9", "x").await;
    let person = api
        .post("/v1/people", json!({"acs_id": "E-4001", "name": "Dee"}))
        .await
        .id();
    let reply = api
        .post(
            &format!("/v1/terminals/{terminal}/enrollments"),
            json!({"person_id": person, "kind": "card", "sync": true}),
        )
        .await;
    assert_eq!(reply.status, 502, "{}", reply.json);
    assert_eq!(reply.content_type, "application/problem+json");
    assert_eq!(reply.json["type"], "urn:acs:problem:terminal-unavailable");
    assert_eq!(reply.json["enrollment"]["status"], "failed");
    assert_eq!(reply.json["enrollment"]["person_id"], person);
}
