//! The simulator's own serde boundary: reading members of request JSON the way the
//! terminal firmware's binding layer does, and naming JSON types in its wording.
//!
//! A request body's top-level object is read without building its map ([`ReadObject`]):
//! its names are borrowed from the text and only its values become JSON documents. A
//! `load_objects` of one user by id then builds two small maps rather than three, and a
//! page of users none.
//!
//! Every accessor fails with the firmware's text, e.g.
//! `Invalid member 'minute' (int expected, got undefined)` (docs/device-api.md §2).
//! Nothing here is shared with the core: the core has its own wire module, and both are
//! checked against `fixtures/protocol/`.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, MapAccess, Visitor};
use serde_json::{Map, Value};

/// A request member failed the firmware's type check; the text is the device's error message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid member '{member}' ({expected} expected, got {got})")]
pub struct MemberError {
    /// Name of the member as the client sent it.
    pub member: String,
    /// The firmware's name of the expected type (`int`, `int64`, `string`, …).
    pub expected: &'static str,
    /// The firmware's name of what arrived (`undefined` when the member is missing).
    pub got: &'static str,
}

impl MemberError {
    pub(crate) fn new(member: &str, expected: &'static str, got: Option<&Value>) -> Self {
        MemberError {
            member: member.to_owned(),
            expected,
            got: type_name(got),
        }
    }

    /// A member of type `got` (a [`type_name`]) where one of type `expected` belongs.
    pub(crate) fn of_type(member: &str, expected: &'static str, got: &'static str) -> Self {
        MemberError {
            member: member.to_owned(),
            expected,
            got,
        }
    }
}

/// The firmware's name of a JSON value's type; `None` (a missing member) is `undefined`.
pub fn type_name(value: Option<&Value>) -> &'static str {
    match value {
        None => "undefined",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "bool",
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => "int",
        Some(Value::Number(_)) => "double",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

/// Typed access to the members of one JSON object (a request body or an element of it).
#[derive(Debug, Clone, Copy)]
pub struct Members<'a> {
    source: Source<'a>,
}

/// Where the members are.
#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    /// A parsed JSON object.
    Map(&'a Map<String, Value>),
    /// A body's top-level object read without its map ([`ReadObject`]).
    Read(&'a [(Cow<'a, str>, Value)]),
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl<'a> Members<'a> {
    /// Wraps a JSON value that must be an object; `what` names it in the error.
    pub fn of(value: &'a Value, what: &str) -> Result<Self, MemberError> {
        match value {
            Value::Object(map) => Ok(Members::from_map(map)),
            other => Err(MemberError::new(what, "object", Some(other))),
        }
    }

    /// Wraps an object map directly.
    pub fn from_map(map: &'a Map<String, Value>) -> Self {
        Members {
            source: Source::Map(map),
        }
    }

    /// An object with no members (an empty request body).
    pub fn empty() -> Members<'static> {
        Members::from_map(&EMPTY)
    }

    /// The raw member, if present.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        match self.source {
            Source::Map(map) => member(map, name),
            Source::Read(pairs) => pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v),
        }
    }

    /// How many members.
    pub fn len(&self) -> usize {
        match self.source {
            Source::Map(map) => map.len(),
            Source::Read(pairs) => pairs.len(),
        }
    }

    /// Whether there is no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each member in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a Value)> + use<'a> {
        let (map, pairs) = match self.source {
            Source::Map(map) => (Some(map), None),
            Source::Read(pairs) => (None, Some(pairs)),
        };
        let from_map = map
            .into_iter()
            .flat_map(|m| m.iter().map(|(k, v)| (k.as_str(), v)));
        let read = pairs
            .into_iter()
            .flat_map(|p| p.iter().map(|(k, v)| (k.as_ref(), v)));
        from_map.chain(read)
    }

    /// A required string member.
    pub fn string(&self, name: &str) -> Result<&'a str, MemberError> {
        match self.get(name) {
            Some(Value::String(s)) => Ok(s),
            other => Err(MemberError::new(name, "string", other)),
        }
    }

    /// An optional string member (absent or null is `None`).
    pub fn opt_string(&self, name: &str) -> Result<Option<&'a str>, MemberError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            other => Err(MemberError::new(name, "string", other)),
        }
    }

    /// A required 32-bit-range integer member (`int` in the firmware's wording).
    pub fn int(&self, name: &str) -> Result<i64, MemberError> {
        let value = self.get(name);
        match value.and_then(Value::as_i64) {
            Some(n) if i32::try_from(n).is_ok() => Ok(n),
            _ => Err(MemberError::new(name, "int", value)),
        }
    }

    /// An optional `int` member.
    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, MemberError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.int(name).map(Some),
        }
    }

    /// A required 64-bit integer member (`int64`): anything from `i64::MIN` to `u64::MAX`.
    pub fn int64(&self, name: &str) -> Result<i128, MemberError> {
        let value = self.get(name);
        value
            .and_then(json_integer)
            .ok_or_else(|| MemberError::new(name, "int64", value))
    }

    /// An optional 64-bit integer member that must fit `i64` (ids).
    pub fn opt_int64(&self, name: &str) -> Result<Option<i64>, MemberError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            value => value
                .and_then(Value::as_i64)
                .map(Some)
                .ok_or_else(|| MemberError::new(name, "int64", value)),
        }
    }

    /// A required bool member.
    pub fn bool(&self, name: &str) -> Result<bool, MemberError> {
        match self.get(name) {
            Some(Value::Bool(b)) => Ok(*b),
            other => Err(MemberError::new(name, "bool", other)),
        }
    }

    /// An optional bool member.
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, MemberError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.bool(name).map(Some),
        }
    }

    /// A required array member.
    pub fn array(&self, name: &str) -> Result<&'a [Value], MemberError> {
        match self.get(name) {
            Some(Value::Array(items)) => Ok(items),
            other => Err(MemberError::new(name, "array", other)),
        }
    }

    /// An optional array member.
    pub fn opt_array(&self, name: &str) -> Result<Option<&'a [Value]>, MemberError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.array(name).map(Some),
        }
    }

    /// A required object member.
    pub fn object(&self, name: &str) -> Result<Members<'a>, MemberError> {
        match self.get(name) {
            Some(Value::Object(map)) => Ok(Members::from_map(map)),
            other => Err(MemberError::new(name, "object", other)),
        }
    }
}

