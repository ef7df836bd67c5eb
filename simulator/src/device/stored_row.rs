//! A row as a table stores it: its cells and, once a reply of whole rows printed it, that
//! printing, kept until the row or the table's columns change.
//!
//! Printing a row costs about a hundred instructions a cell; a page of whole rows asked
//! for again (a client paging through the users, a sync engine reading them back) copies
//! the kept text instead. The text is only ever reached through a shared borrow and
//! dropped by any mutable one ([`StoredRow::cells_mut`]), so it cannot outlive the
//! cells it was printed from; the table drops every row's text when its columns change.

use std::ops::Deref;
use std::sync::OnceLock;

use super::table::Value;

/// One stored row: its cells in column order, as many as its last cell that was written
/// not NULL (or more); the columns past them are NULL.
#[derive(Debug, Clone)]
pub struct StoredRow {
    cells: Vec<Value>,
    /// The row printed as a JSON object with every column of its table, once printed,
    /// followed by one byte: 1 when the printing holds a secret the journal masks, else 0
    /// (kept in the text's allocation, so the row grows by nothing).
    printed: OnceLock<Box<[u8]>>,
}

impl StoredRow {
    /// A row without cells (every column reads NULL).
    pub const fn empty() -> Self {
        StoredRow {
            cells: Vec::new(),
            printed: OnceLock::new(),
        }
    }

    /// A row of `cells`, not printed yet.
    pub fn new(cells: Vec<Value>) -> Self {
        StoredRow {
            cells,
            printed: OnceLock::new(),
        }
    }

    /// The cells to change: the printed text goes, since it may no longer match.
    pub fn cells_mut(&mut self) -> &mut Vec<Value> {
        self.printed = OnceLock::new();
        &mut self.cells
    }

    /// The cells to change, at least `width` of them (NULLs added past the end).
    pub fn cells_mut_to(&mut self, width: usize) -> &mut Vec<Value> {
        let cells = self.cells_mut();
        if cells.len() < width {
            cells.resize(width, Value::Null);
        }
        cells
    }

    /// Drops the printed text (the table's columns changed).
    pub fn forget_printing(&mut self) {
        self.printed = OnceLock::new();
    }

    /// The cells, for a row taken out of its table.
    pub fn into_cells(self) -> Vec<Value> {
        self.cells
    }

    /// The row printed whole by `print`, which runs the first time only, and whether
    /// that printing holds a secret (`print` says); the caller prints every column of
    /// the table in order, so the text is the same for every caller until the row or the
    /// columns change.
    pub fn printed(&self, print: impl FnOnce(&[Value]) -> (Vec<u8>, bool)) -> (&[u8], bool) {
        let kept = self.printed.get_or_init(|| {
            let (mut text, secret) = print(&self.cells);
            text.push(u8::from(secret));
            text.into_boxed_slice()
        });
        let (secret, text) = kept.split_last().expect("a flag after the text");
        (text, *secret == 1)
    }

    /// Whether the row was printed since it last changed.
    #[cfg(test)]
    pub fn is_printed(&self) -> bool {
        self.printed.get().is_some()
    }
}

impl Deref for StoredRow {
    type Target = [Value];

    fn deref(&self) -> &[Value] {
        &self.cells
    }
}

/// Rows are equal when their cells are, NULLs past the end of either included: the
/// printed text is a copy of them.
impl PartialEq for StoredRow {
    fn eq(&self, other: &Self) -> bool {
        same_cells(&self.cells, &other.cells)
    }
}

/// Whether two rows hold the same cells, reading each past its end as NULL.
fn same_cells(a: &[Value], b: &[Value]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long[..short.len()] == *short && long[short.len()..].iter().all(|c| *c == Value::Null)
}

/// `cells` without the NULLs at their end, the way a row keeps them.
pub fn trimmed(mut cells: Vec<Value>) -> Vec<Value> {
    while cells.last() == Some(&Value::Null) {
        cells.pop();
    }
    cells
}

impl Eq for StoredRow {}
