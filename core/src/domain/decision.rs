//! The access decision (docs/domain.md §8.2, rules 7 and 8): someone presents one or more
//! factors at a door in a direction at an instant; grant or deny with a reason code.
//!
//! # Evaluation order
//!
//! 1. **Identify.** No factor → `unknown_credential`. A face presented without liveness →
//!    `liveness_failed`. Every factor must resolve to a credential (not deleted; a live one
//!    is preferred when a value is shared with a revoked one), and all of them must belong
//!    to the same person: the first non-PIN factor identifies the person, PINs are then
//!    checked against that person's PINs (or, with no other factor, identify by
//!    themselves). A factor that is unknown or belongs to someone else → `unknown_credential`.
//!    A cloud key with a PIN needs that PIN with the token → `second_factor_missing`.
//!    A credential whose person is not in the snapshot → `unknown_user`.
//! 2. **Credential status.** Every credential used must have no disable reason (its own,
//!    its mobile-key parent's, its phone's): `revoked` → `credential_revoked`, `suspended` →
//!    `credential_suspended`, `lockout` → `too_many_attempts`, `expired` and `max_uses`
//!    (a consumed one-time credential) → `credential_expired`, `not_yet_active` →
//!    `credential_not_yet_active`. `needs_provisioning` does not deny by itself: a
//!    credential distributed nowhere has no entitlement here and fails in step 5.
//! 3. **Person.** Disabled, suspended, outside validity, or the tenant inactive →
//!    `user_inactive`.
//! 4. **Door.** Unknown door (or one without a site) → `device_error`; door in lockdown →
//!    `lockdown`.
//! 5. **Rules.** The entitlements covering the door for this person: permit and deny
//!    accesses listing the door (directly or via a group), attendance of non-deleted events
//!    whose facility contains the door or a terminal serving it, and memberships not yet
//!    removed (of the whole tenant, or of a facility containing the door as events do). A deny access inside its validity window with an active schedule →
//!    `blocked_by_rule` (deny accesses block both directions, whatever auth types they
//!    list). No permit covering the door → `no_entitlement` (a code §9 lacks: the person
//!    is known and active but nothing lets them through this door).
//! 6. **Grant** if any permit (union across rules) is inside its window, has an active
//!    schedule, and enables for this direction an auth type all of whose factors were
//!    presented. What a rule enables is [`enabled_auth_types`], the rule the desired state
//!    shares: the door takes the auth types it declares, or, declaring none, those its
//!    terminals' models read; memberships and attendance enable all of them, an access the
//!    ones it lists that the door takes (all of them where it lists none). Otherwise: no
//!    rule in time →
//!    `not_in_schedule` (this includes an access outside `[valid_from, valid_to)` and an
//!    event not live); some enabled auth type was started but lacks a factor →
//!    `second_factor_missing`; else `auth_type_not_allowed`.
//! 7. **On grant** the decision carries the person's `acs_id`, the credentials used, the
//!    rules that granted, the auth type used (the satisfied one with the most factors) and
//!    the one-time credentials the caller must consume.
//!
//! Schedules are evaluated in the time zone of the door's site. The default is deny.

use super::access::{Effect, enabled_auth_types};
use super::auth::{AuthType, Direction, Factor};
use super::credential::{Credential, CredentialValue, DisableReason};
use super::id::{CredentialId, DoorId, PersonId};
use super::lookup::Lookup;
use super::membership::Membership;
use super::person::AcsId;
use super::snapshot::{Entitlement, Snapshot};
use super::validation::Window;
use crate::card::WiegandCard;
use jiff::Timestamp;
use std::collections::BTreeSet;

