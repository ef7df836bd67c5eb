//! Tenant isolation on every endpoint of the OpenAPI document (another tenant's ids answer
//! 404 and change nothing), and the document itself: every route the router serves is
//! documented and every documented operation exists.

use std::collections::BTreeSet;

use serde_json::{Value as Json, json};

use crate::api_support::{Api, face_b64, venue};

/// Tenant A's objects, one of each kind.
struct Objects {
    ids: Vec<(&'static str, u64)>,
    person: u64,
}

async fn one_of_everything(api: &Api) -> Objects {
    let (site, facility, door, terminal) = venue(api).await;
    let person = api
        .post("/v1/people", json!({"acs_id": "A-1", "selfie": face_b64()}))
        .await
        .id();
    let credential = api
        .post(
            &format!("/v1/people/{person}/credentials"),
            json!({"kind": "pin", "pin": "2468"}),
        )
        .await
        .id();
    let phone = api
        .post(&format!("/v1/people/{person}/phones"), json!({}))
        .await
        .id();
    let group = api
        .post(
            "/v1/groups",
            json!({"name": "Staff", "member_ids": [person]}),
        )
        .await
        .id();
    let calendar = api
        .post("/v1/holiday-calendars", json!({"name": "Holidays", "holidays": [{"name": "Xmas", "start": "2026-12-25", "classes": [1]}]}))
        .await
        .id();
    let schedule = api
        .post("/v1/schedules", json!({"name": "Always", "weekly_spans": [{"weekdays": ["mon"], "start": "00:00", "end": "24:00"}], "holiday_calendar_ids": [calendar]}))
        .await
        .id();
    let event = api
        .post("/v1/events", json!({"facility_id": facility, "starts_at": "2026-05-04T18:00:00Z", "ends_at": "2026-05-04T19:00:00Z"}))
        .await
        .id();
    api.post(
        &format!("/v1/events/{event}/attendees"),
        json!({"person_id": person}),
    )
    .await;
    let member = api
        .post("/v1/members", json!({"person_id": person}))
        .await
        .id();
    let access = api
        .post(
            "/v1/accesses",
            json!({"name": "A", "kind": "permanent", "schedule_id": schedule,
            "doors": [{"door_id": door, "in_auth_types": ["pin"]}], "group_ids": [group]}),
        )
        .await
        .id();
    let invitation = api
        .post(
            &format!("/v1/people/{person}/selfie-invitations"),
            json!({"send_by_text": true, "phone_number": "+34600123456"}),
        )
        .await;
    let keys = api.get("/v1/api-keys").await;
    let key = keys.json["items"][0]["id"].as_u64().expect("key id");
    let webhook = api
        .post(
            "/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/hook", "event_types": ["access.denied"]}),
        )
        .await
        .id();
    Objects {
        ids: vec![
            ("/v1/sites/", site),
            ("/v1/facilities/", facility),
            ("/v1/doors/", door),
            ("/v1/terminals/", terminal),
            ("/v1/people/", person),
            ("/v1/credentials/", credential),
            ("/v1/phones/", phone),
            ("/v1/groups/", group),
            ("/v1/holiday-calendars/", calendar),
            ("/v1/schedules/", schedule),
            ("/v1/events/", event),
            ("/v1/members/", member),
            ("/v1/accesses/", access),
            ("/v1/api-keys/", key),
            ("/v1/outbox/", 1),
            ("/v1/webhooks/", webhook),
            (
                "/v1/selfie-invitations/",
                invitation.json["id"].as_u64().unwrap_or(0),
            ),
        ],
        person,
    }
}

fn openapi() -> Json {
    serde_json::from_str(acs_core::http::OPENAPI).expect("openapi.json is JSON")
}

