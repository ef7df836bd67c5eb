//! Card credentials as the terminals store them.
//!
//! A Wiegand card is a facility code and a card number, each 32 bits. The terminal keeps it
//! in `cards.value` as one 64-bit integer, `facility × 2^32 + number` (docs/device-api.md §3.8):
//! the card written `123,45678` is stored as `123 × 4294967296 + 45678 = 528281023086`.
//!
//! The conversion is exact in both directions over the whole `u64` range; values above
//! 2^53 are common (any facility code above 2^21), so they must never pass through a float.
//! Pure and I/O-free: no serde here, the terminal's JSON is the driver's business.

use std::fmt;
use std::num::IntErrorKind;
use std::str::FromStr;

/// A Wiegand card: facility code and card number.
///
/// Written as text `facility,number` (e.g. `123,45678`), stored on the terminal as
/// [`WiegandCard::to_device_value`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WiegandCard {
    facility_code: u32,
    number: u32,
}

impl WiegandCard {
    /// A card with this facility code and number.
    pub const fn new(facility_code: u32, number: u32) -> Self {
        WiegandCard {
            facility_code,
            number,
        }
    }

    /// The facility code (the upper 32 bits of the device value).
    pub const fn facility_code(self) -> u32 {
        self.facility_code
    }

    /// The card number within the facility (the lower 32 bits of the device value).
    pub const fn number(self) -> u32 {
        self.number
    }

    /// The terminal's `cards.value`: `facility × 2^32 + number`.
    pub const fn to_device_value(self) -> u64 {
        ((self.facility_code as u64) << 32) | self.number as u64
    }

    /// The card a terminal's `cards.value` stands for. Every `u64` is a valid card.
    pub const fn from_device_value(value: u64) -> Self {
        WiegandCard {
            facility_code: (value >> 32) as u32,
            number: value as u32,
        }
    }
}

impl fmt::Display for WiegandCard {
    /// `facility,number`, the form people read off a card and type in.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.facility_code, self.number)
    }
}

/// Which half of a written card a parse error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardField {
    /// The part before the comma.
    FacilityCode,
    /// The part after the comma.
    Number,
}

impl fmt::Display for CardField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CardField::FacilityCode => "facility code",
            CardField::Number => "card number",
        })
    }
}

/// A card written as text was not `facility,number` with both parts from 0 to 4294967295.
///
/// Every variant means the same thing to the caller – ask for the card again – and says
/// what to correct.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardParseError {
    /// There is no comma between facility code and number.
    #[error("expected 'facility,number' (e.g. '123,45678'), got '{0}'")]
    MissingComma(String),
    /// A part is empty or not a decimal number.
    #[error("{field} '{text}' is not a decimal number")]
    NotANumber {
        /// The part at fault.
        field: CardField,
        /// What was written there (trimmed).
        text: String,
    },
    /// A part is a number, but outside 0 to 4294967295.
    #[error("{field} '{text}' is out of range (0 to 4294967295)")]
    OutOfRange {
        /// The part at fault.
        field: CardField,
        /// What was written there (trimmed).
        text: String,
    },
}

impl FromStr for WiegandCard {
    type Err = CardParseError;

    /// Parses `facility,number`; spaces around either part are ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (facility, number) = s
            .split_once(',')
            .ok_or_else(|| CardParseError::MissingComma(s.to_owned()))?;
        Ok(WiegandCard {
            facility_code: parse_part(CardField::FacilityCode, facility)?,
            number: parse_part(CardField::Number, number)?,
        })
    }
}

