//! Which terminal a device id belongs to: learned by the sync engine from each device's
//! `system_information`, asked by the receiver for every callback.

use std::sync::PoisonError;

use super::Core;
use crate::domain::TenantId;

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

    /// The terminal a device id belongs to.
    pub fn device_owner(&self, device_id: i64) -> Option<(TenantId, crate::domain::TerminalId)> {
        self.inner
            .devices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&device_id)
            .copied()
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
}
