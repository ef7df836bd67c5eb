//! A row as a table stores it: its cells and, once a reply of whole rows printed it, that
//! printing, kept until the row or the table's columns change.
//!
//! Printing a row costs about a hundred instructions a cell; a page of whole rows asked
//! for again (a client paging through the users, a sync engine reading them back) copies
//! the kept text instead. The text is only ever reached through a shared borrow and
//! dropped by any mutable one ([`StoredRow::cells_mut`]), so it cannot outlive the
//! cells it was printed from; the table drops every row's text when its columns change.

use std::ops::Deref;

use once_cell::race::OnceBox;

use super::table::Value;

/// One stored row: its cells in column order, as many as its last cell that was written
/// not NULL (or more); the columns past them are NULL.
///
/// A row takes 24 bytes besides its cells: a boxed slice for them (a row's width only
/// changes when a cell past its end is set) and one pointer for the printing, which most
/// rows never have.
#[derive(Debug, Clone)]
pub struct StoredRow {
    cells: Box<[Value]>,
    /// The row printed as a JSON object with every column of its table, once printed.
    printed: OnceBox<Printed>,
}

/// A row's printing, and whether it holds a secret the journal masks.
#[derive(Debug, Clone)]
struct Printed {
    text: Box<[u8]>,
    secret: bool,
}

impl StoredRow {
    /// A row without cells (every column reads NULL).
    pub fn empty() -> Self {
        StoredRow::new(Vec::new())
    }

    /// A row of `cells`, not printed yet.
    #[inline]
    pub fn new(cells: Vec<Value>) -> Self {
        StoredRow {
            cells: cells.into_boxed_slice(),
            printed: OnceBox::new(),
        }
    }

    /// The cells to change: the printed text goes, since it may no longer match.
    pub fn cells_mut(&mut self) -> &mut [Value] {
        self.forget_printing();
        &mut self.cells
    }

    /// The cells to change, at least `width` of them (NULLs added past the end).
    #[inline(always)]
    pub fn cells_mut_to(&mut self, width: usize) -> &mut [Value] {
        if self.cells.len() < width {
            let mut cells = std::mem::take(&mut self.cells).into_vec();
            cells.resize(width, Value::Null);
            self.cells = cells.into_boxed_slice();
        }
        self.cells_mut()
    }

    /// Exactly `N` cells to set, in place when the row has as many (a log kept as a ring
    /// handing its oldest row the newest entry, so nothing is allocated); otherwise the
    /// row is made that wide first, the cells added NULL.
    #[inline]
    pub fn cells_exactly<const N: usize>(&mut self) -> &mut [Value; N] {
        if self.cells.len() != N {
            let mut cells = std::mem::take(&mut self.cells).into_vec();
            cells.resize(N, Value::Null);
            self.cells = cells.into_boxed_slice();
        }
        self.forget_printing();
        (&mut *self.cells)
            .try_into()
            .expect("the row was just made N cells wide")
    }

    /// Drops the cells from `width` on (columns added by a write that was undone).
    pub fn truncate(&mut self, width: usize) {
        if self.cells.len() > width {
            let mut cells = std::mem::take(&mut self.cells).into_vec();
            cells.truncate(width);
            self.cells = cells.into_boxed_slice();
        }
        self.forget_printing();
    }

    /// Drops the printed text (the table's columns changed).
    #[inline(always)]
    pub fn forget_printing(&mut self) {
        if self.printed.get().is_some() {
            self.printed = OnceBox::new();
        }
    }

    /// The cells, for a row taken out of its table.
    #[inline]
    pub fn into_cells(self) -> Vec<Value> {
        self.cells.into_vec()
    }

    /// The row printed whole by `print`, which runs the first time only, and whether
    /// that printing holds a secret (`print` says); the caller prints every column of
    /// the table in order, so the text is the same for every caller until the row or the
    /// columns change.
    pub fn printed(&self, print: impl FnOnce(&[Value]) -> (Vec<u8>, bool)) -> (&[u8], bool) {
        let printed = self.printed.get_or_init(|| {
            let (text, secret) = print(&self.cells);
            Box::new(Printed {
                text: text.into_boxed_slice(),
                secret,
            })
        });
        (&printed.text, printed.secret)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    /// Prints the cells as their count, saying a secret when there are three.
    fn print(cells: &[Value]) -> (Vec<u8>, bool) {
        (cells.len().to_string().into_bytes(), cells.len() == 3)
    }

    #[test]
    fn a_row_is_three_words_beside_its_cells() {
        assert_eq!(std::mem::size_of::<StoredRow>(), 24);
        assert_eq!(std::mem::size_of::<(i64, StoredRow)>(), 32);
    }

    #[test]
    fn the_printing_is_kept_until_a_change_and_printed_again_after() {
        let mut row = StoredRow::new(vec![Value::int(1), text("a")]);
        assert!(!row.is_printed());
        assert_eq!(row.printed(print), (&b"2"[..], false));
        // Kept: a second printer is not asked.
        assert_eq!(row.printed(|_| unreachable!()), (&b"2"[..], false));
        assert!(row.clone().is_printed(), "a copy keeps the printing");

        row.cells_mut_to(3)[2] = text("c");
        assert!(!row.is_printed());
        assert_eq!(&*row, &[Value::int(1), text("a"), text("c")][..]);
        assert_eq!(row.printed(print), (&b"3"[..], true));

        row.truncate(1);
        assert!(!row.is_printed());
        assert_eq!(&*row, &[Value::int(1)][..]);
        row.printed(print);
        row.truncate(5);
        assert!(
            !row.is_printed(),
            "columns changed, even with no cell to drop"
        );
        assert_eq!(row.len(), 1);

        row.printed(print);
        row.cells_mut()[0] = Value::int(2);
        assert!(!row.is_printed());
        assert_eq!(row.into_cells(), vec![Value::int(2)]);
    }

    #[test]
    fn rows_equal_with_nulls_past_the_end() {
        let short = StoredRow::new(vec![Value::int(1)]);
        let long = StoredRow::new(vec![Value::int(1), Value::Null]);
        assert_eq!(short, long);
        assert_ne!(short, StoredRow::new(vec![Value::int(1), text("x")]));
        assert_eq!(StoredRow::empty(), StoredRow::new(vec![Value::Null]));
    }
}