fn parse_part(field: CardField, text: &str) -> Result<u32, CardParseError> {
    let text = text.trim();
    text.parse().map_err(|e: std::num::ParseIntError| {
        let text = text.to_owned();
        // `u32` parsing reports "-5" as an invalid digit; a signed number is still a
        // number, just not one a card can hold.
        let digits = text.strip_prefix(['-', '+']).unwrap_or(&text);
        let signed_number = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        match e.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
                CardParseError::OutOfRange { field, text }
            }
            _ if signed_number => CardParseError::OutOfRange { field, text },
            _ => CardParseError::NotANumber { field, text },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<WiegandCard, CardParseError> {
        s.parse()
    }

    #[test]
    fn documented_example() {
        // docs/device-api.md §3.8: 123,45678 → 123·4294967296 + 45678.
        let card = WiegandCard::new(123, 45678);
        assert_eq!(card.to_device_value(), 123 * 4_294_967_296 + 45678);
        assert_eq!(card.to_device_value(), 528_281_023_086);
        assert_eq!(card.to_string(), "123,45678");
        assert_eq!(parse("123,45678"), Ok(card));
        assert_eq!(WiegandCard::from_device_value(528_281_023_086), card);
    }

    #[test]
    fn accessors_return_the_parts() {
        let card = WiegandCard::from_device_value(528_281_023_086);
        assert_eq!((card.facility_code(), card.number()), (123, 45678));
    }

    #[test]
    fn extremes_are_exact() {
        let max = WiegandCard::new(u32::MAX, u32::MAX);
        assert_eq!(max.to_device_value(), u64::MAX);
        assert_eq!(max.to_string(), "4294967295,4294967295");
        assert_eq!(WiegandCard::new(0, 0).to_device_value(), 0);
        assert_eq!(WiegandCard::new(1, 0).to_device_value(), 1 << 32);
        assert_eq!(
            WiegandCard::new(0, u32::MAX).to_device_value(),
            (1 << 32) - 1
        );
        // Above 2^53 a float would round; the conversion must not.
        let big = WiegandCard::new(1 << 22, 1);
        assert_eq!(big.to_device_value(), (1 << 54) + 1);
    }

    #[test]
    fn parsing_ignores_spaces_around_parts() {
        assert_eq!(parse(" 123 , 45678 "), Ok(WiegandCard::new(123, 45678)));
        assert_eq!(parse("0,0"), Ok(WiegandCard::new(0, 0)));
    }

    #[test]
    fn parse_error_missing_comma() {
        assert_eq!(
            parse("12345678"),
            Err(CardParseError::MissingComma("12345678".into()))
        );
        assert_eq!(parse(""), Err(CardParseError::MissingComma(String::new())));
    }

    #[test]
    fn parse_error_not_a_number() {
        let not_a_number = |field, text: &str| {
            Err(CardParseError::NotANumber {
                field,
                text: text.into(),
            })
        };
        assert_eq!(parse("x,1"), not_a_number(CardField::FacilityCode, "x"));
        assert_eq!(parse(",1"), not_a_number(CardField::FacilityCode, ""));
        assert_eq!(parse("1,"), not_a_number(CardField::Number, ""));
        assert_eq!(parse("1,2,3"), not_a_number(CardField::Number, "2,3"));
        assert_eq!(parse("1,0x10"), not_a_number(CardField::Number, "0x10"));
        assert_eq!(parse("1,-"), not_a_number(CardField::Number, "-"));
    }

    #[test]
    fn parse_error_out_of_range() {
        let out_of_range = |field, text: &str| {
            Err(CardParseError::OutOfRange {
                field,
                text: text.into(),
            })
        };
        assert_eq!(
            parse("1,4294967296"),
            out_of_range(CardField::Number, "4294967296")
        );
        assert_eq!(
            parse("99999999999999999999,1"),
            out_of_range(CardField::FacilityCode, "99999999999999999999")
        );
        assert_eq!(parse("-1,5"), out_of_range(CardField::FacilityCode, "-1"));
    }

    #[test]
    fn parse_errors_say_what_to_fix() {
        assert_eq!(
            parse("1,4294967296").unwrap_err().to_string(),
            "card number '4294967296' is out of range (0 to 4294967295)"
        );
        assert_eq!(
            parse("abc,1").unwrap_err().to_string(),
            "facility code 'abc' is not a decimal number"
        );
        assert_eq!(
            parse("123").unwrap_err().to_string(),
            "expected 'facility,number' (e.g. '123,45678'), got '123'"
        );
    }

    proptest! {
        #[test]
        fn device_value_round_trips(value in any::<u64>()) {
            let card = WiegandCard::from_device_value(value);
            prop_assert_eq!(card.to_device_value(), value);
            prop_assert_eq!(parse(&card.to_string()), Ok(card));
        }

        #[test]
        fn parts_round_trip(facility in any::<u32>(), number in any::<u32>()) {
            let card = WiegandCard::from_device_value(WiegandCard::new(facility, number).to_device_value());
            prop_assert_eq!((card.facility_code(), card.number()), (facility, number));
        }
    }
}
