//! `/v1/sites`, `/v1/facilities`, `/v1/doors`: where things are (terminals are
//! `terminals.rs`). Deleting something another object still refers to is refused (409)
//! rather than cascading. Doors are changed in place with `PUT` (the whole object) and
//! `PATCH` (the members given).
//!
//! A door's view shows the auth types it declares (`supported_auth_types`) and the ones it
//! takes (`auth_types`: the declared ones, or, declaring none, what its terminals' models
//! read).

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::deletes;
use super::input::{self, FACILITY_KINDS, Input, name_of, named, path_id};
use super::reads;
use super::{PageResult, create, get_one, list_page, ok};
use crate::app::{Caller, Core};
use crate::domain::{
    AuthType, Direction, Door, DoorId, Facility, FacilityId, FacilityKind, Site, SiteId, Snapshot,
    Topology,
};
use crate::error::AppError;

fn site_view(s: &Site) -> Json {
    json!({"id": s.id.get(), "name": s.name, "timezone": s.time_zone.iana_name()})
}

fn facility_view(f: &Facility) -> Json {
    json!({"id": f.id.get(), "site_id": f.site_id.get(), "parent_id": f.parent_id.map(FacilityId::get),
           "name": f.name, "kind": name_of(f.kind, FACILITY_KINDS)})
}

fn auth_type_names(set: &BTreeSet<AuthType>) -> Vec<&'static str> {
    set.iter().map(|a| a.name()).collect()
}

