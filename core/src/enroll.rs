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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use jiff::Timestamp;
use serde_json::{Value as Json, json};

use crate::app::{Caller, Core};
use crate::card::WiegandCard;
use crate::domain::{
    Credential, CredentialId, CredentialValue, FingerprintTemplates, PersonId, TenantId,
    TerminalId, check_can_issue,
};
use crate::http::problem::ApiProblem;
use crate::store::{Blob, Kind};

/// What to capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// A face photo.
    Face,
    /// A card.
    Card,
    /// A fingerprint.
    Fingerprint,
}

impl Capture {
    /// The API spelling.
    pub fn name(self) -> &'static str {
        match self {
            Capture::Face => "face",
            Capture::Card => "card",
            Capture::Fingerprint => "fingerprint",
        }
    }
}

/// Where an enrollment is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollmentStatus {
    /// Waiting for the person (asynchronous).
    Pending,
    /// The credential was issued.
    Succeeded {
        /// The new credential.
        credential_id: CredentialId,
    },
    /// The terminal or the core refused the capture.
    Failed {
        /// Why.
        reason: String,
    },
    /// Cancelled by the operator.
    Cancelled,
}

/// One enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// Its id (unique in this process).
    pub id: u64,
    /// The tenant.
    pub tenant: TenantId,
    /// The terminal capturing.
    pub terminal: TerminalId,
    /// The person enrolled.
    pub person: PersonId,
    /// What is captured.
    pub capture: Capture,
    /// Synchronous or not.
    pub sync: bool,
    /// Where it is.
    pub status: EnrollmentStatus,
    /// When it started.
    pub started_at: Timestamp,
}

impl Enrollment {
    /// The API view.
    pub fn view(&self) -> Json {
        let (status, credential, reason) = match &self.status {
            EnrollmentStatus::Pending => ("pending", None, None),
            EnrollmentStatus::Succeeded { credential_id } => {
                ("succeeded", Some(credential_id.get()), None)
            }
            EnrollmentStatus::Failed { reason } => ("failed", None, Some(reason.clone())),
            EnrollmentStatus::Cancelled => ("cancelled", None, None),
        };
        json!({"id": self.id, "terminal_id": self.terminal.get(), "person_id": self.person.get(),
               "kind": self.capture.name(), "sync": self.sync, "status": status,
               "credential_id": credential, "reason": reason,
               "started_at": self.started_at.to_string()})
    }
}

/// Every enrollment of this process; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Enrollments {
    inner: Arc<Mutex<(u64, HashMap<u64, Enrollment>)>>,
}

impl Enrollments {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, HashMap<u64, Enrollment>)> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts one, unless the terminal already runs one.
    pub fn start(
        &self,
        tenant: TenantId,
        terminal: TerminalId,
        person: PersonId,
        capture: Capture,
        sync: bool,
        at: Timestamp,
    ) -> Result<Enrollment, ApiProblem> {
        let mut guard = self.lock();
        if let Some(running) = guard.1.values().find(|e| {
            e.tenant == tenant && e.terminal == terminal && e.status == EnrollmentStatus::Pending
        }) {
            return Err(ApiProblem::conflict(
                None,
                format!(
                    "terminal {terminal} is already enrolling (enrollment {})",
                    running.id
                ),
            ));
        }
        guard.0 += 1;
        let enrollment = Enrollment {
            id: guard.0,
            tenant,
            terminal,
            person,
            capture,
            sync,
            status: EnrollmentStatus::Pending,
            started_at: at,
        };
        guard.1.insert(enrollment.id, enrollment.clone());
        Ok(enrollment)
    }

    /// One enrollment of the tenant.
    pub fn get(&self, tenant: TenantId, id: u64) -> Option<Enrollment> {
        self.lock()
            .1
            .get(&id)
            .filter(|e| e.tenant == tenant)
            .cloned()
    }

    /// The pending enrollment of a terminal.
    pub fn pending_on(&self, tenant: TenantId, terminal: TerminalId) -> Option<Enrollment> {
        self.lock()
            .1
            .values()
            .find(|e| {
                e.tenant == tenant
                    && e.terminal == terminal
                    && e.status == EnrollmentStatus::Pending
            })
            .cloned()
    }

    /// Ends a pending enrollment; false when it already ended.
    pub fn finish(&self, id: u64, status: EnrollmentStatus) -> bool {
        let mut guard = self.lock();
        match guard.1.get_mut(&id) {
            Some(e) if e.status == EnrollmentStatus::Pending => {
                e.status = status;
                true
            }
            _ => false,
        }
    }
}

/// What a terminal reported for a capture, read from a sync reply or an async result.
fn captured_value(
    capture: Capture,
    reply: &Json,
) -> Result<(CredentialValue, Option<Vec<u8>>), String> {
    if reply.get("success").and_then(Json::as_bool) == Some(false) {
        let error = reply
            .get("error")
            .and_then(Json::as_str)
            .unwrap_or("the terminal reported a failure");
        return Err(error.to_owned());
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
            .ok_or("the terminal reported no card value")?;
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
                .ok_or("the terminal reported no face image")?;
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
            let templates = FingerprintTemplates::new(templates).map_err(|e| e.to_string())?;
            Ok((CredentialValue::Fingerprint(templates), None))
        }
    }
}

/// Turns what the terminal captured into the person's credential and ends the enrollment.
pub async fn complete(core: &Core, enrollment: &Enrollment, reply: &Json) -> EnrollmentStatus {
    let status = match captured_value(enrollment.capture, reply) {
        Err(reason) => EnrollmentStatus::Failed { reason },
        Ok((value, jpeg)) => {
            let caller = Caller {
                tenant: enrollment.tenant,
                key_prefix: format!("terminal:{}", enrollment.terminal),
            };
            let person = enrollment.person;
            let now = core.now();
            let subjects = crate::records::credential::issue_subjects(&value, person);
            let issued = core
                .write_about(&caller, subjects, 1, move |s, plan| {
                    let p = s
                        .people
                        .get(&person)
                        .ok_or_else(|| ApiProblem::not_found("person", person))?;
                    let id = CredentialId::new(plan.next_id()?);
                    let value = match value {
                        CredentialValue::Face { .. } => {
                            CredentialValue::face(&format!("selfie:{id}"))?
                        }
                        other => other,
                    };
                    check_can_issue(s.credentials.values(), p.tenant_id, p.id, &value)
                        .map_err(|e| ApiProblem::conflict(None, e.to_string()))?;
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
    core.enrollments().finish(enrollment.id, status.clone());
    status
}
