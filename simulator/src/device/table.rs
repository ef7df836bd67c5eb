//! Rows and values of the terminal's database and the rules writes must obey: column
//! types checked like the firmware does, unique constraints, foreign keys, and the
//! cascade that removes a user's cards, templates and links when the user goes.
//!
//! Integers are `i128` values so that every value from `i64::MIN` to `u64::MAX` (card
//! values, 53+-bit ids) round-trips exactly; a cell keeps one in two 64-bit halves
//! ([`Integer`]), which keeps cells at 24 bytes.
//!
//! Each table keeps a hash index per unique set and per foreign-key column, so that a
//! unique check, a link-table key lookup and a user's cascade cost the rows they touch, not
//! the table. A write of many rows is all or nothing through an undo log
//! ([`Database::atomically`]) rather than a copy of the database.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use compact_str::CompactString;
use serde_json::{Map, Value as Json};

use super::built_rows::BuiltRows;
use super::index::Index;
use super::row_map::RowMap;
use super::schema::{ColumnType, TableDef, table_def};
use super::stored_row::{StoredRow, trimmed};
use super::table_set::TableSet;
use super::written::{Member, RowMembers};
use crate::wire::{MemberError, integer_json};

/// One cell: 24 bytes aligned to 8 (see [`Integer`]).
#[derive(Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer (always within `i64::MIN ..= u64::MAX`).
    Int(Integer),
    /// Text: up to 24 bytes kept in the cell itself, longer text on the heap.
    Text(CompactString),
}

/// An integer cell: an `i128` kept as two 64-bit halves. An `i128` field would align
/// every cell to 16 bytes and make it 32 long; two halves let a cell share the text's 24
/// bytes, so rows are a quarter smaller and allocate through the allocator's plain path.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Integer {
    low: u64,
    high: i64,
}

impl Integer {
    /// The integer `n`.
    pub const fn new(n: i128) -> Self {
        Integer {
            low: n as u64,
            high: (n >> 64) as i64,
        }
    }

    /// The integer.
    pub const fn get(self) -> i128 {
        ((self.high as i128) << 64) | self.low as i128
    }
}

impl std::fmt::Debug for Integer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.get(), f)
    }
}

/// Cloned by hand so that a cell set from another of the same kind (a log's operation
/// and table names, rewritten on every entry) copies the text in place: the derived
/// clone builds a new value and drops the old one.
impl Clone for Value {
    #[inline]
    fn clone(&self) -> Self {
        match self {
            Value::Null => Value::Null,
            Value::Int(n) => Value::Int(*n),
            Value::Text(text) => Value::Text(text.clone()),
        }
    }

    #[inline]
    fn clone_from(&mut self, source: &Self) {
        match (self, source) {
            (Value::Text(text), Value::Text(source)) => text.clone_from(source),
            (cell, source) => *cell = source.clone(),
        }
    }
}

impl Value {
    /// Sets the cell to `text`, copied into its place when it holds text already.
    #[inline]
    pub fn set_text(&mut self, text: &CompactString) {
        match self {
            Value::Text(cell) => cell.clone_from(text),
            cell => *cell = Value::Text(text.clone()),
        }
    }

    /// An integer cell.
    pub const fn int(n: i128) -> Value {
        Value::Int(Integer::new(n))
    }

    /// The cell as JSON, integers exact.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Int(n) => integer_json(n.get()),
            Value::Text(s) => Json::String(s.as_str().to_owned()),
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(n) => Some(n.get()),
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
            (Value::Int(a), Value::Int(b)) => a.get().cmp(&b.get()),
            (Value::Text(a), Value::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            _ => rank(self).cmp(&rank(other)),
        }
    }

    /// The value as text for `LIKE` (integers in decimal).
    pub fn like_text(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Int(n) => Some(n.get().to_string()),
            Value::Text(s) => Some(s.as_str().to_owned()),
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
    rows: RowMap,
    /// One per unique set of the definition (in its order), then one per foreign-key
    /// column; always equal to what rebuilding them from `rows` would give.
    indexes: Vec<Index>,
    /// While a write is in progress ([`Database::atomically`]): how to undo it.
    undo: Option<Undo>,
    /// The undo log's buffer between writes, emptied: a write of a few rows then
    /// allocates none (a buffer grown past [`KEPT_UNDO_CAPACITY`] is not kept).
    spare_undo: Vec<Undone>,
    /// Cell buffers of rows a ring dropped when a write committed ([`Table::keep_ring`]),
    /// emptied, for the log rows appended next (at most [`KEPT_SPARE_ROWS`]). A log
    /// appended outside a write takes its oldest row's buffer directly
    /// ([`Database::append_log`]); these serve the rows a write appended within it.
    spare_rows: Vec<Vec<Value>>,
    /// Rows stored or removed since the state file's change log last took them (`None`:
    /// not tracked, the device keeps no state file).
    changed: Option<BTreeSet<i64>>,
    /// The number of columns when the change log last took the changes.
    logged_columns: usize,
    /// The columns' names as a reply prints them (each member's start, and where each
    /// ends), made by the first reply of whole rows after the columns last changed.
    printed_names: OnceLock<PrintedNames>,
    /// Whether `columns` are the definition's, as a table starts: false once an open
    /// table gained one, or a state file gave the table others.
    definitions_columns: bool,
}

/// Column names as a reply prints them: the text of every member's start, and where each
/// ends (made by `query`, kept by the table).
pub(super) type PrintedNames = (Vec<u8>, Vec<usize>);

/// What changed in one table since the change log last asked (see
/// [`Database::take_changes`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TableChanges {
    /// The table.
    pub table: &'static str,
    /// Every column, when columns were added (open tables).
    pub columns: Option<Vec<Column>>,
    /// Each changed row as it is now: `Some(cells)` stored, `None` removed.
    pub rows: Vec<(i64, Option<Vec<Value>>)>,
}

/// The largest undo buffer a table keeps between writes (entries).
const KEPT_UNDO_CAPACITY: usize = 64;

/// The most cell buffers of dropped rows a ring keeps for the rows appended next (a
/// write that appends 1,000 log rows within it drops 1,000 when it commits).
const KEPT_SPARE_ROWS: usize = 1_024;

/// What a write in progress changed in one table: the column count before it, and each
/// change to a row, in order.
#[derive(Debug, Clone)]
struct Undo {
    columns: usize,
    rows: Vec<Undone>,
}

