//! The desired state of a terminal (domain.md §8.1): exactly which people and credentials it
//! must hold at an instant, each credential with the entitlements that require it, and the
//! next instant that changes.
//!
//! # Rules
//!
//! A credential of person P is desired on terminal T at t iff the tenant is active, P is
//! active at t (enabled, not suspended, inside the validity window), the credential is of
//! a terminal-held kind (face, fingerprint, card, PIN, QR), not deleted and has no disable
//! reason of its own at t, and at least one entitlement in effect at t requires it:
//!
//! - a **membership** of P, in effect during `[created_at, removed_at)`: every terminal of
//!   the tenant, every credential kind;
//! - **attendance** of an event that is not deleted, during `[starts_at, ends_at)`, whose
//!   facility contains T's facility: every credential kind;
//! - a permit **access** that is not being deleted, inside `[valid_from, valid_to)`, naming
//!   P directly or through a group and listing a door T serves: only the credential kinds
//!   the access enables on those doors (either direction). A card-only access does not
//!   push a face.
//!
//! Deny accesses never make anything desired; schedules do not either (a terminal holds
//! the credentials of a rule whose schedule is closed right now, and enforces the schedule
//! itself). Enrollment is not distribution: a person with no entitlement covering T is
//! absent. People are listed only with at least one credential.
//!
//! Entitlements are in effect only inside their own window, not before, so a standalone
//! terminal cannot grant early; `next_change` tells the sync engine when to wake up.
//! Removing one entitlement never strips a credential another still requires, because each
//! credential lists all of them.

use super::access::Effect;
use super::auth::{Factor, factors_of};
use super::credential::Credential;
use super::id::{CredentialId, PersonId, TerminalId};
use super::person::AcsId;
use super::snapshot::{Entitlement, Snapshot};
use jiff::Timestamp;
use std::collections::{BTreeMap, BTreeSet};

/// A person a terminal must hold, with the credentials it must hold for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredPerson {
    /// The person's `acs_id`.
    pub acs_id: AcsId,
    /// Each credential to hold, with the entitlements requiring it (never empty).
    pub credentials: BTreeMap<CredentialId, BTreeSet<Entitlement>>,
}

/// What a terminal must hold at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredState {
    /// The terminal.
    pub terminal_id: TerminalId,
    /// The instant it was computed for.
    pub at: Timestamp,
    /// The people to hold.
    pub people: BTreeMap<PersonId, DesiredPerson>,
    /// The first instant after `at` at which `people` differs, if any.
    pub next_change: Option<Timestamp>,
}

impl DesiredState {
    /// Every credential to hold.
    pub fn credential_ids(&self) -> BTreeSet<CredentialId> {
        self.people
            .values()
            .flat_map(|p| p.credentials.keys().copied())
            .collect()
    }
}

/// The desired state of `terminal` at `at`. An unknown terminal holds nothing.
pub fn desired_state(snapshot: &Snapshot, terminal: TerminalId, at: Timestamp) -> DesiredState {
    let people = holdings(snapshot, terminal, at);
    let next_change = boundaries_after(snapshot, terminal, at)
        .into_iter()
        .find(|candidate| holdings(snapshot, terminal, *candidate) != people);
    DesiredState {
        terminal_id: terminal,
        at,
        people,
        next_change,
    }
}

/// A set of factors as bits (one per [`Factor`]): the desired state computes one per
/// entitlement of every person, so it must not allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Factors(u8);

impl Factors {
    fn bit(factor: Factor) -> u8 {
        1 << (factor as u8)
    }

    fn of(factors: impl IntoIterator<Item = Factor>) -> Factors {
        Factors(
            factors
                .into_iter()
                .fold(0, |bits, f| bits | Factors::bit(f)),
        )
    }

    fn contains(self, factor: Factor) -> bool {
        self.0 & Factors::bit(factor) != 0
    }
}