/// A request body's top-level object read from its text without building its map: each
/// name (borrowed from the text when it has no escape) with its value as a JSON document.
#[derive(Debug)]
pub struct ReadObject<'t> {
    pairs: Vec<(Cow<'t, str>, Value)>,
}

/// Most members an object read without its map takes ([`ReadObject`], a row of
/// `device::written`): each name is looked for among those before it ([`put_member`]),
/// so an object with more is left to a JSON document's map.
pub(crate) const MAX_READ_MEMBERS: usize = 64;

/// Puts member `name` of an object being read, whose members so far are
/// `members[from..]`, as a JSON object would: a name written again keeps its first place
/// and takes the later value. Fails past [`MAX_READ_MEMBERS`].
pub(crate) fn put_member<'t, V, E: de::Error>(
    members: &mut Vec<(Cow<'t, str>, V)>,
    from: usize,
    name: Cow<'t, str>,
    value: V,
) -> Result<(), E> {
    let object = &mut members[from..];
    if let Some(member) = object.iter_mut().find(|(k, _)| *k == name) {
        member.1 = value;
    } else if object.len() < MAX_READ_MEMBERS {
        members.push((name, value));
    } else {
        return Err(E::custom("too many members"));
    }
    Ok(())
}

impl<'t> ReadObject<'t> {
    /// Reads a text that is one JSON object of at most a few dozen members; `None` for
    /// any other text (not JSON, not an object, empty), which the caller reads as a JSON
    /// document to report its error.
    pub fn read(text: &'t [u8]) -> Option<Self> {
        // Checked as UTF-8 once, in one pass, rather than string by string.
        let text = std::str::from_utf8(text).ok()?;
        let mut de = serde_json::Deserializer::from_str(text);
        let object = de.deserialize_map(ObjectVisitor).ok()?;
        de.end().ok()?;
        Some(object)
    }

    /// The members.
    pub fn members(&self) -> Members<'_> {
        Members {
            source: Source::Read(&self.pairs),
        }
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = ReadObject<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs: Vec<(Cow<'de, str>, Value)> = Vec::with_capacity(4);
        while let Some(Text(name)) = map.next_key()? {
            let value = map.next_value::<Value>()?;
            put_member(&mut pairs, 0, name, value)?;
        }
        Ok(ReadObject { pairs })
    }
}

