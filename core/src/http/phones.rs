//! `/v1/people/{id}/phones` and `/v1/phones/{id}`: a person's phones for mobile keys;
//! adding, listing and deactivating one keeps every phone's mobile key in step.

use axum::extract::{Path, State};
use axum::response::Response;
use jiff::Timestamp;
use serde_json::{Value as Json, json};

use super::PageResult;
use super::input::{Input, path_id};
use super::{create_about, ok, page_query};
use crate::app::{Caller, Core, Subject};
use crate::domain::{PersonId, Phone, PhoneId, Snapshot};
use crate::error::AppError;
use crate::store::Kind;

use super::credentials::{Changed, sync_mobile_keys};
use super::people::person_of;

fn phone_view(p: &Phone) -> Json {
    json!({"id": p.id.get(), "person_id": p.person_id.get(), "active": p.active})
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
    input: Input<Json>,
) -> Result<Response, AppError> {
    if !input
        .body
        .as_object()
        .is_some_and(serde_json::Map::is_empty)
    {
        return Err(AppError::malformed("the body must be an empty object"));
    }
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
            let mut phone = s
                .phones
                .get(&id)
                .ok_or_else(|| AppError::not_found("phone", id))?
                .clone();
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
