//! Integration tests of `acs-conformance`: one test binary, one module per area.

mod catalogue;
mod cli;
mod custody;
mod reports;
mod safety; // safety rails on a device: objects outside the reserved range, restore after SIGKILL, no secrets in any output
