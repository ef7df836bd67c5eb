//! `/v1/people/{id}/phones` and `/v1/phones/{id}`: a person's phones for mobile keys, each
//! with an optional name and platform; adding, listing, renaming and deactivating one
//! keeps every phone's mobile key in step.

use axum::extract::{Path, State};
use axum::response::Response;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::PageResult;
use super::input::{Input, nullable_text, path_id, present};
use super::{create_about, ok, page_query};
use crate::app::{Caller, Core, Subject};
use crate::domain::{PersonId, Phone, PhoneId, Platform, Snapshot, phone_name};
use crate::error::AppError;
use crate::store::Kind;

use super::credentials::{Changed, sync_mobile_keys};
use super::people::person_of;

fn phone_view(p: &Phone) -> Json {
    json!({"id": p.id.get(), "person_id": p.person_id.get(), "active": p.active,
           "name": p.name, "platform": p.platform.map(Platform::as_str)})
}

/// The phone `id`, or 404.
fn phone_of(s: &Snapshot, id: PhoneId) -> Result<&Phone, AppError> {
    s.phones
        .get(&id)
        .ok_or_else(|| AppError::not_found("phone", id))
}

/// The body of `POST /v1/people/{id}/phones` (every member optional; `{}` is a phone
/// without name or platform).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPhone {
    name: Option<String>,
    platform: Option<String>,
}

/// The body of `PATCH /v1/phones/{id}`: an absent member stays, `null` clears it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PhoneChange {
    #[serde(default, deserialize_with = "present")]
    name: Option<Json>,
    #[serde(default, deserialize_with = "present")]
    platform: Option<Json>,
}

/// A name as given: validated ([`phone_name`]).
fn checked_name(text: Option<&str>) -> Result<Option<String>, AppError> {
    Ok(text.map(|t| phone_name("name", t)).transpose()?)
}

/// A platform as given: `ios` or `android`.
fn checked_platform(text: Option<&str>) -> Result<Option<Platform>, AppError> {
    Ok(text.map(|t| Platform::parse("platform", t)).transpose()?)
}

/// The access-control event of a phone's enrollment or deactivation.
fn phone_event(kind: &str, s: &Snapshot, phone: &Phone, now: Timestamp) -> Json {
    json!({"type": kind, "occurred_at": now.to_string(), "phone_id": phone.id.get(),
           "person_id": phone.person_id.get(),
           "acs_id": s.people.get(&phone.person_id).map(|p| p.acs_id.as_str())})
}

/// `POST /v1/people/{id}/phones`: registers a phone; every mobile key of the person is
/// issued to it.
pub(crate) async fn add_phone(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<NewPhone>,
) -> Result<Response, AppError> {
    let name = checked_name(input.body.name.as_deref())?;
    let platform = checked_platform(input.body.platform.as_deref())?;
    let person_id = PersonId::new(path_id("person", &id)?);
    let now = core.now();
    let subjects = vec![Subject::Person(person_id)];
    create_about(
        &core,
        &caller,
        subjects,
        input.idempotency,
        64,
        move |s, plan| {
            person_of(s, person_id)?;
            let phone = Phone {
                id: PhoneId::new(plan.next_id()?),
                person_id,
                active: true,
                name: name.clone(),
                platform,
            };
            plan.audit("phone.added", Kind::Phone, Some(phone.id.get()));
            plan.access_event(now, phone_event("phone.enrolled", s, &phone, now));
            plan.put(phone.clone(), None);
            sync_mobile_keys(s, Changed::Phone(&phone), plan, person_id, now)?;
            Ok(phone_view(&phone))
        },
    )
    .await
}

/// `GET /v1/people/{id}/phones`.
pub(crate) async fn list_phones(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    query: PageResult,
) -> Result<Response, AppError> {
    let id = PersonId::new(path_id("person", &id)?);
    let q = page_query(query)?;
    core.read_about(caller.tenant, vec![Subject::Person(id)], |s| {
        person_of(s, id)?;
        q.page(
            s.phones
                .values()
                .filter(|p| p.person_id == id)
                .map(|p| (p.id.get(), phone_view(p))),
        )
    })
    .await?
    .map(ok)
}

/// `GET /v1/phones/{id}`.
pub(crate) async fn get_phone(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = PhoneId::new(path_id("phone", &id)?);
    core.read_about(caller.tenant, vec![Subject::Phone(id)], |s| {
        phone_of(s, id).map(phone_view)
    })
    .await?
    .map(ok)
}

/// `PATCH /v1/phones/{id}`: renames the phone or changes its platform (`null` clears);
/// access is unaffected.
pub(crate) async fn patch_phone(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<PhoneChange>,
) -> Result<Response, AppError> {
    let id = PhoneId::new(path_id("phone", &id)?);
    let name = nullable_text("name", input.body.name.as_ref())?
        .map(|n| checked_name(n.as_deref()))
        .transpose()?;
    let platform = nullable_text("platform", input.body.platform.as_ref())?
        .map(|p| checked_platform(p.as_deref()))
        .transpose()?;
    let view = core
        .write_about(&caller, vec![Subject::Phone(id)], 0, move |s, plan| {
            let mut phone = phone_of(s, id)?.clone();
            if let Some(name) = name {
                phone.name = name;
            }
            if let Some(platform) = platform {
                phone.platform = platform;
            }
            plan.audit("phone.updated", Kind::Phone, Some(id.get()));
            let view = phone_view(&phone);
            plan.put(phone, None);
            Ok(view)
        })
        .await?;
    Ok(ok(view))
}

/// `POST /v1/phones/{id}/deactivate`: the phone's mobile-key copies are revoked.
pub(crate) async fn deactivate_phone(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = PhoneId::new(path_id("phone", &id)?);
    let now = core.now();
    let view = core
        .write_about(&caller, vec![Subject::Phone(id)], 0, move |s, plan| {
            let mut phone = phone_of(s, id)?.clone();
            if !phone.active {
                return Err(AppError::invalid_state(format!(
                    "phone {id} is already inactive"
                )));
            }
            phone.active = false;
            plan.audit("phone.deactivated", Kind::Phone, Some(id.get()));
            plan.access_event(now, phone_event("phone.deactivated", s, &phone, now));
            plan.put(phone.clone(), None);
            sync_mobile_keys(s, Changed::Phone(&phone), plan, phone.person_id, now)?;
            Ok(phone_view(&phone))
        })
        .await?;
    Ok(ok(view))
}
