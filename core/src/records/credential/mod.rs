//! Documents of credentials (docs/domain.md §8.3 rule 10 for their unique keys).
//!
//! Shape (ids are numbers, instants RFC 3339 text, `?` members may be `null` or missing):
//!
//! ```text
//! {person_id, value, starts_at?, ends_at?, max_uses?, parent_id?, issued_at,
//!  use_count, suspended, locked_out, failed_attempts?, revoked?, deleted}
//! ```
//!
//! `value` is tagged by `kind` (`value`: one shape per credential kind). `revoked` is the
//! reason (`lost`, `stolen`, `damaged`, `terminated`, `phone_deactivated`,
//! `parent_revoked`); the lifecycle members (`use_count` … `deleted`) read as zero / `false`
//! / `null` when missing.
//!
//! - `value` – the value member of each credential kind, secrets included;
//! - `claims` – the unique keys a credential holds while live (and the traces a revoked one
//!   leaves), and the claims decisions and issues look their subjects up by.

mod claims;
mod value;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::codec::{decode, encode, mirror_enum, refused, rfc3339, rfc3339_opt};
use super::{CodecError, Stored};
use crate::domain::{
    Credential, CredentialId, CredentialLifecycle, PersonId, RevokeReason, TenantId,
};
use crate::store::{Kind, UniqueKey};
use value::{ValueDoc, value_doc, value_of};

pub(crate) use claims::{CLOUD_KEY, REVOKED, live_claims, presented_claims, presented_traces};

mirror_enum!(ReasonDoc <=> RevokeReason {
    Lost,
    Stolen,
    Damaged,
    Terminated,
    PhoneDeactivated,
    ParentRevoked,
});

#[derive(Serialize, Deserialize)]
struct CredentialDoc {
    person_id: u64,
    value: ValueDoc,
    #[serde(default, with = "rfc3339_opt")]
    starts_at: Option<jiff::Timestamp>,
    #[serde(default, with = "rfc3339_opt")]
    ends_at: Option<jiff::Timestamp>,
    #[serde(default)]
    max_uses: Option<u32>,
    #[serde(default)]
    parent_id: Option<u64>,
    #[serde(with = "rfc3339")]
    issued_at: jiff::Timestamp,
    #[serde(default)]
    use_count: u32,
    #[serde(default)]
    suspended: bool,
    #[serde(default)]
    locked_out: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    failed_attempts: u32,
    #[serde(default)]
    revoked: Option<ReasonDoc>,
    #[serde(default)]
    deleted: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Stored for Credential {
    const KIND: Kind = Kind::Credential;

    fn record_id(&self) -> u64 {
        self.id.get()
    }

    fn to_document(&self) -> Json {
        let lifecycle = self.lifecycle();
        encode(&CredentialDoc {
            person_id: self.person_id.get(),
            value: value_doc(&self.value),
            starts_at: self.window.from(),
            ends_at: self.window.to(),
            max_uses: self.max_uses,
            parent_id: self.parent_id.map(CredentialId::get),
            issued_at: self.issued_at,
            use_count: lifecycle.use_count,
            suspended: lifecycle.suspended,
            locked_out: lifecycle.locked_out,
            failed_attempts: lifecycle.failed_attempts,
            revoked: lifecycle.revoked.map(ReasonDoc::from),
            deleted: lifecycle.deleted,
        })
    }

    fn from_document(tenant: TenantId, id: u64, document: &Json) -> Result<Self, CodecError> {
        let doc: CredentialDoc = decode(Self::KIND, id, document)?;
        let mut credential = Credential::issue(
            CredentialId::new(id),
            tenant,
            PersonId::new(doc.person_id),
            value_of(id, doc.value)?,
            doc.issued_at,
        )
        .with_window(doc.starts_at, doc.ends_at)
        .map_err(refused(Self::KIND, id))?;
        if let Some(max_uses) = doc.max_uses {
            credential = credential
                .with_max_uses(max_uses)
                .map_err(refused(Self::KIND, id))?;
        }
        credential.parent_id = doc.parent_id.map(CredentialId::new);
        Ok(credential.restore_lifecycle(CredentialLifecycle {
            use_count: doc.use_count,
            suspended: doc.suspended,
            locked_out: doc.locked_out,
            failed_attempts: doc.failed_attempts,
            revoked: doc.revoked.map(RevokeReason::from),
            deleted: doc.deleted,
        }))
    }

    fn unique_keys(&self) -> Vec<UniqueKey> {
        claims::unique_keys(self)
    }
}

/// Builders shared by the unit tests of credential documents.
#[cfg(test)]
mod test_support {
    use jiff::Timestamp;
    use proptest::prelude::*;
    use serde_json::Value as Json;