/// One factor presented at a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresentedFactor {
    /// A card read.
    Card(WiegandCard),
    /// A face the matcher matched (above threshold) to an enrolled face credential, and
    /// whether it passed liveness.
    Face {
        /// The matched credential.
        credential_id: CredentialId,
        /// Whether liveness passed.
        live: bool,
    },
    /// A finger the matcher matched to an enrolled fingerprint credential.
    Fingerprint {
        /// The matched credential.
        credential_id: CredentialId,
    },
    /// A PIN typed on the keypad.
    Pin(String),
    /// A QR code read.
    Qr(String),
    /// A cloud-key link used, with the PIN given along with it: both as keyed digests,
    /// like the credential's (the core digests them on arrival).
    CloudKey {
        /// The keyed digest of the link token.
        token: String,
        /// The keyed digest of the PIN entered with it.
        pin: Option<String>,
    },
    /// A mobile key (a phone's copy) used.
    MobileKey {
        /// The copy presented.
        credential_id: CredentialId,
    },
}

/// Why access was denied (the reason codes of docs/domain.md §9 that the domain can decide,
/// plus `no_entitlement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DenyReason {
    /// No factor, or a factor that matches no credential of the identified person.
    UnknownCredential,
    /// The credential's person does not exist.
    UnknownUser,
    /// Expired, or a one-time credential already used.
    CredentialExpired,
    /// Before the credential's `starts_at`.
    CredentialNotYetActive,
    /// Revoked (lost, stolen, damaged, terminated, phone deactivated).
    CredentialRevoked,
    /// Suspended.
    CredentialSuspended,
    /// Person disabled, suspended or outside validity.
    UserInactive,
    /// Entitled at this door, but not now.
    NotInSchedule,
    /// A deny rule in force.
    BlockedByRule,
    /// No enabled auth type uses the presented factors.
    AuthTypeNotAllowed,
    /// An enabled multi-factor auth type lacks a factor (or a cloud key lacks its PIN).
    SecondFactorMissing,
    /// The face failed liveness.
    LivenessFailed,
    /// The door is in lockdown.
    Lockdown,
    /// The credential is locked out.
    TooManyAttempts,
    /// The door is not known to the core.
    DeviceError,
    /// Known, active person, but nothing entitles them at this door.
    NoEntitlement,
}

impl DenyReason {
    /// Every reason.
    pub const ALL: [DenyReason; 16] = [
        DenyReason::UnknownCredential,
        DenyReason::UnknownUser,
        DenyReason::CredentialExpired,
        DenyReason::CredentialNotYetActive,
        DenyReason::CredentialRevoked,
        DenyReason::CredentialSuspended,
        DenyReason::UserInactive,
        DenyReason::NotInSchedule,
        DenyReason::BlockedByRule,
        DenyReason::AuthTypeNotAllowed,
        DenyReason::SecondFactorMissing,
        DenyReason::LivenessFailed,
        DenyReason::Lockdown,
        DenyReason::TooManyAttempts,
        DenyReason::DeviceError,
        DenyReason::NoEntitlement,
    ];

    /// The reason code as events carry it (`unknown_credential`).
    pub fn code(self) -> &'static str {
        match self {
            DenyReason::UnknownCredential => "unknown_credential",
            DenyReason::UnknownUser => "unknown_user",
            DenyReason::CredentialExpired => "credential_expired",
            DenyReason::CredentialNotYetActive => "credential_not_yet_active",
            DenyReason::CredentialRevoked => "credential_revoked",
            DenyReason::CredentialSuspended => "credential_suspended",
            DenyReason::UserInactive => "user_inactive",
            DenyReason::NotInSchedule => "not_in_schedule",
            DenyReason::BlockedByRule => "blocked_by_rule",
            DenyReason::AuthTypeNotAllowed => "auth_type_not_allowed",
            DenyReason::SecondFactorMissing => "second_factor_missing",
            DenyReason::LivenessFailed => "liveness_failed",
            DenyReason::Lockdown => "lockdown",
            DenyReason::TooManyAttempts => "too_many_attempts",
            DenyReason::DeviceError => "device_error",
            DenyReason::NoEntitlement => "no_entitlement",
        }
    }

    fn from_disable(reason: DisableReason) -> Option<DenyReason> {
        match reason {
            DisableReason::Revoked => Some(DenyReason::CredentialRevoked),
            DisableReason::Suspended => Some(DenyReason::CredentialSuspended),
            DisableReason::Lockout => Some(DenyReason::TooManyAttempts),
            DisableReason::Expired | DisableReason::MaxUses => Some(DenyReason::CredentialExpired),
            DisableReason::NotYetActive => Some(DenyReason::CredentialNotYetActive),
            DisableReason::NeedsProvisioning => None,
        }
    }
}

