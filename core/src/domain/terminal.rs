//! Terminals: the device models the core drives ([`TerminalModel`]: what each reads and how
//! it opens its door), a terminal's address (an `http://` or `https://` URL,
//! [`terminal_address`]), its device password (never printed) and operating mode, and
//! [`Terminal`], a device installed at a facility serving doors.

use super::auth::{AuthType, Factor};
use super::id::{DoorId, FacilityId, TerminalId};
use super::topology::MAX_NAME;
use super::validation::{InvalidField, Problem, required_text};
use std::collections::BTreeSet;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
