//! What several core instances on one database share through the store, beside the
//! records: each tenant's revision and the change feed over it, the instances' heartbeats,
//! the terminal leases, and the public endpoints' rate-limit counters. The outbox's claims
//! are in [`super::outbox`]; the access events every instance streams are read across
//! tenants by id ([`super::Store::access_events_after`]).
//!
//! Instants of heartbeats, leases and claims are the database's own clock (the SQLite
//! backend reads the host's wall clock in the store; a server database uses its `now()`),
//! never the core's [`Clock`](crate::app::Clock): the core's clock is virtual in tests and
//! may stand still, while a lease must expire in real time when its holder dies.

use std::time::Duration;

/// A tenant's revision as the change feed reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantRevision {
    /// The tenant.
    pub tenant_id: u64,
    /// Its revision: moved by every commit of records or webhook endpoints.
    pub revision: u64,
    /// The feed's position of that commit (increasing over every tenant).
    pub seq: u64,
}

/// A terminal's lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The terminal.
    pub terminal_id: u64,
    /// The instance syncing it.
    pub holder: String,
    /// Whether the lease is still running (not expired).
    pub live: bool,
}

/// The length of a duration in milliseconds, as stored.
pub fn millis_of(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
