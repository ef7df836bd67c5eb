//! The members of a row a client writes, as the tables read them: [`RowMembers`], over
//! either a parsed JSON object or a row read straight from a request's text
//! ([`RowsRequest`]), and [`Member`], one member's value.
//!
//! A `create_objects` or `create_or_modify_objects` of a thousand rows used to be parsed
//! into a JSON document first: an ordered map per row, its names hashed and every name
//! and text allocated, only to be copied into cells and dropped. [`RowsRequest::read`]
//! reads the common shape of such a request (`object`, and `values` as objects of
//! nulls, integers and texts) straight from its text, names and texts borrowed from it
//! where they have no escape. Anything else it leaves to the JSON document, so that
//! every error reads as before.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};

use crate::wire::{Members, Text, json_integer, put_member, type_name};

/// One member's value as a column reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Member<'a> {
    /// `null`.
    Null,
    /// An integer (within `i64::MIN ..= u64::MAX`).
    Int(i128),
    /// A string.
    Text(&'a str),
    /// Any other JSON value (a fraction, a boolean, an array, an object): no column
    /// stores it.
    Other(&'a Json),
}

impl<'a> Member<'a> {
    /// The member a JSON value is.
    pub fn of_json(json: &'a Json) -> Self {
        match json {
            Json::Null => Member::Null,
            Json::String(s) => Member::Text(s),
            other => json_integer(other).map_or(Member::Other(other), Member::Int),
        }
    }

    /// The integer, if the member is one.
    pub fn integer(self) -> Option<i128> {
        match self {
            Member::Int(n) => Some(n),
            _ => None,
        }
    }

    /// The firmware's name of the member's type (what [`type_name`] says of its JSON).
    pub fn type_name(self) -> &'static str {
        match self {
            Member::Null => "null",
            Member::Int(_) => "int",
            Member::Text(_) => "string",
            Member::Other(json) => type_name(Some(json)),
        }
    }
}

/// The members of one written row: each name once, in the order first written, with the
/// value last written under it (a JSON object's rules).
pub trait RowMembers {
    /// How many members.
    fn member_count(&self) -> usize;

    /// Each member in order.
    fn members(&self) -> impl Iterator<Item = (&str, Member<'_>)>;

    /// The member named `name`.
    fn member(&self, name: &str) -> Option<Member<'_>>;
}

impl RowMembers for Map<String, Json> {
    fn member_count(&self) -> usize {
        self.len()
    }

    fn members(&self) -> impl Iterator<Item = (&str, Member<'_>)> {
        self.iter().map(|(k, v)| (k.as_str(), Member::of_json(v)))
    }

    fn member(&self, name: &str) -> Option<Member<'_>> {
        crate::wire::member(self, name).map(Member::of_json)
    }
}

impl RowMembers for Members<'_> {
    fn member_count(&self) -> usize {
        self.len()
    }

    fn members(&self) -> impl Iterator<Item = (&str, Member<'_>)> {
        self.iter().map(|(k, v)| (k, Member::of_json(v)))
    }

    fn member(&self, name: &str) -> Option<Member<'_>> {
        self.get(name).map(Member::of_json)
    }
}

impl<T: RowMembers + ?Sized> RowMembers for &T {
    fn member_count(&self) -> usize {
        (**self).member_count()
    }

    fn members(&self) -> impl Iterator<Item = (&str, Member<'_>)> {
        (**self).members()
    }

    fn member(&self, name: &str) -> Option<Member<'_>> {
        (**self).member(name)
    }
}

/// A member's value as read from the text: what a column stores.
#[derive(Debug, Clone, PartialEq)]
enum Scalar<'t> {
    Null,
    Signed(i64),
    Unsigned(u64),
    Text(Cow<'t, str>),
}

impl Scalar<'_> {
    fn as_member(&self) -> Member<'_> {
        match self {
            Scalar::Null => Member::Null,
            Scalar::Signed(n) => Member::Int(i128::from(*n)),
            Scalar::Unsigned(n) => Member::Int(i128::from(*n)),
            Scalar::Text(s) => Member::Text(s),
        }
    }
}

/// A request that writes rows (`create_objects`, `create_or_modify_objects`) read
/// straight from its text (see the module comment).
#[derive(Debug, Default)]
pub struct RowsRequest<'t> {
    /// The table named by `object`.
    pub object: Cow<'t, str>,
    /// Every row's members, one row after the other.
    members: Vec<(Cow<'t, str>, Scalar<'t>)>,
    /// Where each row's members end in `members`.
    ends: Vec<usize>,
}

