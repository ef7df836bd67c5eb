//! Integration tests of the simulator, one binary with a module per concern:
//! fixture replay, router snapshots, the `load_objects` property test, bad input,
//! serving over a real socket (state file, shutdown), and secrets.

mod bad_input;
// The acs-sim binary killed with SIGKILL mid-burst loses no acknowledged write.
mod durability;
mod enrollment;
mod faults;
mod fixtures;
mod fleet;
// doors_state, message_to_screen, buzzer_buzz and the other front-of-terminal commands.
mod front;
mod fuzz;
mod identification;
mod load_objects_model;
mod online;
// The web panel: page, assets, state endpoint, live stream, fleet overview.
mod panel;
mod push;
// Secrets in the journal and the state file.
mod secrets;
mod serving;
// Helpers shared with the `browser` test binary.
#[path = "../shared/mod.rs"]
mod shared;
mod snapshots;
mod support;