/// Every (method, path template) of the document's integrator API (`/v1`; the public
/// endpoints people reach through their links take no key and name no tenant's ids).
fn operations() -> Vec<(String, String)> {
    let doc = openapi();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.starts_with("/v1/") {
            continue;
        }
        for method in item.as_object().expect("path item").keys() {
            ops.push((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

/// A plausible body for an operation (the same as tenant A would send).
fn body_for(method: &str, path: &str, person: u64) -> Option<Json> {
    if method == "GET" || method == "DELETE" {
        return None;
    }
    Some(
        if path.ends_with("/attendees") || path.ends_with("/members") {
            json!({"person_id": person})
        } else if path.ends_with("/enrollments") {
            json!({"person_id": person, "kind": "card"})
        } else if path.ends_with("/credentials") {
            json!({"kind": "pin", "pin": "1357"})
        } else if path.ends_with("/selfie-invitations") {
            json!({"send_by_email": true, "email": "a@example.com"})
        } else if path.ends_with("/contact") {
            json!({"email": null})
        } else if path.ends_with("/revoke") {
            json!({"reason": "lost"})
        } else if path == "/v1/people/{id}" {
            json!({"name": "x"})
        } else if path.starts_with("/v1/accesses/") {
            json!({"name": "x", "kind": "permanent", "doors": [{"door_id": 1, "in_auth_types": ["pin"]}]})
        } else if method == "PUT" && path.starts_with("/v1/doors/") {
            json!({"facility_id": 1, "name": "x"})
        } else if method == "PUT" && path.starts_with("/v1/terminals/") {
            json!({"facility_id": 1, "model": "idface", "address": "http://127.0.0.1:9", "login": "admin"})
        } else {
            json!({})
        },
    )
}

#[tokio::test]
async fn another_tenants_ids_answer_404_on_every_endpoint_and_change_nothing() {
    let api = Api::start().await;
    let objects = one_of_everything(&api).await;
    let before = api
        .get(&format!("/v1/people/{}", objects.person))
        .await
        .json;
    let other = api.other_tenant("globex").await;
    let mut checked = 0;
    for (method, template) in operations() {
        if !template.contains('{') {
            continue;
        }
        let prefix = template.split('{').next().unwrap_or_default();
        // Addressed by the person's acs_id rather than an id.
        let id = if template.contains("{acs_id}") {
            objects.person
        } else {
            objects
                .ids
                .iter()
                .find(|(p, _)| *p == prefix)
                .map(|(_, id)| *id)
                .unwrap_or_else(|| panic!("no object for {template}"))
        };
        let path = template
            .replace("{acs_id}", "A-1")
            .replace("{id}", &id.to_string())
            .replace("{person_id}", &objects.person.to_string())
            .replace("{enrollment_id}", "1");
        let body = body_for(&method, &template, objects.person);
        let reply = api
            .send_as(Some(&other), &method, &path, body.as_ref(), None)
            .await;
        assert_eq!(
            reply.status, 404,
            "{method} {path} as another tenant: {}",
            reply.json
        );
        reply.problem(404, None);
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} operations with ids");
    // Tenant B sees empty lists, tenant A's data is untouched.
    for (method, template) in operations() {
        if method == "GET" && !template.contains('{') && !template.ends_with("/stream") {
            let reply = api
                .send_as(Some(&other), "GET", &template, None, None)
                .await;
            assert_eq!(reply.status, 200, "{template}");
            let items = reply.json["items"].as_array().expect("a page");
            let visible = if template == "/v1/api-keys" { 1 } else { 0 };
            assert_eq!(items.len(), visible, "{template}: {}", reply.json);
        }
    }
    assert_eq!(
        api.get(&format!("/v1/people/{}", objects.person))
            .await
            .json,
        before
    );
}

#[tokio::test]
async fn every_documented_operation_exists_and_needs_a_key() {
    let api = Api::start().await;
    for (method, template) in operations() {
        let path = template
            .replace("{id}", "1")
            .replace("{person_id}", "1")
            .replace("{enrollment_id}", "1");
        let reply = api.send_as(None, &method, &path, None, None).await;
        assert_eq!(reply.status, 401, "{method} {path}: {}", reply.json);
        reply.problem(401, None);
        let op = &openapi()["paths"][&template][method.to_lowercase()];
        assert!(
            op["summary"].is_string(),
            "{method} {template} has a summary"
        );
        assert!(
            op["responses"].is_object(),
            "{method} {template} has responses"
        );
    }
}

#[test]
fn every_route_of_the_router_is_documented() {
    let source = include_str!("../../src/http/mod.rs");
    // Routes of the `/v1` router come first, then those of the `/public` router.
    let (v1, public) = source
        .split_once("let public = Router::new()")
        .expect("the public router");
    let routes_of = |part: &str, prefix: &str| -> Vec<String> {
        part.split(".route(")
            .skip(1)
            .filter_map(|rest| rest.trim_start().strip_prefix('"'))
            .filter_map(|rest| rest.split('"').next())
            .filter(|path| path.starts_with('/') && *path != "/openapi.json")
            .map(|path| format!("{prefix}{path}"))
            .collect()
    };
    let routes: BTreeSet<String> = routes_of(v1, "/v1")
        .into_iter()
        .chain(routes_of(public, "/public"))
        .collect();
    let documented: BTreeSet<String> = openapi()["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect();
    assert_eq!(routes, documented);
}
