//! Enrollment on a terminal (remote enrollment, docs/device-api.md §5): the core asks a
//! terminal to capture a face, a card or a finger for a person, and the captured value
//! becomes one of the person's credentials – from the synchronous reply, or from the
//! asynchronous result the terminal delivers to the receiver (monitor topics `card`,
//! `user_image`, `template`; online `card_create.fcgi`, `face_create.fcgi`,
//! `template_create.fcgi`, `fingerprint_create.fcgi`).
//!
//! The terminal captures with `save: false`, so nothing is stored on the device by the
//! enrollment itself: the credential is issued by the core and reaches terminals through
//! the sync engine like any other. One enrollment runs per terminal at a time. A failure,
//! a timeout or a cancellation ends the enrollment with that status and stores nothing.

use base64::Engine as _;
use serde_json::Value as Json;

use crate::app::{Caller, Core};
use crate::card::WiegandCard;
use crate::domain::{
    Credential, CredentialId, CredentialValue, FingerprintTemplates, check_can_issue,
};
use crate::error::AppError;
use crate::store::{Blob, Kind};

pub use crate::app::enrollments::{Capture, Enrollment, EnrollmentStatus, Enrollments};

/// Why a capture gave no credential value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum CaptureError {
    /// The terminal said the capture failed (its own words).
    #[error("{0}")]
    Failed(String),
    /// The reply lacks the value the capture should carry.
    #[error("the terminal reported no {0}")]
    Missing(&'static str),
    /// The fingerprint templates are unusable.
    #[error("{0}")]
    Templates(String),
}

/// What a terminal reported for a capture, read from a sync reply or an async result.
fn captured_value(
    capture: Capture,
    reply: &Json,
) -> Result<(CredentialValue, Option<Vec<u8>>), CaptureError> {
    if reply.get("success").and_then(Json::as_bool) == Some(false) {
        let error = reply
            .get("error")
            .and_then(Json::as_str)
            .unwrap_or("the terminal reported a failure");
        return Err(CaptureError::Failed(error.to_owned()));
    }
    let b64 = |v: &Json| {
        v.as_str()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
    };
    match capture {
        Capture::Card => {
            let value = match reply.get("card_value") {
                Some(Json::Number(n)) => n.as_u64(),
                Some(Json::String(s)) => s.trim().parse().ok(),
                _ => None,
            }
            .filter(|v| *v > 0)
            .ok_or(CaptureError::Missing("card value"))?;
            Ok((
                CredentialValue::Card(WiegandCard::from_device_value(value)),
                None,
            ))
        }
        Capture::Face => {
            let jpeg = reply
                .get("user_image")
                .and_then(b64)
                .or_else(|| reply.pointer("/face/image").and_then(b64))
                .ok_or(CaptureError::Missing("face image"))?;
            Ok((
                CredentialValue::Face {
                    photo_ref: String::new(),
                },
                Some(jpeg),
            ))
        }
        Capture::Fingerprint => {
            let mut templates: Vec<String> = reply
                .get("template")
                .and_then(Json::as_str)
                .map(|t| vec![t.to_owned()])
                .unwrap_or_default();
            if templates.is_empty()
                && let Some(prints) = reply.get("fingerprints").and_then(Json::as_array)
            {
                templates = prints
                    .iter()
                    .filter_map(|p| p.get("template").or_else(|| p.get("image")))
                    .filter_map(Json::as_str)
                    .map(str::to_owned)
                    .collect();
            }
            let templates = FingerprintTemplates::new(templates)
                .map_err(|e| CaptureError::Templates(e.to_string()))?;
            Ok((CredentialValue::Fingerprint(templates), None))
        }
    }
}

/// Turns what the terminal captured into the person's credential and ends the enrollment:
/// the status it ended with (or had, when something else ended it first). Fails only when
/// the store cannot record the end.
pub async fn complete(
    core: &Core,
    enrollment: &Enrollment,
    reply: &Json,
) -> Result<EnrollmentStatus, AppError> {
    let status = match captured_value(enrollment.capture, reply) {
        Err(e) => EnrollmentStatus::Failed {
            reason: e.to_string(),
        },
        Ok((value, jpeg)) => {
            let caller = Caller {
                tenant: enrollment.tenant,
                key_prefix: format!("terminal:{}", enrollment.terminal),
            };
            let person = enrollment.person;
            let now = core.now();
            let subjects = crate::residency::Subject::of_issuing(&value, person);
            let issued = core
                .write_about(&caller, subjects, 1, move |s, plan| {
                    let p = s
                        .people
                        .get(&person)
                        .ok_or_else(|| AppError::not_found("person", person))?;
                    let id = CredentialId::new(plan.next_id()?);
                    let value = match value {
                        CredentialValue::Face { .. } => {
                            CredentialValue::face(&format!("selfie:{id}"))?
                        }
                        other => other,
                    };
                    check_can_issue(s.credentials.values(), p.tenant_id, p.id, &value)
                        .map_err(|e| AppError::conflict(None, e.to_string()))?;
                    let credential = Credential::issue(id, p.tenant_id, p.id, value, now);
                    plan.audit("credential.issued", Kind::Credential, Some(id.get()));
                    plan.put(
                        credential,
                        jpeg.map(|bytes| Blob {
                            media_type: "image/jpeg".into(),
                            bytes,
                        }),
                    );
                    Ok(id)
                })
                .await;
            match issued {
                Ok(credential_id) => EnrollmentStatus::Succeeded { credential_id },
                Err(e) => EnrollmentStatus::Failed { reason: e.detail },
            }
        }
    };
    let ended = core
        .enrollments()
        .finish(enrollment.tenant, enrollment.id, status.clone())
        .await?;
    Ok(ended.map_or(status, |(ended, _)| ended.status))
}