/// Entitlements in effect at `at` that cover `terminal`, per person, with the factors each
/// makes the terminal hold.
fn requirements(
    snapshot: &Snapshot,
    terminal: TerminalId,
    at: Timestamp,
    ignore_time: bool,
) -> BTreeMap<PersonId, Vec<(Entitlement, Factors)>> {
    let mut by_person: BTreeMap<PersonId, Vec<(Entitlement, Factors)>> = BTreeMap::new();
    let Some(terminal) = snapshot.topology.terminals.get(&terminal) else {
        return by_person;
    };
    if !snapshot.tenant.active {
        return by_person;
    }
    let all_factors = Factors::of([
        Factor::Face,
        Factor::Fingerprint,
        Factor::Card,
        Factor::Pin,
        Factor::Qr,
    ]);

    for membership in snapshot.memberships.values() {
        if ignore_time || membership.is_active_at(at) {
            by_person
                .entry(membership.person_id)
                .or_default()
                .push((Entitlement::Membership(membership.id), all_factors));
        }
    }
    for event in snapshot.events.values() {
        if event.is_deleted()
            || !(ignore_time || event.window().contains(at))
            || !snapshot
                .topology
                .facility_within(terminal.facility_id, event.facility_id)
        {
            continue;
        }
        for person in event.attendees().keys() {
            by_person
                .entry(*person)
                .or_default()
                .push((Entitlement::Attendee(event.id), all_factors));
        }
    }
    for access in snapshot.accesses.values() {
        if !access.is_live()
            || access.effect != Effect::Permit
            || !(ignore_time || access.validity.contains(at))
        {
            continue;
        }
        let served: Vec<_> = access
            .doors
            .iter()
            .filter(|d| terminal.door_ids.contains(&d.door_id))
            .collect();
        if served.is_empty() {
            continue;
        }
        let factors = Factors::of(factors_of(
            served
                .iter()
                .flat_map(|d| d.in_auth_types.iter().chain(&d.out_auth_types)),
        ));
        for person in snapshot.access_subjects(access) {
            by_person
                .entry(person)
                .or_default()
                .push((Entitlement::Access(access.id), factors));
        }
    }
    by_person
}

/// The people and credentials `terminal` must hold at `at` (the desired state without
/// `next_change`).
pub(crate) fn holdings(
    snapshot: &Snapshot,
    terminal: TerminalId,
    at: Timestamp,
) -> BTreeMap<PersonId, DesiredPerson> {
    let requirements = requirements(snapshot, terminal, at, false);
    let mut people = BTreeMap::new();
    if requirements.is_empty() {
        return people;
    }
    // The candidate credentials in one list ordered by person, walked alongside the
    // requirements (also ordered by person).
    let mut candidates: Vec<&Credential> = snapshot
        .credentials
        .values()
        .filter(|c| c.factor().is_terminal_held() && requirements.contains_key(&c.person_id))
        .collect();
    candidates.sort_by_key(|c| c.person_id);
    let mut rest = candidates.as_slice();
    for (person_id, entitlements) in requirements {
        let start = rest.partition_point(|c| c.person_id < person_id);
        let end = start + rest[start..].partition_point(|c| c.person_id == person_id);
        let own = &rest[start..end];
        rest = &rest[end..];
        let Some(person) = snapshot.people.get(&person_id) else {
            continue;
        };
        if !person.is_active_at(at) || own.is_empty() {
            continue;
        }
        let mut credentials = BTreeMap::new();
        for credential in own {
            let factor = credential.factor();
            if !factor.is_terminal_held()
                || credential.is_deleted()
                || !snapshot.disable_reasons(credential, at).is_empty()
            {
                continue;
            }
            let required_by: BTreeSet<Entitlement> = entitlements
                .iter()
                .filter(|(_, factors)| factors.contains(factor))
                .map(|(entitlement, _)| *entitlement)
                .collect();
            if !required_by.is_empty() {
                credentials.insert(credential.id, required_by);
            }
        }
        if !credentials.is_empty() {
            people.insert(
                person_id,
                DesiredPerson {
                    acs_id: person.acs_id.clone(),
                    credentials,
                },
            );
        }
    }
    people
}

/// Every instant after `at` at which the holdings of `terminal` may change, ascending:
/// the window bounds of entitlements that can cover it, and the validity bounds of their
/// people and of those people's credentials.
fn boundaries_after(snapshot: &Snapshot, terminal: TerminalId, at: Timestamp) -> Vec<Timestamp> {
    let ever = requirements(snapshot, terminal, at, true);
    let mut instants = Vec::new();
    for (person_id, entitlements) in &ever {
        for (entitlement, _) in entitlements {
            match entitlement {
                Entitlement::Membership(id) => {
                    if let Some(m) = snapshot.memberships.get(id) {
                        instants.extend(m.boundaries_after(at));
                    }
                }
                Entitlement::Attendee(id) => {
                    if let Some(e) = snapshot.events.get(id) {
                        instants.extend(e.window().boundaries_after(at));
                    }
                }
                Entitlement::Access(id) => {
                    if let Some(a) = snapshot.accesses.get(id) {
                        instants.extend(a.validity.boundaries_after(at));
                    }
                }
            }
        }
        if let Some(person) = snapshot.people.get(person_id) {
            instants.extend(person.validity.boundaries_after(at));
        }
    }
    for credential in snapshot.credentials.values() {
        if ever.contains_key(&credential.person_id) {
            instants.extend(credential.window.boundaries_after(at));
        }
    }
    instants.sort_unstable();
    instants.dedup();
    instants
}
