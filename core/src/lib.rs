//! `acs-core`: the access-control core – who may pass which door when, and keeping every
//! terminal's users and credentials in line with that.
//!
//! The core is hexagonal: a pure domain in the middle (tenants, sites, doors, terminals,
//! people with their `acs_id`, credentials, events, memberships, accesses, schedules, the
//! decision function and the desired state of each terminal) and I/O at the edges – the
//! store, the terminal driver, the sync engine that keeps terminals in line with the
//! desired state, enrollment, and the integrator API with the device-facing receiver.
//! It depends on no other workspace crate; the simulator is only ever a dev-dependency.
//!
//! The layers, from the inside out (each may use only the ones before it):
//! - [`card`], [`domain`] – the pure domain: topology, people, credentials, entitlements,
//!   schedules, the decision function and the desired state of each terminal; no I/O, no
//!   serde, no transport;
//! - [`error`] – the application's error, without any transport in it;
//! - [`store`], [`records`], [`residency`] – persistence: the `Store` trait and its SQLite
//!   implementation, each entity's stored document, which people the memory holds;
//! - [`app`] – the application: the tenants' snapshots and the only way to change them,
//!   tenants and API keys, the enrollments this process runs;
//! - [`terminal`], [`sync`], [`enroll`], [`notify`], [`device_events`] – the terminal
//!   driver, the sync engine, enrollment on a terminal, the notifications outbox, and what
//!   terminals report becoming access events; [`retry`] – the one retry policy they share;
//! - [`http`], [`receiver`] – the edges: the integrator API and the device-facing
//!   receiver, the only modules that know HTTP (the receiver only in its `server` part).
//!
//! `ARCHITECTURE.md` maps every module; a test (`tests/it/layering.rs`) keeps the layers.

pub mod app;
pub mod card;
pub mod device_events;
pub mod domain;
pub mod enroll;
pub mod error;
pub mod http;
pub mod notify;
pub mod receiver;
pub mod records;
pub mod residency;
pub mod retry;
pub mod store;
pub mod sync;
pub mod terminal;

pub use app::{Caller, Clock, Core};

pub use http::serve;
