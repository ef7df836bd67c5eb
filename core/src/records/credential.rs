//! Documents of credentials, and the unique keys that let the store enforce docs/domain.md §8.3
//! rule 10.
//!
//! Shape (ids are numbers, instants RFC 3339 text, `?` members may be `null` or missing):
//!
//! ```text
//! {person_id, value, starts_at?, ends_at?, max_uses?, parent_id?, issued_at,
//!  use_count, suspended, locked_out, failed_attempts?, revoked?, deleted}
//! ```
//!
//! `value` is tagged by `kind`: `{kind: "face", photo_ref}`, `{kind: "card", facility_code,
//! number}`, `{kind: "fingerprint", templates}`, `{kind: "pin", pin}`, `{kind: "qr",
//! payload}`, `{kind: "cloud_key", token, pin?}`, `{kind: "mobile_key", phone_id?}` (no
//! phone: the parent). Secrets – PINs, QR payloads, cloud-key tokens and PINs, fingerprint
//! templates – are stored in clear: the store is trusted, API views redact them. `revoked`
//! is the reason (`lost`, `stolen`, `damaged`, `terminated`, `phone_deactivated`,
//! `parent_revoked`); the lifecycle members (`use_count` … `deleted`) read as zero / `false`
//! / `null` when missing.
//!
//! # Unique keys
//!
//! A *live* credential (neither revoked nor deleted) claims its value, as
//! [`check_can_issue`](crate::domain::check_can_issue) requires:
//!
//! - card: `("card", "<facility>,<number>")` and `("burned_card", "<facility>,<number>")`;
//! - PIN: `("pin", <digits>)`; QR: `("qr", <payload>)`; cloud key: `("cloud_key", <token>)`
//!   (its optional PIN is not unique);
//! - face: `("face", <person id>)` – a person has at most one live face;
//! - fingerprints and mobile keys claim nothing.
//!
//! A card revoked as lost or stolen ([`RevokeReason::burns_value`]) can never be issued
//! again, even after its credential is deleted, so it keeps claiming
//! `("burned_card", "<facility>,<number>")` for as long as its record exists (deletion of
//! credentials is a flag, the record stays). Every live card claims `burned_card` too,
//! *after* `card`: a new card then clashes on `card` with a live card of the same number and
//! on `burned_card` with a burnt one, so the store's conflict names the right rule. Any
//! other revoked or deleted credential claims nothing and frees its value.
//!
//! A revoked credential that is not deleted still decides a door (`credential_revoked`,
//! with its holder), so it leaves a trace its holder can be found by when they are filed
//! (`crate::residency`): `("revoked", "<scope>:<value>\u{1f}<id>")`, unique by its id, found
//! by the prefix `"<scope>:<value>\u{1f}"`.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::codec::{decode, encode, mirror_enum, refused, rfc3339, rfc3339_opt};
use super::{CodecError, Stored};
use crate::card::WiegandCard;
use crate::domain::{
    Credential, CredentialId, CredentialLifecycle, CredentialValue, FingerprintTemplates, PersonId,
    PhoneId, Pin, RevokeReason, SecretText, TenantId,
};
use crate::store::{Kind, UniqueKey};

/// Scope of a live card's facility code and number.
pub(super) const CARD: &str = "card";
/// Scope of a card number that is live or was reported lost or stolen.
pub(super) const BURNED_CARD: &str = "burned_card";
/// Scope of a live PIN.
pub(super) const PIN: &str = "pin";
/// Scope of a live QR payload.
pub(super) const QR: &str = "qr";
/// Scope of a live cloud-key token.
pub(crate) const CLOUD_KEY: &str = "cloud_key";
/// Scope of a person's live face (the value is the person id).
pub(super) const FACE: &str = "face";
/// Scope of the trace a revoked, undeleted card, PIN, QR payload or token leaves.
pub(crate) const REVOKED: &str = "revoked";

