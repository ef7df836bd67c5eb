//! `/v1/groups`: groups of people and their members.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::deletes;
use super::input::{Input, PersonRef, path_id};
use super::reads;
use super::{create_about, ok};
use crate::app::{Caller, Core, Subject};
use crate::domain::{Group, GroupId, PersonId};
use crate::error::AppError;
use crate::store::Kind;

use super::people::people_subjects;

fn group_view(g: &Group) -> Json {
    json!({"id": g.id.get(), "name": g.name,
           "member_ids": g.members.iter().map(|p| p.get()).collect::<Vec<_>>()})
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupIn {
    name: String,
    #[serde(default)]
    member_ids: Vec<u64>,
}

/// `POST /v1/groups`.
pub(crate) async fn create_group(
    State(core): State<Core>,
    caller: Caller,
    input: Input<GroupIn>,
) -> Result<Response, AppError> {
    let tenant = caller.tenant;
    let subjects = people_subjects(&input.body.member_ids);
    create_about(
        &core,
        &caller,
        subjects,
        input.idempotency,
        1,
        move |s, plan| {
            let mut group = Group::new(GroupId::new(plan.next_id()?), tenant, &input.body.name)?;
            for (i, raw) in input.body.member_ids.iter().enumerate() {
                let person = PersonId::new(*raw);
                if !s.people.contains_key(&person) {
                    return Err(AppError::invalid(
                        format!("member_ids[{i}]"),
                        format!("person {person} does not exist"),
                    ));
                }
                group.members.insert(person);
            }
            plan.audit("group.created", Kind::Group, Some(group.id.get()));
            let view = group_view(&group);
            plan.put(group, None);
            Ok(view)
        },
    )
    .await
}

reads! { list_groups, get_group, "group", GroupId, |s| s.groups, group_view }

deletes! { delete_group, Group, |s, id| s.groups.contains_key(&GroupId::new(id)), |s, id| {
    s.accesses
        .values()
        .find(|a| a.is_live() && a.group_ids.contains(&GroupId::new(id)))
        .map(|a| format!("access {}", a.id))
} }

/// `POST /v1/groups/{id}/members` with `{"person_id"}`.
pub(crate) async fn add_group_member(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<PersonRef>,
) -> Result<Response, AppError> {
    let id = GroupId::new(path_id("group", &id)?);
    let person = PersonId::new(input.body.person_id);
    let view = core
        .write_about(&caller, vec![Subject::Person(person)], 0, move |s, plan| {
            let mut group = s
                .groups
                .get(&id)
                .ok_or_else(|| AppError::not_found("group", id))?
                .clone();
            if !s.people.contains_key(&person) {
                return Err(AppError::invalid(
                    "person_id",
                    format!("person {person} does not exist"),
                ));
            }
            if !group.members.insert(person) {
                return Err(AppError::conflict(
                    Some("person_id"),
                    format!("person {person} is already a member of group {id}"),
                ));
            }
            plan.audit("group.member_added", Kind::Group, Some(id.get()));
            let view = group_view(&group);
            plan.put(group, None);
            Ok(view)
        })
        .await?;
    Ok(ok(view))
}

/// `DELETE /v1/groups/{id}/members/{person_id}`.
pub(crate) async fn remove_group_member(
    State(core): State<Core>,
    caller: Caller,
    Path((id, person)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let id = GroupId::new(path_id("group", &id)?);
    let person = PersonId::new(path_id("person", &person)?);
    core.write(&caller, 0, move |s, plan| {
        let mut group = s
            .groups
            .get(&id)
            .ok_or_else(|| AppError::not_found("group", id))?
            .clone();
        if !group.members.remove(&person) {
            return Err(AppError::not_found("member of group", person));
        }
        plan.audit("group.member_removed", Kind::Group, Some(id.get()));
        plan.put(group, None);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