    use crate::card::WiegandCard;
    use crate::domain::{
        Credential, CredentialId, CredentialValue, PersonId, RevokeReason, TenantId,
    };
    use crate::records::Stored as _;

    pub(super) const TENANT: TenantId = TenantId::new(3);

    pub(super) fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    pub(super) fn issue(id: u64, person: u64, value: CredentialValue) -> Credential {
        Credential::issue(
            CredentialId::new(id),
            TENANT,
            PersonId::new(person),
            value,
            ts("2024-01-01T08:00:00Z"),
        )
    }

    pub(super) fn card(number: u32) -> CredentialValue {
        CredentialValue::Card(WiegandCard::new(123, number))
    }

    pub(super) fn round_trip(credential: &Credential) -> Json {
        let document = credential.to_document();
        let back = Credential::from_document(TENANT, credential.id.get(), &document).unwrap();
        assert_eq!(&back, credential);
        assert_eq!(back.lifecycle(), credential.lifecycle());
        document
    }

    pub(super) fn any_reason() -> impl Strategy<Value = RevokeReason> {
        prop_oneof![
            Just(RevokeReason::Lost),
            Just(RevokeReason::Stolen),
            Just(RevokeReason::Damaged),
            Just(RevokeReason::Terminated),
            Just(RevokeReason::PhoneDeactivated),
            Just(RevokeReason::ParentRevoked),
        ]
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use proptest::prelude::*;
    use serde_json::json;

    use super::test_support::{TENANT, any_reason, card, issue, round_trip, ts};
    use super::*;
    use crate::card::WiegandCard;
    use crate::domain::{CredentialValue, FingerprintTemplates, PhoneId, Pin, SecretText};

    #[test]
    fn card_round_trips_every_lifecycle_member() {
        let mut credential = issue(51, 21, card(45678))
            .with_window(
                Some(ts("2024-01-01T00:00:00Z")),
                Some(ts("2025-01-01T00:00:00.5Z")),
            )
            .unwrap()
            .with_max_uses(3)
            .unwrap();
        credential.consume().unwrap();
        credential.consume().unwrap();
        credential.lock_out().unwrap();
        credential.suspend().unwrap();
        credential.revoke(RevokeReason::Stolen).unwrap();
        credential.delete().unwrap();
        let document = round_trip(&credential);
        assert_eq!(
            document,
            json!({
                "person_id": 21,
                "value": {"kind": "card", "facility_code": 123, "number": 45678},
                "starts_at": "2024-01-01T00:00:00Z",
                "ends_at": "2025-01-01T00:00:00.5Z",
                "max_uses": 3,
                "parent_id": null,
                "issued_at": "2024-01-01T08:00:00Z",
                "use_count": 2,
                "suspended": true,
                "locked_out": true,
                "revoked": "stolen",
                "deleted": true,
            })
        );
    }

    #[test]
    fn mobile_key_copy_round_trips_its_parent_and_phone() {
        let parent = issue(60, 21, CredentialValue::MobileKey { phone_id: None });
        let mut copy = parent.copy_for_phone(
            CredentialId::new(61),
            PhoneId::new(31),
            ts("2024-02-01T00:00:00Z"),
        );
        copy.revoke(RevokeReason::PhoneDeactivated).unwrap();
        let document = round_trip(&copy);
        assert_eq!(document["parent_id"], json!(60));
        assert_eq!(
            document["value"],
            json!({"kind": "mobile_key", "phone_id": 31})
        );
        assert_eq!(round_trip(&parent)["value"]["phone_id"], json!(null));
    }

    #[test]
    fn old_documents_without_lifecycle_members_read_as_fresh() {
        let document = json!({
            "person_id": 21,
            "value": {"kind": "face", "photo_ref": "photos/21.jpg"},
            "issued_at": "2024-01-01T08:00:00Z",
        });
        let credential = Credential::from_document(TENANT, 56, &document).unwrap();
        assert_eq!(
            credential,
            issue(56, 21, CredentialValue::face("photos/21.jpg").unwrap())
        );
    }

    #[test]
    fn invalid_documents_are_refused() {
        let base = json!({
            "person_id": 21,
            "value": {"kind": "pin", "pin": "12"},
            "issued_at": "2024-01-01T08:00:00Z",
        });
        let err = Credential::from_document(TENANT, 57, &base).unwrap_err();
        assert_eq!((err.kind, err.id), (Kind::Credential, 57));
        assert!(err.reason.contains("pin"), "{}", err.reason);

        let mut zero_uses = base.clone();
        zero_uses["value"] = json!({"kind": "pin", "pin": "1234"});
        zero_uses["max_uses"] = json!(0);
        assert!(Credential::from_document(TENANT, 57, &zero_uses).is_err());

        let mut unknown = base;
        unknown["value"] = json!({"kind": "retina"});
        assert!(Credential::from_document(TENANT, 57, &unknown).is_err());
    }

    // ---- properties ----

    fn timestamp() -> impl Strategy<Value = Timestamp> {
        // Roughly years 1000 to 2900, with nanoseconds.
        (-30_000_000_000_i64..30_000_000_000, 0..1_000_000_000_i32)
            .prop_map(|(s, n)| Timestamp::new(s, n).unwrap())
    }

    fn secret() -> impl Strategy<Value = String> {
        // Trimmed, non-empty, printable: what `SecretText::parse` keeps as is.
        "[!-~]([ -~]{0,30}[!-~])?"
    }

    fn any_value() -> impl Strategy<Value = CredentialValue> {
        prop_oneof![
            "[a-z0-9][a-z0-9/._-]{0,30}".prop_map(|r| CredentialValue::face(&r).unwrap()),
            (any::<u32>(), any::<u32>())
                .prop_map(|(f, n)| CredentialValue::Card(WiegandCard::new(f, n))),
            prop::collection::vec("[A-Za-z0-9+/=]{1,40}", 1..4).prop_map(|t| {
                CredentialValue::Fingerprint(FingerprintTemplates::new(t).unwrap())
            }),
            "[0-9]{4,12}".prop_map(|p| CredentialValue::Pin(Pin::parse(&p).unwrap())),
            secret().prop_map(|q| CredentialValue::Qr(SecretText::parse("qr", &q).unwrap())),
            (secret(), prop::option::of("[0-9]{4,12}")).prop_map(|(t, p)| {
                CredentialValue::CloudKey {
                    token: SecretText::parse("token", &t).unwrap(),
                    pin: p.map(|p| SecretText::parse("pin", &p).unwrap()),
                }
            }),
            prop::option::of(any::<u64>()).prop_map(|phone| CredentialValue::MobileKey {
                phone_id: phone.map(PhoneId::new),
            }),
        ]
    }

    fn lifecycle() -> impl Strategy<Value = CredentialLifecycle> {
        (
            any::<u32>(),
            any::<bool>(),
            any::<bool>(),
            0..10u32,
            prop::option::of(any_reason()),
            any::<bool>(),
        )
            .prop_map(
                |(use_count, suspended, locked_out, failed_attempts, revoked, deleted)| {
                    CredentialLifecycle {
                        use_count,
                        suspended,
                        locked_out,
                        failed_attempts,
                        revoked,
                        deleted,
                    }
                },
            )
    }

    prop_compose! {
        fn any_credential()(
            id in any::<u64>(),
            person in any::<u64>(),
            value in any_value(),
            issued_at in timestamp(),
            starts_at in prop::option::of(timestamp()),
            length in prop::option::of(1..10_000_000_000_i64),
            open_start_end in prop::option::of(timestamp()),
            max_uses in prop::option::of(1..=u32::MAX),
            parent in prop::option::of(any::<u64>()),
            lifecycle in lifecycle(),
        ) -> Credential {
            let ends_at = match (starts_at, length) {
                (Some(start), Some(length)) => {
                    Some(start.checked_add(jiff::SignedDuration::from_secs(length)).unwrap())
                }
                (None, _) => open_start_end,
                (Some(_), None) => None,
            };
            let mut credential = Credential::issue(
                CredentialId::new(id),
                TENANT,
                PersonId::new(person),
                value,
                issued_at,
            )
            .with_window(starts_at, ends_at)
            .unwrap();
            credential.max_uses = max_uses;
            credential.parent_id = parent.map(CredentialId::new);
            credential.restore_lifecycle(lifecycle)
        }
    }

    proptest! {
        #[test]
        fn every_credential_round_trips(credential in any_credential()) {
            let document = credential.to_document();
            let back = Credential::from_document(TENANT, credential.id.get(), &document);
            prop_assert_eq!(back.as_ref(), Ok(&credential));
            // Through text as well, as the store keeps it.
            let text = document.to_string();
            let reparsed: Json = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(reparsed, document);
        }
    }
}
