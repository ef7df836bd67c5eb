//! Where things are: tenants, sites (with their IANA time zone), facilities, doors and the
//! terminals serving them, plus [`Topology`], the lookup over all of them.
//!
//! Time zones come from jiff's bundled copy of the IANA database, never from the machine's
//! zoneinfo, so the core and its tests evaluate schedules identically on every host.

use super::auth::{AuthType, Direction};
use super::id::{DoorId, FacilityId, SiteId, TenantId, TerminalId};
use super::validation::{InvalidField, Problem, required_text};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::OnceLock;

const MAX_NAME: usize = 200;

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

    /// The auth types supported in `direction`.
    pub fn supported(&self, direction: Direction) -> &BTreeSet<AuthType> {
        match direction {
            Direction::In => &self.supported_in,
            Direction::Out => &self.supported_out,
        }
    }
}

/// Where decisions are made (docs/device-api.md, docs/domain.md §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperatingMode {
    /// The terminal identifies and authorises on its own from the data pushed to it.
    Standalone,
    /// The terminal identifies; the core authorises.
    Pro,
    /// The core identifies and authorises.
    Enterprise,
}

/// The password the core logs in to a terminal with. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct DevicePassword(String);

impl DevicePassword {
    /// Wraps a device password.
    pub fn new(password: impl Into<String>) -> Self {
        DevicePassword(password.into())
    }

    /// The password, for the driver's login call only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DevicePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DevicePassword(<redacted>)")
    }
}

/// A terminal: a device at a facility that serves doors and holds credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    /// Its id.
    pub id: TerminalId,
    /// The facility it is installed in.
    pub facility_id: FacilityId,
    /// The device model (e.g. `iDFace`).
    pub model: String,
    /// Where the core reaches it (`http://10.0.0.5`).
    pub address: String,
    /// Device login.
    pub login: String,
    /// Device password (redacted in `Debug`).
    pub password: DevicePassword,
    /// Where decisions are made.
    pub operating_mode: OperatingMode,
    /// The doors it serves.
    pub door_ids: BTreeSet<DoorId>,
}

/// Everything about a terminal except its id and doors, for [`Terminal::new`].
#[derive(Debug, Clone)]
pub struct TerminalSpec {
    /// The facility it is installed in.
    pub facility_id: FacilityId,
    /// The device model.
    pub model: String,
    /// Where the core reaches it.
    pub address: String,
    /// Device login.
    pub login: String,
    /// Device password.
    pub password: DevicePassword,
    /// Where decisions are made.
    pub operating_mode: OperatingMode,
    /// The doors it serves.
    pub door_ids: BTreeSet<DoorId>,
}

impl Terminal {
    /// A terminal; model, address and login are trimmed and must be non-empty.
    pub fn new(id: TerminalId, spec: TerminalSpec) -> Result<Terminal, InvalidField> {
        Ok(Terminal {
            id,
            facility_id: spec.facility_id,
            model: required_text("model", &spec.model, MAX_NAME)?,
            address: required_text("address", &spec.address, 2048)?,
            login: required_text("login", &spec.login, MAX_NAME)?,
            password: spec.password,
            operating_mode: spec.operating_mode,
            door_ids: spec.door_ids,
        })
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
    fn device_password_is_never_printed() {
        let terminal = Terminal::new(
            TerminalId::new(1),
            TerminalSpec {
                facility_id: FacilityId::new(1),
                model: "iDFace".into(),
                address: "http://10.0.0.5".into(),
                login: "admin".into(),
                password: DevicePassword::new("hunter2"),
                operating_mode: OperatingMode::Standalone,
                door_ids: BTreeSet::new(),
            },
        )
        .unwrap();
        let printed = format!("{terminal:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert_eq!(terminal.password.expose(), "hunter2");
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
