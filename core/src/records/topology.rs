//! Documents of the topology: sites, facilities, doors and terminals.
//!
//! Shapes (ids are numbers, `?` members may be `null` or missing):
//!
//! - site: `{name, timezone}` – `timezone` is the IANA name (`Europe/Madrid`);
//! - facility: `{site_id, parent_id?, name, kind}` – `kind` is `facility`, `section`,
//!   `area` or `apb_area`;
//! - door: `{facility_id, name, supported_in, supported_out}` – auth types by API name;
//! - terminal: `{facility_id, model, address, login, password, operating_mode, door_ids,
//!   device_id?}` – `model` is the API's name (`idface`, `idface-max`, `idaccess`,
//!   `idflex`, `terminal`; a name stored before models were checked that is none of these
//!   reads as `terminal`), `password` is the device password in clear here (the sealing
//!   layer, `store::SealedStore`, seals it at rest; it never reaches `Debug` output), `operating_mode` is `standalone`, `pro` or `enterprise`, `device_id` the
//!   device's id once known.
//!
//! A terminal with a known device claims it: the unique key [`DEVICE_ID`], which the store
//! keeps unique across tenants too, so one device is never registered twice. Nothing else
//! claims a unique key: the domain makes no name, address or login unique.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::codec::{auth_types, decode, encode, invalid, mirror_enum};
use super::{CodecError, Stored};
use crate::domain::{
    AuthType, DevicePassword, Door, DoorId, Facility, FacilityId, FacilityKind, OperatingMode,
    Site, SiteId, TenantId, Terminal, TerminalId, TerminalModel, time_zone,
};
use crate::store::{Kind, UniqueKey};

/// The scope of the unique key of a terminal's device: its `device_id`, unique in every
/// tenant and across tenants.
pub(crate) const DEVICE_ID: &str = "device_id";

#[derive(Serialize, Deserialize)]
struct SiteDoc {
    name: String,
    timezone: String,
}

impl Stored for Site {
    const KIND: Kind = Kind::Site;

    fn record_id(&self) -> u64 {
        self.id.get()
    }

    fn to_document(&self) -> Json {
        encode(&SiteDoc {
            name: self.name.clone(),
            // `Site::new` only accepts IANA zones. A zone without a name (built by hand)
            // is written as "" and refused on read rather than silently becoming another.
            timezone: self.time_zone.iana_name().unwrap_or_default().to_owned(),
        })
    }

    fn from_document(tenant: TenantId, id: u64, document: &Json) -> Result<Self, CodecError> {
        let doc: SiteDoc = decode(Self::KIND, id, document)?;
        Ok(Site {
            id: SiteId::new(id),
            tenant_id: tenant,
            name: doc.name,
            time_zone: time_zone("timezone", &doc.timezone).map_err(|_| {
                invalid(
                    Self::KIND,
                    id,
                    format!("'{}' is not a known IANA time zone", doc.timezone),
                )
            })?,
        })
    }

    fn unique_keys(&self) -> Vec<UniqueKey> {
        Vec::new()
    }
}

mirror_enum!(KindDoc <=> FacilityKind { Facility, Section, Area, ApbArea });

#[derive(Serialize, Deserialize)]
struct FacilityDoc {
    site_id: u64,
    #[serde(default)]
    parent_id: Option<u64>,
    name: String,
    kind: KindDoc,
}

impl Stored for Facility {
    const KIND: Kind = Kind::Facility;

    fn record_id(&self) -> u64 {
        self.id.get()
    }

    fn to_document(&self) -> Json {
        encode(&FacilityDoc {
            site_id: self.site_id.get(),
            parent_id: self.parent_id.map(FacilityId::get),
            name: self.name.clone(),
            kind: self.kind.into(),
        })
    }

    fn from_document(_tenant: TenantId, id: u64, document: &Json) -> Result<Self, CodecError> {
        let doc: FacilityDoc = decode(Self::KIND, id, document)?;
        Ok(Facility {
            id: FacilityId::new(id),
            site_id: SiteId::new(doc.site_id),
            parent_id: doc.parent_id.map(FacilityId::new),
            name: doc.name,
            kind: doc.kind.into(),
        })
    }

    fn unique_keys(&self) -> Vec<UniqueKey> {
        Vec::new()
    }
}

#[derive(Serialize, Deserialize)]
struct DoorDoc {
    facility_id: u64,
    name: String,
    #[serde(with = "auth_types")]
    supported_in: BTreeSet<AuthType>,
    #[serde(with = "auth_types")]
    supported_out: BTreeSet<AuthType>,
}

impl Stored for Door {
    const KIND: Kind = Kind::Door;

    fn record_id(&self) -> u64 {
        self.id.get()
    }

    fn to_document(&self) -> Json {
        encode(&DoorDoc {
            facility_id: self.facility_id.get(),
            name: self.name.clone(),
            supported_in: self.supported_in.clone(),
            supported_out: self.supported_out.clone(),
        })
    }

    fn from_document(_tenant: TenantId, id: u64, document: &Json) -> Result<Self, CodecError> {
        let doc: DoorDoc = decode(Self::KIND, id, document)?;
        Ok(Door {
            id: DoorId::new(id),
            facility_id: FacilityId::new(doc.facility_id),
            name: doc.name,
            supported_in: doc.supported_in,
            supported_out: doc.supported_out,
        })
    }

    fn unique_keys(&self) -> Vec<UniqueKey> {
        Vec::new()
    }
}

mirror_enum!(ModeDoc <=> OperatingMode { Standalone, Pro, Enterprise });

#[derive(Serialize, Deserialize)]
struct TerminalDoc {
    facility_id: u64,
    model: String,
    address: String,
    login: String,
    password: String,
    operating_mode: ModeDoc,
    door_ids: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device_id: Option<i64>,
}

