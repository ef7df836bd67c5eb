//! `/v1/terminals`: the devices installed at a facility, serving doors; created, replaced
//! (`PUT`) and changed (`PATCH`) in place, deleted (the sync engine then clears what the core
//! wrote on the device).
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
use super::input::{Input, OPERATING_MODES, name_of, named, path_id};
use super::reads;
use super::topology::required;
use super::{create, ok, stored_reply};
use crate::app::{Caller, Core, Probe};
use crate::domain::{
    DevicePassword, DoorId, FacilityId, OperatingMode, Snapshot, Terminal, TerminalId,
    TerminalModel, TerminalSpec,
};
use crate::error::AppError;

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
#[derive(Debug, Clone, Deserialize)]
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
