//! The request journal: every request the device answered, with its reply, kept in a
//! bounded ring buffer for assertions, debugging and transcripts.
//!
//! Secrets never enter the journal: session tokens (query, cookie and reply), passwords
//! and salts (`password`, `*_password`, `salt`), PINs (the `value` of `pins` rows, filters
//! and clauses, `pin_value` of access logs and online requests) and typed passwords are
//! replaced by `"***"`, and binary bodies (photos) are recorded by size only.
//!
//! Recording is on every request's path, so a JSON body the device parsed or produced
//! anyway is checked for secrets where it lies; one without any is kept as its exact text
//! and parsed only when the journal is read (which gives what parsing it at once would).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use axum::body::Bytes;
use memchr::memmem;
use serde_json::{Value as Json, json};

use crate::wire::Members;

/// Entries kept before the oldest are dropped.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// A request or reply body as recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// No body.
    Empty,
    /// A JSON body, secrets redacted.
    Json(Json),
    /// Non-JSON bytes, recorded by length.
    Bytes(usize),
}

impl Body {
    /// Records a body: JSON (redacted) when it parses, otherwise its length.
    pub fn capture(bytes: &[u8]) -> Body {
        if bytes.is_empty() {
            return Body::Empty;
        }
        match serde_json::from_slice::<Json>(bytes) {
            Ok(mut json) => {
                redact(&mut json);
                Body::Json(json)
            }
            Err(_) => Body::Bytes(bytes.len()),
        }
    }

    /// Records a JSON body the device produced itself (its reply), without printing and
    /// parsing it again; the same as [`Body::capture`] of its text.
    pub fn of_json(json: &Json) -> Body {
        let mut json = json.clone();
        redact(&mut json);
        Body::Json(json)
    }

    /// Keeps a JSON document the device parsed or produced, `text` being its exact bytes:
    /// a small one without secrets as those bytes (parsed when read), any other redacted
    /// now.
    pub(crate) fn keep(json: &Json, text: Bytes) -> Kept {
        Body::keep_with(json, &text, || text.clone())
    }

    /// [`Body::keep`] of a document whose text is borrowed: copied only when kept.
    pub(crate) fn keep_copy(json: &Json, text: &[u8]) -> Kept {
        Body::keep_with(json, text, || Bytes::copy_from_slice(text))
    }

    /// Keeps the text of a valid JSON document read without building it: what
    /// [`Body::keep_copy`] of the document and its text keeps, the document parsed only
    /// when the text may hold a secret (a `value` of a card, say, holds none, and its
    /// text is kept: a parsed document takes several times its text's memory).
    pub(crate) fn keep_json_text(text: &[u8]) -> Kept {
        if text.len() <= MAX_KEPT_TEXT && !may_hold_secret(text) {
            return Kept::Text(Bytes::copy_from_slice(text));
        }
        match serde_json::from_slice::<Json>(text) {
            Ok(json) => Body::keep_copy(&json, text),
            Err(_) => Body::capture(text).into(),
        }
    }

    /// Keeps a body whose top-level object was read without its map ([`ReadObject`]),
    /// `members` being that object's: what [`Body::keep_copy`] of its document and its
    /// text keeps, the members walked as the document would be.
    ///
    /// [`ReadObject`]: crate::wire::ReadObject
    pub(crate) fn keep_members(members: Members<'_>, text: &[u8]) -> Kept {
        let secret = (text.len() < PRECHECKED_TEXT || may_hold_secret(text))
            && members_hold_secret(members, Scope::default());
        if text.len() <= MAX_KEPT_TEXT && !secret {
            Kept::Text(Bytes::copy_from_slice(text))
        } else {
            Body::capture(text).into()
        }
    }

    /// Keeps a JSON document the device printed without building it, `holds_secret`
    /// saying whether [`redact`] would change it: the same as [`Body::keep`] of the
    /// document and its text.
    pub(crate) fn keep_printed(text: Bytes, holds_secret: bool) -> Kept {
        if !holds_secret && text.len() <= MAX_KEPT_TEXT {
            Kept::Text(text)
        } else {
            Body::capture(&text).into()
        }
    }