/// Granted, or denied with a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Let through.
    Granted,
    /// Refused.
    Denied(DenyReason),
}

/// The result of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Granted or denied.
    pub outcome: Outcome,
    /// The identified person, if identification got that far.
    pub person_id: Option<PersonId>,
    /// Their `acs_id` (always present on a grant).
    pub acs_id: Option<AcsId>,
    /// The credential that identified the person.
    pub credential_id: Option<CredentialId>,
    /// Every credential used (identifying first, then PINs).
    pub credential_ids: Vec<CredentialId>,
    /// The auth type that was satisfied (on grant).
    pub auth_type: Option<AuthType>,
    /// The rules that decided: the granting permits, the blocking denies, or (for
    /// `not_in_schedule`) the permits that were out of time.
    pub rules: Vec<Entitlement>,
    /// One-time (limited-use) credentials to consume because of this grant.
    pub consume: Vec<CredentialId>,
}

impl Decision {
    /// Whether access was granted.
    pub fn granted(&self) -> bool {
        self.outcome == Outcome::Granted
    }

    /// The deny reason, if denied.
    pub fn reason(&self) -> Option<DenyReason> {
        match self.outcome {
            Outcome::Granted => None,
            Outcome::Denied(reason) => Some(reason),
        }
    }

    fn deny(mut self, reason: DenyReason) -> Decision {
        self.outcome = Outcome::Denied(reason);
        self
    }
}

/// A permit or deny that covers the door for the person.
struct Rule {
    entitlement: Entitlement,
    effect: Effect,
    window: Window,
    in_time: bool,
    auth_types: BTreeSet<AuthType>,
}

/// Decides whether the person presenting `factors` at `door_id` in `direction` at `at` may
/// pass. See the module documentation for the rules.
pub fn decide(
    snapshot: &Snapshot,
    factors: &[PresentedFactor],
    door_id: DoorId,
    direction: Direction,
    at: Timestamp,
) -> Decision {
    decide_with(snapshot, None, factors, door_id, direction, at)
}

