//! Auth types, the factors they require, and the direction of passage.
//!
//! A door advertises per direction which auth types its hardware supports; an access
//! enables a subset of those per door and direction. An auth type is satisfied when every
//! one of its factors was presented and all of them belong to the same person
//! (docs/domain.md §8.2 rule 8).
//!
//! The names are ours; the Entryfy equivalents (docs/domain.md §2.3) are noted per variant.
//! Entryfy's `REX` (exit button) is not a credential and has no variant here.

use std::collections::BTreeSet;
use std::fmt;

/// Passage direction at a door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Entering.
    In,
    /// Leaving.
    Out,
}

/// One kind of proof a person can present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Factor {
    /// A face matched against an enrolled face.
    Face,
    /// A finger matched against enrolled templates.
    Fingerprint,
    /// A card (facility code + number).
    Card,
    /// A PIN typed on a keypad.
    Pin,
    /// A QR code shown to the reader.
    Qr,
    /// A cloud-key link (remote unlock; carries its own PIN if it has one).
    CloudKey,
    /// A mobile key on an enrolled phone.
    MobileKey,
}

impl Factor {
    /// Whether credentials of this factor are stored on terminals (and so distributed to
    /// them). Cloud keys and mobile keys are checked by the core, never pushed to a device.
    pub fn is_terminal_held(self) -> bool {
        matches!(
            self,
            Factor::Face | Factor::Fingerprint | Factor::Card | Factor::Pin | Factor::Qr
        )
    }
}

/// How a person may authenticate at a door in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuthType {
    /// Face alone.
    Face,
    /// Fingerprint alone.
    Fingerprint,
    /// Card alone (Entryfy `KEY_CARD`).
    Card,
    /// PIN alone (Entryfy `PIN`, `PASSCODE`).
    Pin,
    /// QR alone (Entryfy `CARD`: the user's QR shown to the reader).
    Qr,
    /// Cloud-key link (Entryfy `REMOTE`).
    CloudKey,
    /// Mobile key (Entryfy `SCAN`).
    MobileKey,
    /// Card and PIN of the same person (Entryfy `KEY_CARD_PLUS_PIN`).
    CardPlusPin,
    /// QR and PIN of the same person (Entryfy `CARD_PLUS_PIN`).
    QrPlusPin,
    /// Face and PIN of the same person.
    FacePlusPin,
    /// Fingerprint and PIN of the same person.
    FingerprintPlusPin,
    /// Face and card of the same person.
    FacePlusCard,
    /// Mobile key and PIN of the same person (Entryfy `SCAN_PLUS_KEYPAD`).
    MobileKeyPlusPin,
}

impl AuthType {
    /// Every auth type, in declaration order.
    pub const ALL: [AuthType; 13] = [
        AuthType::Face,
        AuthType::Fingerprint,
        AuthType::Card,
        AuthType::Pin,
        AuthType::Qr,
        AuthType::CloudKey,
        AuthType::MobileKey,
        AuthType::CardPlusPin,
        AuthType::QrPlusPin,
        AuthType::FacePlusPin,
        AuthType::FingerprintPlusPin,
        AuthType::FacePlusCard,
        AuthType::MobileKeyPlusPin,
    ];

    /// The factors this auth type requires, all of them.
    pub fn factors(self) -> &'static [Factor] {
        match self {
            AuthType::Face => &[Factor::Face],
            AuthType::Fingerprint => &[Factor::Fingerprint],
            AuthType::Card => &[Factor::Card],
            AuthType::Pin => &[Factor::Pin],
            AuthType::Qr => &[Factor::Qr],
            AuthType::CloudKey => &[Factor::CloudKey],
            AuthType::MobileKey => &[Factor::MobileKey],
            AuthType::CardPlusPin => &[Factor::Card, Factor::Pin],
            AuthType::QrPlusPin => &[Factor::Qr, Factor::Pin],
            AuthType::FacePlusPin => &[Factor::Face, Factor::Pin],
            AuthType::FingerprintPlusPin => &[Factor::Fingerprint, Factor::Pin],
            AuthType::FacePlusCard => &[Factor::Face, Factor::Card],
            AuthType::MobileKeyPlusPin => &[Factor::MobileKey, Factor::Pin],
        }
    }

    /// Whether the presented factors include every factor this auth type needs.
    pub fn is_satisfied_by(self, presented: &BTreeSet<Factor>) -> bool {
        self.factors().iter().all(|f| presented.contains(f))
    }

    /// Whether the presented factors are a non-empty part of this auth type but not all
    /// of it: the person started this auth type and a factor is missing.
    pub fn is_partially_satisfied_by(self, presented: &BTreeSet<Factor>) -> bool {
        let have = self
            .factors()
            .iter()
            .filter(|f| presented.contains(f))
            .count();
        have > 0 && have < self.factors().len()
    }

    /// The name used in the integrator API (`card_plus_pin`).
    pub fn name(self) -> &'static str {
        match self {
            AuthType::Face => "face",
            AuthType::Fingerprint => "fingerprint",
            AuthType::Card => "card",
            AuthType::Pin => "pin",
            AuthType::Qr => "qr",
            AuthType::CloudKey => "cloud_key",
            AuthType::MobileKey => "mobile_key",
            AuthType::CardPlusPin => "card_plus_pin",
            AuthType::QrPlusPin => "qr_plus_pin",
            AuthType::FacePlusPin => "face_plus_pin",
            AuthType::FingerprintPlusPin => "fingerprint_plus_pin",
            AuthType::FacePlusCard => "face_plus_card",
            AuthType::MobileKeyPlusPin => "mobile_key_plus_pin",
        }
    }
}

impl fmt::Display for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The factors any of `auth_types` uses.
pub fn factors_of<'a>(auth_types: impl IntoIterator<Item = &'a AuthType>) -> BTreeSet<Factor> {
    auth_types
        .into_iter()
        .flat_map(|a| a.factors().iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_factor_needs_every_factor() {
        let card: BTreeSet<_> = [Factor::Card].into();
        let card_pin: BTreeSet<_> = [Factor::Card, Factor::Pin].into();
        assert!(!AuthType::CardPlusPin.is_satisfied_by(&card));
        assert!(AuthType::CardPlusPin.is_partially_satisfied_by(&card));
        assert!(AuthType::CardPlusPin.is_satisfied_by(&card_pin));
        assert!(!AuthType::CardPlusPin.is_partially_satisfied_by(&card_pin));
        assert!(AuthType::Card.is_satisfied_by(&card_pin));
        assert!(!AuthType::Face.is_partially_satisfied_by(&card));
    }

    #[test]
    fn names_are_unique() {
        let names: BTreeSet<_> = AuthType::ALL.iter().map(|a| a.name()).collect();
        assert_eq!(names.len(), AuthType::ALL.len());
    }
}
