//! The guard: decides, for every request of a run before it reaches the terminal, whether
//! it may pass, and records what it creates.
//!
//! Reads pass. A write passes only when the guard can prove from the request alone that
//! it touches nothing but the reserved id range and the suite's own values:
//!
//! - `create_objects` / `create_or_modify_objects`: every row's key (`id`, or the parent
//!   key of a child row: `user_id`, `access_rule_id`, `time_zone_id`) is reserved; a
//!   user carries the suite's registration marker. The new keys go to the ledger – and the
//!   ledger to disk – before the request is forwarded, so a run killed at any instant
//!   leaves a journal that names them.
//! - `modify_objects` / `destroy_objects`: the `where` names the object's own table and
//!   confines it by a reserved key (or, for cards, by values of the suite's card range,
//!   which the survey proved no customer card holds). A `where` on another table, the
//!   array form, or none at all (a whole table) is refused.
//! - photos (`user_set_image`, `user_set_image_list`, `user_destroy_image`) and
//!   `remote_enroll`: reserved users only.
//! - `set_configuration`: only the keys the restore journal saved (and the clean-up
//!   restores).
//! - `set_system_time`: only a request the terminal must refuse (a member missing or
//!   mistyped, as the error cases send); a well-formed one would move the customer's clock.
//! - any other command (reboot, actions, `change_login`, a factory reset …) is refused.
//!
//! A refused request never reaches the terminal: the guard answers it with the device's
//! error envelope, naming itself, and the refusal is listed in the run's report.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value as Json};

use super::ledger::Ledger;
use super::{MARKER, SUITE_CARDS, reserved};

/// Commands that only read (or end the caller's own session or enrollment).
const READS: [&str; 15] = [
    "login",
    "logout",
    "session_is_valid",
    "load_objects",
    "count_objects",
    "get_configuration",
    "system_information",
    "user_get_image",
    "user_get_image_list",
    "user_list_images",
    "user_test_image",
    "enroller_state",
    "cancel_remote_enroll",
    "get_language",
    "face_template_count_distinct",
];

/// Where the ledger goes before a request is forwarded (the restore journal).
pub type Persist = Arc<dyn Fn(&Ledger) -> Result<(), String> + Send + Sync>;

/// The guard of one run.
#[derive(Clone)]
pub struct Guard {
    ledger: Arc<Mutex<Ledger>>,
    persist: Persist,
    config_keys: Arc<BTreeSet<(String, String)>>,
    changes: Arc<Mutex<Vec<String>>>,
    refusals: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("ledger", &self.ledger())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a request may not pass.
type Refusal = String;

impl Guard {
    /// A guard starting from `ledger` (keys taken over from an earlier run, or none),
    /// writing the ledger through `persist`, letting `set_configuration` change only the
    /// `(section, key)` pairs of `config_keys`.
    pub fn new(
        ledger: Ledger,
        persist: Persist,
        config_keys: impl IntoIterator<Item = (String, String)>,
    ) -> Guard {
        Guard {
            ledger: Arc::new(Mutex::new(ledger)),
            persist,
            config_keys: Arc::new(config_keys.into_iter().collect()),
            changes: Arc::default(),
            refusals: Arc::default(),
        }
    }

    /// What the run created so far.
    pub fn ledger(&self) -> Ledger {
        lock(&self.ledger).clone()
    }

    /// Records a key created outside the guard (the run lock), and persists it.
    pub fn adopt(&self, table: &str, id: i64) -> Result<(), String> {
        let mut ledger = lock(&self.ledger);
        if ledger.add(table, id) {
            (self.persist)(&ledger)?;
        }
        Ok(())
    }

