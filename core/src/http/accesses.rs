//! `/v1/accesses`: permanent or temporary accesses of people and groups to doors, with
//! schedules and the auth types each door takes; their provisioning status (`expired`
//! once `valid_to` has passed). Deleting an access keeps the record (its status says so).
//!
//! A door entry without `in_auth_types` (or `out_auth_types`) enables every auth type the
//! door takes in that direction; the view shows the auth types each entry enables now. A
//! permit that could never grant anything is refused naming the field: a door entry
//! listing no auth type in either direction, or a `valid_to` already past.
//!
//! An access with a `site_id` covers every door of that site, doors added later included;
//! its `doors` (optional then) only say what is enabled at some of them. The list filters
//! by site (`?site_id=`: accesses covering a site or listing its doors) and by door
//! (`?door_id=`: accesses covering the door).

use std::collections::BTreeSet;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::input::{
    ACCESS_KINDS, EFFECTS, Input, auth_types, name_of, named, opt_instant, path_id,
};
use super::people::people_subjects;
use super::{PageQuery, create_about, get_one, list_query, ok, snapshot_page};
use crate::app::{Caller, Core};
use crate::domain::{
    Access, AccessDoor, AccessId, AccessSpec, Direction, DoorId, Effect, GroupId, InvalidField,
    PersonId, Problem, ProvisioningStatus, ScheduleId, SiteId, Snapshot, Topology,
    enabled_auth_types, validate_access_doors,
};
use crate::error::AppError;
use crate::store::Kind;

/// The status an access shows at `at`: `expired` once `valid_to` has passed, else its
/// provisioning status.
pub(crate) fn access_status(a: &Access, at: Timestamp) -> &'static str {
    if a.is_expired_at(at) {
        "expired"
    } else {
        status_name(a.status)
    }
}

pub(crate) fn status_name(s: ProvisioningStatus) -> &'static str {
    match s {
        ProvisioningStatus::Initial => "initial",
        ProvisioningStatus::Creating => "creating",
        ProvisioningStatus::Ready => "ready",
        ProvisioningStatus::Updating => "updating",
        ProvisioningStatus::Deleting => "deleting",
        ProvisioningStatus::Deleted => "deleted",
    }
}

