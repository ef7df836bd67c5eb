//! Rows and values of the terminal's database and the rules writes must obey: column
//! types checked like the firmware does, unique constraints, foreign keys, and the
//! cascade that removes a user's cards, templates and links when the user goes.
//!
//! Integers are stored as `i128` so that every value from `i64::MIN` to `u64::MAX`
//! (card values, 53+-bit ids) round-trips exactly.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value as Json};

use super::schema::{ColumnType, TableDef, table_def};
use crate::wire::{MemberError, integer_json, json_integer};

/// One cell.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer (always within `i64::MIN ..= u64::MAX`).
    Int(i128),
    /// Text.
    Text(String),
}

impl Value {
    /// The cell as JSON, integers exact.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Int(n) => integer_json(*n),
            Value::Text(s) => Json::String(s.clone()),
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The text, if this is text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// SQLite's ordering of values: NULL < integers < text (text compared bytewise).
    pub fn sql_cmp(&self, other: &Value) -> Ordering {
        fn rank(v: &Value) -> u8 {
            match v {
                Value::Null => 0,
                Value::Int(_) => 1,
                Value::Text(_) => 2,
            }
        }
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Text(a), Value::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            _ => rank(self).cmp(&rank(other)),
        }
    }

    /// The value as text for `LIKE` (integers in decimal).
    pub fn like_text(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Int(n) => Some(n.to_string()),
            Value::Text(s) => Some(s.clone()),
        }
    }
}

/// A column of a live table (documented or added to an open table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Storage type.
    pub ty: ColumnType,
}

/// What a write to the objects API was refused for; `Display` is the device's error text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// A member had the wrong JSON type.
    #[error(transparent)]
    Member(#[from] MemberError),
    /// The table does not exist on this device.
    #[error("no such table: {0}")]
    NoSuchTable(String),
    /// A column named in a query does not exist.
    #[error("no such column: {0}")]
    NoSuchColumn(String),
    /// A column named in a written row does not exist.
    #[error("table {table} has no column named {column}")]
    NoColumnNamed {
        /// Table written to.
        table: String,
        /// The unknown column.
        column: String,
    },
    /// A unique constraint would be violated (`cards.value`, `users.id`, link pairs).
    #[error("UNIQUE constraint failed: {0}")]
    Unique(String),
    /// A row references a row of another table that does not exist.
    #[error("FOREIGN KEY constraint failed")]
    ForeignKey,
    /// The query could not be understood (bad operator, connector or parentheses).
    #[error("near \"{0}\": syntax error")]
    Syntax(String),
    /// An `IN` list longer than the device's 999-variable limit.
    #[error("too many SQL variables")]
    TooManyVariables,
}

/// One live table: its columns and its rows keyed by rowid (= `id` when the table has one).
#[derive(Debug, Clone)]
pub struct Table {
    def: &'static TableDef,
    columns: Vec<Column>,
    rows: BTreeMap<i64, Vec<Value>>,
}