    fn keep_with(json: &Json, text: &[u8], kept: impl FnOnce() -> Bytes) -> Kept {
        let secret = (text.len() < PRECHECKED_TEXT || may_hold_secret(text)) && holds_secret(json);
        if text.len() <= MAX_KEPT_TEXT && !secret {
            Kept::Text(kept())
        } else {
            Kept::Ready(Body::of_json(json))
        }
    }

    fn to_json(&self) -> Json {
        match self {
            Body::Empty => Json::Null,
            Body::Json(j) => j.clone(),
            Body::Bytes(n) => json!({"bytes": n}),
        }
    }
}

/// Largest text kept as is: the device's request size limit, so that every request body
/// without a secret is kept as its text (a large batch was parsed into a copy of its
/// document here, a sixth of a 1,000-row `create_objects`); a larger reply is recorded
/// redacted at once. The text is smaller than the document parsed from it.
const MAX_KEPT_TEXT: usize = crate::api::MAX_BODY_BYTES;

/// Smallest text searched for secret names ([`may_hold_secret`]) before its document is
/// walked: below it the walk costs less than the searches.
const PRECHECKED_TEXT: usize = 1024;

/// A body as the ring keeps it.
#[derive(Debug, Clone)]
pub(crate) enum Kept {
    /// Recorded already.
    Ready(Body),
    /// The exact text of a JSON document that holds no secret.
    Text(Bytes),
}

impl Kept {
    fn body(&self) -> Body {
        match self {
            Kept::Ready(body) => body.clone(),
            Kept::Text(text) => Body::capture(text),
        }
    }
}

impl From<Body> for Kept {
    fn from(body: Body) -> Self {
        Kept::Ready(body)
    }
}

/// Members whose value is a secret wherever they appear: passwords and salts (also
/// `panic_password`, `pjsip.password`, `onvif.rtsp_password` and the like), session
/// tokens, PINs and passwords typed at the device, TOTP seeds of cards, and photos.
const SECRET_MEMBERS: [&str; 9] = [
    "password",
    "salt",
    "session",
    "panic_salt",
    "image",
    "pin_value",
    "password_value",
    "secret",
    // A joined column of the pins table in a load_objects row.
    "pins.value",
];

/// Text found in the name of every member that may hold a secret, as the name is written
/// in a JSON text without escapes: each of [`SECRET_MEMBERS`] and `*_password` holds one
/// of the first five or ends in `value"` (the closing quote, so that `values` does not
/// count), and so does the `value` of a PIN.
const SECRET_HINTS: [&str; 6] = ["password", "salt", "session", "image", "secret", "value\""];

/// Whether a JSON text may hold a secret by [`holds_secret`]'s rules: false only when it
/// has no escape (which could spell a name otherwise) and no member name could be a
/// secret one, so that the document parsed from it needs no walk. A few passes of a
/// vectorised search over the text cost a fraction of walking its document.
fn may_hold_secret(text: &[u8]) -> bool {
    static FINDERS: LazyLock<Vec<memmem::Finder<'static>>> = LazyLock::new(|| {
        SECRET_HINTS
            .iter()
            .map(|hint| memmem::Finder::new(hint.as_bytes()))
            .collect()
    });
    memchr::memchr(b'\\', text).is_some() || FINDERS.iter().any(|f| f.find(text).is_some())
}

/// Where a JSON value sits, as far as PINs go: a PIN is the `value` column of the `pins`
/// table, so whether a member named `value` is secret depends on what surrounds it.
#[derive(Debug, Clone, Copy, Default)]
struct Scope {
    /// The value is a row of `pins`, or a nested filter on its columns
    /// (`{"pins": {"value": …}}`): its `value` member is a PIN.
    pin_row: bool,
    /// Array-form where clauses without an `object` are about `pins`.
    clauses_on_pins: bool,
}

/// Whether a member so named is a secret wherever it appears (a `value` is one only
/// where it is a PIN).
pub(crate) fn secret_member(key: &str) -> bool {
    SECRET_MEMBERS.contains(&key) || key.ends_with("_password")
}

