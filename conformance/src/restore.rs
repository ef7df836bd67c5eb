//! The restore journal of runs against a real terminal (DESIGN.md §5, safety on real
//! devices).
//!
//! A run restores the configuration it changed and removes the reserved id range when it
//! ends, also after Ctrl-C. A run that is killed (SIGKILL, a closed laptop, power loss)
//! cannot, so before it changes anything it writes the configuration it read to a small
//! file; a run that ends normally deletes the file. The next run against the same terminal
//! (or `--restore-only`) finds the file, empties the reserved range, writes the saved
//! configuration back, and only then starts.

use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};

use crate::context::Ctx;
use crate::runner;

const FORMAT: &str = "acs-conformance-restore";
const VERSION: u64 = 1;

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
    path: PathBuf,
    target: String,
}

impl RestoreJournal {
    /// The journal at `path` for the terminal at `target` (its URL).
    pub fn new(path: impl Into<PathBuf>, target: &str) -> RestoreJournal {
        RestoreJournal {
            path: path.into(),
            target: target.trim_end_matches('/').to_owned(),
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

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether an interrupted run left its journal behind.
    pub fn pending(&self) -> bool {
        self.path.exists()
    }

    /// Applies a journal an interrupted run left behind (reserved range removed, saved
    /// configuration written back) and deletes it. `Ok(false)` when there was none.
    pub async fn recover(&self, ctx: &Ctx) -> Result<bool, RestoreError> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(self.io(source)),
        };
        let invalid = |why: &str| RestoreError::Invalid {
            path: self.path.clone(),
            why: why.to_owned(),
        };
        let doc: Json = serde_json::from_slice(&text).map_err(|_| invalid("not JSON"))?;
        if doc["format"] != FORMAT || doc["version"] != VERSION {
            return Err(invalid("not a restore journal of this version"));
        }
        if doc["target"] != self.target.as_str() {
            return Err(invalid(&format!(
                "written for {}, not {}",
                doc["target"], self.target
            )));
        }
        let config = doc.get("configuration").filter(|c| c.is_object());
        runner::clean_up(ctx, config)
            .await
            .map_err(|why| RestoreError::Terminal {
                path: self.path.clone(),
                why,
            })?;
        self.finish()?;
        Ok(true)
    }

    /// Reads the configuration a run may change and writes it to the journal (atomically:
    /// a temporary file, then a rename), before the run changes anything.
    pub async fn save(&self, ctx: &Ctx) -> Result<(), RestoreError> {
        let config = runner::saved_configuration(ctx).await;
        let doc = json!({"format": FORMAT, "version": VERSION, "target": self.target,
                         "configuration": config});
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, doc.to_string()).map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))
    }

    /// Deletes the journal after a run that cleaned up (a missing file is fine).
    pub fn finish(&self) -> Result<(), RestoreError> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.io(e)),
            _ => Ok(()),
        }
    }

    fn io(&self, source: std::io::Error) -> RestoreError {
        RestoreError::Io {
            path: self.path.clone(),
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
