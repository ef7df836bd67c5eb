//! Shared pieces of the document codecs: turning document structs into JSON and back with
//! a [`CodecError`] naming the record, instants as RFC 3339 text, auth types by their API
//! names, and [`mirror_enum!`] for domain enums stored as snake_case strings.
//!
//! jiff's own serde support is not enabled in this workspace, so instants go through
//! `Display` (RFC 3339 in UTC, `Z`, with as many fractional digits as needed: lossless)
//! and `FromStr` (any RFC 3339 offset).

use std::collections::BTreeSet;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as Json;

use super::CodecError;
use crate::domain::{AuthType, InvalidField, Window};
use crate::store::Kind;

/// The JSON of a document struct.
pub(super) fn encode<T: Serialize>(document: &T) -> Json {
    // Document structs have string keys and no fallible serializers: this cannot fail.
    serde_json::to_value(document).expect("a document struct always serializes to JSON")
}

/// The document struct in `document`, or an error naming the record.
pub(super) fn decode<T: DeserializeOwned>(
    kind: Kind,
    id: u64,
    document: &Json,
) -> Result<T, CodecError> {
    T::deserialize(document).map_err(|e| invalid(kind, id, e))
}

/// An error about record `kind` `id`.
pub(super) fn invalid(kind: Kind, id: u64, reason: impl fmt::Display) -> CodecError {
    CodecError {
        kind,
        id,
        reason: reason.to_string(),
    }
}

/// Maps a domain validation error (a stored value the domain now refuses) to a codec error.
pub(super) fn refused(kind: Kind, id: u64) -> impl FnOnce(InvalidField) -> CodecError {
    move |e| invalid(kind, id, format!("stored value refused by the domain: {e}"))
}

/// The window `[from, to)` read back, naming the document's members on failure.
pub(super) fn window(
    kind: Kind,
    id: u64,
    from: Option<jiff::Timestamp>,
    to: Option<jiff::Timestamp>,
    from_field: &'static str,
    to_field: &'static str,
) -> Result<Window, CodecError> {
    Window::new(from, to, from_field, to_field).map_err(refused(kind, id))
}

/// `#[serde(with = "rfc3339")]`: a [`jiff::Timestamp`] as RFC 3339 text.
pub(super) mod rfc3339 {
    use super::*;
    use jiff::Timestamp;

    pub(in crate::records) fn serialize<S: Serializer>(
        at: &Timestamp,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(at)
    }

    pub(in crate::records) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|e| {
            serde::de::Error::custom(format!("'{text}' is not an RFC 3339 instant: {e}"))
        })
    }
}

/// `#[serde(default, with = "rfc3339_opt")]`: an optional [`jiff::Timestamp`] as RFC 3339
/// text or `null` (a missing member reads as `None`).
pub(super) mod rfc3339_opt {
    use super::*;
    use jiff::Timestamp;

    pub(in crate::records) fn serialize<S: Serializer>(
        at: &Option<Timestamp>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => serializer.collect_str(at),
            None => serializer.serialize_none(),
        }
    }

    pub(in crate::records) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|e| {
                serde::de::Error::custom(format!("'{text}' is not an RFC 3339 instant: {e}"))
            }),
        }
    }
}

/// `#[serde(with = "auth_types")]`: a set of [`AuthType`]s as their API names
/// (`card_plus_pin`), in the set's order.
pub(super) mod auth_types {
    use super::*;

    pub(in crate::records) fn serialize<S: Serializer>(
        set: &BTreeSet<AuthType>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(set.iter().map(|a| a.name()))
    }

    pub(in crate::records) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeSet<AuthType>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .into_iter()
            .map(|name| {
                AuthType::ALL
                    .into_iter()
                    .find(|a| a.name() == name)
                    .ok_or_else(|| {
                        serde::de::Error::custom(format!("'{name}' is not an auth type"))
                    })
            })
            .collect()
    }
}

/// An optional set of auth types: `null` or a missing member (with `#[serde(default)]`)
/// for `None`, else as [`auth_types`].
pub(super) mod auth_types_opt {
    use super::*;

    pub(in crate::records) fn serialize<S: Serializer>(
        set: &Option<BTreeSet<AuthType>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match set {
            Some(set) => auth_types::serialize(set, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(in crate::records) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<BTreeSet<AuthType>>, D::Error> {
        #[derive(Deserialize)]
        struct Set(#[serde(with = "auth_types")] BTreeSet<AuthType>);
        Ok(Option::<Set>::deserialize(deserializer)?.map(|Set(set)| set))
    }
}

/// Declares a private serde mirror of a domain enum with unit variants, stored as its
/// snake_case variant name, with conversions both ways. The conversion from the domain
/// type is an exhaustive match, so a new domain variant fails to compile until it is
/// given a stored name.
macro_rules! mirror_enum {
    ($(#[$doc:meta])* $mirror:ident <=> $domain:ty { $($variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum $mirror {
            $($variant),+
        }

        impl From<$domain> for $mirror {
            fn from(value: $domain) -> Self {
                match value {
                    $(<$domain>::$variant => $mirror::$variant),+
                }
            }
        }

        impl From<$mirror> for $domain {
            fn from(value: $mirror) -> Self {
                match value {
                    $($mirror::$variant => <$domain>::$variant),+
                }
            }
        }
    };
}
pub(super) use mirror_enum;

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Doc {
        #[serde(with = "rfc3339")]
        at: Timestamp,
        #[serde(default, with = "rfc3339_opt")]
        until: Option<Timestamp>,
        #[serde(with = "auth_types")]
        types: BTreeSet<AuthType>,
    }

    #[test]
    fn instants_are_rfc3339_and_lossless() {
        let doc = Doc {
            at: "2024-03-31T01:59:59.123456789Z".parse().unwrap(),
            until: None,
            types: [AuthType::CardPlusPin, AuthType::Face].into(),
        };
        let json = encode(&doc);
        assert_eq!(
            json,
            serde_json::json!({
                "at": "2024-03-31T01:59:59.123456789Z",
                "until": null,
                "types": ["face", "card_plus_pin"],
            })
        );
        assert_eq!(decode::<Doc>(Kind::Site, 1, &json).unwrap(), doc);
    }

    #[test]
    fn offsets_are_read_and_missing_optionals_default() {
        let json = serde_json::json!({"at": "2024-01-01T01:00:00+01:00", "types": []});
        let doc: Doc = decode(Kind::Site, 1, &json).unwrap();
        assert_eq!(doc.at, "2024-01-01T00:00:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(doc.until, None);
    }

    #[test]
    fn bad_values_name_the_record() {
        let json = serde_json::json!({"at": "yesterday", "types": []});
        let err = decode::<Doc>(Kind::Door, 7, &json).unwrap_err();
        assert_eq!((err.kind, err.id), (Kind::Door, 7));
        assert!(err.reason.contains("yesterday"), "{}", err.reason);
        let json = serde_json::json!({"at": "2024-01-01T00:00:00Z", "types": ["telepathy"]});
        let err = decode::<Doc>(Kind::Door, 7, &json).unwrap_err();
        assert!(err.reason.contains("telepathy"), "{}", err.reason);
    }
}
