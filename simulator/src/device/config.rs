//! The configuration store behind `get_configuration` / `set_configuration`
//! (docs/device-api.md §2, §9.2): sections of string-valued keys, per-model defaults, and the
//! firmware's "Node or attribute not found" / "Invalid data" errors.
//!
//! The `monitor`, `online_client` and `push_server` sections are stored here for the
//! monitor and online-mode behaviour that reads them; `general.beep_enabled`, the relay
//! times, `buzzer.audio_message_*` and the custom `identifier` messages for what the
//! terminal's front does after a decision (docs/device-api.md §9.13).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value as Json};

use crate::model::{DoorDrive, Model};
use crate::wire::{MemberError, Members};

/// A configuration request was refused; `Display` is the device's error text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A section was not an array (get) or object (set).
    #[error(transparent)]
    Member(#[from] MemberError),
    /// The section or key does not exist on this firmware.
    #[error("Node or attribute not found. Node path: {}", node_path(.section, .key))]
    NotFound {
        /// Section name.
        section: String,
        /// Key name.
        key: String,
    },
    /// A value was not a JSON string.
    #[error("Invalid data (string expected)")]
    NotString,
}

/// How a configuration value that stands for a duration is read. Values are strings that
/// anyone can set to anything (`"-1"`, `"1e400"`, `"18446744073709551615"`), and a
/// duration feeds timers and timeouts that panic or hang on absurd values, so every one of
/// them goes through [`DurationSetting::read`]: a whole number of the setting's unit,
/// clamped into its bounds; anything else is the factory value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationSetting {
    /// Milliseconds per unit of the value (1 for ms, 1000 for s).
    unit_ms: u64,
    /// Factory value, in units.
    default: u64,
    /// Smallest accepted value, in units.
    min: u64,
    /// Largest accepted value, in units; larger ones (even beyond `u64`) are read as this.
    max: u64,
}

impl DurationSetting {
    /// A value in milliseconds.
    pub const fn millis(default: u64, min: u64, max: u64) -> Self {
        DurationSetting {
            unit_ms: 1,
            default,
            min,
            max,
        }
    }

    /// A value in seconds.
    pub const fn seconds(default: u64, min: u64, max: u64) -> Self {
        DurationSetting {
            unit_ms: 1000,
            default,
            min,
            max,
        }
    }

    /// The duration `value` stands for (the factory value when absent or not a number).
    pub fn read(&self, value: Option<&str>) -> Duration {
        let units = match value.map(str::trim) {
            Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                // Only digits: a number too large for u64 is simply "very large".
                v.parse::<u64>().unwrap_or(u64::MAX)
            }
            _ => self.default,
        };
        self.clamped(units)
    }

    /// The duration an integer cell of a table stands for (`sec_boxs.relay_timeout`);
    /// a negative one is the factory value.
    pub fn read_int(&self, value: Option<i128>) -> Duration {
        let units = match value {
            Some(v) if v >= 0 => u64::try_from(v).unwrap_or(u64::MAX),
            _ => self.default,
        };
        self.clamped(units)
    }

    fn clamped(&self, units: u64) -> Duration {
        let units = units.clamp(self.min, self.max.max(self.min));
        Duration::from_millis(units.saturating_mul(self.unit_ms))
    }
}

/// `monitor.request_timeout` and `online_client.request_timeout` (ms).
pub const REQUEST_TIMEOUT: DurationSetting = DurationSetting::millis(5000, 100, 60_000);
/// `push_server.push_request_timeout` (ms).
pub const PUSH_REQUEST_TIMEOUT: DurationSetting = DurationSetting::millis(4000, 100, 60_000);
/// `push_server.push_request_period` (s): at most a day between polls.
pub const PUSH_REQUEST_PERIOD: DurationSetting = DurationSetting::seconds(5, 1, 86_400);
/// How long a relay stays energised (ms): `general.relay1_timeout` /
/// `relay2_timeout` and `sec_boxs.relay_timeout`; at most an hour.
pub const RELAY_TIMEOUT: DurationSetting = DurationSetting::millis(3000, 0, 3_600_000);

