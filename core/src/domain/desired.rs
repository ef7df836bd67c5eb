//! The desired state of a terminal (docs/domain.md §8.1): exactly which people and credentials it
//! must hold at an instant, each credential with the entitlements that require it, and the
//! next instant that changes.
//!
//! # Rules
//!
//! A credential of person P is desired on terminal T at t iff the tenant is active, P is
//! active at t (enabled, not suspended, inside the validity window), the credential is of
//! a terminal-held kind (face, fingerprint, card, PIN, QR), not deleted and has no disable
//! reason of its own at t, and at least one entitlement in effect at t requires it. An
//! entitlement requires on T the credential kinds used by the auth types it enables at the
//! doors T serves that it covers, in either direction – [`enabled_auth_types`], the rule
//! the decision uses too, so what a terminal is given is what the core would grant there:
//!
//! - a **membership** of P, in effect during `[created_at, removed_at)`, covers every door;
//! - **attendance** of an event that is not deleted, during `[starts_at, ends_at)`, covers
//!   the doors inside the event's facility (the door's own facility is, or a terminal
//!   serving it is installed there, as for the decision);
//! - a permit **access** that is not being deleted, inside `[valid_from, valid_to)`, naming
//!   P directly or through a group, covers the doors it lists. A card-only access does not
//!   push a face.
//!
//! A terminal serving no door holds nothing.
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

use super::access::{Effect, enabled_auth_types};
use super::auth::{AuthType, Direction, Factor};
use super::credential::Credential;
use super::id::{AccessId, CredentialId, FacilityId, PersonId, TerminalId};
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
    let (people, next_change) = match Coverage::of(snapshot, terminal) {
        Some(coverage) => desired_for(snapshot, &coverage, at),
        None => (BTreeMap::new(), None),
    };
    DesiredState {
        terminal_id: terminal,
        at,
        people,
        next_change,
    }
}

/// Everything about a terminal its desired state depends on (with the tenant's records):
/// its facility, where its doors are with the factors they take (what memberships and
/// attendances make it hold), and each live permit access serving one of its doors with
/// the factors it makes the terminal hold. Terminals with equal coverage must hold the
/// same, so one computation can serve them all.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Coverage {
    facility_id: FacilityId,
    /// For each door served: every facility it lies in directly (its own, and those of the
    /// terminals serving it), with the terminal-held factors the door takes; sorted, no
    /// repeats.
    places: Vec<(FacilityId, Factors)>,
    accesses: Vec<(AccessId, Factors)>,
}

impl Coverage {
    /// The coverage of `terminal`, or `None` when the snapshot has no such terminal.
    pub fn of(snapshot: &Snapshot, terminal: TerminalId) -> Option<Coverage> {
        let topology = &snapshot.topology;
        let terminal = topology.terminals.get(&terminal)?;
        let doors: Vec<_> = terminal
            .door_ids
            .iter()
            .filter_map(|id| topology.doors.get(id))
            .collect();
        let mut places = Vec::new();
        for door in &doors {
            let takes = Factors::enabled(|d| enabled_auth_types(topology, door, d, None));
            places.push((door.facility_id, takes));
            places.extend(
                topology
                    .terminals_serving(door.id)
                    .map(|t| (t.facility_id, takes)),
            );
        }
        places.sort_unstable_by_key(|(f, factors)| (*f, factors.0));
        places.dedup();
        let accesses = snapshot
            .accesses
            .values()
            .filter(|access| access.is_live() && access.effect == Effect::Permit)
            .filter_map(|access| {
                let mut served = doors
                    .iter()
                    .filter_map(|door| access.door(topology, door.id).map(|entry| (door, entry)))
                    .peekable();
                served.peek()?;
                let factors = served.fold(Factors::NONE, |all, (door, entry)| {
                    all.union(Factors::enabled(|d| {
                        enabled_auth_types(topology, door, d, Some(&entry))
                    }))
                });
                Some((access.id, factors))
            })
            .collect();
        Some(Coverage {
            facility_id: terminal.facility_id,
            places,
            accesses,
        })
    }

    /// The factors memberships make the terminals hold: those of every door.
    fn member_factors(&self) -> Factors {
        self.places
            .iter()
            .fold(Factors::NONE, |all, (_, f)| all.union(*f))
    }

    /// The factors an entitlement limited to `facility` (an attendance of an event there, a
    /// membership of it) makes the terminals hold: those of the doors inside it.
    fn facility_factors(&self, snapshot: &Snapshot, facility: FacilityId) -> Factors {
        self.places
            .iter()
            .filter(|(place, _)| snapshot.topology.facility_within(*place, facility))
            .fold(Factors::NONE, |all, (_, f)| all.union(*f))
    }