impl Table {
    /// An empty table for `def`.
    pub fn new(def: &'static TableDef) -> Self {
        Table {
            def,
            columns: def
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.to_owned(),
                    ty: c.ty,
                })
                .collect(),
            rows: BTreeMap::new(),
        }
    }

    /// The static definition.
    pub fn def(&self) -> &'static TableDef {
        self.def
    }

    /// Table name.
    pub fn name(&self) -> &'static str {
        self.def.name
    }

    /// Live columns in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Index of a column by name.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Whether rows are keyed by their `id` column (rowid = id).
    pub fn has_id(&self) -> bool {
        self.def.has_id
    }

    /// Rows in rowid order.
    pub fn rows(&self) -> impl Iterator<Item = (i64, &[Value])> {
        self.rows.iter().map(|(id, r)| (*id, r.as_slice()))
    }

    /// One row by rowid.
    pub fn row(&self, rowid: i64) -> Option<&[Value]> {
        self.rows.get(&rowid).map(Vec::as_slice)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The cell of `row` in column `name` (NULL when the column does not exist).
    pub fn cell<'r>(&self, row: &'r [Value], name: &str) -> &'r Value {
        self.column_index(name)
            .and_then(|i| row.get(i))
            .unwrap_or(&Value::Null)
    }

    /// Rows whose integer column `column` equals `value`.
    pub fn rowids_where_eq(&self, column: &str, value: i128) -> Vec<i64> {
        let Some(i) = self.column_index(column) else {
            return Vec::new();
        };
        self.rows
            .iter()
            .filter(|(_, r)| r[i] == Value::Int(value))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The row as a JSON object with every column.
    pub fn row_json(&self, row: &[Value]) -> Map<String, Json> {
        self.columns
            .iter()
            .zip(row)
            .map(|(c, v)| (c.name.clone(), v.to_json()))
            .collect()
    }

    fn next_rowid(&self) -> i64 {
        self.rows
            .keys()
            .next_back()
            .map_or(1, |last| last.saturating_add(1))
    }

    /// Converts a JSON member into a cell of column `index`, checking its type.
    fn cell_from_json(&self, index: usize, json: &Json) -> Result<Value, MemberError> {
        let column = &self.columns[index];
        let bad = || MemberError::new(&column.name, column.ty.wire_name(), Some(json));
        match (column.ty, json) {
            (_, Json::Null) => Ok(Value::Null),
            (ColumnType::Str, Json::String(s)) => Ok(Value::Text(s.clone())),
            (ColumnType::Int | ColumnType::Int64, j) => {
                json_integer(j).map(Value::Int).ok_or_else(bad)
            }
            (ColumnType::Str, _) => Err(bad()),
        }
    }

    /// Resolves the columns of a written row, adding new ones to an open table.
    fn resolve_written_columns(
        &mut self,
        row: &Map<String, Json>,
    ) -> Result<Vec<(usize, Json)>, TableError> {
        let mut out = Vec::with_capacity(row.len());
        for (name, value) in row {
            let index = match self.column_index(name) {
                Some(i) => i,
                None if self.def.open && is_identifier(name) => {
                    let ty = if json_integer(value).is_some() {
                        ColumnType::Int64
                    } else {
                        ColumnType::Str
                    };
                    self.columns.push(Column {
                        name: name.clone(),
                        ty,
                    });
                    for r in self.rows.values_mut() {
                        r.push(Value::Null);
                    }
                    self.columns.len() - 1
                }
                None => {
                    return Err(TableError::NoColumnNamed {
                        table: self.def.name.to_owned(),
                        column: name.clone(),
                    });
                }
            };
            out.push((index, value.clone()));
        }
        Ok(out)
    }

    fn check_unique(&self, rowid: i64, row: &[Value]) -> Result<(), TableError> {
        for set in self.def.unique {
            let idx: Vec<usize> = set.iter().filter_map(|c| self.column_index(c)).collect();
            if idx.iter().any(|&i| row[i] == Value::Null) {
                continue;
            }
            let clash = self
                .rows
                .iter()
                .any(|(id, other)| *id != rowid && idx.iter().all(|&i| other[i] == row[i]));
            if clash {
                let cols: Vec<String> = set
                    .iter()
                    .map(|c| format!("{}.{c}", self.def.name))
                    .collect();
                return Err(TableError::Unique(cols.join(", ")));
            }
        }
        Ok(())
    }
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// Every table of one device.
#[derive(Debug, Clone, Default)]
pub struct Database {
    tables: BTreeMap<&'static str, Table>,
}

/// Result of a `create_or_modify_objects` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upserted {
    /// Rows inserted or updated.
    pub changes: usize,
    /// Row ids in input order (existing or new).
    pub ids: Vec<i64>,
}

