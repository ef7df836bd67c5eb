//! Accesses: rules that permit or deny people and groups at doors, per direction and auth
//! type, optionally limited by a schedule and a validity window (docs/domain.md §2.2, §7.3).
//!
//! Invariants checked by [`Access::new`]: a temporary access has a `valid_to`;
//! `valid_to > valid_from`; at least one door, unless the access covers a whole site.
//! [`validate_access_doors`] checks the doors against the topology: every door exists,
//! lies in one site (the access's site, when it covers one), only enables auth types the
//! door takes in that direction, and (for a permit) enables something at every door.
//!
//! An access covering a site (`site_id`) applies at every door of that site, doors added
//! later included; its `doors` entries, if any, only set what is enabled at those doors
//! ([`Access::door`] gives every other door of the site a default entry).
//!
//! [`enabled_auth_types`] is the one rule of what an entitlement enables at a door, which
//! the decision and the desired state share (docs/domain.md §8.2 rule 8): a membership or
//! an attendance enables every auth type the door takes
//! ([`Topology::door_auth_types`]); an access door entry enables the types it lists that
//! the door takes, or, listing none for that direction, every type the door takes.

use super::auth::{AuthType, Direction};
use super::id::{AccessId, DoorId, GroupId, PersonId, ScheduleId, SiteId, TenantId};
use super::provisioning::ProvisioningStatus;
use super::topology::{Door, Topology};
use super::validation::{InvalidField, Problem, Window, required_text};
use jiff::Timestamp;
use std::borrow::Cow;
use std::collections::BTreeSet;

/// Permanent or temporary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessKind {
    /// Stays until deleted (staff, residents).
    Permanent,
    /// Has a mandatory `valid_to`; after it the access stops granting and is purged from
    /// the hardware.
    Temporary,
}

/// Whether the access lets people through or blocks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Grants, if schedule and auth type allow.
    Permit,
    /// Blocks (evaluated before every permit).
    Deny,
}

/// One door of an access and what is enabled there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessDoor {
    /// The door.
    pub door_id: DoorId,
    /// Whether scheduled unlock is enabled for this door.
    pub lock_unlock: bool,
    /// Auth types enabled for entering; `None`: every type the door takes.
    pub in_auth_types: Option<BTreeSet<AuthType>>,
    /// Auth types enabled for leaving; `None`: every type the door takes.
    pub out_auth_types: Option<BTreeSet<AuthType>>,
}

impl AccessDoor {
    /// The auth types listed for `direction` (`None`: the door's).
    pub fn auth_types(&self, direction: Direction) -> Option<&BTreeSet<AuthType>> {
        match direction {
            Direction::In => self.in_auth_types.as_ref(),
            Direction::Out => self.out_auth_types.as_ref(),
        }
    }
}

/// The auth types an entitlement enables at `door` in `direction`: with `entry` (the
/// door's entry in an access), the types it lists that the door takes, or every type the
/// door takes when it lists none for `direction`; without (a membership, an attendance),
/// every type the door takes. The decision and the desired state both use this rule.
pub fn enabled_auth_types(
    topology: &Topology,
    door: &Door,
    direction: Direction,
    entry: Option<&AccessDoor>,
) -> BTreeSet<AuthType> {
    let takes = topology.door_auth_types(door, direction);
    match entry.and_then(|e| e.auth_types(direction)) {
        Some(listed) => listed.intersection(&takes).copied().collect(),
        None => takes.into_owned(),
    }
}

/// Everything about an access but its id and status, for [`Access::new`].
#[derive(Debug, Clone)]
pub struct AccessSpec {
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// Display name.
    pub name: String,
    /// Permanent or temporary.
    pub kind: AccessKind,
    /// Permit or deny.
    pub effect: Effect,
    /// Start of validity.
    pub valid_from: Option<Timestamp>,
    /// End of validity (required if temporary).
    pub valid_to: Option<Timestamp>,
    /// The schedule limiting it; `None` = 24/7.
    pub schedule_id: Option<ScheduleId>,
    /// The site whose every door it covers (doors added later included); `None`: only
    /// the doors listed.
    pub site_id: Option<SiteId>,
    /// The doors (with a site: what is enabled at some of its doors; may be empty).
    pub doors: Vec<AccessDoor>,
    /// People it applies to directly.
    pub person_ids: BTreeSet<PersonId>,
    /// Groups whose members it applies to.
    pub group_ids: BTreeSet<GroupId>,
}

