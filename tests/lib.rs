//! `acs-e2e` only hosts the end-to-end tests across the workspace's crates (in `it/`).
//! A virtual workspace ignores loose `tests/*.rs`, so they live in this package; the
//! library itself is intentionally empty.
