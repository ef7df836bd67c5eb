//! `load_objects` queries and the `where` clauses of modify/destroy (docs/device-api.md §3.1–3.2):
//! both `where` forms, the operators, connectors with parenthesised groups, `fields` with
//! `COUNT(*)` and joined columns, `order` with ascending/descending tokens, `limit`/`offset`.
//!
//! Semantics follow the SQLite database the firmware uses: NULL compares as unknown,
//! values are coerced by column affinity (`"5"` matches integer 5), NULLs sort first,
//! rows come in rowid order unless ordered otherwise, and `LIKE` is ASCII
//! case-insensitive with `%` and `_` wildcards. Another table named in `where`, `fields`
//! or `order` is joined through the foreign keys between the two tables.

use foldhash::HashMap;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::LazyLock;

use serde_json::{Map, Value as Json};

use super::schema::ColumnType;
use super::stored_row::StoredRow;
use super::table::{Database, PrintedNames, Table, TableError, Value};
use crate::wire::{MemberError, Members, json_integer};

/// The most values an `IN` list may carry (SQLite's variable limit on the device).
pub const MAX_IN_VALUES: usize = 999;

/// Runs a `load_objects` request and returns the rows (already shaped as JSON objects).
pub fn load(db: &Database, request: Members<'_>) -> Result<Vec<Map<String, Json>>, TableError> {
    Ok(select(db, request)?.into_json_rows())
}

/// The rows a `load_objects` answers: the names of its columns, and for each row one
/// cell per name (borrowed from the tables, or computed: a `COUNT(*)`).
#[derive(Debug)]
pub struct Page<'db> {
    names: Vec<Cow<'db, str>>,
    rows: Vec<Cells<'db>>,
    /// The names printed as members start (`print_names`), when the table keeps them:
    /// every column of the main table.
    printed_names: Option<&'db PrintedNames>,
}

/// One row of a page: a stored row when every column of the main table is asked for (no
/// copy), or the cells picked for the names.
#[derive(Debug)]
enum Cells<'db> {
    /// The main table's row as stored, its columns in order (NULL past its cells).
    Whole(&'db StoredRow),
    /// One cell per name.
    Picked(Vec<Cow<'db, Value>>),
}

impl<'db> Cells<'db> {
    /// The cell of name `i`.
    fn get(&self, i: usize) -> &Value {
        match self {
            Cells::Whole(row) => row.get(i).unwrap_or(&NULL),
            Cells::Picked(cells) => cells.get(i).map_or(&NULL, |c| c),
        }
    }

    /// One cell per name, `names` of them.
    fn into_picked(self, names: usize) -> Vec<Cow<'db, Value>> {
        match self {
            Cells::Whole(row) => (0..names)
                .map(|i| Cow::Borrowed(row.get(i).unwrap_or(&NULL)))
                .collect(),
            Cells::Picked(cells) => cells,
        }
    }
}

impl Page<'_> {
    /// The rows as JSON objects.
    pub fn into_json_rows(self) -> Vec<Map<String, Json>> {
        let names = self.names;
        self.rows
            .into_iter()
            .map(|row| {
                names
                    .iter()
                    .enumerate()
                    .map(|(i, name)| (name.to_string(), row.get(i).to_json()))
                    .collect()
            })
            .collect()
    }

    /// Prints the reply `{"<table>": [rows]}` into `out`, byte for byte what printing its
    /// JSON with `serde_json` gives (members in column order), without building it; and
    /// says whether the journal finds a secret to mask in it ([`SecretRule`]). A stored
    /// row printed whole keeps that answer with its text.
    pub fn print_reply(&self, table: &str, out: &mut Vec<u8>) -> bool {
        let rule = SecretRule::of(&self.names, table);
        // Each member's start printed once, copied into every row (see `print_names`).
        let printed;
        let (quoted, ends) = match self.printed_names {
            Some((quoted, ends)) if ends.len() == self.names.len() => (quoted, ends),
            _ => {
                printed = print_names(self.names.iter().map(|n| n.as_ref()));
                (&printed.0, &printed.1)
            }
        };
        // Room for the names, and a few bytes a cell: one allocation for most replies.
        out.reserve(table.len() + 8 + self.rows.len() * (quoted.len() + 6 * ends.len() + 3));
        out.push(b'{');
        print_str(table, out);
        out.extend_from_slice(b":[");
        let mut secret = rule.always;
        for (i, row) in self.rows.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match row {
                // A stored row (NULL past its cells) prints the same whichever reply
                // prints it whole: the row keeps its text (see `stored_row`), and whether
                // it holds a secret (the rule is the same for every such reply: the
                // names are the table's columns).
                Cells::Whole(row) if row.len() <= ends.len() => {
                    let (text, holds) = row.printed(|cells| {
                        let cell = |j: usize| cells.get(j).unwrap_or(&NULL);
                        let mut text = Vec::with_capacity(quoted.len() + 6 * ends.len() + 2);
                        print_object(cell, quoted, ends, &mut text);
                        (text, rule.in_row(cell))
                    });
                    out.extend_from_slice(text);
                    secret |= holds;
                }
                _ => {
                    print_object(|j| row.get(j), quoted, ends, out);
                    secret = secret || rule.in_row(|j| row.get(j));
                }
            }
        }
        out.extend_from_slice(b"]}");
        secret
    }

    /// Whether the journal finds a secret to mask in the reply (what
    /// [`Page::print_reply`] says), row by row without printing.
    #[cfg(test)]
    fn holds_secret(&self, table: &str) -> bool {
        let rule = SecretRule::of(&self.names, table);
        rule.always || self.rows.iter().any(|row| rule.in_row(|j| row.get(j)))
    }
}

/// Whether the journal finds a secret to mask in a reply `{"<table>": [rows]}` of rows
/// with the given member names (the rules of `journal::redact`, applied to the cells): a
/// member named like a secret that is not null, or a PIN: the `value` of a `pins` row,
/// or of a row that reads as a where clause on `pins.value` (open tables may have such
/// columns). The names' places are found once; a row is then looked at in those cells
/// only (users rows have four, most replies none).
struct SecretRule {
    /// The table itself is named like a secret: every reply holds one.
    always: bool,
    /// The names like a secret's.
    secret_slots: Vec<usize>,
    value: Option<usize>,
    field: Option<usize>,
    object: Option<usize>,
    pins: bool,
}

impl SecretRule {
    fn of(names: &[Cow<'_, str>], table: &str) -> SecretRule {
        let slot = |name: &str| names.iter().position(|n| n == name);
        SecretRule {
            always: crate::journal::secret_member(table),
            secret_slots: (0..names.len())
                .filter(|&i| crate::journal::secret_member(&names[i]))
                .collect(),
            value: slot("value"),
            field: slot("field"),
            object: slot("object"),
            pins: table == "pins",
        }
    }

    /// Whether the row whose cell of name `j` is `cell(j)` holds a secret.
    fn in_row<'c>(&self, cell: impl Fn(usize) -> &'c Value) -> bool {
        if self
            .secret_slots
            .iter()
            .any(|&i| !matches!(cell(i), Value::Null))
        {
            return true;
        }
        if self.value.is_none_or(|v| matches!(cell(v), Value::Null)) {
            return false;
        }
        let is_text = |cell: &Value, text: &str| matches!(cell, Value::Text(t) if t == text);
        match self.field {
            Some(field) => {
                self.object.is_some_and(|o| is_text(cell(o), "pins"))
                    && is_text(cell(field), "value")
            }
            None => self.pins,
        }
    }
}

/// How a NULL cell prints.
const NULL_TEXT: &[u8] = b"null";

/// Prints one row as a JSON object: the cell of each name (`cell(j)`) after that name's
/// start (`quoted` up to `ends[j]`, see `print_names`).
fn print_object<'c>(
    cell: impl Fn(usize) -> &'c Value,
    quoted: &[u8],
    ends: &[usize],
    out: &mut Vec<u8>,
) {
    out.push(b'{');
    let mut start = 0;
    for (j, &end) in ends.iter().enumerate() {
        let cell = cell(j);
        if matches!(cell, Value::Null) {
            out.extend_from_slice(&quoted[start..end + NULL_TEXT.len()]);
        } else {
            out.extend_from_slice(&quoted[start..end]);
            print_value(cell, out);
        }
        start = end + NULL_TEXT.len();
    }
    out.push(b'}');
}