/// The prefix of the traces revoked credentials holding `claim` leave.
pub(crate) fn revoked_prefix(claim: &UniqueKey) -> String {
    format!("{}:{}\u{1f}", claim.scope, claim.value)
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum ValueDoc {
    Face {
        photo_ref: String,
    },
    Card {
        facility_code: u32,
        number: u32,
    },
    Fingerprint {
        templates: Vec<String>,
    },
    Pin {
        pin: String,
    },
    Qr {
        payload: String,
    },
    CloudKey {
        token: String,
        #[serde(default)]
        pin: Option<String>,
    },
    MobileKey {
        #[serde(default)]
        phone_id: Option<u64>,
    },
}

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

fn value_doc(value: &CredentialValue) -> ValueDoc {
    match value {
        CredentialValue::Face { photo_ref } => ValueDoc::Face {
            photo_ref: photo_ref.clone(),
        },
        CredentialValue::Card(card) => ValueDoc::Card {
            facility_code: card.facility_code(),
            number: card.number(),
        },
        CredentialValue::Fingerprint(templates) => ValueDoc::Fingerprint {
            templates: templates.expose().to_vec(),
        },
        CredentialValue::Pin(pin) => ValueDoc::Pin {
            pin: pin.expose().to_owned(),
        },
        CredentialValue::Qr(payload) => ValueDoc::Qr {
            payload: payload.expose().to_owned(),
        },
        CredentialValue::CloudKey { token, pin } => ValueDoc::CloudKey {
            token: token.expose().to_owned(),
            pin: pin.as_ref().map(|p| p.expose().to_owned()),
        },
        CredentialValue::MobileKey { phone_id } => ValueDoc::MobileKey {
            phone_id: phone_id.map(PhoneId::get),
        },
    }
}

fn value_of(id: u64, doc: ValueDoc) -> Result<CredentialValue, CodecError> {
    let refused = || refused(Kind::Credential, id);
    Ok(match doc {
        ValueDoc::Face { photo_ref } => CredentialValue::face(&photo_ref).map_err(refused())?,
        ValueDoc::Card {
            facility_code,
            number,
        } => CredentialValue::Card(WiegandCard::new(facility_code, number)),
        ValueDoc::Fingerprint { templates } => {
            CredentialValue::Fingerprint(FingerprintTemplates::new(templates).map_err(refused())?)
        }
        ValueDoc::Pin { pin } => CredentialValue::Pin(Pin::parse(&pin).map_err(refused())?),
        ValueDoc::Qr { payload } => {
            CredentialValue::Qr(SecretText::parse("qr", &payload).map_err(refused())?)
        }
        ValueDoc::CloudKey { token, pin } => CredentialValue::CloudKey {
            token: SecretText::parse("token", &token).map_err(refused())?,
            pin: pin.map(|p| Pin::parse(&p)).transpose().map_err(refused())?,
        },
        ValueDoc::MobileKey { phone_id } => CredentialValue::MobileKey {
            phone_id: phone_id.map(PhoneId::new),
        },
    })
}

fn key(scope: &'static str, value: impl Into<String>) -> UniqueKey {
    UniqueKey {
        scope,
        value: value.into(),
    }
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
        if !self.is_live() {
            let mut keys = match (&self.value, self.revoked()) {
                (CredentialValue::Card(card), Some(reason)) if reason.burns_value() => {
                    vec![key(BURNED_CARD, card.to_string())]
                }
                _ => Vec::new(),
            };
            if self.revoked().is_some() && !self.is_deleted() {
                // The claims it held while live, as traces (a face's is its person's).
                keys.extend(
                    live_claims(&self.value, self.person_id)
                        .iter()
                        .filter(|k| matches!(k.scope, CARD | PIN | QR | CLOUD_KEY))
                        .map(|k| key(REVOKED, format!("{}{}", revoked_prefix(k), self.id))),
                );
            }
            return keys;
        }
        live_claims(&self.value, self.person_id)
    }
}

/// The claims a live credential of `person` holding `value` makes: what no other live
/// credential of the tenant may hold (and, for a card, what stays burned once it is
/// reported lost or stolen).
pub(crate) fn live_claims(value: &CredentialValue, person: PersonId) -> Vec<UniqueKey> {
    match value {
        CredentialValue::Card(card) => vec![
            key(CARD, card.to_string()),
            key(BURNED_CARD, card.to_string()),
        ],
        CredentialValue::Pin(pin) => vec![key(PIN, pin.expose())],
        CredentialValue::Qr(payload) => vec![key(QR, payload.expose())],
        CredentialValue::CloudKey { token, .. } => vec![key(CLOUD_KEY, token.expose())],
        CredentialValue::Face { .. } => vec![key(FACE, person.to_string())],
        CredentialValue::Fingerprint(_) | CredentialValue::MobileKey { .. } => Vec::new(),
    }
}