/// A string read from a JSON text, borrowed from it when it has no escape.
pub(crate) struct Text<'de>(pub Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

/// A JSON integer in the range the device accepts (`i64::MIN ..= u64::MAX`), exactly.
pub fn json_integer(value: &Value) -> Option<i128> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from)),
        _ => None,
    }
}

/// Serialises an integer exactly: `i64` when it fits, otherwise `u64` (card values).
pub fn integer_json(n: i128) -> Value {
    if let Ok(v) = i64::try_from(n) {
        Value::from(v)
    } else if let Ok(v) = u64::try_from(n) {
        Value::from(v)
    } else {
        // Stored integers are range-checked on the way in; clamp defensively.
        Value::from(if n < 0 { i64::MIN } else { i64::MAX })
    }
}

/// Member `name` of `object`: a request's objects hold a handful of members, and comparing
/// names costs less than hashing one.
pub(crate) fn member<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if object.len() <= 8 {
        object.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    } else {
        object.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_read_object_has_the_members_of_its_json_document() {
        for text in [
            r#"{}"#,
            r#" {"object":"users","limit":100,"offset":5000} "#,
            r#"{"object":"users","where":{"users":{"id":7}},"fields":["id","name"]}"#,
            r#"{"a":1,"b":{"c":[true,null,1.5]},"a":"again","d\u0065":"e\"f"}"#,
        ] {
            let read = ReadObject::read(text.as_bytes()).expect("an object");
            let json: Value = serde_json::from_str(text).unwrap();
            let (read, parsed) = (read.members(), Members::of(&json, "request").unwrap());
            assert_eq!(read.len(), parsed.len(), "{text}");
            assert!(read.iter().eq(parsed.iter()), "{text}");
            for name in ["object", "limit", "a", "b", "de", "missing"] {
                assert_eq!(read.get(name), parsed.get(name), "{text}: {name}");
            }
        }
    }

    #[test]
    fn a_read_object_borrows_plain_names_and_leaves_other_texts_to_the_json_document() {
        let read = ReadObject::read(br#"{"plain":1,"esc\u0061ped":2}"#).unwrap();
        let borrowed: Vec<bool> = read
            .pairs
            .iter()
            .map(|(k, _)| matches!(k, Cow::Borrowed(_)))
            .collect();
        assert_eq!(borrowed, [true, false]);
        let many = |n: usize| {
            let members: Vec<String> = (0..n).map(|i| format!(r#""m{i}":{i}"#)).collect();
            format!("{{{}}}", members.join(","))
        };
        assert!(ReadObject::read(many(MAX_READ_MEMBERS).as_bytes()).is_some());
        for text in [
            String::new(),
            " ".into(),
            "[]".into(),
            "7".into(),
            "null".into(),
            "{".into(),
            r#"{"a":1} {}"#.into(),
            r#"{"a":1,}"#.into(),
            many(MAX_READ_MEMBERS + 1),
        ] {
            assert!(ReadObject::read(text.as_bytes()).is_none(), "{text}");
        }
        assert!(ReadObject::read(b"{\"a\":\"\xff\"}").is_none());
    }

    #[test]
    fn missing_member_is_undefined() {
        let body = json!({"hour": 1});
        let m = Members::of(&body, "body").unwrap();
        assert_eq!(
            m.int("minute").unwrap_err().to_string(),
            "Invalid member 'minute' (int expected, got undefined)"
        );
    }

    #[test]
    fn wrong_type_is_named() {
        let body = json!({"timestamp": "5", "user_id": 1.5});
        let m = Members::of(&body, "body").unwrap();
        assert_eq!(
            m.int("timestamp").unwrap_err().to_string(),
            "Invalid member 'timestamp' (int expected, got string)"
        );
        assert_eq!(
            m.int64("user_id").unwrap_err().to_string(),
            "Invalid member 'user_id' (int64 expected, got double)"
        );
    }

    #[test]
    fn int64_is_exact_up_to_u64_max() {
        let body: Value = serde_json::from_str(r#"{"v": 18446744073709551615}"#).unwrap();
        let m = Members::of(&body, "body").unwrap();
        assert_eq!(m.int64("v").unwrap(), u64::MAX as i128);
        assert_eq!(
            integer_json(u64::MAX as i128).to_string(),
            "18446744073709551615"
        );
        assert_eq!(integer_json(-5).to_string(), "-5");
    }
}
