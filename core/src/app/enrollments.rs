//! The enrollments on terminals: what each captures for whom, where it is, and the rule
//! that a terminal runs one at a time. The enrollment process itself (the terminal's reply
//! or callback becoming a credential) is `crate::enroll`.
//!
//! Enrollments are stored, as records of kind [`Kind::Enrollment`] outside the tenant's
//! snapshot: their ids come from the store's sequence and are never reused, and they
//! outlive the process. A pending enrollment claims its terminal (the unique key
//! `enrollment_pending`), so the one-at-a-time rule holds in the store; ending it releases
//! the claim. Each process stamps what it starts with a boot token of its own, and a
//! pending enrollment is resolved honestly when it is read:
//! - a synchronous one started by an earlier process lost its answer with that process's
//!   request: it fails as interrupted;
//! - an asynchronous one stays pending, since the terminal may still deliver its result
//!   (the receiver then finishes it), until [`ASYNC_RESULT_WAIT`] has passed without a
//!   result: then it fails as expired.

use std::sync::{Arc, Mutex, PoisonError};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value as Json, json};

use super::blocking;
use crate::domain::{CredentialId, PersonId, TenantId, TerminalId};
use crate::error::AppError;
use crate::store::{Change, Kind, Store, StoreError, UniqueKey, Write};

/// How long an asynchronous enrollment waits for the terminal's result before it fails as
/// expired (a terminal gives up on a capture well before).
pub const ASYNC_RESULT_WAIT: SignedDuration = SignedDuration::from_mins(5);

