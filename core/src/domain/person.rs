//! People: the `acs_id` the customer's ACS knows them by, their validity window, and the
//! enabled / suspended switches.
//!
//! A person is *active* at an instant when enabled, not suspended and inside the validity
//! window; an inactive person is denied `user_inactive` and holds nothing on terminals.

use super::id::{PersonId, TenantId};
use super::validation::{InvalidField, Problem, Window, required_text};
use jiff::Timestamp;
use std::fmt;

/// The longest `acs_id` accepted, in characters.
pub const ACS_ID_MAX_LEN: usize = 128;

/// The identifier the customer's ACS knows a person by; unique per tenant and carried by
/// every "access granted" event.
///
/// Trimmed, non-empty, at most [`ACS_ID_MAX_LEN`] characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AcsId(String);

impl AcsId {
    /// Validates an `acs_id` (field `acs_id`).
    pub fn parse(text: &str) -> Result<AcsId, InvalidField> {
        required_text("acs_id", text, ACS_ID_MAX_LEN).map(AcsId)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AcsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A state change that is not allowed from the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonError {
    /// The person is already suspended.
    #[error("person is already suspended")]
    AlreadySuspended,
    /// The person is not suspended.
    #[error("person is not suspended")]
    NotSuspended,
}

/// Why a person is not active at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PersonInactive {
    /// `enabled` is off.
    Disabled,
    /// Suspended (reversible).
    Suspended,
    /// Before `valid_from`.
    NotYetValid,
    /// At or after `valid_to`.
    Expired,
}

/// A person of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Its id.
    pub id: PersonId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// The customer ACS's id for the person.
    pub acs_id: AcsId,
    /// Display name (may be empty: enrollment by selfie only needs the `acs_id`).
    pub name: String,
    /// `[valid_from, valid_to)`.
    pub validity: Window,
    /// Administrative on/off switch.
    pub enabled: bool,
    /// Where messages to the person go (invitations, cloud keys, welcome messages).
    pub contact: Contact,
    suspended: bool,
}

/// How to reach a person: an e-mail address and/or a mobile number for text messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    /// E-mail address.
    pub email: Option<String>,
    /// Mobile number in international form (`+` and 7 to 15 digits).
    pub phone_number: Option<String>,
}

impl Contact {
    /// Validates an e-mail address (field `email`): one `@` with text on both sides, a dot
    /// in the domain, at most 254 characters, no spaces or control characters.
    pub fn parse_email(text: &str) -> Result<String, InvalidField> {
        let text = required_text("email", text, 254)?;
        let valid = match text.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
                    && !text.contains(char::is_whitespace)
            }
            None => false,
        };
        if !valid {
            return Err(InvalidField::new(
                "email",
                Problem::Invalid {
                    expected: "an e-mail address such as ana@example.com",
                },
            ));
        }
        Ok(text)
    }

    /// Validates a mobile number (field `phone_number`): `+` then 7 to 15 digits; spaces,
    /// dashes and dots between digits are dropped.
    pub fn parse_phone_number(text: &str) -> Result<String, InvalidField> {
        let text = required_text("phone_number", text, 32)?;
        let digits: String = text
            .chars()
            .skip(1)
            .filter(|c| !matches!(c, ' ' | '-' | '.'))
            .collect();
        if !text.starts_with('+')
            || !(7..=15).contains(&digits.len())
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(InvalidField::new(
                "phone_number",
                Problem::Invalid {
                    expected: "an international number such as +34 600 123 456",
                },
            ));
        }
        Ok(format!("+{digits}"))
    }
}

impl Person {
    /// An enabled, unsuspended person valid forever. The name is trimmed and may be empty.
    pub fn new(id: PersonId, tenant_id: TenantId, acs_id: AcsId, name: &str) -> Person {
        Person {
            id,
            tenant_id,
            acs_id,
            name: name.trim().to_owned(),
            validity: Window::ALWAYS,
            enabled: true,
            contact: Contact::default(),
            suspended: false,
        }
    }

    /// A person exactly as the store saved it, suspension included.
    ///
    /// For the store only, when reading a person back: nothing is trimmed or validated and
    /// `suspended` is set directly, bypassing [`Person::suspend`] / [`Person::unsuspend`].
    pub fn restore(
        id: PersonId,
        tenant_id: TenantId,
        acs_id: AcsId,
        name: String,
        validity: Window,
        enabled: bool,
        suspended: bool,
    ) -> Person {
        Person {
            id,
            tenant_id,
            acs_id,
            name,
            validity,
            enabled,
            contact: Contact::default(),
            suspended,
        }
    }

