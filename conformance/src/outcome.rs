//! What a run produces, independent of how it is shown: each case's description and
//! result, the target's identity, and the run as a whole. The reports (console, JSON,
//! JUnit XML, HTML) only render these values.

use std::time::Duration;

use serde::Serialize;

use crate::verdict::{Overall, RunSummary, Verdict};

/// A capability a case needs from the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Face recognition (camera).
    Face,
    /// Fingerprint reader.
    Fingerprint,
    /// Card reader.
    Card,
    /// QR code reader.
    Qr,
    /// Online mode (the terminal asks a server to decide).
    Online,
    /// A door relay or Security Box driven by the terminal.
    Relay,
}

impl Capability {
    /// The CLI / report spelling.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Face => "face",
            Capability::Fingerprint => "fingerprint",
            Capability::Card => "card",
            Capability::Qr => "qr",
            Capability::Online => "online",
            Capability::Relay => "relay",
        }
    }
}

/// Which layer a case exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// The core's driver against the terminal API.
    Protocol,
    /// The core end to end (entitlements → terminal → presentation → event).
    Workflow,
}

/// A case as the catalogue describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseInfo {
    /// Stable id, e.g. `SESSION-001`.
    pub id: &'static str,
    /// One line saying what is checked.
    pub title: &'static str,
    /// The paragraph it checks, e.g. `docs/device-api.md §1.6`.
    pub reference: &'static str,
    /// Protocol or workflow.
    pub layer: Layer,
    /// Capabilities it needs.
    pub needs: Vec<Capability>,
    /// Whether a person must act at the terminal (present a card, a face …).
    pub physical: bool,
    /// Whether it changes anything beyond its own objects (configuration is restored).
    pub changes_device: bool,
}

/// One request/response pair kept as evidence (secrets redacted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exchange {
    /// e.g. `POST /load_objects.fcgi`.
    pub request: String,
    /// Status and an excerpt of the body.
    pub response: String,
}

/// Why a case was skipped or not run: each has its own reason, and the reports say which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Reason {
    /// Skipped: the terminal lacks these capabilities, so the case does not apply to it.
    Capability(Vec<String>),
    /// Not run: the run was not given this flag (e.g. `--allow-destructive`).
    Flag(String),
    /// Not run: nobody performs physical steps (`--unattended`).
    NoOperator,
    /// Not run: the core's receiver has no address the terminal can reach
    /// (`--callback-addr`).
    NoCallbackAddress,
    /// Not run: the operator skipped the step or did not answer in time.
    StepNotPerformed(String),
    /// Not run: the operator answered, but the terminal shows nothing newer than what it
    /// held before the prompt, so nobody can have performed the step.
    NoFreshEvidence(String),
    /// Not run: the run was interrupted (Ctrl-C) before or while the case ran.
    Interrupted,
}

impl Reason {
    /// The verdict a case with this reason gets: skipped when it does not apply to the
    /// terminal, not run otherwise.
    pub fn verdict(&self) -> Verdict {
        match self {
            Reason::Capability(_) => Verdict::Skipped,
            _ => Verdict::NotRun,
        }
    }

    /// A short stable name (`capability`, `flag`, `no_operator`, `no_callback_address`,
    /// `step_not_performed`, `no_fresh_evidence`, `interrupted`).
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::Capability(_) => "capability",
            Reason::Flag(_) => "flag",
            Reason::NoOperator => "no_operator",
            Reason::NoCallbackAddress => "no_callback_address",
            Reason::StepNotPerformed(_) => "step_not_performed",
            Reason::NoFreshEvidence(_) => "no_fresh_evidence",
            Reason::Interrupted => "interrupted",
        }
    }

    /// One sentence for a person.
    pub fn explain(&self) -> String {
        match self {
            Reason::Capability(missing) => {
                format!("the terminal lacks {} (not applicable)", missing.join(", "))
            }
            Reason::Flag(flag) => format!("needs {flag}"),
            Reason::NoOperator => {
                "needs a person at the terminal; the run was unattended (--unattended)".into()
            }
            Reason::NoCallbackAddress => {
                "needs an address the terminal can reach the core on (--callback-addr)".into()
            }
            Reason::StepNotPerformed(why) => format!("the physical step was not performed: {why}"),
            Reason::NoFreshEvidence(why) => {
                format!("no evidence newer than the prompt: {why}")
            }
            Reason::Interrupted => "the run was interrupted before the case could finish".into(),
        }
    }
}

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseResult {
    /// The case.
    pub case: CaseInfo,
    /// Its verdict.
    pub verdict: Verdict,
    /// Why it was skipped or not run (`None` for pass, fail and error).
    pub reason: Option<Reason>,
    /// What it changed on the terminal (objects it created, configuration it set), one
    /// line each; the clean-up removes and restores all of it.
    pub changes: Vec<String>,
    /// What was expected (on failure) or why it was skipped / not run / errored.
    pub expected: Option<String>,
    /// What happened instead (on failure).
    pub actual: Option<String>,
    /// The exchanges that show it.
    pub evidence: Vec<Exchange>,
    /// How long it took.
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What the run was pointed at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TargetIdentity {
    /// `simulator`, `fleet of N` or the terminal's URL.
    pub target: String,
    /// Model name the terminal reports.
    pub model: String,
    /// The profile the cases ran with (`idface`, `idaccess` …).
    pub profile: String,
    /// Firmware version.
    pub firmware: String,
    /// Serial number.
    pub serial: String,
    /// Device id.
    pub device_id: String,
}

/// What the clean-up at the end of a run achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Cleanup {
    /// No clean-up was attempted (a run assembled by hand, e.g. in tests).
    #[default]
    NotAttempted,
    /// Everything the run created is gone and the configuration it changed is restored.
    Complete {
        /// How many objects (rows and photos, by their keys) were removed.
        removed: usize,
    },
    /// Something is left on the terminal.
    Incomplete {
        /// What is left, one line each.
        left: Vec<String>,
        /// Why.
        why: String,
    },
}

impl Cleanup {
    /// Whether the terminal is as the run found it (or nothing was attempted).
    pub fn is_complete(&self) -> bool {
        !matches!(self, Cleanup::Incomplete { .. })
    }

    /// One line for a person.
    pub fn describe(&self) -> String {
        match self {
            Cleanup::NotAttempted => "not attempted".into(),
            Cleanup::Complete { removed } => {
                format!("complete: {removed} objects removed, configuration restored")
            }
            Cleanup::Incomplete { left, why } => {
                format!(
                    "INCOMPLETE ({why}); left on the terminal: {}",
                    left.join("; ")
                )
            }
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    /// The suite's version (`acs-conformance` from Cargo).
    pub suite_version: String,
    /// What was tested.
    pub target: TargetIdentity,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// Every case, in catalogue order.
    pub results: Vec<CaseResult>,
    /// Whether the run was interrupted (Ctrl-C, SIGTERM) before every case ran.
    pub interrupted: bool,
    /// What the clean-up achieved.
    pub cleanup: Cleanup,
}

/// The version of this suite, as Cargo knows it.
pub const SUITE_VERSION: &str = env!("CARGO_PKG_VERSION");

impl Run {
    /// The run as a whole: passed, failed, incomplete or not carried out.
    pub fn overall(&self) -> Overall {
        Overall::of(
            &self.summary(),
            self.interrupted,
            self.cleanup.is_complete(),
        )
    }

    /// Counts per verdict.
    pub fn summary(&self) -> RunSummary {
        let mut summary = RunSummary::default();
        for r in &self.results {
            summary.record(r.verdict);
        }
        summary
    }
}
