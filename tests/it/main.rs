//! End-to-end tests across the workspace's crates: a client on one side, the simulated
//! terminal over a real loopback socket on the other.

mod card_values;
mod chaos;
mod doc_references;
mod terminals; // the core and its terminals: wiped, edited, replaced; clocks; auth rule; registration; recovery
