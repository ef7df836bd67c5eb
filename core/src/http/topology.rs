//! `/v1/sites`, `/v1/facilities`, `/v1/doors`, `/v1/terminals`: where things are. Deleting
//! something another object still refers to is refused (409) rather than cascading. Doors
//! and terminals are changed in place with `PUT` (the whole object) and `PATCH` (the
//! members given).
//!
//! A door's view shows the auth types it declares (`supported_auth_types`) and the ones it
//! takes (`auth_types`: the declared ones, or, declaring none, what its terminals' models
//! read).
//!
//! A terminal is checked before it is stored: its address must be an `http://` or
//! `https://` URL and its model a known one; then the device is probed (log in, read
//! `system_information`, [`Core::probe_terminal`]). A device that refuses the login and
//! password, or something that is no terminal answering, is refused (422, `password` or
//! `address`); a device already registered as a terminal, in this tenant or another, is
//! refused (409); a device that does not answer now is accepted with its id unknown, and
//! the reply's `probe` says why (the sync engine learns the id when it first reaches it).

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::deletes;
use super::input::{self, FACILITY_KINDS, Input, OPERATING_MODES, name_of, named, path_id};
use super::reads;
use super::{PageResult, create, get_one, list_page, ok, stored_reply};
use crate::app::{Caller, Core, Probe};
use crate::domain::{
    AuthType, DevicePassword, Direction, Door, DoorId, Facility, FacilityId, FacilityKind,
    OperatingMode, Site, SiteId, Snapshot, Terminal, TerminalId, TerminalModel, TerminalSpec,
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

/// A terminal as integrators see it: never its password.
pub(crate) fn terminal_view(t: &Terminal) -> Json {
    json!({"id": t.id.get(), "facility_id": t.facility_id.get(), "model": t.model.name(),
           "address": t.address, "login": t.login,
           "operating_mode": name_of(t.operating_mode, OPERATING_MODES),
           "door_ids": t.door_ids.iter().map(|d| d.get()).collect::<Vec<_>>(),
           "device_id": t.device_id})
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

#[derive(Debug, Default, Deserialize)]
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DoorIn {
    facility_id: u64,
    name: String,
    #[serde(default)]
    supported_auth_types: Directions,
}

/// The members of a door a `PATCH` changes (`supported_auth_types` replaces both lists).
#[derive(Debug, Deserialize)]
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

fn required(field: &str) -> AppError {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TerminalIn {
    facility_id: u64,
    model: String,
    address: String,
    login: String,
    /// Required on a create; a `PUT` without one keeps the stored password.
    password: Option<String>,
    operating_mode: Option<String>,
    #[serde(default)]
    door_ids: Vec<u64>,
}

/// The members of a terminal a `PATCH` changes (`door_ids` replaces the list).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TerminalPatch {
    facility_id: Option<u64>,
    model: Option<String>,
    address: Option<String>,
    login: Option<String>,
    password: Option<String>,
    operating_mode: Option<String>,
    door_ids: Option<Vec<u64>>,
}

impl From<TerminalIn> for TerminalPatch {
    fn from(t: TerminalIn) -> TerminalPatch {
        TerminalPatch {
            facility_id: Some(t.facility_id),
            model: Some(t.model),
            address: Some(t.address),
            login: Some(t.login),
            password: t.password,
            operating_mode: Some(t.operating_mode.unwrap_or_else(|| "standalone".to_owned())),
            door_ids: Some(t.door_ids),
        }
    }
}

impl TerminalPatch {
    /// Whether it says how to reach the device, which is then probed again.
    fn reaches_device(&self) -> bool {
        self.address.is_some() || self.login.is_some() || self.password.is_some()
    }
}

/// Terminal `id`: `patch` over `current` (over nothing for a new terminal), checked against
/// the tenant's objects; its device is `current`'s.
fn build_terminal(
    s: &Snapshot,
    id: TerminalId,
    current: Option<&Terminal>,
    patch: &TerminalPatch,
) -> Result<Terminal, AppError> {
    let facility_id = patch
        .facility_id
        .map(FacilityId::new)
        .or(current.map(|c| c.facility_id))
        .ok_or_else(|| required("facility_id"))?;
    if !s.topology.facilities.contains_key(&facility_id) {
        return Err(AppError::invalid(
            "facility_id",
            format!("facility {facility_id} does not exist"),
        ));
    }
    let model = match (&patch.model, current) {
        (Some(model), _) => TerminalModel::parse("model", model)?,
        (None, Some(c)) => c.model,
        (None, None) => return Err(required("model")),
    };
    let text = |given: &Option<String>, kept: Option<&String>, field: &str| {
        given
            .clone()
            .or(kept.cloned())
            .ok_or_else(|| required(field))
    };
    let address = text(&patch.address, current.map(|c| &c.address), "address")?;
    let login = text(&patch.login, current.map(|c| &c.login), "login")?;
    let password = match (&patch.password, current) {
        (Some(p), _) if p.chars().count() > 200 => {
            return Err(AppError::invalid(
                "password",
                "password must be at most 200 characters",
            ));
        }
        (Some(p), _) => DevicePassword::new(p.clone()),
        (None, Some(c)) => c.password.clone(),
        (None, None) => return Err(required("password")),
    };
    let operating_mode = match (&patch.operating_mode, current) {
        (Some(m), _) => named("operating_mode", m, OPERATING_MODES)?,
        (None, Some(c)) => c.operating_mode,
        (None, None) => OperatingMode::Standalone,
    };
    let door_ids = match (&patch.door_ids, current) {
        (Some(ids), _) => {
            let mut door_ids = BTreeSet::new();
            for (i, raw) in ids.iter().enumerate() {
                let door = DoorId::new(*raw);
                if !s.topology.doors.contains_key(&door) {
                    return Err(AppError::invalid(
                        format!("door_ids[{i}]"),
                        format!("door {door} does not exist"),
                    ));
                }
                door_ids.insert(door);
            }
            door_ids
        }
        (None, Some(c)) => c.door_ids.clone(),
        (None, None) => BTreeSet::new(),
    };
    let mut terminal = Terminal::new(
        id,
        TerminalSpec {
            facility_id,
            model,
            address,
            login,
            password,
            operating_mode,
            door_ids,
        },
    )?;
    terminal.device_id = current.and_then(|c| c.device_id);
    Ok(terminal)
}

/// What a probe means for the terminal: the device id it found (if any) and the reply's
/// `probe` member; or the refusal of a device that refused the login, or of an address
/// where no terminal answered.
fn probe_outcome(probe: Probe, address: &str) -> Result<(Option<i64>, Json), AppError> {
    match probe {
        Probe::Device {
            device_id,
            serial,
            version,
        } => Ok((
            Some(device_id),
            json!({"ok": true, "device_id": device_id, "serial": serial, "version": version}),
        )),
        Probe::Refused(message) => Err(AppError::invalid(
            "password",
            format!("the terminal at {address} refused the login and password: {message}"),
        )),
        Probe::Foreign(detail) => Err(AppError::invalid(
            "address",
            format!("no Control iD terminal answered at {address}: {detail}"),
        )),
        Probe::Failed(error) => Ok((None, json!({"ok": false, "error": error}))),
    }
}

/// Refuses a device that another terminal of the tenant already has (another tenant's is
/// refused by the store, without naming it).
fn check_device_free(s: &Snapshot, id: TerminalId, device: Option<i64>) -> Result<(), AppError> {
    let Some(device) = device else {
        return Ok(());
    };
    match s
        .topology
        .terminals
        .values()
        .find(|t| t.id != id && t.device_id == Some(device))
    {
        Some(other) => Err(AppError::conflict(
            Some("address"),
            format!(
                "the device at this address (device_id {device}) is already registered as \
                 terminal {}",
                other.id
            ),
        )),
        None => Ok(()),
    }
}

/// `POST /v1/terminals`: checks the request, probes the device, then creates the terminal
/// (201, with the probe's result in `probe`).
pub(crate) async fn create_terminal(
    State(core): State<Core>,
    caller: Caller,
    input: Input<TerminalIn>,
) -> Result<Response, AppError> {
    if let Some(key) = &input.idempotency
        && let Some(reply) = stored_reply(&core, &caller, key).await?
    {
        return Ok(reply);
    }
    let patch = TerminalPatch::from(input.body);
    // Checked before anything is sent to the device.
    let checked = core
        .read(caller.tenant, |s| {
            build_terminal(s, TerminalId::new(0), None, &patch)
        })
        .await??;
    let probe = core
        .probe_terminal(&checked.address, &checked.login, checked.password.expose())
        .await;
    let (device_id, probe_view) = probe_outcome(probe, &checked.address)?;
    create(&core, &caller, input.idempotency, 1, move |s, plan| {
        let mut terminal = build_terminal(s, TerminalId::new(plan.next_id()?), None, &patch)?;
        terminal.device_id = device_id;
        check_device_free(s, terminal.id, device_id)?;
        let mut view = terminal_view(&terminal);
        view["probe"] = probe_view;
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

/// Changes terminal `raw` by `patch`, probing the device again when the patch says how to
/// reach it: 404 when it does not exist, 422 naming the member at fault, 409 for a device
/// already registered, 200 with the terminal (and `probe` when probed). A device that does
/// not answer keeps its id when the address is the same, and is unknown otherwise.
async fn change_terminal(
    core: &Core,
    caller: &Caller,
    raw: &str,
    patch: TerminalPatch,
) -> Result<Response, AppError> {
    let id = TerminalId::new(path_id("terminal", raw)?);
    let checked = core
        .read(caller.tenant, |s| {
            let current = s
                .topology
                .terminals
                .get(&id)
                .ok_or_else(|| AppError::not_found("terminal", id))?;
            build_terminal(s, id, Some(current), &patch)
        })
        .await??;
    let probed = match patch.reaches_device() {
        true => {
            let probe = core
                .probe_terminal(&checked.address, &checked.login, checked.password.expose())
                .await;
            Some(probe_outcome(probe, &checked.address)?)
        }
        false => None,
    };
    let (view, before, after) = core
        .write(caller, 0, move |s, plan| {
            let current = s
                .topology
                .terminals
                .get(&id)
                .ok_or_else(|| AppError::not_found("terminal", id))?;
            let mut terminal = build_terminal(s, id, Some(current), &patch)?;
            if let Some((found, _)) = &probed {
                terminal.device_id = match found {
                    Some(device) => Some(*device),
                    None if terminal.address == current.address => current.device_id,
                    None => None,
                };
            }
            check_device_free(s, id, terminal.device_id)?;
            let mut view = terminal_view(&terminal);
            if let Some((_, probe_view)) = probed {
                view["probe"] = probe_view;
            }
            plan.audit(
                "terminal.updated",
                crate::store::Kind::Terminal,
                Some(id.get()),
            );
            let changed = (current.device_id, terminal.device_id);
            plan.put(terminal, None);
            Ok((view, changed.0, changed.1))
        })
        .await?;
    if let Some(old) = before
        && before != after
    {
        core.forget_device(old, caller.tenant, id);
    }
    Ok(ok(view))
}

/// `PUT /v1/terminals/{id}`: replaces the terminal (the body of a create; without a
/// `password` the stored one is kept).
pub(crate) async fn replace_terminal(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<TerminalIn>,
) -> Result<Response, AppError> {
    change_terminal(&core, &caller, &id, input.body.into()).await
}

/// `PATCH /v1/terminals/{id}`: changes the members given.
pub(crate) async fn patch_terminal(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<TerminalPatch>,
) -> Result<Response, AppError> {
    change_terminal(&core, &caller, &id, input.body).await
}

deletes! { delete_terminal, Terminal, |s, id| s.topology.terminals.contains_key(&TerminalId::new(id)), |_, _| None }
