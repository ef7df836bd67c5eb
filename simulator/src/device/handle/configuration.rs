//! Configuration and clock: reading and writing configuration values, the online server's address, the device clock and its skew.

use serde_json::Value as Json;

use crate::device::*;
use crate::wire::Members;

impl Device {
    /// The online server's `ip` (`host[:port][/path]`) from `online_client.server_id`.
    pub fn online_server_address(&self) -> Option<String> {
        let s = self.lock();
        let id: i64 = s
            .config
            .value("online_client", "server_id")?
            .trim()
            .parse()
            .ok()?;
        let devices = s.db.table("devices").ok()?;
        let row = devices.row(id)?;
        devices.cell(row, "ip").as_text().map(str::to_owned)
    }

    /// `get_configuration.fcgi`.
    pub fn get_configuration(&self, request: Members<'_>) -> Result<Json, DeviceError> {
        Ok(self.lock().config.get(request)?)
    }

    /// `set_configuration.fcgi`.
    pub fn set_configuration(&self, request: Members<'_>) -> Result<(), DeviceError> {
        self.mutate(|s| s.config.set(request).map(|_| ()).map_err(DeviceError::from))
    }

    /// One configuration value.
    pub fn config_value(&self, section: &str, key: &str) -> Option<String> {
        self.read().config.value(section, key).map(str::to_owned)
    }

    /// `set_system_time.fcgi`: members `day month year hour minute second`, local time.
    pub fn set_system_time(&self, request: Members<'_>) -> Result<(), DeviceError> {
        let day = request.int("day")?;
        let month = request.int("month")?;
        let year = request.int("year")?;
        let hour = request.int("hour")?;
        let minute = request.int("minute")?;
        let second = request.int("second")?;
        let local = clock::local_epoch(year, month, day, hour, minute, second)
            .ok_or_else(|| DeviceError::Invalid("Invalid date or time".into()))?;
        self.mutate(|s| {
            s.clock.set_local(local);
            Ok(())
        })
    }

    /// Moves the device's local clock by `seconds` (fault injection: clock skew).
    pub fn skew_clock(&self, seconds: i64) {
        let _ = self.mutate(|s| {
            let offset = s.clock.offset().saturating_add(seconds);
            s.clock.set_offset(offset);
            Ok::<(), DeviceError>(())
        });
    }
}
