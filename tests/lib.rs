//! `acs-e2e` only hosts the end-to-end tests across the workspace's crates: the core and
//! the simulated terminal talking over real loopback sockets (the test binary `it`, in
//! `it/main.rs`).
//!
//! It is a package because a virtual workspace silently ignores loose `tests/*.rs` files.
//! This library target is intentionally empty of items: shared test helpers belong to the
//! crates' public APIs (e.g. `acs_simulator::Simulator`), not here.
