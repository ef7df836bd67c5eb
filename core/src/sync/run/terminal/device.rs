//! Whose device answers at the terminal's address: learned once per task from
//! `system_information`, claimed for a terminal registered while its device was offline,
//! and refused when it is another terminal's; checked again at every read-back, so that
//! another device answering at the address (the terminal replaced, or its address taken
//! by another device) is neither read nor written until the terminal is changed to it.

use super::TerminalTask;
use crate::sync::apply::ApplyError;

/// Tells the core which device answers at this terminal's address (once per task), so
/// that what the device sends to the receiver is attributed to it. A terminal whose device
/// is not known yet (it did not answer when it was registered) claims it now; a device
/// other than the terminal's, or one another terminal has in any tenant, is refused
/// ([`ApplyError::WrongDevice`]), and the pass neither reads nor writes it.
pub(super) async fn register_device_once(task: &mut TerminalTask) -> Result<(), ApplyError> {
    if task.registered {
        return Ok(());
    }
    let info = task.client.system_information().await?;
    let found = info.device_id;
    let terminal = task.terminal;
    let known = task
        .core
        .read(task.tenant, |s| {
            s.topology.terminals.get(&terminal).map(|t| t.device_id)
        })
        .await
        .ok()
        .flatten();
    match known {
        Some(Some(device)) if device == found => {}
        Some(Some(device)) => {
            return Err(ApplyError::WrongDevice(format!(
                "the device at this terminal's address is device {found}, not its device {device}; change the terminal to accept it"
            )));
        }
        Some(None) => claim_device(task, found).await?,
        // The terminal is gone: the task ends with the next image.
        None => {
            return Err(ApplyError::WrongDevice(format!(
                "terminal {terminal} is gone"
            )));
        }
    }
    task.core.register_device(found, task.tenant, task.terminal);
    task.registered = true;
    Ok(())
}

/// Records `device` as the terminal's device; refused when another terminal has it (the
/// store keeps device ids unique across tenants).
async fn claim_device(task: &TerminalTask, device: i64) -> Result<(), ApplyError> {
    let caller = crate::app::Caller {
        tenant: task.tenant,
        key_prefix: "sync".into(),
    };
    let terminal = task.terminal;
    task.core
        .write(&caller, 0, move |s, plan| {
            let Some(current) = s.topology.terminals.get(&terminal) else {
                return Ok(());
            };
            if current.device_id.is_some() || s
                .topology
                .terminals
                .values()
                .any(|t| t.device_id == Some(device))
            {
                return Err(crate::error::AppError::conflict(
                    None,
                    format!("device {device} is already registered as another terminal"),
                ));
            }
            let mut learned = current.clone();
            learned.device_id = Some(device);
            plan.audit(
                "terminal.updated",
                crate::store::Kind::Terminal,
                Some(terminal.get()),
            );
            plan.put(learned, None);
            Ok(())
        })
        .await
        .map_err(|e| {
            ApplyError::WrongDevice(format!(
                "the device at this terminal's address (device {device}) is not recorded as its device: {}",
                e.detail
            ))
        })
}

/// At every read-back: whether the device answering is still the one registered. Another
/// one (the terminal replaced, or another device at its address) is registered again from
/// the start: refused ([`ApplyError::WrongDevice`]) unless the terminal was changed to it.
pub(super) async fn check_device(task: &mut TerminalTask) -> Result<(), ApplyError> {
    let found = task.client.system_information().await?.device_id;
    let registered = task.core.device_of(task.tenant, task.terminal);
    if registered == Some(found) {
        return Ok(());
    }
    tracing::warn!(terminal = %task.terminal, ?registered, found, "another device answers at the terminal's address");
    task.registered = false;
    register_device_once(task).await?;
    if let Some(old) = registered.filter(|old| *old != found) {
        task.core.forget_device(old, task.tenant, task.terminal);
    }
    Ok(())
}