    /// The facility of the terminals it describes.
    pub fn facility_id(&self) -> FacilityId {
        self.facility_id
    }
}

/// The people terminals of `coverage` must hold at `at`, and the first instant after `at`
/// at which that changes.
///
/// One pass over the people an entitlement can cover: each person's holding now, and the
/// first of their own boundaries at which it changes (a person's holding only changes at
/// the bounds of their entitlements, of their validity and of their credentials' windows).
pub fn desired_for(
    snapshot: &Snapshot,
    coverage: &Coverage,
    at: Timestamp,
) -> (BTreeMap<PersonId, DesiredPerson>, Option<Timestamp>) {
    let ever = requirements(snapshot, coverage, None);
    let candidates = candidates(snapshot, &ever);
    let mut rest = candidates.as_slice();
    let mut people = BTreeMap::new();
    let mut next_change: Option<Timestamp> = None;
    let mut instants = Vec::new();
    for (person_id, entitlements) in &ever {
        let start = rest.partition_point(|c| c.person_id < *person_id);
        let end = start + rest[start..].partition_point(|c| c.person_id == *person_id);
        let own = &rest[start..end];
        rest = &rest[end..];
        let now = holding(snapshot, *person_id, entitlements, own, at);
        instants.clear();
        boundaries_after(snapshot, *person_id, entitlements, own, at, &mut instants);
        instants.sort_unstable();
        instants.dedup();
        for instant in &instants {
            if next_change.is_some_and(|n| *instant >= n) {
                break;
            }
            if holding(snapshot, *person_id, entitlements, own, *instant) != now {
                next_change = Some(*instant);
                break;
            }
        }
        if let Some(person) = now {
            people.insert(*person_id, person);
        }
    }
    (people, next_change)
}

/// Whether `terminal` must hold `credential` at `at` (the desired state of one credential,
/// without computing anyone else's).
pub(crate) fn holds(
    snapshot: &Snapshot,
    terminal: TerminalId,
    credential: &Credential,
    at: Timestamp,
) -> bool {
    let Some(coverage) = Coverage::of(snapshot, terminal) else {
        return false;
    };
    let ever = requirements(snapshot, &coverage, Some(credential.person_id));
    ever.get(&credential.person_id).is_some_and(|entitlements| {
        holding(
            snapshot,
            credential.person_id,
            entitlements,
            &[credential],
            at,
        )
        .is_some_and(|p| p.credentials.contains_key(&credential.id))
    })
}

/// A set of factors as bits (one per [`Factor`]): the desired state computes one per
/// entitlement of every person, so it must not allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Factors(u8);

impl Factors {
    const NONE: Factors = Factors(0);

    fn bit(factor: Factor) -> u8 {
        1 << (factor as u8)
    }

    /// The terminal-held factors of the auth types `enabled` gives in either direction.
    fn enabled(enabled: impl Fn(Direction) -> std::collections::BTreeSet<AuthType>) -> Factors {
        Factors::of(
            [Direction::In, Direction::Out]
                .into_iter()
                .flat_map(enabled)
                .flat_map(|a| a.factors().iter().copied())
                .filter(|f| f.is_terminal_held()),
        )
    }

    fn union(self, other: Factors) -> Factors {
        Factors(self.0 | other.0)
    }

