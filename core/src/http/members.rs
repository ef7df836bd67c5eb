//! `/v1/members`: people with continuous access to the tenant's doors. Removing a member
//! keeps the record (its status says so).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

use super::PageResult;
use super::input::{Input, PersonRef, path_id};
use super::list_page;
use super::{create_about, get_one};
use crate::app::{Caller, Core, Subject};
use crate::domain::{Membership, MembershipId, PersonId, Snapshot};
use crate::error::AppError;
use crate::store::Kind;

pub(crate) fn member_view(s: &Snapshot, m: &Membership) -> Json {
    json!({"id": m.id.get(), "person_id": m.person_id.get(),
           "acs_id": s.people.get(&m.person_id).map(|p| p.acs_id.as_str().to_owned()),
           "created_at": m.created_at.to_string(),
           "removed_at": m.removed_at().map(|t| t.to_string())})
}

/// `POST /v1/members` with `{"person_id"}`: continuous access on every terminal of the
/// tenant until removed.
pub(crate) async fn create_member(
    State(core): State<Core>,
    caller: Caller,
    input: Input<PersonRef>,
) -> Result<Response, AppError> {
    let person = PersonId::new(input.body.person_id);
    let tenant = caller.tenant;
    let now = core.now();
    let subjects = vec![Subject::Person(person)];
    create_about(
        &core,
        &caller,
        subjects,
        input.idempotency,
        1,
        move |s, plan| {
            if !s.people.contains_key(&person) {
                return Err(AppError::invalid(
                    "person_id",
                    format!("person {person} does not exist"),
                ));
            }
            if let Some(m) = s
                .memberships
                .values()
                .find(|m| m.person_id == person && m.removed_at().is_none())
            {
                return Err(AppError::conflict(
                    Some("person_id"),
                    format!("person {person} is already a member (member {})", m.id),
                ));
            }
            let member = Membership::new(MembershipId::new(plan.next_id()?), tenant, person, now);
            plan.audit("member.added", Kind::Membership, Some(member.id.get()));
            let view = member_view(s, &member);
            plan.put(member, None);
            Ok(view)
        },
    )
    .await
}

/// `GET /v1/members` (removed ones included, with `removed_at`).
pub(crate) async fn list_members(
    State(core): State<Core>,
    caller: Caller,
    query: PageResult,
) -> Result<Response, AppError> {
    list_page(&core, &caller, query, |s| {
        Box::new(
            s.memberships
                .values()
                .map(|m| (m.id.get(), member_view(s, m))),
        )
    })
    .await
}

/// `GET /v1/members/{id}`.
pub(crate) async fn get_member(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    get_one(&core, &caller, "member", &id, |s, id| {
        s.memberships
            .get(&MembershipId::new(id))
            .map(|m| member_view(s, m))
    })
    .await
}

/// `DELETE /v1/members/{id}`: access ends now on every terminal.
pub(crate) async fn remove_member(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = MembershipId::new(path_id("member", &id)?);
    let now = core.now();
    core.write(&caller, 0, move |s, plan| {
        let mut member = s
            .memberships
            .get(&id)
            .ok_or_else(|| AppError::not_found("member", id))?
            .clone();
        member
            .remove(now)
            .map_err(|_| AppError::invalid_state(format!("member {id} was already removed")))?;
        plan.audit("member.removed", Kind::Membership, Some(id.get()));
        plan.put(member, None);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