/// One change to a row, as the undo log keeps it.
#[derive(Debug, Clone)]
enum Undone {
    /// The row at a rowid was replaced or removed (`Some(old)`) or added (`None`).
    Row(i64, Option<Vec<Value>>),
    /// Cells of the row at a rowid, none of them indexed, were set in place: what they
    /// held before (column, value).
    Cells(i64, Vec<(usize, Value)>),
    /// [`Undone::Cells`] of one cell (the common write of one member), kept without
    /// allocating.
    Cell(i64, usize, Value),
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
            rows: RowMap::default(),
            indexes: Vec::new(),
            undo: None,
            spare_undo: Vec::new(),
            spare_rows: Vec::new(),
            changed: None,
            logged_columns: def.columns.len(),
            printed_names: OnceLock::new(),
            definitions_columns: true,
        }
        .indexed()
    }

    fn indexed(mut self) -> Self {
        self.build_indexes();
        self
    }

    /// Rebuilds every index from the rows (after the columns or the rows were replaced).
    fn build_indexes(&mut self) {
        let unique = self.def.unique.iter().map(|set| {
            set.iter()
                .filter_map(|c| self.column_index(c))
                .collect::<Vec<_>>()
        });
        let references = self
            .def
            .foreign_keys
            .iter()
            .filter_map(|fk| self.column_index(fk.column))
            .map(|i| vec![i]);
        let mut indexes: Vec<Index> = unique.chain(references).map(Index::new).collect();
        for (rowid, row) in self.rows.iter() {
            for index in &mut indexes {
                index.add(rowid, row);
            }
        }
        self.indexes = indexes;
    }

    /// Stores `row` at `rowid`, replacing any row there; keeps the indexes and the undo
    /// log (which takes the replaced row).
    fn put(&mut self, rowid: i64, row: Vec<Value>) {
        for index in &mut self.indexes {
            index.add(rowid, &row);
        }
        let old = self
            .rows
            .insert(rowid, StoredRow::new(row))
            .map(StoredRow::into_cells);
        if let Some(old) = &old {
            self.forget(rowid, old);
        }
        if let Some(undo) = &mut self.undo {
            undo.rows.push(Undone::Row(rowid, old));
        }
        if let Some(changed) = &mut self.changed {
            changed.insert(rowid);
        }
    }

    /// Removes the row at `rowid`, saying whether there was one; keeps the indexes and the
    /// undo log (which takes the removed row).
    fn take(&mut self, rowid: i64) -> bool {
        let Some(old) = self.rows.remove(rowid).map(StoredRow::into_cells) else {
            return false;
        };
        self.forget(rowid, &old);
        if let Some(undo) = &mut self.undo {
            undo.rows.push(Undone::Row(rowid, Some(old)));
        }
        if let Some(changed) = &mut self.changed {
            changed.insert(rowid);
        }
        true
    }

    /// Drops `old` (the row that was at `rowid`) from the indexes, unless the row now at
    /// `rowid` holds the same key.
    fn forget(&mut self, rowid: i64, old: &[Value]) {
        if self.indexes.is_empty() {
            return;
        }
        let now = self.rows.get(rowid);
        for index in &mut self.indexes {
            let same = now.is_some_and(|n| index.same_key(n, old));
            if !same {
                index.remove(rowid, old);
            }
        }
    }

    /// Whether column `column` is part of an index (a unique set or a reference), so that
    /// writing it may clash or dangle.
    fn is_indexed(&self, column: usize) -> bool {
        self.indexes.iter().any(|ix| ix.columns().contains(&column))
    }

    /// Sets cells of the row at `rowid` in place, saying whether there was one: for
    /// columns no index covers (see [`Table::is_indexed`]), which no constraint can refuse.
    /// Keeps the undo log (which takes the cells' old values).
    fn set_cells(&mut self, rowid: i64, cells: &[(usize, Value)]) -> bool {
        let Some(row) = self.rows.get_mut(rowid) else {
            return false;
        };
        set_row_cells(rowid, row, cells, &mut self.undo, &mut self.changed);
        true
    }

    /// [`Table::set_cells`] for each of `rowids`, which are ascending (a range of ids),
    /// walking the rows rather than looking each up; returns how many rows there were.
    fn set_cells_ascending(&mut self, rowids: &[i64], cells: &[(usize, Value)]) -> usize {
        let Table {
            rows,
            undo,
            changed,
            ..
        } = self;
        let mut count = 0;
        if undo.is_none() {
            // Outside a write (the common case): nothing to keep for an undo, and the
            // width the cells need is worked out once.
            let width = width_of(cells);
            rows.for_each_ascending_mut(
                rowids,
                // Called once a row: inlined into the loop, not a call each time.
                #[inline(always)]
                |rowid, row| {
                    set_cells_in_place(rowid, row, cells, width, changed);
                    count += 1;
                },
            );
            return count;
        }
        rows.for_each_ascending_mut(rowids, |rowid, row| {
            set_row_cells(rowid, row, cells, undo, changed);
            count += 1;
        });
        count
    }

    /// Makes room in the undo log for `n` more entries, so that a write of many rows
    /// grows it once rather than doubling it all the way up.
    fn reserve_undo(&mut self, n: usize) {
        if let Some(undo) = &mut self.undo {
            undo.rows.reserve(n);
        }
    }

    fn begin(&mut self) {
        self.undo = Some(Undo {
            columns: self.columns.len(),
            rows: std::mem::take(&mut self.spare_undo),
        });
    }

    fn commit(&mut self) {
        if let Some(Undo { mut rows, .. }) = self.undo.take()
            && rows.capacity() <= KEPT_UNDO_CAPACITY
        {
            rows.clear();
            self.spare_undo = rows;
        }
    }

    /// Drops the oldest rows of a table kept as a ring ([`TableDef::ring`]) beyond its
    /// size, once a write is committed (so the write's undo log never holds them); keeps
    /// the indexes and the state file's change tracking.
    fn keep_ring(&mut self) {
        let Some(ring) = self.def.ring else {
            return;
        };
        for _ in ring..self.rows.len() {
            let Some(cells) = self.drop_oldest() else {
                break;
            };
            if self.spare_rows.len() < KEPT_SPARE_ROWS {
                self.spare_rows.push(cells);
            }
        }
    }

    /// Takes the oldest row out of a ring (for a row appended in its place, or beyond its
    /// size): the indexes and the state file's change tracking let it go, and its cell
    /// buffer comes back emptied.
    fn drop_oldest(&mut self) -> Option<Vec<Value>> {
        let (rowid, row) = self.rows.pop_first()?;
        for index in &mut self.indexes {
            index.remove(rowid, &row);
        }
        if let Some(changed) = &mut self.changed {
            changed.insert(rowid);
        }
        let mut cells = row.into_cells();
        cells.clear();
        Some(cells)
    }

    /// Appends `n` rows from `rowid` on, above every row, in the places of as many oldest
    /// rows, which leave (a ring full to its size): `fill(i, cells)` sets the `i`-th
    /// oldest row's cells in place (made `N` wide if they were not) and the row moves to
    /// the end under its new rowid, so nothing is allocated or freed. Keeps the indexes
    /// and the state file's change tracking; outside a write only (nothing goes to the
    /// undo log). Returns how many rows were appended (none when the table is empty).
    fn rotate_oldest<const N: usize>(
        &mut self,
        rowid: i64,
        n: usize,
        mut fill: impl FnMut(usize, &mut [Value; N]),
    ) -> usize {
        debug_assert!(self.undo.is_none());
        let Table {
            rows,
            indexes,
            changed,
            ..
        } = self;
        rows.rotate_firsts(
            rowid,
            n,
            // Called once a row: inlined into the loop, not a call each time.
            #[inline(always)]
            |i, oldest, row| {
                for index in indexes.iter_mut() {
                    index.remove(oldest, row);
                }
                fill(i, row.cells_exactly());
                let rowid = rowid + i as i64;
                for index in indexes.iter_mut() {
                    index.add(rowid, row);
                }
                if let Some(changed) = changed {
                    changed.insert(oldest);
                    changed.insert(rowid);
                }
            },
        )
    }

    /// The cells `values` write, each with its column, type-checked (columns an open
    /// table lacks are added).
    fn written_cells(
        &mut self,
        values: &impl RowMembers,
    ) -> Result<Vec<(usize, Value)>, TableError> {
        let mut written = Vec::new();
        self.resolve_written_columns(values, &mut written)?;
        let mut cells = Vec::with_capacity(written.len());
        for (i, member) in written {
            cells.push((i, self.cell_of(i, member)?));
        }
        Ok(cells)
    }

    /// Sets `cells` in each row of `rowids` there is, in place, when no index covers any
    /// of them (and none is the id), returning how many rows there were; `None`, having
    /// changed nothing, when one is covered. Such cells cannot clash or dangle, so this
    /// cannot fail: it is what setting each row whole would come to for them.
    fn set_unindexed_cells(&mut self, cells: &[(usize, Value)], rowids: &[i64]) -> Option<usize> {
        if cells
            .iter()
            .any(|(i, _)| self.is_indexed(*i) || (self.def.has_id && *i == 0))
        {
            return None;
        }
        self.reserve_undo(rowids.len());
        if rowids.is_sorted() {
            return Some(self.set_cells_ascending(rowids, cells));
        }
        let mut count = 0;
        for &rowid in rowids {
            if self.set_cells(rowid, cells) {
                count += 1;
            }
        }
        Some(count)
    }

    /// Puts back cells [`Table::set_cells`] set in the row at `rowid`.
    fn put_back_cells(&mut self, rowid: i64, cells: impl IntoIterator<Item = (usize, Value)>) {
        if let Some(mut row) = self.rows.get(rowid).map(|r| r.to_vec()) {
            for (i, value) in cells {
                if row.len() <= i {
                    row.resize(i + 1, Value::Null);
                }
                row[i] = value;
            }
            self.put(rowid, trimmed(row));
        }
    }

    /// Puts back what the write in progress changed.
    fn rollback(&mut self) {
        let Some(undo) = self.undo.take() else {
            return;
        };
        for undone in undo.rows.into_iter().rev() {
            match undone {
                Undone::Row(rowid, Some(row)) => {
                    self.put(rowid, row);
                }
                Undone::Row(rowid, None) => {
                    self.take(rowid);
                }
                Undone::Cells(rowid, cells) => self.put_back_cells(rowid, cells),
                Undone::Cell(rowid, i, value) => self.put_back_cells(rowid, [(i, value)]),
            }
        }
        if self.columns.len() != undo.columns {
            self.columns.truncate(undo.columns);
            self.printed_names = OnceLock::new();
            for row in self.rows.values_mut() {
                row.truncate(undo.columns);
            }
            self.build_indexes();
        }
    }

    /// Rows whose column `column` holds the integer `value`, when an index on that column
    /// alone answers it (`None`: the table would have to be scanned).
    pub fn indexed_rowids(&self, column: usize, value: i128) -> Option<Vec<i64>> {
        let index = self.indexes.iter().find(|ix| ix.columns() == [column])?;
        Some(index.rowids(&[Value::int(value)]).collect())
    }

    /// Rows whose column `index` holds the integer `value`, through an index on that
    /// column alone when there is one.
    fn rowids_with(&self, column: usize, value: i128) -> Vec<i64> {
        let key = [Value::int(value)];
        match self.indexed_rowids(column, value) {
            Some(rowids) => rowids,
            None => self
                .rows
                .iter()
                .filter(|(_, r)| r.get(column) == Some(&key[0]))
                .map(|(id, _)| id)
                .collect(),
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

    /// The columns' names as printed by `print`, made once until the columns change.
    pub(super) fn printed_names(
        &self,
        print: impl FnOnce(&[Column]) -> PrintedNames,
    ) -> &PrintedNames {
        self.printed_names.get_or_init(|| print(&self.columns))
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
    pub fn rows(&self) -> impl Iterator<Item = (i64, &StoredRow)> {
        self.rows.iter()
    }

    /// Rows whose rowid is between `low` and `high` (both included), in rowid order.
    pub fn rows_between(&self, low: i64, high: i64) -> impl Iterator<Item = (i64, &StoredRow)> {
        self.rows
            .starting_at_rowid(low)
            .take_while(move |(rowid, _)| *rowid <= high)
    }

    /// The rowids between `low` and `high` (both included), in order.
    pub fn rowids_between(&self, low: i64, high: i64) -> Vec<i64> {
        self.rows.rowids_between(low, high)
    }

    /// Rows in rowid order from the one at position `offset` (0 = the first row).
    pub fn rows_from_position(&self, offset: usize) -> impl Iterator<Item = (i64, &StoredRow)> {
        self.rows.starting_at_position(offset)
    }

    /// One row by rowid.
    pub fn row(&self, rowid: i64) -> Option<&StoredRow> {
        self.rows.get(rowid)
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
        match self.column_index(column) {
            Some(i) => self.rowids_with(i, value),
            None => Vec::new(),
        }
    }

    /// A stored row's cells with one per column, NULL past the cells it keeps: the row as
    /// the state file keeps it.
    pub fn every_cell(&self, row: &[Value]) -> Vec<Value> {
        let width = self.columns.len().max(row.len());
        let mut cells = Vec::with_capacity(width);
        cells.extend_from_slice(row);
        cells.resize(width, Value::Null);
        cells
    }

    /// The row as a JSON object with every column.
    pub fn row_json(&self, row: &[Value]) -> Map<String, Json> {
        self.columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    c.name.clone(),
                    row.get(i).map_or(Json::Null, Value::to_json),
                )
            })
            .collect()
    }

    fn next_rowid(&self) -> i64 {
        self.rows
            .last_rowid()
            .map_or(1, |last| last.saturating_add(1))
    }

    /// Converts a JSON member into a cell of column `index`, checking its type.
    fn cell_of(&self, index: usize, member: Member<'_>) -> Result<Value, MemberError> {
        let column = &self.columns[index];
        cell_of_type(&column.name, column.ty, member)
    }

    /// Whether the table's columns are those of its definition, as they are unless the
    /// table is open and gained some, or a state file gave it others: rows built from
    /// the definition ([`BuiltRows`]) fit it then.
    pub fn has_its_definitions_columns(&self) -> bool {
        self.definitions_columns
    }

    /// Resolves the columns of a written row into `out`, adding new ones to an open
    /// table. A write of many rows reuses one buffer, which holds the previous row's
    /// columns: the rows of a batch mostly name the same columns in the same order, so
    /// the column of the previous row's member at the same place is tried first.
    fn resolve_written_columns<'r>(
        &mut self,
        row: &'r impl RowMembers,
        out: &mut Vec<(usize, Member<'r>)>,
    ) -> Result<(), TableError> {
        let mut count = 0;
        for (name, value) in row.members() {
            let previous = out.get(count).map(|&(i, _)| i);
            let same = |&i: &usize| self.columns.get(i).is_some_and(|c| c.name == name);
            let index = match previous.filter(same) {
                Some(i) => i,
                None => self.column_index_or_new(name, value)?,
            };
            match out.get_mut(count) {
                Some(slot) => *slot = (index, value),
                None => out.push((index, value)),
            }
            count += 1;
        }
        out.truncate(count);
        Ok(())
    }

    /// The index of column `name`, added to an open table when it has none of that name
    /// (typed after `value`).
    fn column_index_or_new(&mut self, name: &str, value: Member<'_>) -> Result<usize, TableError> {
        if let Some(i) = self.column_index(name) {
            return Ok(i);
        }
        if !(self.def.open && is_identifier(name)) {
            return Err(TableError::NoColumnNamed {
                table: self.def.name.to_owned(),
                column: name.to_owned(),
            });
        }
        let ty = if value.integer().is_some() {
            ColumnType::Int64
        } else {
            ColumnType::Str
        };
        self.columns.push(Column {
            name: name.to_owned(),
            ty,
        });
        self.definitions_columns = false;
        self.printed_names = OnceLock::new();
        // Rows read the new column as NULL past their cells; their printed text lacks it.
        for r in self.rows.values_mut() {
            r.forget_printing();
        }
        // A unique set or a reference may name the column just added.
        self.build_indexes();
        Ok(self.columns.len() - 1)
    }

    fn check_unique(&self, rowid: i64, row: &[Value]) -> Result<(), TableError> {
        for (set, index) in self.def.unique.iter().zip(&self.indexes) {
            if index.clashes(rowid, row) {
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

/// A written `id` out of an id's range (beyond `i64::MAX`).
fn id_error(id: Option<Member<'_>>) -> MemberError {
    MemberError::of_type("id", "int64", id.map_or("undefined", Member::type_name))
}

/// Converts a JSON member into a cell of a column named `name` of type `ty`, checking
/// its type.
pub(super) fn cell_of_type(
    name: &str,
    ty: ColumnType,
    member: Member<'_>,
) -> Result<Value, MemberError> {
    match (ty, member) {
        (_, Member::Null) => Ok(Value::Null),
        (ColumnType::Str, Member::Text(s)) => Ok(Value::Text(s.into())),
        (ColumnType::Int | ColumnType::Int64, Member::Int(n)) => Ok(Value::int(n)),
        _ => Err(MemberError::of_type(
            name,
            ty.wire_name(),
            member.type_name(),
        )),
    }
}

/// Whether a row may be stored at `rowid` in a table whose next rowid is `next` (one
/// above the largest, [`Table::next_rowid`]): below it, or when the largest is already
/// `i64::MAX` (the next rowid saturates there).
fn may_be_taken(rowid: i64, next: i64) -> bool {
    rowid < next || next == i64::MAX
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
    tables: TableSet,
    /// Whether a write is in progress (the tables it touches keep undo logs).
    writing: bool,
    /// The places ([`TableSet::place`]) of the tables the write in progress has touched
    /// so far.
    touched: Vec<usize>,
}

/// Starts `table`'s undo log when a write is in progress and it has none yet, so that
/// a write pays for the tables it touches, not for every table of the device.
fn enlist(writing: bool, touched: &mut Vec<usize>, place: usize, table: &mut Table) {
    if writing && table.undo.is_none() {
        table.begin();
        touched.push(place);
    }
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
                db.tables.insert(Table::new(def));
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

    /// The place of the table named `name` ([`TableSet::place`]).
    fn place(&self, name: &str) -> Result<usize, TableError> {
        self.tables
            .place(name)
            .ok_or_else(|| TableError::NoSuchTable(name.to_owned()))
    }

    /// [`Database::table_mut`] of the table at `place`.
    fn table_at_mut(&mut self, place: usize) -> &mut Table {
        let table = self.tables.at_mut(place);
        enlist(self.writing, &mut self.touched, place, table);
        table
    }

    fn table_mut(&mut self, name: &str) -> Result<&mut Table, TableError> {
        let place = self.place(name)?;
        Ok(self.table_at_mut(place))
    }

    /// All tables by name.
    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.values()
    }

    /// Starts (or stops) remembering which rows and columns change, for the state file's
    /// change log; what was remembered so far is forgotten.
    pub fn set_tracking(&mut self, on: bool) {
        for t in self.tables.values_mut() {
            t.changed = on.then(BTreeSet::new);
            t.logged_columns = t.columns.len();
        }
    }

    /// Every row stored or removed and every column added since the last call (with
    /// tracking on), table by table; a row changed and changed back is listed as it is.
    pub fn take_changes(&mut self) -> Vec<TableChanges> {
        let mut out = Vec::new();
        for t in self.tables.values_mut() {
            let columns_added = t.columns.len() != t.logged_columns;
            let Some(changed) = t.changed.as_mut() else {
                continue;
            };
            if changed.is_empty() && !columns_added {
                continue;
            }
            let ids = std::mem::take(changed);
            t.logged_columns = t.columns.len();
            out.push(TableChanges {
                table: t.def.name,
                columns: columns_added.then(|| t.columns.clone()),
                rows: ids
                    .into_iter()
                    .map(|id| (id, t.rows.get(id).map(|r| t.every_cell(r))))
                    .collect(),
            });
        }
        out
    }

    /// Replaces a table's columns and rows wholesale (loading a state file).
    pub fn restore_table(
        &mut self,
        name: &str,
        columns: Vec<Column>,
        rows: BTreeMap<i64, Vec<Value>>,
    ) -> Result<(), TableError> {
        let table = self.table_mut(name)?;
        table.definitions_columns = columns.len() == table.def.columns.len()
            && columns
                .iter()
                .zip(table.def.columns)
                .all(|(c, d)| c.name == d.name && c.ty == d.ty);
        table.columns = columns;
        table.rows = RowMap::from_sorted(rows.into_iter().map(|(id, row)| {
            let mut cells = trimmed(row);
            cells.shrink_to_fit();
            (id, StoredRow::new(cells))
        }));
        table.build_indexes();
        if let Some(changed) = &mut table.changed {
            changed.extend(table.rows.keys());
            table.logged_columns = 0;
        }
        Ok(())
    }

    /// Runs a write that must happen entirely or not at all: when `write` fails, every row
    /// and column it changed is put back. Nested writes belong to the outermost one.
    pub fn atomically<T>(
        &mut self,
        write: impl FnOnce(&mut Database) -> Result<T, TableError>,
    ) -> Result<T, TableError> {
        if self.writing {
            return write(self);
        }
        self.writing = true;
        let result = write(self);
        self.writing = false;
        let mut touched = std::mem::take(&mut self.touched);
        for place in touched.drain(..) {
            let t = self.tables.at_mut(place);
            if result.is_ok() {
                t.commit();
                t.keep_ring();
            } else {
                t.rollback();
            }
        }
        self.touched = touched;
        result
    }

    fn id_exists(&self, table: &str, id: i128) -> bool {
        let Ok(id) = i64::try_from(id) else {
            return false;
        };
        self.tables
            .get(table)
            .is_some_and(|t| t.rows.contains_key(id))
    }

    fn check_foreign_keys(&self, table: &Table, row: &[Value]) -> Result<(), TableError> {
        for fk in table.def.foreign_keys {
            let cell = table.column_index(fk.column).and_then(|i| row.get(i));
            if let Some(Value::Int(id)) = cell
                && !self.id_exists(fk.references, id.get())
            {
                return Err(TableError::ForeignKey);
            }
            if let Some(Value::Text(_)) = cell {
                return Err(TableError::ForeignKey);
            }
        }
        Ok(())
    }

    /// Builds a full row from written members, resolving their columns into `written`
    /// (a buffer reused from row to row); returns `(rowid, row)`.
    fn build_row<'r>(
        &mut self,
        place: usize,
        members: &'r impl RowMembers,
        pending_rowid: i64,
        written: &mut Vec<(usize, Member<'r>)>,
    ) -> Result<(i64, Vec<Value>), TableError> {
        let t = self.table_at_mut(place);
        t.resolve_written_columns(members, written)?;
        // Cells up to the last one written (the id's at least): the row keeps no NULLs
        // past it (see `stored_row`).
        let width = written
            .iter()
            .map(|(i, _)| i + 1)
            .max()
            .unwrap_or(0)
            .max(usize::from(t.def.has_id));
        let mut row = Vec::with_capacity(width);
        row.resize_with(width, || Value::Null);
        for (i, member) in written.iter() {
            row[*i] = t.cell_of(*i, *member)?;
        }
        let rowid = if t.def.has_id {
            match &row[0] {
                Value::Int(id) => {
                    i64::try_from(id.get()).map_err(|_| id_error(members.member("id")))?
                }
                _ => {
                    row[0] = Value::int(i128::from(pending_rowid));
                    pending_rowid
                }
            }
        } else {
            pending_rowid
        };
        Ok((rowid, trimmed(row)))
    }

    /// `create_objects`: inserts every row or none; returns the new ids in input order.
    pub fn insert(
        &mut self,
        table: &str,
        rows: &[impl RowMembers],
    ) -> Result<Vec<i64>, TableError> {
        self.atomically(|db| db.insert_each(table, rows))
    }

    fn insert_each(
        &mut self,
        table: &str,
        rows: &[impl RowMembers],
    ) -> Result<Vec<i64>, TableError> {
        let mut inserted = Vec::with_capacity(rows.len());
        // The next rowid (one above the largest), kept as rows go in: a rowid from it up
        // is free without a lookup.
        // The table is found once, then reached by its place for every row.
        let place = self.place(table)?;
        let mut next = self.tables.at(place).next_rowid();
        self.table_at_mut(place).reserve_undo(rows.len());
        let mut written = Vec::new();
        for members in rows {
            let (rowid, row) = self.build_row(place, members, next, &mut written)?;
            self.put_new_row(place, rowid, row, &mut next)?;
            inserted.push(rowid);
        }
        Ok(inserted)
    }

    /// `create_objects` of rows built before the lock (for the table they were built for,
    /// whose columns are still its definition's: [`Table::has_its_definitions_columns`]):
    /// the same as [`Database::insert`] of the rows they were built from.
    pub fn insert_built(&mut self, built: BuiltRows) -> Result<Vec<i64>, TableError> {
        self.atomically(|db| db.insert_built_each(built))
    }

    fn insert_built_each(&mut self, built: BuiltRows) -> Result<Vec<i64>, TableError> {
        let place = self.place(built.def.name)?;
        let t = self.tables.at(place);
        debug_assert!(std::ptr::eq(t.def, built.def) && t.has_its_definitions_columns());
        let mut next = t.next_rowid();
        self.table_at_mut(place).reserve_undo(built.len());
        let mut inserted = Vec::with_capacity(built.len());
        for (id, mut row) in built.rows {
            let rowid = match id {
                Some(id) => id,
                None if built.def.has_id => {
                    row[0] = Value::int(i128::from(next));
                    next
                }
                None => next,
            };
            self.put_new_row(place, rowid, trimmed(row), &mut next)?;
            inserted.push(rowid);
        }
        Ok(inserted)
    }

    /// Puts a row just built under `rowid` into the table at `place`, unless the rowid,
    /// a unique set or a reference refuses it; `next` (one above the largest rowid, so
    /// that a rowid from it up is free without a lookup) follows.
    fn put_new_row(
        &mut self,
        place: usize,
        rowid: i64,
        row: Vec<Value>,
        next: &mut i64,
    ) -> Result<(), TableError> {
        let t = self.tables.at(place);
        if may_be_taken(rowid, *next) && t.rows.contains_key(rowid) {
            let key = if t.def.has_id { "id" } else { "rowid" };
            return Err(TableError::Unique(format!("{}.{key}", t.def.name)));
        }
        t.check_unique(rowid, &row)?;
        self.check_foreign_keys(t, &row)?;
        self.table_at_mut(place).put(rowid, row);
        *next = (*next).max(rowid.saturating_add(1));
        Ok(())
    }

    /// Appends `n` rows the device writes itself to one of its logs (the change log), each
    /// under the next rowid, which is also its `id`: `fill(i, cells)` sets the first `N`
    /// cells of the `i`-th row, every one of them after the id, which is set already
    /// (they may hold an older row's values); the columns after them read NULL. For a
    /// table with an id and without unique sets or foreign keys, so that once the ids are
    /// known to be free nothing can fail.
    ///
    /// Outside a write, a ring ([`TableDef::ring`]) that is full hands each row appended
    /// the cells of its oldest row, which leaves as the new one comes
    /// ([`Table::rotate_oldest`]): there is nothing to undo, since the append cannot fail
    /// once it has started. Inside a write, the rows are put like any other (undone with
    /// it) and the ring drops its oldest rows when the write commits.
    pub fn append_log<const N: usize>(
        &mut self,
        table: &str,
        n: usize,
        mut fill: impl FnMut(usize, &mut [Value; N]),
    ) -> Result<(), TableError> {
        let place = self.place(table)?;
        let t = self.table_at_mut(place);
        debug_assert!(t.def.has_id && t.def.unique.is_empty() && t.def.foreign_keys.is_empty());
        debug_assert!(0 < N && N <= t.columns.len(), "{table}: {N} cells");
        if n == 0 {
            return Ok(());
        }
        // Every id from the next rowid on, one per row, must exist and be free.
        let first = t.next_rowid();
        let last = i64::try_from(n - 1)
            .ok()
            .and_then(|more| first.checked_add(more))
            .filter(|_| t.rows.last_rowid() != Some(i64::MAX));
        let Some(last) = last else {
            return Err(TableError::Unique(format!("{table}.id")));
        };
        // Outside a write, a ring takes new rows until it is full, then hands them its
        // oldest; otherwise every row is new.
        let ring = t.def.ring.filter(|&size| size > 0 && t.undo.is_none());
        let new = ring.map_or(n, |size| n.min(size.saturating_sub(t.rows.len())));
        t.reserve_undo(new);
        for (i, rowid) in (first..=last).enumerate().take(new) {
            let mut cells = t
                .spare_rows
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(t.columns.len()));
            cells.resize(N, Value::Null);
            let row: &mut [Value; N] = (&mut cells[..]).try_into().expect("N cells");
            row[0] = Value::int(i128::from(rowid));
            fill(i, row);
            t.put(rowid, cells);
        }
        if new < n {
            let rotated = t.rotate_oldest(
                first + new as i64,
                n - new,
                // Called once a row: inlined into the loop, not a call each time.
                #[inline(always)]
                |i, cells| {
                    cells[0] = Value::int(i128::from(first + (new + i) as i64));
                    fill(new + i, cells);
                },
            );
            debug_assert_eq!(rotated, n - new, "a full ring has rows");
        }
        Ok(())
    }

    /// `modify_objects`: applies `values` to every row in `rowids`, all or nothing.
    ///
    /// Values for columns the table has and no index covers are set in place without a
    /// write of their own: once they have passed their columns' type checks nothing can
    /// fail (see [`Table::set_unindexed_cells`]), so outside a write they need no undo
    /// log, and inside one the table keeps the write's (it is enlisted when reached).
    pub fn update(
        &mut self,
        table: &str,
        values: &impl RowMembers,
        rowids: &[i64],
    ) -> Result<usize, TableError> {
        let t = self.table_mut(table)?;
        if values
            .members()
            .all(|(name, _)| t.column_index(name).is_some())
        {
            let cells = t.written_cells(values)?;
            if let Some(count) = t.set_unindexed_cells(&cells, rowids) {
                return Ok(count);
            }
        }
        self.atomically(|db| db.update_each(table, values, rowids))
    }

    fn update_each(
        &mut self,
        table: &str,
        values: &impl RowMembers,
        rowids: &[i64],
    ) -> Result<usize, TableError> {
        let t = self.table_mut(table)?;
        let cells = t.written_cells(values)?;
        if let Some(count) = t.set_unindexed_cells(&cells, rowids) {
            return Ok(count);
        }
        let t = self.table(table)?;
        let mut updated: Vec<(i64, i64, Vec<Value>)> = Vec::with_capacity(rowids.len());
        for &rowid in rowids {
            let Some(old) = t.rows.get(rowid) else {
                continue;
            };
            let mut row = old.to_vec();
            for (i, v) in &cells {
                if row.len() <= *i {
                    row.resize(i + 1, Value::Null);
                }
                row[*i] = v.clone();
            }
            let row = trimmed(row);
            let new_rowid = if t.def.has_id {
                match row.first() {
                    Some(Value::Int(id)) => {
                        i64::try_from(id.get()).map_err(|_| id_error(values.member("id")))?
                    }
                    _ => return Err(id_error(values.member("id")).into()),
                }
            } else {
                rowid
            };
            updated.push((rowid, new_rowid, row));
        }
        // Constraints hold against the table as it is after the whole update: the old rows
        // leave first, then each new one is checked as it goes in.
        let changed_ids: Vec<(i64, i64)> = updated.iter().map(|(o, n, _)| (*o, *n)).collect();
        let count = updated.len();
        let t = self.table_mut(table)?;
        for (old, _, _) in &updated {
            t.take(*old);
        }
        for (_, new_rowid, row) in updated {
            let t = self.table(table)?;
            if t.rows.contains_key(new_rowid) {
                return Err(TableError::Unique(format!("{table}.id")));
            }
            t.check_unique(new_rowid, &row)?;
            self.check_foreign_keys(t, &row)?;
            self.table_mut(table)?.put(new_rowid, row);
        }
        for (old, new) in changed_ids {
            if old != new {
                // Re-pointing an id behaves like ON UPDATE CASCADE for dependants.
                self.repoint_references(table, old, new);
            }
        }
        Ok(count)
    }

    fn repoint_references(&mut self, table: &str, old: i64, new: i64) {
        for (place, t) in self.tables.values_mut().enumerate() {
            if t.def.foreign_keys.iter().any(|fk| fk.references == table) {
                enlist(self.writing, &mut self.touched, place, t);
            }
            for fk in t
                .def
                .foreign_keys
                .iter()
                .filter(|fk| fk.references == table)
            {
                let Some(i) = t.column_index(fk.column) else {
                    continue;
                };
                for rowid in t.rowids_with(i, i128::from(old)) {
                    if let Some(mut row) = t.rows.get(rowid).map(|r| r.to_vec()) {
                        // The row holds `old` in column `i`, so it has that cell.
                        row[i] = Value::int(i128::from(new));
                        t.put(rowid, row);
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
            if t.take(*id) {
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
            for (place, child) in self.tables.values_mut().enumerate() {
                if child
                    .def
                    .foreign_keys
                    .iter()
                    .any(|fk| fk.references == parent)
                {
                    enlist(self.writing, &mut self.touched, place, child);
                }
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
                    for id in &ids {
                        for rowid in child.rowids_with(i, *id) {
                            if child.take(rowid) {
                                gone.push(rowid);
                            }
                        }
                    }
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
        rows: &[impl RowMembers],
    ) -> Result<Upserted, TableError> {
        self.atomically(|db| db.upsert_each(table, rows))
    }

    fn upsert_each(
        &mut self,
        table: &str,
        rows: &[impl RowMembers],
    ) -> Result<Upserted, TableError> {
        let mut ids = Vec::with_capacity(rows.len());
        for members in rows {
            let existing = self.existing_key_row(table, members)?;
            match existing {
                Some(rowid) => {
                    self.update(table, members, &[rowid])?;
                    let new_id = if self.table(table)?.def.has_id {
                        members
                            .member("id")
                            .and_then(Member::integer)
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
        members: &impl RowMembers,
    ) -> Result<Option<i64>, TableError> {
        let t = self.table(table)?;
        if t.def.has_id {
            let id = members
                .member("id")
                .and_then(Member::integer)
                .and_then(|v| i64::try_from(v).ok());
            return Ok(id.filter(|id| t.rows.contains_key(*id)));
        }
        let Some(key) = t.def.unique.first() else {
            return Ok(None);
        };
        let mut wanted = Vec::new();
        for col in *key {
            match (
                t.column_index(col),
                members.member(col).and_then(Member::integer),
            ) {
                (Some(_), Some(v)) => wanted.push(Value::int(v)),
                _ => return Ok(None),
            }
        }
        // The first unique set is the first index, over the same columns in order.
        Ok(t.indexes.first().and_then(|ix| ix.rowids(&wanted).next()))
    }
}

/// How many cells a row needs for `cells` to be set in it.
fn width_of(cells: &[(usize, Value)]) -> usize {
    cells.iter().map(|(i, _)| i + 1).max().unwrap_or(0)
}

/// Sets `cells` of `row` (at `rowid`) in place outside a write, the row made `width`
/// ([`width_of`] the cells) wide first; keeps the changed rows of its table. Inlined: a
/// modify of many rows calls it once a row.
#[inline(always)]
fn set_cells_in_place(
    rowid: i64,
    row: &mut StoredRow,
    cells: &[(usize, Value)],
    width: usize,
    changed: &mut Option<BTreeSet<i64>>,
) {
    let row = row.cells_mut_to(width);
    for (i, value) in cells {
        row[*i].clone_from(value);
    }
    if let Some(changed) = changed {
        changed.insert(rowid);
    }
}

/// Sets `cells` of `row` (at `rowid`) in place, keeping the undo log and the changed
/// rows of its table.
fn set_row_cells(
    rowid: i64,
    row: &mut StoredRow,
    cells: &[(usize, Value)],
    undo: &mut Option<Undo>,
    changed: &mut Option<BTreeSet<i64>>,
) {
    // The row may end before a cell set here (see `stored_row`): it is extended first.
    let Some(undo) = undo else {
        set_cells_in_place(rowid, row, cells, width_of(cells), changed);
        return;
    };
    let undone = if let [(i, value)] = cells {
        let row = row.cells_mut_to(i + 1);
        Undone::Cell(rowid, *i, std::mem::replace(&mut row[*i], value.clone()))
    } else {
        let row = row.cells_mut_to(width_of(cells));
        let mut old = Vec::with_capacity(cells.len());
        for (i, value) in cells {
            old.push((*i, std::mem::replace(&mut row[*i], value.clone())));
        }
        Undone::Cells(rowid, old)
    };
    undo.rows.push(undone);
    if let Some(changed) = changed {
        changed.insert(rowid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::schema::{TABLES, table_def};
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

    /// Appends `n` change-log rows of one operation.
    fn log(db: &mut Database, n: usize, operation: &str) -> Result<(), TableError> {
        db.append_log("change_logs", n, |i, [_, op, table, id]| {
            *op = Value::Text(operation.into());
            *table = Value::Text("users".into());
            *id = Value::int(i as i128);
        })
    }

    fn log_ids(db: &Database) -> Vec<i64> {
        db.table("change_logs")
            .unwrap()
            .rows()
            .map(|(id, _)| id)
            .collect()
    }

    #[test]
    fn a_cell_set_from_a_text_or_another_cell_holds_it_whatever_it_held() {
        let long = CompactString::from("a text longer than the twenty-four bytes a cell keeps");
        let short = CompactString::from("modify");
        let holding = || {
            [
                Value::Null,
                Value::int(-7),
                Value::Text("users".into()),
                Value::Text(long.clone()),
            ]
        };
        for text in [&short, &long] {
            for mut cell in holding() {
                cell.set_text(text);
                assert_eq!(cell, Value::Text(text.clone()));
            }
        }
        for source in holding() {
            for mut cell in holding() {
                cell.clone_from(&source);
                assert_eq!(cell, source);
                assert_eq!(cell.clone(), source);
            }
        }
    }

    #[test]
    fn a_log_kept_as_a_ring_keeps_its_newest_entries() {
        let mut db = db();
        let ring = table_def("change_logs").unwrap().ring.unwrap();
        db.set_tracking(true);
        log(&mut db, ring - 2, "insert").unwrap();
        assert_eq!(db.table("change_logs").unwrap().len(), ring - 2);
        db.take_changes();
        // Five more: the three oldest go, ids go on from the newest.
        log(&mut db, 5, "update").unwrap();
        let ids = log_ids(&db);
        assert_eq!(ids.len(), ring);
        assert_eq!(ids.first(), Some(&4));
        assert_eq!(ids.last(), Some(&(ring as i64 + 3)));
        let log_table = db.table("change_logs").unwrap();
        let newest: &[Value] = log_table.row(ring as i64 + 3).unwrap();
        // The id, then the cells given, and no more: the rest read NULL.
        assert_eq!(
            newest,
            [
                Value::int(i128::from(ring as i64 + 3)),
                Value::Text("update".into()),
                Value::Text("users".into()),
                Value::int(4),
            ]
        );
        assert_eq!(
            log_table.cell(log_table.row(ring as i64 + 3).unwrap(), "timestamp"),
            &Value::Null
        );
        // The state file hears of the dropped entries as removed, of the new as stored.
        let changes = db.take_changes();
        let mut removed = Vec::new();
        let mut stored = Vec::new();
        for (id, row) in changes.iter().flat_map(|t| &t.rows) {
            if row.is_some() {
                stored.push(*id);
            } else {
                removed.push(*id);
            }
        }
        assert_eq!(removed, [1, 2, 3]);
        assert_eq!(
            stored,
            (ring as i64 - 1..=ring as i64 + 3).collect::<Vec<_>>()
        );
        // A table that is no ring keeps every row.
        assert!(table_def("users").unwrap().ring.is_none());
    }

    #[test]
    fn a_log_appended_inside_a_write_goes_with_it_and_otherwise_ends_alike() {
        let ring = table_def("change_logs").unwrap().ring.unwrap();
        let mut alone = db();
        log(&mut alone, ring, "insert").unwrap();
        let mut within = alone.clone();
        let before = contents(&within);
        // A write that fails takes its log rows with it, and the ring loses none.
        let failed: Result<(), TableError> = within.atomically(|db| {
            log(db, 7, "update")?;
            Err(TableError::ForeignKey)
        });
        assert!(failed.is_err());
        assert_eq!(contents(&within), before);
        // One that succeeds ends where the same rows appended alone do: the ring drops
        // its oldest rows when the write commits.
        within.atomically(|db| log(db, 7, "update")).unwrap();
        log(&mut alone, 7, "update").unwrap();
        assert_eq!(contents(&within), contents(&alone));
        assert_eq!(log_ids(&alone).first(), Some(&8));
        // Alone, a full ring gives each row appended its oldest row's buffer.
        assert_eq!(alone.table("change_logs").unwrap().spare_rows.len(), 0);
    }

    #[test]
    fn a_log_without_free_ids_is_left_as_it_was() {
        let mut db = db();
        log(&mut db, 3, "insert").unwrap();
        db.insert("change_logs", &rows(json!([{"id": i64::MAX - 1}])))
            .unwrap();
        let before = contents(&db);
        // One row fits under i64::MAX, two do not: the append is refused whole.
        assert!(matches!(
            log(&mut db, 2, "update"),
            Err(TableError::Unique(_))
        ));
        assert_eq!(contents(&db), before);
        log(&mut db, 1, "update").unwrap();
        assert_eq!(log_ids(&db).last(), Some(&i64::MAX));
        assert!(log(&mut db, 1, "update").is_err());
        // Nothing to append asks for no id.
        log(&mut db, 0, "update").unwrap();
    }

    #[test]
    fn cells_set_in_place_are_put_back_by_a_rollback() {
        let mut db = db();
        db.insert(
            "users",
            &rows(json!([{"id": 1, "name": "A", "registration": "r1"}, {"id": 2, "name": "B"}])),
        )
        .unwrap();
        let before = contents(&db);
        let t = db.table_mut("users").unwrap();
        let name = t.column_index("name").unwrap();
        let registration = t.column_index("registration").unwrap();
        t.begin();
        // One cell (kept without a list) and two cells, the first row written twice.
        assert!(t.set_cells(1, &[(name, Value::Text("X".into()))]));
        assert!(t.set_cells(
            2,
            &[
                (name, Value::Text("Y".into())),
                (registration, Value::Text("r2".into()))
            ]
        ));
        assert!(t.set_cells(1, &[(registration, Value::Null)]));
        assert!(!t.set_cells(3, &[(name, Value::Text("Z".into()))]));
        assert_ne!(contents(&db), before);
        db.table_mut("users").unwrap().rollback();
        assert_eq!(contents(&db), before);
    }

    #[test]
    fn a_taken_rowid_is_refused_below_and_at_the_largest() {
        let mut db = db();
        db.insert("users", &rows(json!([{"id": 5, "name": "A"}])))
            .unwrap();
        // The same id twice in one batch, and an id below the next rowid.
        for batch in [
            json!([{"id": 9, "name": "B"}, {"id": 9, "name": "C"}]),
            json!([{"id": 5, "name": "D"}]),
        ] {
            let err = db.insert("users", &rows(batch.clone())).unwrap_err();
            assert_eq!(err, TableError::Unique("users.id".into()), "{batch}");
        }
        // At i64::MAX the next rowid saturates: a row without id cannot take it again.
        db.insert("users", &rows(json!([{"id": i64::MAX, "name": "E"}])))
            .unwrap();
        let err = db
            .insert("users", &rows(json!([{"name": "F"}])))
            .unwrap_err();
        assert_eq!(err, TableError::Unique("users.id".into()));
        let names: Vec<_> = db
            .table("users")
            .unwrap()
            .rows()
            .map(|(id, r)| (id, r[2].clone()))
            .collect();
        assert_eq!(
            names,
            vec![
                (5, Value::Text("A".into())),
                (i64::MAX, Value::Text("E".into()))
            ]
        );
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
    fn integer_cells_keep_every_value_in_24_bytes() {
        let edges = [
            i128::from(i64::MIN),
            i128::from(i64::MIN) + 1,
            -1,
            0,
            1,
            i128::from(i64::MAX),
            i128::from(i64::MAX) + 1,
            i128::from(u64::MAX) - 1,
            i128::from(u64::MAX),
        ];
        for n in edges {
            assert_eq!(Integer::new(n).get(), n);
            assert_eq!(format!("{:?}", Value::int(n)), format!("Int({n})"));
            assert_eq!(Value::int(n).as_int(), Some(n));
        }
        for a in edges {
            for b in edges {
                assert_eq!(Value::int(a).sql_cmp(&Value::int(b)), a.cmp(&b), "{a} {b}");
                assert_eq!(Value::int(a) == Value::int(b), a == b, "{a} {b}");
            }
        }
        assert_eq!(std::mem::size_of::<Value>(), 24);
        assert_eq!(std::mem::align_of::<Value>(), 8);
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
    fn tracked_changes_list_each_row_as_it_is_now() {
        let mut d = db();
        assert!(d.take_changes().is_empty(), "untracked");
        d.set_tracking(true);
        d.insert(
            "users",
            &rows(json!([{"id": 1, "name": "A"}, {"id": 2, "name": "B"}])),
        )
        .unwrap();
        d.insert("cards", &rows(json!([{"value": 7, "user_id": 2}])))
            .unwrap();
        let _ = d.insert("users", &rows(json!([{"id": 3}, {"id": 1}])));
        d.delete("users", &[2]).unwrap();
        let changes = d.take_changes();
        let users = changes.iter().find(|c| c.table == "users").unwrap();
        assert_eq!(users.columns, None);
        let ids: Vec<(i64, bool)> = users
            .rows
            .iter()
            .map(|(id, r)| (*id, r.is_some()))
            .collect();
        // 3 was written and rolled back: listed as absent, which is what it is.
        assert_eq!(ids, vec![(1, true), (2, false), (3, false)]);
        let cards = changes.iter().find(|c| c.table == "cards").unwrap();
        assert!(cards.rows.iter().all(|(_, r)| r.is_none()), "cascaded");
        assert!(d.take_changes().is_empty());
        d.insert("c_users", &rows(json!([{"user_id": 1, "cpf": "x"}])))
            .unwrap();
        let c = d.take_changes();
        assert!(
            c[0].columns
                .as_ref()
                .is_some_and(|cols| cols.iter().any(|c| c.name == "cpf"))
        );
    }

    #[test]
    fn a_row_keeps_its_cells_up_to_the_last_one_written() {
        let mut db = db();
        db.set_tracking(true);
        db.insert(
            "users",
            &rows(json!([
                {"id": 1, "name": "Ana"},
                {"id": 2, "name": null, "registration": "r2"},
                {"id": 3, "end_time": 5},
            ])),
        )
        .unwrap();
        let width = |db: &Database, id| db.table("users").unwrap().rows.get(id).unwrap().len();
        // id, registration, name; id and registration; up to end_time (the seventh).
        assert_eq!((width(&db, 1), width(&db, 2), width(&db, 3)), (3, 2, 7));
        let users = db.table("users").unwrap();
        let ana = users.row_json(users.rows.get(1).unwrap());
        let columns = users.columns.len();
        assert_eq!(ana.len(), columns, "every column, NULL past the cells");
        assert_eq!(ana["name"], json!("Ana"));
        assert_eq!(ana["panic_salt"], Json::Null);
        // The state file still gets a cell per column.
        let changes = db.take_changes();
        let written = changes.iter().find(|c| c.table == "users").unwrap();
        assert!(
            written
                .rows
                .iter()
                .all(|(_, r)| r.as_ref().unwrap().len() == columns)
        );
        // A cell past the end is set in place, and a rollback puts the row back.
        let before = contents(&db);
        let values = |v: Json| v.as_object().unwrap().clone();
        db.update("users", &values(json!({"expires": 9})), &[1, 2])
            .unwrap();
        assert_eq!(width(&db, 1), 11);
        let t = db.table_mut("users").unwrap();
        let expires = t.column_index("expires").unwrap();
        assert_eq!(t.rows.get(2).unwrap()[expires], Value::int(9));
        t.begin();
        let panic_salt = t.column_index("panic_salt").unwrap();
        assert!(t.set_cells(1, &[(panic_salt, Value::Text("s".into()))]));
        t.rollback();
        assert_eq!(width(&db, 1), 11);
        // The general update (a new id) keeps no NULLs at the end either.
        db.update("users", &values(json!({"id": 30, "expires": null})), &[3])
            .unwrap();
        assert_eq!(width(&db, 30), 7);
        assert_ne!(contents(&db), before);
    }

    #[test]
    fn an_update_outside_a_write_is_set_in_place_and_one_inside_is_undone_with_it() {
        let mut db = db();
        db.insert(
            "users",
            &rows(json!([{"id": 1, "name": "A"}, {"id": 2, "name": "B"}, {"id": 3}])),
        )
        .unwrap();
        let values = |v: Json| v.as_object().unwrap().clone();
        // Outside a write: set in place, rows there are counted, no undo log kept.
        let renamed = db.update("users", &values(json!({"name": "X"})), &[3, 1, 7]);
        assert_eq!(renamed, Ok(2));
        let name = |db: &Database, id: i64| {
            let users = db.table("users").unwrap();
            users.cell(users.row(id).unwrap(), "name").clone()
        };
        assert_eq!(name(&db, 1), Value::Text("X".into()));
        assert_eq!(name(&db, 3), Value::Text("X".into()));
        assert_eq!(name(&db, 2), Value::Text("B".into()));
        assert!(db.table("users").unwrap().undo.is_none());
        // A value of the wrong type changes nothing, the other member included.
        let before = contents(&db);
        let err = db
            .update("users", &values(json!({"name": "Y", "expires": "x"})), &[1])
            .unwrap_err();
        assert!(matches!(err, TableError::Member(_)), "{err:?}");
        assert_eq!(contents(&db), before);
        // Inside a write that fails later, the update is put back with it.
        let failed: Result<(), TableError> = db.atomically(|db| {
            db.update("users", &values(json!({"name": "Z"})), &[1, 2])?;
            assert_eq!(name(db, 2), Value::Text("Z".into()));
            Err(TableError::ForeignKey)
        });
        assert_eq!(failed, Err(TableError::ForeignKey));
        assert_eq!(contents(&db), before);
        // A column an open table lacks goes the general way: added, and kept, unless the
        // write fails.
        db.insert("c_users", &rows(json!([{"user_id": 1, "cpf": "1"}])))
            .unwrap();
        let rowid = db.table("c_users").unwrap().rows().next().unwrap().0;
        let before = contents(&db);
        let columns = db.table("c_users").unwrap().columns().len();
        db.update(
            "c_users",
            &values(json!({"rg": "2", "user_id": "x"})),
            &[rowid],
        )
        .unwrap_err();
        assert_eq!(db.table("c_users").unwrap().columns().len(), columns);
        assert_eq!(contents(&db), before);
        db.update("c_users", &values(json!({"rg": "2"})), &[rowid])
            .unwrap();
        let c_users = db.table("c_users").unwrap();
        let row = c_users.row(rowid).unwrap();
        assert_eq!(c_users.cell(row, "rg"), &Value::Text("2".into()));
    }

    #[test]
    fn rows_of_a_batch_land_in_their_columns_whatever_columns_they_name_and_in_what_order() {
        // Each row's columns are tried first where the row before found its own: rows
        // naming other columns, or the same in another order, must not be misplaced.
        use crate::device::written::RowsRequest;
        let mut db = db();
        let text = br#"{"object": "users", "values": [
            {"id": 1, "name": "a", "registration": "r1"},
            {"registration": "r2", "name": "b", "id": 2},
            {"name": "c"},
            {"id": 4},
            {"id": 5, "registration": "r5", "begin_time": 7, "name": "e"},
            {"id": 6, "name": "f", "registration": "r6"}]}"#;
        let request = RowsRequest::read(text, 10).unwrap();
        assert_eq!(
            db.insert("users", &request.rows()).unwrap(),
            [1, 2, 3, 4, 5, 6]
        );
        let users = db.table("users").unwrap();
        let cells = |id: i64| {
            let row = users.row(id).unwrap();
            ["name", "registration", "begin_time"].map(|c| users.cell(row, c).clone())
        };
        let text = |s: &str| Value::Text(s.into());
        assert_eq!(cells(1), [text("a"), text("r1"), Value::Null]);
        assert_eq!(cells(2), [text("b"), text("r2"), Value::Null]);
        assert_eq!(cells(3), [text("c"), Value::Null, Value::Null]);
        assert_eq!(cells(4), [Value::Null, Value::Null, Value::Null]);
        assert_eq!(cells(5), [text("e"), text("r5"), Value::int(7)]);
        assert_eq!(cells(6), [text("f"), text("r6"), Value::Null]);

        // An open table gains columns from the middle of a batch on.
        let text_of = br#"{"object": "c_users", "values": [
            {"user_id": 1, "cpf": "1"}, {"user_id": 2, "rg": "x"},
            {"rg": "y", "user_id": 3, "cpf": "3"}]}"#;
        let request = RowsRequest::read(text_of, 10).unwrap();
        let rowids = db.insert("c_users", &request.rows()).unwrap();
        let c_users = db.table("c_users").unwrap();
        let got: Vec<_> = rowids
            .iter()
            .map(|&r| {
                let row = c_users.row(r).unwrap();
                ["user_id", "cpf", "rg"].map(|c| c_users.cell(row, c).clone())
            })
            .collect();
        assert_eq!(
            got,
            [
                [Value::int(1), text("1"), Value::Null],
                [Value::int(2), Value::Null, text("x")],
                [Value::int(3), text("3"), text("y")],
            ]
        );

        // A column unknown to a closed table in a later row fails the batch, which
        // stores nothing.
        let unknown = br#"{"object": "users", "values": [
            {"id": 7, "name": "g"}, {"id": 8, "name": "h"}, {"name": "i", "cpf": "1"}]}"#;
        let request = RowsRequest::read(unknown, 10).unwrap();
        let err = db.insert("users", &request.rows()).unwrap_err();
        assert_eq!(err.to_string(), "table users has no column named cpf");
        assert_eq!(db.table("users").unwrap().rows().count(), 6);
    }

    #[test]
    fn rows_built_before_the_lock_fit_only_a_table_of_its_definitions_columns() {
        use crate::device::built_rows::BuiltRows;
        use crate::device::written::RowsRequest;
        let text = br#"{"object": "users", "values": [{"name": "a", "registration": "r"}]}"#;
        let request = RowsRequest::read(text, 10).unwrap();
        let def = table_def("users").unwrap();
        let mut db = db();
        assert!(db.table("users").unwrap().has_its_definitions_columns());
        let built = BuiltRows::build(def, &request.rows()).unwrap();
        assert_eq!(db.insert_built(built).unwrap(), [1]);
        let users = db.table("users").unwrap();
        let row = users.row(1).unwrap();
        assert_eq!(users.cell(row, "name"), &Value::Text("a".into()));
        assert_eq!(users.cell(row, "registration"), &Value::Text("r".into()));

        // A state file whose users have their columns in another order: rows built from
        // the definition would put each cell under another column.
        let mut columns = users.columns().to_vec();
        columns.swap(1, 2);
        db.restore_table("users", columns, BTreeMap::new()).unwrap();
        assert!(!db.table("users").unwrap().has_its_definitions_columns());
        let columns = Table::new(def).columns().to_vec();
        db.restore_table("users", columns, BTreeMap::new()).unwrap();
        assert!(db.table("users").unwrap().has_its_definitions_columns());

        // An open table that gained a column.
        let custom = table_def("c_users").unwrap();
        assert!(BuiltRows::build(custom, &request.rows()).is_none());
        db.insert("users", &rows(json!([{"id": 1}]))).unwrap();
        assert!(db.table("c_users").unwrap().has_its_definitions_columns());
        db.insert("c_users", &rows(json!([{"user_id": 1, "cpf": "1"}])))
            .unwrap();
        assert!(!db.table("c_users").unwrap().has_its_definitions_columns());
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

    /// One write of the property test below; ids and values come from small ranges so
    /// that writes collide (unique values, missing users, re-pointed ids).
    #[derive(Debug, Clone)]
    enum Write {
        Users(Vec<i64>),
        Card(i64, i64),
        Rule(i64),
        Link(i64, i64),
        Renumber(i64, i64),
        Upsert(Vec<(i64, i64)>),
        Delete(&'static str, Vec<i64>),
        Column(i64),
    }

    fn write() -> impl proptest::strategy::Strategy<Value = Write> {
        use proptest::prelude::*;
        let id = || 1_i64..8;
        prop_oneof![
            prop::collection::vec(id(), 1..4).prop_map(Write::Users),
            (id(), id()).prop_map(|(v, u)| Write::Card(v, u)),
            id().prop_map(Write::Rule),
            (id(), id()).prop_map(|(u, r)| Write::Link(u, r)),
            (id(), id()).prop_map(|(a, b)| Write::Renumber(a, b)),
            prop::collection::vec((id(), id()), 1..4).prop_map(Write::Upsert),
            (
                prop::sample::select(vec!["users", "cards", "access_rules"]),
                prop::collection::vec(id(), 1..3)
            )
                .prop_map(|(t, ids)| Write::Delete(t, ids)),
            id().prop_map(Write::Column),
        ]
    }

    fn apply(db: &mut Database, w: &Write) -> Result<(), TableError> {
        match w {
            Write::Users(ids) => {
                let r: Vec<Json> = ids.iter().map(|i| json!({"id": i, "name": "u"})).collect();
                db.insert("users", &rows(Json::Array(r))).map(drop)
            }
            Write::Card(v, u) => db
                .insert("cards", &rows(json!([{"value": v, "user_id": u}])))
                .map(drop),
            Write::Rule(id) => db
                .insert("access_rules", &rows(json!([{"id": id, "name": "r"}])))
                .map(drop),
            Write::Link(u, r) => db
                .insert(
                    "user_access_rules",
                    &rows(json!([{"user_id": u, "access_rule_id": r}])),
                )
                .map(drop),
            Write::Renumber(from, to) => {
                let values = json!({"id": to});
                db.update("users", values.as_object().unwrap(), &[*from])
                    .map(drop)
            }
            Write::Upsert(links) => {
                let r: Vec<Json> = links
                    .iter()
                    .map(|(u, r)| json!({"user_id": u, "access_rule_id": r}))
                    .collect();
                db.upsert("user_access_rules", &rows(Json::Array(r)))
                    .map(drop)
            }
            Write::Delete(table, ids) => db.delete(table, ids).map(drop),
            Write::Column(u) => db
                .insert("c_users", &rows(json!([{"user_id": u, "extra": 1}])))
                .map(drop),
        }
    }

    fn contents(db: &Database) -> Vec<(usize, BTreeMap<i64, Vec<Value>>)> {
        db.tables
            .values()
            .map(|t| {
                // Rows compared as they read: NULLs past a row's cells are not kept.
                let rows = t
                    .rows
                    .iter()
                    .map(|(id, r)| (id, trimmed(r.to_vec())))
                    .collect();
                (t.columns.len(), rows)
            })
            .collect()
    }

    #[test]
    fn indexes_follow_every_write_and_failed_writes_change_nothing() {
        use proptest::prelude::*;
        proptest!(|(writes in prop::collection::vec(write(), 1..40))| {
            let mut db = db();
            for w in &writes {
                let before = contents(&db);
                if apply(&mut db, w).is_err() {
                    prop_assert_eq!(&contents(&db), &before, "a failed {:?} left changes", w);
                }
                for t in db.tables.values() {
                    let mut rebuilt = t.clone();
                    rebuilt.build_indexes();
                    prop_assert_eq!(&t.indexes, &rebuilt.indexes, "{} after {:?}", t.name(), w);
                    prop_assert!(t.undo.is_none());
                }
            }
        });
    }
}
