//! `acs-conformance`: the conformance suite. It runs one catalogue of cases against a
//! terminal and gives a verdict per case.
//!
//! - [`catalogue`] – every case with its stable id (`SESSION-001`, `OBJECTS-003` …), the
//!   paragraph of `docs/device-api.md` or `docs/domain.md` it checks, the capabilities it needs,
//!   whether it needs a physical step, and the fault that breaks it; [`cases`] – the cases,
//!   one module per area: *protocol* cases drive the core's terminal driver (and the raw
//!   wire) against the terminal, *workflow* cases drive the core end to end.
//! - [`context`] – what a case works with; [`operator`] – who performs physical steps
//!   (the simulator itself, a person prompted on the console, or nobody);
//!   [`core_rig`] – the in-process core of the workflow cases.
//! - [`runner`] – holds the terminal, runs a selection, releases the terminal;
//!   [`target`] – the in-process simulator, a simulated fleet, or a real terminal by URL
//!   (with its model checked against the profile).
//! - [`custody`] – the suite touches only what it created: the survey before a run, the
//!   run lock, the guard every request passes and the ledger of what the run created;
//!   [`gateway`] – the guarded proxy in front of the terminal; [`restore`] – the restore
//!   journal that undoes a killed run.
//! - [`record`] – the recording of `--record` and `replay` against the simulator.
//! - [`redact`] – the one function every output passes through, masking tokens and
//!   passwords.
//! - [`outcome`] and [`verdict`] – results, summaries and the exit code; [`report`] –
//!   console progress, JSON, JUnit XML and the HTML sign-off page.

pub mod cases;
pub mod catalogue;
pub mod context;
pub mod core_rig;
pub mod custody;
pub mod gateway;
pub mod operator;
pub mod outcome;
pub mod record;
pub mod redact;
pub mod report;
pub mod restore;
pub mod runner;
pub mod target;
pub mod verdict;