    fn is_empty(self) -> bool {
        self.0 == 0
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

/// Entitlements that can cover terminals of `coverage` at some time (their own windows are
/// checked by [`in_effect`]), per person (only `only`, when given), with the factors each
/// makes the terminal hold.
fn requirements(
    snapshot: &Snapshot,
    coverage: &Coverage,
    only: Option<PersonId>,
) -> BTreeMap<PersonId, Vec<(Entitlement, Factors)>> {
    let mut by_person: BTreeMap<PersonId, Vec<(Entitlement, Factors)>> = BTreeMap::new();
    if !snapshot.tenant.active {
        return by_person;
    }
    let wanted = |person: &PersonId| only.is_none_or(|p| p == *person);

    let member_factors = coverage.member_factors();
    if !member_factors.is_empty() {
        for membership in snapshot.memberships.values() {
            if !wanted(&membership.person_id) {
                continue;
            }
            let factors = match membership.facility_id {
                None => member_factors,
                Some(facility) => coverage.facility_factors(snapshot, facility),
            };
            if !factors.is_empty() {
                by_person
                    .entry(membership.person_id)
                    .or_default()
                    .push((Entitlement::Membership(membership.id), factors));
            }
        }
    }
    for event in snapshot.events.values() {
        if event.is_deleted() {
            continue;
        }
        let factors = coverage.facility_factors(snapshot, event.facility_id);
        if factors.is_empty() {
            continue;
        }
        for person in event.attendees().keys().filter(|p| wanted(p)) {
            by_person
                .entry(*person)
                .or_default()
                .push((Entitlement::Attendee(event.id), factors));
        }
    }
    for (access_id, factors) in &coverage.accesses {
        if factors.is_empty() {
            continue;
        }
        let Some(access) = snapshot.accesses.get(access_id) else {
            continue;
        };
        let factors = *factors;
        for person in snapshot.access_subjects(access) {
            if wanted(&person) {
                by_person
                    .entry(person)
                    .or_default()
                    .push((Entitlement::Access(access.id), factors));
            }
        }
    }
    by_person
}

/// Whether an entitlement is in effect at `at` (inside its own window).
fn in_effect(snapshot: &Snapshot, entitlement: Entitlement, at: Timestamp) -> bool {
    match entitlement {
        Entitlement::Membership(id) => snapshot
            .memberships
            .get(&id)
            .is_some_and(|m| m.is_active_at(at)),
        Entitlement::Attendee(id) => snapshot
            .events
            .get(&id)
            .is_some_and(|e| e.window().contains(at)),
        Entitlement::Access(id) => snapshot
            .accesses
            .get(&id)
            .is_some_and(|a| a.validity.contains(at)),
    }
}

/// The terminal-held credentials of the people in `requirements`, ordered by person.
fn candidates<'s>(
    snapshot: &'s Snapshot,
    requirements: &BTreeMap<PersonId, Vec<(Entitlement, Factors)>>,
) -> Vec<&'s Credential> {
    let mut candidates: Vec<&Credential> = snapshot
        .credentials
        .values()
        .filter(|c| c.factor().is_terminal_held() && requirements.contains_key(&c.person_id))
        .collect();
    candidates.sort_by_key(|c| c.person_id);
    candidates
}

/// What the terminal must hold for one person at `at`, given the entitlements that can
/// cover it and the person's terminal-held credentials (`own`).
fn holding(
    snapshot: &Snapshot,
    person_id: PersonId,
    entitlements: &[(Entitlement, Factors)],
    own: &[&Credential],
    at: Timestamp,
) -> Option<DesiredPerson> {
    let person = snapshot.people.get(&person_id)?;
    if own.is_empty() || !person.is_active_at(at) {
        return None;
    }
    let mut credentials = BTreeMap::new();
    for credential in own {
        let factor = credential.factor();
        if credential.is_deleted() || !snapshot.disable_reasons(credential, at).is_empty() {
            continue;
        }
        let required_by: BTreeSet<Entitlement> = entitlements
            .iter()
            .filter(|(entitlement, factors)| {
                factors.contains(factor) && in_effect(snapshot, *entitlement, at)
            })
            .map(|(entitlement, _)| *entitlement)
            .collect();
        if !required_by.is_empty() {
            credentials.insert(credential.id, required_by);
        }
    }
    (!credentials.is_empty()).then(|| DesiredPerson {
        acs_id: person.acs_id.clone(),
        credentials,
    })
}

/// Every instant after `at` at which one person's holding may change (appended to `out`,
/// unordered): the window bounds of the entitlements that can cover them, their validity
/// bounds and their credentials' window bounds.
fn boundaries_after(
    snapshot: &Snapshot,
    person_id: PersonId,
    entitlements: &[(Entitlement, Factors)],
    own: &[&Credential],
    at: Timestamp,
    out: &mut Vec<Timestamp>,
) {
    for (entitlement, _) in entitlements {
        match entitlement {
            Entitlement::Membership(id) => {
                if let Some(m) = snapshot.memberships.get(id) {
                    out.extend(m.boundaries_after(at));
                }
            }
            Entitlement::Attendee(id) => {
                if let Some(e) = snapshot.events.get(id) {
                    out.extend(e.window().boundaries_after(at));
                }
            }
            Entitlement::Access(id) => {
                if let Some(a) = snapshot.accesses.get(id) {
                    out.extend(a.validity.boundaries_after(at));
                }
            }
        }
    }
    if let Some(person) = snapshot.people.get(&person_id) {
        out.extend(person.validity.boundaries_after(at));
    }
    for credential in own {
        out.extend(credential.window.boundaries_after(at));
    }
}