/// An access as integrators see it at `at`: each door entry with the auth types it enables
/// there now (those listed that the door takes, or all the door takes where it lists none).
pub(crate) fn access_view(topology: &Topology, a: &Access, at: Timestamp) -> Json {
    let ids = |set: &BTreeSet<PersonId>| set.iter().map(|p| p.get()).collect::<Vec<_>>();
    let enabled = |d: &AccessDoor, direction| -> Vec<&str> {
        match topology.doors.get(&d.door_id) {
            Some(door) => enabled_auth_types(topology, door, direction, Some(d))
                .iter()
                .map(|t| t.name())
                .collect(),
            None => Vec::new(),
        }
    };
    json!({"id": a.id.get(), "name": a.name, "kind": name_of(a.kind, ACCESS_KINDS),
        "effect": name_of(a.effect, EFFECTS), "status": access_status(a, at),
        "valid_from": a.validity.from().map(|t| t.to_string()),
        "valid_to": a.validity.to().map(|t| t.to_string()),
        "schedule_id": a.schedule_id.map(ScheduleId::get),
        "site_id": a.site_id.map(SiteId::get),
        "doors": a.doors.iter().map(|d| json!({"door_id": d.door_id.get(), "lock_unlock": d.lock_unlock,
            "in_auth_types": enabled(d, Direction::In),
            "out_auth_types": enabled(d, Direction::Out)})).collect::<Vec<_>>(),
        "person_ids": ids(&a.person_ids),
        "group_ids": a.group_ids.iter().map(|g| g.get()).collect::<Vec<_>>(),
        "welcome_email_required": a.welcome_email_required})
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessDoorIn {
    door_id: u64,
    #[serde(default)]
    lock_unlock: bool,
    /// Missing or `null`: every auth type the door takes.
    in_auth_types: Option<Vec<String>>,
    /// Missing or `null`: every auth type the door takes.
    out_auth_types: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessIn {
    name: String,
    kind: String,
    effect: Option<String>,
    valid_from: Option<String>,
    valid_to: Option<String>,
    schedule_id: Option<u64>,
    /// Every door of this site, doors added later included.
    site_id: Option<u64>,
    #[serde(default)]
    doors: Vec<AccessDoorIn>,
    #[serde(default)]
    person_ids: Vec<u64>,
    #[serde(default)]
    group_ids: Vec<u64>,
    #[serde(default)]
    welcome_email_required: bool,
}

/// Welcome messages for the people `access` applies to that `before` did not (all of them
/// for a new access), when the access asks for them.
pub(crate) fn welcome(
    s: &Snapshot,
    plan: &mut crate::app::Plan,
    before: Option<&Access>,
    access: &Access,
    now: Timestamp,
) {
    if !access.welcome_email_required || access.effect != Effect::Permit {
        return;
    }
    let had = before.map(|b| s.access_subjects(b)).unwrap_or_default();
    for person in s.access_subjects(access).difference(&had) {
        if let Some(person) = s.people.get(person) {
            for message in crate::notify::compose::welcome_access(person, access, now) {
                plan.message(message);
            }
        }
    }
}

/// Checks an access request against the tenant's objects at `now` and builds the access.
pub(crate) fn build_access(
    s: &Snapshot,
    id: AccessId,
    body: &AccessIn,
    tenant: crate::domain::TenantId,
    now: Timestamp,
) -> Result<Access, AppError> {
    let kind = named("kind", &body.kind, ACCESS_KINDS)?;
    let effect = match body.effect.as_deref() {
        None => Effect::Permit,
        Some(e) => named("effect", e, EFFECTS)?,
    };
    let listed = |field: String, names: &Option<Vec<String>>| -> Result<_, AppError> {
        names
            .as_ref()
            .map(|names| Ok(auth_types(&field, names)?.into_iter().collect()))
            .transpose()
    };
    let mut doors = Vec::new();
    for (i, d) in body.doors.iter().enumerate() {
        doors.push(AccessDoor {
            door_id: DoorId::new(d.door_id),
            lock_unlock: d.lock_unlock,
            in_auth_types: listed(format!("doors[{i}].in_auth_types"), &d.in_auth_types)?,
            out_auth_types: listed(format!("doors[{i}].out_auth_types"), &d.out_auth_types)?,
        });
    }
    let site_id = body.site_id.map(SiteId::new);
    if let Some(site) = site_id
        && !s.topology.sites.contains_key(&site)
    {
        return Err(AppError::invalid(
            "site_id",
            format!("site {site} does not exist"),
        ));
    }
    let doors_site = validate_access_doors(&s.topology, effect, &doors)?;
    if let (Some(site), Some(of_doors)) = (site_id, doors_site)
        && site != of_doors
    {
        let i = doors
            .iter()
            .position(|d| s.topology.site_of_door(d.door_id).map(|x| x.id) != Some(site))
            .unwrap_or(0);
        return Err(InvalidField::new(format!("doors[{i}].door_id"), Problem::OtherSite).into());
    }
    let schedule_id = body.schedule_id.map(ScheduleId::new);
    if let Some(sid) = schedule_id
        && !s.schedules.contains_key(&sid)
    {
        return Err(AppError::invalid(
            "schedule_id",
            format!("schedule {sid} does not exist"),
        ));
    }
    let mut person_ids = BTreeSet::new();
    for (i, raw) in body.person_ids.iter().enumerate() {
        let p = PersonId::new(*raw);
        if !s.people.contains_key(&p) {
            return Err(AppError::invalid(
                format!("person_ids[{i}]"),
                format!("person {p} does not exist"),
            ));
        }
        person_ids.insert(p);
    }
    let mut group_ids = BTreeSet::new();
    for (i, raw) in body.group_ids.iter().enumerate() {
        let g = GroupId::new(*raw);
        if !s.groups.contains_key(&g) {
            return Err(AppError::invalid(
                format!("group_ids[{i}]"),
                format!("group {g} does not exist"),
            ));
        }
        group_ids.insert(g);
    }
    let mut access = Access::new(
        id,
        AccessSpec {
            tenant_id: tenant,
            name: body.name.clone(),
            kind,
            effect,
            valid_from: opt_instant("valid_from", body.valid_from.as_deref())?,
            valid_to: opt_instant("valid_to", body.valid_to.as_deref())?,
            schedule_id,
            site_id,
            doors,
            person_ids,
            group_ids,
        },
    )?;
    access.welcome_email_required = body.welcome_email_required;
    if access.is_expired_at(now) {
        return Err(AppError::invalid(
            "valid_to",
            "valid_to must be in the future: an access that has ended could never grant or \
             block anything",
        ));
    }
    Ok(access)
}

pub(crate) fn advance(access: &mut Access, path: &[ProvisioningStatus]) {
    for next in path {
        if let Ok(s) = access.status.transition(*next) {
            access.status = s;
        }
    }
}

/// `POST /v1/accesses`: permanent or temporary (`valid_to` required), permit or deny,
/// doors with in/out auth types the doors support, people and groups, a schedule.
pub(crate) async fn create_access(
    State(core): State<Core>,
    caller: Caller,
    input: Input<AccessIn>,
) -> Result<Response, AppError> {
    let tenant = caller.tenant;
    let now = core.now();
    let subjects = people_subjects(&input.body.person_ids);
    create_about(
        &core,
        &caller,
        subjects,
        input.idempotency,
        1,
        move |s, plan| {
            let mut access =
                build_access(s, AccessId::new(plan.next_id()?), &input.body, tenant, now)?;
            welcome(s, plan, None, &access, now);
            // Committed is provisioned until the sync engine reports per terminal.
            advance(
                &mut access,
                &[ProvisioningStatus::Creating, ProvisioningStatus::Ready],
            );
            plan.audit("access.created", Kind::Access, Some(access.id.get()));
            let view = access_view(&s.topology, &access, now);
            plan.put(access, None);
            Ok(view)
        },
    )
    .await
}

/// The query of `GET /v1/accesses`: a page, optionally only the accesses of a site or
/// covering a door.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessesQuery {
    limit: Option<usize>,
    after: Option<u64>,
    site_id: Option<u64>,
    door_id: Option<u64>,
}

/// `GET /v1/accesses`: a page of the list; `?site_id=` the accesses in a site (covering it
/// or listing its doors), `?door_id=` those covering a door.
pub(crate) async fn list_accesses(
    State(core): State<Core>,
    caller: Caller,
    query: Result<Query<AccessesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let q = list_query(query)?;
    let page = PageQuery {
        limit: q.limit,
        after: q.after,
    };
    let site = q.site_id.map(SiteId::new);
    let door = q.door_id.map(DoorId::new);
    let now = core.now();
    snapshot_page(&core, &caller, page, |s| {
        Box::new(
            s.accesses
                .values()
                .filter(move |a| site.is_none_or(|site| a.site(&s.topology) == Some(site)))
                .filter(move |a| door.is_none_or(|door| a.door(&s.topology, door).is_some()))
                .map(move |a| (a.id.get(), access_view(&s.topology, a, now))),
        )
    })
    .await
}

/// `GET /v1/accesses/{id}`.
pub(crate) async fn get_access(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let now = core.now();
    get_one(&core, &caller, "access", &id, |s, id| {
        s.accesses
            .get(&AccessId::new(id))
            .map(|a| access_view(&s.topology, a, now))
    })
    .await
}

/// `PUT /v1/accesses/{id}`: replaces the access (same body as create).
pub(crate) async fn update_access(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<AccessIn>,
) -> Result<Response, AppError> {
    let id = AccessId::new(path_id("access", &id)?);
    let tenant = caller.tenant;
    let now = core.now();
    let subjects = people_subjects(&input.body.person_ids);
    let view = core
        .write_about(&caller, subjects, 0, move |s, plan| {
            let old = s
                .accesses
                .get(&id)
                .filter(|a| a.is_live())
                .ok_or_else(|| AppError::not_found("access", id))?;
            let mut access = build_access(s, id, &input.body, tenant, now)?;
            welcome(s, plan, Some(old), &access, now);
            access.status = old.status;
            advance(
                &mut access,
                &[ProvisioningStatus::Updating, ProvisioningStatus::Ready],
            );
            plan.audit("access.updated", Kind::Access, Some(id.get()));
            let view = access_view(&s.topology, &access, now);
            plan.put(access, None);
            Ok(view)
        })
        .await?;
    Ok(ok(view))
}

/// `DELETE /v1/accesses/{id}`.
pub(crate) async fn delete_access(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = AccessId::new(path_id("access", &id)?);
    core.write(&caller, 0, move |s, plan| {
        let mut access = s
            .accesses
            .get(&id)
            .filter(|a| a.is_live())
            .ok_or_else(|| AppError::not_found("access", id))?
            .clone();
        advance(
            &mut access,
            &[ProvisioningStatus::Deleting, ProvisioningStatus::Deleted],
        );
        plan.audit("access.deleted", Kind::Access, Some(id.get()));
        plan.put(access, None);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