    /// The changes recorded since the last call (one line each), for the case that made
    /// them.
    pub fn take_changes(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.changes))
    }

    /// Every request refused so far.
    pub fn refusals(&self) -> Vec<String> {
        lock(&self.refusals).clone()
    }

    /// Decides whether `command` (without `.fcgi`) with `query` and `body` may reach the
    /// terminal; records the keys it creates first. `Err` says why not.
    pub fn admit(&self, command: &str, query: &str, body: &[u8]) -> Result<(), String> {
        let verdict = self.check(command, query, body);
        if let Err(why) = &verdict {
            let line = format!("{command}: {why}");
            tracing::warn!(refused = %line, "the guard kept a request from the terminal");
            lock(&self.refusals).push(line);
        }
        verdict
    }

    fn check(&self, command: &str, query: &str, body: &[u8]) -> Result<(), Refusal> {
        if READS.contains(&command) {
            return Ok(());
        }
        let json = || serde_json::from_slice::<Json>(body).unwrap_or(Json::Null);
        match command {
            "create_objects" | "create_or_modify_objects" => self.create(&json()),
            "modify_objects" | "destroy_objects" => confined(&json()).map(|_| {
                if command == "modify_objects" {
                    self.note(format!("modified {}", describe_where(&json())));
                }
            }),
            "user_set_image" => {
                let user = query_int(query, "user_id");
                self.photos(
                    user.into_iter().collect(),
                    query_int(query, "user_id").is_none(),
                )
            }
            "user_set_image_list" => {
                let users = json()["user_images"]
                    .as_array()
                    .map(|items| items.iter().filter_map(|i| i["user_id"].as_i64()).collect())
                    .unwrap_or_default();
                self.photos(users, false)
            }
            "user_destroy_image" => {
                let j = json();
                if j["all"] == Json::Bool(true) || j["dangling"] == Json::Bool(true) {
                    return Err(
                        "removing all (or dangling) photos would touch the customer's".into(),
                    );
                }
                let users: Vec<i64> = match (&j["user_ids"], &j["user_id"]) {
                    (Json::Array(ids), _) => ids.iter().filter_map(Json::as_i64).collect(),
                    (_, id) => id.as_i64().into_iter().collect(),
                };
                all_reserved("user_destroy_image", "user_id", &users)
            }
            "remote_enroll" => {
                let j = json();
                match j.get("user_id") {
                    None => Ok(()),
                    Some(id) => {
                        let id = id.as_i64().unwrap_or(-1);
                        all_reserved("remote_enroll", "user_id", &[id])?;
                        if j["save"] == Json::Bool(true) {
                            self.record(
                                &[("users", id)],
                                &format!("enrollment saved for user {id}"),
                            )?;
                            self.record(&[("photos", id)], "")?;
                        }
                        Ok(())
                    }
                }
            }
            "set_configuration" => self.configuration(&json()),
            "set_system_time" => {
                let j = json();
                let complete = ["day", "month", "year", "hour", "minute", "second"]
                    .iter()
                    .all(|k| j.get(*k).is_some_and(Json::is_number));
                if complete {
                    Err("setting the terminal's clock would change the customer's device".into())
                } else {
                    Ok(())
                }
            }
            other => Err(format!(
                "the suite may not send {other} to a terminal it does not own"
            )),
        }
    }

    fn note(&self, line: String) {
        lock(&self.changes).push(line);
    }

    /// Adds keys to the ledger and persists it before the request goes out.
    fn record(&self, keys: &[(&str, i64)], line: &str) -> Result<(), Refusal> {
        let mut ledger = lock(&self.ledger);
        let mut new = false;
        for (table, id) in keys {
            new |= ledger.add(table, *id);
        }
        if new {
            (self.persist)(&ledger)
                .map_err(|e| format!("the restore journal cannot be written: {e}"))?;
        }
        drop(ledger);
        if !line.is_empty() {
            self.note(line.to_owned());
        }
        Ok(())
    }

    fn photos(&self, users: Vec<i64>, missing: bool) -> Result<(), Refusal> {
        if missing {
            return Ok(()); // the terminal refuses a photo without a user
        }
        all_reserved("user_set_image", "user_id", &users)?;
        let keys: Vec<(&str, i64)> = users.iter().map(|u| ("photos", *u)).collect();
        let ids: Vec<String> = users.iter().map(i64::to_string).collect();
        self.record(&keys, &format!("face photo of user {}", ids.join(", ")))
    }

    fn create(&self, body: &Json) -> Result<(), Refusal> {
        let table = body["object"].as_str().unwrap_or_default();
        let rows: Vec<&Map<String, Json>> = match &body["values"] {
            Json::Array(rows) => rows.iter().filter_map(Json::as_object).collect(),
            Json::Object(row) => vec![row],
            // Nothing the terminal could create from: it refuses the request itself.
            _ => return Ok(()),
        };
        let int = |row: &Map<String, Json>, column: &str| row.get(column).and_then(Json::as_i64);
        let mut keys = Vec::new();
        let mut parents = std::collections::BTreeSet::new();
        for row in &rows {
            match table {
                "users" | "access_rules" | "time_zones" | "holidays" | "devices" => {
                    let Some(id) = int(row, "id") else {
                        return Err(format!(
                            "a {table} row without an id would get one outside the reserved range"
                        ));
                    };
                    all_reserved(table, "id", &[id])?;
                    if table == "users" {
                        let registration = row.get("registration").and_then(Json::as_str);
                        if !registration.is_some_and(|r| r.starts_with(MARKER)) {
                            return Err(format!(
                                "user {id} lacks the suite's registration marker '{MARKER}'"
                            ));
                        }
                    }
                    keys.push((table, id));
                }
                "cards" | "pins" | "qrcodes" | "templates" | "user_access_rules"
                | "user_groups" => {
                    let user = int(row, "user_id").unwrap_or(-1);
                    all_reserved(table, "user_id", &[user])?;
                    parents.insert(format!("user {user}"));
                    if table == "user_access_rules" {
                        all_reserved(
                            table,
                            "access_rule_id",
                            &[int(row, "access_rule_id").unwrap_or(-1)],
                        )?;
                    }
                }
                "access_rule_time_zones" => {
                    let rule = int(row, "access_rule_id").unwrap_or(-1);
                    all_reserved(table, "access_rule_id", &[rule])?;
                    let zone = int(row, "time_zone_id").unwrap_or(-1);
                    all_reserved(table, "time_zone_id", &[zone])?;
                    parents.insert(format!("rule {rule}"));
                }
                "time_spans" => {
                    let zone = int(row, "time_zone_id").unwrap_or(-1);
                    all_reserved(table, "time_zone_id", &[zone])?;
                    parents.insert(format!("time zone {zone}"));
                }
                other => return Err(format!("the suite does not write the table {other}")),
            }
        }
        let line = if keys.is_empty() {
            let of: Vec<String> = parents.into_iter().collect();
            format!("{} {table} row(s) of {}", rows.len(), of.join(", "))
        } else {
            let ids: Vec<String> = keys.iter().map(|(_, id)| id.to_string()).collect();
            format!("{table} {}", ids.join(", "))
        };
        self.record(&keys, &format!("created {line}"))
    }

    fn configuration(&self, body: &Json) -> Result<(), Refusal> {
        let Some(sections) = body.as_object() else {
            return Ok(()); // refused by the terminal itself
        };
        let mut keys = Vec::new();
        for (section, values) in sections {
            let Some(values) = values.as_object() else {
                continue;
            };
            for key in values.keys() {
                if !self.config_keys.contains(&(section.clone(), key.clone())) {
                    return Err(format!(
                        "{section}.{key} is not among the settings the run saved and restores"
                    ));
                }
                keys.push(format!("{section}.{key}"));
            }
        }
        self.note(format!("set {} (restored at the end)", keys.join(", ")));
        Ok(())
    }
}