/// The unique key a pending enrollment claims on its terminal.
const PENDING: &str = "enrollment_pending";

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

    fn parse(name: &str) -> Option<Capture> {
        [Capture::Face, Capture::Card, Capture::Fingerprint]
            .into_iter()
            .find(|c| c.name() == name)
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
    /// The terminal or the core refused the capture, or the enrollment was interrupted.
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
    /// Its id (from the store's sequence: never reused).
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

/// The enrollments in the store; clones share the process's boot token.
#[derive(Debug, Clone)]
pub struct Enrollments {
    store: Arc<dyn Store>,
    /// Stamped on what this process starts.
    boot: String,
    /// Ending an enrollment reads, checks and writes under it (a result and a cancel may
    /// race).
    turn: Arc<Mutex<()>>,
}

impl Enrollments {
    /// The enrollments kept in `store`.
    pub fn new(store: Arc<dyn Store>) -> Enrollments {
        Enrollments {
            store,
            boot: format!("{:016x}", rand::random::<u64>()),
            turn: Arc::default(),
        }
    }

    /// Starts one, unless the terminal already runs one.
    pub async fn start(
        &self,
        tenant: TenantId,
        terminal: TerminalId,
        person: PersonId,
        capture: Capture,
        sync: bool,
        at: Timestamp,
    ) -> Result<Enrollment, AppError> {
        let this = self.clone();
        blocking(move || {
            let _turn = this.turn.lock().unwrap_or_else(PoisonError::into_inner);
            // A pending enrollment left by an earlier process, or expired, gives way.
            if let Some(running) = this.pending_on_now(tenant, terminal, at)? {
                return Err(AppError::conflict(
                    None,
                    format!(
                        "terminal {terminal} is already enrolling (enrollment {})",
                        running.id
                    ),
                ));
            }
            let id = *this
                .store
                .allocate_ids(1)?
                .first()
                .ok_or_else(AppError::internal)?;
            let enrollment = Enrollment {
                id,
                tenant,
                terminal,
                person,
                capture,
                sync,
                status: EnrollmentStatus::Pending,
                started_at: at,
            };
            this.put(&enrollment, Some(&this.boot))?;
            Ok(enrollment)
        })
        .await
    }

    /// One enrollment of the tenant, resolved if it can no longer end otherwise.
    pub async fn get(
        &self,
        tenant: TenantId,
        id: u64,
        now: Timestamp,
    ) -> Result<Option<Enrollment>, AppError> {
        let this = self.clone();
        blocking(move || {
            let _turn = this.turn.lock().unwrap_or_else(PoisonError::into_inner);
            this.read_resolved(tenant, id, now)
        })
        .await
    }

    /// The pending enrollment of a terminal.
    pub async fn pending_on(
        &self,
        tenant: TenantId,
        terminal: TerminalId,
        now: Timestamp,
    ) -> Result<Option<Enrollment>, AppError> {
        let this = self.clone();
        blocking(move || {
            let _turn = this.turn.lock().unwrap_or_else(PoisonError::into_inner);
            this.pending_on_now(tenant, terminal, now)
        })
        .await
    }

    /// Ends a pending enrollment: the enrollment as it is then, and whether this call
    /// ended it (false when it had already ended).
    pub async fn finish(
        &self,
        tenant: TenantId,
        id: u64,
        status: EnrollmentStatus,
    ) -> Result<Option<(Enrollment, bool)>, AppError> {
        let this = self.clone();
        blocking(move || {
            let _turn = this.turn.lock().unwrap_or_else(PoisonError::into_inner);
            let Some((mut enrollment, _)) = this.read(tenant, id)? else {
                return Ok(None);
            };
            if enrollment.status != EnrollmentStatus::Pending {
                return Ok(Some((enrollment, false)));
            }
            enrollment.status = status;
            this.put(&enrollment, None)?;
            Ok(Some((enrollment, true)))
        })
        .await
    }

    fn pending_on_now(
        &self,
        tenant: TenantId,
        terminal: TerminalId,
        now: Timestamp,
    ) -> Result<Option<Enrollment>, AppError> {
        let Some(id) = self
            .store
            .claim(tenant.get(), PENDING, &terminal.get().to_string())?
        else {
            return Ok(None);
        };
        Ok(self
            .read_resolved(tenant, id, now)?
            .filter(|e| e.status == EnrollmentStatus::Pending))
    }

    /// Reads an enrollment and ends it if it is pending but can no longer end otherwise.
    fn read_resolved(
        &self,
        tenant: TenantId,
        id: u64,
        now: Timestamp,
    ) -> Result<Option<Enrollment>, AppError> {
        let Some((mut enrollment, boot)) = self.read(tenant, id)? else {
            return Ok(None);
        };
        if enrollment.status != EnrollmentStatus::Pending {
            return Ok(Some(enrollment));
        }
        let reason = if enrollment.sync && boot != self.boot {
            Some(
                "interrupted: the core restarted while the terminal was capturing, and the \
                 terminal's answer was lost with the request"
                    .to_owned(),
            )
        } else if !enrollment.sync && now.duration_since(enrollment.started_at) > ASYNC_RESULT_WAIT
        {
            Some(format!(
                "expired: the terminal delivered no result within {} minutes",
                ASYNC_RESULT_WAIT.as_mins()
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            tracing::info!(enrollment = id, %reason, "pending enrollment resolved");
            enrollment.status = EnrollmentStatus::Failed { reason };
            self.put(&enrollment, None)?;
        }
        Ok(Some(enrollment))
    }

    /// The stored enrollment and the boot token of the process that started it.
    fn read(&self, tenant: TenantId, id: u64) -> Result<Option<(Enrollment, String)>, AppError> {
        let records =
            self.store
                .records_of_kind(tenant.get(), Kind::Enrollment, id.saturating_sub(1), 1)?;
        let Some(record) = records.into_iter().find(|r| r.id == id) else {
            return Ok(None);
        };
        decode(tenant, id, &record.data).map(Some).ok_or_else(|| {
            tracing::error!(enrollment = id, "stored enrollment unreadable");
            AppError::from(StoreError::Corrupt(format!("enrollment {id}")))
        })
    }

    /// Stores the enrollment; a pending one claims its terminal (`boot`: the token of the
    /// process that started it, kept as stored when `None`).
    fn put(&self, e: &Enrollment, boot: Option<&str>) -> Result<(), AppError> {
        let boot = match boot {
            Some(boot) => boot.to_owned(),
            None => self
                .read(e.tenant, e.id)?
                .map(|(_, boot)| boot)
                .unwrap_or_default(),
        };
        let unique = match e.status {
            EnrollmentStatus::Pending => vec![UniqueKey {
                scope: PENDING,
                value: e.terminal.get().to_string(),
            }],
            _ => Vec::new(),
        };
        self.store.commit(
            e.tenant.get(),
            Change {
                writes: vec![Write::Put {
                    kind: Kind::Enrollment,
                    id: e.id,
                    data: encode(e, &boot),
                    unique,
                    blob: None,
                }],
                ..Change::default()
            },
        )?;
        Ok(())
    }
}

fn encode(e: &Enrollment, boot: &str) -> Json {
    let (status, credential, reason) = match &e.status {
        EnrollmentStatus::Pending => ("pending", None, None),
        EnrollmentStatus::Succeeded { credential_id } => {
            ("succeeded", Some(credential_id.get()), None)
        }
        EnrollmentStatus::Failed { reason } => ("failed", None, Some(reason.as_str())),
        EnrollmentStatus::Cancelled => ("cancelled", None, None),
    };
    json!({"terminal_id": e.terminal.get(), "person_id": e.person.get(),
           "kind": e.capture.name(), "sync": e.sync, "status": status,
           "credential_id": credential, "reason": reason,
           "started_at": e.started_at.to_string(), "boot": boot})
}

fn decode(tenant: TenantId, id: u64, data: &Json) -> Option<(Enrollment, String)> {
    let status = match data.get("status")?.as_str()? {
        "pending" => EnrollmentStatus::Pending,
        "succeeded" => EnrollmentStatus::Succeeded {
            credential_id: CredentialId::new(data.get("credential_id")?.as_u64()?),
        },
        "failed" => EnrollmentStatus::Failed {
            reason: data.get("reason")?.as_str()?.to_owned(),
        },
        "cancelled" => EnrollmentStatus::Cancelled,
        _ => return None,
    };
    Some((
        Enrollment {
            id,
            tenant,
            terminal: TerminalId::new(data.get("terminal_id")?.as_u64()?),
            person: PersonId::new(data.get("person_id")?.as_u64()?),
            capture: Capture::parse(data.get("kind")?.as_str()?)?,
            sync: data.get("sync")?.as_bool()?,
            status,
            started_at: data.get("started_at")?.as_str()?.parse().ok()?,
        },
        data.get("boot")?.as_str()?.to_owned(),
    ))
}
