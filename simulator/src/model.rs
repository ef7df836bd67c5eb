//! Model profiles: which terminal the simulator pretends to be and what that model can do.
//!
//! The profile decides the capabilities (face, fingerprint, card, QR, PIN), how a door is
//! driven (internal relay → `door` action, external Security Box → `sec_box` action),
//! which configuration sections exist, which commands the firmware answers, and the
//! identity it reports in `system_information` (docs/device-api.md §9.1, §10.1).

use std::fmt;
use std::str::FromStr;

/// A Control iD terminal model the simulator can emulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    /// iDFace (firmware 6.x): face, card, QR, PIN; drives an external Security Box.
    IdFace,
    /// iDFace Max (firmware 8.x): like iDFace, plus the "first web login" state.
    IdFaceMax,
    /// iDAccess: fingerprint, card, PIN; internal door relay.
    IdAccess,
    /// iDFlex: fingerprint, card, PIN; Security Box; online mode needs the Enterprise upgrade.
    IdFlex,
}

/// How the model opens a door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoorDrive {
    /// Internal relay(s), opened with the `door` action (`door=N`).
    Relay {
        /// Number of doors the relay board drives.
        doors: u8,
    },
    /// External Security Box, opened with the `sec_box` action (`id=65793`).
    SecBox,
}

/// The default Security Box id (0x010101).
pub const DEFAULT_SEC_BOX_ID: i64 = 65793;

impl Model {
    /// Every model, in a stable order.
    pub const ALL: [Model; 4] = [
        Model::IdFace,
        Model::IdFaceMax,
        Model::IdAccess,
        Model::IdFlex,
    ];

    /// The CLI spelling (`idface`, `idface-max`, `idaccess`, `idflex`).
    pub fn cli_name(self) -> &'static str {
        match self {
            Model::IdFace => "idface",
            Model::IdFaceMax => "idface-max",
            Model::IdAccess => "idaccess",
            Model::IdFlex => "idflex",
        }
    }

    /// `system_information.device_name`.
    pub fn device_name(self) -> &'static str {
        match self {
            Model::IdFace | Model::IdFaceMax => "iDFace",
            Model::IdAccess => "iDAccess",
            Model::IdFlex => "iDFlex",
        }
    }

    /// `system_information.device_two_names` (the marketing name).
    pub fn display_name(self) -> &'static str {
        match self {
            Model::IdFace => "iDFace",
            Model::IdFaceMax => "iDFace Max",
            Model::IdAccess => "iDAccess",
            Model::IdFlex => "iDFlex",
        }
    }

    /// Firmware version reported in `system_information.version`.
    pub fn firmware_version(self) -> &'static str {
        match self {
            Model::IdFace => "6.23.0",
            Model::IdFaceMax => "8.3.1",
            Model::IdAccess => "2.6.0",
            Model::IdFlex => "5.11.2",
        }
    }

    /// Serial-number prefix (`0M0200` on iDFace 6.x, `0X0700` on iDFace Max).
    pub fn serial_prefix(self) -> &'static str {
        match self {
            Model::IdFace => "0M0200",
            Model::IdFaceMax => "0X0700",
            Model::IdAccess => "0A0100",
            Model::IdFlex => "0F0300",
        }
    }

    /// Whether the model enrols and identifies faces (photos, `user_set_image`).
    pub fn has_face(self) -> bool {
        matches!(self, Model::IdFace | Model::IdFaceMax)
    }

    /// Whether the model reads fingerprints.
    pub fn has_fingerprint(self) -> bool {
        matches!(self, Model::IdAccess | Model::IdFlex)
    }

    /// Whether the model reads QR codes (iDFace module `face_id`).
    pub fn has_qr(self) -> bool {
        self.has_face()
    }

    /// Every model here has a card reader and a keypad.
    pub fn has_card(self) -> bool {
        true
    }

    /// How the model opens its door.
    pub fn door_drive(self) -> DoorDrive {
        match self {
            Model::IdAccess => DoorDrive::Relay { doors: 1 },
            Model::IdFace | Model::IdFaceMax | Model::IdFlex => DoorDrive::SecBox,
        }
    }

    /// `system_information.online_available`: iDFlex needs the Enterprise upgrade.
    pub fn online_available(self) -> bool {
        !matches!(self, Model::IdFlex)
    }

    /// Whether `system_information.device_id` is a JSON string (as captured on iDFace 6.x).
    pub fn device_id_as_string(self) -> bool {
        matches!(self, Model::IdFace)
    }

    /// Whether the model has the "first web login" state (iDFace Max 7.x/8.x).
    pub fn has_first_web_login(self) -> bool {
        matches!(self, Model::IdFaceMax)
    }

    /// Whether the firmware keeps the `change_logs` table (iDFace family only).
    pub fn has_change_logs(self) -> bool {
        self.has_face()
    }

    /// Face capacity reported in `system_information.license.users`.
    pub fn license_users(self) -> i64 {
        match self {
            Model::IdFace | Model::IdFaceMax => 200_000,
            Model::IdAccess => 1_000,
            Model::IdFlex => 10_000,
        }
    }

    /// Fingerprint template capacity (`system_information.biometrics`).
    pub fn template_capacity(self) -> i64 {
        match self {
            Model::IdFace | Model::IdFaceMax => 0,
            Model::IdAccess => 2_000,
            Model::IdFlex => 6_000,
        }
    }

    /// Whether the firmware answers `command` at all: face commands only on face models,
    /// the fingerprint bulk-load brackets only on fingerprint models.
    pub fn supports_command(self, command: &str) -> bool {
        let face_only = command.starts_with("user_set_image")
            || command.starts_with("user_get_image")
            || command == "user_list_images"
            || command == "user_destroy_image"
            || command == "user_test_image"
            || command == "face_template_count_distinct";
        let finger_only = command.starts_with("template_sync_");
        (!face_only || self.has_face()) && (!finger_only || self.has_fingerprint())
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

/// The model name was not one the simulator knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown model '{0}' (expected one of: idface, idface-max, idaccess, idflex)")]
pub struct UnknownModel(String);

impl FromStr for Model {
    type Err = UnknownModel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        Model::ALL
            .into_iter()
            .find(|m| m.cli_name().replace('-', "") == wanted)
            .ok_or_else(|| UnknownModel(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cli_and_display_names() {
        assert_eq!("idface".parse::<Model>().unwrap(), Model::IdFace);
        assert_eq!("iDFace Max".parse::<Model>().unwrap(), Model::IdFaceMax);
        assert_eq!("idface-max".parse::<Model>().unwrap(), Model::IdFaceMax);
        assert_eq!("IDACCESS".parse::<Model>().unwrap(), Model::IdAccess);
        assert!("idblock".parse::<Model>().is_err());
    }

    #[test]
    fn face_commands_only_on_face_models() {
        assert!(Model::IdFace.supports_command("user_set_image"));
        assert!(!Model::IdAccess.supports_command("user_set_image"));
        assert!(Model::IdAccess.supports_command("load_objects"));
        assert!(Model::IdFace.supports_command("is_first_web_login"));
        assert!(Model::IdFaceMax.supports_command("is_first_web_login"));
        assert!(Model::IdFlex.supports_command("template_sync_init"));
        assert!(!Model::IdFace.supports_command("template_sync_end"));
    }
}
