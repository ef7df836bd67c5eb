//! Which stored values are secrets, and their form at rest: the one place that knows it,
//! shared by every backend through [`super::sealed::SealedStore`] and by the conversion of a
//! database written in clear ([`Conversion`]).
//!
//! - Sealed ([`SecretKey::seal`]), because the core must send them on: a terminal's device
//!   `password`; a PIN credential's `value.pin`; a QR credential's `value.payload`; every
//!   document of what was applied to a terminal (it holds PINs and QR payloads); every
//!   outbox message body (links and PINs) and every stored idempotent reply (a created
//!   credential's token or PIN is shown once in it).
//! - Keyed digests ([`SecretKey::digest`]), because the core only ever compares them: a
//!   cloud key's `value.token` and `value.pin` (the core digests them before they reach
//!   the domain; a clear one from an earlier version is digested here), an invitation's
//!   `token_digest` (the SHA-256 of its token, digested again under the key), and the
//!   unique keys of PINs, QR payloads, cloud-key tokens and invitation tokens, also inside
//!   the `revoked` traces (`<scope>:<value>\u{1f}<id>`).
//!
//! Every transformation leaves a value already in its form at rest as it is, so converting
//! twice changes nothing.

use serde_json::Value as Json;

use super::seal::{SealError, SecretKey, is_digest, is_sealed, is_sealed_text};
use super::{Kind, UniqueKey};

/// Unique-key scopes whose values are secrets (digested at rest).
const SECRET_SCOPES: [&str; 4] = ["pin", "qr", "cloud_key", "invitation_token"];
/// The scope of the traces revoked credentials leave (`<scope>:<value>\u{1f}<id>`).
const REVOKED: &str = "revoked";

/// A text in its digested form (kept when it already is a digest).
fn digested(key: &SecretKey, text: &str) -> String {
    if is_digest(text) {
        text.to_owned()
    } else {
        key.digest(text)
    }
}

/// Seals the string at `pointer` in `data` (a sealed one is left as it is).
fn seal_at(key: &SecretKey, data: &mut Json, pointer: &str) {
    if let Some(slot) = data.pointer_mut(pointer)
        && let Json::String(clear) = slot
    {
        *slot = key.seal(clear);
    }
}

/// Opens the sealed value at `pointer` in `data`.
fn open_at(key: &SecretKey, data: &mut Json, pointer: &str) -> Result<(), SealError> {
    if let Some(slot) = data.pointer_mut(pointer)
        && is_sealed(slot)
    {
        *slot = Json::String(key.open(slot)?);
    }
    Ok(())
}

/// Digests the string at `pointer` in `data` (a digest is left as it is).
fn digest_at(key: &SecretKey, data: &mut Json, pointer: &str) {
    if let Some(slot) = data.pointer_mut(pointer)
        && let Json::String(text) = slot
    {
        *slot = Json::String(digested(key, text));
    }
}

/// The fields of a document of `kind` that are sealed at rest.
fn sealed_fields(kind: Kind, data: &Json) -> &'static [&'static str] {
    match (kind, data.pointer("/value/kind").and_then(Json::as_str)) {
        (Kind::Terminal, _) => &["/password"],
        (Kind::Credential, Some("pin")) => &["/value/pin"],
        (Kind::Credential, Some("qr")) => &["/value/payload"],
        _ => &[],
    }
}

/// The fields of a document of `kind` that are digested at rest.
fn digested_fields(kind: Kind, data: &Json) -> &'static [&'static str] {
    match (kind, data.pointer("/value/kind").and_then(Json::as_str)) {
        (Kind::Credential, Some("cloud_key")) => &["/value/token", "/value/pin"],
        (Kind::Invitation, _) => &["/token_digest"],
        _ => &[],
    }
}

/// A record's document as stored: its secrets sealed or digested.
pub fn record_at_rest(key: &SecretKey, kind: Kind, data: &Json) -> Json {
    let (sealed, digests) = (sealed_fields(kind, data), digested_fields(kind, data));
    if sealed.is_empty() && digests.is_empty() {
        return data.clone();
    }
    let mut data = data.clone();
    for pointer in sealed {
        seal_at(key, &mut data, pointer);
    }
    for pointer in digests {
        digest_at(key, &mut data, pointer);
    }
    data
}

