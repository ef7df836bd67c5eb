//! Custody of a terminal during a run: the suite touches only what it created itself.
//!
//! A field engineer runs the suite on a customer's terminal, full of the customer's users,
//! cards and rules. The suite's rules for it:
//!
//! - [`survey`] – before anything is written, the reserved id range
//!   ([`RESERVED_FROM`](crate::context::RESERVED_FROM)..[`RESERVED_TO`](crate::context::RESERVED_TO))
//!   and the values the suite uses ([`SUITE_CARDS`], the [`MARKER`] registration prefix)
//!   are read. Anything there that the suite did not leave behind is *foreign*, and the
//!   run refuses to start with the list. Objects an earlier run of the suite left (they
//!   carry the marker) are taken over only with `--reclaim-reserved`.
//! - [`lock`] – a run marks the terminal with a reserved user row holding its run id and
//!   an expiry, so that a second run against the same terminal refuses to start.
//! - [`guard`] – every request of the run (the cases' and the workflow core's) passes the
//!   guard, which refuses any write it cannot prove confined to the reserved range and the
//!   suite's values, and records every key the run creates in the [`ledger`] – on disk, in
//!   the restore journal, *before* the request reaches the terminal.
//! - [`ledger`] – the keys the run created; the clean-up removes exactly those (children
//!   by their parent's key) and nothing else, then checks that they are gone.
//! - [`hold`] – the order of it all: undo a killed run, survey, refuse or reclaim, save
//!   the journal, lock, open the guarded [gateway](crate::gateway); at the end remove,
//!   restore, check, unlock.

pub mod guard;
pub mod hold;
pub mod ledger;
pub mod lock;
pub mod survey;

use std::ops::Range;

use crate::context::{RESERVED_FROM, RESERVED_TO};

/// The registration prefix of every user the suite creates (its marker).
pub const MARKER: &str = "CF-";

/// The card values the suite uses: facility code 123, numbers 45678..46678.
pub const SUITE_CARDS: Range<u64> =
    crate::cases::objects::CARD..crate::cases::objects::CARD + 1_000;

/// Whether `id` is in the reserved range.
pub fn reserved(id: i64) -> bool {
    (RESERVED_FROM..RESERVED_TO).contains(&id)
}

/// The names the suite gives the rules, time zones and devices it creates (the
/// conformance cases' own, and the workflow core's).
pub fn suite_name(name: &str) -> bool {
    name.starts_with("conformance") || name.starts_with("acs-core")
}
