//! A table's index over some columns (a unique set or a reference): the rows holding each
//! combination of values, so that a constraint is checked and a `where` on the columns
//! answered without walking the table.
//!
//! Nearly every index is over one column, and nearly every value is held by one row (a
//! card's number, a user's card): such an entry keeps its value and its rowid inside the
//! map's slot, with nothing allocated beside it. A key of several columns, or a value held
//! by several rows, takes an allocation of its own.

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

use foldhash::HashMap;

use super::table::Value;

/// The rows holding each combination of values of some columns (rows with a NULL in
/// those columns are left out, as a unique constraint ignores them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Index {
    columns: Vec<usize>,
    entries: HashMap<Key, Rowids>,
}

/// The values of an index's columns in one row: one value kept as it is, several boxed.
/// It hashes and compares as the slice of its values, so a lookup takes a `&[Value]`.
#[derive(Debug, Clone)]
enum Key {
    One(Value),
    Many(Box<[Value]>),
}

impl Key {
    fn values(&self) -> &[Value] {
        match self {
            Key::One(value) => std::slice::from_ref(value),
            Key::Many(values) => values,
        }
    }
}

impl Borrow<[Value]> for Key {
    fn borrow(&self) -> &[Value] {
        self.values()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.values() == other.values()
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.values().hash(state);
    }
}

/// The rows holding one key, in rowid order: one kept as it is, several in a set (never
/// fewer than two, so that equal indexes are equal however they were built).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rowids {
    One(i64),
    Many(BTreeSet<i64>),
}

impl Rowids {
    fn insert(&mut self, rowid: i64) {
        match self {
            Rowids::One(one) if *one == rowid => {}
            Rowids::One(one) => *self = Rowids::Many(BTreeSet::from([*one, rowid])),
            Rowids::Many(many) => {
                many.insert(rowid);
            }
        }
    }

    /// Removes `rowid`, saying whether no row is left (a set of two or more keeps one).
    fn remove(&mut self, rowid: i64) -> bool {
        match self {
            Rowids::One(one) => *one == rowid,
            Rowids::Many(many) => {
                many.remove(&rowid);
                if many.len() == 1
                    && let Some(&last) = many.first()
                {
                    *self = Rowids::One(last);
                }
                false
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        let (one, many) = match self {
            Rowids::One(one) => (Some(*one), None),
            Rowids::Many(many) => (None, Some(many.iter().copied())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

impl Index {
    /// An empty index over `columns`.
    pub(super) fn new(columns: Vec<usize>) -> Self {
        Index {
            columns,
            entries: HashMap::default(),
        }
    }

    /// The columns it is over, in order.
    pub(super) fn columns(&self) -> &[usize] {
        &self.columns
    }

    /// Whether `row` holds a value in every column of the index.
    fn keyed(&self, row: &[Value]) -> bool {
        self.columns
            .iter()
            .all(|&i| !matches!(row.get(i), None | Some(Value::Null)))
    }

    /// The row's key, when it has a value in every column (NULL past its cells).
    fn key(&self, row: &[Value]) -> Option<Key> {
        if !self.keyed(row) {
            return None;
        }
        let cell = |i: usize| row[i].clone();
        Some(match self.columns.as_slice() {
            [one] => Key::One(cell(*one)),
            many => Key::Many(many.iter().map(|&i| cell(i)).collect()),
        })
    }

    /// Whether another row than `rowid` holds `row`'s key (a unique set it would break).
    pub(super) fn clashes(&self, rowid: i64, row: &[Value]) -> bool {
        self.key(row)
            .is_some_and(|key| self.rowids(key.values()).any(|id| id != rowid))
    }

    pub(super) fn add(&mut self, rowid: i64, row: &[Value]) {
        if let Some(key) = self.key(row) {
            self.entries
                .entry(key)
                .and_modify(|ids| ids.insert(rowid))
                .or_insert(Rowids::One(rowid));
        }
    }

    pub(super) fn remove(&mut self, rowid: i64, row: &[Value]) {
        if let Some(key) = self.key(row)
            && let Some(ids) = self.entries.get_mut(key.values())
            && ids.remove(rowid)
        {
            self.entries.remove(key.values());
        }
    }

    /// Whether two rows have the same key (`key(a) == key(b)`, without building either).
    pub(super) fn same_key(&self, a: &[Value], b: &[Value]) -> bool {
        match (self.keyed(a), self.keyed(b)) {
            (true, true) => self.columns.iter().all(|&i| a.get(i) == b.get(i)),
            (false, false) => true,
            _ => false,
        }
    }

    /// The rows holding `key`, in rowid order.
    pub(super) fn rowids(&self, key: &[Value]) -> impl Iterator<Item = i64> + '_ {
        self.entries.get(key).into_iter().flat_map(Rowids::iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(value: i64) -> Vec<Value> {
        vec![Value::Null, Value::int(i128::from(value))]
    }

    #[test]
    fn an_entry_of_one_value_and_one_row_is_kept_in_its_slot() {
        // A slot is a key and its rows, no larger than the two vectors it replaced, and
        // for one value held by one row nothing is allocated beside it.
        assert!(std::mem::size_of::<(Key, Rowids)>() <= 64);
        let mut index = Index::new(vec![1]);
        index.add(7, &row(100));
        assert_eq!(
            index.entries.get([Value::int(100)].as_slice()),
            Some(&Rowids::One(7))
        );
    }

    #[test]
    fn rows_sharing_a_key_are_listed_in_order_and_equal_however_built() {
        let mut grown = Index::new(vec![1]);
        for rowid in [9, 3, 5] {
            grown.add(rowid, &row(1));
        }
        assert_eq!(
            grown.rowids(&[Value::int(1)]).collect::<Vec<_>>(),
            [3, 5, 9]
        );
        assert!(grown.clashes(4, &row(1)) && !grown.clashes(4, &row(2)));
        // Down to one row and back to none: the same as an index given that row alone,
        // then as an empty one.
        grown.remove(9, &row(1));
        grown.remove(3, &row(1));
        let mut single = Index::new(vec![1]);
        single.add(5, &row(1));
        assert_eq!(grown, single);
        grown.remove(5, &row(1));
        assert_eq!(grown, Index::new(vec![1]));
        // A row without a value in the column (NULL, or past its cells) is not indexed.
        grown.add(6, &[Value::Null, Value::Null]);
        grown.add(8, &[Value::Null]);
        assert_eq!(grown, Index::new(vec![1]));
    }

    #[test]
    fn a_key_of_several_columns_is_found_by_its_values() {
        let mut index = Index::new(vec![0, 1]);
        let pair = [Value::int(1), Value::Text("a".into())];
        index.add(2, &pair);
        assert_eq!(index.rowids(&pair).collect::<Vec<_>>(), [2]);
        assert!(index.same_key(&pair, &pair) && !index.same_key(&pair, &[Value::int(1)]));
    }
}
