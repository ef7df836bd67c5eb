//! The unique keys of credentials, which let the store enforce docs/domain.md §8.3 rule 10,
//! and the claims a decision or an issue looks its subjects up by.
//!
//! A *live* credential (neither revoked nor deleted) claims its value, as
//! [`check_can_issue`](crate::domain::check_can_issue) requires:
//!
//! - card: `("card", "<facility>,<number>")` and `("burned_card", "<facility>,<number>")`;
//! - PIN: `("pin", <digits>)`; QR: `("qr", <payload>)`; cloud key: `("cloud_key", <token
//!   digest>)` (its optional PIN is not unique). The store's sealing layer keeps keyed
//!   digests of these values, also inside `revoked` traces (`crate::store::secrets`);
//!   claims are computed and looked up in clear here;
//! - face: `("face", <person id>)` – a person has at most one live face;
//! - fingerprints and mobile keys claim nothing.
//!
//! A card revoked as lost or stolen ([`RevokeReason::burns_value`](crate::domain::RevokeReason::burns_value)) can never be issued
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

use crate::domain::{Credential, CredentialValue, PersonId};
use crate::store::UniqueKey;

/// Scope of a live card's facility code and number.
const CARD: &str = "card";
/// Scope of a card number that is live or was reported lost or stolen.
const BURNED_CARD: &str = "burned_card";
/// Scope of a live PIN.
const PIN: &str = "pin";
/// Scope of a live QR payload.
const QR: &str = "qr";
/// Scope of a live cloud-key token.
pub(crate) const CLOUD_KEY: &str = "cloud_key";
/// Scope of a person's live face (the value is the person id).
const FACE: &str = "face";
/// Scope of the trace a revoked, undeleted card, PIN, QR payload or token leaves.
pub(crate) const REVOKED: &str = "revoked";

/// The prefix of the traces revoked credentials holding `claim` leave.
fn revoked_prefix(claim: &UniqueKey) -> String {
    format!("{}:{}\u{1f}", claim.scope, claim.value)
}

fn key(scope: &'static str, value: impl Into<String>) -> UniqueKey {
    UniqueKey {
        scope,
        value: value.into(),
    }
}

/// The claims `credential` makes in the store (see the module documentation).
pub(super) fn unique_keys(credential: &Credential) -> Vec<UniqueKey> {
    if !credential.is_live() {
        let mut keys = match (&credential.value, credential.revoked()) {
            (CredentialValue::Card(card), Some(reason)) if reason.burns_value() => {
                vec![key(BURNED_CARD, card.to_string())]
            }
            _ => Vec::new(),
        };
        if credential.revoked().is_some() && !credential.is_deleted() {
            // The claims it held while live, as traces (a face's is its person's).
            keys.extend(
                live_claims(&credential.value, credential.person_id)
                    .iter()
                    .filter(|k| matches!(k.scope, CARD | PIN | QR | CLOUD_KEY))
                    .map(|k| key(REVOKED, format!("{}{}", revoked_prefix(k), credential.id))),
            );
        }
        return keys;
    }
    live_claims(&credential.value, credential.person_id)
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::test_support::{TENANT, any_reason, card, issue};
    use super::*;
    use crate::domain::{
        CredentialLifecycle, IssueError, Pin, RevokeReason, SecretText, check_can_issue,
    };
    use crate::records::Stored as _;

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
                pin: Some(SecretText::parse("pin", "9999").unwrap()),
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
