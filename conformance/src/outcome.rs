//! What a run produces, independent of how it is shown: each case's description and
//! result, the target's identity, and the run as a whole. The reports (console, JSON,
//! JUnit XML, HTML) only render these values.

use std::time::Duration;

use serde::Serialize;

use crate::verdict::{RunSummary, Verdict};

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
    /// The paragraph it checks, e.g. `terminal-api.md §1.6`.
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

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseResult {
    /// The case.
    pub case: CaseInfo,
    /// Its verdict.
    pub verdict: Verdict,
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
    /// Firmware version.
    pub firmware: String,
    /// Serial number.
    pub serial: String,
    /// Device id.
    pub device_id: String,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    /// What was tested.
    pub target: TargetIdentity,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// Every case, in catalogue order.
    pub results: Vec<CaseResult>,
}

impl Run {
    /// Counts per verdict.
    pub fn summary(&self) -> RunSummary {
        let mut summary = RunSummary::default();
        for r in &self.results {
            summary.record(r.verdict);
        }
        summary
    }
}
