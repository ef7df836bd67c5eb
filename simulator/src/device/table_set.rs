//! The tables of one device by name: kept in name order (the state file and the change
//! log list them in that order) and found through a hash of the name, since a request
//! names its tables several times (the check of the command, the query, the write, the
//! change log).

use foldhash::HashMap;

use super::table::Table;

/// Tables by name.
#[derive(Debug, Clone, Default)]
pub(super) struct TableSet {
    /// In name order.
    tables: Vec<Table>,
    /// Each table's place in `tables`.
    places: HashMap<&'static str, usize>,
}

impl TableSet {
    /// Adds `table`, or replaces the one of the same name.
    pub(super) fn insert(&mut self, table: Table) {
        let name = table.name();
        match self.tables.binary_search_by(|t| t.name().cmp(name)) {
            Ok(place) => self.tables[place] = table,
            Err(place) => {
                self.tables.insert(place, table);
                self.places = self
                    .tables
                    .iter()
                    .enumerate()
                    .map(|(place, t)| (t.name(), place))
                    .collect();
            }
        }
    }

    /// The table named `name`.
    pub(super) fn get(&self, name: &str) -> Option<&Table> {
        self.places.get(name).map(|&place| &self.tables[place])
    }

    /// The place of the table named `name`, for a caller that reaches it many times
    /// ([`TableSet::at`], [`TableSet::at_mut`]) without hashing its name each time.
    pub(super) fn place(&self, name: &str) -> Option<usize> {
        self.places.get(name).copied()
    }

    /// The table at `place` (from [`TableSet::place`]; places hold until a table is
    /// added).
    pub(super) fn at(&self, place: usize) -> &Table {
        &self.tables[place]
    }

    /// The table at `place`, to change it.
    pub(super) fn at_mut(&mut self, place: usize) -> &mut Table {
        &mut self.tables[place]
    }

    /// Every table, in name order.
    pub(super) fn values(&self) -> std::slice::Iter<'_, Table> {
        self.tables.iter()
    }

    /// Every table, in name order (their places in turn), to change them.
    pub(super) fn values_mut(&mut self) -> std::slice::IterMut<'_, Table> {
        self.tables.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::schema::table_def;

    #[test]
    fn tables_are_found_by_name_and_listed_in_name_order() {
        let mut set = TableSet::default();
        for name in ["users", "cards", "groups", "access_logs", "cards"] {
            set.insert(Table::new(table_def(name).unwrap()));
        }
        let names: Vec<&str> = set.values().map(Table::name).collect();
        assert_eq!(names, ["access_logs", "cards", "groups", "users"]);
        for name in names {
            assert_eq!(set.get(name).unwrap().name(), name);
            let place = set.place(name).unwrap();
            assert_eq!(set.at(place).name(), name);
            assert_eq!(set.at_mut(place).name(), name);
        }
        assert!(set.place("nope").is_none());
        assert!(set.get("nope").is_none());
    }
}
