//! `acs-core`: the access-control core – who may pass which door when, and keeping every
//! terminal's users and credentials in line with that.
//!
//! The core is hexagonal: a pure domain (tenants, sites, doors, terminals, people with
//! `acs_id`, credentials, events, members, accesses, schedules, the decision function) in
//! the middle, and at the edges the store, the terminal driver, the sync engine, enrollment
//! and the HTTP API. It depends on no other workspace crate; the simulator is only ever a
//! dev-dependency.
//!
//! What exists today: [`card`], the card credential's encoding on the terminal
//! (facility code + number ⇄ the terminal's 64-bit `cards.value`). The domain, store,
//! driver, sync engine and API follow in later work (see ARCHITECTURE.md).

pub mod card;
