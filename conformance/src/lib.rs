//! `acs-conformance`: runs a catalogue of cases against a terminal – the in-process
//! simulator, a simulated fleet, or a real device next to a field engineer's laptop – and
//! reports a verdict per case (DESIGN.md §5).
//!
//! What exists today: [`verdict`], the verdicts and how a run's verdicts become the
//! process exit code. The catalogue, targets, operators and reports follow.

pub mod verdict;