/// An access rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Its id.
    pub id: AccessId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// Display name.
    pub name: String,
    /// Permanent or temporary.
    pub kind: AccessKind,
    /// Permit or deny.
    pub effect: Effect,
    /// `[valid_from, valid_to)`.
    pub validity: Window,
    /// The schedule limiting it; `None` = 24/7.
    pub schedule_id: Option<ScheduleId>,
    /// The site whose every door it covers; `None`: only the doors listed.
    pub site_id: Option<SiteId>,
    /// The doors listed (with a site: what is enabled at some of its doors).
    pub doors: Vec<AccessDoor>,
    /// People it applies to directly.
    pub person_ids: BTreeSet<PersonId>,
    /// Groups whose members it applies to.
    pub group_ids: BTreeSet<GroupId>,
    /// Provisioning status (server-owned).
    pub status: ProvisioningStatus,
    /// Whether the people it applies to get a welcome message when they are added.
    pub welcome_email_required: bool,
}

impl Access {
    /// A new access in status `initial`. Fails naming the field: `name` empty, `valid_to`
    /// missing on a temporary access or not after `valid_from`, `doors` empty or a door
    /// listed twice. An access covering a site may list no door.
    pub fn new(id: AccessId, spec: AccessSpec) -> Result<Access, InvalidField> {
        let name = required_text("name", &spec.name, 200)?;
        if spec.kind == AccessKind::Temporary && spec.valid_to.is_none() {
            return Err(InvalidField::new("valid_to", Problem::Missing));
        }
        let validity = Window::new(spec.valid_from, spec.valid_to, "valid_from", "valid_to")?;
        if spec.doors.is_empty() && spec.site_id.is_none() {
            return Err(InvalidField::new("doors", Problem::Empty));
        }
        let mut seen = BTreeSet::new();
        for (i, door) in spec.doors.iter().enumerate() {
            if !seen.insert(door.door_id) {
                return Err(InvalidField::new(
                    format!("doors[{i}].door_id"),
                    Problem::Duplicate,
                ));
            }
        }
        Ok(Access {
            id,
            tenant_id: spec.tenant_id,
            name,
            kind: spec.kind,
            effect: spec.effect,
            validity,
            schedule_id: spec.schedule_id,
            site_id: spec.site_id,
            doors: spec.doors,
            person_ids: spec.person_ids,
            group_ids: spec.group_ids,
            status: ProvisioningStatus::Initial,
            welcome_email_required: false,
        })
    }

    /// Whether the access lists `door` among its doors.
    pub fn lists(&self, door: DoorId) -> bool {
        self.doors.iter().any(|d| d.door_id == door)
    }

    /// The entry for `door`, if the access covers it: the one it lists, or, for another
    /// door of the site it covers, an entry enabling every auth type the door takes.
    pub fn door(&self, topology: &Topology, door: DoorId) -> Option<Cow<'_, AccessDoor>> {
        if let Some(entry) = self.doors.iter().find(|d| d.door_id == door) {
            return Some(Cow::Borrowed(entry));
        }
        let site = self.site_id?;
        let in_site = topology.site_of_door(door).map(|s| s.id) == Some(site);
        in_site.then_some(Cow::Owned(AccessDoor {
            door_id: door,
            lock_unlock: false,
            in_auth_types: None,
            out_auth_types: None,
        }))
    }

    /// The site the access lies in: the one it covers, or that of its doors.
    pub fn site(&self, topology: &Topology) -> Option<SiteId> {
        self.site_id.or_else(|| {
            self.doors
                .first()
                .and_then(|d| topology.site_of_door(d.door_id))
                .map(|s| s.id)
        })
    }

    /// Whether the access still counts (not being or been deleted).
    pub fn is_live(&self) -> bool {
        !self.status.is_deleted()
    }

    /// Whether the access is over at `at`: live, with a `valid_to` at or before `at`. Its
    /// status then reads `expired` (docs/domain.md §7.5).
    pub fn is_expired_at(&self, at: Timestamp) -> bool {
        self.is_live() && self.validity.is_after(at)
    }
}

