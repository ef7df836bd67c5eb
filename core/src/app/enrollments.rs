//! The enrollments on terminals this process runs: what each captures for whom, where it
//! is, and the rule that a terminal runs one at a time. The enrollment process itself (the
//! terminal's reply or callback becoming a credential) is `crate::enroll`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;

use crate::domain::{CredentialId, PersonId, TenantId, TerminalId};
use crate::error::AppError;

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
    ) -> Result<Enrollment, AppError> {
        let mut guard = self.lock();
        if let Some(running) = guard.1.values().find(|e| {
            e.tenant == tenant && e.terminal == terminal && e.status == EnrollmentStatus::Pending
        }) {
            return Err(AppError::conflict(
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
