//! The pure access-control domain: no I/O, no serde, no async (
//! docs/domain.md §7–9).
//!
//! - [`id`] – typed ids; [`validation`] – field errors and time windows;
//! - [`topology`] – tenants, sites (IANA zone), facilities, doors, the lookup over them;
//! - [`terminal`] – terminal models, addresses, device passwords, terminals;
//! - [`auth`] – auth types, factors, direction;
//! - [`person`], [`credential`], [`phone`] (multi-phone mobile keys), [`group`];
//! - [`invitation`] – selfie-enroll links (active → used | expired | superseded);
//! - [`event`], [`membership`], [`access`] with [`provisioning`] – the entitlements;
//! - [`schedule`] – weekly spans, holidays, one-off windows, DST;
//! - [`snapshot`] – one tenant's objects, input of [`decision`] (who may pass) and
//!   [`desired`] (what each terminal must hold);
//! - [`webhook`] – the event types webhook endpoints subscribe to, their checks, when
//!   repeated failure disables one.

pub mod access;
pub mod auth;
pub mod credential;
pub mod decision;
pub mod desired;
pub mod event;
pub mod group;
pub mod id;
pub mod invitation;
pub mod lookup;
pub mod membership;
pub mod person;
pub mod phone;
pub mod policy;
pub mod provisioning;
pub mod residency;
pub mod schedule;
pub mod snapshot;
pub mod terminal;
pub mod topology;
pub mod validation;
pub mod webhook;

pub use access::{
    Access, AccessDoor, AccessKind, AccessSpec, Effect, enabled_auth_types, validate_access_doors,
};
pub use auth::{AuthType, Direction, Factor};
pub use credential::{
    Credential, CredentialLifecycle, CredentialStatus, CredentialTransitionError, CredentialValue,
    DisableReason, FingerprintTemplates, IssueError, Pin, RevokeReason, SecretText,
    check_can_issue,
};
pub use decision::{Decision, DenyReason, Outcome, PresentedFactor, decide, decide_with};
pub use desired::{DesiredPerson, DesiredState, desired_state};
pub use event::{Event, EventError, EventStatus};
pub use group::Group;
pub use id::{
    AccessId, CredentialId, DoorId, EventId, FacilityId, GroupId, HolidayCalendarId, IdParseError,
    InvitationId, MembershipId, PersonId, PhoneId, ScheduleId, SiteId, TenantId, TerminalId,
};
pub use invitation::{
    Delivery, Invitation, InvitationRefused, InvitationState, InvitationStatus, supersede_earlier,
};
pub use lookup::Lookup;
pub use membership::Membership;
pub use person::{AcsId, Contact, Person, PersonError, PersonInactive, check_acs_id_unique};
pub use phone::{MobileKeySync, PHONE_NAME_MAX, Phone, Platform, mobile_key_sync, phone_name};
pub use provisioning::{ProvisioningStatus, ProvisioningTransitionError};
pub use schedule::{Holiday, HolidayCalendar, HolidayClasses, Schedule, WeekdaySet, WeeklySpan};
pub use snapshot::{Entitlement, Snapshot};
pub use terminal::{
    DevicePassword, OperatingMode, Terminal, TerminalModel, TerminalSpec, terminal_address,
};
pub use topology::{Door, Facility, FacilityKind, Site, Tenant, Topology, time_zone};
pub use validation::{InvalidField, Problem, Window};