/// [`decide`] through the snapshot's [`Lookup`] (built from this very snapshot) instead of
/// scanning its credentials and memberships; the same decision.
pub fn decide_with(
    snapshot: &Snapshot,
    lookup: Option<&Lookup>,
    factors: &[PresentedFactor],
    door_id: DoorId,
    direction: Direction,
    at: Timestamp,
) -> Decision {
    let decision = Decision {
        outcome: Outcome::Denied(DenyReason::UnknownCredential),
        person_id: None,
        acs_id: None,
        credential_id: None,
        credential_ids: Vec::new(),
        auth_type: None,
        rules: Vec::new(),
        consume: Vec::new(),
    };
    if factors.is_empty() {
        return decision.deny(DenyReason::UnknownCredential);
    }
    if factors
        .iter()
        .any(|f| matches!(f, PresentedFactor::Face { live: false, .. }))
    {
        return decision.deny(DenyReason::LivenessFailed);
    }

    // 1. Identify.
    let identified = match identify(snapshot, lookup, factors) {
        Ok(identified) => identified,
        Err(reason) => return decision.deny(reason),
    };
    let person_id = identified[0].person_id;
    let mut decision = Decision {
        person_id: Some(person_id),
        credential_id: Some(identified[0].id),
        credential_ids: identified.iter().map(|c| c.id).collect(),
        ..decision
    };
    let Some(person) = snapshot.people.get(&person_id) else {
        return decision.deny(DenyReason::UnknownUser);
    };
    decision.acs_id = Some(person.acs_id.clone());
    if !snapshot.tenant.active {
        return decision.deny(DenyReason::UserInactive);
    }

    // 2. Credential status.
    // DisableReason is declared in precedence order, so the smallest is the one to report.
    let worst = identified
        .iter()
        .flat_map(|c| snapshot.disable_reasons(c, at))
        .min()
        .and_then(DenyReason::from_disable);
    if let Some(reason) = worst {
        return decision.deny(reason);
    }

    // 3. Person.
    if !person.is_active_at(at) {
        return decision.deny(DenyReason::UserInactive);
    }

    // 4. Door.
    let (Some(door), Some(site)) = (
        snapshot.topology.doors.get(&door_id),
        snapshot.topology.site_of_door(door_id),
    ) else {
        return decision.deny(DenyReason::DeviceError);
    };
    if snapshot.locked_down_doors.contains(&door_id) {
        return decision.deny(DenyReason::Lockdown);
    }

    // 5. Rules covering the door. Memberships and attendances enable what the door takes.
    let door_takes = enabled_auth_types(&snapshot.topology, door, direction, None);
    let groups = snapshot.groups_of(person_id);
    let mut rules = Vec::new();
    for access in snapshot.accesses.values() {
        let Some(access_door) = access.door(&snapshot.topology, door_id) else {
            continue;
        };
        let applies = access.person_ids.contains(&person_id)
            || access.group_ids.iter().any(|g| groups.contains(g));
        if !access.is_live() || !applies {
            continue;
        }
        rules.push(Rule {
            entitlement: Entitlement::Access(access.id),
            effect: access.effect,
            window: access.validity,
            in_time: access.validity.contains(at)
                && snapshot.schedule_active(access.schedule_id, &site.time_zone, at),
            auth_types: enabled_auth_types(&snapshot.topology, door, direction, Some(&access_door)),
        });
    }
    for event in snapshot.events.values() {
        if event.is_deleted()
            || !event.is_attendee(person_id)
            || !snapshot.topology.door_within(door_id, event.facility_id)
        {
            continue;
        }
        rules.push(Rule {
            entitlement: Entitlement::Attendee(event.id),
            effect: Effect::Permit,
            window: event.window(),
            in_time: event.window().contains(at),
            auth_types: door_takes.clone(),
        });
    }
    let memberships: Box<dyn Iterator<Item = &Membership>> = match lookup {
        Some(lookup) => Box::new(
            lookup
                .memberships_of(person_id)
                .iter()
                .filter_map(|id| snapshot.memberships.get(id)),
        ),
        None => Box::new(snapshot.memberships.values()),
    };
    for membership in memberships {
        if membership.person_id != person_id
            || membership.removed_at().is_some_and(|r| r <= at)
            || membership
                .facility_id
                .is_some_and(|f| !snapshot.topology.door_within(door_id, f))
        {
            continue;
        }
        rules.push(Rule {
            entitlement: Entitlement::Membership(membership.id),
            effect: Effect::Permit,
            window: Window::ALWAYS,
            in_time: membership.is_active_at(at),
            auth_types: door_takes.clone(),
        });
    }
    let blocking: Vec<Entitlement> = rules
        .iter()
        .filter(|r| r.effect == Effect::Deny && r.in_time && r.window.contains(at))
        .map(|r| r.entitlement)
        .collect();
    if !blocking.is_empty() {
        decision.rules = blocking;
        return decision.deny(DenyReason::BlockedByRule);
    }
    let permits: Vec<&Rule> = rules
        .iter()
        .filter(|r| r.effect == Effect::Permit)
        .collect();
    if permits.is_empty() {
        return decision.deny(DenyReason::NoEntitlement);
    }
    let in_time: Vec<&Rule> = permits.iter().copied().filter(|r| r.in_time).collect();
    if in_time.is_empty() {
        decision.rules = permits.iter().map(|r| r.entitlement).collect();
        return decision.deny(DenyReason::NotInSchedule);
    }

    // 6. Auth types.
    let presented: BTreeSet<Factor> = identified.iter().map(|c| c.factor()).collect();
    let mut granting = Vec::new();
    let mut satisfied = Vec::new();
    for rule in &in_time {
        let before = satisfied.len();
        satisfied.extend(
            rule.auth_types
                .iter()
                .copied()
                .filter(|a| a.is_satisfied_by(&presented)),
        );
        if satisfied.len() > before {
            granting.push(rule.entitlement);
        }
    }
    if granting.is_empty() {
        let started = in_time
            .iter()
            .flat_map(|r| r.auth_types.iter())
            .any(|a| a.is_partially_satisfied_by(&presented));
        return decision.deny(if started {
            DenyReason::SecondFactorMissing
        } else {
            DenyReason::AuthTypeNotAllowed
        });
    }

    // 7. Grant.
    decision.outcome = Outcome::Granted;
    // The most specific auth type satisfied; on a tie, the one declared first.
    decision.auth_type = satisfied
        .into_iter()
        .max_by_key(|a| (a.factors().len(), std::cmp::Reverse(*a)));
    decision.rules = granting;
    decision.consume = identified
        .iter()
        .filter(|c| c.max_uses.is_some())
        .map(|c| c.id)
        .collect();
    decision
}