/// A stored document as records read it: sealed secrets opened (digests stay digests).
pub fn record_in_clear(key: &SecretKey, kind: Kind, mut data: Json) -> Result<Json, SealError> {
    for pointer in sealed_fields(kind, &data) {
        open_at(key, &mut data, pointer)?;
    }
    Ok(data)
}

/// Whether a record's document still holds a secret in clear.
pub fn record_in_clear_at_rest(kind: Kind, data: &Json) -> bool {
    sealed_fields(kind, data)
        .iter()
        .any(|p| data.pointer(p).is_some_and(Json::is_string))
        || digested_fields(kind, data).iter().any(|p| {
            data.pointer(p)
                .and_then(Json::as_str)
                .is_some_and(|t| !is_digest(t))
        })
}

/// The value of a claim of `scope` as stored: digested when the scope is a secret's, and
/// inside a `revoked` trace the traced value digested when its scope is a secret's.
pub fn claim_value_at_rest(key: &SecretKey, scope: &str, value: &str) -> String {
    if SECRET_SCOPES.contains(&scope) {
        return digested(key, value);
    }
    if scope == REVOKED
        && let Some((traced, rest)) = value.split_once(':')
        && SECRET_SCOPES.contains(&traced)
    {
        // `<value>\u{1f}<id>` or, for a prefix lookup, `<value>\u{1f}`.
        let (secret, id) = rest.rsplit_once('\u{1f}').unwrap_or((rest, ""));
        let separator = if rest.contains('\u{1f}') {
            "\u{1f}"
        } else {
            ""
        };
        return format!("{traced}:{}{separator}{id}", digested(key, secret));
    }
    value.to_owned()
}

/// A unique key as stored.
pub fn claim_at_rest(key: &SecretKey, claim: &UniqueKey) -> UniqueKey {
    UniqueKey {
        scope: claim.scope,
        value: claim_value_at_rest(key, claim.scope, &claim.value),
    }
}

/// A text (message body, stored reply) as stored: sealed.
pub fn text_at_rest(key: &SecretKey, text: &str) -> String {
    if is_sealed_text(text) {
        text.to_owned()
    } else {
        key.seal_text(text)
    }
}

/// A stored text as read: opened if sealed (an earlier version's clear text as it is).
pub fn text_in_clear(key: &SecretKey, text: String) -> Result<String, SealError> {
    if is_sealed_text(&text) {
        key.open_text(&text)
    } else {
        Ok(text)
    }
}

/// A document of what was applied to a terminal, as stored: sealed as a whole.
pub fn applied_at_rest(key: &SecretKey, document: &Json) -> Json {
    if is_sealed(document) {
        document.clone()
    } else {
        key.seal(&document.to_string())
    }
}

/// A stored applied document as read: opened.
pub fn applied_in_clear(key: &SecretKey, document: Json) -> Result<Json, SealError> {
    if !is_sealed(&document) {
        return Ok(document);
    }
    serde_json::from_str(&key.open(&document)?).map_err(|_| SealError::CannotOpen)
}

/// The conversion of what a backend stores in clear into its form at rest, for a
/// backend's conversion of a database an earlier version wrote (`acs-core migrate`).
/// Every method returns `None` when the value is already in its form at rest.
#[derive(Debug, Clone)]
pub struct Conversion {
    key: SecretKey,
}

impl Conversion {
    /// The conversion under `key`.
    pub fn new(key: SecretKey) -> Conversion {
        Conversion { key }
    }

    /// A record's document (`kind` as stored), or `None` if it holds no clear secret.
    /// Fails when a sealed secret does not open with the key (another key's database).
    pub fn record(&self, kind: &str, data: &Json) -> Result<Option<Json>, SealError> {
        let Some(kind) = Kind::parse(kind) else {
            return Ok(None);
        };
        record_in_clear(&self.key, kind, data.clone())?;
        Ok(record_in_clear_at_rest(kind, data).then(|| record_at_rest(&self.key, kind, data)))
    }

