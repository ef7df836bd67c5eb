//! Documents of people, their phones and groups.
//!
//! Shapes (ids are numbers, instants RFC 3339 text, `?` members may be `null` or missing):
//!
//! - person: `{acs_id, name, valid_from?, valid_to?, enabled, suspended, email?,
//!   phone_number?}` – `suspended` is the lifecycle state the domain keeps privately
//!   (missing reads as `false`);
//! - phone: `{person_id, active, name?, platform?}` (`ios` or `android`);
//! - group: `{name, members}` – `members` are person ids.
//!
//! A person claims `("acs_id", <acs_id>)`: the domain makes the `acs_id` unique per tenant
//! (`check_acs_id_unique`), for as long as the person exists (there is no soft delete).
//! Phones and groups claim nothing.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::codec::{decode, encode, refused, rfc3339_opt, window};
use super::{CodecError, Stored};
use crate::domain::{
    AcsId, Contact, Group, GroupId, Person, PersonId, Phone, PhoneId, Platform, TenantId,
};
use crate::store::{Kind, UniqueKey};

#[derive(Serialize, Deserialize)]
struct PersonDoc {
    acs_id: String,
    #[serde(default)]
    name: String,
    #[serde(default, with = "rfc3339_opt")]
    valid_from: Option<jiff::Timestamp>,
    #[serde(default, with = "rfc3339_opt")]
    valid_to: Option<jiff::Timestamp>,
    enabled: bool,
    #[serde(default)]
    suspended: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phone_number: Option<String>,
}

impl Stored for Person {
    const KIND: Kind = Kind::Person;

    fn record_id(&self) -> u64 {
        self.id.get()
    }

    fn to_document(&self) -> Json {
        encode(&PersonDoc {
            acs_id: self.acs_id.as_str().to_owned(),
            name: self.name.clone(),
            valid_from: self.validity.from(),
            valid_to: self.validity.to(),
            enabled: self.enabled,
            suspended: self.is_suspended(),
            email: self.contact.email.clone(),
            phone_number: self.contact.phone_number.clone(),
        })
    }

    fn from_document(tenant: TenantId, id: u64, document: &Json) -> Result<Self, CodecError> {
        let doc: PersonDoc = decode(Self::KIND, id, document)?;
        let mut person = Person::restore(
            PersonId::new(id),
            tenant,
            AcsId::parse(&doc.acs_id).map_err(refused(Self::KIND, id))?,
            doc.name,
            window(
                Self::KIND,
                id,
                doc.valid_from,
                doc.valid_to,
                "valid_from",
                "valid_to",
            )?,
            doc.enabled,
            doc.suspended,
        );
        person.contact = Contact {
            email: doc.email,
            phone_number: doc.phone_number,
        };
        Ok(person)
    }

    fn unique_keys(&self) -> Vec<UniqueKey> {
        vec![UniqueKey {
            scope: "acs_id",
            value: self.acs_id.as_str().to_owned(),
        }]
    }
}

#[derive(Serialize, Deserialize)]
struct PhoneDoc {
    person_id: u64,
    active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<String>,
}

impl Stored for Phone {
    const KIND: Kind = Kind::Phone;

    fn record_id(&self) -> u64 {
        self.id.get()
    }

    fn to_document(&self) -> Json {
        encode(&PhoneDoc {
            person_id: self.person_id.get(),
            active: self.active,
            name: self.name.clone(),
            platform: self.platform.map(|p| p.as_str().to_owned()),
        })
    }

    fn from_document(_tenant: TenantId, id: u64, document: &Json) -> Result<Self, CodecError> {
        let doc: PhoneDoc = decode(Self::KIND, id, document)?;
        Ok(Phone {
            id: PhoneId::new(id),
            person_id: PersonId::new(doc.person_id),
            active: doc.active,
            name: doc.name,
            platform: doc
                .platform
                .map(|p| Platform::parse("platform", &p))
                .transpose()
                .map_err(refused(Self::KIND, id))?,
        })
    }