/// Fails unless every id is in the reserved range.
fn all_reserved(table: &str, column: &str, ids: &[i64]) -> Result<(), Refusal> {
    match ids.iter().find(|id| !reserved(**id)) {
        Some(id) => Err(format!(
            "{table}.{column} {id} is outside the reserved range"
        )),
        None if ids.is_empty() => Err(format!("{table}: no {column} to confine the request")),
        None => Ok(()),
    }
}

/// The integers of a condition's value (a scalar or a list); `None` if any is not one.
fn ints(v: &Json) -> Option<Vec<i64>> {
    match v {
        Json::Array(items) => items.iter().map(Json::as_i64).collect(),
        other => other.as_i64().map(|i| vec![i]),
    }
}

/// The columns that confine each table to the suite's objects.
fn confining(table: &str) -> &'static [&'static str] {
    match table {
        "users" | "access_rules" | "time_zones" | "holidays" | "devices" => &["id"],
        "cards" => &["user_id", "value"],
        "pins" | "qrcodes" | "templates" | "user_groups" => &["user_id"],
        "user_access_rules" => &["user_id", "access_rule_id"],
        "access_rule_time_zones" => &["access_rule_id", "time_zone_id"],
        "time_spans" => &["time_zone_id"],
        _ => &[],
    }
}