impl Database {
    /// A database holding an empty table for each name in `names`.
    pub fn with_tables<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut db = Database::default();
        for name in names {
            if let Some(def) = table_def(name) {
                db.tables.insert(def.name, Table::new(def));
            }
        }
        db
    }

    /// The table, or the device's "no such table" error.
    pub fn table(&self, name: &str) -> Result<&Table, TableError> {
        self.tables
            .get(name)
            .ok_or_else(|| TableError::NoSuchTable(name.to_owned()))
    }

    fn table_mut(&mut self, name: &str) -> Result<&mut Table, TableError> {
        self.tables
            .get_mut(name)
            .ok_or_else(|| TableError::NoSuchTable(name.to_owned()))
    }

    /// All tables by name.
    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.values()
    }

    /// Replaces a table's columns and rows wholesale (loading a state file).
    pub fn restore_table(
        &mut self,
        name: &str,
        columns: Vec<Column>,
        rows: BTreeMap<i64, Vec<Value>>,
    ) -> Result<(), TableError> {
        let table = self.table_mut(name)?;
        table.columns = columns;
        table.rows = rows;
        Ok(())
    }

    fn id_exists(&self, table: &str, id: i128) -> bool {
        let Ok(id) = i64::try_from(id) else {
            return false;
        };
        self.tables
            .get(table)
            .is_some_and(|t| t.rows.contains_key(&id))
    }

    fn check_foreign_keys(&self, table: &Table, row: &[Value]) -> Result<(), TableError> {
        for fk in table.def.foreign_keys {
            if let Some(Value::Int(id)) = table.column_index(fk.column).map(|i| &row[i])
                && !self.id_exists(fk.references, *id)
            {
                return Err(TableError::ForeignKey);
            }
            if let Some(Value::Text(_)) = table.column_index(fk.column).map(|i| &row[i]) {
                return Err(TableError::ForeignKey);
            }
        }
        Ok(())
    }

    /// Builds a full row from written members; returns `(rowid, row)`.
    fn build_row(
        &mut self,
        table: &str,
        members: &Map<String, Json>,
        pending_rowid: i64,
    ) -> Result<(i64, Vec<Value>), TableError> {
        let t = self.table_mut(table)?;
        let written = t.resolve_written_columns(members)?;
        let mut row = vec![Value::Null; t.columns.len()];
        for (i, json) in &written {
            row[*i] = t.cell_from_json(*i, json)?;
        }
        let rowid = if t.def.has_id {
            match &row[0] {
                Value::Int(id) => i64::try_from(*id)
                    .map_err(|_| MemberError::new("id", "int64", members.get("id")))?,
                _ => {
                    row[0] = Value::Int(i128::from(pending_rowid));
                    pending_rowid
                }
            }
        } else {
            pending_rowid
        };
        Ok((rowid, row))
    }

    /// `create_objects`: inserts every row or none; returns the new ids in input order.
    pub fn insert(
        &mut self,
        table: &str,
        rows: &[Map<String, Json>],
    ) -> Result<Vec<i64>, TableError> {
        let mut inserted = Vec::with_capacity(rows.len());
        let result = self.insert_each(table, rows, &mut inserted);
        if result.is_err() {
            let t = self.table_mut(table)?;
            for id in &inserted {
                t.rows.remove(id);
            }
        }
        result.map(|()| inserted)
    }

    fn insert_each(
        &mut self,
        table: &str,
        rows: &[Map<String, Json>],
        inserted: &mut Vec<i64>,
    ) -> Result<(), TableError> {
        for members in rows {
            let next = self.table(table)?.next_rowid();
            let (rowid, row) = self.build_row(table, members, next)?;
            let t = self.table(table)?;
            if t.rows.contains_key(&rowid) {
                let key = if t.def.has_id { "id" } else { "rowid" };
                return Err(TableError::Unique(format!("{table}.{key}")));
            }
            t.check_unique(rowid, &row)?;
            self.check_foreign_keys(t, &row)?;
            self.table_mut(table)?.rows.insert(rowid, row);
            inserted.push(rowid);
        }
        Ok(())
    }

    /// `modify_objects`: applies `values` to every row in `rowids`, all or nothing.
    pub fn update(
        &mut self,
        table: &str,
        values: &Map<String, Json>,
        rowids: &[i64],
    ) -> Result<usize, TableError> {
        let t = self.table_mut(table)?;
        let written = t.resolve_written_columns(values)?;
        let mut cells = Vec::with_capacity(written.len());
        for (i, json) in &written {
            cells.push((*i, t.cell_from_json(*i, json)?));
        }
        let t = self.table(table)?;
        let mut updated: Vec<(i64, i64, Vec<Value>)> = Vec::with_capacity(rowids.len());
        for &rowid in rowids {
            let Some(old) = t.rows.get(&rowid) else {
                continue;
            };
            let mut row = old.clone();
            for (i, v) in &cells {
                row[*i] = v.clone();
            }
            let new_rowid = if t.def.has_id {
                match &row[0] {
                    Value::Int(id) => i64::try_from(*id)
                        .map_err(|_| MemberError::new("id", "int64", values.get("id")))?,
                    _ => return Err(MemberError::new("id", "int64", values.get("id")).into()),
                }
            } else {
                rowid
            };
            updated.push((rowid, new_rowid, row));
        }
        // Check constraints against the table as it will be after the whole update.
        let mut after = t.clone();
        for (old, _, _) in &updated {
            after.rows.remove(old);
        }
        for (_, new_rowid, row) in &updated {
            if after.rows.contains_key(new_rowid) {
                return Err(TableError::Unique(format!("{table}.id")));
            }
            after.check_unique(*new_rowid, row)?;
            self.check_foreign_keys(&after, row)?;
            after.rows.insert(*new_rowid, row.clone());
        }
        let changed_ids: Vec<(i64, i64)> = updated.iter().map(|(o, n, _)| (*o, *n)).collect();
        self.tables.insert(after.def.name, after);
        for (old, new) in changed_ids {
            if old != new {
                // Re-pointing an id behaves like ON UPDATE CASCADE for dependants.
                self.repoint_references(table, old, new);
            }
        }
        Ok(updated.len())
    }

    fn repoint_references(&mut self, table: &str, old: i64, new: i64) {
        for t in self.tables.values_mut() {
            for fk in t
                .def
                .foreign_keys
                .iter()
                .filter(|fk| fk.references == table)
            {
                if let Some(i) = t.column_index(fk.column) {
                    for row in t.rows.values_mut() {
                        if row[i] == Value::Int(i128::from(old)) {
                            row[i] = Value::Int(i128::from(new));
                        }
                    }
                }
            }
        }
    }

    /// `destroy_objects`: deletes `rowids` and, recursively, every row referencing them.
    /// Returns the number of rows deleted from `table` itself and every deleted `users` id.
    pub fn delete(&mut self, table: &str, rowids: &[i64]) -> Result<(usize, Vec<i64>), TableError> {
        self.table(table)?;
        let mut deleted_users = Vec::new();
        let mut queue: Vec<(&'static str, Vec<i64>)> = Vec::new();
        let t = self.table_mut(table)?;
        let name = t.def.name;
        let mut count = 0;
        let mut removed = Vec::new();
        for id in rowids {
            if t.rows.remove(id).is_some() {
                count += 1;
                removed.push(*id);
            }
        }
        if t.def.has_id {
            queue.push((name, removed));
        }
        while let Some((parent, ids)) = queue.pop() {
            if parent == "users" {
                deleted_users.extend(&ids);
            }
            let ids: BTreeSet<i128> = ids.into_iter().map(i128::from).collect();
            if ids.is_empty() {
                continue;
            }
            for child in self.tables.values_mut() {
                let mut gone = Vec::new();
                for fk in child
                    .def
                    .foreign_keys
                    .iter()
                    .filter(|fk| fk.references == parent)
                {
                    let Some(i) = child.column_index(fk.column) else {
                        continue;
                    };
                    child.rows.retain(|rowid, row| match &row[i] {
                        Value::Int(v) if ids.contains(v) => {
                            gone.push(*rowid);
                            false
                        }
                        _ => true,
                    });
                }
                if child.def.has_id && !gone.is_empty() {
                    queue.push((child.def.name, gone));
                }
            }
        }
        Ok((count, deleted_users))
    }

    /// `create_or_modify_objects`: updates rows whose key exists (`id`, or the natural key
    /// of a link table), inserts the others; all or nothing.
    pub fn upsert(
        &mut self,
        table: &str,
        rows: &[Map<String, Json>],
    ) -> Result<Upserted, TableError> {
        let snapshot = self.clone();
        let result = self.upsert_each(table, rows);
        if result.is_err() {
            *self = snapshot;
        }
        result
    }

    fn upsert_each(
        &mut self,
        table: &str,
        rows: &[Map<String, Json>],
    ) -> Result<Upserted, TableError> {
        let mut ids = Vec::with_capacity(rows.len());
        for members in rows {
            let existing = self.existing_key_row(table, members)?;
            match existing {
                Some(rowid) => {
                    self.update(table, members, &[rowid])?;
                    let new_id = if self.table(table)?.def.has_id {
                        members
                            .get("id")
                            .and_then(json_integer)
                            .and_then(|v| i64::try_from(v).ok())
                            .unwrap_or(rowid)
                    } else {
                        rowid
                    };
                    ids.push(new_id);
                }
                None => ids.extend(self.insert(table, std::slice::from_ref(members))?),
            }
        }
        Ok(Upserted {
            changes: ids.len(),
            ids,
        })
    }

    fn existing_key_row(
        &self,
        table: &str,
        members: &Map<String, Json>,
    ) -> Result<Option<i64>, TableError> {
        let t = self.table(table)?;
        if t.def.has_id {
            let id = members
                .get("id")
                .and_then(json_integer)
                .and_then(|v| i64::try_from(v).ok());
            return Ok(id.filter(|id| t.rows.contains_key(id)));
        }
        let Some(key) = t.def.unique.first() else {
            return Ok(None);
        };
        let mut wanted = Vec::new();
        for col in *key {
            match (
                t.column_index(col),
                members.get(*col).and_then(json_integer),
            ) {
                (Some(i), Some(v)) => wanted.push((i, Value::Int(v))),
                _ => return Ok(None),
            }
        }
        Ok(t.rows
            .iter()
            .find(|(_, row)| wanted.iter().all(|(i, v)| &row[*i] == v))
            .map(|(id, _)| *id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::schema::TABLES;
    use serde_json::json;

    fn db() -> Database {
        Database::with_tables(TABLES.iter().map(|t| t.name))
    }

    fn rows(v: Json) -> Vec<Map<String, Json>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_object().unwrap().clone())
            .collect()
    }

    #[test]
    fn insert_assigns_ids_and_checks_types() {
        let mut db = db();
        let ids = db
            .insert(
                "users",
                &rows(json!([{"name": "A"}, {"id": 10, "name": "B"}, {"name": "C"}])),
            )
            .unwrap();
        assert_eq!(ids, vec![1, 10, 11]);
        let err = db.insert("users", &rows(json!([{"name": 5}]))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid member 'name' (string expected, got int)"
        );
    }

    #[test]
    fn failed_batch_leaves_no_rows() {
        let mut db = db();
        db.insert("users", &rows(json!([{"id": 1, "name": "A"}])))
            .unwrap();
        let err = db
            .insert(
                "users",
                &rows(json!([{"id": 2, "name": "B"}, {"id": 1, "name": "dup"}])),
            )
            .unwrap_err();
        assert_eq!(err, TableError::Unique("users.id".into()));
        assert_eq!(db.table("users").unwrap().len(), 1);
    }

    #[test]
    fn unique_card_value_and_u64_exact() {
        let mut db = db();
        db.insert("users", &rows(json!([{"id": 1, "name": "A"}])))
            .unwrap();
        let big: Json =
            serde_json::from_str("[{\"value\": 18446744073709551615, \"user_id\": 1}]").unwrap();
        db.insert("cards", &rows(big.clone())).unwrap();
        let err = db.insert("cards", &rows(big)).unwrap_err();
        assert_eq!(err.to_string(), "UNIQUE constraint failed: cards.value");
        let t = db.table("cards").unwrap();
        let (_, row) = t.rows().next().unwrap();
        assert_eq!(t.row_json(row)["value"].to_string(), "18446744073709551615");
    }

    #[test]
    fn deleting_a_user_cascades() {
        let mut db = db();
        db.insert("users", &rows(json!([{"id": 1}, {"id": 2}])))
            .unwrap();
        db.insert("groups", &rows(json!([{"id": 1, "name": "g"}])))
            .unwrap();
        db.insert(
            "cards",
            &rows(json!([{"value": 5, "user_id": 1}, {"value": 6, "user_id": 2}])),
        )
        .unwrap();
        db.insert("user_groups", &rows(json!([{"user_id": 1, "group_id": 1}])))
            .unwrap();
        let (n, users) = db.delete("users", &[1]).unwrap();
        assert_eq!((n, users), (1, vec![1]));
        assert_eq!(db.table("cards").unwrap().len(), 1);
        assert!(db.table("user_groups").unwrap().is_empty());
    }

    #[test]
    fn foreign_keys_are_enforced_on_insert() {
        let mut db = db();
        let err = db
            .insert("cards", &rows(json!([{"value": 5, "user_id": 9}])))
            .unwrap_err();
        assert_eq!(err, TableError::ForeignKey);
    }

    #[test]
    fn upsert_updates_existing_and_inserts_new() {
        let mut db = db();
        db.insert("users", &rows(json!([{"id": 1, "name": "A"}])))
            .unwrap();
        let up = db
            .upsert(
                "users",
                &rows(json!([{"id": 1, "name": "A2"}, {"id": 5, "name": "E"}])),
            )
            .unwrap();
        assert_eq!(
            up,
            Upserted {
                changes: 2,
                ids: vec![1, 5]
            }
        );
        let t = db.table("users").unwrap();
        assert_eq!(t.cell(t.row(1).unwrap(), "name"), &Value::Text("A2".into()));
    }

    #[test]
    fn open_tables_accept_new_columns() {
        let mut db = db();
        db.insert("users", &rows(json!([{"id": 1}]))).unwrap();
        db.insert("c_users", &rows(json!([{"user_id": 1, "cpf": "123"}])))
            .unwrap();
        let t = db.table("c_users").unwrap();
        assert!(t.column_index("cpf").is_some());
        let err = db
            .insert("users", &rows(json!([{"cpf": "1"}])))
            .unwrap_err();
        assert_eq!(err.to_string(), "table users has no column named cpf");
    }
}
