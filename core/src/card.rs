//! Card credentials as the terminals store them: a Wiegand card is a facility code and a
//! card number, and the terminal keeps it in `cards.value` as one 64-bit integer,
//! `facility × 2^32 + number` (terminal-api.md §3.8; e.g. 123,45678 → 528281023086).
//!
//! Pure and I/O-free; the conversion is exact over the whole `u64` range.

use std::fmt;
use std::str::FromStr;

/// A Wiegand card: facility code and card number.
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

    /// The facility code.
    pub const fn facility_code(self) -> u32 {
        self.facility_code
    }

    /// The card number within the facility.
    pub const fn number(self) -> u32 {
        self.number
    }

    /// The terminal's `cards.value`: `facility × 2^32 + number`.
    pub const fn to_device_value(self) -> u64 {
        ((self.facility_code as u64) << 32) | self.number as u64
    }

    /// The card a terminal's `cards.value` stands for.
    pub const fn from_device_value(value: u64) -> Self {
        WiegandCard {
            facility_code: (value >> 32) as u32,
            number: (value & 0xFFFF_FFFF) as u32,
        }
    }
}

impl fmt::Display for WiegandCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.facility_code, self.number)
    }
}

/// A card written as text was not `facility,number`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardParseError {
    /// There is no comma between facility code and number.
    #[error("expected 'facility,number', got '{0}'")]
    MissingComma(String),
    /// The facility code is not a number from 0 to 4294967295.
    #[error("facility code '{0}' is not a number from 0 to 4294967295")]
    BadFacilityCode(String),
    /// The card number is not a number from 0 to 4294967295.
    #[error("card number '{0}' is not a number from 0 to 4294967295")]
    BadNumber(String),
}

impl FromStr for WiegandCard {
    type Err = CardParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (facility, number) = s
            .split_once(',')
            .ok_or_else(|| CardParseError::MissingComma(s.to_owned()))?;
        let facility = facility.trim();
        let number = number.trim();
        Ok(WiegandCard {
            facility_code: facility
                .parse()
                .map_err(|_| CardParseError::BadFacilityCode(facility.to_owned()))?,
            number: number
                .parse()
                .map_err(|_| CardParseError::BadNumber(number.to_owned()))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn documented_example() {
        let card = WiegandCard::new(123, 45678);
        assert_eq!(card.to_device_value(), 123 * 4_294_967_296 + 45678);
        assert_eq!(card.to_device_value(), 528_281_023_086);
        assert_eq!(card.to_string(), "123,45678");
        assert_eq!(WiegandCard::from_device_value(528_281_023_086), card);
    }

    #[test]
    fn extremes_are_exact() {
        assert_eq!(
            WiegandCard::new(u32::MAX, u32::MAX).to_device_value(),
            u64::MAX
        );
        assert_eq!(WiegandCard::new(0, 0).to_device_value(), 0);
        assert_eq!(WiegandCard::new(1, 0).to_device_value(), 1 << 32);
    }

    #[test]
    fn parsing() {
        assert_eq!(" 123 , 45678".parse(), Ok(WiegandCard::new(123, 45678)));
        assert_eq!(
            "12345678".parse::<WiegandCard>(),
            Err(CardParseError::MissingComma("12345678".into()))
        );
        assert_eq!(
            "x,1".parse::<WiegandCard>(),
            Err(CardParseError::BadFacilityCode("x".into()))
        );
        assert_eq!(
            "1,4294967296".parse::<WiegandCard>(),
            Err(CardParseError::BadNumber("4294967296".into()))
        );
        assert!("-1,5".parse::<WiegandCard>().is_err());
    }

    proptest! {
        #[test]
        fn device_value_round_trips(value in any::<u64>()) {
            let card = WiegandCard::from_device_value(value);
            prop_assert_eq!(card.to_device_value(), value);
            prop_assert_eq!(card.to_string().parse::<WiegandCard>(), Ok(card));
        }
    }
}