    /// A unique key's value, or `None` if it is no secret or already digested.
    pub fn claim(&self, scope: &str, value: &str) -> Option<String> {
        let stored = claim_value_at_rest(&self.key, scope, value);
        (stored != value).then_some(stored)
    }

    /// A message body or stored reply, or `None` if already sealed.
    pub fn text(&self, text: &str) -> Option<String> {
        (!is_sealed_text(text)).then(|| self.key.seal_text(text))
    }

    /// An applied document, or `None` if already sealed.
    pub fn applied(&self, document: &Json) -> Option<Json> {
        (!is_sealed(document)).then(|| self.key.seal(&document.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pins_and_qr_payloads_are_sealed_and_open_again() {
        let key = SecretKey::generate();
        for (doc, secret) in [
            (
                json!({"value": {"kind": "pin", "pin": "48151623"}}),
                "48151623",
            ),
            (
                json!({"value": {"kind": "qr", "payload": "QR-4242"}}),
                "QR-4242",
            ),
        ] {
            let stored = record_at_rest(&key, Kind::Credential, &doc);
            assert!(!stored.to_string().contains(secret), "{stored}");
            assert!(!record_in_clear_at_rest(Kind::Credential, &stored));
            assert!(record_in_clear_at_rest(Kind::Credential, &doc));
            assert_eq!(
                record_in_clear(&key, Kind::Credential, stored.clone()).unwrap(),
                doc
            );
            assert_eq!(record_at_rest(&key, Kind::Credential, &stored), stored);
        }
    }

    #[test]
    fn cloud_key_secrets_and_invitation_tokens_are_digested_once() {
        let key = SecretKey::generate();
        let doc = json!({"value": {"kind": "cloud_key", "token": "tok-1", "pin": "9911"}});
        let stored = record_at_rest(&key, Kind::Credential, &doc);
        assert_eq!(stored["value"]["token"], json!(key.digest("tok-1")));
        assert_eq!(stored["value"]["pin"], json!(key.digest("9911")));
        assert_eq!(record_at_rest(&key, Kind::Credential, &stored), stored);
        let invitation = json!({"token_digest": "abc"});
        let stored = record_at_rest(&key, Kind::Invitation, &invitation);
        assert_eq!(stored["token_digest"], json!(key.digest("abc")));
        let conversion = Conversion::new(key);
        assert_eq!(conversion.record("invitation", &stored), Ok(None));
    }

    #[test]
    fn secret_claims_and_their_traces_are_digested() {
        let key = SecretKey::generate();
        let d = key.digest("1234");
        assert_eq!(claim_value_at_rest(&key, "pin", "1234"), d);
        assert_eq!(claim_value_at_rest(&key, "pin", &d), d);
        assert_eq!(claim_value_at_rest(&key, "card", "1,2"), "1,2");
        assert_eq!(
            claim_value_at_rest(&key, "revoked", "pin:1234\u{1f}55"),
            format!("pin:{d}\u{1f}55")
        );
        assert_eq!(
            claim_value_at_rest(&key, "revoked", "pin:1234\u{1f}"),
            format!("pin:{d}\u{1f}")
        );
        assert_eq!(
            claim_value_at_rest(&key, "revoked", "card:1,2\u{1f}9"),
            "card:1,2\u{1f}9"
        );
        let conversion = Conversion::new(key);
        assert_eq!(conversion.claim("pin", &d), None);
        assert_eq!(conversion.claim("card", "1,2"), None);
    }

    #[test]
    fn texts_and_applied_documents_are_sealed() {
        let key = SecretKey::generate();
        let body = text_at_rest(&key, "PIN 777123");
        assert!(!body.contains("777123"));
        assert_eq!(text_at_rest(&key, &body), body);
        assert_eq!(text_in_clear(&key, body).unwrap(), "PIN 777123");
        assert_eq!(text_in_clear(&key, "legacy".into()).unwrap(), "legacy");
        let doc = json!({"pins": [{"value": "777123"}]});
        let stored = applied_at_rest(&key, &doc);
        assert!(!stored.to_string().contains("777123"));
        assert_eq!(applied_in_clear(&key, stored).unwrap(), doc);
    }
}
