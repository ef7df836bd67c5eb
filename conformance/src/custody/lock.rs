//! One run per terminal: a run marks the terminal with a reserved user row naming its run
//! id, when it started and until when it holds the terminal (refreshed before every
//! case). A second run finds the row and refuses to start with the first one's id and
//! start time; a row whose expiry has passed was left by a run that died, and is taken
//! over. Creating the row is the atomic step: the terminal refuses a second user with the
//! same id, so of two runs starting at once only one gets it.

use std::time::Duration;

use acs_core::terminal::TerminalClient;
use serde_json::{Map, Value as Json, json};

use crate::context::RESERVED_TO;

/// The lock row's `users.id`: the last id of the reserved range.
pub const LOCK_ID: i64 = RESERVED_TO - 1;

/// The lock row's registration (it carries the suite's marker).
pub const LOCK_REGISTRATION: &str = "CF-LOCK";

/// How long a lock holds without being refreshed.
pub const HOLD: Duration = Duration::from_secs(15 * 60);

/// A run's mark on the terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLock {
    /// The run's id.
    pub run_id: String,
    /// When it started (Unix seconds, the suite's clock).
    pub since: i64,
    /// Until when it holds (Unix seconds).
    pub until: i64,
}

impl RunLock {
    /// A new lock for `run_id`, from `now` (Unix seconds).
    pub fn new(run_id: &str, now: i64) -> RunLock {
        RunLock {
            run_id: run_id.to_owned(),
            since: now,
            until: now + i64::try_from(HOLD.as_secs()).unwrap_or(900),
        }
    }

    /// The user row's name: `acs-conformance <run id> <since> <until>`.
    pub fn name(&self) -> String {
        format!(
            "acs-conformance {} {} {}",
            self.run_id, self.since, self.until
        )
    }

    /// Reads a lock back from a user row's name.
    pub fn parse(name: &str) -> Option<RunLock> {
        let mut words = name.strip_prefix("acs-conformance ")?.split(' ');
        Some(RunLock {
            run_id: words.next()?.to_owned(),
            since: words.next()?.parse().ok()?,
            until: words.next()?.parse().ok()?,
        })
    }

    /// Whether it still holds at `now`.
    pub fn live(&self, now: i64) -> bool {
        now < self.until
    }

    /// When it started, for a person.
    pub fn started(&self) -> String {
        jiff::Timestamp::from_second(self.since)
            .map_or_else(|_| self.since.to_string(), |t| t.to_string())
    }
}

/// A fresh run id.
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{:x}{:04x}",
        nanos % 0xFFFF_FFFF_FFFF,
        std::process::id() % 0xFFFF
    )
}

/// The suite's clock, Unix seconds.
pub fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Takes the terminal for `lock`. `Err` says who holds it, or what went wrong.
pub async fn acquire(driver: &TerminalClient, lock: &RunLock) -> Result<(), String> {
    let row = Map::from_iter([
        ("id".into(), json!(LOCK_ID)),
        ("name".into(), json!(lock.name())),
        ("registration".into(), json!(LOCK_REGISTRATION)),
    ]);
    match driver.create_objects("users", vec![row]).await {
        Ok(_) => Ok(()),
        Err(e) => match holder(driver).await {
            Ok(Some(other)) => Err(in_use(&other)),
            _ => Err(format!("cannot mark the terminal for this run: {e}")),
        },
    }
}

/// Extends `lock` on the terminal.
pub async fn refresh(driver: &TerminalClient, lock: &mut RunLock) -> Result<(), String> {
    lock.until = now() + i64::try_from(HOLD.as_secs()).unwrap_or(900);
    driver
        .modify_objects(
            "users",
            Map::from_iter([("name".into(), json!(lock.name()))]),
            json!({"users": {"id": LOCK_ID}}),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The run holding the terminal, if a lock row is there.
pub async fn holder(driver: &TerminalClient) -> Result<Option<RunLock>, String> {
    let rows = driver
        .load_objects(
            "users",
            Map::from_iter([("where".into(), json!({"users": {"id": LOCK_ID}}))]),
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows
        .first()
        .and_then(|r| r.get("name").and_then(Json::as_str))
        .and_then(RunLock::parse))
}

/// The refusal a second run prints.
pub fn in_use(other: &RunLock) -> String {
    format!(
        "the terminal is in use by another conformance run ({}, started {}, holding it until {}); wait for it to finish",
        other.run_id,
        other.started(),
        jiff::Timestamp::from_second(other.until)
            .map_or_else(|_| other.until.to_string(), |t| t.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_round_trips_through_its_row_name_and_expires() {
        let lock = RunLock::new("abc123", 1_000);
        assert_eq!(RunLock::parse(&lock.name()), Some(lock.clone()));
        assert!(lock.live(1_000) && !lock.live(lock.until));
        assert_eq!(RunLock::parse("Alice"), None);
        assert!(in_use(&lock).contains("abc123"));
    }
}
