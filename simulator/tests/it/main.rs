//! Integration tests of the simulator, one binary with a module per concern:
//! fixture replay, router snapshots, the `load_objects` property test, bad input,
//! and serving over a real socket (state file, shutdown).

mod bad_input;
mod enrollment;
mod faults;
mod fixtures;
mod fleet;
mod identification;
mod load_objects_model;
mod online;
mod push;
mod serving;
mod snapshots;
mod support;
