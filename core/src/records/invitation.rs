//! Documents of selfie-enroll invitations.
//!
//! Shape (ids are numbers, instants RFC 3339 text, `?` members may be `null` or missing):
//!
//! ```text
//! {person_id, token_digest, valid_from, expires_at, email?, text?, created_at,
//!  state: {kind: "open"} | {kind: "used", at, credential_id} | {kind: "superseded", by}}
//! ```
//!
//! An invitation claims `("invitation_token", <digest>)`, which is also how the public link
//! finds it (the store looks claims up across tenants). The digest here is the token's
//! SHA-256; the store's sealing layer keeps a keyed digest of it in its place.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::codec::{decode, encode, rfc3339, window};
use super::{CodecError, Stored};
use crate::domain::{
    CredentialId, Delivery, Invitation, InvitationId, InvitationState, PersonId, TenantId,
};
use crate::store::{Kind, UniqueKey};

/// The unique-key scope of an invitation's token digest.
pub const TOKEN_SCOPE: &str = "invitation_token";

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StateDoc {
    Open,
    Used {
        #[serde(with = "rfc3339")]
        at: jiff::Timestamp,
        credential_id: u64,
    },
    Superseded {
        by: u64,
    },
}

#[derive(Serialize, Deserialize)]
struct InvitationDoc {
    person_id: u64,
    token_digest: String,
    #[serde(with = "rfc3339")]
    valid_from: jiff::Timestamp,
    #[serde(with = "rfc3339")]
    expires_at: jiff::Timestamp,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(with = "rfc3339")]
    created_at: jiff::Timestamp,
    state: StateDoc,
}

impl Stored for Invitation {
    const KIND: Kind = Kind::Invitation;

    fn record_id(&self) -> u64 {
        self.id.get()
    }

    fn to_document(&self) -> Json {
        encode(&InvitationDoc {
            person_id: self.person_id.get(),
            token_digest: self.token_digest.clone(),
            valid_from: self.valid_from,
            expires_at: self.expires_at,
            email: self.delivery.email.clone(),
            text: self.delivery.text.clone(),
            created_at: self.created_at,
            state: match self.state {
                InvitationState::Open => StateDoc::Open,
                InvitationState::Used { at, credential_id } => StateDoc::Used {
                    at,
                    credential_id: credential_id.get(),
                },
                InvitationState::Superseded { by } => StateDoc::Superseded { by: by.get() },
            },
        })
    }

    fn from_document(tenant: TenantId, id: u64, document: &Json) -> Result<Self, CodecError> {
        let doc: InvitationDoc = decode(Self::KIND, id, document)?;
        window(
            Self::KIND,
            id,
            Some(doc.valid_from),
            Some(doc.expires_at),
            "valid_from",
            "expires_at",
        )?;
        Ok(Invitation {
            id: InvitationId::new(id),
            tenant_id: tenant,
            person_id: PersonId::new(doc.person_id),
            token_digest: doc.token_digest,
            valid_from: doc.valid_from,
            expires_at: doc.expires_at,
            delivery: Delivery {
                email: doc.email,
                text: doc.text,
            },
            created_at: doc.created_at,
            state: match doc.state {
                StateDoc::Open => InvitationState::Open,
                StateDoc::Used { at, credential_id } => InvitationState::Used {
                    at,
                    credential_id: CredentialId::new(credential_id),
                },
                StateDoc::Superseded { by } => InvitationState::Superseded {
                    by: InvitationId::new(by),
                },
            },
        })
    }

    fn unique_keys(&self) -> Vec<UniqueKey> {
        vec![UniqueKey {
            scope: TOKEN_SCOPE,
            value: self.token_digest.clone(),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::{Timestamp, ToSpan};

    #[test]
    fn invitations_round_trip_in_every_state() {
        let t0 = Timestamp::UNIX_EPOCH;
        let base = Invitation::new(
            InvitationId::new(5),
            TenantId::new(1),
            PersonId::new(2),
            "abc".into(),
            (t0, t0 + 24.hours()),
            Delivery::new(Some("ana@example.com".into()), Some("+34600123456".into())).unwrap(),
            t0,
        )
        .unwrap();
        let mut used = base.clone();
        used.use_for(CredentialId::new(9), t0 + 1.hour()).unwrap();
        let mut superseded = base.clone();
        superseded.state = InvitationState::Superseded {
            by: InvitationId::new(6),
        };
        for invitation in [base, used, superseded] {
            let doc = invitation.to_document();
            let back = Invitation::from_document(TenantId::new(1), 5, &doc).unwrap();
            assert_eq!(back, invitation);
        }
    }
}