/// Whether member `key` of `object`, seen in `scope`, holds a secret.
fn is_secret(key: &str, object: Members<'_>, scope: Scope) -> bool {
    if secret_member(key) {
        return true;
    }
    if key != "value" {
        return false;
    }
    match object.get("field") {
        // An array-form where clause: its value is a PIN when it compares pins.value.
        Some(field) => {
            let on_pins = match object.get("object") {
                Some(table) => table == "pins",
                None => scope.clauses_on_pins,
            };
            on_pins && field == "value"
        }
        None => scope.pin_row,
    }
}

/// The scope of the value of member `key` of `object`.
fn member_scope(key: &str, object: Members<'_>, scope: Scope) -> Scope {
    // Looked up only for the members whose scope depends on it.
    let names_pins = || object.get("object").is_some_and(|t| t == "pins");
    match key {
        // A reply's rows (`{"pins": [rows]}`) or a nested filter (`{"pins": {…}}`).
        "pins" => Scope {
            pin_row: true,
            ..scope
        },
        // The rows written by create / modify / create_or_modify on pins.
        "values" => Scope {
            pin_row: names_pins(),
            ..scope
        },
        "where" => Scope {
            pin_row: false,
            clauses_on_pins: names_pins(),
        },
        _ => Scope {
            pin_row: false,
            ..scope
        },
    }
}

fn redact(json: &mut Json) {
    redact_in(json, Scope::default());
}

fn redact_in(json: &mut Json, scope: Scope) {
    match json {
        Json::Object(map) => {
            let object = Members::from_map(map);
            let plan: Vec<(bool, Scope)> = map
                .iter()
                .map(|(k, v)| {
                    (
                        is_secret(k, object, scope) && !v.is_null(),
                        member_scope(k, object, scope),
                    )
                })
                .collect();
            for ((_, v), (secret, inner)) in map.iter_mut().zip(plan) {
                if secret {
                    *v = Json::String("***".into());
                } else {
                    redact_in(v, inner);
                }
            }
        }
        Json::Array(items) => items.iter_mut().for_each(|i| redact_in(i, scope)),
        _ => {}
    }
}

/// Whether [`redact`] would change `json`.
fn holds_secret(json: &Json) -> bool {
    holds_secret_in(json, Scope::default())
}

fn holds_secret_in(json: &Json, scope: Scope) -> bool {
    match json {
        Json::Object(map) => members_hold_secret(Members::from_map(map), scope),
        Json::Array(items) => items.iter().any(|i| holds_secret_in(i, scope)),
        _ => false,
    }
}

/// Whether [`redact`] would change the object of `members`, seen in `scope`.
fn members_hold_secret(members: Members<'_>, scope: Scope) -> bool {
    members.iter().any(|(k, v)| {
        (is_secret(k, members, scope) && !v.is_null())
            || holds_secret_in(v, member_scope(k, members, scope))
    })
}

/// [`redact_query`] as the journal keeps it: the query of nearly every request, the
/// session alone, and an empty one are not copied.
pub(crate) fn redacted_query(query: &str) -> Cow<'static, str> {
    match query.split_once('=') {
        Some(("session", token)) if !token.contains('&') => Cow::Borrowed("session=***"),
        _ if query.is_empty() => Cow::Borrowed(""),
        _ => Cow::Owned(redact_query(query)),
    }
}

/// Masks secrets in a query string: the session token, and any password or PIN a client
/// put there. Names are compared decoded (`sess%69on` is `session` to the device too).
pub fn redact_query(query: &str) -> String {
    let secret_key = |pair: &str| {
        let key = pair.split_once('=').map_or(pair, |(key, _)| key);
        // A key needs decoding only when it holds an escape or a `+`.
        if key.bytes().any(|b| b == b'%' || b == b'+') {
            secret_member(&decoded(key))
        } else {
            secret_member(key)
        }
    };
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((key, _)) if secret_key(pair) => {
                out.push_str(key);
                out.push_str("=***");
            }
            _ => out.push_str(pair),
        }
    }
    out
}

fn decoded(key: &str) -> String {
    form_urlencoded::parse(key.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
}

/// One answered request.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Sequence number, from 1, never reused.
    pub seq: u64,
    /// Device-local time of the request.
    pub time: i64,
    /// HTTP method.
    pub method: String,
    /// The command, e.g. `load_objects` (path without `/` and `.fcgi`).
    pub command: String,
    /// Query string, session redacted.
    pub query: String,
    /// Request body.
    pub request: Body,
    /// HTTP status of the reply.
    pub status: u16,
    /// Reply body.
    pub response: Body,
}

