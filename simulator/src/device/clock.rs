//! The device's local wall clock (docs/device-api.md §3.9, §9.4).
//!
//! The terminal stores local wall-clock time as if it were UTC: every `time` it reports is
//! "seconds since 1970 in local time". The clock keeps an offset from a time source;
//! `set_system_time` moves the offset. The source is the host's clock by default, or a
//! [`ManualTime`] that tests move explicitly so that nothing depends on real time passing.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where "now" comes from.
#[derive(Debug, Clone, Default)]
pub enum TimeSource {
    /// The host's clock.
    #[default]
    System,
    /// A clock that only moves when told to (deterministic tests).
    Manual(ManualTime),
}

impl TimeSource {
    /// Current UTC epoch seconds according to this source.
    pub fn now_utc(&self) -> i64 {
        match self {
            TimeSource::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            TimeSource::Manual(m) => m.now(),
        }
    }
}

/// A manually driven time source; clones share the same instant.
#[derive(Debug, Clone)]
pub struct ManualTime(Arc<AtomicI64>);

impl ManualTime {
    /// A manual clock standing at `utc_epoch` seconds.
    pub fn starting_at(utc_epoch: i64) -> Self {
        ManualTime(Arc::new(AtomicI64::new(utc_epoch)))
    }

    /// Current UTC epoch seconds.
    pub fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Moves the clock forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }

    /// Puts the clock at `utc_epoch`.
    pub fn set(&self, utc_epoch: i64) {
        self.0.store(utc_epoch, Ordering::SeqCst);
    }
}

/// The device's notion of local time: a source plus the offset the device was set to.
#[derive(Debug, Clone)]
pub struct DeviceClock {
    source: TimeSource,
    offset: i64,
}

impl DeviceClock {
    /// A clock reading `source` shifted by `utc_offset` seconds (local = UTC + offset).
    pub fn new(source: TimeSource, utc_offset: i64) -> Self {
        DeviceClock {
            source,
            offset: utc_offset,
        }
    }

    /// The time source.
    pub fn source(&self) -> &TimeSource {
        &self.source
    }

    /// UTC epoch seconds now.
    pub fn now_utc(&self) -> i64 {
        self.source.now_utc()
    }

    /// Device-local epoch seconds now (the value the device reports as `time`).
    pub fn local_now(&self) -> i64 {
        self.now_utc().saturating_add(self.offset)
    }

    /// Offset between local and UTC time, in seconds.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Sets the offset directly (restoring a state file).
    pub fn set_offset(&mut self, offset: i64) {
        self.offset = offset;
    }

    /// `set_system_time`: from now on local time reads `local_epoch`.
    pub fn set_local(&mut self, local_epoch: i64) {
        self.offset = local_epoch.saturating_sub(self.now_utc());
    }
}

/// A civil date-time as `set_system_time` sends it, converted to a local epoch.
///
/// Returns `None` for an impossible date (month 13, 31 February, hour 24 …).
pub fn local_epoch(
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
) -> Option<i64> {
    let dt = jiff::civil::DateTime::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
        i8::try_from(hour).ok()?,
        i8::try_from(minute).ok()?,
        i8::try_from(second).ok()?,
        0,
    )
    .ok()?;
    let ts = dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some(ts.as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_example_is_local_epoch() {
        // 10 Nov 2025 11:15:00 local, stored as if UTC.
        assert_eq!(local_epoch(2025, 11, 10, 11, 15, 0), Some(1_762_773_300));
        assert_eq!(local_epoch(2025, 2, 30, 0, 0, 0), None);
        assert_eq!(local_epoch(2025, 1, 1, 24, 0, 0), None);
    }

    #[test]
    fn set_local_moves_with_the_source() {
        let manual = ManualTime::starting_at(1_000);
        let mut clock = DeviceClock::new(TimeSource::Manual(manual.clone()), 0);
        clock.set_local(5_000);
        assert_eq!(clock.local_now(), 5_000);
        manual.advance(10);
        assert_eq!(clock.local_now(), 5_010);
        assert_eq!(clock.now_utc(), 1_010);
    }
}
