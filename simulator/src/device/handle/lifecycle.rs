//! The device's life: factory reset, reboot, and the snapshot of what system_information reports.

use crate::device::config::Config;
use crate::device::images::Photos;
use crate::device::*;

impl Device {
    /// `reset_to_factory_default.fcgi`: tables, photos, configuration and credentials go
    /// back to what the device was created with (its identity and clock stay, as on
    /// hardware); every session ends. The caller reboots the terminal afterwards.
    pub fn reset_to_factory(&self) {
        let _ = self.mutate(|s| {
            let tracked = s.logged_meta.is_some();
            s.db = factory_database(s.model, s.identity.device_id);
            s.db.set_tracking(tracked);
            s.photos = Photos::default();
            s.photos.set_tracking(tracked);
            s.full_snapshot = tracked;
            s.config = Config::factory(s.model);
            s.credentials = s.factory_credentials.clone();
            s.first_web_login = s.model.has_first_web_login();
            s.sessions.clear();
            s.actuations.clear();
            Ok::<(), DeviceError>(())
        });
    }

    /// `reboot.fcgi`: sessions and volatile state are lost, tables and configuration kept.
    pub fn reboot(&self) {
        let mut s = self.lock();
        s.sessions.clear();
        s.actuations.clear();
        s.booted_at = s.clock.now_utc();
    }

    /// Everything `system_information` reports.
    pub fn system_snapshot(&self) -> SystemSnapshot {
        let s = self.lock();
        SystemSnapshot {
            model: s.model,
            identity: s.identity.clone(),
            uptime: (s.clock.now_utc() - s.booted_at).max(0),
            local_time: s.clock.local_now(),
            listen: s.listen,
            online: s.config.value("general", "online") == Some("1"),
            templates: s.db.table("templates").map_or(0, |t| t.len()),
        }
    }
}