impl Entry {
    /// The entry as one JSON object (a transcript line).
    pub fn to_json(&self) -> Json {
        json!({
            "seq": self.seq, "time": self.time, "method": self.method, "command": self.command,
            "query": self.query, "request": self.request.to_json(), "status": self.status,
            "response": self.response.to_json(),
        })
    }
}

/// One attempt to deliver a callback (or a callback dropped by a fault).
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackAttempt {
    /// Sequence number among callback attempts, from 1.
    pub seq: u64,
    /// Device-local time the callback was produced.
    pub time: i64,
    /// Target URL.
    pub url: String,
    /// Topic or command.
    pub topic: String,
    /// Attempt number (1-based); 0 when a fault dropped it unsent.
    pub attempt: u32,
    /// Body, biometric data and secrets redacted.
    pub body: Body,
    /// HTTP status of the answer, or why there was none.
    pub outcome: Result<u16, String>,
}

impl CallbackAttempt {
    pub(crate) fn sent(
        cb: &crate::callbacks::Callback,
        attempt: u32,
        outcome: Result<u16, String>,
    ) -> Self {
        let mut body = cb.body.clone();
        redact(&mut body);
        CallbackAttempt {
            seq: 0,
            time: cb.time,
            url: cb.url.clone(),
            topic: cb.topic.clone(),
            attempt,
            body: Body::Json(body),
            outcome,
        }
    }

    pub(crate) fn dropped(cb: &crate::callbacks::Callback) -> Self {
        CallbackAttempt {
            outcome: Err("dropped by fault".into()),
            ..CallbackAttempt::sent(cb, 0, Ok(0))
        }
    }

    /// Whether the server accepted it (2xx).
    pub fn delivered(&self) -> bool {
        matches!(self.outcome, Ok(s) if (200..300).contains(&s))
    }

    /// The attempt as one JSON object (a transcript line).
    pub fn to_json(&self) -> Json {
        json!({
            "seq": self.seq, "time": self.time, "direction": "out", "url": self.url, "topic": self.topic,
            "attempt": self.attempt, "body": self.body.to_json(),
            "status": self.outcome.as_ref().ok(), "error": self.outcome.as_ref().err(),
        })
    }
}

/// An entry as the ring keeps it.
#[derive(Debug, Clone)]
pub(crate) struct KeptEntry {
    pub(crate) time: i64,
    /// The method and the command: names the device knows are not copied.
    pub(crate) method: Cow<'static, str>,
    pub(crate) command: Cow<'static, str>,
    /// Redacted ([`redacted_query`]).
    pub(crate) query: Cow<'static, str>,
    pub(crate) request: Kept,
    pub(crate) status: u16,
    pub(crate) response: Kept,
}

impl KeptEntry {
    fn entry(&self, seq: u64) -> Entry {
        Entry {
            seq,
            time: self.time,
            method: self.method.to_string(),
            command: self.command.to_string(),
            query: self.query.to_string(),
            request: self.request.body(),
            status: self.status,
            response: self.response.body(),
        }
    }
}

#[derive(Debug)]
struct Ring {
    callbacks: VecDeque<CallbackAttempt>,
    next_callback_seq: u64,
    /// Entries with their sequence numbers.
    entries: VecDeque<(u64, KeptEntry)>,
    capacity: usize,
    next_seq: u64,
}

/// The journal of one device; clones share it.
#[derive(Debug, Clone)]
pub struct Journal {
    ring: Arc<Mutex<Ring>>,
    /// Counts callback attempts, so that views can follow deliveries as they happen.
    callback_count: Arc<tokio::sync::watch::Sender<u64>>,
    /// Counts recorded requests, so that a waiter can follow a client's traffic as it happens.
    entry_count: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for Journal {
    fn default() -> Self {
        Journal::with_capacity(DEFAULT_CAPACITY)
    }
}

impl Journal {
    /// A journal keeping at most `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        Journal {
            ring: Arc::new(Mutex::new(Ring {
                callbacks: VecDeque::new(),
                next_callback_seq: 1,
                entries: VecDeque::new(),
                capacity: capacity.max(1),
                next_seq: 1,
            })),
            callback_count: Arc::new(tokio::sync::watch::channel(0).0),
            entry_count: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }

