//! The one integration-test binary of acs-core.

mod agreement; // proptest: the desired state lets in exactly whom the decision grants
mod api; // the integrator API end to end
mod api_isolation; // tenant isolation on every endpoint; routes ⇄ openapi.json
mod api_process; // the real binary: SIGKILL during writes, secrets never logged
mod api_support;
mod auth_rule; // one auth-type rule for decisions, terminals and cloud keys; refusals; expiry
mod bounded; // every wait with a deadline
mod crash; // SIGKILL of `acs-core serve` during sync and enrollment: nothing lost or doubled
mod decision_table; // table-driven decisions covering every reason code
mod desired_state; // desired state: distribution rules, monotonicity, next_change exactness
mod device_clock; // terminal clocks at several UTC offsets and skewed: times written and read
mod devices; // the core with simulated terminals: enrollment, access events, online decisions
mod enrollments; // enrollments stored: a restart keeps them, resolves the pending, reuses no id
mod fuzz; // bad input: generated requests to the integrator API and the receiver
mod instances; // several instances on one database: leases, change feed, relay, kill -9
mod instances_process; // three `acs-core serve` processes on one file, one SIGKILLed
mod layering; // the layers hold: HTTP only at the edges, a pure domain, no module cycles
mod notifications; // invitations, cloud keys, phones, welcome messages, the outbox
mod receiver; // the device-facing receiver: access logs, online decisions, refusals
mod records; // records ⇄ domain: snapshot round trip, same decisions; unique keys in the store
mod residency; // filed people: only the entitled in memory, everyone still answered for
mod schedule_oracle; // proptest: schedules against a naive minute-by-minute oracle across DST
mod secrets_at_rest; // no secret in clear in the database, its log or the outbox; migrate converts
mod store; // the store suite on SQLite and PostgreSQL; `acs-core serve` on PostgreSQL
mod support; // shared fixtures: a small tenant, timestamps, builders
mod sync; // the sync engine against simulated fleets
mod terminal;
mod terminals;
mod webhooks; // webhook endpoints: signed deliveries, retries, disabling, rotation, SIGKILL // registering terminals: checks, the probe, one device once; PUT/PATCH of doors and terminals // the terminal driver against the simulator, a stub and the recorded fixtures
