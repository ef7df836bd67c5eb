//! Property test: random `users` tables and random `load_objects` queries (both `where`
//! forms, connectors and groups, operators, order, limit/offset), after some rows were
//! destroyed and a refused write was rolled back, give the same rows as a small
//! independent model of SQL semantics written here.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::{Map, Value as Json, json};

use crate::support::TestDevice;

#[derive(Debug, Clone, PartialEq)]
enum V {
    Int(i64),
    Text(String),
}

impl V {
    fn json(&self) -> Json {
        match self {
            V::Int(n) => json!(n),
            V::Text(s) => json!(s),
        }
    }
}

#[derive(Debug, Clone)]
struct Row {
    id: i64,
    name: Option<String>,
    user_type_id: Option<i64>,
    begin_time: Option<i64>,
}

impl Row {
    fn cell(&self, col: &str) -> Option<V> {
        match col {
            "id" => Some(V::Int(self.id)),
            "name" => self.name.clone().map(V::Text),
            "user_type_id" => self.user_type_id.map(V::Int),
            _ => self.begin_time.map(V::Int),
        }
    }
}

#[derive(Debug, Clone)]
struct Clause {
    col: &'static str,
    op: &'static str,
    values: Vec<V>,
}

fn int_value(col: &'static str) -> BoxedStrategy<V> {
    match col {
        "id" => (0i64..12).prop_map(V::Int).boxed(),
        "user_type_id" => (0i64..3).prop_map(V::Int).boxed(),
        _ => (-3i64..4).prop_map(V::Int).boxed(),
    }
}

fn clause() -> impl Strategy<Value = Clause> {
    let int_cols = prop::sample::select(vec!["id", "user_type_id", "begin_time"]);
    let int_clause = (
        int_cols,
        prop::sample::select(vec![
            "=", "==", "!=", "<>", "<", "<=", ">", ">=", "IN", "NOT IN", "IS NULL",
        ]),
    )
        .prop_flat_map(|(col, op)| {
            let n = if op.contains("IN") {
                0..4usize
            } else if op == "IS NULL" {
                0..1
            } else {
                1..2
            };
            prop::collection::vec(int_value(col), n).prop_map(move |values| Clause {
                col,
                op,
                values,
            })
        });
    let text_clause = prop::sample::select(vec![
        "=", "!=", "<", ">=", "LIKE", "NOT LIKE", "IN", "IS NULL",
    ])
    .prop_flat_map(|op| {
        let pattern = if op.contains("LIKE") {
            "[ab%_]{0,3}"
        } else {
            "[ab]{0,2}"
        };
        let n = if op == "IN" {
            0..3usize
        } else if op == "IS NULL" {
            0..1
        } else {
            1..2
        };
        prop::collection::vec(pattern.prop_map(V::Text), n).prop_map(move |values| Clause {
            col: "name",
            op,
            values,
        })
    });
    prop_oneof![int_clause, text_clause]
}

/// A LIKE matcher written independently of the simulator's: recursive over the pattern.
fn like(p: &[u8], t: &[u8]) -> bool {
    match p.split_first() {
        None => t.is_empty(),
        Some((b'%', rest)) => (0..=t.len()).any(|i| like(rest, &t[i..])),
        Some((c, rest)) => match t.split_first() {
            Some((tc, trest)) if *c == b'_' || c.eq_ignore_ascii_case(tc) => like(rest, trest),
            _ => false,
        },
    }
}

fn compare(a: &V, b: &V) -> std::cmp::Ordering {
    match (a, b) {
        (V::Int(x), V::Int(y)) => x.cmp(y),
        (V::Text(x), V::Text(y)) => x.cmp(y),
        (V::Int(_), V::Text(_)) => std::cmp::Ordering::Less,
        (V::Text(_), V::Int(_)) => std::cmp::Ordering::Greater,
    }
}

/// SQL three-valued result of one clause.
fn eval(c: &Clause, row: &Row) -> Option<bool> {
    let cell = row.cell(c.col);
    if c.op == "IS NULL" {
        return Some(cell.is_none());
    }
    let cell = cell?;
    let first = c.values.first();
    Some(match c.op {
        "=" | "==" => compare(&cell, first?).is_eq(),
        "!=" | "<>" => compare(&cell, first?).is_ne(),
        "<" => compare(&cell, first?).is_lt(),
        "<=" => compare(&cell, first?).is_le(),
        ">" => compare(&cell, first?).is_gt(),
        ">=" => compare(&cell, first?).is_ge(),
        "LIKE" | "NOT LIKE" => {
            let (V::Text(p), V::Text(t)) = (first?, &cell) else {
                return None;
            };
            like(p.as_bytes(), t.as_bytes()) == (c.op == "LIKE")
        }
        "IN" => c.values.iter().any(|v| compare(&cell, v).is_eq()),
        "NOT IN" => !c.values.iter().any(|v| compare(&cell, v).is_eq()),
        _ => unreachable!("generated operators only"),
    })
}