    /// Appends an entry (its `seq` is assigned here).
    pub fn record(&self, entry: Entry) {
        self.keep(KeptEntry {
            time: entry.time,
            method: entry.method.into(),
            command: entry.command.into(),
            query: entry.query.into(),
            request: entry.request.into(),
            status: entry.status,
            response: entry.response.into(),
        });
    }

    /// Appends an entry whose bodies may still be text.
    pub(crate) fn keep(&self, entry: KeptEntry) {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = ring.next_seq;
        ring.next_seq += 1;
        if ring.entries.len() == ring.capacity {
            ring.entries.pop_front();
        }
        ring.entries.push_back((seq, entry));
        drop(ring);
        crate::counter::bump(&self.entry_count);
    }

    /// A receiver that sees the count move whenever a request is recorded (also once the
    /// ring is full and old entries are dropped).
    pub fn subscribe_entries(&self) -> tokio::sync::watch::Receiver<u64> {
        self.entry_count.subscribe()
    }

    /// Appends a callback attempt (its `seq` is assigned here).
    pub fn record_callback(&self, mut attempt: CallbackAttempt) {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        attempt.seq = ring.next_callback_seq;
        ring.next_callback_seq += 1;
        if ring.callbacks.len() == ring.capacity {
            ring.callbacks.pop_front();
        }
        ring.callbacks.push_back(attempt);
        drop(ring);
        crate::counter::bump(&self.callback_count);
    }

    /// A receiver that sees the count move whenever a callback attempt is recorded.
    pub fn subscribe_callbacks(&self) -> tokio::sync::watch::Receiver<u64> {
        self.callback_count.subscribe()
    }