impl Stored for Terminal {
    const KIND: Kind = Kind::Terminal;

    fn record_id(&self) -> u64 {
        self.id.get()
    }

    fn to_document(&self) -> Json {
        encode(&TerminalDoc {
            facility_id: self.facility_id.get(),
            model: self.model.name().to_owned(),
            address: self.address.clone(),
            login: self.login.clone(),
            password: self.password.expose().to_owned(),
            operating_mode: self.operating_mode.into(),
            door_ids: self.door_ids.iter().map(|d| d.get()).collect(),
            device_id: self.device_id,
        })
    }

    fn from_document(_tenant: TenantId, id: u64, document: &Json) -> Result<Self, CodecError> {
        let doc: TerminalDoc = decode(Self::KIND, id, document)?;
        Ok(Terminal {
            id: TerminalId::new(id),
            facility_id: FacilityId::new(doc.facility_id),
            model: TerminalModel::parse("model", &doc.model).unwrap_or(TerminalModel::Generic),
            address: doc.address,
            login: doc.login,
            password: DevicePassword::new(doc.password),
            operating_mode: doc.operating_mode.into(),
            door_ids: doc.door_ids.into_iter().map(DoorId::new).collect(),
            device_id: doc.device_id,
        })
    }

    fn unique_keys(&self) -> Vec<UniqueKey> {
        self.device_id
            .map(|id| UniqueKey {
                scope: DEVICE_ID,
                value: id.to_string(),
            })
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TENANT: TenantId = TenantId::new(3);

    fn round_trip<T: Stored + PartialEq + std::fmt::Debug>(value: &T) -> Json {
        let document = value.to_document();
        let back = T::from_document(TENANT, value.record_id(), &document).unwrap();
        assert_eq!(&back, value);
        document
    }

    #[test]
    fn site_round_trips_with_its_zone() {
        let site = Site::new(SiteId::new(5), TENANT, "HQ", "America/New_York").unwrap();
        let document = round_trip(&site);
        assert_eq!(
            document,
            json!({"name": "HQ", "timezone": "America/New_York"})
        );
        let err = Site::from_document(TENANT, 5, &json!({"name": "HQ", "timezone": "Mars/Base"}))
            .unwrap_err();
        assert_eq!((err.kind, err.id), (Kind::Site, 5));
        assert!(err.reason.contains("Mars/Base"), "{}", err.reason);
    }

    #[test]
    fn facility_round_trips_with_parent_and_kind() {
        let facility = Facility::new(
            FacilityId::new(9),
            SiteId::new(5),
            Some(FacilityId::new(8)),
            "Hall",
            FacilityKind::ApbArea,
        )
        .unwrap();
        let document = round_trip(&facility);
        assert_eq!(
            document,
            json!({"site_id": 5, "parent_id": 8, "name": "Hall", "kind": "apb_area"})
        );
        let top = Facility::new(
            FacilityId::new(8),
            SiteId::new(5),
            None,
            "Venue",
            FacilityKind::Facility,
        )
        .unwrap();
        round_trip(&top);
    }

    #[test]
    fn door_round_trips_both_directions() {
        let door = Door::new(
            DoorId::new(11),
            FacilityId::new(9),
            "Main",
            [
                AuthType::Face,
                AuthType::CardPlusPin,
                AuthType::MobileKeyPlusPin,
            ],
            [AuthType::Card],
        )
        .unwrap();
        let document = round_trip(&door);
        assert_eq!(
            document["supported_in"],
            json!(["face", "card_plus_pin", "mobile_key_plus_pin"])
        );
        assert_eq!(document["supported_out"], json!(["card"]));
    }

    #[test]
    fn terminal_round_trips_with_its_password() {
        let mut terminal = Terminal::new(
            TerminalId::new(12),
            crate::domain::TerminalSpec {
                facility_id: FacilityId::new(9),
                model: TerminalModel::IdAccess,
                address: "http://10.0.0.5".into(),
                login: "admin".into(),
                password: DevicePassword::new("s3cret"),
                operating_mode: OperatingMode::Enterprise,
                door_ids: [DoorId::new(11), DoorId::new(13)].into(),
            },
        )
        .unwrap();
        let document = round_trip(&terminal);
        assert_eq!(document["password"], json!("s3cret"));
        assert_eq!(document["operating_mode"], json!("enterprise"));
        assert_eq!(document["door_ids"], json!([11, 13]));
        assert_eq!(document["model"], json!("idaccess"));
        assert!(document.get("device_id").is_none());
        assert!(terminal.unique_keys().is_empty());
        assert!(!format!("{terminal:?}").contains("s3cret"));

        terminal.device_id = Some(7_123_456_789);
        let document = round_trip(&terminal);
        assert_eq!(document["device_id"], json!(7_123_456_789_i64));
        assert_eq!(
            terminal.unique_keys(),
            vec![UniqueKey {
                scope: DEVICE_ID,
                value: "7123456789".into()
            }]
        );
    }

    #[test]
    fn a_terminal_model_stored_before_models_were_checked_reads() {
        let mut document = json!({"facility_id": 9, "model": "iDFace Max", "address": "http://10.0.0.5",
            "login": "admin", "password": "x", "operating_mode": "standalone", "door_ids": []});
        let terminal = Terminal::from_document(TENANT, 12, &document).unwrap();
        assert_eq!(terminal.model, TerminalModel::IdFaceMax);
        document["model"] = json!("toaster");
        let terminal = Terminal::from_document(TENANT, 12, &document).unwrap();
        assert_eq!(terminal.model, TerminalModel::Generic);
        assert_eq!(terminal.device_id, None);
    }
}