/// A door: what it declares and what it takes now.
fn door_view(topology: &Topology, d: &Door) -> Json {
    let takes = |direction| auth_type_names(&topology.door_auth_types(d, direction));
    json!({"id": d.id.get(), "facility_id": d.facility_id.get(), "name": d.name,
           "supported_auth_types": {"in": auth_type_names(&d.supported_in),
                                    "out": auth_type_names(&d.supported_out)},
           "auth_types": {"in": takes(Direction::In), "out": takes(Direction::Out)}})
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SiteIn {
    name: String,
    timezone: String,
}

/// `POST /v1/sites`.
pub(crate) async fn create_site(
    State(core): State<Core>,
    caller: Caller,
    input: Input<SiteIn>,
) -> Result<Response, AppError> {
    let tenant = caller.tenant;
    create(&core, &caller, input.idempotency, 1, move |_, plan| {
        let site = Site::new(
            SiteId::new(plan.next_id()?),
            tenant,
            &input.body.name,
            &input.body.timezone,
        )?;
        let view = site_view(&site);
        plan.audit(
            "site.created",
            crate::store::Kind::Site,
            Some(site.id.get()),
        );
        plan.put(site, None);
        Ok(view)
    })
    .await
}

reads! { list_sites, get_site, "site", SiteId, |s| s.topology.sites, site_view }

deletes! { delete_site, Site, |s, id| s.topology.sites.contains_key(&SiteId::new(id)), |s, id| {
    let id = SiteId::new(id);
    if let Some(a) = s.accesses.values().find(|a| a.is_live() && a.site_id == Some(id)) {
        return Some(format!("access {}", a.id));
    }
    s.topology
        .facilities
        .values()
        .find(|f| f.site_id == id)
        .map(|f| format!("facility {}", f.id))
} }

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FacilityIn {
    site_id: u64,
    parent_id: Option<u64>,
    name: String,
    kind: Option<String>,
}

/// `POST /v1/facilities`.
pub(crate) async fn create_facility(
    State(core): State<Core>,
    caller: Caller,
    input: Input<FacilityIn>,
) -> Result<Response, AppError> {
    create(&core, &caller, input.idempotency, 1, move |s, plan| {
        let body = input.body;
        let site_id = SiteId::new(body.site_id);
        if !s.topology.sites.contains_key(&site_id) {
            return Err(AppError::invalid(
                "site_id",
                format!("site {site_id} does not exist"),
            ));
        }
        let parent_id = body.parent_id.map(FacilityId::new);
        if let Some(parent) = parent_id {
            match s.topology.facilities.get(&parent) {
                None => {
                    return Err(AppError::invalid(
                        "parent_id",
                        format!("facility {parent} does not exist"),
                    ));
                }
                Some(p) if p.site_id != site_id => {
                    return Err(AppError::invalid(
                        "parent_id",
                        format!("facility {parent} belongs to another site"),
                    ));
                }
                Some(_) => {}
            }
        }
        let kind = match body.kind.as_deref() {
            None => FacilityKind::Facility,
            Some(k) => named("kind", k, FACILITY_KINDS)?,
        };
        let facility = Facility::new(
            FacilityId::new(plan.next_id()?),
            site_id,
            parent_id,
            &body.name,
            kind,
        )?;
        let view = facility_view(&facility);
        plan.audit(
            "facility.created",
            crate::store::Kind::Facility,
            Some(facility.id.get()),
        );
        plan.put(facility, None);
        Ok(view)
    })
    .await
}

reads! { list_facilities, get_facility, "facility", FacilityId, |s| s.topology.facilities, facility_view }

fn facility_users(s: &Snapshot, id: FacilityId) -> Option<String> {
    if let Some(f) = s
        .topology
        .facilities
        .values()
        .find(|f| f.parent_id == Some(id))
    {
        return Some(format!("facility {}", f.id));
    }
    if let Some(d) = s.topology.doors.values().find(|d| d.facility_id == id) {
        return Some(format!("door {}", d.id));
    }
    if let Some(t) = s.topology.terminals.values().find(|t| t.facility_id == id) {
        return Some(format!("terminal {}", t.id));
    }
    if let Some(m) = s
        .memberships
        .values()
        .find(|m| m.facility_id == Some(id) && m.removed_at().is_none())
    {
        return Some(format!("member {}", m.id));
    }
    s.events
        .values()
        .find(|e| e.facility_id == id && !e.is_deleted())
        .map(|e| format!("event {}", e.id))
}

deletes! { delete_facility, Facility, |s, id| s.topology.facilities.contains_key(&FacilityId::new(id)), |s, id| facility_users(s, FacilityId::new(id)) }

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Directions {
    #[serde(rename = "in", default)]
    inbound: Vec<String>,
    #[serde(rename = "out", default)]
    outbound: Vec<String>,
}

impl Directions {
    /// The auth types of both directions, naming the member at fault.
    fn read(&self) -> Result<(Vec<AuthType>, Vec<AuthType>), AppError> {
        Ok((
            input::auth_types("supported_auth_types.in", &self.inbound)?,
            input::auth_types("supported_auth_types.out", &self.outbound)?,
        ))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DoorIn {
    facility_id: u64,
    name: String,
    #[serde(default)]
    supported_auth_types: Directions,
}

/// The members of a door a `PATCH` changes (`supported_auth_types` replaces both lists).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DoorPatch {
    facility_id: Option<u64>,
    name: Option<String>,
    supported_auth_types: Option<Directions>,
}

impl From<DoorIn> for DoorPatch {
    fn from(door: DoorIn) -> DoorPatch {
        DoorPatch {
            facility_id: Some(door.facility_id),
            name: Some(door.name),
            supported_auth_types: Some(door.supported_auth_types),
        }
    }
}

pub(super) fn required(field: &str) -> AppError {
    AppError::invalid(field, format!("{field} is required"))
}

/// Door `id`: `patch` over `current` (over nothing for a new door), checked against the
/// tenant's objects. A door an access lists stays in its site, as an access's doors must
/// all be in one.
fn build_door(
    s: &Snapshot,
    id: DoorId,
    current: Option<&Door>,
    patch: &DoorPatch,
) -> Result<Door, AppError> {
    let facility_id = patch
        .facility_id
        .map(FacilityId::new)
        .or(current.map(|c| c.facility_id))
        .ok_or_else(|| required("facility_id"))?;
    let Some(facility) = s.topology.facilities.get(&facility_id) else {
        return Err(AppError::invalid(
            "facility_id",
            format!("facility {facility_id} does not exist"),
        ));
    };
    if let Some(site) = current.and_then(|c| s.topology.site_of_door(c.id))
        && site.id != facility.site_id
        && let Some(access) = s.accesses.values().find(|a| a.is_live() && a.lists(id))
    {
        return Err(AppError::invalid(
            "facility_id",
            format!(
                "door {id} is listed by access {}, whose doors must all be in one site: it \
                 cannot move to facility {facility_id} of another site",
                access.id
            ),
        ));
    }
    let name = patch
        .name
        .as_deref()
        .or(current.map(|c| c.name.as_str()))
        .ok_or_else(|| required("name"))?;
    let (supported_in, supported_out) = match (&patch.supported_auth_types, current) {
        (Some(directions), _) => directions.read()?,
        (None, Some(c)) => (
            c.supported_in.iter().copied().collect(),
            c.supported_out.iter().copied().collect(),
        ),
        (None, None) => (Vec::new(), Vec::new()),
    };
    Ok(Door::new(
        id,
        facility_id,
        name,
        supported_in,
        supported_out,
    )?)
}

/// `POST /v1/doors`.
pub(crate) async fn create_door(
    State(core): State<Core>,
    caller: Caller,
    input: Input<DoorIn>,
) -> Result<Response, AppError> {
    create(&core, &caller, input.idempotency, 1, move |s, plan| {
        let door = build_door(s, DoorId::new(plan.next_id()?), None, &input.body.into())?;
        let view = door_view(&s.topology, &door);
        plan.audit(
            "door.created",
            crate::store::Kind::Door,
            Some(door.id.get()),
        );
        plan.put(door, None);
        Ok(view)
    })
    .await
}

/// `GET /v1/doors`: a page of the list.
pub(crate) async fn list_doors(
    State(core): State<Core>,
    caller: Caller,
    query: PageResult,
) -> Result<Response, AppError> {
    list_page(&core, &caller, query, |s| {
        Box::new(
            s.topology
                .doors
                .values()
                .map(move |d| (d.id.get(), door_view(&s.topology, d))),
        )
    })
    .await
}

/// `GET /v1/doors/{id}`.
pub(crate) async fn get_door(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    get_one(&core, &caller, "door", &id, |s, id| {
        s.topology
            .doors
            .get(&DoorId::new(id))
            .map(|d| door_view(&s.topology, d))
    })
    .await
}

/// Changes door `raw` by `patch`: 404 when it does not exist, 422 naming the member at
/// fault, 200 with the door.
async fn change_door(
    core: &Core,
    caller: &Caller,
    raw: &str,
    patch: DoorPatch,
) -> Result<Response, AppError> {
    let id = DoorId::new(path_id("door", raw)?);
    let view = core
        .write(caller, 0, move |s, plan| {
            let current = s
                .topology
                .doors
                .get(&id)
                .ok_or_else(|| AppError::not_found("door", id))?;
            let door = build_door(s, id, Some(current), &patch)?;
            let view = door_view(&s.topology, &door);
            plan.audit("door.updated", crate::store::Kind::Door, Some(id.get()));
            plan.put(door, None);
            Ok(view)
        })
        .await?;
    Ok(ok(view))
}

/// `PUT /v1/doors/{id}`: replaces the door (the body of a create).
pub(crate) async fn replace_door(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<DoorIn>,
) -> Result<Response, AppError> {
    change_door(&core, &caller, &id, input.body.into()).await
}

/// `PATCH /v1/doors/{id}`: changes the members given.
pub(crate) async fn patch_door(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<DoorPatch>,
) -> Result<Response, AppError> {
    change_door(&core, &caller, &id, input.body).await
}

deletes! { delete_door, Door, |s, id| s.topology.doors.contains_key(&DoorId::new(id)), |s, id| {
    let id = DoorId::new(id);
    if let Some(t) = s
        .topology
        .terminals
        .values()
        .find(|t| t.door_ids.contains(&id))
    {
        return Some(format!("terminal {}", t.id));
    }
    s.accesses
        .values()
        .find(|a| a.is_live() && a.doors.iter().any(|d| d.door_id == id))
        .map(|a| format!("access {}", a.id))
} }