    /// Every kept callback attempt, oldest first.
    pub fn callbacks(&self) -> Vec<CallbackAttempt> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.callbacks.iter().cloned().collect()
    }

    /// Every kept entry, oldest first.
    pub fn entries(&self) -> Vec<Entry> {
        let kept: Vec<(u64, KeptEntry)> = self
            .ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .iter()
            .cloned()
            .collect();
        kept.iter().map(|(seq, k)| k.entry(*seq)).collect()
    }

    /// Kept entries for one command.
    pub fn for_command(&self, command: &str) -> Vec<Entry> {
        self.entries()
            .into_iter()
            .filter(|e| e.command == command)
            .collect()
    }

    /// Forgets every entry (sequence numbers keep counting).
    pub fn clear(&self) {
        self.ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .clear();
    }

    /// The journal as JSON lines: requests, then callback attempts.
    pub fn transcript(&self) -> String {
        let requests = self.entries().into_iter().map(|e| e.to_json());
        let callbacks = self.callbacks().into_iter().map(|c| c.to_json());
        requests
            .chain(callbacks)
            .map(|j| j.to_string() + "\n")
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_ring_is_bounded() {
        let j = Journal::with_capacity(2);
        for i in 0..3 {
            j.record(Entry {
                seq: 0,
                time: i,
                method: "POST".into(),
                command: "login".into(),
                query: redact_query("session=abc/def&user_id=1"),
                request: Body::capture(br#"{"login":"admin","password":"admin"}"#),
                status: 200,
                response: Body::capture(br#"{"session":"q/AcfpiU3QLRUqHKNrAh5srT"}"#),
            });
        }
        let e = j.entries();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].seq, 2);
        assert_eq!(e[1].query, "session=***&user_id=1");
        let t = j.transcript();
        assert!(!t.contains("admin\",\"password\":\"admin"));
        assert!(!t.contains("q/Acfpi"));
        assert_eq!(Body::capture(&[0xFF, 0xD8, 0xFF]), Body::Bytes(3));
    }

    #[test]
    fn pins_are_redacted_wherever_the_pins_table_value_travels() {
        let cases = [
            json!({"object": "pins", "values": [{"value": "4321", "user_id": 1}]}),
            json!({"object": "pins", "values": {"value": "4321"}, "where": {"pins": {"id": 1}}}),
            json!({"object": "users", "where": {"pins": {"value": {"=": "4321"}}}}),
            json!({"object": "pins", "where": [{"field": "value", "value": "4321"}]}),
            json!({"object": "users", "where": [{"object": "pins", "field": "value", "operator": "IN", "value": ["4321"]}]}),
            json!({"pins": [{"id": 1, "value": "4321", "user_id": 1, "pin_type": 0}]}),
            json!({"users": [{"id": 1, "pins.value": "4321"}]}),
            json!({"access_logs": [{"id": 1, "pin_value": "4321"}]}),
            json!({"success": true, "pin_value": "4321", "password_value": "4321"}),
            json!({"onvif": {"rtsp_password": "4321"}, "pjsip": {"password": "4321"}}),
        ];
        for case in cases {
            assert!(holds_secret(&case), "{case}");
            let Body::Json(redacted) = Body::of_json(&case) else {
                panic!("json")
            };
            assert!(!redacted.to_string().contains("4321"), "{redacted}");
        }
        // Values that are not PINs stay.
        for plain in [
            json!({"object": "cards", "values": [{"value": 4321, "user_id": 1}]}),
            json!({"object": "pins", "where": [{"field": "user_id", "value": 4321}]}),
            json!({"object": "qrcodes", "where": {"qrcodes": {"value": "4321"}}}),
            json!({"cards": [{"value": 4321}]}),
        ] {
            assert!(!holds_secret(&plain), "{plain}");
            assert_eq!(Body::of_json(&plain), Body::Json(plain.clone()));
        }
        assert_eq!(
            redact_query("sess%69on=abc&user_id=1&password=pw&x"),
            "sess%69on=***&user_id=1&password=***&x"
        );
        for query in [
            "",
            "session=abc",
            "session=",
            "session",
            "session=a&b=1",
            "sessions=abc",
            "sess%69on=abc",
            "x=1&session=abc",
            "password=pw",
        ] {
            assert_eq!(redacted_query(query), redact_query(query), "{query}");
        }
    }

    /// A JSON document of members named from a pool that holds every secret name, the
    /// names whose scope matters, and plain ones.
    fn document() -> impl proptest::strategy::Strategy<Value = Json> {
        use proptest::prelude::*;
        let names: Vec<String> = SECRET_MEMBERS
            .iter()
            .map(|n| (*n).to_owned())
            .chain(
                [
                    "rtsp_password",
                    "value",
                    "values",
                    "pins",
                    "object",
                    "field",
                    "where",
                    "name",
                    "id",
                    "users",
                    "registration",
                ]
                .map(String::from),
            )
            .collect();
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<i64>().prop_map(Json::from),
            prop::sample::select(vec!["pins", "value", "users", "x\"y", "a value"])
                .prop_map(Json::from),
        ];
        leaf.prop_recursive(4, 40, 5, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                prop::collection::vec((prop::sample::select(names.clone()), inner), 0..5)
                    .prop_map(|members| Json::Object(members.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn a_text_said_to_hold_no_secret_holds_none() {
        use proptest::prelude::*;
        let secrets = std::sync::atomic::AtomicUsize::new(0);
        proptest!(|(doc in document())| {
            if holds_secret(&doc) {
                secrets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                prop_assert!(may_hold_secret(doc.to_string().as_bytes()), "{}", doc);
            }
        });
        // The documents made hold secrets often enough for the test to mean something.
        let secrets = secrets.into_inner();
        assert!(secrets > 20, "{secrets} documents with a secret");
        for plain in [
            r#"{"object":"users","values":[{"name":"A","registration":"B"}]}"#,
            r#"{"object":"users","values":{"name":"x"},"where":{"users":{"id":{">=":1}}}}"#,
            r#"{"object":"cards","where":{"cards":{"user_id":7}}}"#,
        ] {
            assert!(!may_hold_secret(plain.as_bytes()), "{plain}");
        }
        // An escape may spell any name: the document is walked.
        assert!(may_hold_secret(br#"{"name":"\u0041"}"#));
    }

    #[test]
    fn the_entry_count_wakes_receivers_and_reads_right_without_any() {
        let j = Journal::with_capacity(4);
        let entry = || KeptEntry {
            time: 0,
            method: "GET".into(),
            command: "session_is_valid".into(),
            query: redacted_query("session=abc"),
            request: Body::Empty.into(),
            status: 200,
            response: Body::Empty.into(),
        };
        j.keep(entry());
        let mut rx = j.subscribe_entries();
        assert_eq!(*rx.borrow(), 1);
        assert!(!rx.has_changed().unwrap());
        j.keep(entry());
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 2);
        drop(rx);
        j.keep(entry());
        assert_eq!(*j.subscribe_entries().borrow(), 3);
        assert_eq!(j.entries()[2].query, "session=***");
    }

    #[test]
    fn kept_text_reads_as_captured_and_secrets_are_redacted_at_once() {
        let plain = br#"{"object":"users","values":[{"id":1,"name":"A","password":null}]}"#;
        let json: Json = serde_json::from_slice(plain).expect("json");
        let kept = Body::keep(&json, Bytes::from_static(plain));
        assert!(matches!(kept, Kept::Text(_)), "no secret: kept as text");
        assert_eq!(kept.body(), Body::capture(plain));
        let secret = br#"{"login":"admin","pass\u0077ord":"hunter2"}"#;
        let json: Json = serde_json::from_slice(secret).expect("json");
        let kept = Body::keep(&json, Bytes::from_static(secret));
        let Kept::Ready(body) = kept else {
            panic!("a secret is redacted when recorded, escaped or not");
        };
        assert_eq!(body.to_json()["password"], "***");
        let j = Journal::with_capacity(4);
        j.keep(KeptEntry {
            time: 0,
            method: "POST".into(),
            command: "create_objects".into(),
            query: "".into(),
            request: Body::keep(
                &serde_json::from_slice(plain).expect("json"),
                Bytes::from_static(plain),
            ),
            status: 200,
            response: Body::Empty.into(),
        });
        assert_eq!(j.entries()[0].request, Body::capture(plain));
        assert_eq!(j.entries()[0].seq, 1);
    }

    #[test]
    fn a_body_read_without_its_map_is_kept_as_its_document_would_be() {
        use proptest::prelude::*;
        let objects = std::sync::atomic::AtomicUsize::new(0);
        proptest!(|(doc in document())| {
            let text = doc.to_string();
            let Some(read) = crate::wire::ReadObject::read(text.as_bytes()) else {
                prop_assert!(!doc.is_object(), "{}", text);
                return Ok(());
            };
            objects.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let by_members = Body::keep_members(read.members(), text.as_bytes());
            let by_document = Body::keep_copy(&doc, text.as_bytes());
            prop_assert_eq!(
                matches!(by_members, Kept::Text(_)),
                matches!(by_document, Kept::Text(_)),
                "{}", text
            );
            prop_assert_eq!(by_members.body(), by_document.body(), "{}", text);
        });
        assert!(objects.into_inner() > 20, "objects read");
    }

    #[test]
    fn a_text_read_without_its_document_is_kept_as_that_document_would_be() {
        // No secret, whether or not a name hints at one: kept as the text.
        for plain in [
            &br#"{"object":"users","values":[{"id":1,"name":"A"}]}"#[..],
            br#"{"object":"cards","values":[{"value":123456,"user_id":1}]}"#,
        ] {
            let kept = Body::keep_json_text(plain);
            assert!(matches!(kept, Kept::Text(_)), "no secret: kept as text");
            assert_eq!(kept.body(), Body::capture(plain));
        }
        for secret in [
            &br#"{"object":"pins","values":[{"value":"40404","user_id":1}]}"#[..],
            br#"{"object":"users","values":[{"name":"A","password":"hunter2"}]}"#,
        ] {
            let kept = Body::keep_json_text(secret);
            let Kept::Ready(body) = &kept else {
                panic!("a secret is redacted when recorded");
            };
            let json: Json = serde_json::from_slice(secret).expect("json");
            assert_eq!(kept.body(), Body::keep_copy(&json, secret).body());
            assert!(!body.to_json().to_string().contains("40404"));
            assert!(!body.to_json().to_string().contains("hunter2"));
        }
    }
}
