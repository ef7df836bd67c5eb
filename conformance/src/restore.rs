//! The restore journal of runs against a real terminal.
//!
//! A run restores the configuration it changed and removes what it created when it ends,
//! also after Ctrl-C. A run that is killed (SIGKILL, a closed laptop, power loss) cannot,
//! so before it changes anything it writes a small file: the configuration it read, and
//! the [ledger](crate::custody::ledger) of every key it creates – the guard adds each key
//! to the file *before* the request that creates it reaches the terminal. A run that ends
//! normally and cleaned up deletes the file. The next run against the same terminal (or
//! `--restore-only`) finds it, removes exactly the keys it lists, writes the saved
//! configuration back, and only then starts.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use acs_core::terminal::TerminalClient;
use serde_json::{Value as Json, json};

use crate::custody::ledger::{self, Ledger};

const FORMAT: &str = "acs-conformance-restore";
const VERSION: u64 = 2;

/// Why the journal could not be read, written or applied.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The file could not be read or written.
    #[error("restore journal {path}: {source}")]
    Io {
        /// The journal's path.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The file is not a journal of this program, or belongs to another terminal.
    #[error("restore journal {path}: {why}")]
    Invalid {
        /// The journal's path.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The terminal refused the clean-up or the configuration.
    #[error("restoring the terminal from {path} failed: {why}")]
    Terminal {
        /// The journal's path.
        path: PathBuf,
        /// The terminal's error.
        why: String,
    },
}

/// The journal of one terminal.
#[derive(Debug, Clone)]
pub struct RestoreJournal {
    path: Option<PathBuf>,
    target: String,
    configuration: Arc<Mutex<Option<Json>>>,
}

/// What applying a journal did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The keys it removed, one line per table.
    pub removed: Vec<String>,
    /// Whether it wrote a saved configuration back.
    pub configuration: bool,
}

impl RestoreJournal {
    /// The journal at `path` for the terminal at `target` (its URL).
    pub fn new(path: impl Into<PathBuf>, target: &str) -> RestoreJournal {
        RestoreJournal {
            path: Some(path.into()),
            target: target.trim_end_matches('/').to_owned(),
            configuration: Arc::default(),
        }
    }

    /// A journal kept in memory only (a simulated terminal, which dies with the run).
    pub fn in_memory(target: &str) -> RestoreJournal {
        RestoreJournal {
            path: None,
            target: target.trim_end_matches('/').to_owned(),
            configuration: Arc::default(),
        }
    }

    /// `acs-conformance-restore-<host_port>.json` in the working directory.
    pub fn default_path(target: &str) -> PathBuf {
        let name: String = target
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        PathBuf::from(format!("acs-conformance-restore-{name}.json"))
    }

    /// The file's path (`-` for a journal in memory).
    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new("-"))
    }

    /// Whether an interrupted run left its journal behind.
    pub fn pending(&self) -> bool {
        self.path.as_ref().is_some_and(|p| p.exists())
    }

    /// Applies a journal an interrupted run left behind (its keys removed, its saved
    /// configuration written back) and deletes it. `Ok(None)` when there was none.
    pub async fn recover(
        &self,
        driver: &TerminalClient,
    ) -> Result<Option<Recovered>, RestoreError> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(self.io(source)),
        };
        let invalid = |why: &str| RestoreError::Invalid {
            path: path.clone(),
            why: why.to_owned(),
        };
        let doc: Json = serde_json::from_slice(&text).map_err(|_| invalid("not JSON"))?;
        if doc["format"] != FORMAT || !(doc["version"] == 1 || doc["version"] == VERSION) {
            return Err(invalid("not a restore journal of this program"));
        }
        if doc["target"] != self.target.as_str() {
            return Err(invalid(&format!(
                "written for {}, not {}",
                doc["target"], self.target
            )));
        }
        let terminal = |why: String| RestoreError::Terminal {
            path: path.clone(),
            why,
        };
        // A journal of version 1 names no keys: only its configuration can be restored,
        // and objects it left are found by the survey (and reclaimed on purpose).
        let keys: Ledger = serde_json::from_value(doc["ledger"].clone()).unwrap_or_default();
        ledger::remove(driver, &keys).await.map_err(terminal)?;
        let config = doc.get("configuration").filter(|c| c.is_object());
        if let Some(config) = config {
            driver
                .set_configuration(config.clone())
                .await
                .map_err(|e| terminal(e.to_string()))?;
        }
        self.finish()?;
        Ok(Some(Recovered {
            removed: keys.lines(),
            configuration: config.is_some(),
        }))
    }

    /// Writes the configuration the run may change and the keys it starts from (taken
    /// over from an earlier run) to the journal, before the run changes anything.
    pub fn save(&self, configuration: Option<Json>, keys: &Ledger) -> Result<(), RestoreError> {
        *self
            .configuration
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = configuration;
        self.record(keys)
    }

    /// Rewrites the journal with `keys` (atomically: a temporary file, then a rename).
    pub fn record(&self, keys: &Ledger) -> Result<(), RestoreError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let configuration = self
            .configuration
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let doc = json!({"format": FORMAT, "version": VERSION, "target": self.target,
                         "configuration": configuration, "ledger": keys});
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, doc.to_string()).map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, path).map_err(|e| self.io(e))
    }

    /// Deletes the journal after a run that cleaned up (a missing file is fine).
    pub fn finish(&self) -> Result<(), RestoreError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.io(e)),
            _ => Ok(()),
        }
    }

    fn io(&self, source: std::io::Error) -> RestoreError {
        RestoreError::Io {
            path: self.path().to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_path_names_the_terminal() {
        assert_eq!(
            RestoreJournal::default_path("http://10.0.0.5:8080/"),
            PathBuf::from("acs-conformance-restore-10.0.0.5_8080.json")
        );
    }
}
