//! `/v1/sites`, `/v1/facilities`, `/v1/doors`, `/v1/terminals`: where things are. Deleting
//! something another object still refers to is refused (409) rather than cascading.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::input::{self, FACILITY_KINDS, Input, OPERATING_MODES, name_of, named};
use super::reads;
use super::{create, delete_unused};
use crate::app::{Caller, Core};
use crate::domain::{
    DevicePassword, Door, DoorId, Facility, FacilityId, FacilityKind, OperatingMode, Site, SiteId,
    Snapshot, Terminal, TerminalId, TerminalSpec,
};
use crate::error::AppError;

fn site_view(s: &Site) -> Json {
    json!({"id": s.id.get(), "name": s.name, "timezone": s.time_zone.iana_name()})
}

fn facility_view(f: &Facility) -> Json {
    json!({"id": f.id.get(), "site_id": f.site_id.get(), "parent_id": f.parent_id.map(FacilityId::get),
           "name": f.name, "kind": name_of(f.kind, FACILITY_KINDS)})
}

fn door_view(d: &Door) -> Json {
    let names = |set: &BTreeSet<crate::domain::AuthType>| -> Vec<&str> {
        set.iter().map(|a| a.name()).collect()
    };
    json!({"id": d.id.get(), "facility_id": d.facility_id.get(), "name": d.name,
           "supported_auth_types": {"in": names(&d.supported_in), "out": names(&d.supported_out)}})
}

/// A terminal as integrators see it: never its password.
pub(crate) fn terminal_view(t: &Terminal) -> Json {
    json!({"id": t.id.get(), "facility_id": t.facility_id.get(), "model": t.model,
           "address": t.address, "login": t.login,
           "operating_mode": name_of(t.operating_mode, OPERATING_MODES),
           "door_ids": t.door_ids.iter().map(|d| d.get()).collect::<Vec<_>>()})
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

/// `DELETE /v1/sites/{id}`.
pub(crate) async fn delete_site(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    delete_unused::<Site>(
        &core,
        &caller,
        &id,
        |s, id| s.topology.sites.contains_key(&SiteId::new(id)),
        |s, id| {
            s.topology
                .facilities
                .values()
                .find(|f| f.site_id == SiteId::new(id))
                .map(|f| format!("facility {}", f.id))
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
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
    s.events
        .values()
        .find(|e| e.facility_id == id && !e.is_deleted())
        .map(|e| format!("event {}", e.id))
}

/// `DELETE /v1/facilities/{id}`.
pub(crate) async fn delete_facility(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    delete_unused::<Facility>(
        &core,
        &caller,
        &id,
        |s, id| s.topology.facilities.contains_key(&FacilityId::new(id)),
        |s, id| facility_users(s, FacilityId::new(id)),
    )
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Directions {
    #[serde(rename = "in", default)]
    inbound: Vec<String>,
    #[serde(rename = "out", default)]
    outbound: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DoorIn {
    facility_id: u64,
    name: String,
    #[serde(default)]
    supported_auth_types: Directions,
}

/// `POST /v1/doors`.
pub(crate) async fn create_door(
    State(core): State<Core>,
    caller: Caller,
    input: Input<DoorIn>,
) -> Result<Response, AppError> {
    create(&core, &caller, input.idempotency, 1, move |s, plan| {
        let body = input.body;
        let facility_id = FacilityId::new(body.facility_id);
        if !s.topology.facilities.contains_key(&facility_id) {
            return Err(AppError::invalid(
                "facility_id",
                format!("facility {facility_id} does not exist"),
            ));
        }
        let supported_in = input::auth_types(
            "supported_auth_types.in",
            &body.supported_auth_types.inbound,
        )?;
        let supported_out = input::auth_types(
            "supported_auth_types.out",
            &body.supported_auth_types.outbound,
        )?;
        let door = Door::new(
            DoorId::new(plan.next_id()?),
            facility_id,
            &body.name,
            supported_in,
            supported_out,
        )?;
        let view = door_view(&door);
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

reads! { list_doors, get_door, "door", DoorId, |s| s.topology.doors, door_view }

/// `DELETE /v1/doors/{id}`.
pub(crate) async fn delete_door(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    delete_unused::<Door>(
        &core,
        &caller,
        &id,
        |s, id| s.topology.doors.contains_key(&DoorId::new(id)),
        |s, id| {
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
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TerminalIn {
    facility_id: u64,
    model: String,
    address: String,
    login: String,
    password: String,
    operating_mode: Option<String>,
    #[serde(default)]
    door_ids: Vec<u64>,
}

/// `POST /v1/terminals`.
pub(crate) async fn create_terminal(
    State(core): State<Core>,
    caller: Caller,
    input: Input<TerminalIn>,
) -> Result<Response, AppError> {
    create(&core, &caller, input.idempotency, 1, move |s, plan| {
        let body = input.body;
        let facility_id = FacilityId::new(body.facility_id);
        if !s.topology.facilities.contains_key(&facility_id) {
            return Err(AppError::invalid(
                "facility_id",
                format!("facility {facility_id} does not exist"),
            ));
        }
        let mut door_ids = BTreeSet::new();
        for (i, raw) in body.door_ids.iter().enumerate() {
            let door = DoorId::new(*raw);
            if !s.topology.doors.contains_key(&door) {
                return Err(AppError::invalid(
                    format!("door_ids[{i}]"),
                    format!("door {door} does not exist"),
                ));
            }
            door_ids.insert(door);
        }
        let operating_mode = match body.operating_mode.as_deref() {
            None => OperatingMode::Standalone,
            Some(m) => named("operating_mode", m, OPERATING_MODES)?,
        };
        if body.password.chars().count() > 200 {
            return Err(AppError::invalid(
                "password",
                "password must be at most 200 characters",
            ));
        }
        let terminal = Terminal::new(
            TerminalId::new(plan.next_id()?),
            TerminalSpec {
                facility_id,
                model: body.model,
                address: body.address,
                login: body.login,
                password: DevicePassword::new(body.password),
                operating_mode,
                door_ids,
            },
        )?;
        let view = terminal_view(&terminal);
        plan.audit(
            "terminal.created",
            crate::store::Kind::Terminal,
            Some(terminal.id.get()),
        );
        plan.put(terminal, None);
        Ok(view)
    })
    .await
}

reads! { list_terminals, get_terminal, "terminal", TerminalId, |s| s.topology.terminals, terminal_view }

/// `DELETE /v1/terminals/{id}`.
pub(crate) async fn delete_terminal(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    delete_unused::<Terminal>(
        &core,
        &caller,
        &id,
        |s, id| s.topology.terminals.contains_key(&TerminalId::new(id)),
        |_, _| None,
    )
    .await
}