/// Each name as a member's start, one after the other: `"name":null` for the first,
/// `,"name":null` for the others, and where each ends before its `null` – so that a NULL
/// member is one copy, and any other its start and its value.
fn print_names<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> PrintedNames {
    let mut quoted = Vec::new();
    let mut ends = Vec::with_capacity(names.len());
    for (j, name) in names.enumerate() {
        if j > 0 {
            quoted.push(b',');
        }
        print_str(name, &mut quoted);
        quoted.push(b':');
        ends.push(quoted.len());
        quoted.extend_from_slice(NULL_TEXT);
    }
    (quoted, ends)
}

/// A JSON string as `serde_json` prints it: as is between quotes when nothing in it
/// needs escaping (no quote, backslash or control character), else escaped by
/// `serde_json`.
fn print_str(text: &str, out: &mut Vec<u8>) {
    if !needs_escape(text.as_bytes()) {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

/// Whether JSON needs an escape for any of `bytes`: a control character, `"` or `\\`.
/// Eight bytes at a time (a word holds one when a lane of `word - 0x20…` borrows, or
/// a lane of `word ^ '"'…` or `word ^ '\\'…` is zero), the rest one by one.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Whether a lane of `x` is below `n` (n <= 0x80): a borrow into its high bit, not
    // counting lanes whose high bit was set already.
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let hit = below(word, 0x20)
            | below(word ^ (ONES * u64::from(b'"')), 1)
            | below(word ^ (ONES * u64::from(b'\\')), 1);
        if hit != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// A cell as `serde_json` prints [`Value::to_json`] of it.
fn print_value(cell: &Value, out: &mut Vec<u8>) {
    match cell {
        Value::Null => out.extend_from_slice(NULL_TEXT),
        Value::Int(n) => {
            let n = n.get();
            let mut digits = itoa::Buffer::new();
            let text = if let Ok(v) = i64::try_from(n) {
                digits.format(v)
            } else if let Ok(v) = u64::try_from(n) {
                digits.format(v)
            } else {
                digits.format(if n < 0 { i64::MIN } else { i64::MAX })
            };
            out.extend_from_slice(text.as_bytes());
        }
        Value::Text(s) => print_str(s, out),
    }
}

/// Runs a `load_objects` request: the rows of the page asked for.
pub fn select<'db>(db: &'db Database, request: Members<'_>) -> Result<Page<'db>, TableError> {
    let object = request.string("object")?;
    let mut ctx = Context::new(db, object)?;
    let selection = parse_fields(&mut ctx, request.opt_array("fields")?)?;
    let filter = match request.get("where") {
        None | Some(Json::Null) => None,
        Some(w) => parse_where(&mut ctx, w)?,
    };
    let (order, descending) = parse_order(&mut ctx, request.opt_array("order")?)?;
    let inner = match request.opt_string("join")? {
        None => false,
        Some(j) if j.eq_ignore_ascii_case("LEFT") => false,
        Some(j) if j.eq_ignore_ascii_case("INNER") => true,
        Some(other) => return Err(TableError::Syntax(other.to_owned())),
    };
    let limit = opt_int64(&request, "limit")?;
    let offset = opt_int64(&request, "offset")?.unwrap_or(0).max(0);

    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    let limit = limit
        .filter(|l| *l >= 0)
        .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let shape = Shape::of(&ctx, selection);
    let rows = if order.is_empty() {
        ctx.page_in_rowid_order(filter.as_ref(), inner, &shape, offset, limit)
    } else {
        let mut combos = ctx.matching_combos(filter.as_ref(), inner);
        combos.sort_by(|a, b| {
            let ord = order
                .iter()
                .map(|c| ctx.cell(a, *c).sql_cmp(ctx.cell(b, *c)))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal);
            if descending { ord.reverse() } else { ord }
        });
        let main_row = |c: &Combo| c[0].and_then(|id| ctx.main.row(id)).unwrap_or(&*NO_ROW);
        if shape.count {
            let first = combos.first().map(|c| shape.cells(&ctx, c, main_row(c)));
            shape
                .count_row(combos.len(), first)
                .into_iter()
                .skip(offset)
                .take(limit)
                .collect()
        } else {
            // Only the rows of the page asked for are projected.
            combos
                .iter()
                .skip(offset)
                .take(limit)
                .map(|c| shape.cells(&ctx, c, main_row(c)))
                .collect()
        }
    };
    let printed_names = shape.whole.then(|| {
        ctx.main
            .printed_names(|columns| print_names(columns.iter().map(|c| c.name.as_str())))
    });
    Ok(Page {
        names: shape.names,
        rows,
        printed_names,
    })
}

/// The columns of a reply: their names (each once, in the order first asked for; a
/// name asked for again keeps its place, as a JSON object's member does) and where each
/// cell comes from.
struct Shape<'db> {
    names: Vec<Cow<'db, str>>,
    /// Per column asked for: its place among `names` and where it comes from.
    sources: Vec<(usize, ColRef)>,
    /// A `COUNT(*)`: one row, the count first.
    count: bool,
    /// Every column of the main table, in order: a row's cells are the stored row.
    whole: bool,
}

impl<'db> Shape<'db> {
    fn of(ctx: &Context<'db>, selection: Selection<'db>) -> Shape<'db> {
        let (count, fields) = match selection {
            Selection::All => {
                // Every column once, in table order: no name repeats.
                let columns = ctx.main.columns();
                return Shape {
                    names: columns
                        .iter()
                        .map(|c| Cow::Borrowed(c.name.as_str()))
                        .collect(),
                    sources: (0..columns.len())
                        .map(|column| (column, ColRef { source: 0, column }))
                        .collect(),
                    count: false,
                    whole: true,
                };
            }
            Selection::Fields(fields) => (false, fields),
            Selection::Count(extra) => (true, extra),
        };
        let mut shape = Shape {
            names: Vec::with_capacity(fields.len() + usize::from(count)),
            sources: Vec::with_capacity(fields.len()),
            count,
            whole: false,
        };
        if count {
            shape.names.push(Cow::Borrowed("COUNT(*)"));
        }
        for (name, col) in fields {
            let slot = match shape.names.iter().position(|n| *n == name) {
                Some(slot) => slot,
                None => {
                    shape.names.push(name);
                    shape.names.len() - 1
                }
            };
            shape.sources.push((slot, col));
        }
        shape
    }

    /// The cells of one matched combination.
    fn cells(
        &self,
        ctx: &Context<'db>,
        combo: &[Option<i64>],
        main_row: &'db StoredRow,
    ) -> Cells<'db> {
        if self.whole {
            return Cells::Whole(main_row);
        }
        let mut cells = vec![Cow::Borrowed(&NULL); self.names.len()];
        for (slot, col) in &self.sources {
            cells[*slot] = Cow::Borrowed(ctx.cell_in(combo, main_row, *col));
        }
        Cells::Picked(cells)
    }

    /// The one row a `COUNT(*)` answers: the count, then any other field asked for, taken
    /// from the first matching row (NULL when none matched).
    fn count_row(&self, count: usize, first: Option<Cells<'db>>) -> Option<Cells<'db>> {
        let names = self.names.len();
        let mut row = first.map_or_else(
            || vec![Cow::Borrowed(&NULL); names],
            |cells| cells.into_picked(names),
        );
        // The count's own place, unless a column of that name took it over.
        if !self.sources.iter().any(|(slot, _)| *slot == 0)
            && let Some(cell) = row.first_mut()
        {
            *cell = Cow::Owned(Value::int(count as i128));
        }
        Some(Cells::Picked(row))
    }
}

/// The rowids of `table` matched by a `where` member (all rows when it is absent), in
/// rowid order: what modify/destroy act on.
pub fn matching_rowids(
    db: &Database,
    table: &str,
    filter: Option<&Json>,
) -> Result<Vec<i64>, TableError> {
    if let Some(id) = filter.and_then(|f| pinned_id(table, f))
        && let Ok(t) = db.table(table)
        && t.has_id()
    {
        return Ok(t.row(id).map(|_| vec![id]).unwrap_or_default());
    }
    filtered_rowids(db, table, filter)
}

