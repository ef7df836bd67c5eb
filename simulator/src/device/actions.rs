//! `execute_actions` (docs/device-api.md §9.3): parsing the `"k=v, k=v"` parameter strings and
//! deciding which actuation a model can perform (internal relay `door`, external Security
//! Box `sec_box`; `catra` / `open_collector` exist only on turnstiles, which no simulated
//! model is).

use crate::model::{DEFAULT_SEC_BOX_ID, DoorDrive, Model};

/// An action the device was asked to perform and refused; `Display` is the device's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// The model has no hardware for this action.
    #[error("Action not supported by this device: {0}")]
    Unsupported(String),
    /// A parameter is missing or malformed.
    #[error("Invalid action parameters: {0}")]
    BadParameters(String),
}

/// Something that physically happened on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actuation {
    /// An internal relay opened door `door`.
    Door {
        /// Door number (1-based).
        door: u8,
    },
    /// The Security Box `id` released its relay.
    SecBox {
        /// Security Box id.
        id: i64,
        /// Reason code passed by the caller.
        reason: i64,
    },
}

impl Actuation {
    /// The `access_events.event` name of this actuation.
    pub fn event_name(&self) -> &'static str {
        match self {
            Actuation::Door { .. } => "door",
            Actuation::SecBox { .. } => "secbox",
        }
    }
}

/// Parses `"id=65793, reason=3"` into `(key, value)` pairs.
pub fn parse_parameters(text: &str) -> Result<Vec<(String, String)>, ActionError> {
    text.split([',', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| ActionError::BadParameters(p.to_owned()))
        })
        .collect()
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn number(params: &[(String, String)], key: &str, default: i64) -> Result<i64, ActionError> {
    match param(params, key) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| ActionError::BadParameters(format!("{key}={v}"))),
    }
}

/// Decides what one action does on `model`.
pub fn actuation(model: Model, action: &str, parameters: &str) -> Result<Actuation, ActionError> {
    let params = parse_parameters(parameters)?;
    match (action, model.door_drive()) {
        ("door", DoorDrive::Relay { doors }) => {
            let door = number(&params, "door", 1)?;
            match u8::try_from(door) {
                Ok(d) if (1..=doors).contains(&d) => Ok(Actuation::Door { door: d }),
                _ => Err(ActionError::BadParameters(format!("door={door}"))),
            }
        }
        ("sec_box", DoorDrive::SecBox) => {
            let id = number(&params, "id", DEFAULT_SEC_BOX_ID)?;
            if id != DEFAULT_SEC_BOX_ID {
                return Err(ActionError::BadParameters(format!("id={id}")));
            }
            Ok(Actuation::SecBox {
                id,
                reason: number(&params, "reason", 1)?,
            })
        }
        (other, _) => Err(ActionError::Unsupported(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_decides_the_drive() {
        assert_eq!(
            actuation(Model::IdFace, "sec_box", "id=65793, reason=3"),
            Ok(Actuation::SecBox {
                id: 65793,
                reason: 3
            })
        );
        assert_eq!(
            actuation(Model::IdAccess, "door", "door=1"),
            Ok(Actuation::Door { door: 1 })
        );
        assert!(matches!(
            actuation(Model::IdFace, "door", "door=1"),
            Err(ActionError::Unsupported(_))
        ));
        assert!(matches!(
            actuation(Model::IdAccess, "door", "door=2"),
            Err(ActionError::BadParameters(_))
        ));
        assert!(matches!(
            actuation(Model::IdAccess, "catra", "allow=both"),
            Err(ActionError::Unsupported(_))
        ));
        assert!(parse_parameters("door").is_err());
    }
}