/// Checks that a `modify_objects` / `destroy_objects` request is confined to the suite's
/// objects.
fn confined(body: &Json) -> Result<(), Refusal> {
    let table = body["object"].as_str().unwrap_or_default();
    let where_ = match body.get("where") {
        None | Some(Json::Null) => {
            return Err(format!(
                "a request without `where` would touch every row of {table}"
            ));
        }
        Some(Json::Object(w)) => w,
        Some(_) => {
            return Err(
                "only the nested `where` form on the object's own table is let through".into(),
            );
        }
    };
    if confining(table).is_empty() {
        return Err(format!("the suite does not write the table {table}"));
    }
    let Some(conditions) = where_.get(table).and_then(Json::as_object) else {
        return Err(format!("the `where` does not constrain {table} itself"));
    };
    if let Some(other) = where_.keys().find(|t| *t != table) {
        return Err(format!(
            "a `where` on {other} reaches rows the suite may not own"
        ));
    }
    for column in confining(table) {
        let Some(values) = conditions.get(*column).and_then(ints) else {
            continue;
        };
        if values.is_empty() {
            continue;
        }
        let ok = if table == "cards" && *column == "value" {
            values
                .iter()
                .all(|v| u64::try_from(*v).is_ok_and(|v| SUITE_CARDS.contains(&v)))
        } else {
            values.iter().all(|v| reserved(*v))
        };
        if ok {
            return Ok(());
        }
        return Err(format!(
            "{table}.{column} {values:?} reaches outside the suite's objects"
        ));
    }
    Err(format!(
        "the `where` does not confine {table} by {}",
        confining(table).join(" or ")
    ))
}

fn describe_where(body: &Json) -> String {
    format!(
        "{} where {}",
        body["object"].as_str().unwrap_or_default(),
        body.get("where").map(Json::to_string).unwrap_or_default()
    )
}

