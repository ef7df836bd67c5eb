//! The rows of a `create_objects` built into cells before the device's lock is taken.
//!
//! A create of a thousand rows spent about half its time under the lock turning members
//! into cells: finding each member's column, checking its type and allocating the row,
//! for which the kernel faults in fresh pages as the tables grow. For a table whose
//! columns are its definition's (every table but the open ones, whose columns grow with
//! the rows written), none of that depends on the device's state, so it is done while
//! the request waits for its turn, side by side with other connections' requests; the
//! lock is held only to give the rows their ids, check them against the table and store
//! them ([`Database::insert_built`](super::table::Database::insert_built)).
//!
//! [`BuiltRows::build`] builds nothing when any row could fail on its own (a column the
//! table lacks, a value of another type, an id out of range): such rows are written from
//! the request under the lock, as before, and fail there with the error, and after the
//! rows before them, as they always did.

use super::schema::TableDef;
use super::table::{Value, cell_of_type};
use super::written::RowMembers;

/// Rows built into cells for one table, in the order written.
#[derive(Debug)]
pub struct BuiltRows {
    /// The table the rows were built for.
    pub(super) def: &'static TableDef,
    /// Each row: the id it was written with (for a table with one), and its cells up to
    /// the last written, the id's cell NULL when the table is to choose it.
    pub(super) rows: Vec<(Option<i64>, Vec<Value>)>,
}

impl BuiltRows {
    /// Builds `rows` for the table of `def`, or nothing when the table is open or any row
    /// would fail on its own (see the module's documentation).
    pub fn build(def: &'static TableDef, rows: &[impl RowMembers]) -> Option<Self> {
        if def.open {
            return None;
        }
        let mut built = Vec::with_capacity(rows.len());
        // The column of each member place in the row before: the rows of a batch mostly
        // name the same columns in the same order.
        let mut columns: Vec<usize> = Vec::new();
        for row in rows {
            let mut width = usize::from(def.has_id);
            for (place, (name, _)) in row.members().enumerate() {
                let same = |&i: &usize| def.columns.get(i).is_some_and(|c| c.name == name);
                let index = match columns.get(place).copied().filter(same) {
                    Some(i) => i,
                    None => def.columns.iter().position(|c| c.name == name)?,
                };
                match columns.get_mut(place) {
                    Some(slot) => *slot = index,
                    None => columns.push(index),
                }
                width = width.max(index + 1);
            }
            let mut cells = Vec::with_capacity(width);
            cells.resize_with(width, || Value::Null);
            // `columns` may go on past this row's members, with a longer row's before.
            for ((_, member), &index) in row.members().zip(&columns) {
                let column = &def.columns[index];
                cells[index] = cell_of_type(column.name, column.ty, member).ok()?;
            }
            let id = match cells.first() {
                Some(Value::Int(id)) if def.has_id => Some(i64::try_from(id.get()).ok()?),
                _ => None,
            };
            built.push((id, cells));
        }
        Some(BuiltRows { def, rows: built })
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}
