//! Typed identifiers: one newtype per entity, so a `DoorId` can never be passed where a
//! `TerminalId` is expected.
//!
//! Ids are opaque `u64`s handed out by the store; the domain never invents them and never
//! does arithmetic on them. Written as text they are plain decimal numbers.

use std::fmt;
use std::str::FromStr;

/// The text was not a decimal `u64` id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not a valid {entity} id (expected a decimal number)")]
pub struct IdParseError {
    /// Which kind of id was being parsed (`"door"`, `"person"` …).
    pub entity: &'static str,
    /// The text that was given.
    pub text: String,
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $entity:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u64);

        impl $name {
            /// The id with this raw value.
            pub const fn new(raw: u64) -> Self {
                $name(raw)
            }

            /// The raw value, for the store.
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.trim().parse().map($name).map_err(|_| IdParseError {
                    entity: $entity,
                    text: s.to_owned(),
                })
            }
        }
    };
}

typed_id!(
    /// A tenant (an integrator's customer; everything else belongs to exactly one).
    TenantId,
    "tenant"
);
typed_id!(
    /// A site: a place with one IANA time zone.
    SiteId,
    "site"
);
typed_id!(
    /// A facility, section or area inside a site.
    FacilityId,
    "facility"
);
typed_id!(
    /// A door (access point).
    DoorId,
    "door"
);
typed_id!(
    /// A terminal (a physical device serving doors).
    TerminalId,
    "terminal"
);
typed_id!(
    /// A person known to the tenant.
    PersonId,
    "person"
);
typed_id!(
    /// A credential of a person.
    CredentialId,
    "credential"
);
typed_id!(
    /// A phone of a person (carrier of mobile-key copies).
    PhoneId,
    "phone"
);
typed_id!(
    /// A group of people.
    GroupId,
    "group"
);
typed_id!(
    /// A facility event (with attendees).
    EventId,
    "event"
);
typed_id!(
    /// A tenant-wide membership.
    MembershipId,
    "membership"
);
typed_id!(
    /// An access rule.
    AccessId,
    "access"
);
typed_id!(
    /// A schedule.
    ScheduleId,
    "schedule"
);
typed_id!(
    /// A holiday calendar.
    HolidayCalendarId,
    "holiday calendar"
);
typed_id!(
    /// A self-enrollment (selfie) invitation.
    InvitationId,
    "invitation"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = DoorId::new(42);
        assert_eq!(id.to_string(), "42");
        assert_eq!(" 42 ".parse::<DoorId>(), Ok(id));
        assert_eq!(id.get(), 42);
    }

    #[test]
    fn parse_error_names_the_entity() {
        let err = "x1".parse::<PersonId>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "'x1' is not a valid person id (expected a decimal number)"
        );
    }
}