/// Checks an access's doors against the topology and returns the one site they are in.
///
/// Fails naming the field: `doors[i].door_id` unknown ([`Problem::Unknown`]) or in another
/// site than `doors[0]` ([`Problem::OtherSite`]); `doors[i].in_auth_types` /
/// `doors[i].out_auth_types` listing an auth type the door does not take in that
/// direction ([`Problem::UnsupportedByDoor`]); for a permit (`effect`), a door entry that
/// lists no auth type in either direction, so that it could never grant anything there
/// (`doors[i].in_auth_types`, [`Problem::GrantsNothing`]). Deny accesses block whatever
/// auth types they list.
pub fn validate_access_doors(
    topology: &Topology,
    effect: Effect,
    doors: &[AccessDoor],
) -> Result<Option<SiteId>, InvalidField> {
    let mut site_id = None;
    for (i, access_door) in doors.iter().enumerate() {
        let field = |name: &str| format!("doors[{i}].{name}");
        let door = topology
            .doors
            .get(&access_door.door_id)
            .ok_or_else(|| InvalidField::new(field("door_id"), Problem::Unknown))?;
        let door_site = topology
            .site_of_door(door.id)
            .map(|s| s.id)
            .ok_or_else(|| InvalidField::new(field("door_id"), Problem::Unknown))?;
        match site_id {
            None => site_id = Some(door_site),
            Some(site) if site != door_site => {
                return Err(InvalidField::new(field("door_id"), Problem::OtherSite));
            }
            Some(_) => {}
        }
        let listed_nothing = [Direction::In, Direction::Out]
            .into_iter()
            .all(|d| access_door.auth_types(d).is_some_and(BTreeSet::is_empty));
        if effect == Effect::Permit && listed_nothing {
            return Err(InvalidField::new(
                field("in_auth_types"),
                Problem::GrantsNothing,
            ));
        }
        for (direction, name) in [
            (Direction::In, "in_auth_types"),
            (Direction::Out, "out_auth_types"),
        ] {
            let Some(listed) = access_door.auth_types(direction) else {
                continue;
            };
            let takes = topology.door_auth_types(door, direction);
            let unsupported: Vec<&str> = listed.difference(&takes).map(|a| a.name()).collect();
            if !unsupported.is_empty() {
                return Err(InvalidField::new(
                    field(name),
                    Problem::UnsupportedByDoor {
                        auth_types: unsupported.join(", "),
                    },
                ));
            }
        }
    }
    Ok(site_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::id::{FacilityId, SiteId};
    use crate::domain::topology::{Door, Facility, FacilityKind, Site};

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn door(id: u64, in_types: &[AuthType]) -> AccessDoor {
        AccessDoor {
            door_id: DoorId::new(id),
            lock_unlock: false,
            in_auth_types: Some(in_types.iter().copied().collect()),
            out_auth_types: None,
        }
    }

    fn spec(kind: AccessKind, from: Option<i64>, to: Option<i64>) -> AccessSpec {
        AccessSpec {
            tenant_id: TenantId::new(1),
            name: "staff".into(),
            kind,
            effect: Effect::Permit,
            valid_from: from.map(ts),
            valid_to: to.map(ts),
            schedule_id: None,
            site_id: None,
            doors: vec![door(1, &[AuthType::Card])],
            person_ids: BTreeSet::new(),
            group_ids: BTreeSet::new(),
        }
    }

    #[test]
    fn temporary_needs_valid_to_after_valid_from() {
        let err =
            Access::new(AccessId::new(1), spec(AccessKind::Temporary, None, None)).unwrap_err();
        assert_eq!(err, InvalidField::new("valid_to", Problem::Missing));
        let err = Access::new(
            AccessId::new(1),
            spec(AccessKind::Temporary, Some(10), Some(10)),
        )
        .unwrap_err();
        assert_eq!(err.field, "valid_to");
        assert_eq!(
            err.problem,
            Problem::NotAfter {
                other: "valid_from"
            }
        );
        let ok = Access::new(
            AccessId::new(1),
            spec(AccessKind::Temporary, Some(10), Some(11)),
        )
        .unwrap();
        assert_eq!(ok.status, ProvisioningStatus::Initial);
        assert!(Access::new(AccessId::new(1), spec(AccessKind::Permanent, None, None)).is_ok());
    }

    #[test]
    fn doors_required_and_not_repeated() {
        let mut s = spec(AccessKind::Permanent, None, None);
        s.doors.clear();
        assert_eq!(Access::new(AccessId::new(1), s).unwrap_err().field, "doors");
        let mut s = spec(AccessKind::Permanent, None, None);
        s.doors.push(door(1, &[]));
        assert_eq!(
            Access::new(AccessId::new(1), s).unwrap_err().field,
            "doors[1].door_id"
        );
    }

    #[test]
    fn auth_types_must_be_supported_by_the_door() {
        let mut topology = Topology::default();
        for site in [1, 2] {
            let s = Site::new(SiteId::new(site), TenantId::new(1), "s", "UTC").unwrap();
            topology.sites.insert(s.id, s);
            let f = Facility::new(
                FacilityId::new(site),
                SiteId::new(site),
                None,
                "f",
                FacilityKind::Facility,
            )
            .unwrap();
            topology.facilities.insert(f.id, f);
        }
        for (id, facility) in [(1, 1), (2, 1), (3, 2)] {
            let d = Door::new(
                DoorId::new(id),
                FacilityId::new(facility),
                "d",
                [AuthType::Card, AuthType::CardPlusPin],
                [AuthType::Card],
            )
            .unwrap();
            topology.doors.insert(d.id, d);
        }
        let permit = |doors: &[AccessDoor]| validate_access_doors(&topology, Effect::Permit, doors);
        assert_eq!(
            permit(&[door(1, &[AuthType::CardPlusPin]), door(2, &[])]),
            Ok(Some(SiteId::new(1)))
        );
        let err = permit(&[door(1, &[AuthType::Face, AuthType::Card])]).unwrap_err();
        assert_eq!(err.field, "doors[0].in_auth_types");
        assert_eq!(
            err.problem,
            Problem::UnsupportedByDoor {
                auth_types: "face".into()
            }
        );
        let mut out = door(1, &[]);
        out.out_auth_types = Some([AuthType::CardPlusPin].into());
        assert_eq!(permit(&[out]).unwrap_err().field, "doors[0].out_auth_types");
        assert_eq!(
            permit(&[door(9, &[])]).unwrap_err(),
            InvalidField::new("doors[0].door_id", Problem::Unknown)
        );
        assert_eq!(
            permit(&[door(1, &[]), door(3, &[])]).unwrap_err(),
            InvalidField::new("doors[1].door_id", Problem::OtherSite)
        );
        // Nothing listed in either direction: a permit could never grant there.
        let mut nothing = door(2, &[]);
        nothing.out_auth_types = Some(BTreeSet::new());
        assert_eq!(
            permit(&[door(1, &[AuthType::Card]), nothing.clone()]).unwrap_err(),
            InvalidField::new("doors[1].in_auth_types", Problem::GrantsNothing)
        );
        assert!(validate_access_doors(&topology, Effect::Deny, &[nothing]).is_ok());
    }

    #[test]
    fn one_rule_for_what_an_entitlement_enables() {
        let mut topology = Topology::default();
        let site = Site::new(SiteId::new(1), TenantId::new(1), "s", "UTC").unwrap();
        topology.sites.insert(site.id, site);
        let f = Facility::new(
            FacilityId::new(1),
            SiteId::new(1),
            None,
            "f",
            FacilityKind::Facility,
        )
        .unwrap();
        topology.facilities.insert(f.id, f);
        let declared = Door::new(
            DoorId::new(1),
            FacilityId::new(1),
            "declared",
            [AuthType::Card, AuthType::Pin],
            [AuthType::Card],
        )
        .unwrap();
        let bare = Door::new(DoorId::new(2), FacilityId::new(1), "bare", [], []).unwrap();
        for d in [declared.clone(), bare.clone()] {
            topology.doors.insert(d.id, d);
        }
        // A door that declares nothing takes nothing until a terminal serves it.
        assert!(enabled_auth_types(&topology, &bare, Direction::In, None).is_empty());
        let terminal = crate::domain::terminal::Terminal::new(
            crate::domain::TerminalId::new(1),
            crate::domain::TerminalSpec {
                facility_id: FacilityId::new(1),
                model: crate::domain::TerminalModel::IdAccess,
                address: "http://10.0.0.5".into(),
                login: "admin".into(),
                password: crate::domain::DevicePassword::new("x"),
                operating_mode: crate::domain::OperatingMode::Standalone,
                door_ids: [DoorId::new(2)].into(),
            },
        )
        .unwrap();
        topology.terminals.insert(terminal.id, terminal);
        let takes = enabled_auth_types(&topology, &bare, Direction::Out, None);
        assert!(takes.contains(&AuthType::Fingerprint) && takes.contains(&AuthType::CloudKey));
        assert!(!takes.contains(&AuthType::Face), "{takes:?}");
        // An entry listing nothing for a direction takes the door's; a list is cut to what
        // the door takes.
        let mut entry = door(1, &[AuthType::Pin]);
        assert_eq!(
            enabled_auth_types(&topology, &declared, Direction::In, Some(&entry)),
            [AuthType::Pin].into()
        );
        assert_eq!(
            enabled_auth_types(&topology, &declared, Direction::Out, Some(&entry)),
            [AuthType::Card].into()
        );
        entry.in_auth_types = Some([AuthType::Face, AuthType::Card].into());
        assert_eq!(
            enabled_auth_types(&topology, &declared, Direction::In, Some(&entry)),
            [AuthType::Card].into()
        );
    }

    #[test]
    fn an_access_is_expired_from_valid_to() {
        let access = Access::new(
            AccessId::new(1),
            spec(AccessKind::Temporary, Some(10), Some(20)),
        )
        .unwrap();
        assert!(!access.is_expired_at(ts(19)));
        assert!(access.is_expired_at(ts(20)));
        let mut deleted = access;
        deleted.status = ProvisioningStatus::Deleted;
        assert!(!deleted.is_expired_at(ts(30)));
    }
}