/// The id a `where` of the shape a sync writes one row with, `{"<table>": {"id": n}}`
/// with `n` an integer, pins: the one row it matches in a table keyed by `id`, found
/// without building the filter (what the general way comes to for it).
fn pinned_id(table: &str, filter: &Json) -> Option<i64> {
    let Json::Object(tables) = filter else {
        return None;
    };
    let (name, Json::Object(columns)) = tables.iter().next()? else {
        return None;
    };
    let (column, value) = columns.iter().next()?;
    (tables.len() == 1 && name == table && columns.len() == 1 && column == "id")
        .then(|| value.as_i64())
        .flatten()
}

/// [`matching_rowids`] the general way.
fn filtered_rowids(
    db: &Database,
    table: &str,
    filter: Option<&Json>,
) -> Result<Vec<i64>, TableError> {
    let mut ctx = Context::new(db, table)?;
    let filter = match filter {
        None | Some(Json::Null) => None,
        Some(w) => parse_where(&mut ctx, w)?,
    };
    if let Some(ids) = ctx.rowids_in_id_range(filter.as_ref()) {
        return Ok(ids);
    }
    let mut ids: Vec<i64> = Vec::new();
    ctx.each_match(filter.as_ref(), false, |combo, _| {
        ids.extend(combo[0]);
        true
    });
    ids.dedup();
    Ok(ids)
}

fn opt_int64(request: &Members<'_>, name: &str) -> Result<Option<i64>, TableError> {
    match request.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => json_integer(v)
            .map(|n| Some(n.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64))
            .ok_or_else(|| MemberError::new(name, "int", Some(v)).into()),
    }
}

/// The rows of the main table a filter may match, with their rowids.
type Candidates<'db> = Box<dyn Iterator<Item = (i64, &'db StoredRow)> + 'db>;

/// A column of the main table (source 0) or of a joined table (source ≥ 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ColRef {
    source: usize,
    column: usize,
}

/// How a joined table relates to the main table.
#[derive(Debug)]
enum Relation {
    /// main.`column` references joined.id.
    Parent { main_column: usize },
    /// joined.`column` references main.id: rows by main id.
    Child { by_main_id: HashMap<i128, Vec<i64>> },
    /// A link table connects them: joined ids by main id.
    Via { by_main_id: HashMap<i128, Vec<i64>> },
}

#[derive(Debug)]
struct Join<'db> {
    table: &'db Table,
    relation: Relation,
}

/// One result row before projection: a rowid per source (None = LEFT JOIN miss).
type Combo = Vec<Option<i64>>;

/// The cell of a missing row or column.
static NULL: Value = Value::Null;

/// The row of a missing rowid: no cells.
static NO_ROW: LazyLock<StoredRow> = LazyLock::new(StoredRow::empty);

struct Context<'db> {
    db: &'db Database,
    main: &'db Table,
    joins: Vec<Join<'db>>,
}

impl<'db> Context<'db> {
    fn new(db: &'db Database, table: &str) -> Result<Self, TableError> {
        Ok(Context {
            db,
            main: db.table(table)?,
            joins: Vec::new(),
        })
    }

