//! Field validation errors and the half-open time window every entity uses.
//!
//! Constructors of domain values check their input and fail with [`InvalidField`], which
//! names the field at fault (in the integrator API's spelling, e.g. `valid_to`,
//! `doors[0].in_auth_types`) and says what is wrong with it, so an HTTP layer can turn it
//! into a problem+json error without guessing.

use jiff::Timestamp;
use std::fmt;

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Required, but empty (or only whitespace).
    Empty,
    /// Longer than allowed.
    TooLong {
        /// The maximum length, in characters.
        max: usize,
    },
    /// Contains characters that are not allowed (e.g. control characters).
    BadCharacters,
    /// Required in this context, but absent (e.g. `valid_to` of a temporary access).
    Missing,
    /// Not after the field it must follow (e.g. a window end at or before its start).
    NotAfter {
        /// The field it must be later than.
        other: &'static str,
    },
    /// Outside the allowed range.
    OutOfRange {
        /// The allowed range, as people write it (e.g. `1..=3`).
        range: &'static str,
    },
    /// Not a valid value of this kind; the text says what was expected.
    Invalid {
        /// What was expected.
        expected: &'static str,
    },
    /// Refers to something that does not exist.
    Unknown,
    /// Already used by another live object where it must be unique.
    Duplicate,
    /// The door does not support this auth type in this direction.
    UnsupportedByDoor {
        /// The auth types that are not supported, comma-separated.
        auth_types: String,
    },
    /// Belongs to a different site than the rest.
    OtherSite,
    /// With its counterpart of the other direction, enables no auth type, so the request
    /// could never grant anything there (an access door's `in_auth_types`).
    GrantsNothing,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Empty => f.write_str("must not be empty"),
            Problem::TooLong { max } => write!(f, "must be at most {max} characters"),
            Problem::BadCharacters => f.write_str("contains control characters"),
            Problem::Missing => f.write_str("is required"),
            Problem::NotAfter { other } => write!(f, "must be after {other}"),
            Problem::OutOfRange { range } => write!(f, "must be in {range}"),
            Problem::Invalid { expected } => write!(f, "must be {expected}"),
            Problem::Unknown => f.write_str("does not exist"),
            Problem::Duplicate => f.write_str("is already in use"),
            Problem::UnsupportedByDoor { auth_types } => {
                write!(f, "not supported by the door: {auth_types}")
            }
            Problem::OtherSite => f.write_str("belongs to another site"),
            Problem::GrantsNothing => f.write_str(
                "and out_auth_types enable no auth type, so the access could never grant \
                 anything at this door (omit them to take every type the door takes)",
            ),
        }
    }
}

/// A field failed validation; nothing was created or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct InvalidField {
    /// The field at fault, as the integrator API spells it.
    pub field: String,
    /// What is wrong with it.
    pub problem: Problem,
}

impl InvalidField {
    /// The field `field` has problem `problem`.
    pub fn new(field: impl Into<String>, problem: Problem) -> Self {
        InvalidField {
            field: field.into(),
            problem,
        }
    }
}

/// Trims `text` and checks it is non-empty, at most `max` characters and free of control
/// characters.
pub(crate) fn required_text(
    field: &'static str,
    text: &str,
    max: usize,
) -> Result<String, InvalidField> {
    let text = text.trim();
    if text.is_empty() {
        return Err(InvalidField::new(field, Problem::Empty));
    }
    if text.chars().count() > max {
        return Err(InvalidField::new(field, Problem::TooLong { max }));
    }
    if text.chars().any(char::is_control) {
        return Err(InvalidField::new(field, Problem::BadCharacters));
    }
    Ok(text.to_owned())
}

/// A half-open window of instants `[from, to)`; either end may be open.
///
/// `Window::ALWAYS` has neither end. An instant equal to `to` is already outside, so a
/// window ending at 18:00 stops at 18:00:00 exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    from: Option<Timestamp>,
    to: Option<Timestamp>,
}

impl Window {
    /// The unbounded window.
    pub const ALWAYS: Window = Window {
        from: None,
        to: None,
    };

    /// The window `[from, to)`. Fails, naming `to_field`, if both ends are given and `to`
    /// is not after `from`.
    pub fn new(
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        from_field: &'static str,
        to_field: &'static str,
    ) -> Result<Window, InvalidField> {
        if let (Some(from), Some(to)) = (from, to) {
            if to <= from {
                return Err(InvalidField::new(
                    to_field,
                    Problem::NotAfter { other: from_field },
                ));
            }
        }
        Ok(Window { from, to })
    }

    /// The window `[from, to)` with both ends given; fails if `to <= from`.
    pub fn between(
        from: Timestamp,
        to: Timestamp,
        from_field: &'static str,
        to_field: &'static str,
    ) -> Result<Window, InvalidField> {
        Window::new(Some(from), Some(to), from_field, to_field)
    }

    /// The start, if bounded.
    pub fn from(&self) -> Option<Timestamp> {
        self.from
    }

    /// The (exclusive) end, if bounded.
    pub fn to(&self) -> Option<Timestamp> {
        self.to
    }

    /// Whether `at` is inside the window.
    pub fn contains(&self, at: Timestamp) -> bool {
        self.from.is_none_or(|from| from <= at) && self.to.is_none_or(|to| at < to)
    }

    /// Whether the window has not started yet at `at`.
    pub fn is_before(&self, at: Timestamp) -> bool {
        self.from.is_some_and(|from| at < from)
    }

    /// Whether the window is over at `at`.
    pub fn is_after(&self, at: Timestamp) -> bool {
        self.to.is_some_and(|to| to <= at)
    }

    /// The bounds strictly after `at`: the instants at which [`Window::contains`] may flip.
    pub fn boundaries_after(&self, at: Timestamp) -> impl Iterator<Item = Timestamp> {
        [self.from, self.to]
            .into_iter()
            .flatten()
            .filter(move |b| *b > at)
    }
}

impl Default for Window {
    fn default() -> Self {
        Window::ALWAYS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn window_is_half_open() {
        let w = Window::between(ts(10), ts(20), "valid_from", "valid_to").unwrap();
        assert!(!w.contains(ts(9)));
        assert!(w.contains(ts(10)));
        assert!(w.contains(ts(19)));
        assert!(!w.contains(ts(20)));
        assert!(w.is_before(ts(9)) && !w.is_before(ts(10)));
        assert!(w.is_after(ts(20)) && !w.is_after(ts(19)));
        assert!(Window::ALWAYS.contains(ts(0)));
    }

    #[test]
    fn window_end_must_follow_start() {
        let err = Window::between(ts(20), ts(20), "starts_at", "ends_at").unwrap_err();
        assert_eq!(err.field, "ends_at");
        assert_eq!(err.to_string(), "ends_at must be after starts_at");
        assert!(Window::new(Some(ts(5)), None, "a", "b").is_ok());
    }

    #[test]
    fn required_text_trims_and_limits() {
        assert_eq!(required_text("name", "  Ana ", 10), Ok("Ana".to_owned()));
        assert_eq!(
            required_text("name", "   ", 10),
            Err(InvalidField::new("name", Problem::Empty))
        );
        assert_eq!(
            required_text("name", "abcdef", 5),
            Err(InvalidField::new("name", Problem::TooLong { max: 5 }))
        );
        assert_eq!(
            required_text("name", "a\u{7}b", 5),
            Err(InvalidField::new("name", Problem::BadCharacters))
        );
    }
}