/// The subjects of issuing `value` to `person`: the person, and whoever holds a claim the
/// value would make, so that the issuing rules see the credential it would clash with.
pub(crate) fn issue_subjects(
    value: &CredentialValue,
    person: PersonId,
) -> Vec<crate::residency::Subject> {
    std::iter::once(crate::residency::Subject::Person(person))
        .chain(
            live_claims(value, person)
                .into_iter()
                .map(|k| crate::residency::Subject::Claim(k.scope, k.value)),
        )
        .collect()
}

/// The claims a value presented at a door can be held under: a card's live and burned
/// claims (so that the holder of a lost card is told apart from a stranger), a PIN's, a QR
/// code's or a cloud-key token's (trimmed, as the decision compares them); none for a
/// factor a matcher names by credential.
pub(crate) fn presented_claims(factor: &crate::domain::PresentedFactor) -> Vec<UniqueKey> {
    use crate::domain::PresentedFactor as F;
    match factor {
        F::Card(card) => vec![
            key(CARD, card.to_string()),
            key(BURNED_CARD, card.to_string()),
        ],
        F::Pin(pin) => vec![key(PIN, pin.trim())],
        F::Qr(qr) => vec![key(QR, qr.trim())],
        F::CloudKey { token, .. } => vec![key(CLOUD_KEY, token.trim())],
        F::Face { .. } | F::Fingerprint { .. } | F::MobileKey { .. } => Vec::new(),
    }
}

/// The prefixes of the traces revoked credentials holding the value of `factor` leave.
pub(crate) fn presented_traces(factor: &crate::domain::PresentedFactor) -> Vec<String> {
    presented_claims(factor)
        .iter()
        .filter(|k| k.scope != BURNED_CARD)
        .map(revoked_prefix)
        .collect()
}

