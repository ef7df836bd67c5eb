//! `/v1/people`: enrolling a person (with a selfie: a face credential issued but not
//! distributed until an entitlement covers them), listing, reading, suspending, deleting,
//! their contact and their selfie.

use std::io::Cursor;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::input::{Input, nullable_text, opt_instant, path_id, present};
use super::{create, ok};
use crate::app::{Caller, Core, Plan, Subject};
use crate::domain::{
    AcsId, Contact, Credential, CredentialId, CredentialValue, Invitation, Person, PersonId, Phone,
    Snapshot, check_can_issue,
};
use crate::error::AppError;
use crate::records::Stored as _;
use crate::store::{Blob, Kind};

use super::credentials::{credential_view, issue_problem};

/// Longest display name of a person (it becomes the terminal's `users.name`).
pub(crate) const MAX_PERSON_NAME: usize = 200;
/// Largest selfie accepted, decoded.
pub(crate) const MAX_SELFIE_BYTES: usize = 2 * 1024 * 1024;
/// Smallest and largest selfie side, in pixels.
pub(crate) const SELFIE_SIDE: std::ops::RangeInclusive<u32> = 64..=4096;

/// Checks a base64 selfie and returns its JPEG bytes; errors name `field`.
pub(crate) fn decode_selfie(field: &str, b64: &str) -> Result<Vec<u8>, AppError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| AppError::invalid(field, format!("{field} is not valid base64")))?;
    if bytes.len() > MAX_SELFIE_BYTES {
        return Err(AppError::invalid(
            field,
            format!("{field} must be at most {MAX_SELFIE_BYTES} bytes"),
        ));
    }
    let reader = image::ImageReader::new(Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|_| AppError::invalid(field, format!("{field} is not a JPEG image")))?;
    if reader.format() != Some(image::ImageFormat::Jpeg) {
        return Err(AppError::invalid(
            field,
            format!("{field} is not a JPEG image"),
        ));
    }
    let (w, h) = reader
        .into_dimensions()
        .map_err(|_| AppError::invalid(field, format!("{field} is not a readable JPEG image")))?;
    if !SELFIE_SIDE.contains(&w) || !SELFIE_SIDE.contains(&h) {
        return Err(AppError::invalid(
            field,
            format!(
                "{field} must be between {} and {} pixels on each side (got {w}×{h})",
                SELFIE_SIDE.start(),
                SELFIE_SIDE.end()
            ),
        ));
    }
    Ok(bytes)
}

pub(crate) fn person_view(p: &Person) -> Json {
    json!({"id": p.id.get(), "acs_id": p.acs_id.as_str(), "name": p.name,
           "email": p.contact.email, "phone_number": p.contact.phone_number,
           "valid_from": p.validity.from().map(|t| t.to_string()),
           "valid_to": p.validity.to().map(|t| t.to_string()),
           "enabled": p.enabled, "suspended": p.is_suspended()})
}

