//! Devices: which terminal a device id belongs to (learned from each device's
//! `system_information`, asked by the receiver for every callback), and what probing a
//! terminal being registered or changed found (the probe runs in
//! [`super::terminal_calls`]).

use std::sync::PoisonError;
use std::time::Duration;

use super::Core;
use crate::domain::TenantId;

/// How long the probe waits for each reply of a terminal being registered.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What probing a terminal's address found.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// A terminal answered, logged in and said who it is.
    Device {
        /// Its `device_id`.
        device_id: i64,
        /// Its serial number (empty when it gives none).
        serial: String,
        /// Its firmware version (empty when it gives none).
        version: String,
    },
    /// The terminal refused the login and password: they are wrong.
    Refused(String),
    /// Something answered at the address, but not as a Control iD terminal.
    Foreign(String),
    /// Nothing usable answered now (offline, unreachable, timed out, busy, or it refused
    /// `system_information`): the device is not known yet.
    Failed(String),
}

impl Core {
    /// Records which terminal a device id belongs to (the sync engine learns it from the
    /// device's `system_information`; the receiver only hears registered devices).
    pub fn register_device(
        &self,
        device_id: i64,
        tenant: TenantId,
        terminal: crate::domain::TerminalId,
    ) {
        self.inner
            .devices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(device_id, (tenant, terminal));
    }

    /// Forgets that `device_id` belongs to `terminal` of `tenant` (its device changed), if
    /// it still does.
    pub fn forget_device(
        &self,
        device_id: i64,
        tenant: TenantId,
        terminal: crate::domain::TerminalId,
    ) {
        let mut devices = self
            .inner
            .devices
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if devices.get(&device_id) == Some(&(tenant, terminal)) {
            devices.remove(&device_id);
        }
    }

    /// The terminal a device id belongs to.
    pub fn device_owner(&self, device_id: i64) -> Option<(TenantId, crate::domain::TerminalId)> {
        self.inner
            .devices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&device_id)
            .copied()
    }

    /// The terminal a device id belongs to, as stored: a terminal synced by another
    /// instance is known here only through the store (remembered once found).
    pub async fn device_owner_stored(
        &self,
        device_id: i64,
    ) -> Option<(TenantId, crate::domain::TerminalId)> {
        if let Some(owner) = self.device_owner(device_id) {
            return Some(owner);
        }
        let store = self.inner.store.clone();
        let found = super::blocking(move || {
            Ok(store.claim_owner(crate::records::topology::DEVICE_ID, &device_id.to_string())?)
        })
        .await
        .ok()
        .flatten()?;
        let owner = (
            TenantId::new(found.0),
            crate::domain::TerminalId::new(found.1),
        );
        self.register_device(device_id, owner.0, owner.1);
        Some(owner)
    }

    /// The device id of a terminal, once the sync engine has met its device.
    pub fn device_of(&self, tenant: TenantId, terminal: crate::domain::TerminalId) -> Option<i64> {
        self.inner
            .devices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(_, owner)| **owner == (tenant, terminal))
            .map(|(device, _)| *device)
    }

    /// Probes the terminal at `address` with `login` and `password` through its driver
    /// task ([`super::terminal_calls`]): logs in, reads `system_information` and logs out,
    /// each reply awaited at most [`PROBE_TIMEOUT`].
    pub async fn probe_terminal(&self, address: &str, login: &str, password: &str) -> Probe {
        self.inner.calls.probe(address, login, password).await
    }
}
