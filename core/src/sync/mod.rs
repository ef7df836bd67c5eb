//! The sync engine: keeps every terminal's users, credentials and rules equal to what the
//! core says (ARCHITECTURE.md, `sync/`).
//!
//! - [`image`] – what a terminal must hold now, cut into subjects (a person with their
//!   credentials and rules, a schedule's rule, the holidays), mapped onto the device tables;
//! - [`shared`] – one computed image serves every terminal with the same coverage;
//! - [`plan`] – pure: desired vs applied image → ordered steps, removals first;
//! - [`apply`] – one step through the driver;
//! - [`logs`] – the access-log catch-up: rows the device holds but never delivered;
//! - [`run`] – the engine: one task per terminal, applied state recorded per subject in the
//!   store, retries with backoff, wake-ups at the next time boundary, periodic read-back.

pub mod apply;
pub mod image;
pub mod logs;
pub mod plan;
pub mod run;
pub mod shared;

pub use run::{LeaseOptions, StatusBoard, SyncEngine, SyncOptions, SyncStatus};