fn and(items: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    let mut r = Some(true);
    for i in items {
        match i {
            Some(false) => return Some(false),
            None => r = None,
            Some(true) => {}
        }
    }
    r
}

fn or(items: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    let mut r = Some(false);
    for i in items {
        match i {
            Some(true) => return Some(true),
            None => r = None,
            Some(false) => {}
        }
    }
    r
}

#[derive(Debug, Clone)]
enum Filter {
    None,
    /// Nested form: every clause ANDed.
    Nested(Vec<Clause>),
    /// Array form with AND/OR connectors (`ors[i]`: connector after clause i is OR).
    Chain(Vec<Clause>, Vec<bool>),
    /// Array form: groups of OR-ed clauses joined by `") AND ("`.
    Groups(Vec<Vec<Clause>>),
}

impl Filter {
    fn matches(&self, row: &Row) -> bool {
        let r = match self {
            Filter::None => Some(true),
            Filter::Nested(cs) => and(cs.iter().map(|c| eval(c, row))),
            Filter::Chain(cs, ors) => {
                // OR of maximal AND-runs: AND binds tighter than OR.
                let mut runs: Vec<Vec<&Clause>> = vec![vec![]];
                for (i, c) in cs.iter().enumerate() {
                    runs.last_mut().unwrap().push(c);
                    if i + 1 < cs.len() && ors[i] {
                        runs.push(vec![]);
                    }
                }
                or(runs.iter().map(|run| and(run.iter().map(|c| eval(c, row)))))
            }
            Filter::Groups(groups) => {
                and(groups.iter().map(|g| or(g.iter().map(|c| eval(c, row)))))
            }
        };
        r == Some(true)
    }

    fn to_json(&self) -> Option<Json> {
        let clause_json = |c: &Clause, connector: Option<&str>| {
            let mut m = Map::new();
            m.insert("field".into(), json!(c.col));
            m.insert("operator".into(), json!(c.op));
            if c.op.contains("IN") {
                m.insert(
                    "value".into(),
                    Json::Array(c.values.iter().map(V::json).collect()),
                );
            } else if let Some(v) = c.values.first() {
                m.insert("value".into(), v.json());
            }
            if let Some(conn) = connector {
                m.insert("connector".into(), json!(conn));
            }
            Json::Object(m)
        };
        match self {
            Filter::None => None,
            Filter::Nested(cs) => {
                let mut cols: Map<String, Json> = Map::new();
                for c in cs {
                    let value = if c.op == "IS NULL" {
                        json!({"IS NULL": null})
                    } else if c.op.contains("IN") {
                        json!({c.op: Json::Array(c.values.iter().map(V::json).collect())})
                    } else {
                        json!({c.op: c.values[0].json()})
                    };
                    let entry = cols.entry(c.col).or_insert_with(|| json!({}));
                    for (k, v) in value.as_object().unwrap() {
                        entry[k] = v.clone();
                    }
                }
                Some(json!({"users": cols}))
            }
            Filter::Chain(cs, ors) => Some(Json::Array(
                cs.iter()
                    .enumerate()
                    .map(|(i, c)| {
                        clause_json(
                            c,
                            Some(if ors.get(i).copied().unwrap_or(false) {
                                "OR"
                            } else {
                                "AND"
                            }),
                        )
                    })
                    .collect(),
            )),
            Filter::Groups(groups) => {
                let mut out = Vec::new();
                for g in groups {
                    for (i, c) in g.iter().enumerate() {
                        out.push(clause_json(
                            c,
                            Some(if i + 1 == g.len() { ") AND (" } else { "OR" }),
                        ));
                    }
                }
                Some(Json::Array(out))
            }
        }
    }
}

/// Nested-form clauses: at most one clause per (column, operator), since they are map keys.
fn nested_clauses() -> impl Strategy<Value = Vec<Clause>> {
    prop::collection::vec(clause(), 1..4).prop_map(|cs| {
        let mut seen = BTreeSet::new();
        cs.into_iter()
            .filter(|c| seen.insert((c.col, c.op)))
            .collect()
    })
}