    /// The same person with validity `[valid_from, valid_to)` (fields `valid_from`,
    /// `valid_to`).
    pub fn with_validity(
        mut self,
        valid_from: Option<Timestamp>,
        valid_to: Option<Timestamp>,
    ) -> Result<Person, InvalidField> {
        self.validity = Window::new(valid_from, valid_to, "valid_from", "valid_to")?;
        Ok(self)
    }

    /// Whether the person is suspended.
    pub fn is_suspended(&self) -> bool {
        self.suspended
    }

    /// Suspends the person (reversible).
    pub fn suspend(&mut self) -> Result<(), PersonError> {
        if self.suspended {
            return Err(PersonError::AlreadySuspended);
        }
        self.suspended = true;
        Ok(())
    }

    /// Lifts a suspension.
    pub fn unsuspend(&mut self) -> Result<(), PersonError> {
        if !self.suspended {
            return Err(PersonError::NotSuspended);
        }
        self.suspended = false;
        Ok(())
    }

    /// Why the person is not active at `at`, or `None` if active.
    pub fn inactive_reason(&self, at: Timestamp) -> Option<PersonInactive> {
        if !self.enabled {
            Some(PersonInactive::Disabled)
        } else if self.suspended {
            Some(PersonInactive::Suspended)
        } else if self.validity.is_before(at) {
            Some(PersonInactive::NotYetValid)
        } else if self.validity.is_after(at) {
            Some(PersonInactive::Expired)
        } else {
            None
        }
    }

    /// Whether the person is active at `at`.
    pub fn is_active_at(&self, at: Timestamp) -> bool {
        self.inactive_reason(at).is_none()
    }
}

/// Checks that no other person of `tenant_id` among `existing` has `acs_id`
/// (field `acs_id`, problem [`Problem::Duplicate`]).
pub fn check_acs_id_unique<'a>(
    existing: impl IntoIterator<Item = &'a Person>,
    tenant_id: TenantId,
    acs_id: &AcsId,
    except: Option<PersonId>,
) -> Result<(), InvalidField> {
    let taken = existing
        .into_iter()
        .any(|p| p.tenant_id == tenant_id && &p.acs_id == acs_id && Some(p.id) != except);
    if taken {
        Err(InvalidField::new("acs_id", Problem::Duplicate))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn person() -> Person {
        Person::new(
            PersonId::new(1),
            TenantId::new(1),
            AcsId::parse("A-1").unwrap(),
            " Ana ",
        )
    }

    #[test]
    fn acs_id_is_trimmed_and_validated() {
        assert_eq!(AcsId::parse("  emp-7 ").unwrap().as_str(), "emp-7");
        assert_eq!(
            AcsId::parse(" ").unwrap_err(),
            InvalidField::new("acs_id", Problem::Empty)
        );
        let long = "x".repeat(ACS_ID_MAX_LEN + 1);
        assert_eq!(
            AcsId::parse(&long).unwrap_err().problem,
            Problem::TooLong {
                max: ACS_ID_MAX_LEN
            }
        );
        assert!(AcsId::parse(&"x".repeat(ACS_ID_MAX_LEN)).is_ok());
    }

    #[test]
    fn activity_follows_switches_and_window() {
        let mut p = person().with_validity(Some(ts(10)), Some(ts(20))).unwrap();
        assert_eq!(p.name, "Ana");
        assert_eq!(p.inactive_reason(ts(5)), Some(PersonInactive::NotYetValid));
        assert_eq!(p.inactive_reason(ts(10)), None);
        assert_eq!(p.inactive_reason(ts(20)), Some(PersonInactive::Expired));
        p.suspend().unwrap();
        assert_eq!(p.suspend(), Err(PersonError::AlreadySuspended));
        assert_eq!(p.inactive_reason(ts(15)), Some(PersonInactive::Suspended));
        p.unsuspend().unwrap();
        assert_eq!(p.unsuspend(), Err(PersonError::NotSuspended));
        p.enabled = false;
        assert_eq!(p.inactive_reason(ts(15)), Some(PersonInactive::Disabled));
    }

    #[test]
    fn validity_end_must_follow_start() {
        let err = person()
            .with_validity(Some(ts(20)), Some(ts(10)))
            .unwrap_err();
        assert_eq!(err.field, "valid_to");
    }

    #[test]
    fn acs_id_unique_per_tenant() {
        let p = person();
        let id = AcsId::parse("A-1").unwrap();
        assert!(check_acs_id_unique([&p], TenantId::new(1), &id, None).is_err());
        assert!(check_acs_id_unique([&p], TenantId::new(1), &id, Some(p.id)).is_ok());
        assert!(check_acs_id_unique([&p], TenantId::new(2), &id, None).is_ok());
    }
}
