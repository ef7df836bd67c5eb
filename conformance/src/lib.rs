//! `acs-conformance`: the conformance suite. It runs one catalogue of cases against a
//! terminal and gives a verdict per case (DESIGN.md §5).
//!
//! - **Cases** have stable ids (`SESSION-001`, `ENROLL-FACE-SYNC-003` …), trace to the
//!   paragraph of `terminal-api.md` or `domain.md` they check, and declare the
//!   capabilities they need, whether they need a physical step and whether they change
//!   device state beyond their own objects. *Protocol* cases drive the core's terminal
//!   driver against the terminal; *workflow* cases drive the core end to end (enroll →
//!   entitle → the credential reaches the terminal → presentation → decision and access
//!   event → revoke → gone).
//! - **Targets**: the in-process simulator (the default, in CI, in virtual time), a
//!   simulated fleet, or a real terminal on site, where an operator is prompted for the
//!   physical steps and only objects in a reserved id range are touched and removed
//!   afterwards.
//! - **Results**: a [`verdict::Verdict`] per case, the run's exit code, and reports
//!   (console, JSON, JUnit XML, a self-contained HTML report for field sign-off).
//!
//! What exists today: [`verdict`] – the verdicts and how a run's verdicts become the
//! process exit code. The catalogue, targets, operators, reports and the `acs-conformance`
//! binary follow in later work (see `ARCHITECTURE.md`).

pub mod verdict;