impl<'t> RowsRequest<'t> {
    /// Reads a request whose body is a JSON object with a string `object` and, as
    /// `values`, an array of at most `max_rows` objects, each of at most 64 members that
    /// are nulls, integers or strings (the body's other members are skipped); `None` for
    /// any other text, which the caller reads as a JSON document.
    pub fn read(text: &'t [u8], max_rows: usize) -> Option<Self> {
        // Checked as UTF-8 once, in one pass, rather than string by string.
        let text = std::str::from_utf8(text).ok()?;
        let mut de = serde_json::Deserializer::from_str(text);
        let request = de
            .deserialize_map(RequestVisitor { max_rows })
            .ok()
            .flatten()?;
        de.end().ok()?;
        Some(request)
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The rows in order.
    pub fn rows(&self) -> Vec<WrittenRow<'_, 't>> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let row = WrittenRow(&self.members[start..end]);
                start = end;
                row
            })
            .collect()
    }
}

/// One row of a [`RowsRequest`].
#[derive(Debug, Clone, Copy)]
pub struct WrittenRow<'r, 't>(&'r [(Cow<'t, str>, Scalar<'t>)]);

impl RowMembers for WrittenRow<'_, '_> {
    fn member_count(&self) -> usize {
        self.0.len()
    }

    fn members(&self) -> impl Iterator<Item = (&str, Member<'_>)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_member()))
    }

    fn member(&self, name: &str) -> Option<Member<'_>> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_member())
    }
}

/// The request object: `None` without a string `object` or an array `values`.
struct RequestVisitor {
    max_rows: usize,
}

impl<'de> Visitor<'de> for RequestVisitor {
    type Value = Option<RowsRequest<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a request writing rows")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = None;
        let mut request = RowsRequest::default();
        let mut has_values = false;
        while let Some(Text(key)) = map.next_key()? {
            match key.as_ref() {
                "object" => object = Some(map.next_value::<Text<'_>>()?.0),
                "values" => {
                    // A later `values` replaces an earlier one, as in a JSON object.
                    request.members.clear();
                    request.ends.clear();
                    map.next_value_seed(RowsSeed {
                        request: &mut request,
                        max_rows: self.max_rows,
                    })?;
                    has_values = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(object
            .filter(|_| has_values)
            .map(|object| RowsRequest { object, ..request }))
    }
}

/// `values`: an array of rows, appended to the request.
struct RowsSeed<'r, 'de> {
    request: &'r mut RowsRequest<'de>,
    max_rows: usize,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some(n) = seq.size_hint() {
            self.request.ends.reserve(n.min(self.max_rows));
        }
        while seq
            .next_element_seed(RowSeed {
                request: &mut *self.request,
            })?
            .is_some()
        {
            if self.request.ends.len() > self.max_rows {
                return Err(de::Error::custom("too many rows"));
            }
        }
        Ok(())
    }
}

/// One row: an object whose members are appended to the request.
struct RowSeed<'r, 'de> {
    request: &'r mut RowsRequest<'de>,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let members = &mut self.request.members;
        let start = members.len();
        while let Some(Text(name)) = map.next_key()? {
            let value = map.next_value::<Scalar<'_>>()?;
            put_member(members, start, name, value)?;
        }
        self.request.ends.push(members.len());
        Ok(())
    }
}

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// Nulls, integers and strings; any other value fails the read.
struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null, an integer or a string")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Signed(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Unsigned(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(v)))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::device::clock::{ManualTime, TimeSource};
    use crate::device::schema::table_def;
    use crate::device::table::Upserted;
    use crate::device::{Device, DeviceError, DeviceSettings};
    use crate::model::Model;
    use crate::wire::Members;

