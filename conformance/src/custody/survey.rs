//! The survey before a run writes anything: what the terminal already holds in the
//! reserved id range and under the suite's values, and whose it is.
//!
//! An object is the suite's own *leftover* when it carries the suite's marker: a user in
//! the range whose registration starts with [`MARKER`]; a rule, time zone or device in the
//! range named by the suite (`conformance…`, `acs-core…`); a row that belongs to such an
//! object (a leftover user's cards, a leftover time zone's spans). Anything else in the
//! range, any card holding a value of [`SUITE_CARDS`] that is not a leftover user's, and
//! any user outside the range with the marker is *foreign*: the run must not start while
//! it is there.

use std::collections::BTreeSet;

use acs_core::terminal::TerminalClient;
use serde_json::{Map, Value as Json, json};

use super::ledger::Ledger;
use super::lock::{LOCK_ID, RunLock};
use super::{MARKER, SUITE_CARDS, reserved, suite_name};

/// What the survey found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Survey {
    /// Objects the suite did not create that it would touch, one line each.
    pub foreign: Vec<String>,
    /// Keys of objects an earlier run of the suite left behind.
    pub leftovers: Ledger,
    /// The lock row of a run holding (or having held) the terminal.
    pub lock: Option<RunLock>,
}

impl Survey {
    /// The leftovers, one line per table.
    pub fn leftover_lines(&self) -> Vec<String> {
        self.leftovers.lines()
    }
}

fn int(row: &Map<String, Json>, column: &str) -> Option<i64> {
    row.get(column).and_then(Json::as_i64)
}

fn text<'a>(row: &'a Map<String, Json>, column: &str) -> &'a str {
    row.get(column).and_then(Json::as_str).unwrap_or_default()
}

/// Every row of `table` with `fields`; a table the model lacks has none.
async fn rows(
    driver: &TerminalClient,
    table: &str,
    fields: &[&str],
) -> Result<Vec<Map<String, Json>>, String> {
    match driver
        .load_objects(table, Map::from_iter([("fields".into(), json!(fields))]))
        .await
    {
        Ok(rows) => Ok(rows),
        Err(e) if e.is_retryable() => Err(format!("cannot read {table}: {e}")),
        Err(_) => Ok(Vec::new()),
    }
}

/// Reads the terminal and sorts what is in the suite's way into foreign objects and
/// leftovers. Reads only.
pub async fn survey(driver: &TerminalClient) -> Result<Survey, String> {
    let mut out = Survey::default();
    let mut foreign_users = BTreeSet::new();
    for u in rows(driver, "users", &["id", "name", "registration"]).await? {
        let (Some(id), name, registration) =
            (int(&u, "id"), text(&u, "name"), text(&u, "registration"))
        else {
            continue;
        };
        if id == LOCK_ID
            && let Some(lock) = RunLock::parse(name)
        {
            out.lock = Some(lock);
            out.leftovers.add("users", id);
        } else if reserved(id) && registration.starts_with(MARKER) {
            out.leftovers.add("users", id);
        } else if reserved(id) {
            foreign_users.insert(id);
            out.foreign
                .push(format!("user {id} '{name}' (an id in the reserved range)"));
        } else if registration.starts_with(MARKER) {
            out.foreign.push(format!(
                "user {id} '{name}' with registration '{registration}' (the suite's registration marker)"
            ));
        }
    }
    let our_users = out.leftovers.users.clone();
    let user_is_ours = |id: i64| our_users.contains(&id);
    let mut foreign = Vec::new();
    for c in rows(driver, "cards", &["value", "user_id"]).await? {
        let (value, user) = (
            int(&c, "value").unwrap_or(-1),
            int(&c, "user_id").unwrap_or(-1),
        );
        let suite_value = u64::try_from(value).is_ok_and(|v| SUITE_CARDS.contains(&v));
        if user_is_ours(user) {
            continue;
        }
        if suite_value {
            foreign.push(format!(
                "card {value} of user {user} (a card value the suite uses)"
            ));
        } else if reserved(user) && !foreign_users.contains(&user) {
            foreign.push(format!(
                "card {value} of user {user} (a user id in the reserved range)"
            ));
        }
    }
    for table in ["pins", "qrcodes", "templates", "user_groups"] {
        for r in rows(driver, table, &["user_id"]).await? {
            let user = int(&r, "user_id").unwrap_or(-1);
            if reserved(user) && !user_is_ours(user) && !foreign_users.contains(&user) {
                foreign.push(format!(
                    "{table} row of user {user} (a user id in the reserved range)"
                ));
            }
        }
    }
    for table in ["access_rules", "time_zones", "holidays", "devices"] {
        for r in rows(driver, table, &["id", "name"]).await? {
            let (Some(id), name) = (int(&r, "id"), text(&r, "name")) else {
                continue;
            };
            if !reserved(id) {
                continue;
            }
            if suite_name(name) {
                out.leftovers.add(table, id);
            } else {
                foreign.push(format!(
                    "{table} {id} '{name}' (an id in the reserved range)"
                ));
            }
        }
    }
    let (our_rules, our_zones) = (
        out.leftovers.access_rules.clone(),
        out.leftovers.time_zones.clone(),
    );
    let rule_ours = |id: i64| our_rules.contains(&id);
    let zone_ours = |id: i64| our_zones.contains(&id);
    // A link is the suite's when its reserved side is the suite's: a customer's user
    // linked to a reserved rule would lose the link when the rule goes.
    for r in rows(driver, "user_access_rules", &["user_id", "access_rule_id"]).await? {
        let (user, rule) = (
            int(&r, "user_id").unwrap_or(-1),
            int(&r, "access_rule_id").unwrap_or(-1),
        );
        if !(reserved(user) || reserved(rule)) || foreign_users.contains(&user) {
            continue;
        }
        if !(user_is_ours(user) && (!reserved(rule) || rule_ours(rule))) {
            foreign.push(format!(
                "user_access_rules link of user {user} to rule {rule} (reaches the reserved range)"
            ));
        }
    }
    for r in rows(
        driver,
        "access_rule_time_zones",
        &["access_rule_id", "time_zone_id"],
    )
    .await?
    {
        let (rule, zone) = (
            int(&r, "access_rule_id").unwrap_or(-1),
            int(&r, "time_zone_id").unwrap_or(-1),
        );
        if !(reserved(rule) || reserved(zone)) {
            continue;
        }
        if !(rule_ours(rule) && (!reserved(zone) || zone_ours(zone))) {
            foreign.push(format!("access_rule_time_zones link of rule {rule} to time zone {zone} (reaches the reserved range)"));
        }
    }
    for r in rows(driver, "time_spans", &["id", "time_zone_id"]).await? {
        let zone = int(&r, "time_zone_id").unwrap_or(-1);
        if reserved(zone) && !out.leftovers.time_zones.contains(&zone) {
            foreign.push(format!(
                "time_spans row {} of time zone {zone} (a time zone id in the reserved range)",
                int(&r, "id").unwrap_or(-1)
            ));
        }
    }
    match driver.list_user_images().await {
        Ok(photos) => {
            for (user, _) in photos {
                if user_is_ours(user) {
                    out.leftovers.add("photos", user);
                } else if reserved(user) && !foreign_users.contains(&user) {
                    foreign.push(format!(
                        "face photo of user {user} (a user id in the reserved range)"
                    ));
                }
            }
        }
        Err(e) if e.is_retryable() => return Err(format!("cannot list the photos: {e}")),
        Err(_) => {}
    }
    out.foreign.extend(foreign);
    Ok(out)
}