fn query_int(query: &str, name: &str) -> Option<i64> {
    query.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == name).then(|| v.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn guard() -> (Guard, Arc<Mutex<Vec<Ledger>>>) {
        let written: Arc<Mutex<Vec<Ledger>>> = Arc::default();
        let sink = written.clone();
        let g = Guard::new(
            Ledger::default(),
            Arc::new(move |l: &Ledger| {
                lock(&sink).push(l.clone());
                Ok(())
            }),
            [("monitor".to_owned(), "hostname".to_owned())],
        );
        (g, written)
    }

    fn admit(g: &Guard, command: &str, body: Json) -> Result<(), String> {
        g.admit(command, "", body.to_string().as_bytes())
    }

    #[test]
    fn creates_in_the_range_are_journaled_before_they_pass() {
        let (g, written) = guard();
        admit(
            &g,
            "create_objects",
            json!({"object": "users", "values": [
            {"id": 990_000_001, "name": "a", "registration": "CF-1"}]}),
        )
        .expect("a reserved user");
        assert_eq!(lock(&written).last().map(|l| l.users.len()), Some(1));
        admit(
            &g,
            "create_objects",
            json!({"object": "cards", "values": [
            {"value": 5, "user_id": 990_000_001}]}),
        )
        .expect("a card of a reserved user");
        assert_eq!(g.take_changes().len(), 2);
    }

    #[test]
    fn anything_that_could_touch_a_customer_object_is_refused() {
        let (g, _) = guard();
        for (command, body) in [
            (
                "create_objects",
                json!({"object": "users", "values": [{"id": 5, "registration": "CF-5"}]}),
            ),
            (
                "create_objects",
                json!({"object": "users", "values": [{"name": "auto id"}]}),
            ),
            (
                "create_objects",
                json!({"object": "users", "values": [{"id": 990_000_001, "registration": "X"}]}),
            ),
            (
                "create_objects",
                json!({"object": "cards", "values": [{"value": 1, "user_id": 12}]}),
            ),
            (
                "create_objects",
                json!({"object": "portals", "values": [{"id": 990_000_001}]}),
            ),
            (
                "destroy_objects",
                json!({"object": "cards", "where": {"cards": {"value": 7}}}),
            ),
            ("destroy_objects", json!({"object": "users"})),
            (
                "destroy_objects",
                json!({"object": "users", "where": {"users": {"id": [990_000_001, 3]}}}),
            ),
            (
                "destroy_objects",
                json!({"object": "cards", "where": {"users": {"registration": "CF-1"}}}),
            ),
            (
                "destroy_objects",
                json!({"object": "users", "where": [{"field": "id", "operator": ">", "value": 0}]}),
            ),
            (
                "modify_objects",
                json!({"object": "users", "values": {"name": "x"}, "where": {"users": {"name": "y"}}}),
            ),
            ("user_destroy_image", json!({"all": true})),
            ("user_destroy_image", json!({"user_id": 5})),
            (
                "set_configuration",
                json!({"general": {"beep_enabled": "0"}}),
            ),
            (
                "set_system_time",
                json!({"day": 1, "month": 1, "year": 2026, "hour": 1, "minute": 1, "second": 1}),
            ),
            ("reboot", json!({})),
            ("execute_actions", json!({"actions": []})),
        ] {
            assert!(
                admit(&g, command, body.clone()).is_err(),
                "{command} {body}"
            );
        }
        assert!(
            g.admit("user_set_image", "user_id=12&timestamp=1", b"x")
                .is_err()
        );
        assert_eq!(g.refusals().len(), 18);
        assert!(g.ledger().is_empty());
    }

    #[test]
    fn confined_writes_and_reads_pass() {
        let (g, _) = guard();
        for (command, body) in [
            ("load_objects", json!({"object": "users"})),
            (
                "destroy_objects",
                json!({"object": "cards", "where": {"cards": {"value": [SUITE_CARDS.start + 3]}}}),
            ),
            (
                "destroy_objects",
                json!({"object": "user_access_rules", "where": {"user_access_rules": {"user_id": 990_000_001, "access_rule_id": [4]}}}),
            ),
            (
                "modify_objects",
                json!({"object": "users", "values": {"name": "x"}, "where": {"users": {"id": 990_000_005}}}),
            ),
            (
                "set_configuration",
                json!({"monitor": {"hostname": "127.0.0.1"}}),
            ),
            ("set_system_time", json!({"day": 1, "month": 1})),
            ("user_destroy_image", json!({"user_id": 990_000_002})),
        ] {
            assert_eq!(admit(&g, command, body.clone()), Ok(()), "{command} {body}");
        }
        assert_eq!(
            g.admit("user_set_image", "user_id=990000003&timestamp=1", b"x"),
            Ok(())
        );
        assert_eq!(g.ledger().photos.len(), 1);
    }
}
