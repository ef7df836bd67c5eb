//! Where things are: tenants, sites (with their IANA time zone), facilities, doors, plus
//! [`Topology`], the lookup over them and the terminals serving the doors (the terminals
//! themselves are [`super::terminal`]).
//!
//! Time zones come from jiff's bundled copy of the IANA database, never from the machine's
//! zoneinfo, so the core and its tests evaluate schedules identically on every host.
//!
//! A door takes the auth types it declares; a door that declares none takes every auth type
//! the models of the terminals serving it can read ([`Topology::door_auth_types`],
//! docs/domain.md §8.2 rule 8). A terminal's model is one of [`TerminalModel`] and its
//! address an `http://` or `https://` URL ([`terminal_address`]).

use super::auth::{AuthType, Direction};
use super::id::{DoorId, FacilityId, SiteId, TenantId, TerminalId};
use super::terminal::Terminal;
use super::validation::{InvalidField, Problem, required_text};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// The longest name of a site, facility, door or terminal login, in characters.
pub(crate) const MAX_NAME: usize = 200;

/// Looks up an IANA time zone name (`Europe/Madrid`) in the bundled database.
///
/// Fails naming `field` if the name is not a known zone.
pub fn time_zone(field: &'static str, iana_name: &str) -> Result<TimeZone, InvalidField> {
    static DB: OnceLock<TimeZoneDatabase> = OnceLock::new();
    let db = DB.get_or_init(TimeZoneDatabase::bundled);
    db.get(iana_name.trim()).map_err(|_| {
        InvalidField::new(
            field,
            Problem::Invalid {
                expected: "an IANA time zone name such as Europe/Madrid",
            },
        )
    })
}

/// A tenant: an integrator's customer. Every other entity belongs to exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// Whether the tenant is active; an inactive tenant's terminals hold nothing.
    pub active: bool,
}

impl Tenant {
    /// An active tenant; the name is trimmed and must be non-empty.
    pub fn new(id: TenantId, name: &str) -> Result<Tenant, InvalidField> {
        Ok(Tenant {
            id,
            name: required_text("name", name, MAX_NAME)?,
            active: true,
        })
    }
}

/// A site: one place, one time zone. Schedules of its doors are evaluated in that zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// Its id.
    pub id: SiteId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// Display name.
    pub name: String,
    /// The site's IANA time zone.
    pub time_zone: TimeZone,
}

impl Site {
    /// A site named `name` in the IANA zone `time_zone` (field `timezone`).
    pub fn new(
        id: SiteId,
        tenant_id: TenantId,
        name: &str,
        iana_time_zone: &str,
    ) -> Result<Site, InvalidField> {
        Ok(Site {
            id,
            tenant_id,
            name: required_text("name", name, MAX_NAME)?,
            time_zone: time_zone("timezone", iana_time_zone)?,
        })
    }
}

/// What a facility is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FacilityKind {
    /// A whole facility (a venue, a building).
    Facility,
    /// A section of a facility.
    Section,
    /// An area (e.g. a floor, a room).
    Area,
    /// An anti-passback area.
    ApbArea,
}

/// A facility, section or area of a site; facilities nest through `parent_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facility {
    /// Its id.
    pub id: FacilityId,
    /// The site it is in.
    pub site_id: SiteId,
    /// The enclosing facility, if any (same site).
    pub parent_id: Option<FacilityId>,
    /// Display name.
    pub name: String,
    /// What it is.
    pub kind: FacilityKind,
}

impl Facility {
    /// A facility; the name is trimmed and must be non-empty.
    pub fn new(
        id: FacilityId,
        site_id: SiteId,
        parent_id: Option<FacilityId>,
        name: &str,
        kind: FacilityKind,
    ) -> Result<Facility, InvalidField> {
        Ok(Facility {
            id,
            site_id,
            parent_id,
            name: required_text("name", name, MAX_NAME)?,
            kind,
        })
    }
}

/// A door (access point) and the auth types its hardware supports per direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Door {
    /// Its id.
    pub id: DoorId,
    /// The facility it belongs to.
    pub facility_id: FacilityId,
    /// Display name.
    pub name: String,
    /// Auth types supported for entering.
    pub supported_in: BTreeSet<AuthType>,
    /// Auth types supported for leaving.
    pub supported_out: BTreeSet<AuthType>,
}

impl Door {
    /// A door; the name is trimmed and must be non-empty.
    pub fn new(
        id: DoorId,
        facility_id: FacilityId,
        name: &str,
        supported_in: impl IntoIterator<Item = AuthType>,
        supported_out: impl IntoIterator<Item = AuthType>,
    ) -> Result<Door, InvalidField> {
        Ok(Door {
            id,
            facility_id,
            name: required_text("name", name, MAX_NAME)?,
            supported_in: supported_in.into_iter().collect(),
            supported_out: supported_out.into_iter().collect(),
        })
    }

