//! `acs-testkit`: test-only helpers that several crates' test suites share, and that know
//! nothing of either side of the terminal API (so the simulator's tests may use them without
//! depending on the core).
//!
//! - [`campaign`] – the seeded fuzz-campaign runner (`ACS_FUZZ_CASES`, `ACS_FUZZ_SEED`);
//! - [`json`] – generated JSON documents and their mutation (structural edits, then byte
//!   edits of the serialized text), over a [`json::Vocabulary`] that each suite supplies.
//!
//! It is a dev-dependency only; nothing here is part of a product.

pub mod campaign;
pub mod json;

pub use campaign::{campaign, cases, excerpt, json_or_fail, seed};
pub use json::{ByteEdit, Edit, Vocabulary, arb_byte_edit, mutate};