/// Resolves every factor to a credential of one person; the identifying credential first.
fn identify<'s>(
    snapshot: &'s Snapshot,
    lookup: Option<&Lookup>,
    factors: &[PresentedFactor],
) -> Result<Vec<&'s Credential>, DenyReason> {
    let mut identified: Vec<&Credential> = Vec::new();
    let mut person: Option<PersonId> = None;
    let (pins, others): (Vec<_>, Vec<_>) = factors
        .iter()
        .partition(|f| matches!(f, PresentedFactor::Pin(_)));
    for factor in others.into_iter().chain(pins) {
        let credential =
            resolve(snapshot, lookup, factor, person).ok_or(DenyReason::UnknownCredential)?;
        if person.is_some_and(|p| p != credential.person_id) {
            return Err(DenyReason::UnknownCredential);
        }
        person = Some(credential.person_id);
        if let (
            CredentialValue::CloudKey {
                pin: Some(expected),
                ..
            },
            PresentedFactor::CloudKey { pin: given, .. },
        ) = (&credential.value, factor)
        {
            if !given.as_deref().is_some_and(|g| expected.matches(g.trim())) {
                return Err(DenyReason::SecondFactorMissing);
            }
        }
        if !identified.iter().any(|c| c.id == credential.id) {
            identified.push(credential);
        }
    }
    Ok(identified)
}

/// The credential a factor stands for: not deleted, of `person` if already identified, a
/// live one preferred over a revoked one with the same value, then the lowest id.
fn resolve<'s>(
    snapshot: &'s Snapshot,
    lookup: Option<&Lookup>,
    factor: &PresentedFactor,
    person: Option<PersonId>,
) -> Option<&'s Credential> {
    let matches = |c: &&Credential| -> bool {
        match (factor, &c.value) {
            (PresentedFactor::Card(card), CredentialValue::Card(value)) => card == value,
            (PresentedFactor::Face { credential_id, .. }, CredentialValue::Face { .. })
            | (PresentedFactor::Fingerprint { credential_id }, CredentialValue::Fingerprint(_))
            | (
                PresentedFactor::MobileKey { credential_id },
                CredentialValue::MobileKey { phone_id: Some(_) },
            ) => *credential_id == c.id,
            (PresentedFactor::Pin(pin), CredentialValue::Pin(value)) => {
                pin.trim() == value.expose()
            }
            (PresentedFactor::Qr(qr), CredentialValue::Qr(value)) => qr.trim() == value.expose(),
            (
                PresentedFactor::CloudKey { token, .. },
                CredentialValue::CloudKey { token: value, .. },
            ) => value.matches(token.trim()),
            _ => false,
        }
    };
    let candidates: Box<dyn Iterator<Item = &Credential>> = match lookup {
        Some(lookup) => Box::new(lookup.candidates(snapshot, factor).into_iter()),
        None => Box::new(snapshot.credentials.values()),
    };
    candidates
        .filter(|c| !c.is_deleted() && person.is_none_or(|p| p == c.person_id))
        .filter(matches)
        .min_by_key(|c| (!c.is_live(), c.id))
}
