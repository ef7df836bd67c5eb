//! Holding a terminal for a run: taking it (undo what a killed run left, survey, refuse or
//! reclaim, save the journal, lock, open the guarded gateway) and releasing it (remove the
//! ledger's keys, restore the configuration, check that it worked, unlock).

use std::sync::Arc;

use acs_core::terminal::TerminalClient;
use serde_json::{Value as Json, json};
use tokio::sync::Mutex;

use super::guard::Guard;
use super::ledger::{self, Ledger};
use super::lock::{self, LOCK_ID, RunLock};
use super::survey::{Survey, survey};
use crate::context::Ctx;
use crate::outcome::Cleanup;
use crate::record::Recorder;
use crate::restore::RestoreJournal;

/// The configuration a run may change (the workflow core points the monitor and online
/// mode at itself; the configuration cases write the monitor): read before the run,
/// restored after it, and the only keys the guard lets `set_configuration` touch.
pub const CONFIGURATION: [(&str, &[&str]); 3] = [
    ("monitor", &["hostname", "port", "path"]),
    ("general", &["online", "local_identification"]),
    ("online_client", &["server_id"]),
];

/// Tries at the clean-up before it is reported incomplete.
const CLEAN_UP_ATTEMPTS: u64 = 3;

/// How to take a terminal.
#[derive(Debug)]
pub struct TakeOptions {
    /// The restore journal (a file for a real terminal, memory for a simulated one).
    pub journal: RestoreJournal,
    /// Take over objects an earlier run of the suite left (`--reclaim-reserved`).
    pub reclaim: bool,
    /// Record every exchange (`--record`).
    pub recorder: Option<Recorder>,
}

/// Why a run may not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The terminal holds objects of someone else where the suite would write.
    #[error(
        "the terminal holds objects the suite did not create where it would write; nothing was changed. Remove or move them, or run against another terminal:\n  {}",
        .0.join("\n  ")
    )]
    Foreign(Vec<String>),
    /// An earlier run of the suite left objects behind and no journal names them.
    #[error(
        "an earlier conformance run left objects on the terminal (they carry the suite's marker); nothing was changed. Pass --reclaim-reserved to remove them and run:\n  {}",
        .0.join("\n  ")
    )]
    Leftovers(Vec<String>),
    /// Another run holds the terminal.
    #[error("{0}")]
    InUse(String),
    /// The terminal could not be read or written, or the journal not kept.
    #[error("{0}")]
    Failed(String),
}

/// A terminal held by a run.
#[derive(Debug)]
pub struct Hold {
    direct: TerminalClient,
    guard: Guard,
    journal: RestoreJournal,
    lock: Mutex<RunLock>,
    configuration: Option<Json>,
    ctx: Ctx,
    /// What the journal of a killed run undid before this run started, one line each.
    pub recovered: Vec<String>,
}

/// Reads the configuration a run may change.
pub async fn saved_configuration(driver: &TerminalClient) -> Option<Json> {
    let request: serde_json::Map<String, Json> = CONFIGURATION
        .iter()
        .map(|(section, keys)| ((*section).to_owned(), json!(keys)))
        .collect();
    driver.get_configuration(Json::Object(request)).await.ok()
}