    fn unique_keys(&self) -> Vec<UniqueKey> {
        Vec::new()
    }
}

#[derive(Serialize, Deserialize)]
struct GroupDoc {
    name: String,
    #[serde(default)]
    members: Vec<u64>,
}

impl Stored for Group {
    const KIND: Kind = Kind::Group;

    fn record_id(&self) -> u64 {
        self.id.get()
    }

    fn to_document(&self) -> Json {
        encode(&GroupDoc {
            name: self.name.clone(),
            members: self.members.iter().map(|p| p.get()).collect(),
        })
    }

    fn from_document(tenant: TenantId, id: u64, document: &Json) -> Result<Self, CodecError> {
        let doc: GroupDoc = decode(Self::KIND, id, document)?;
        Ok(Group {
            id: GroupId::new(id),
            tenant_id: tenant,
            name: doc.name,
            members: doc.members.into_iter().map(PersonId::new).collect(),
        })
    }

    fn unique_keys(&self) -> Vec<UniqueKey> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use serde_json::json;

    const TENANT: TenantId = TenantId::new(3);

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn person_round_trips_suspension_and_validity() {
        let mut person = Person::new(
            PersonId::new(21),
            TENANT,
            AcsId::parse("E-1001").unwrap(),
            "Ana Pérez",
        )
        .with_validity(Some(ts("2024-01-01T00:00:00Z")), None)
        .unwrap();
        person.enabled = false;
        person.suspend().unwrap();
        let document = person.to_document();
        assert_eq!(
            document,
            json!({
                "acs_id": "E-1001",
                "name": "Ana Pérez",
                "valid_from": "2024-01-01T00:00:00Z",
                "valid_to": null,
                "enabled": false,
                "suspended": true,
            })
        );
        let back = Person::from_document(TENANT, 21, &document).unwrap();
        assert_eq!(back, person);
        assert!(back.is_suspended());
        assert_eq!(
            person.unique_keys(),
            vec![UniqueKey {
                scope: "acs_id",
                value: "E-1001".into()
            }]
        );
    }

    #[test]
    fn person_with_a_bad_window_is_refused() {
        let document = json!({
            "acs_id": "E-1",
            "valid_from": "2024-02-01T00:00:00Z",
            "valid_to": "2024-01-01T00:00:00Z",
            "enabled": true,
        });
        let err = Person::from_document(TENANT, 21, &document).unwrap_err();
        assert_eq!((err.kind, err.id), (Kind::Person, 21));
        assert!(err.reason.contains("valid_to"), "{}", err.reason);
    }

    #[test]
    fn phone_round_trips_inactive() {
        let phone = Phone {
            id: PhoneId::new(31),
            person_id: PersonId::new(21),
            active: false,
            name: Some("Work phone".to_owned()),
            platform: Some(Platform::Android),
        };
        let document = phone.to_document();
        assert_eq!(
            document,
            json!({"person_id": 21, "active": false, "name": "Work phone", "platform": "android"})
        );
        assert_eq!(Phone::from_document(TENANT, 31, &document).unwrap(), phone);
        assert!(phone.unique_keys().is_empty());
        // Written before phones had a name: both absent.
        let old = Phone::from_document(TENANT, 31, &json!({"person_id": 21, "active": true}));
        assert_eq!(old.map(|p| (p.name, p.platform)), Ok((None, None)));
        let bad = json!({"person_id": 21, "active": true, "platform": "palm"});
        assert!(Phone::from_document(TENANT, 31, &bad).is_err());
    }

    #[test]
    fn group_round_trips_members() {
        let mut group = Group::new(GroupId::new(41), TENANT, "Staff").unwrap();
        group.members.extend([PersonId::new(21), PersonId::new(22)]);
        let document = group.to_document();
        assert_eq!(document, json!({"name": "Staff", "members": [21, 22]}));
        assert_eq!(Group::from_document(TENANT, 41, &document).unwrap(), group);
        assert!(group.unique_keys().is_empty());
    }
}
