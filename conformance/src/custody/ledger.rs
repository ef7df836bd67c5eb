//! The ledger: the keys of everything a run created on the terminal, and the clean-up
//! that removes exactly those.
//!
//! Rows are kept by the key of the object they belong to: a user's cards, PINs, QR codes,
//! templates and rule links go with the user, a rule's time-zone links with the rule, a
//! time zone's spans with the time zone. Removing a key removes its children by the key
//! (`cards` where `user_id` is one of the run's users) – never by a value a customer's
//! object could share.

use std::collections::BTreeSet;

use acs_core::terminal::TerminalClient;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What a run created, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// `users.id`s.
    #[serde(default)]
    pub users: BTreeSet<i64>,
    /// `access_rules.id`s.
    #[serde(default)]
    pub access_rules: BTreeSet<i64>,
    /// `time_zones.id`s.
    #[serde(default)]
    pub time_zones: BTreeSet<i64>,
    /// `holidays.id`s.
    #[serde(default)]
    pub holidays: BTreeSet<i64>,
    /// `devices.id`s.
    #[serde(default)]
    pub devices: BTreeSet<i64>,
    /// Users whose face photo the run set.
    #[serde(default)]
    pub photos: BTreeSet<i64>,
}

/// The tables whose rows the ledger keeps by their own `id`.
pub const KEYED_TABLES: [&str; 5] = ["users", "access_rules", "time_zones", "holidays", "devices"];

impl Ledger {
    /// The set of keys of `table` (one of [`KEYED_TABLES`] or `photos`).
    pub fn keys_mut(&mut self, table: &str) -> Option<&mut BTreeSet<i64>> {
        Some(match table {
            "users" => &mut self.users,
            "access_rules" => &mut self.access_rules,
            "time_zones" => &mut self.time_zones,
            "holidays" => &mut self.holidays,
            "devices" => &mut self.devices,
            "photos" => &mut self.photos,
            _ => return None,
        })
    }

    /// The keys of `table`.
    pub fn keys(&self, table: &str) -> Option<&BTreeSet<i64>> {
        Some(match table {
            "users" => &self.users,
            "access_rules" => &self.access_rules,
            "time_zones" => &self.time_zones,
            "holidays" => &self.holidays,
            "devices" => &self.devices,
            "photos" => &self.photos,
            _ => return None,
        })
    }

    /// Adds `id` to `table`; true when it was new.
    pub fn add(&mut self, table: &str, id: i64) -> bool {
        self.keys_mut(table).is_some_and(|k| k.insert(id))
    }

    /// Adds every key of `other`.
    pub fn merge(&mut self, other: &Ledger) {
        for table in KEYED_TABLES.into_iter().chain(["photos"]) {
            if let (Some(mine), Some(theirs)) = (self.keys_mut(table), other.keys(table)) {
                mine.extend(theirs.iter().copied());
            }
        }
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        KEYED_TABLES
            .into_iter()
            .chain(["photos"])
            .filter_map(|t| self.keys(t))
            .map(BTreeSet::len)
            .sum()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One line per table that has keys: `users 990000001, 990000002`.
    pub fn lines(&self) -> Vec<String> {
        KEYED_TABLES
            .into_iter()
            .chain(["photos"])
            .filter_map(|t| {
                let keys = self.keys(t)?;
                (!keys.is_empty()).then(|| {
                    let ids: Vec<String> = keys.iter().map(i64::to_string).collect();
                    let what = if t == "photos" {
                        "face photos of users"
                    } else {
                        t
                    };
                    format!("{what} {}", ids.join(", "))
                })
            })
            .collect()
    }

    /// The keys of `self` that `other` also holds.
    pub fn intersection(&self, other: &Ledger) -> Ledger {
        let mut out = Ledger::default();
        for table in KEYED_TABLES.into_iter().chain(["photos"]) {
            if let (Some(a), Some(b), Some(o)) =
                (self.keys(table), other.keys(table), out.keys_mut(table))
            {
                o.extend(a.intersection(b).copied());
            }
        }
        out
    }
}

/// Removes everything in `ledger` from the terminal: photos, then every child row by its
/// parent's key, then the keyed rows. A table the model lacks is not an error; anything
/// else the terminal refuses or cannot be reached for is.
pub async fn remove(driver: &TerminalClient, ledger: &Ledger) -> Result<(), String> {
    let tolerate = |e: acs_core::terminal::DriverError| -> Result<(), String> {
        if e.is_retryable() {
            Err(e.to_string())
        } else {
            Ok(())
        }
    };
    for user in &ledger.photos {
        if let Err(e) = driver.destroy_user_image(*user).await {
            tolerate(e)?;
        }
    }
    let ids = |set: &BTreeSet<i64>| set.iter().copied().collect::<Vec<i64>>();
    let users = ids(&ledger.users);
    let rules = ids(&ledger.access_rules);
    let zones = ids(&ledger.time_zones);
    let mut steps: Vec<(&str, &str, Vec<i64>)> = Vec::new();
    for table in [
        "cards",
        "pins",
        "qrcodes",
        "templates",
        "user_access_rules",
        "user_groups",
    ] {
        steps.push((table, "user_id", users.clone()));
    }
    steps.push(("user_access_rules", "access_rule_id", rules.clone()));
    steps.push(("access_rule_time_zones", "access_rule_id", rules.clone()));
    steps.push(("access_rule_time_zones", "time_zone_id", zones.clone()));
    steps.push(("time_spans", "time_zone_id", zones.clone()));
    steps.push(("users", "id", users));
    steps.push(("access_rules", "id", rules));
    steps.push(("time_zones", "id", zones));
    steps.push(("holidays", "id", ids(&ledger.holidays)));
    steps.push(("devices", "id", ids(&ledger.devices)));
    for (table, column, keys) in steps {
        if keys.is_empty() {
            continue;
        }
        // Bounded batches: a long `where` list is one request per 500 keys.
        for chunk in keys.chunks(500) {
            if let Err(e) = driver
                .destroy_objects(table, json!({ table: { column: chunk } }))
                .await
            {
                tolerate(e)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_merge_count_and_print_per_table() {
        let mut a = Ledger::default();
        assert!(a.add("users", 990_000_001));
        assert!(!a.add("users", 990_000_001));
        assert!(!a.add("cards", 5), "children are kept by their parent");
        let mut b = Ledger::default();
        b.add("access_rules", 990_000_500);
        b.add("photos", 990_000_001);
        a.merge(&b);
        assert_eq!(a.len(), 3);
        assert_eq!(
            a.lines(),
            vec![
                "users 990000001".to_owned(),
                "access_rules 990000500".to_owned(),
                "face photos of users 990000001".to_owned()
            ]
        );
        assert_eq!(a.intersection(&b), b);
    }
}