/// Checks contact details (fields `email`, `phone_number`).
fn contact(email: Option<&str>, phone_number: Option<&str>) -> Result<Contact, AppError> {
    Ok(Contact {
        email: email.map(Contact::parse_email).transpose()?,
        phone_number: phone_number.map(Contact::parse_phone_number).transpose()?,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactIn {
    email: Option<String>,
    phone_number: Option<String>,
}

/// `PUT /v1/people/{id}/contact` with `{"email", "phone_number"}` (either may be `null`):
/// where the person's messages go.
pub(crate) async fn set_contact(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<ContactIn>,
) -> Result<Response, AppError> {
    let id = PersonId::new(path_id("person", &id)?);
    let contact = contact(
        input.body.email.as_deref(),
        input.body.phone_number.as_deref(),
    )?;
    let view = core
        .write_about(&caller, vec![Subject::Person(id)], 0, move |s, plan| {
            let mut person = person_of(s, id)?.clone();
            person.contact = contact;
            plan.audit("person.updated", Kind::Person, Some(id.get()));
            let view = person_view(&person);
            plan.put(person, None);
            Ok(view)
        })
        .await?;
    Ok(ok(view))
}

/// `PATCH` / `PUT /v1/people/{id}` body: the name and contact. With `PATCH` an absent
/// member stays as it is (`null` clears `email` or `phone_number`); with `PUT` every
/// member is given and an absent contact member is cleared.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PersonChange {
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    email: Option<Json>,
    #[serde(default, deserialize_with = "present")]
    phone_number: Option<Json>,
}

/// `PATCH /v1/people/{id}`: changes the members given (name, email, phone number).
pub(crate) async fn patch_person(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<PersonChange>,
) -> Result<Response, AppError> {
    change_name_and_contact(core, caller, &id, input.body, false).await
}

/// `PUT /v1/people/{id}`: replaces the name and contact (`name` required; an absent
/// `email` or `phone_number` is cleared).
pub(crate) async fn put_person(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<PersonChange>,
) -> Result<Response, AppError> {
    if input.body.name.is_none() {
        return Err(AppError::invalid("name", "name is required"));
    }
    change_name_and_contact(core, caller, &id, input.body, true).await
}

async fn change_name_and_contact(
    core: Core,
    caller: Caller,
    id: &str,
    body: PersonChange,
    replace: bool,
) -> Result<Response, AppError> {
    let id = PersonId::new(path_id("person", id)?);
    if let Some(name) = &body.name
        && name.chars().count() > MAX_PERSON_NAME
    {
        return Err(AppError::invalid(
            "name",
            format!("name must be at most {MAX_PERSON_NAME} characters"),
        ));
    }
    let email = nullable_text("email", body.email.as_ref())?;
    let phone = nullable_text("phone_number", body.phone_number.as_ref())?;
    let view = core
        .write_about(&caller, vec![Subject::Person(id)], 0, move |s, plan| {
            let mut person = person_of(s, id)?.clone();
            if let Some(name) = body.name {
                person.name = name;
            }
            let keep = |given: Option<Option<String>>, current: &Option<String>| match given {
                Some(value) => value,
                None if replace => None,
                None => current.clone(),
            };
            let email = keep(email, &person.contact.email);
            let phone = keep(phone, &person.contact.phone_number);
            person.contact = contact(email.as_deref(), phone.as_deref())?;
            plan.audit("person.updated", Kind::Person, Some(id.get()));
            let view = person_view(&person);
            plan.put(person, None);
            Ok(view)
        })
        .await?;
    Ok(ok(view))
}

/// The subjects of a list of person ids given in a request.
pub(crate) fn people_subjects(ids: &[u64]) -> Vec<Subject> {
    ids.iter()
        .map(|id| Subject::Person(PersonId::new(*id)))
        .collect()
}

pub(crate) fn person_of(s: &Snapshot, id: PersonId) -> Result<&Person, AppError> {
    s.people
        .get(&id)
        .ok_or_else(|| AppError::not_found("person", id))
}

/// Issues a face credential from selfie bytes (issued, not distributed). A person just
/// created has no face yet, so only an existing person is checked (the store's unique
/// key backs the rule either way).
pub(crate) fn issue_face(
    s: &Snapshot,
    plan: &mut Plan,
    person: &Person,
    jpeg: Vec<u8>,
    at: Timestamp,
) -> Result<Credential, AppError> {
    let id = CredentialId::new(plan.next_id()?);
    let value = CredentialValue::face(&format!("selfie:{id}"))?;
    if s.people.contains_key(&person.id) {
        check_can_issue(s.credentials.values(), person.tenant_id, person.id, &value)
            .map_err(issue_problem)?;
    }
    let credential = Credential::issue(id, person.tenant_id, person.id, value, at);
    plan.audit("credential.issued", Kind::Credential, Some(id.get()));
    plan.put(
        credential.clone(),
        Some(Blob {
            media_type: "image/jpeg".into(),
            bytes: jpeg,
        }),
    );
    Ok(credential)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnrollIn {
    acs_id: String,
    #[serde(default)]
    name: String,
    email: Option<String>,
    phone_number: Option<String>,
    selfie: Option<String>,
    valid_from: Option<String>,
    valid_to: Option<String>,
}

/// `POST /v1/people`: `acs_id` (+ optional base64 `selfie`) → the person, and the face
/// credential issued but not distributed.
pub(crate) async fn enroll(
    State(core): State<Core>,
    caller: Caller,
    input: Input<EnrollIn>,
) -> Result<Response, AppError> {
    let body = input.body;
    // Decode outside the tenant's write turn: checking an image is the slow part.
    let jpeg = body
        .selfie
        .as_deref()
        .map(|b| decode_selfie("selfie", b))
        .transpose()?;
    let acs_id = AcsId::parse(&body.acs_id)?;
    if body.name.chars().count() > MAX_PERSON_NAME {
        return Err(AppError::invalid(
            "name",
            format!("name must be at most {MAX_PERSON_NAME} characters"),
        ));
    }
    let contact = contact(body.email.as_deref(), body.phone_number.as_deref())?;
    let valid_from = opt_instant("valid_from", body.valid_from.as_deref())?;
    let valid_to = opt_instant("valid_to", body.valid_to.as_deref())?;
    let tenant = caller.tenant;
    let now = core.now();
    create(&core, &caller, input.idempotency, 2, move |s, plan| {
        // Uniqueness of the acs_id is the store's unique key (409 naming `acs_id`): a scan
        // of every person here would make enrollment slower as the tenant grows.
        let mut person = Person::new(PersonId::new(plan.next_id()?), tenant, acs_id, &body.name)
            .with_validity(valid_from, valid_to)?;
        person.contact = contact;
        plan.audit("person.created", Kind::Person, Some(person.id.get()));
        let mut view = person_view(&person);
        plan.put(person.clone(), None);
        let mut credentials = Vec::new();
        if let Some(jpeg) = jpeg {
            let face = issue_face(s, plan, &person, jpeg, now)?;
            credentials.push(
                json!({"id": face.id.get(), "kind": "face", "status": "disabled",
                                    "disable_reasons": ["needs_provisioning"]}),
            );
        }
        view["credentials"] = json!(credentials);
        Ok(view)
    })
    .await
}

/// `GET /v1/people`: paged from the store, which holds everyone (the snapshot holds only
/// the entitled).
pub(crate) async fn list_people(
    State(core): State<Core>,
    caller: Caller,
    query: Result<axum::extract::Query<PeopleQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let q = super::list_query(query)?;
    if let Some(status) = &q.status
        && !matches!(status.as_str(), "active" | "suspended")
    {
        return Err(AppError::invalid(
            "status",
            "status must be active or suspended",
        ));
    }
    let page = super::PageQuery {
        limit: q.limit,
        after: q.after,
    };
    let (after, limit) = page.window()?;
    let matches = |p: &Person| {
        q.acs_id.as_deref().is_none_or(|a| p.acs_id.as_str() == a)
            && q.name_prefix
                .as_deref()
                .is_none_or(|prefix| p.name.starts_with(prefix))
            && q.status
                .as_deref()
                .is_none_or(|s| (s == "suspended") == p.is_suspended())
    };
    let mut people = Vec::new();
    let mut cursor = after;
    let mut scanned = 0;
    // People are paged from the store (most of them are not in memory); a filtered page is
    // filled from as many stored pages as it takes, within a bound per request.
    loop {
        let records = core
            .stored_page(caller.tenant, Kind::Person, cursor, STORED_BATCH)
            .await?;
        let exhausted = records.len() < STORED_BATCH;
        for record in &records {
            cursor = record.id;
            scanned += 1;
            let person =
                Person::from_document(caller.tenant, record.id, &record.data).map_err(|e| {
                    tracing::error!(error = %e, "stored person unreadable");
                    AppError::internal()
                })?;
            if matches(&person) {
                people.push((record.id, person_view(&person)));
            }
            if people.len() > limit {
                break;
            }
        }
        if people.len() > limit || exhausted || scanned >= SCAN_LIMIT {
            break;
        }
    }
    page.page(people).map(ok)
}

/// People read per store query while a filtered page fills.
const STORED_BATCH: usize = 200;
/// People one request reads at most.
const SCAN_LIMIT: usize = 20_000;

/// `GET /v1/people` query: the page and optional filters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PeopleQuery {
    limit: Option<usize>,
    after: Option<u64>,
    /// Exactly this `acs_id`.
    acs_id: Option<String>,
    /// Names starting with this text.
    name_prefix: Option<String>,
    /// `active` or `suspended`.
    status: Option<String>,
}

/// `GET /v1/people/by-acs-id/{acs_id}`: the person with that `acs_id`, or 404.
pub(crate) async fn get_person_by_acs_id(
    State(core): State<Core>,
    caller: Caller,
    Path(acs_id): Path<String>,
) -> Result<Response, AppError> {
    let wanted = acs_id.clone();
    core.read_about(
        caller.tenant,
        vec![Subject::Claim("acs_id", acs_id.clone())],
        move |s| {
            s.people
                .values()
                .find(|p| p.acs_id.as_str() == wanted)
                .map(person_view)
        },
    )
    .await?
    .map(ok)
    .ok_or_else(|| AppError::not_found("person with acs_id", acs_id))
}

/// `GET /v1/people/{id}`.
pub(crate) async fn get_person(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = PersonId::new(path_id("person", &id)?);
    let now = core.now();
    core.read_about(caller.tenant, vec![Subject::Person(id)], |s| {
        s.people.get(&id).map(|p| {
            let mut view = person_view(p);
            view["credentials"] = s
                .credentials
                .values()
                .filter(|c| c.person_id == id && !c.is_deleted())
                .map(|c| credential_view(s, c, now))
                .collect();
            view
        })
    })
    .await?
    .map(ok)
    .ok_or_else(|| AppError::not_found("person", id))
}

/// `DELETE /v1/people/{id}`: the person's credentials are deleted, their memberships
/// removed, and they leave every event, group and access.
pub(crate) async fn delete_person(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = PersonId::new(path_id("person", &id)?);
    let now = core.now();
    core.write_about(&caller, vec![Subject::Person(id)], 0, move |s, plan| {
        person_of(s, id)?;
        for c in s.credentials.values().filter(|c| c.person_id == id) {
            plan.delete::<Credential>(c.id.get());
        }
        for p in s.phones.values().filter(|p| p.person_id == id) {
            plan.delete::<Phone>(p.id.get());
        }
        for i in s.invitations.values().filter(|i| i.person_id == id) {
            plan.delete::<Invitation>(i.id.get());
        }
        for m in s.memberships.values().filter(|m| m.person_id == id) {
            let mut m = m.clone();
            if m.is_active_at(now) || m.removed_at().is_none() {
                let _ = m.remove(now);
                plan.put(m, None);
            }
        }
        for e in s.events.values().filter(|e| e.is_attendee(id)) {
            let mut e = e.clone();
            let _ = e.remove_attendee(id);
            plan.put(e, None);
        }
        for g in s.groups.values().filter(|g| g.members.contains(&id)) {
            let mut g = g.clone();
            g.members.remove(&id);
            plan.put(g, None);
        }
        for a in s.accesses.values().filter(|a| a.person_ids.contains(&id)) {
            let mut a = a.clone();
            a.person_ids.remove(&id);
            plan.put(a, None);
        }
        plan.audit("person.deleted", Kind::Person, Some(id.get()));
        plan.delete::<Person>(id.get());
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn change_person(
    core: &Core,
    caller: &Caller,
    id: &str,
    action: &'static str,
    change: fn(&mut Person) -> Result<(), crate::domain::PersonError>,
) -> Result<Response, AppError> {
    let id = PersonId::new(path_id("person", id)?);
    let view = core
        .write_about(caller, vec![Subject::Person(id)], 0, move |s, plan| {
            let mut person = person_of(s, id)?.clone();
            change(&mut person).map_err(|e| AppError::invalid_state(e.to_string()))?;
            plan.audit(action, Kind::Person, Some(id.get()));
            let view = person_view(&person);
            plan.put(person, None);
            Ok(view)
        })
        .await?;
    Ok(ok(view))
}

/// `POST /v1/people/{id}/suspend`.
pub(crate) async fn suspend_person(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    change_person(&core, &caller, &id, "person.suspended", Person::suspend).await
}

/// `POST /v1/people/{id}/unsuspend`.
pub(crate) async fn unsuspend_person(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    change_person(&core, &caller, &id, "person.unsuspended", Person::unsuspend).await
}

/// `GET /v1/people/{id}/selfie`: the JPEG of the person's live face credential.
pub(crate) async fn selfie(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = PersonId::new(path_id("person", &id)?);
    let face = core
        .read_about(caller.tenant, vec![Subject::Person(id)], |s| {
            s.credentials
                .values()
                .find(|c| {
                    c.person_id == id
                        && c.is_live()
                        && matches!(c.value, CredentialValue::Face { .. })
                })
                .map(|c| c.id)
        })
        .await?
        .ok_or_else(|| AppError::not_found("selfie of person", id))?;
    let blob = core
        .blob(caller.tenant, face.get())
        .await?
        .ok_or_else(|| AppError::not_found("selfie of person", id))?;
    Ok(([(header::CONTENT_TYPE, blob.media_type)], blob.bytes).into_response())
}