fn filter() -> impl Strategy<Value = Filter> {
    prop_oneof![
        Just(Filter::None),
        nested_clauses().prop_map(Filter::Nested),
        prop::collection::vec(clause(), 1..5)
            .prop_flat_map(|cs| {
                let n = cs.len();
                (Just(cs), prop::collection::vec(any::<bool>(), n))
            })
            .prop_map(|(cs, ors)| Filter::Chain(cs, ors)),
        prop::collection::vec(prop::collection::vec(clause(), 1..3), 1..3).prop_map(Filter::Groups),
    ]
}

fn rows() -> impl Strategy<Value = Vec<Row>> {
    prop::collection::btree_set(1i64..12, 0..9).prop_flat_map(|ids| {
        let n = ids.len();
        (
            Just(ids),
            prop::collection::vec(
                (
                    prop::option::of("[ab]{0,3}"),
                    prop::option::of(0i64..3),
                    prop::option::of(-3i64..4),
                ),
                n,
            ),
        )
            .prop_map(|(ids, cells)| {
                ids.into_iter()
                    .zip(cells)
                    .map(|(id, (name, user_type_id, begin_time))| Row {
                        id,
                        name,
                        user_type_id,
                        begin_time,
                    })
                    .collect()
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn load_objects_agrees_with_the_model(
        rows in rows(),
        filter in filter(),
        order in prop::option::of((prop::sample::select(vec!["id", "name", "user_type_id", "begin_time"]), any::<bool>())),
        limit in prop::option::of(0i64..6),
        offset in prop::option::of(0i64..4),
        removed in prop::collection::btree_set(1i64..12, 0..4),
        refused in prop::collection::btree_set(12i64..20, 0..3),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let d = TestDevice::idface();
            let s = d.login().await;
            if !rows.is_empty() {
                let values: Vec<Json> = rows.iter().map(|r| json!({
                    "id": r.id, "name": r.name, "user_type_id": r.user_type_id, "begin_time": r.begin_time,
                })).collect();
                let r = d.post("create_objects", Some(&s), &json!({"object": "users", "values": values})).await;
                prop_assert_eq!(r.status.as_u16(), 200);
            }
            // Rows destroyed leave holes in the rowids a page at an offset must skip.
            for id in &removed {
                let r = d.post("destroy_objects", Some(&s), &json!({"object": "users", "where": {"users": {"id": id}}})).await;
                prop_assert_eq!(r.status.as_u16(), 200);
            }
            // A write refused half-way (the last row clashes with the first) puts back
            // the rows it had stored.
            if let Some(first) = refused.first() {
                let mut values: Vec<Json> = refused.iter().map(|id| json!({"id": id, "name": "refused"})).collect();
                values.push(json!({"id": first, "name": "again"}));
                let r = d.post("create_objects", Some(&s), &json!({"object": "users", "values": values})).await;
                prop_assert_ne!(r.status.as_u16(), 200);
            }
            let rows: Vec<Row> = rows.into_iter().filter(|r| !removed.contains(&r.id)).collect();
            let mut request = json!({"object": "users", "fields": ["id"]});
            if let Some(w) = filter.to_json() {
                request["where"] = w;
            }
            if let Some((col, desc)) = order {
                request["order"] = if desc { json!([col, "descending"]) } else { json!(["ascending", col]) };
            }
            if let Some(l) = limit {
                request["limit"] = json!(l);
            }
            if let Some(o) = offset {
                request["offset"] = json!(o);
            }
            let reply = d.post("load_objects", Some(&s), &request).await;
            prop_assert_eq!(reply.status.as_u16(), 200, "{}", String::from_utf8_lossy(&reply.bytes));
            let got: Vec<i64> = reply.json()["users"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();

            let mut expected: Vec<&Row> = rows.iter().filter(|r| filter.matches(r)).collect();
            if let Some((col, desc)) = order {
                expected.sort_by(|a, b| {
                    let ord = match (a.cell(col), b.cell(col)) {
                        (None, None) => std::cmp::Ordering::Equal,
                        (None, Some(_)) => std::cmp::Ordering::Less,
                        (Some(_), None) => std::cmp::Ordering::Greater,
                        (Some(x), Some(y)) => compare(&x, &y),
                    };
                    if desc { ord.reverse() } else { ord }
                });
            }
            let expected: Vec<i64> = expected
                .into_iter()
                .skip(offset.unwrap_or(0) as usize)
                .take(limit.map_or(usize::MAX, |l| l as usize))
                .map(|r| r.id)
                .collect();
            prop_assert_eq!(got, expected, "request {}", request);
            Ok(())
        })?;
    }
}
