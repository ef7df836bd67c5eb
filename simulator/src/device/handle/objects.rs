//! The objects API on the device handle: loading, creating, modifying and destroying rows of every table, seeding them, and finding users.

use serde_json::{Map, Value as Json};

use crate::device::built_rows::BuiltRows;
use crate::device::schema::{model_has_table, table_def};
use crate::device::table::{TableError, Upserted};
use crate::device::written::{RowMembers, RowsRequest, WrittenRow};
use crate::device::*;
use crate::wire::Members;

impl Device {
    fn table_name<'a>(s: &State, request: &Members<'a>) -> Result<&'a str, DeviceError> {
        Self::known_table(s, request.string("object")?)
    }

    /// `name`, when the device's model has such a table.
    fn known_table<'a>(s: &State, name: &'a str) -> Result<&'a str, DeviceError> {
        if !model_has_table(s.model, name) {
            return Err(TableError::NoSuchTable(name.to_owned()).into());
        }
        Ok(name)
    }

    /// `load_objects.fcgi`: the reply object `{"<table>": [rows]}`.
    pub fn load_objects(&self, request: Members<'_>) -> Result<Json, DeviceError> {
        let s = self.read();
        let table = Self::table_name(&s, &request)?;
        let rows = query::load(&s.db, request)?;
        let mut reply = Map::new();
        reply.insert(
            table.to_owned(),
            Json::Array(rows.into_iter().map(Json::Object).collect()),
        );
        Ok(Json::Object(reply))
    }

    /// `load_objects.fcgi` printed straight from the tables: the reply's text (what
    /// printing [`Device::load_objects`] gives), and whether it holds a secret the journal
    /// must mask.
    pub(crate) fn load_objects_printed(
        &self,
        request: Members<'_>,
    ) -> Result<(Vec<u8>, bool), DeviceError> {
        let s = self.read();
        let table = Self::table_name(&s, &request)?;
        let page = query::select(&s.db, request)?;
        let mut text = Vec::new();
        let holds_secret = page.print_reply(table, &mut text);
        Ok((text, holds_secret))
    }

    /// `create_objects.fcgi`: the new ids in input order.
    pub fn create_objects(&self, request: Members<'_>) -> Result<Vec<i64>, DeviceError> {
        let rows = rows_member(&request)?;
        self.mutate(|s| {
            let table = Self::table_name(s, &request)?;
            Self::insert_logged(s, table, &rows)
        })
    }

    /// `create_objects.fcgi` of a request read straight from its text: the same as
    /// [`Device::create_objects`] of the JSON document it holds. `built`, the request's
    /// rows built before ([`Device::build_rows`]), are stored as they are when they fit
    /// the table; otherwise the rows are built from the request.
    pub fn create_written(
        &self,
        request: &RowsRequest<'_>,
        built: Option<BuiltRows>,
    ) -> Result<Vec<i64>, DeviceError> {
        self.write_rows(request, |s, table, rows| {
            let fits = |built: &BuiltRows| {
                built.def.name == table
                    && built.len() == rows.len()
                    && s.db
                        .table(table)
                        .is_ok_and(|t| t.has_its_definitions_columns())
            };
            let ids = match built.filter(fits) {
                Some(built) => s.db.insert_built(built)?,
                None => s.db.insert(table, rows)?,
            };
            s.log_changes("insert", table, &ids);
            Ok(ids)
        })
    }

    /// The rows of a create read straight from its text, built into cells without the
    /// device's lock (see [`BuiltRows`]); `None` when they cannot be.
    pub fn build_rows(&self, request: &RowsRequest<'_>) -> Option<BuiltRows> {
        let def =
            table_def(&request.object).filter(|_| model_has_table(self.model, &request.object))?;
        BuiltRows::build(def, &request.rows())
    }

    /// Checks the rows of a request read straight from its text, then `write`s them to
    /// the table it names, all in one change.
    fn write_rows<R>(
        &self,
        request: &RowsRequest<'_>,
        write: impl FnOnce(&mut State, &str, &[WrittenRow<'_, '_>]) -> Result<R, DeviceError>,
    ) -> Result<R, DeviceError> {
        check_row_count(request.len())?;
        let rows = request.rows();
        self.mutate(|s| {
            let table = Self::known_table(s, &request.object)?;
            write(s, table, &rows)
        })
    }

    /// Inserts `rows` into `table` and logs them as inserted.
    fn insert_logged(
        s: &mut State,
        table: &str,
        rows: &[impl RowMembers],
    ) -> Result<Vec<i64>, DeviceError> {
        let ids = s.db.insert(table, rows)?;
        s.log_changes("insert", table, &ids);
        Ok(ids)
    }

    /// `modify_objects.fcgi`: the number of rows changed.
    pub fn modify_objects(&self, request: Members<'_>) -> Result<usize, DeviceError> {
        let values = request.object("values")?;
        self.mutate(|s| {
            let table = Self::table_name(s, &request)?;
            let ids = query::matching_rowids(&s.db, table, request.get("where"))?;
            let n = s.db.update(table, &values, &ids)?;
            s.log_changes("update", table, &ids);
            Ok(n)
        })
    }

    /// `destroy_objects.fcgi`: the number of rows deleted (no `where` = every row).
    pub fn destroy_objects(&self, request: Members<'_>) -> Result<usize, DeviceError> {
        self.mutate(|s| {
            let table = Self::table_name(s, &request)?;
            let ids = query::matching_rowids(&s.db, table, request.get("where"))?;
            let (n, users) = s.db.delete(table, &ids)?;
            for user in users {
                s.photos.remove(user);
            }
            s.log_changes("delete", table, &ids);
            Ok(n)
        })
    }

    /// `create_or_modify_objects.fcgi`.
    pub fn create_or_modify_objects(&self, request: Members<'_>) -> Result<Upserted, DeviceError> {
        let rows = rows_member(&request)?;
        self.mutate(|s| {
            let table = Self::table_name(s, &request)?;
            Self::upsert_logged(s, table, &rows)
        })
    }

    /// `create_or_modify_objects.fcgi` of a request read straight from its text: the
    /// same as [`Device::create_or_modify_objects`] of the JSON document it holds.
    pub fn create_or_modify_written(
        &self,
        request: &RowsRequest<'_>,
    ) -> Result<Upserted, DeviceError> {
        self.write_rows(request, |s, table, rows| {
            Self::upsert_logged(s, table, rows)
        })
    }

    /// Creates or modifies `rows` of `table` and logs them as updated.
    fn upsert_logged(
        s: &mut State,
        table: &str,
        rows: &[impl RowMembers],
    ) -> Result<Upserted, DeviceError> {
        let up = s.db.upsert(table, rows)?;
        s.log_changes("update", table, &up.ids);
        Ok(up)
    }

    /// Reads a table directly (tests and inspection), every column, in rowid order.
    pub fn rows(&self, table: &str) -> Result<Vec<Map<String, Json>>, DeviceError> {
        let s = self.lock();
        let t = s.db.table(table)?;
        Ok(t.rows().map(|(_, r)| t.row_json(r)).collect())
    }

    /// How many rows a table holds (tests and inspection; nothing is copied).
    pub fn row_count(&self, table: &str) -> Result<usize, DeviceError> {
        Ok(self.lock().db.table(table)?.len())
    }

    /// Inserts rows directly (seeding a device from a test), with the API's rules.
    pub fn seed_rows(
        &self,
        table: &str,
        rows: &[Map<String, Json>],
    ) -> Result<Vec<i64>, DeviceError> {
        self.mutate(|s| Ok(s.db.insert(table, rows)?))
    }

    /// Whether a user with this id exists.
    pub fn user_exists(&self, user_id: i64) -> bool {
        self.lock().user_exists(user_id)
    }

    /// The id of the user with this `registration`, if exactly such a user exists.
    pub fn user_by_registration(&self, registration: &str) -> Option<i64> {
        let s = self.lock();
        let users = s.db.table("users").ok()?;
        users
            .rows()
            .find(|(_, row)| users.cell(row, "registration").as_text() == Some(registration))
            .map(|(id, _)| id)
    }
}