impl Hold {
    /// Takes the terminal of `ctx` for a run.
    pub async fn take(ctx: &Ctx, options: TakeOptions) -> Result<Hold, Refusal> {
        let direct = ctx.driver().clone();
        let failed = |e: String| Refusal::Failed(e);
        let mut recovered = Vec::new();
        if let Some(done) = options
            .journal
            .recover(&direct)
            .await
            .map_err(|e| failed(e.to_string()))?
        {
            recovered.push(format!(
                "restored the terminal as an interrupted run left it ({}): removed {}{}",
                options.journal.path().display(),
                if done.removed.is_empty() {
                    "nothing".to_owned()
                } else {
                    done.removed.join("; ")
                },
                if done.configuration {
                    ", configuration written back"
                } else {
                    ""
                }
            ));
        }
        let found: Survey = survey(&direct).await.map_err(failed)?;
        if !found.foreign.is_empty() {
            return Err(Refusal::Foreign(found.foreign));
        }
        let now = lock::now();
        let takeover = found.leftovers.clone();
        // A live lock is another run's – or a killed run's, until it expires; only
        // `--reclaim-reserved` takes it over before then. An expired lock was left by a
        // run that died: it is taken over on its own.
        if let Some(other) = &found.lock
            && other.live(now)
            && !options.reclaim
        {
            return Err(Refusal::InUse(format!(
                "{}; if that run was killed, pass --reclaim-reserved to take the terminal over",
                lock::in_use(other)
            )));
        }
        let only_stale_lock = takeover.len() == 1 && takeover.users.contains(&LOCK_ID);
        if !takeover.is_empty() && !options.reclaim && !only_stale_lock {
            return Err(Refusal::Leftovers(found.leftover_lines()));
        }
        let configuration = saved_configuration(&direct).await;
        options
            .journal
            .save(configuration.clone(), &takeover)
            .map_err(|e| failed(e.to_string()))?;
        if !takeover.is_empty() {
            ledger::remove(&direct, &takeover).await.map_err(failed)?;
            recovered.push(format!(
                "reclaimed what an earlier run left: {}",
                takeover.lines().join("; ")
            ));
        }
        let journal = options.journal.clone();
        let guard = Guard::new(
            takeover,
            Arc::new(move |l: &Ledger| journal.record(l).map_err(|e| e.to_string())),
            CONFIGURATION.iter().flat_map(|(section, keys)| {
                keys.iter()
                    .map(|k| ((*section).to_owned(), (*k).to_owned()))
            }),
        );
        let gateway =
            crate::gateway::start(ctx.device_url(), Some(guard.clone()), options.recorder)
                .await
                .map_err(failed)?;
        let ctx = ctx.clone().through(&gateway).map_err(failed)?;
        // The lock is taken through the gateway like every other write of the run (so a
        // recording holds it too); the guard journals its key before it is created.
        let run_lock = RunLock::new(&lock::run_id(), now);
        if let Err(e) = lock::acquire(ctx.driver(), &run_lock).await {
            // Nothing of this run is on the terminal: its journal must not name another
            // run's lock.
            let _ = options.journal.finish();
            return Err(if e.contains("in use") {
                Refusal::InUse(e)
            } else {
                Refusal::Failed(e)
            });
        }
        // The lock is the run's, not its first case's change.
        let _ = guard.take_changes();
        Ok(Hold {
            direct,
            guard,
            journal: options.journal,
            lock: Mutex::new(run_lock),
            configuration,
            ctx,
            recovered,
        })
    }

    /// The environment of the cases: everything goes through the guarded gateway.
    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// The guard (changes per case, refusals).
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// The run's id.
    pub async fn run_id(&self) -> String {
        self.lock.lock().await.run_id.clone()
    }

    /// Extends the run's lock (before every case).
    pub async fn refresh(&self) {
        let mut lock = self.lock.lock().await;
        if let Err(e) = lock::refresh(&self.direct, &mut lock).await {
            tracing::warn!(error = %crate::redact::redact(&e), "the run's lock could not be extended");
        }
    }

    /// Removes everything the run created (the lock last), restores the configuration,
    /// checks the terminal, and deletes the journal when nothing is left.
    pub async fn release(self) -> Cleanup {
        let mut attempt = 1;
        loop {
            match self.clean_up().await {
                Ok(removed) => {
                    if let Err(e) = self.journal.finish() {
                        tracing::warn!(error = %e, "the restore journal could not be deleted");
                    }
                    return Cleanup::Complete { removed };
                }
                // A terminal that did not answer (a busy network, a slow device) gets a
                // few more tries before the clean-up is reported incomplete; the journal
                // stays for the next run either way.
                Err(cleanup) if attempt < CLEAN_UP_ATTEMPTS => {
                    tracing::warn!(attempt, outcome = %cleanup.describe(), "clean-up incomplete; trying again");
                    tokio::time::sleep(std::time::Duration::from_secs(attempt)).await;
                    attempt += 1;
                }
                Err(cleanup) => return cleanup,
            }
        }
    }

    /// One attempt at the clean-up: the number of keys removed, or what is left and why.
    async fn clean_up(&self) -> Result<usize, Cleanup> {
        let ledger = self.guard.ledger();
        let mut problems = Vec::new();
        let mut without_lock = ledger.clone();
        without_lock.users.remove(&LOCK_ID);
        if let Err(e) = ledger::remove(&self.direct, &without_lock).await {
            problems.push(e);
        }
        if let Some(config) = self.configuration.as_ref().filter(|c| c.is_object())
            && let Err(e) = self.direct.set_configuration(config.clone()).await
        {
            problems.push(format!("the configuration could not be restored: {e}"));
        }
        let mut left = match survey(&self.direct).await {
            Ok(after) => after.leftovers.intersection(&without_lock).lines(),
            Err(e) => {
                problems.push(e);
                without_lock.lines()
            }
        };
        if left.is_empty() && problems.is_empty() {
            let lock_only = Ledger {
                users: [LOCK_ID].into_iter().collect(),
                ..Ledger::default()
            };
            if let Err(e) = ledger::remove(&self.direct, &lock_only).await {
                problems.push(e);
                left.push(format!("the run's lock (user {LOCK_ID})"));
            }
        }
        if problems.is_empty() && left.is_empty() {
            return Ok(without_lock.len());
        }
        if problems.is_empty() {
            problems.push("the terminal still holds them after the clean-up".into());
        }
        Err(Cleanup::Incomplete {
            left,
            why: crate::redact::redact(&problems.join("; ")),
        })
    }
}
