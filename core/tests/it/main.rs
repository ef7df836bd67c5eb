//! The one integration-test binary of acs-core (style.md §3.6).

mod decision_table; // table-driven decisions covering every reason code
mod desired_state;
mod schedule_oracle; // proptest: schedules against a naive minute-by-minute oracle across DST
mod support; // shared fixtures: a small tenant, timestamps, builders // desired state: distribution rules, monotonicity, next_change exactness
