//! `/v1/members`: people with continuous access to the tenant's doors, or to the doors of
//! one facility. Removing a member keeps the record (its status says so).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::input::{Input, path_id};
use super::{PageQuery, create_about, get_one, list_query, snapshot_page};
use crate::app::{Caller, Core, Subject};
use crate::domain::{FacilityId, Membership, MembershipId, PersonId, Snapshot};
use crate::error::AppError;
use crate::store::Kind;

pub(crate) fn member_view(s: &Snapshot, m: &Membership) -> Json {
    json!({"id": m.id.get(), "person_id": m.person_id.get(),
           "acs_id": s.people.get(&m.person_id).map(|p| p.acs_id.as_str().to_owned()),
           "facility_id": m.facility_id.map(FacilityId::get),
           "created_at": m.created_at.to_string(),
           "removed_at": m.removed_at().map(|t| t.to_string())})
}

/// The body of `POST /v1/members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewMember {
    person_id: u64,
    /// Limits the membership to the doors within this facility; absent: the whole tenant.
    facility_id: Option<u64>,
}

/// `POST /v1/members` with `{"person_id", "facility_id"?}`: continuous access until
/// removed, on every terminal of the tenant or of the facility.
pub(crate) async fn create_member(
    State(core): State<Core>,
    caller: Caller,
    input: Input<NewMember>,
) -> Result<Response, AppError> {
    let person = PersonId::new(input.body.person_id);
    let facility = input.body.facility_id.map(FacilityId::new);
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
            if let Some(f) = facility
                && !s.topology.facilities.contains_key(&f)
            {
                return Err(AppError::invalid(
                    "facility_id",
                    format!("facility {f} does not exist"),
                ));
            }
            if let Some(m) = s.memberships.values().find(|m| {
                m.person_id == person && m.facility_id == facility && m.removed_at().is_none()
            }) {
                let of =
                    facility.map_or_else(|| "the tenant".to_owned(), |f| format!("facility {f}"));
                return Err(AppError::conflict(
                    Some("person_id"),
                    format!(
                        "person {person} is already a member of {of} (member {})",
                        m.id
                    ),
                ));
            }
            let mut member =
                Membership::new(MembershipId::new(plan.next_id()?), tenant, person, now);
            if let Some(f) = facility {
                member = member.within(f);
            }
            plan.audit("member.added", Kind::Membership, Some(member.id.get()));
            let view = member_view(s, &member);
            plan.put(member, None);
            Ok(view)
        },
    )
    .await
}

/// The query of `GET /v1/members`: a page, optionally only the memberships of one
/// facility or of one person.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MembersQuery {
    limit: Option<usize>,
    after: Option<u64>,
    facility_id: Option<u64>,
    person_id: Option<u64>,
}

/// `GET /v1/members` (removed ones included, with `removed_at`); `?facility_id=` lists
/// the members of one facility, `?person_id=` one person's memberships.
pub(crate) async fn list_members(
    State(core): State<Core>,
    caller: Caller,
    query: Result<Query<MembersQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let q = list_query(query)?;
    let page = PageQuery {
        limit: q.limit,
        after: q.after,
    };
    let facility = q.facility_id.map(FacilityId::new);
    let person = q.person_id.map(PersonId::new);
    snapshot_page(&core, &caller, page, |s| {
        Box::new(
            s.memberships
                .values()
                .filter(move |m| facility.is_none_or(|f| m.facility_id == Some(f)))
                .filter(move |m| person.is_none_or(|p| m.person_id == p))
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
