//! Integration tests of `acs-conformance`: one test binary, one module per area.

mod catalogue;
mod cli;
mod reports;