/// The subjects of a decision on `factors`: the credentials a matcher named, and the
/// holders of the values presented.
pub(crate) fn presented_subjects(
    factors: &[crate::domain::PresentedFactor],
) -> Vec<crate::residency::Subject> {
    use crate::domain::PresentedFactor as F;
    use crate::residency::Subject;
    factors
        .iter()
        .map(|factor| match factor {
            F::Face { credential_id, .. }
            | F::Fingerprint { credential_id }
            | F::MobileKey { credential_id } => Subject::Credential(*credential_id),
            other => Subject::Presented(other.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{IssueError, check_can_issue};
    use jiff::Timestamp;
    use proptest::prelude::*;
    use serde_json::json;

    const TENANT: TenantId = TenantId::new(3);

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn issue(id: u64, person: u64, value: CredentialValue) -> Credential {
        Credential::issue(
            CredentialId::new(id),
            TENANT,
            PersonId::new(person),
            value,
            ts("2024-01-01T08:00:00Z"),
        )
    }

    fn card(number: u32) -> CredentialValue {
        CredentialValue::Card(WiegandCard::new(123, number))
    }

    fn round_trip(credential: &Credential) -> Json {
        let document = credential.to_document();
        let back = Credential::from_document(TENANT, credential.id.get(), &document).unwrap();
        assert_eq!(&back, credential);
        assert_eq!(back.lifecycle(), credential.lifecycle());
        document
    }

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
    fn secrets_are_stored_but_not_printed() {
        let cloud = issue(
            52,
            21,
            CredentialValue::CloudKey {
                token: SecretText::parse("token", "tok-XYZ").unwrap(),
                pin: Some(Pin::parse("4321").unwrap()),
            },
        );
        let document = round_trip(&cloud);
        assert_eq!(
            document["value"],
            json!({"kind": "cloud_key", "token": "tok-XYZ", "pin": "4321"})
        );
        assert!(!format!("{cloud:?}").contains("tok-XYZ"));

        let finger = issue(
            53,
            21,
            CredentialValue::Fingerprint(
                FingerprintTemplates::new(vec!["AAAA".into(), "BBBB".into()]).unwrap(),
            ),
        );
        let document = round_trip(&finger);
        assert_eq!(document["value"]["templates"], json!(["AAAA", "BBBB"]));
        assert!(!format!("{finger:?}").contains("AAAA"));

        let qr = issue(
            54,
            21,
            CredentialValue::Qr(SecretText::parse("qr", "Q-1").unwrap()),
        );
        assert_eq!(
            round_trip(&qr)["value"],
            json!({"kind": "qr", "payload": "Q-1"})
        );
        let pin = issue(55, 21, CredentialValue::Pin(Pin::parse("000123").unwrap()));
        assert_eq!(
            round_trip(&pin)["value"],
            json!({"kind": "pin", "pin": "000123"})
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

    fn keys(credential: &Credential) -> Vec<(&'static str, String)> {
        credential
            .unique_keys()
            .into_iter()
            .map(|k| (k.scope, k.value))
            .collect()
    }

    #[test]
    fn live_cards_claim_their_number_burnt_cards_keep_blocking_it() {
        let live = issue(51, 21, card(45678));
        let both = vec![
            ("card", "123,45678".to_owned()),
            ("burned_card", "123,45678".to_owned()),
        ];
        assert_eq!(keys(&live), both);

        let mut suspended = live.clone();
        suspended.suspend().unwrap();
        suspended.lock_out().unwrap();
        assert_eq!(
            keys(&suspended),
            both,
            "suspension does not free the number"
        );

        let trace = ("revoked", "card:123,45678\u{1f}51".to_owned());
        for reason in [RevokeReason::Lost, RevokeReason::Stolen] {
            let mut burnt = live.clone();
            burnt.revoke(reason).unwrap();
            let burnt_key = ("burned_card", "123,45678".to_owned());
            assert_eq!(
                keys(&burnt),
                vec![burnt_key.clone(), trace.clone()],
                "{reason:?}"
            );
            burnt.delete().unwrap();
            assert_eq!(keys(&burnt), vec![burnt_key], "{reason:?} then deleted");
        }

        for reason in [RevokeReason::Damaged, RevokeReason::Terminated] {
            let mut revoked = live.clone();
            revoked.revoke(reason).unwrap();
            assert_eq!(keys(&revoked), vec![trace.clone()], "{reason:?}");
            revoked.delete().unwrap();
            assert_eq!(keys(&revoked), vec![], "{reason:?} then deleted");
        }

        let mut deleted = live;
        deleted.delete().unwrap();
        assert_eq!(keys(&deleted), vec![]);
    }

    #[test]
    fn other_kinds_claim_their_value_while_live() {
        let pin = issue(55, 21, CredentialValue::Pin(Pin::parse("1234").unwrap()));
        assert_eq!(keys(&pin), vec![("pin", "1234".to_owned())]);
        let qr = issue(
            54,
            21,
            CredentialValue::Qr(SecretText::parse("qr", "Q-1").unwrap()),
        );
        assert_eq!(keys(&qr), vec![("qr", "Q-1".to_owned())]);
        let cloud = issue(
            52,
            21,
            CredentialValue::CloudKey {
                token: SecretText::parse("token", "tok").unwrap(),
                pin: Some(Pin::parse("9999").unwrap()),
            },
        );
        assert_eq!(keys(&cloud), vec![("cloud_key", "tok".to_owned())]);
        let face = issue(56, 21, CredentialValue::face("p.jpg").unwrap());
        assert_eq!(keys(&face), vec![("face", "21".to_owned())]);
        let mobile = issue(60, 21, CredentialValue::MobileKey { phone_id: None });
        assert_eq!(keys(&mobile), vec![]);

        let traces = [
            vec![("revoked", "pin:1234\u{1f}55".to_owned())],
            vec![("revoked", "qr:Q-1\u{1f}54".to_owned())],
            vec![("revoked", "cloud_key:tok\u{1f}52".to_owned())],
            vec![],
        ];
        for (mut credential, trace) in [pin, qr, cloud, face].into_iter().zip(traces) {
            let mut deleted = credential.clone();
            deleted.delete().unwrap();
            assert_eq!(keys(&deleted), vec![]);
            credential.revoke(RevokeReason::Lost).unwrap();
            assert_eq!(
                keys(&credential),
                trace,
                "only cards burn; revoked values leave a trace"
            );
            credential.delete().unwrap();
            assert_eq!(keys(&credential), vec![]);
        }
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
                    pin: p.map(|p| Pin::parse(&p).unwrap()),
                }
            }),
            prop::option::of(any::<u64>()).prop_map(|phone| CredentialValue::MobileKey {
                phone_id: phone.map(PhoneId::new),
            }),
        ]
    }

    fn any_reason() -> impl Strategy<Value = RevokeReason> {
        prop_oneof![
            Just(RevokeReason::Lost),
            Just(RevokeReason::Stolen),
            Just(RevokeReason::Damaged),
            Just(RevokeReason::Terminated),
            Just(RevokeReason::PhoneDeactivated),
            Just(RevokeReason::ParentRevoked),
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

    /// Small pools of values, so that two generated credentials often share one.
    fn clashing_value() -> impl Strategy<Value = CredentialValue> {
        prop_oneof![
            (0..2_u32).prop_map(card),
            (0..2_u32).prop_map(|n| CredentialValue::Pin(Pin::parse(&format!("000{n}")).unwrap())),
            (0..2_u32).prop_map(|n| {
                CredentialValue::Qr(SecretText::parse("qr", &format!("000{n}")).unwrap())
            }),
            (0..2_u32).prop_map(|n| CredentialValue::CloudKey {
                token: SecretText::parse("token", &format!("000{n}")).unwrap(),
                pin: None,
            }),
            Just(CredentialValue::face("p.jpg").unwrap()),
            Just(CredentialValue::MobileKey { phone_id: None }),
        ]
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

    /// Lifecycles weighted towards live credentials, which is where most clashes are.
    fn mostly_live() -> impl Strategy<Value = CredentialLifecycle> {
        (
            prop_oneof![3 => Just(None), 2 => any_reason().prop_map(Some)],
            prop::bool::weighted(0.25),
            any::<bool>(),
        )
            .prop_map(|(revoked, deleted, suspended)| CredentialLifecycle {
                revoked,
                deleted,
                suspended,
                ..CredentialLifecycle::default()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// The store's claims refuse exactly what `check_can_issue` refuses: a new live
        /// credential clashes with an existing one iff the domain would not issue it.
        #[test]
        fn unique_keys_agree_with_check_can_issue(
            existing_value in clashing_value(),
            existing_person in 1..3_u64,
            lifecycle in mostly_live(),
            new_value in clashing_value(),
            new_person in 1..3_u64,
        ) {
            let existing = issue(1, existing_person, existing_value).restore_lifecycle(lifecycle);
            let new = issue(2, new_person, new_value.clone());
            let refused = check_can_issue(
                [&existing],
                TENANT,
                PersonId::new(new_person),
                &new_value,
            );
            let held = existing.unique_keys();
            let clash = new.unique_keys().into_iter().find(|k| held.contains(k));
            match (&refused, &clash) {
                (Ok(()), None) => {}
                (Err(IssueError::CardLostOrStolen), Some(k)) => prop_assert_eq!(k.scope, BURNED_CARD),
                (Err(IssueError::Duplicate { field: "card" }), Some(k)) => prop_assert_eq!(k.scope, CARD),
                (Err(IssueError::Duplicate { field: "pin" }), Some(k)) => prop_assert_eq!(k.scope, PIN),
                (Err(IssueError::Duplicate { field: "qr" }), Some(k)) => prop_assert_eq!(k.scope, QR),
                (Err(IssueError::Duplicate { field: "token" }), Some(k)) => prop_assert_eq!(k.scope, CLOUD_KEY),
                (Err(IssueError::FaceAlreadyEnrolled), Some(k)) => prop_assert_eq!(k.scope, FACE),
                _ => prop_assert!(false, "domain says {:?}, store clash {:?}", refused, clash),
            }
        }
    }
}