    fn source(&self, i: usize) -> &'db Table {
        if i == 0 {
            self.main
        } else {
            self.joins[i - 1].table
        }
    }

    fn cell(&self, combo: &[Option<i64>], col: ColRef) -> &'db Value {
        combo[col.source]
            .and_then(|rowid| self.source(col.source).row(rowid))
            .and_then(|row| row.get(col.column))
            .unwrap_or(&NULL)
    }

    /// [`Context::cell`] when the main table's row is at hand (no lookup for its cells).
    fn cell_in(&self, combo: &[Option<i64>], main_row: &'db [Value], col: ColRef) -> &'db Value {
        if col.source == 0 {
            main_row.get(col.column).unwrap_or(&NULL)
        } else {
            self.cell(combo, col)
        }
    }

    /// Whether a combination passes the filter (no filter passes everything).
    fn passes(&self, filter: Option<&Expr>, combo: &[Option<i64>], main_row: &'db [Value]) -> bool {
        filter.is_none_or(|f| f.eval(&|col| self.cell_in(combo, main_row, col)) == Some(true))
    }

    fn column_type(&self, col: ColRef) -> ColumnType {
        self.source(col.source).columns()[col.column].ty
    }

    /// Resolves `[table.]column`, joining `table` when it is not the main one.
    fn resolve(&mut self, table: Option<&str>, column: &str) -> Result<ColRef, TableError> {
        let (table, column) = match (table, column.split_once('.')) {
            (None, Some((t, c))) => (Some(t), c),
            _ => (table, column),
        };
        let qualified = || match table {
            Some(t) => format!("{t}.{column}"),
            None => column.to_owned(),
        };
        let source = match table {
            None => 0,
            Some(t) if t == self.main.name() => 0,
            Some(t) => self.join(t)?,
        };
        let column = self
            .source(source)
            .column_index(column)
            .ok_or_else(|| TableError::NoSuchColumn(qualified()))?;
        Ok(ColRef { source, column })
    }

    fn join(&mut self, name: &str) -> Result<usize, TableError> {
        if let Some(i) = self.joins.iter().position(|j| j.table.name() == name) {
            return Ok(i + 1);
        }
        let other = self.db.table(name)?;
        let main = self.main;
        let relation = if let Some(fk) = main
            .def()
            .foreign_keys
            .iter()
            .find(|fk| fk.references == name)
        {
            Relation::Parent {
                main_column: main.column_index(fk.column).unwrap_or_default(),
            }
        } else if let Some(fk) = other
            .def()
            .foreign_keys
            .iter()
            .find(|fk| fk.references == main.name())
        {
            let col = other.column_index(fk.column).unwrap_or_default();
            let mut by_main_id: HashMap<i128, Vec<i64>> = HashMap::default();
            for (rowid, row) in other.rows() {
                if let Some(Value::Int(v)) = row.get(col) {
                    by_main_id.entry(v.get()).or_default().push(rowid);
                }
            }
            Relation::Child { by_main_id }
        } else if let Some((link, a, b)) = self.link_between(main.name(), name) {
            let mut by_main_id: HashMap<i128, Vec<i64>> = HashMap::default();
            for (_, row) in link.rows() {
                if let (Some(Value::Int(m)), Some(Value::Int(o))) = (row.get(a), row.get(b))
                    && let Ok(o) = i64::try_from(o.get())
                {
                    by_main_id.entry(m.get()).or_default().push(o);
                }
            }
            Relation::Via { by_main_id }
        } else {
            return Err(TableError::NoSuchColumn(format!("{name}.id")));
        };
        self.joins.push(Join {
            table: other,
            relation,
        });
        Ok(self.joins.len())
    }

    fn link_between(&self, a: &str, b: &str) -> Option<(&'db Table, usize, usize)> {
        self.db.tables().find_map(|link| {
            let fa = link
                .def()
                .foreign_keys
                .iter()
                .find(|fk| fk.references == a)?;
            let fb = link
                .def()
                .foreign_keys
                .iter()
                .find(|fk| fk.references == b)?;
            Some((
                link,
                link.column_index(fa.column)?,
                link.column_index(fb.column)?,
            ))
        })
    }

    fn related(&self, join: &Join<'db>, main_row: &[Value], main_rowid: i64) -> Vec<i64> {
        match &join.relation {
            Relation::Parent { main_column } => match main_row.get(*main_column) {
                Some(Value::Int(id)) => i64::try_from(id.get())
                    .ok()
                    .filter(|id| join.table.row(*id).is_some())
                    .into_iter()
                    .collect(),
                _ => Vec::new(),
            },
            Relation::Child { by_main_id } | Relation::Via { by_main_id } => by_main_id
                .get(&i128::from(main_rowid))
                .map(|ids| {
                    ids.iter()
                        .copied()
                        .filter(|id| join.table.row(*id).is_some())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The rows a filter pins the main table to with `=` or `IN` of integers at its top
    /// level, on `id` or on a column with an index of its own (a foreign key such as
    /// `user_id`): only those rows can match, so they are looked up instead of scanned.
    fn pinned_ids(&self, filter: Option<&Expr>) -> Option<Vec<i64>> {
        let id = self
            .main
            .has_id()
            .then(|| self.main.column_index("id"))
            .flatten();
        let tests: Vec<&Expr> = match filter? {
            Expr::And(items) => items.iter().collect(),
            other => vec![other],
        };
        tests.into_iter().find_map(|e| match e {
            Expr::Test {
                col,
                op: Op::Eq | Op::In,
                values,
            } if col.source == 0 => {
                let mut ids = Vec::new();
                for value in values {
                    let Value::Int(n) = value else {
                        return None;
                    };
                    if Some(col.column) == id {
                        ids.push(i64::try_from(n.get()).ok()?);
                    } else {
                        ids.extend(self.main.indexed_rowids(col.column, n.get())?);
                    }
                }
                ids.sort_unstable();
                ids.dedup();
                Some(ids)
            }
            _ => None,
        })
    }

    /// The bounds a filter puts on `id` at its top level with `<`, `<=`, `>` and `>=` of
    /// integers (inclusive; `None` when it puts none): rows outside them cannot match.
    /// Also whether the filter is nothing but those bounds, so that every row within
    /// them matches (a table keyed by `id` has each row's `id` equal to its rowid).
    fn id_bounds(&self, filter: Option<&Expr>) -> Option<(i128, i128, bool)> {
        if !self.main.has_id() {
            return None;
        }
        let id = self.main.column_index("id")?;
        let tests: &[Expr] = match filter? {
            Expr::And(items) => items,
            other => std::slice::from_ref(other),
        };
        let (mut low, mut high) = (i128::MIN, i128::MAX);
        let mut bounds = 0;
        for test in tests {
            let Expr::Test { col, op, values } = test else {
                continue;
            };
            let (ColRef { source: 0, column }, [Value::Int(n)]) = (col, values.as_slice()) else {
                continue;
            };
            if *column != id {
                continue;
            }
            match op {
                Op::Gt => low = low.max(n.get().saturating_add(1)),
                Op::Ge => low = low.max(n.get()),
                Op::Lt => high = high.min(n.get().saturating_sub(1)),
                Op::Le => high = high.min(n.get()),
                _ => continue,
            }
            bounds += 1;
        }
        (bounds > 0).then_some((low, high, bounds == tests.len()))
    }

    /// The main table's rows a filter may match, in rowid order: those it pins by `id` or
    /// an indexed column, those within the bounds it puts on `id`, or else every row; and
    /// whether each of them matches already (the filter is the one test that pinned them,
    /// or nothing but the bounds).
    fn candidates(&self, filter: Option<&Expr>) -> (Candidates<'db>, bool) {
        let main = self.main;
        if let Some(ids) = self.pinned_ids(filter) {
            // A filter that is that one test holds for every row found by it.
            let settled = match filter {
                Some(Expr::And(tests)) => tests.len() == 1,
                _ => true,
            };
            let rows = ids
                .into_iter()
                .filter_map(move |id| main.row(id).map(|r| (id, r)));
            return (Box::new(rows), settled);
        }
        self.scanned(filter)
    }

    /// The rows a filter that pins no ids may match: those within its bounds on `id`, or
    /// every row; and whether the bounds are the whole filter.
    fn scanned(&self, filter: Option<&Expr>) -> (Candidates<'db>, bool) {
        let main = self.main;
        if let Some((bounds, settled)) = self.id_range(filter) {
            let Some((low, high)) = bounds else {
                return (Box::new(std::iter::empty()), true);
            };
            return (Box::new(main.rows_between(low, high)), settled);
        }
        (Box::new(main.rows()), false)
    }

    /// The rowids `id_bounds` keep (`None` when none can match, as `i64`), and whether
    /// they are the whole filter.
    fn id_range(&self, filter: Option<&Expr>) -> Option<(Option<(i64, i64)>, bool)> {
        let (low, high, settled) = self.id_bounds(filter)?;
        if low > high || low > i128::from(i64::MAX) || high < i128::from(i64::MIN) {
            return Some((None, true));
        }
        let clamp = |n: i128| {
            i64::try_from(n.clamp(i128::from(i64::MIN), i128::from(i64::MAX))).unwrap_or_default()
        };
        Some((Some((clamp(low), clamp(high))), settled))
    }

    /// The rowids a filter that is nothing but bounds on `id` matches, without joins (a
    /// `modify_objects` or `destroy_objects` of a range of ids): those of the rows within
    /// them, read straight off the table rather than through [`Context::each_match`].
    /// `None` for any other filter.
    fn rowids_in_id_range(&self, filter: Option<&Expr>) -> Option<Vec<i64>> {
        if !self.joins.is_empty() {
            return None;
        }
        let (bounds, true) = self.id_range(filter)? else {
            return None;
        };
        if self.pinned_ids(filter).is_some() {
            return None;
        }
        Some(bounds.map_or_else(Vec::new, |(low, high)| self.main.rowids_between(low, high)))
    }

    /// Calls `found` with every combination the filter matches (the main table's rowid
    /// first, then one per joined table) and the main table's row, in the main table's
    /// rowid order, for as long as `found` returns true.
    fn each_match(
        &self,
        filter: Option<&Expr>,
        inner: bool,
        mut found: impl FnMut(&[Option<i64>], &'db StoredRow) -> bool,
    ) {
        let (candidates, settled) = self.candidates(filter);
        let filter = if settled { None } else { filter };
        for (rowid, row) in candidates {
            if self.joins.is_empty() {
                let combo = [Some(rowid)];
                if self.passes(filter, &combo, row) && !found(&combo, row) {
                    return;
                }
                continue;
            }
            let mut combos: Vec<Combo> = vec![vec![Some(rowid)]];
            for join in &self.joins {
                let related = self.related(join, row, rowid);
                if related.is_empty() {
                    if inner {
                        combos.clear();
                        break;
                    }
                    combos.iter_mut().for_each(|c| c.push(None));
                } else {
                    combos = combos
                        .into_iter()
                        .flat_map(|c| {
                            related.iter().map(move |r| {
                                let mut c = c.clone();
                                c.push(Some(*r));
                                c
                            })
                        })
                        .collect();
                }
            }
            for combo in &combos {
                if self.passes(filter, combo, row) && !found(combo, row) {
                    return;
                }
            }
        }
    }

    /// Every combination the filter matches, in the main table's rowid order.
    fn matching_combos(&self, filter: Option<&Expr>, inner: bool) -> Vec<Combo> {
        let mut out = Vec::new();
        self.each_match(filter, inner, |combo, _| {
            out.push(combo.to_vec());
            true
        });
        out
    }

    /// The rows of a `load_objects` without `order`: matched in rowid order and projected
    /// only for the page asked for, the walk stopping once the page is full (`COUNT(*)`
    /// counts without projecting anything but the first match).
    fn page_in_rowid_order(
        &self,
        filter: Option<&Expr>,
        inner: bool,
        shape: &Shape<'db>,
        offset: usize,
        limit: usize,
    ) -> Vec<Cells<'db>> {
        let mut rows = Vec::new();
        if shape.count {
            if filter.is_none() && self.joins.is_empty() {
                // Every row matches: the table knows how many it has.
                let first = self
                    .main
                    .rows()
                    .next()
                    .map(|(rowid, row)| shape.cells(self, &[Some(rowid)], row));
                rows.extend(
                    shape
                        .count_row(self.main.len(), first)
                        .into_iter()
                        .skip(offset)
                        .take(limit),
                );
                return rows;
            }
            let mut count = 0;
            let mut first = None;
            self.each_match(filter, inner, |combo, row| {
                if count == 0 {
                    first = Some(shape.cells(self, combo, row));
                }
                count += 1;
                true
            });
            rows.extend(
                shape
                    .count_row(count, first)
                    .into_iter()
                    .skip(offset)
                    .take(limit),
            );
            return rows;
        }
        if limit == 0 {
            return rows;
        }
        if filter.is_none() && self.joins.is_empty() {
            // Every row matches once: the page starts at the row at position `offset`,
            // and holds as many rows as there are from there, up to the limit.
            rows.reserve(limit.min(self.main.len().saturating_sub(offset)));
            let page = self.main.rows_from_position(offset).take(limit);
            if shape.whole {
                rows.extend(page.map(|(_, row)| Cells::Whole(row)));
            } else {
                rows.extend(page.map(|(rowid, row)| shape.cells(self, &[Some(rowid)], row)));
            }
            return rows;
        }
        let mut skipped = 0;
        self.each_match(filter, inner, |combo, row| {
            if skipped < offset {
                skipped += 1;
                return true;
            }
            rows.push(shape.cells(self, combo, row));
            rows.len() < limit
        });
        rows
    }
}

enum Selection<'db> {
    All,
    Fields(Vec<(Cow<'db, str>, ColRef)>),
    Count(Vec<(Cow<'db, str>, ColRef)>),
}

fn parse_fields<'db>(
    ctx: &mut Context<'db>,
    fields: Option<&[Json]>,
) -> Result<Selection<'db>, TableError> {
    let Some(fields) = fields else {
        return Ok(Selection::All);
    };
    if fields.is_empty() {
        return Ok(Selection::All);
    }
    let mut count = false;
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        let (table, column) = column_spec(f, "fields")?;
        if table.is_none() && column.eq_ignore_ascii_case("COUNT(*)") {
            count = true;
            continue;
        }
        if table.is_none() && column == "*" {
            for (i, c) in ctx.main.columns().iter().enumerate() {
                out.push((
                    Cow::Borrowed(c.name.as_str()),
                    ColRef {
                        source: 0,
                        column: i,
                    },
                ));
            }
            continue;
        }
        let col = ctx.resolve(table, column)?;
        let name = if col.source == 0 {
            Cow::Borrowed(ctx.main.columns()[col.column].name.as_str())
        } else {
            let t = ctx.source(col.source);
            Cow::Owned(format!("{}.{}", t.name(), t.columns()[col.column].name))
        };
        out.push((name, col));
    }
    Ok(if count {
        Selection::Count(out)
    } else {
        Selection::Fields(out)
    })
}

/// A column named as `"col"`, `"table.col"` or `{"object": "table", "field": "col"}`.
fn column_spec<'a>(spec: &'a Json, member: &str) -> Result<(Option<&'a str>, &'a str), TableError> {
    match spec {
        Json::String(s) => Ok((None, s)),
        Json::Object(map) => {
            let m = Members::from_map(map);
            Ok((m.opt_string("object")?, m.string("field")?))
        }
        other => Err(MemberError::new(member, "string", Some(other)).into()),
    }
}

fn parse_order(
    ctx: &mut Context<'_>,
    order: Option<&[Json]>,
) -> Result<(Vec<ColRef>, bool), TableError> {
    let mut cols = Vec::new();
    let mut descending = false;
    for item in order.unwrap_or_default() {
        if let Json::String(s) = item {
            if s.eq_ignore_ascii_case("descending") {
                descending = true;
                continue;
            }
            if s.eq_ignore_ascii_case("ascending") {
                descending = false;
                continue;
            }
        }
        let (table, column) = column_spec(item, "order")?;
        cols.push(ctx.resolve(table, column)?);
    }
    Ok((cols, descending))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    NotLike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

impl Op {
    fn parse(text: &str) -> Option<Op> {
        let normal = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_uppercase();
        Some(match normal.as_str() {
            "=" | "==" => Op::Eq,
            "!=" | "<>" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "LIKE" => Op::Like,
            "NOT LIKE" => Op::NotLike,
            "IN" => Op::In,
            "NOT IN" => Op::NotIn,
            "IS NULL" => Op::IsNull,
            "IS NOT NULL" => Op::IsNotNull,
            _ => return None,
        })
    }
}

#[derive(Debug)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Test {
        col: ColRef,
        op: Op,
        values: Vec<Value>,
    },
}

impl Expr {
    /// SQL three-valued logic: `None` is unknown.
    fn eval<'v>(&self, cell: &impl Fn(ColRef) -> &'v Value) -> Option<bool> {
        match self {
            Expr::And(items) => {
                let mut result = Some(true);
                for item in items {
                    match item.eval(cell) {
                        Some(false) => return Some(false),
                        None => result = None,
                        Some(true) => {}
                    }
                }
                result
            }
            Expr::Or(items) => {
                let mut result = Some(false);
                for item in items {
                    match item.eval(cell) {
                        Some(true) => return Some(true),
                        None => result = None,
                        Some(false) => {}
                    }
                }
                result
            }
            Expr::Test { col, op, values } => test(cell(*col), *op, values),
        }
    }
}

fn test(cell: &Value, op: Op, values: &[Value]) -> Option<bool> {
    match op {
        Op::IsNull => return Some(*cell == Value::Null),
        Op::IsNotNull => return Some(*cell != Value::Null),
        _ => {}
    }
    if *cell == Value::Null {
        return None;
    }
    let first = values.first().unwrap_or(&Value::Null);
    let cmp = |pred: fn(Ordering) -> bool| {
        if *first == Value::Null {
            None
        } else {
            Some(pred(cell.sql_cmp(first)))
        }
    };
    match op {
        Op::Eq => cmp(Ordering::is_eq),
        Op::Ne => cmp(Ordering::is_ne),
        Op::Lt => cmp(Ordering::is_lt),
        Op::Le => cmp(Ordering::is_le),
        Op::Gt => cmp(Ordering::is_gt),
        Op::Ge => cmp(Ordering::is_ge),
        Op::Like | Op::NotLike => {
            let pattern = first.like_text()?;
            let text = cell.like_text()?;
            let hit = like(&pattern, &text);
            Some(if op == Op::Like { hit } else { !hit })
        }
        Op::In | Op::NotIn => {
            let hit = values.iter().any(|v| cell.sql_cmp(v).is_eq());
            let unknown = !hit && values.contains(&Value::Null);
            if unknown {
                None
            } else {
                Some(if op == Op::In { hit } else { !hit })
            }
        }
        Op::IsNull | Op::IsNotNull => None,
    }
}

/// SQLite `LIKE`: `%` any run, `_` one character, ASCII letters case-insensitive.
pub fn like(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    let t: Vec<char> = text.chars().map(|c| c.to_ascii_lowercase()).collect();
    // Iterative wildcard matching with backtracking to the last `%`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || (p[pi] != '%' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

/// A value from a `where` clause, coerced by the column's affinity like SQLite does.
fn coerce(json: &Json, ty: ColumnType, member: &str) -> Result<Value, TableError> {
    Ok(match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::int(i128::from(*b)),
        Json::String(s) if ty.is_integer() => match s.trim().parse::<i128>() {
            Ok(n) if n >= i128::from(i64::MIN) && n <= i128::from(u64::MAX) => Value::int(n),
            _ => Value::Text(s.as_str().into()),
        },
        Json::String(s) => Value::Text(s.as_str().into()),
        other => match json_integer(other) {
            Some(n) if ty.is_integer() => Value::int(n),
            Some(n) => Value::Text(compact_str::ToCompactString::to_compact_string(&n)),
            None => return Err(MemberError::new(member, ty.wire_name(), Some(other)).into()),
        },
    })
}

fn test_expr(
    ctx: &Context<'_>,
    col: ColRef,
    op: Op,
    value: Option<&Json>,
    member: &str,
) -> Result<Expr, TableError> {
    let ty = ctx.column_type(col);
    let values = match op {
        Op::IsNull | Op::IsNotNull => Vec::new(),
        Op::In | Op::NotIn => {
            let items: Vec<&Json> = match value {
                Some(Json::Array(items)) => items.iter().collect(),
                Some(single) => vec![single],
                None => return Err(MemberError::new("value", "array", None).into()),
            };
            if items.len() > MAX_IN_VALUES {
                return Err(TableError::TooManyVariables);
            }
            items
                .into_iter()
                .map(|v| coerce(v, ty, member))
                .collect::<Result<_, _>>()?
        }
        Op::Like | Op::NotLike => match value {
            Some(Json::String(s)) => vec![Value::Text(s.as_str().into())],
            Some(other) => vec![coerce(other, ColumnType::Str, member)?],
            None => return Err(MemberError::new("value", "string", None).into()),
        },
        _ => match value {
            Some(v) => vec![coerce(v, ty, member)?],
            None => return Err(MemberError::new("value", ty.wire_name(), None).into()),
        },
    };
    Ok(Expr::Test { col, op, values })
}

fn parse_where(ctx: &mut Context<'_>, filter: &Json) -> Result<Option<Expr>, TableError> {
    match filter {
        Json::Object(tables) => parse_nested(ctx, tables),
        Json::Array(clauses) => parse_clauses(ctx, clauses),
        other => Err(MemberError::new("where", "object", Some(other)).into()),
    }
}

/// Form (a): `{"table": {"col": scalar | [in list] | {"op": value}}}`.
fn parse_nested(
    ctx: &mut Context<'_>,
    tables: &Map<String, Json>,
) -> Result<Option<Expr>, TableError> {
    let mut tests = Vec::new();
    for (table, conditions) in tables {
        let conditions = match conditions {
            Json::Object(c) => c,
            other => return Err(MemberError::new(table, "object", Some(other)).into()),
        };
        for (column, condition) in conditions {
            let col = ctx.resolve(Some(table), column)?;
            match condition {
                Json::Null => tests.push(test_expr(ctx, col, Op::IsNull, None, column)?),
                Json::Array(_) => tests.push(test_expr(ctx, col, Op::In, Some(condition), column)?),
                Json::Object(ops) => {
                    for (op, value) in ops {
                        let op_kind =
                            Op::parse(op).ok_or_else(|| TableError::Syntax(op.clone()))?;
                        tests.push(test_expr(ctx, col, op_kind, Some(value), column)?);
                    }
                }
                scalar => tests.push(test_expr(ctx, col, Op::Eq, Some(scalar), column)?),
            }
        }
    }
    Ok(if tests.is_empty() {
        None
    } else {
        Some(Expr::And(tests))
    })
}

enum Token {
    Open,
    Close,
    And,
    Or,
    Test(Expr),
}

/// Form (b): clauses whose `connector` follows them; the whole is wrapped in parentheses.
fn parse_clauses(ctx: &mut Context<'_>, clauses: &[Json]) -> Result<Option<Expr>, TableError> {
    if clauses.is_empty() {
        return Ok(None);
    }
    let mut tokens = vec![Token::Open];
    for (i, clause) in clauses.iter().enumerate() {
        let m = Members::of(clause, "where")?;
        let column = m.string("field")?;
        let col = ctx.resolve(m.opt_string("object")?, column)?;
        let op_text = m.opt_string("operator")?.unwrap_or("=");
        let op = Op::parse(op_text).ok_or_else(|| TableError::Syntax(op_text.to_owned()))?;
        tokens.push(Token::Test(test_expr(
            ctx,
            col,
            op,
            m.get("value"),
            column,
        )?));
        if i + 1 < clauses.len() {
            match m.opt_string("connector")? {
                None => tokens.push(Token::And),
                Some(conn) => tokenize_connector(conn, &mut tokens)?,
            }
        }
    }
    tokens.push(Token::Close);
    let mut parser = Parser {
        tokens: tokens.into_iter().peekable(),
    };
    let expr = parser.or_expr()?;
    match parser.tokens.next() {
        None => Ok(Some(expr)),
        Some(t) => Err(TableError::Syntax(token_text(&t).to_owned())),
    }
}

fn tokenize_connector(conn: &str, tokens: &mut Vec<Token>) -> Result<(), TableError> {
    let spaced = conn.replace('(', " ( ").replace(')', " ) ");
    let mut any = false;
    for word in spaced.split_whitespace() {
        any = true;
        tokens.push(match word.to_ascii_uppercase().as_str() {
            "(" => Token::Open,
            ")" => Token::Close,
            "AND" => Token::And,
            "OR" => Token::Or,
            _ => return Err(TableError::Syntax(word.to_owned())),
        });
    }
    if !any {
        tokens.push(Token::And);
    }
    Ok(())
}

fn token_text(t: &Token) -> &'static str {
    match t {
        Token::Open => "(",
        Token::Close => ")",
        Token::And => "AND",
        Token::Or => "OR",
        Token::Test(_) => "?",
    }
}

