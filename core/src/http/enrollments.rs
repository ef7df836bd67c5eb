//! `/v1/terminals/{id}/enrollments`: enroll a person's face, card or finger on a terminal.
//! Synchronous enrollments answer with the outcome (201 with the credential, or the
//! failure); asynchronous ones answer 202 at once and end when the terminal delivers the
//! result to the receiver (poll `GET …/enrollments/{eid}`). `DELETE` cancels.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::input::{Input, path_id};
use crate::app::terminal_calls::{CallError, EnrollOrder};
use crate::app::{Caller, Core, Subject};
use crate::domain::{PersonId, Terminal, TerminalId};
use crate::enroll::{Capture, EnrollmentStatus, complete};
use crate::error::{AppError, RefusalClass};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnrollmentIn {
    person_id: u64,
    kind: String,
    #[serde(default = "yes")]
    sync: bool,
    /// Whether the terminal also keeps what it captured for the person at once (its
    /// `save`), before the sync engine brings the issued credential; off by default. The
    /// terminal must already hold the person (it refuses otherwise).
    #[serde(default)]
    save: bool,
}

fn yes() -> bool {
    true
}

async fn terminal_of(core: &Core, caller: &Caller, id: TerminalId) -> Result<Terminal, AppError> {
    core.read(caller.tenant, |s| s.topology.terminals.get(&id).cloned())
        .await?
        .ok_or_else(|| AppError::not_found("terminal", id))
}

/// `POST /v1/terminals/{id}/enrollments` with `{"person_id", "kind": "face" | "card" |
/// "fingerprint", "sync": true}`.
pub(crate) async fn start(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<EnrollmentIn>,
) -> Result<Response, AppError> {
    let id = TerminalId::new(path_id("terminal", &id)?);
    let body = input.body;
    let capture = match body.kind.as_str() {
        "face" => Capture::Face,
        "card" => Capture::Card,
        "fingerprint" => Capture::Fingerprint,
        _ => {
            return Err(AppError::invalid(
                "kind",
                "kind must be one of: face, card, fingerprint",
            ));
        }
    };
    let terminal = terminal_of(&core, &caller, id).await?;
    let person = PersonId::new(body.person_id);
    if !core
        .read_about(caller.tenant, vec![Subject::Person(person)], |s| {
            s.people.contains_key(&person)
        })
        .await?
    {
        return Err(AppError::invalid(
            "person_id",
            format!("person {person} does not exist"),
        ));
    }
    let enrollment = core
        .enrollments()
        .start(caller.tenant, id, person, capture, body.sync, core.now())
        .await?;
    let order = EnrollOrder {
        capture,
        user_id: i64::try_from(person.get()).unwrap_or(i64::MAX),
        save: body.save,
        sync: body.sync,
    };
    let reply = core.terminal_calls().enroll(&terminal, order).await;
    let reply = match reply {
        Ok(reply) => reply,
        Err(e) => {
            let status = EnrollmentStatus::Failed {
                reason: e.to_string(),
            };
            let ended = core
                .enrollments()
                .finish(caller.tenant, enrollment.id, status)
                .await?
                .map_or(enrollment, |(ended, _)| ended);
            let error = match &e {
                // The terminal answered and refused (a user it does not hold for `save`, a
                // kind it cannot capture): the request's fault, not an outage.
                CallError::Refused(_) => AppError::refused(
                    RefusalClass::Unprocessable,
                    "enrollment-refused",
                    "Enrollment refused by the terminal",
                    format!("the terminal refused the enrollment: {e}"),
                ),
                CallError::Unavailable(_) => AppError::terminal_unavailable(format!(
                    "the terminal did not take the enrollment: {e}"
                )),
            };
            return Ok(failed(&error, &ended));
        }
    };
    if !body.sync {
        return Ok((StatusCode::ACCEPTED, axum::Json(view(&enrollment))).into_response());
    }
    let status = complete(&core, &enrollment, &reply).await?;
    let ended = core
        .enrollments()
        .get(caller.tenant, enrollment.id, core.now())
        .await?
        .unwrap_or(enrollment);
    match status {
        EnrollmentStatus::Succeeded { .. } => {
            Ok((StatusCode::CREATED, axum::Json(view(&ended))).into_response())
        }
        other => {
            let why = match other {
                EnrollmentStatus::Failed { reason } => reason,
                EnrollmentStatus::Cancelled => "the enrollment was cancelled".to_owned(),
                _ => "the enrollment did not succeed".to_owned(),
            };
            let error = AppError::refused(
                RefusalClass::Unprocessable,
                "enrollment-failed",
                "Enrollment failed",
                why,
            );
            Ok(failed(&error, &ended))
        }
    }
}

/// A failed enrollment as a problem document, with the enrollment as its `enrollment`
/// member.
fn failed(error: &AppError, ended: &crate::enroll::Enrollment) -> Response {
    let mut body = super::problem::body(error);
    body["enrollment"] = view(ended);
    (
        super::problem::status(error.kind),
        [(axum::http::header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

/// `GET /v1/terminals/{id}/enrollments/{eid}`.
pub(crate) async fn get(
    State(core): State<Core>,
    caller: Caller,
    Path((id, eid)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let id = TerminalId::new(path_id("terminal", &id)?);
    let eid = path_id("enrollment", &eid)?;
    core.enrollments()
        .get(caller.tenant, eid, core.now())
        .await?
        .filter(|e| e.terminal == id)
        .map(|e| axum::Json(view(&e)).into_response())
        .ok_or_else(|| AppError::not_found("enrollment", eid))
}

/// `DELETE /v1/terminals/{id}/enrollments/{eid}`: cancels on the terminal.
pub(crate) async fn cancel(
    State(core): State<Core>,
    caller: Caller,
    Path((id, eid)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let id = TerminalId::new(path_id("terminal", &id)?);
    let eid = path_id("enrollment", &eid)?;
    let enrollment = core
        .enrollments()
        .get(caller.tenant, eid, core.now())
        .await?
        .filter(|e| e.terminal == id)
        .ok_or_else(|| AppError::not_found("enrollment", eid))?;
    if enrollment.status != EnrollmentStatus::Pending {
        return Err(AppError::invalid_state(format!(
            "enrollment {eid} has already ended"
        )));
    }
    let terminal = terminal_of(&core, &caller, id).await?;
    if let Err(e) = core.terminal_calls().cancel_enroll(&terminal).await {
        tracing::warn!(terminal = %id, error = %e, "cancel not delivered to the terminal");
    }
    core.enrollments()
        .finish(caller.tenant, eid, EnrollmentStatus::Cancelled)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The API view of an enrollment.
fn view(e: &crate::enroll::Enrollment) -> serde_json::Value {
    let (status, credential, reason) = match &e.status {
        EnrollmentStatus::Pending => ("pending", None, None),
        EnrollmentStatus::Succeeded { credential_id } => {
            ("succeeded", Some(credential_id.get()), None)
        }
        EnrollmentStatus::Failed { reason } => ("failed", None, Some(reason.clone())),
        EnrollmentStatus::Cancelled => ("cancelled", None, None),
    };
    serde_json::json!({"id": e.id, "terminal_id": e.terminal.get(), "person_id": e.person.get(),
           "kind": e.capture.name(), "sync": e.sync, "status": status,
           "credential_id": credential, "reason": reason,
           "started_at": e.started_at.to_string()})
}