    fn read(text: &str) -> Option<RowsRequest<'_>> {
        RowsRequest::read(text.as_bytes(), 10)
    }

    /// Each row's members as JSON, in order.
    fn rows_of(request: &RowsRequest<'_>) -> Vec<Vec<(String, Member<'static>)>> {
        request
            .rows()
            .iter()
            .map(|row| {
                row.members()
                    .map(|(k, v)| {
                        let v = match v {
                            Member::Text(s) => Member::Text(s.to_owned().leak()),
                            Member::Null => Member::Null,
                            Member::Int(n) => Member::Int(n),
                            Member::Other(_) => unreachable!("a row read holds scalars only"),
                        };
                        (k.to_owned(), v)
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_common_shape_is_read_with_names_and_plain_texts_borrowed() {
        let text = r#"{"object":"users","extra":{"a":[1,2.5,true]},"values":[
            {"id":-3,"name":"A\"b","registration":null},
            {},
            {"big":18446744073709551615,"name":"plain"}]}"#;
        let request = read(text).expect("the common shape");
        assert_eq!(request.object, "users");
        assert!(matches!(request.object, Cow::Borrowed(_)));
        assert_eq!(request.len(), 3);
        assert_eq!(
            rows_of(&request),
            vec![
                vec![
                    ("id".into(), Member::Int(-3)),
                    ("name".into(), Member::Text("A\"b")),
                    ("registration".into(), Member::Null),
                ],
                vec![],
                vec![
                    ("big".into(), Member::Int(i128::from(u64::MAX))),
                    ("name".into(), Member::Text("plain")),
                ],
            ]
        );
        // Only the escaped text was copied.
        let owned: Vec<_> = request
            .members
            .iter()
            .filter(|(k, v)| matches!(k, Cow::Owned(_)) || matches!(v, Scalar::Text(Cow::Owned(_))))
            .map(|(k, _)| k.as_ref())
            .collect();
        assert_eq!(owned, ["name"]);
        let row = request.rows()[2];
        assert_eq!(row.member_count(), 2);
        assert_eq!(row.member("name"), Some(Member::Text("plain")));
        assert_eq!(row.member("id"), None);
    }

    #[test]
    fn names_written_twice_keep_their_first_place_and_last_value_as_in_a_json_object() {
        let text = r#"{"values":[{"a":1}],"object":"x","values":[{"a":1,"b":2,"a":"z"}],"object":"users"}"#;
        let request = read(text).unwrap();
        assert_eq!(request.object, "users");
        assert_eq!(
            rows_of(&request),
            vec![vec![
                ("a".into(), Member::Text("z")),
                ("b".into(), Member::Int(2))
            ]]
        );
        let json: Json = serde_json::from_str(text).unwrap();
        let row = json["values"][0].as_object().unwrap();
        let from_json: Vec<_> = row.members().map(|(k, v)| (k.to_owned(), v)).collect();
        assert_eq!(
            from_json,
            [
                ("a".to_owned(), Member::Text("z")),
                ("b".to_owned(), Member::Int(2))
            ]
        );
    }

    #[test]
    fn any_other_text_is_left_to_the_json_document() {
        for text in [
            "",
            "  ",
            "[]",
            "not json",
            r#"{"object":"users","values":[]} trailing"#,
            r#"{"object":"users","values":[{"a":1}]"#,
            r#"{"values":[{"a":1}]}"#,
            r#"{"object":"users"}"#,
            r#"{"object":7,"values":[]}"#,
            r#"{"object":"users","values":{"a":1}}"#,
            r#"{"object":"users","values":[[1]]}"#,
            r#"{"object":"users","values":[7]}"#,
            r#"{"object":"users","values":[{"a":1.5}]}"#,
            r#"{"object":"users","values":[{"a":true}]}"#,
            r#"{"object":"users","values":[{"a":[1]}]}"#,
            r#"{"object":"users","values":[{"a":{"b":1}}]}"#,
            r#"{"object":"users","values":[{"a":18446744073709551616}]}"#,
            r#"{"object":"users","values":[{"a":-9223372036854775809}]}"#,
        ] {
            assert!(read(text).is_none(), "{text}");
        }
        assert!(
            RowsRequest::read(b"{\"object\":\"users\",\"values\":[{\"a\":\"\xff\"}]}", 10)
                .is_none()
        );
        // More rows than allowed: the JSON document's reading refuses them.
        let rows = |n: usize| {
            format!(
                r#"{{"object":"users","values":[{}]}}"#,
                vec!["{}"; n].join(",")
            )
        };
        assert_eq!(
            RowsRequest::read(rows(3).as_bytes(), 3).map(|r| r.len()),
            Some(3)
        );
        assert!(RowsRequest::read(rows(4).as_bytes(), 3).is_none());
        // A row of more members than a row read straight takes.
        let wide = |n: usize| {
            let members: Vec<String> = (0..n).map(|i| format!(r#""c{i}":{i}"#)).collect();
            format!(
                r#"{{"object":"custom_tables","values":[{{{}}}]}}"#,
                members.join(",")
            )
        };
        assert!(RowsRequest::read(wide(crate::wire::MAX_READ_MEMBERS).as_bytes(), 3).is_some());
        assert!(RowsRequest::read(wide(crate::wire::MAX_READ_MEMBERS + 1).as_bytes(), 3).is_none());
    }

    fn device() -> Device {
        Device::new(DeviceSettings {
            model: Model::IdFace,
            time: TimeSource::Manual(ManualTime::starting_at(1_762_773_300)),
            ..DeviceSettings::default()
        })
    }

    /// Writes every body on fresh devices (`create_or_modify_objects` when `upsert`, else
    /// `create_objects`), one reading the JSON document, one reading the text straight
    /// and, for creates, one storing the rows built before the lock, and requires the
    /// same replies and the same tables. Rows of a table with fixed columns that cannot
    /// be built must fail to be written.
    fn same_as_the_json_document(bodies: &[String], upsert: bool) -> Result<(), TestCaseError> {
        let (by_json, straight, built) = (device(), device(), device());
        for body in bodies {
            let Some(request) = RowsRequest::read(body.as_bytes(), 10_000) else {
                continue;
            };
            let json: Json = serde_json::from_str(body).unwrap();
            let members = Members::of(&json, "request").unwrap();
            if upsert {
                let expected = by_json.create_or_modify_objects(members);
                let got: Result<Upserted, DeviceError> =
                    straight.create_or_modify_written(&request);
                prop_assert_eq!(got, expected, "{}", body);
            } else {
                let expected = by_json.create_objects(members);
                let got: Result<Vec<i64>, DeviceError> = straight.create_written(&request, None);
                prop_assert_eq!(&got, &expected, "{}", body);
                let rows = built.build_rows(&request);
                let fixed = table_def(&request.object).is_some_and(|def| !def.open);
                prop_assert!(
                    rows.is_some() || !fixed || expected.is_err(),
                    "{} was not built",
                    body
                );
                let got = built.create_written(&request, rows);
                prop_assert_eq!(&got, &expected, "{} built", body);
            }
        }
        for table in ["users", "cards", "custom_tables", "c_users", "change_logs"] {
            prop_assert_eq!(straight.rows(table).unwrap(), by_json.rows(table).unwrap());
            if !upsert {
                prop_assert_eq!(built.rows(table).unwrap(), by_json.rows(table).unwrap());
            }
        }
        Ok(())
    }

    #[test]
    fn a_write_read_straight_does_what_its_json_document_does() {
        let bodies = [
            json!({"object": "users", "values": [{"name": "A"}, {"id": 7, "name": "B", "registration": "R7"}]}),
            json!({"object": "users", "values": [{"id": 7, "name": "again"}]}),
            json!({"object": "users", "values": [{"id": u64::MAX, "name": "too big"}]}),
            json!({"object": "users", "values": [{"id": "seven"}]}),
            json!({"object": "users", "values": [{"name": 5}]}),
            json!({"object": "users", "values": [{"name": null, "registration": "N"}]}),
            json!({"object": "users", "values": [{"no_such_column": 1}]}),
            json!({"object": "users", "values": [{"name": "ok"}, {"name": 1}]}),
            json!({"object": "no_such_table", "values": [{"name": "A"}]}),
            json!({"object": "users", "values": []}),
            json!({"object": "custom_tables", "values": [{"name": "t", "size": 3}, {"name": "u", "size": "big", "note": "n"}]}),
            json!({"object": "custom_tables", "values": [{"name": "v", "colour": null}]}),
            json!({"object": "custom_tables", "values": [{"name": "w", "bad name": 1}]}),
            json!({"object": "c_users", "values": [{"user_id": 7, "extra": -1}]}),
            json!({"object": "c_users", "values": [{"user_id": 99}]}),
        ]
        .map(|b| b.to_string());
        for body in &bodies {
            assert!(RowsRequest::read(body.as_bytes(), 10).is_some(), "{body}");
        }
        same_as_the_json_document(&bodies, false).unwrap();
        same_as_the_json_document(&bodies, true).unwrap();
        // A name written twice, of two types, on an open table: the later value decides
        // the new column's type, as in the JSON document.
        let twice = [
            r#"{"object":"custom_tables","values":[{"name":"x","n":1,"n":"one"}]}"#.to_owned(),
            r#"{"object":"custom_tables","values":[{"name":"y","m":"one","m":2}]}"#.to_owned(),
        ];
        same_as_the_json_document(&twice, false).unwrap();
        same_as_the_json_document(&twice, true).unwrap();
    }

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            (0..3i64).prop_map(|n| n.to_string()),
            "[a-zA-Z0-9 \"\\\\é]{0,30}".prop_map(|s| Json::String(s).to_string()),
        ]
    }

    fn row() -> impl Strategy<Value = String> {
        let name = prop_oneof![
            Just("id"),
            Just("name"),
            Just("registration"),
            Just("user_id"),
            Just("size"),
            Just("value"),
            Just("bad name"),
        ];
        prop::collection::vec((name, scalar()), 0..5).prop_map(|members| {
            let members: Vec<String> = members
                .into_iter()
                .map(|(k, v)| format!("{}:{v}", Json::from(k)))
                .collect();
            format!("{{{}}}", members.join(","))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_write_read_straight_does_what_its_json_document_does(
            upsert in any::<bool>(),
            writes in prop::collection::vec(
                (prop_oneof![Just("users"), Just("cards"), Just("custom_tables"), Just("c_users")],
                 prop::collection::vec(row(), 0..4)),
                1..8,
            )
        ) {
            let bodies: Vec<String> = writes
                .into_iter()
                .map(|(table, rows)| {
                    format!(r#"{{"object":"{table}","values":[{}]}}"#, rows.join(","))
                })
                .collect();
            same_as_the_json_document(&bodies, upsert)?;
        }
    }
}