fn node_path(section: &str, key: &str) -> String {
    if section == "general" {
        format!("config->general->param[name={key}]")
    } else {
        format!("config->modules->module[name={section}]->param[name={key}]")
    }
}

/// Every section and key of one device, values always strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    sections: BTreeMap<String, BTreeMap<String, String>>,
    /// Which edition of the values this is: taken afresh (from one counter for every
    /// configuration) whenever they may have changed, so that two editions never share it.
    edition: u64,
}

/// The next configuration edition.
fn next_edition() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn section(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl Config {
    /// The factory configuration of `model`.
    pub fn factory(model: Model) -> Self {
        let mut sections = BTreeMap::new();
        let relay_count = match model.door_drive() {
            DoorDrive::Relay { doors } => doors.to_string(),
            DoorDrive::SecBox => "0".to_owned(),
        };
        sections.insert(
            "general".to_owned(),
            section(&[
                ("online", "0"),
                ("local_identification", "1"),
                ("language", "en_US"),
                ("keep_user_image", "1"),
                ("url_reboot_enabled", "0"),
                ("relay_count", &relay_count),
                ("bell_enabled", "0"),
                ("bell_relay", "1"),
                ("clock_12h_format", "0"),
                ("month_day_year_format", "0"),
                ("attendance_mode", "0"),
                ("show_logo", "0"),
                ("custom_hostname", ""),
                ("exception_mode", ""),
                ("hide_name_on_identification", "0"),
                ("country_code", ""),
                ("self_signed_certificate", "1"),
                ("beep_enabled", "1"),
                ("screen_always_on", "0"),
            ]),
        );
        if let DoorDrive::Relay { .. } = model.door_drive()
            && let Some(general) = sections.get_mut("general")
        {
            // The relay board has two relays whatever the number of doors simulated.
            for key in ["relay1_timeout", "relay2_timeout"] {
                general.insert(key.to_owned(), "3000".to_owned());
            }
        }
        let face = if model.has_face() { "1" } else { "0" };
        let mut identifier = section(&[
            ("log_type", "0"),
            ("face_identification_enabled", face),
            ("card_identification_enabled", "1"),
            ("enable_custom_auth_message", "0"),
            ("custom_auth_message", ""),
            ("enable_custom_deny_message", "0"),
            ("custom_deny_message", ""),
            ("enable_custom_not_identified_message", "0"),
            ("custom_not_identified_message", ""),
        ]);
        if model.has_face() {
            identifier.extend(section(&[
                ("enable_custom_mask_message", "0"),
                ("custom_mask_message", ""),
            ]));
        }
        sections.insert("identifier".to_owned(), identifier);
        if model.has_face() {
            sections.insert(
                "buzzer".to_owned(),
                section(&[
                    ("audio_message_authorized", "default"),
                    ("audio_message_not_authorized", "default"),
                    ("audio_message_not_identified", "default"),
                    ("audio_message_volume_gain", "1"),
                ]),
            );
            sections.insert(
                "onvif".to_owned(),
                section(&[
                    ("rtsp_enabled", "0"),
                    ("rtsp_port", "554"),
                    ("rtsp_username", "admin"),
                    ("rtsp_password", "admin"),
                    ("rtsp_rgb", "1"),
                ]),
            );
        }
        if model.has_face() {
            sections.insert(
                "face_id".to_owned(),
                section(&[
                    ("qrcode_legacy_mode_enabled", "0"),
                    ("min_detect_bounds_width", "0.2"),
                ]),
            );
        } else {
            sections.insert(
                "barras".to_owned(),
                section(&[("qrcode_legacy_mode_enabled", "1")]),
            );
        }
        if model.door_drive() == DoorDrive::SecBox {
            sections.insert(
                "sec_box".to_owned(),
                section(&[("catra_role", "0"), ("out_mode", "0")]),
            );
        }
        sections.insert(
            "alarm".to_owned(),
            section(&[("siren_enabled", "0"), ("siren_relay", "1")]),
        );
        sections.insert(
            "monitor".to_owned(),
            section(&[
                ("hostname", ""),
                ("port", ""),
                ("path", "api/notifications"),
                ("request_timeout", "5000"),
                ("enable_photo_upload", "0"),
                ("alive_interval", "30000"),
                ("inform_access_event_id", "0"),
            ]),
        );
        sections.insert(
            "online_client".to_owned(),
            section(&[
                ("server_id", ""),
                ("extract_template", "0"),
                ("max_request_attempts", "3"),
                ("request_timeout", "5000"),
                ("contingency_enabled", "1"),
                ("alive_interval", "30000"),
            ]),
        );
        sections.insert(
            "push_server".to_owned(),
            section(&[
                ("push_remote_address", ""),
                ("push_request_timeout", "4000"),
                ("push_request_period", "5"),
            ]),
        );
        sections.insert(
            "pjsip".to_owned(),
            section(&[
                ("enabled", "0"),
                ("server_ip", ""),
                ("server_port", "5060"),
                ("branch", ""),
                ("login", ""),
                ("password", ""),
                ("peer_to_peer_enabled", "0"),
            ]),
        );
        Config {
            sections,
            edition: next_edition(),
        }
    }

    /// Which edition of the values this is: another one after any change.
    pub fn edition(&self) -> u64 {
        self.edition
    }

    /// One value, if the key exists.
    pub fn value(&self, section: &str, key: &str) -> Option<&str> {
        self.sections.get(section)?.get(key).map(String::as_str)
    }

    /// Every section with its keys (for the state file).
    pub fn sections(&self) -> &BTreeMap<String, BTreeMap<String, String>> {
        &self.sections
    }

    /// Overwrites values of keys that exist (restoring a state file); unknown keys are skipped.
    pub fn restore(&mut self, saved: &BTreeMap<String, BTreeMap<String, String>>) {
        self.edition = next_edition();
        for (s, keys) in saved {
            for (k, v) in keys {
                if let Some(slot) = self.sections.get_mut(s).and_then(|sec| sec.get_mut(k)) {
                    slot.clone_from(v);
                }
            }
        }
    }

    fn check(&self, section: &str, key: &str) -> Result<(), ConfigError> {
        if self.value(section, key).is_some() {
            Ok(())
        } else {
            Err(ConfigError::NotFound {
                section: section.to_owned(),
                key: key.to_owned(),
            })
        }
    }

    /// `get_configuration`: `{"section": ["key", …]}` → `{"section": {"key": "value"}}`.
    pub fn get(&self, request: Members<'_>) -> Result<Json, ConfigError> {
        let mut reply = Map::new();
        for (name, keys) in request.iter() {
            let keys = match keys {
                Json::Array(keys) => keys,
                other => return Err(MemberError::new(name, "array", Some(other)).into()),
            };
            let mut out = Map::new();
            for key in keys {
                let key = match key {
                    Json::String(k) => k,
                    other => return Err(MemberError::new(name, "string", Some(other)).into()),
                };
                self.check(name, key)?;
                let value = self.value(name, key).unwrap_or_default();
                out.insert(key.clone(), Json::String(value.to_owned()));
            }
            reply.insert(name.to_owned(), Json::Object(out));
        }
        Ok(Json::Object(reply))
    }

    /// `set_configuration`: `{"section": {"key": "value"}}`; nothing changes unless every
    /// key exists and every value is a string. Returns the `(section, key)` pairs changed.
    pub fn set(&mut self, request: Members<'_>) -> Result<Vec<(String, String)>, ConfigError> {
        let mut updates = Vec::new();
        for (name, keys) in request.iter() {
            let keys = match keys {
                Json::Object(keys) => keys,
                other => return Err(MemberError::new(name, "object", Some(other)).into()),
            };
            for (key, value) in keys {
                self.check(name, key)?;
                let Json::String(value) = value else {
                    return Err(ConfigError::NotString);
                };
                updates.push((name.to_owned(), key.clone(), value.clone()));
            }
        }
        let mut changed = Vec::with_capacity(updates.len());
        self.edition = next_edition();
        for (s, k, v) in updates {
            if let Some(slot) = self.sections.get_mut(&s).and_then(|sec| sec.get_mut(&k)) {
                *slot = v;
                changed.push((s, k));
            }
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_keys_use_the_firmware_paths() {
        let mut c = Config::factory(Model::IdFace);
        let get = |c: &Config, v: Json| c.get(Members::of(&v, "body").unwrap());
        assert_eq!(
            get(&c, json!({"general": ["nope"]}))
                .unwrap_err()
                .to_string(),
            "Node or attribute not found. Node path: config->general->param[name=nope]"
        );
        assert_eq!(
            get(&c, json!({"monitor": ["log_enabled"]}))
                .unwrap_err()
                .to_string(),
            "Node or attribute not found. Node path: config->modules->module[name=monitor]->param[name=log_enabled]"
        );
        let bad = json!({"monitor": {"port": 8000}});
        assert_eq!(
            c.set(Members::of(&bad, "body").unwrap()).unwrap_err(),
            ConfigError::NotString
        );
    }

    #[test]
    fn set_is_all_or_nothing() {
        let mut c = Config::factory(Model::IdFace);
        let req = json!({"monitor": {"hostname": "10.0.0.1"}, "general": {"nope": "1"}});
        assert!(c.set(Members::of(&req, "body").unwrap()).is_err());
        assert_eq!(c.value("monitor", "hostname"), Some(""));
        let req = json!({"monitor": {"hostname": "10.0.0.1", "port": "8000"}});
        c.set(Members::of(&req, "body").unwrap()).unwrap();
        assert_eq!(c.value("monitor", "port"), Some("8000"));
    }

    #[test]
    fn durations_are_read_within_bounds_whatever_the_text() {
        let period = PUSH_REQUEST_PERIOD;
        let secs = |v: &str| period.read(Some(v)).as_secs();
        assert_eq!(secs("30"), 30);
        assert_eq!(secs(" 7 "), 7);
        assert_eq!(period.read(None), Duration::from_secs(5));
        for junk in ["", "-1", "1.5", "1e400", "x", "\u{0}"] {
            assert_eq!(secs(junk), 5, "{junk:?}");
        }
        assert_eq!(secs("0"), 1);
        for huge in [
            "86401",
            "18446744073709551615",
            "99999999999999999999999999",
        ] {
            assert_eq!(secs(huge), 86_400, "{huge}");
        }
        assert_eq!(
            REQUEST_TIMEOUT.read(Some("18446744073709551615")),
            Duration::from_secs(60)
        );
        assert_eq!(REQUEST_TIMEOUT.read(Some("1")), Duration::from_millis(100));
    }

    #[test]
    fn the_keys_clients_use_exist_where_the_hardware_has_them() {
        let face = Config::factory(Model::IdFace);
        let access = Config::factory(Model::IdAccess);
        for c in [&face, &access] {
            assert_eq!(c.value("general", "beep_enabled"), Some("1"));
            assert_eq!(c.value("general", "screen_always_on"), Some("0"));
            assert_eq!(
                c.value("identifier", "enable_custom_deny_message"),
                Some("0")
            );
            assert_eq!(
                c.value("identifier", "custom_not_identified_message"),
                Some("")
            );
        }
        assert_eq!(access.value("general", "relay2_timeout"), Some("3000"));
        assert_eq!(face.value("general", "relay1_timeout"), None);
        assert_eq!(face.value("buzzer", "audio_message_volume_gain"), Some("1"));
        assert_eq!(face.value("onvif", "rtsp_port"), Some("554"));
        assert_eq!(face.value("identifier", "custom_mask_message"), Some(""));
        assert_eq!(access.value("buzzer", "audio_message_authorized"), None);
        assert_eq!(
            access.value("identifier", "enable_custom_mask_message"),
            None
        );
    }

    #[test]
    fn sections_follow_the_model() {
        assert!(
            Config::factory(Model::IdFace)
                .value("face_id", "qrcode_legacy_mode_enabled")
                .is_some()
        );
        assert!(
            Config::factory(Model::IdAccess)
                .value("sec_box", "out_mode")
                .is_none()
        );
    }
}
