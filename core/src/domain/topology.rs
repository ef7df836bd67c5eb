//! Where things are: tenants, sites (with their IANA time zone), facilities, doors and the
//! terminals serving them, plus [`Topology`], the lookup over all of them.
//!
//! Time zones come from jiff's bundled copy of the IANA database, never from the machine's
//! zoneinfo, so the core and its tests evaluate schedules identically on every host.
//!
//! A door takes the auth types it declares; a door that declares none takes every auth type
//! the models of the terminals serving it can read ([`Topology::door_auth_types`],
//! docs/domain.md §8.2 rule 8). A terminal's model is one of [`TerminalModel`] and its
//! address an `http://` or `https://` URL ([`terminal_address`]).

use super::auth::{AuthType, Direction, Factor};
use super::id::{DoorId, FacilityId, SiteId, TenantId, TerminalId};
use super::validation::{InvalidField, Problem, required_text};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
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

/// A terminal model: what its readers take and how it opens its door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TerminalModel {
    /// iDFace: face, card, QR, PIN; opens through a Security Box.
    IdFace,
    /// iDFace Max: like iDFace.
    IdFaceMax,
    /// iDAccess: fingerprint, card, PIN; opens with its own relay.
    IdAccess,
    /// iDFlex: fingerprint, card, PIN; opens through a Security Box.
    IdFlex,
    /// A Control iD terminal of no particular model (`terminal`): assumed to read every
    /// kind of credential a terminal can hold.
    Generic,
}

impl TerminalModel {
    /// Every model.
    pub const ALL: [TerminalModel; 5] = [
        TerminalModel::IdFace,
        TerminalModel::IdFaceMax,
        TerminalModel::IdAccess,
        TerminalModel::IdFlex,
        TerminalModel::Generic,
    ];

    /// The name used in the integrator API (`idface`, `idface-max`, `idaccess`, `idflex`,
    /// `terminal`).
    pub fn name(self) -> &'static str {
        match self {
            TerminalModel::IdFace => "idface",
            TerminalModel::IdFaceMax => "idface-max",
            TerminalModel::IdAccess => "idaccess",
            TerminalModel::IdFlex => "idflex",
            TerminalModel::Generic => "terminal",
        }
    }

    /// The model named `name`, ignoring case, spaces, hyphens and underscores (`iDFace
    /// Max` is `idface-max`); fails naming `field`.
    pub fn parse(field: &str, name: &str) -> Result<TerminalModel, InvalidField> {
        let folded = |text: &str| -> String {
            text.chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        let wanted = folded(name);
        TerminalModel::ALL
            .into_iter()
            .find(|m| folded(m.name()) == wanted)
            .ok_or_else(|| {
                InvalidField::new(
                    field,
                    Problem::Invalid {
                        expected: "one of idface, idface-max, idaccess, idflex, terminal",
                    },
                )
            })
    }

    /// The factors its readers take (every model has a card reader and a keypad).
    pub fn reads(self) -> &'static [Factor] {
        match self {
            TerminalModel::IdFace | TerminalModel::IdFaceMax => {
                &[Factor::Face, Factor::Card, Factor::Pin, Factor::Qr]
            }
            TerminalModel::IdAccess | TerminalModel::IdFlex => {
                &[Factor::Fingerprint, Factor::Card, Factor::Pin]
            }
            TerminalModel::Generic => &[
                Factor::Face,
                Factor::Fingerprint,
                Factor::Card,
                Factor::Pin,
                Factor::Qr,
            ],
        }
    }

    /// The auth types a door served by this model can take: those whose every factor the
    /// model reads or the core checks itself (cloud keys and mobile keys, which open the
    /// door through the terminal).
    pub fn auth_types(self) -> impl Iterator<Item = AuthType> {
        AuthType::ALL.into_iter().filter(move |a| {
            a.factors()
                .iter()
                .all(|f| !f.is_terminal_held() || self.reads().contains(f))
        })
    }

    /// Whether it opens its door with its own relay (the `door` action) rather than a
    /// Security Box (`sec_box`).
    pub fn opens_with_relay(self) -> bool {
        self == TerminalModel::IdAccess
    }
}

impl fmt::Display for TerminalModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Checks a terminal address: an `http://` or `https://` URL with a host (a name, an IPv4
/// address or a bracketed IPv6 address), an optional port in 1..=65535 and an optional
/// path; no user, query or fragment. Returns it trimmed; fails naming `field`.
pub fn terminal_address(field: &str, text: &str) -> Result<String, InvalidField> {
    const EXPECTED: Problem = Problem::Invalid {
        expected: "an http:// or https:// URL with a host, such as http://10.0.0.5",
    };
    let address = text.trim();
    if address.is_empty() {
        return Err(InvalidField::new(field, Problem::Empty));
    }
    if address.chars().count() > 2048 {
        return Err(InvalidField::new(field, Problem::TooLong { max: 2048 }));
    }
    let lower = address.to_ascii_lowercase();
    let rest = match (
        lower.strip_prefix("http://"),
        lower.strip_prefix("https://"),
    ) {
        (Some(_), _) => &address["http://".len()..],
        (_, Some(_)) => &address["https://".len()..],
        _ => return Err(InvalidField::new(field, EXPECTED)),
    };
    if rest
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '\\'))
    {
        return Err(InvalidField::new(field, EXPECTED));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if !valid_authority(authority) {
        return Err(InvalidField::new(field, EXPECTED));
    }
    Ok(address.to_owned())
}