    /// The auth types declared as supported in `direction` (see
    /// [`Topology::door_auth_types`] for what the door takes).
    pub fn supported(&self, direction: Direction) -> &BTreeSet<AuthType> {
        match direction {
            Direction::In => &self.supported_in,
            Direction::Out => &self.supported_out,
        }
    }

    /// Whether the door declares its auth types (in either direction). A door that declares
    /// none takes what its terminals can read.
    pub fn declares_auth_types(&self) -> bool {
        !self.supported_in.is_empty() || !self.supported_out.is_empty()
    }
}

/// The tenant's sites, facilities, doors and terminals, with the lookups decisions and
/// desired state need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Topology {
    /// Sites by id.
    pub sites: BTreeMap<SiteId, Site>,
    /// Facilities by id.
    pub facilities: BTreeMap<FacilityId, Facility>,
    /// Doors by id.
    pub doors: BTreeMap<DoorId, Door>,
    /// Terminals by id.
    pub terminals: BTreeMap<TerminalId, Terminal>,
}

impl Topology {
    /// Whether `facility` is `ancestor` or lies (transitively) inside it.
    ///
    /// A parent cycle (which the store should never allow) ends the walk instead of
    /// looping.
    pub fn facility_within(&self, facility: FacilityId, ancestor: FacilityId) -> bool {
        let mut current = Some(facility);
        for _ in 0..=self.facilities.len() {
            match current {
                Some(id) if id == ancestor => return true,
                Some(id) => current = self.facilities.get(&id).and_then(|f| f.parent_id),
                None => return false,
            }
        }
        false
    }

    /// The site a facility is in.
    pub fn site_of_facility(&self, facility: FacilityId) -> Option<&Site> {
        self.facilities
            .get(&facility)
            .and_then(|f| self.sites.get(&f.site_id))
    }

    /// The site a door is in.
    pub fn site_of_door(&self, door: DoorId) -> Option<&Site> {
        self.doors
            .get(&door)
            .and_then(|d| self.site_of_facility(d.facility_id))
    }

    /// The terminals serving `door`.
    pub fn terminals_serving(&self, door: DoorId) -> impl Iterator<Item = &Terminal> {
        self.terminals
            .values()
            .filter(move |t| t.door_ids.contains(&door))
    }

    /// The auth types `door` takes in `direction`: the ones it declares, or, when it
    /// declares none in either direction, every auth type the models of the terminals
    /// serving it can read (the same in both directions; none without a terminal). Every
    /// entitlement enables a subset of these (docs/domain.md §8.2 rule 8).
    pub fn door_auth_types<'a>(
        &'a self,
        door: &'a Door,
        direction: Direction,
    ) -> Cow<'a, BTreeSet<AuthType>> {
        if door.declares_auth_types() {
            Cow::Borrowed(door.supported(direction))
        } else {
            Cow::Owned(
                self.terminals_serving(door.id)
                    .flat_map(|t| t.model.auth_types())
                    .collect(),
            )
        }
    }

    /// Whether `door` lies inside `facility`: its own facility does, or a terminal serving
    /// it is installed there. (An event at a facility covers its doors and the doors its
    /// terminals serve, so decisions agree with what the terminals were given.)
    pub fn door_within(&self, door: DoorId, facility: FacilityId) -> bool {
        self.doors
            .get(&door)
            .is_some_and(|d| self.facility_within(d.facility_id, facility))
            || self
                .terminals_serving(door)
                .any(|t| self.facility_within(t.facility_id, facility))
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_time_zone_is_validated() {
        let site = Site::new(SiteId::new(1), TenantId::new(1), "HQ", "Europe/Madrid").unwrap();
        assert_eq!(site.time_zone.iana_name(), Some("Europe/Madrid"));
        let err = Site::new(SiteId::new(1), TenantId::new(1), "HQ", "Mars/Olympus").unwrap_err();
        assert_eq!(err.field, "timezone");
    }

    #[test]
    fn facilities_nest_and_cycles_terminate() {
        let mut topology = Topology::default();
        let site = SiteId::new(1);
        for (id, parent) in [
            (1, None),
            (2, Some(1)),
            (3, Some(2)),
            (8, Some(9)),
            (9, Some(8)),
        ] {
            let facility = Facility::new(
                FacilityId::new(id),
                site,
                parent.map(FacilityId::new),
                "f",
                FacilityKind::Area,
            )
            .unwrap();
            topology.facilities.insert(facility.id, facility);
        }
        let f = FacilityId::new;
        assert!(topology.facility_within(f(3), f(1)));
        assert!(topology.facility_within(f(1), f(1)));
        assert!(!topology.facility_within(f(1), f(3)));
        assert!(!topology.facility_within(f(8), f(1)));
    }
}
