//! Generated JSON and its mutation: any value whose objects are keyed by a suite's member
//! names and whose strings and integers lean towards its interesting ones, structural edits
//! at the node a path of selectors leads to, and byte edits of the serialized text.
//!
//! What differs between suites (member names, words, integers at the edges) is a
//! [`Vocabulary`]; the shapes, weights and mutations are the same for all.

use proptest::prelude::*;
use serde_json::{Value as Json, json};

/// What generated documents are made of.
#[derive(Debug, Clone, Copy)]
pub struct Vocabulary {
    /// Member names of objects (and of [`Edit::Set`] and [`Edit::Remove`]).
    pub keys: &'static [&'static str],
    /// Interesting strings.
    pub words: &'static [&'static str],
    /// Interesting integers (edges of the ranges the surface checks).
    pub integers: &'static [i64],
}

impl Vocabulary {
    /// A JSON scalar: null, a boolean, an interesting or any integer, `u64::MAX`, a finite
    /// float, a word, short text or a long string.
    pub fn scalar(self) -> BoxedStrategy<Json> {
        prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::from),
            prop::sample::select(self.integers).prop_map(Json::from),
            any::<i64>().prop_map(Json::from),
            Just(json!(u64::MAX)),
            any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
                .map(Json::Number)),
            prop::sample::select(self.words).prop_map(Json::from),
            ".{0,24}".prop_map(Json::from),
            (1usize..20_000).prop_map(|n| Json::from("x".repeat(n))),
        ]
        .boxed()
    }

    /// Any JSON value, objects keyed by the vocabulary's member names.
    pub fn json(self) -> BoxedStrategy<Json> {
        let keys = self.keys;
        self.scalar()
            .prop_recursive(4, 48, 6, move |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
                    prop::collection::vec((prop::sample::select(keys), inner), 0..6).prop_map(
                        |kv| {
                            Json::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                        }
                    ),
                ]
            })
            .boxed()
    }

    /// Up to three edits, each at the node its path of selectors leads to (see [`mutate`]).
    pub fn edits(self) -> impl Strategy<Value = Vec<(Vec<u8>, Edit)>> {
        let edit = prop_oneof![
            3 => (prop::sample::select(self.keys), self.json()).prop_map(|(k, v)| Edit::Set(k, v)),
            2 => prop::sample::select(self.keys).prop_map(Edit::Remove),
            3 => self.json().prop_map(Edit::Replace),
            1 => Just(Edit::Wrap),
        ];
        prop::collection::vec((prop::collection::vec(any::<u8>(), 0..4), edit), 0..4)
    }
}

/// One change to a document, at the node a path of selectors leads to.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Sets a member of an object; replaces any other node.
    Set(&'static str, Json),
    /// Removes a member of an object, or the last element of an array.
    Remove(&'static str),
    /// Replaces the node.
    Replace(Json),
    /// Wraps the node in an array.
    Wrap,
}

/// One change to the serialized bytes.
#[derive(Debug, Clone)]
pub enum ByteEdit {
    /// The text as it is.
    None,
    /// Cut at a position (modulo the length).
    Truncate(usize),
    /// Flip bits of one byte (at least the lowest).
    Flip(usize, u8),
    /// Insert a byte.
    Insert(usize, u8),
}

/// Mostly no byte edit; otherwise a truncation, a flip or an insertion.
pub fn arb_byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        6 => Just(ByteEdit::None),
        1 => any::<usize>().prop_map(ByteEdit::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Flip(i, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Insert(i, b)),
    ]
}

/// The node `path` leads to: each selector picks a child (modulo the count) of a non-empty
/// container; the path ends early at a scalar or an empty container.
fn node_at<'a>(doc: &'a mut Json, path: &[u8]) -> &'a mut Json {
    let Some((first, rest)) = path.split_first() else {
        return doc;
    };
    let len = match &*doc {
        Json::Object(m) => m.len(),
        Json::Array(a) => a.len(),
        _ => 0,
    };
    if len == 0 {
        return doc;
    }
    let i = usize::from(*first) % len;
    match doc {
        Json::Object(m) => node_at(m.values_mut().nth(i).expect("in range"), rest),
        Json::Array(a) => node_at(&mut a[i], rest),
        _ => unreachable!("only containers have children"),
    }
}

/// Applies the edits to `doc` and then the byte edit to its text.
pub fn mutate(mut doc: Json, edits: &[(Vec<u8>, Edit)], bytes: &ByteEdit) -> Vec<u8> {
    for (path, edit) in edits {
        let node = node_at(&mut doc, path);
        match edit.clone() {
            Edit::Set(k, v) => match node {
                Json::Object(m) => {
                    m.insert(k.to_owned(), v);
                }
                other => *other = v,
            },
            Edit::Remove(k) => match node {
                Json::Object(m) => {
                    m.remove(k);
                }
                Json::Array(a) => {
                    a.pop();
                }
                _ => {}
            },
            Edit::Replace(v) => *node = v,
            Edit::Wrap => *node = Json::Array(vec![node.take()]),
        }
    }
    let mut out = doc.to_string().into_bytes();
    if !out.is_empty() {
        match *bytes {
            ByteEdit::None => {}
            ByteEdit::Truncate(i) => out.truncate(i % out.len()),
            ByteEdit::Flip(i, b) => {
                let n = out.len();
                out[i % n] ^= b | 1;
            }
            ByteEdit::Insert(i, b) => {
                let n = out.len();
                out.insert(i % n, b);
            }
        }
    }
    out
}