/// `host[:port]` of a URL, without a user.
fn valid_authority(authority: &str) -> bool {
    let (host_ok, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((inside, after)) = v6.split_once(']') else {
            return false;
        };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return false,
            },
        };
        (inside.parse::<Ipv6Addr>().is_ok(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (valid_host(host), Some(port)),
            None => (valid_host(authority), None),
        }
    };
    host_ok
        && port.is_none_or(|p| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_digit())
                && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
        })
}

/// A host name (labels of letters, digits and inner hyphens) or an IPv4 address.
fn valid_host(host: &str) -> bool {
    if host.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    let labels: Vec<&str> = host.strip_suffix('.').unwrap_or(host).split('.').collect();
    // A name whose last label is all digits would be a malformed IPv4 address.
    let numeric_tail = labels
        .last()
        .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()));
    !host.is_empty()
        && host.len() <= 253
        && !numeric_tail
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
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
    /// The device model.
    pub model: TerminalModel,
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
    /// The `device_id` of the device answering at its address, once known (from the probe
    /// when it was registered, or from the sync engine's first contact). No two terminals
    /// of any tenants have the same.
    pub device_id: Option<i64>,
}

/// Everything about a terminal except its id and device id, for [`Terminal::new`].
#[derive(Debug, Clone)]
pub struct TerminalSpec {
    /// The facility it is installed in.
    pub facility_id: FacilityId,
    /// The device model.
    pub model: TerminalModel,
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
    /// A terminal whose device is not known yet; the address must be an http(s) URL
    /// ([`terminal_address`]), the login non-empty (both are trimmed).
    pub fn new(id: TerminalId, spec: TerminalSpec) -> Result<Terminal, InvalidField> {
        Ok(Terminal {
            id,
            facility_id: spec.facility_id,
            model: spec.model,
            address: terminal_address("address", &spec.address)?,
            login: required_text("login", &spec.login, MAX_NAME)?,
            password: spec.password,
            operating_mode: spec.operating_mode,
            door_ids: spec.door_ids,
            device_id: None,
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
    fn device_password_is_never_printed() {
        let terminal = Terminal::new(
            TerminalId::new(1),
            TerminalSpec {
                facility_id: FacilityId::new(1),
                model: TerminalModel::IdFace,
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
    fn terminal_addresses_are_http_urls() {
        for good in [
            "http://10.0.0.5",
            " https://terminal-1.example.com:8443/ ",
            "http://127.0.0.1:9/prefix",
            "HTTP://[::1]:8080",
            "http://[fe80::1]",
            "http://localhost",
        ] {
            assert_eq!(
                terminal_address("address", good),
                Ok(good.trim().to_owned()),
                "{good}"
            );
        }
        for bad in [
            "not a url",
            "10.0.0.5",
            "ftp://10.0.0.5",
            "http://",
            "http://:80",
            "http://10.0.0.5:0",
            "http://10.0.0.5:65536",
            "http://10.0.0.5:http",
            "http://admin:pw@10.0.0.5",
            "http://10.0.0.5/?x=1",
            "http://10.0.0.5#top",
            "http://bad_host",
            "http://-bad.example",
            "http://10.0.0.256",
            "http://[::1",
            "http://[nope]",
            "http://10.0.0.5 /x",
        ] {
            assert_eq!(
                terminal_address("address", bad).map_err(|e| e.field),
                Err("address".to_owned()),
                "{bad}"
            );
        }
    }

    #[test]
    fn terminal_models_are_the_known_ones() {
        for (name, model) in [
            ("idface", TerminalModel::IdFace),
            ("iDFace Max", TerminalModel::IdFaceMax),
            ("IDACCESS", TerminalModel::IdAccess),
            ("id_flex", TerminalModel::IdFlex),
            ("terminal", TerminalModel::Generic),
        ] {
            assert_eq!(TerminalModel::parse("model", name), Ok(model));
            assert_eq!(TerminalModel::parse("model", model.name()), Ok(model));
        }
        let err = TerminalModel::parse("model", "toaster").unwrap_err();
        assert_eq!(err.field, "model");
        let face: BTreeSet<AuthType> = TerminalModel::IdFace.auth_types().collect();
        assert!(face.contains(&AuthType::FacePlusCard) && face.contains(&AuthType::CloudKey));
        assert!(!face.contains(&AuthType::Fingerprint));
        let access: BTreeSet<AuthType> = TerminalModel::IdAccess.auth_types().collect();
        assert!(access.contains(&AuthType::FingerprintPlusPin));
        assert!(!access.contains(&AuthType::Qr) && !access.contains(&AuthType::Face));
        assert_eq!(
            TerminalModel::Generic.auth_types().count(),
            AuthType::ALL.len()
        );
        assert!(TerminalModel::IdAccess.opens_with_relay());
        assert!(!TerminalModel::IdFlex.opens_with_relay());
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