struct Parser<I: Iterator<Item = Token>> {
    tokens: std::iter::Peekable<I>,
}

impl<I: Iterator<Item = Token>> Parser<I> {
    fn or_expr(&mut self) -> Result<Expr, TableError> {
        let mut items = vec![self.and_expr()?];
        while matches!(self.tokens.peek(), Some(Token::Or)) {
            self.tokens.next();
            items.push(self.and_expr()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and_expr(&mut self) -> Result<Expr, TableError> {
        let mut items = vec![self.primary()?];
        while matches!(self.tokens.peek(), Some(Token::And)) {
            self.tokens.next();
            items.push(self.primary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn primary(&mut self) -> Result<Expr, TableError> {
        match self.tokens.next() {
            Some(Token::Test(e)) => Ok(e),
            Some(Token::Open) => {
                let e = self.or_expr()?;
                match self.tokens.next() {
                    Some(Token::Close) => Ok(e),
                    Some(t) => Err(TableError::Syntax(token_text(&t).to_owned())),
                    None => Err(TableError::Syntax("(".into())),
                }
            }
            Some(t) => Err(TableError::Syntax(token_text(&t).to_owned())),
            None => Err(TableError::Syntax(")".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::schema::TABLES;
    use serde_json::json;

    fn db() -> Database {
        let mut db = Database::with_tables(TABLES.iter().map(|t| t.name));
        let users = json!([
            {"id": 1, "name": "Ana", "registration": "123", "user_type_id": 0},
            {"id": 2, "name": "Bruno", "registration": "456", "user_type_id": 1},
            {"id": 3, "name": "Carla", "registration": "789"},
            {"id": 4, "name": "Diana", "registration": "000", "user_type_id": 0}
        ]);
        let rows: Vec<Map<String, Json>> = users
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_object().unwrap().clone())
            .collect();
        db.insert("users", &rows).unwrap();
        let cards = json!([{"value": 10, "user_id": 1}, {"value": 20, "user_id": 2}, {"value": 30, "user_id": 1}]);
        let rows: Vec<Map<String, Json>> = cards
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_object().unwrap().clone())
            .collect();
        db.insert("cards", &rows).unwrap();
        db
    }

    fn ids(db: &Database, req: Json) -> Vec<i64> {
        load(db, Members::of(&req, "body").unwrap())
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect()
    }

    #[test]
    fn captured_connector_example_groups_as_documented() {
        let db = db();
        let req = json!({"object": "users", "where": [
            {"field": "name", "operator": "LIKE", "value": "%a%", "connector": ") AND ("},
            {"field": "user_type_id", "operator": "=", "value": 0, "connector": "OR"},
            {"field": "user_type_id", "operator": "IS NULL", "connector": ") AND ("}
        ]});
        // (name LIKE %a%) AND (type = 0 OR type IS NULL): Ana, Carla, Diana — not Bruno (type 1).
        assert_eq!(ids(&db, req), vec![1, 3, 4]);
    }

    #[test]
    fn nested_form_operators_and_in() {
        let db = db();
        assert_eq!(
            ids(
                &db,
                json!({"object": "users", "where": {"users": {"id": {">=": 2, "<": 4}}}})
            ),
            vec![2, 3]
        );
        assert_eq!(
            ids(
                &db,
                json!({"object": "users", "where": {"users": {"id": [1, 4]}}})
            ),
            vec![1, 4]
        );
        assert_eq!(
            ids(
                &db,
                json!({"object": "users", "where": {"users": {"registration": 123}}})
            ),
            vec![1]
        );
    }

    #[test]
    fn a_where_on_an_indexed_foreign_key_finds_what_a_scan_finds() {
        let db = db();
        let cards = |filter: Json| ids(&db, json!({"object": "cards", "where": {"cards": filter}}));
        assert_eq!(cards(json!({"user_id": 1})), vec![1, 3]);
        assert_eq!(cards(json!({"user_id": [2, 4]})), vec![2]);
        assert_eq!(cards(json!({"user_id": 1, "value": 30})), vec![3]);
        assert_eq!(cards(json!({"user_id": 9})), Vec::<i64>::new());
        // Text: no lookup; the scan compares it as the device does (loosely, as numbers).
        assert_eq!(cards(json!({"user_id": "1"})), vec![1, 3]);
        // The other form, with another test beside it.
        let req = json!({"object": "cards", "where": [
            {"object": "cards", "field": "user_id", "operator": "=", "value": 1, "connector": "AND"},
            {"object": "cards", "field": "value", "operator": "<", "value": 20}
        ]});
        assert_eq!(ids(&db, req), vec![1]);
    }

    #[test]
    fn a_where_pinning_one_id_finds_what_the_general_way_finds() {
        let db = db();
        for (table, filter) in [
            ("users", json!({"users": {"id": 2}})),
            ("users", json!({"users": {"id": 99}})),
            ("users", json!({"users": {"id": -1}})),
            ("users", json!({"users": {"id": "2"}})),
            ("users", json!({"users": {"id": 2.0}})),
            ("users", json!({"users": {"id": u64::MAX}})),
            ("users", json!({"users": {"id": 2, "name": "Bruno"}})),
            ("users", json!({"users": {"id": 2, "name": "Diana"}})),
            ("users", json!({"users": {"name": "Bruno"}})),
            ("users", json!({"users": {"id": {"=": 2}}})),
            ("cards", json!({"cards": {"id": 1}})),
            ("cards", json!({"users": {"id": 1}})),
            ("users", json!({"cards": {"id": 1}})),
        ] {
            let pinned = pinned_id(table, &filter);
            let fast = matching_rowids(&db, table, Some(&filter));
            let general = filtered_rowids(&db, table, Some(&filter));
            assert_eq!(fast, general, "{table} {filter}");
            let one = filter[table].as_object().is_some_and(|c| c.len() == 1);
            assert_eq!(
                pinned.is_some(),
                one && filter[table]["id"].is_i64(),
                "{filter}"
            );
        }
    }

    #[test]
    fn bounds_on_id_find_what_a_scan_finds() {
        let db = db();
        let users = |filter: Json| ids(&db, json!({"object": "users", "where": {"users": filter}}));
        assert_eq!(users(json!({"id": {">=": 2, "<": 4}})), vec![2, 3]);
        assert_eq!(users(json!({"id": {">": 1, "<=": 2}})), vec![2]);
        assert_eq!(users(json!({"id": {">": 3, "<": 2}})), Vec::<i64>::new());
        assert_eq!(users(json!({"id": {">": u64::MAX}})), Vec::<i64>::new());
        assert_eq!(users(json!({"id": {"<": -5}})), Vec::<i64>::new());
        // Bounds beside another test: the range narrows the rows, the test still decides.
        assert_eq!(
            users(json!({"id": {">=": 1, "<": 4}, "name": "Bruno"})),
            vec![2]
        );
        assert_eq!(
            users(json!({"id": {">=": 3}, "name": "Bruno"})),
            Vec::<i64>::new()
        );
        // Text compares loosely, as numbers: no bounds, the scan decides.
        assert_eq!(users(json!({"id": {">=": "3"}})), vec![3, 4]);
        assert_eq!(users(json!({"id": {">=": 2, "<": "4"}})), vec![2, 3]);
        // A bound inside an OR bounds nothing.
        let req = json!({"object": "users", "where": [
            {"field": "id", "operator": "<", "value": 2, "connector": "OR"},
            {"field": "name", "operator": "=", "value": "Diana"}
        ]});
        assert_eq!(ids(&db, req), vec![1, 4]);
        // A page and a count walk the same matches.
        let req = json!({"object": "users", "where": {"users": {"id": {">": 1}}}, "limit": 2, "offset": 1});
        assert_eq!(ids(&db, req), vec![3, 4]);
        let req = json!({"object": "users", "fields": ["COUNT(*)", "name"], "where": {"users": {"id": {">": 1}}}});
        let rows = load(&db, Members::of(&req, "b").unwrap()).unwrap();
        assert_eq!(
            Json::Object(rows[0].clone()),
            json!({"COUNT(*)": 3, "name": "Bruno"})
        );
    }

    #[test]
    fn rowids_within_bounds_on_id_are_those_the_general_way_matches() {
        let mut db = db();
        // A gap among the ids: 3 is gone.
        db.delete("users", &[3]).unwrap();
        let walked = |table: &str, filter: &Json| -> (Vec<i64>, Option<Vec<i64>>) {
            let mut ctx = Context::new(&db, table).unwrap();
            let filter = parse_where(&mut ctx, filter).unwrap();
            let mut ids = Vec::new();
            ctx.each_match(filter.as_ref(), false, |combo, _| {
                ids.extend(combo[0]);
                true
            });
            (ids, ctx.rowids_in_id_range(filter.as_ref()))
        };
        for (table, filter, read_off) in [
            ("users", json!({"users": {"id": {">=": 2, "<": 5}}}), true),
            ("users", json!({"users": {"id": {">": 1, "<=": 2}}}), true),
            ("users", json!({"users": {"id": {">=": 3, "<": 4}}}), true),
            ("users", json!({"users": {"id": {">": 3, "<": 2}}}), true),
            ("users", json!({"users": {"id": {">": u64::MAX}}}), true),
            ("users", json!({"users": {"id": {"<": -5}}}), true),
            ("users", json!({"users": {"id": {">=": i64::MIN}}}), true),
            (
                "users",
                json!({"users": {"id": {">=": 1, "<": 5}, "name": "Bruno"}}),
                false,
            ),
            ("users", json!({"users": {"id": {">=": "3"}}}), true),
            ("users", json!({"users": {"id": 2}}), false),
            ("users", json!({"users": {"name": "Bruno"}}), false),
            ("cards", json!({"cards": {"id": {">=": 1}}}), true),
            ("cards", json!({"users": {"id": {">=": 1}}}), false),
        ] {
            let (general, fast) = walked(table, &filter);
            assert_eq!(fast.is_some(), read_off, "{table} {filter}");
            if let Some(fast) = fast {
                assert_eq!(fast, general, "{table} {filter}");
            }
            assert_eq!(
                matching_rowids(&db, table, Some(&filter)).unwrap(),
                general,
                "{table} {filter}"
            );
        }
    }

    #[test]
    fn a_string_needs_an_escape_exactly_when_a_byte_does() {
        let naive = |bytes: &[u8]| bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        // Every byte value at every position of strings up to 19 bytes, among plain
        // bytes on either side of the lane boundaries (and high bytes, which borrow).
        for len in 1..20 {
            for at in 0..len {
                for byte in 0..=255u8 {
                    for filler in [b'a', 0xff, b'~', b' '] {
                        let mut bytes = vec![filler; len];
                        bytes[at] = byte;
                        assert_eq!(
                            needs_escape(&bytes),
                            naive(&bytes),
                            "{byte:#x} at {at} of {len} among {filler:#x}"
                        );
                    }
                }
            }
        }
        assert!(!needs_escape(b""));
    }

    #[test]
    fn a_printed_reply_is_the_printed_json() {
        let mut db = db();
        let odd = json!([{"id": 9, "name": "Zoë \"quoted\" \\ \n\u{1}\u{7f}\u{1f}", "registration": "",
            "begin_time": 18446744073709551615_u64, "end_time": -9223372036854775808_i64}]);
        let rows: Vec<Map<String, Json>> = odd
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_object().unwrap().clone())
            .collect();
        db.insert("users", &rows).unwrap();
        for req in [
            json!({"object": "users"}),
            json!({"object": "users", "where": {"users": {"id": 9}}}),
            json!({"object": "users", "fields": ["name", "id", "name", "cards.value"]}),
            json!({"object": "users", "fields": ["COUNT(*)", "name"], "where": {"users": {"id": 77}}}),
            json!({"object": "cards", "fields": ["COUNT(*)", "users.name"]}),
            json!({"object": "users", "order": ["descending", "name"], "limit": 3}),
            json!({"object": "users", "limit": 0}),
        ] {
            let page = select(&db, Members::of(&req, "b").unwrap()).unwrap();
            let mut printed = Vec::new();
            page.print_reply("users", &mut printed);
            let rows = load(&db, Members::of(&req, "b").unwrap()).unwrap();
            let reply = json!({"users": rows.into_iter().map(Json::Object).collect::<Vec<_>>()});
            assert_eq!(
                String::from_utf8(printed).unwrap(),
                serde_json::to_string(&reply).unwrap(),
                "{req}"
            );
        }
    }

    /// Every row of `table` printed as a reply, checked against printing its JSON.
    fn printed_whole(db: &Database, table: &str) -> String {
        let req = json!({ "object": table });
        let page = select(db, Members::of(&req, "b").unwrap()).unwrap();
        let mut out = Vec::new();
        page.print_reply(table, &mut out);
        let rows = load(db, Members::of(&req, "b").unwrap()).unwrap();
        let reply = json!({ table: rows.into_iter().map(Json::Object).collect::<Vec<_>>() });
        assert_eq!(String::from_utf8(out.clone()).unwrap(), reply.to_string());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn whole_rows_print_the_columns_an_open_table_has_now() {
        let mut db = db();
        let printed = |db: &Database| printed_whole(db, "c_users");
        let row = |j: Json| vec![j.as_object().unwrap().clone()];
        db.insert("c_users", &row(json!({"user_id": 1}))).unwrap();
        let before = printed(&db);
        // A new member adds a column: the names printed before no longer fit.
        db.insert("c_users", &row(json!({"user_id": 2, "badge": "B-2"})))
            .unwrap();
        let after = printed(&db);
        assert!(
            !before.contains("badge") && after.contains(r#""badge":"B-2""#),
            "{after}"
        );
        // A write that fails takes its new column back, and the names with it.
        let refused = db.insert(
            "c_users",
            &row(json!({"user_id": 3, "floor": 4, "id": "not a number"})),
        );
        assert!(refused.is_err());
        assert!(!printed(&db).contains("floor"));
    }

    #[test]
    fn a_row_keeps_its_printing_until_it_changes() {
        let mut db = db();
        let printed = |db: &Database| printed_whole(db, "users");
        let kept = |db: &Database| -> Vec<i64> {
            let users = db.table("users").unwrap();
            users
                .rows()
                .filter(|(_, r)| r.is_printed())
                .map(|(id, _)| id)
                .collect()
        };
        assert_eq!(kept(&db), Vec::<i64>::new());
        let first = printed(&db);
        assert_eq!(kept(&db), vec![1, 2, 3, 4]);
        // Printed again from the kept text: the same reply.
        assert_eq!(printed(&db), first);
        let values = |v: Json| v.as_object().unwrap().clone();
        // A cell set in place (no index on the name), a row that moves to a new id (the
        // general update), a row deleted: each drops or takes its text with it.
        db.update("users", &values(json!({"name": "Ana Maria"})), &[1])
            .unwrap();
        db.update("users", &values(json!({"id": 20})), &[2])
            .unwrap();
        db.delete("users", &[3]).unwrap();
        assert_eq!(kept(&db), vec![4]);
        let second = printed(&db);
        assert!(
            second.contains(r#""id":1,"registration":"123","name":"Ana Maria""#),
            "{second}"
        );
        assert!(
            second.contains(r#""id":20,"registration":"456","name":"Bruno""#),
            "{second}"
        );
        assert!(!second.contains("Carla"), "{second}");
        assert_eq!(kept(&db), vec![1, 4, 20]);
        // A page of picked fields prints without keeping anything.
        db.update("users", &values(json!({"name": "Diana P."})), &[4])
            .unwrap();
        let req = json!({"object": "users", "fields": ["id", "name"]});
        let page = select(&db, Members::of(&req, "b").unwrap()).unwrap();
        page.print_reply("users", &mut Vec::new());
        assert_eq!(kept(&db), vec![1, 20]);
    }

    #[test]
    fn a_page_at_an_offset_after_deletions_is_the_page_a_walk_gives() {
        let mut db = db();
        let rows: Vec<Map<String, Json>> = (5..=1_500)
            .map(|i| {
                json!({"id": i * 2, "name": format!("U{i}"), "registration": format!("R{i}")})
                    .as_object()
                    .unwrap()
                    .clone()
            })
            .collect();
        db.insert("users", &rows).unwrap();
        // Holes: every third row of a stretch, a whole run, the first and the last.
        let gone: Vec<i64> = (100..900)
            .step_by(6)
            .chain(1_200..1_800)
            .chain([1, 3_000])
            .collect();
        db.delete("users", &gone).unwrap();
        let walk: Vec<i64> = db
            .table("users")
            .unwrap()
            .rows()
            .map(|(id, _)| id)
            .collect();
        for (offset, limit) in [
            (0, 3),
            (1, 100),
            (250, 100),
            (700, 7),
            (1_200, 100),
            (5_000, 1),
        ] {
            let req = json!({"object": "users", "limit": limit, "offset": offset});
            let expected: Vec<i64> = walk.iter().skip(offset).take(limit).copied().collect();
            assert_eq!(ids(&db, req.clone()), expected, "{req}");
            let page = select(&db, Members::of(&req, "b").unwrap()).unwrap();
            let mut printed = Vec::new();
            page.print_reply("users", &mut printed);
            let rows = load(&db, Members::of(&req, "b").unwrap()).unwrap();
            let reply = json!({"users": rows.into_iter().map(Json::Object).collect::<Vec<_>>()});
            assert_eq!(
                String::from_utf8(printed).unwrap(),
                serde_json::to_string(&reply).unwrap(),
                "{req}"
            );
        }
    }

    #[test]
    fn a_printed_reply_holds_a_secret_where_the_journal_finds_one() {
        use crate::journal::{Body, Kept};
        let mut db = db();
        let put = |db: &mut Database, table: &str, rows: Json| {
            let rows: Vec<Map<String, Json>> = rows
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_object().unwrap().clone())
                .collect();
            db.insert(table, &rows).unwrap();
        };
        put(
            &mut db,
            "users",
            json!([{"id": 7, "name": "P", "password": "x", "salt": "y"}]),
        );
        put(&mut db, "pins", json!([{"value": "1234", "user_id": 1}]));
        // An open table may carry columns that make a row read as a where clause.
        put(
            &mut db,
            "contacts",
            json!([
                {"name": "a", "value": "1", "field": "value", "object": "pins"},
                {"name": "b", "value": "2", "field": "value", "object": "cards"},
                {"name": "c", "value": "3", "field": "name"},
                {"name": "d", "value": null, "field": "value", "object": "pins"},
                {"name": "e", "panic_password": "p", "value": null}
            ]),
        );
        let mut cases = 0;
        for (table, filter) in [
            ("users", json!({"users": {"id": 1}})),
            ("users", json!({"users": {"id": 7}})),
            ("cards", json!({"cards": {"user_id": 1}})),
            ("pins", json!({"pins": {"user_id": 1}})),
            ("contacts", json!({"contacts": {"name": "a"}})),
            ("contacts", json!({"contacts": {"name": "b"}})),
            ("contacts", json!({"contacts": {"name": "c"}})),
            ("contacts", json!({"contacts": {"name": "d"}})),
            ("contacts", json!({"contacts": {"name": "e"}})),
        ] {
            for fields in [json!([]), json!(["name"]), json!(["value", "field"])] {
                let req = json!({"object": table, "where": filter, "fields": fields});
                let Ok(page) = select(&db, Members::of(&req, "b").unwrap()) else {
                    continue;
                };
                let mut printed = Vec::new();
                let said = page.print_reply(table, &mut printed);
                let reply: Json = serde_json::from_slice(&printed).unwrap();
                let kept_as_text =
                    matches!(Body::keep(&reply, printed.clone().into()), Kept::Text(_));
                assert_eq!(page.holds_secret(table), !kept_as_text, "{req}");
                assert_eq!(said, !kept_as_text, "{req}");
                // Printed again (whole rows from their kept text): the same answer.
                assert_eq!(page.print_reply(table, &mut Vec::new()), said, "{req}");
                cases += 1;
            }
        }
        assert!(cases > 20);
    }

    #[test]
    fn cross_table_where_joins_by_foreign_key() {
        let db = db();
        let req = json!({"object": "cards", "where": {"users": {"registration": "123"}}});
        assert_eq!(ids(&db, req), vec![1, 3]);
        let req = json!({"object": "users", "where": {"cards": {"value": 20}}});
        assert_eq!(ids(&db, req), vec![2]);
    }

    #[test]
    fn order_limit_offset_and_count() {
        let db = db();
        let req =
            json!({"object": "users", "order": ["descending", "name"], "limit": 2, "offset": 1});
        assert_eq!(ids(&db, req), vec![3, 2]);
        let rows = load(
            &db,
            Members::of(&json!({"object": "cards", "fields": ["COUNT(*)"]}), "b").unwrap(),
        )
        .unwrap();
        assert_eq!(Json::Object(rows[0].clone()), json!({"COUNT(*)": 3}));
    }

    #[test]
    fn errors_use_device_texts() {
        let db = db();
        let err = |req: Json| {
            load(&db, Members::of(&req, "b").unwrap())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(err(json!({"object": "nope"})), "no such table: nope");
        assert_eq!(
            err(json!({"object": "users", "fields": ["nope"]})),
            "no such column: nope"
        );
        assert_eq!(
            err(
                json!({"object": "users", "where": [{"field": "id", "operator": "~", "value": 1}]})
            ),
            "near \"~\": syntax error"
        );
        assert_eq!(
            err(json!({"object": 5})),
            "Invalid member 'object' (string expected, got int)"
        );
    }

    #[test]
    fn like_matches_sqlite() {
        assert!(like("%ana%", "Mariana"));
        assert!(like("a_c", "ABC"));
        assert!(!like("a_c", "abbc"));
        assert!(like("%", ""));
        assert!(!like("abc", "ab"));
    }
}
