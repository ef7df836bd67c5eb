//! `/v1/people/{id}/credentials` and `/v1/credentials/{id}`: issuing credentials of every
//! kind (with the messages that hand them over), listing, suspending, revoking, clearing a
//! lockout, deleting. Values that are secrets (PINs, QR payloads, cloud-key tokens and
//! PINs, fingerprint templates) are never shown again after the reply that created them.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::PageResult;
use super::input::{Input, REVOKE_REASONS, named, path_id};
use super::{create_about, ok, page_query};
use crate::app::{Caller, Core, Plan, Subject};
use crate::domain::{
    Credential, CredentialId, CredentialStatus, CredentialValue, DisableReason, IssueError, Person,
    PersonId, Phone, PhoneId, Snapshot, check_can_issue, mobile_key_sync,
};
use crate::error::AppError;
use crate::notify::compose;
use crate::store::Kind;

use super::credential_requests::{CredentialIn, Requested, requested};
use super::people::{issue_face, person_of};

fn reason_name(r: DisableReason) -> &'static str {
    match r {
        DisableReason::Revoked => "revoked",
        DisableReason::Suspended => "suspended",
        DisableReason::Lockout => "lockout",
        DisableReason::Expired => "expired",
        DisableReason::MaxUses => "max_uses",
        DisableReason::NotYetActive => "not_yet_active",
        DisableReason::NeedsProvisioning => "needs_provisioning",
    }
}

/// A credential as integrators see it (no secret values).
pub(crate) fn credential_view(s: &Snapshot, c: &Credential, at: Timestamp) -> Json {
    credential_view_with(s.credential_status(c.id, at), c)
}

/// The view of a credential being issued or changed, with the status it has once the
/// change is applied ([`Snapshot::status_as_held`]).
fn changed_credential_view(s: &Snapshot, c: &Credential, at: Timestamp) -> Json {
    credential_view_with(Some(s.status_as_held(c, at)), c)
}

fn credential_view_with(status: Option<CredentialStatus>, c: &Credential) -> Json {
    let (status, reasons) = match status {
        Some(CredentialStatus::Active) | None => ("active", Vec::new()),
        Some(CredentialStatus::Deleted) => ("deleted", Vec::new()),
        Some(CredentialStatus::Disabled(r)) => {
            ("disabled", r.into_iter().map(reason_name).collect())
        }
    };
    let mut view = json!({"id": c.id.get(), "person_id": c.person_id.get(), "status": status,
        "disable_reasons": reasons, "starts_at": c.window.from().map(|t| t.to_string()),
        "ends_at": c.window.to().map(|t| t.to_string()), "max_uses": c.max_uses,
        "use_count": c.use_count(), "parent_id": c.parent_id.map(CredentialId::get),
        "issued_at": c.issued_at.to_string()});
    let details = match &c.value {
        CredentialValue::Face { .. } => json!({"kind": "face"}),
        CredentialValue::Card(card) => {
            json!({"kind": "card", "facility_code": card.facility_code(), "card_number": card.number()})
        }
        CredentialValue::Fingerprint(t) => {
            json!({"kind": "fingerprint", "templates": t.expose().len()})
        }
        CredentialValue::Pin(_) => json!({"kind": "pin"}),
        CredentialValue::Qr(_) => json!({"kind": "qr"}),
        CredentialValue::CloudKey { pin, .. } => {
            json!({"kind": "cloud_key", "has_pin": pin.is_some()})
        }
        CredentialValue::MobileKey { phone_id } => {
            json!({"kind": "mobile_key", "phone_id": phone_id.map(PhoneId::get)})
        }
    };
    if let (Some(v), Some(d)) = (view.as_object_mut(), details.as_object()) {
        v.extend(d.clone());
    }
    view
}

pub(crate) fn issue_problem(e: IssueError) -> AppError {
    match e {
        IssueError::Duplicate { field } => AppError::conflict(Some(field), e.to_string()),
        IssueError::CardLostOrStolen => AppError::conflict(Some("card_number"), e.to_string()),
        IssueError::FaceAlreadyEnrolled => AppError::conflict(Some("kind"), e.to_string()),
    }
}

/// The messages issuing `credential` to `person` causes: a cloud key's link and PIN (to
/// the channels asked for), a welcome for a mobile key.
/// `clear` is a cloud key's token and PIN in clear (its value holds their digests).
fn issue_messages(
    person: &Person,
    credential: &Credential,
    (by_email, by_text): (bool, bool),
    clear: Option<&(String, String)>,
    public_url: &str,
    now: Timestamp,
) -> Result<Vec<crate::store::NewMessage>, AppError> {
    match (&credential.value, clear) {
        (CredentialValue::CloudKey { .. }, Some((token, pin))) if by_email || by_text => {
            let email = by_email
                .then(|| {
                    person.contact.email.as_deref().ok_or_else(|| {
                        AppError::invalid("send_by_email", "the person has no e-mail address")
                    })
                })
                .transpose()?;
            let text = by_text
                .then(|| {
                    person.contact.phone_number.as_deref().ok_or_else(|| {
                        AppError::invalid("send_by_text", "the person has no mobile number")
                    })
                })
                .transpose()?;
            Ok(compose::cloud_key(
                person,
                credential,
                &compose::cloud_key_link(public_url, token),
                pin,
                compose::Recipients { email, text },
                now,
            ))
        }
        (CredentialValue::MobileKey { phone_id: None }, _) => {
            Ok(compose::welcome_mobile_key(person, credential, now))
        }
        _ => Ok(Vec::new()),
    }
}

/// `POST /v1/people/{id}/credentials`: issues a credential of any kind. The reply shows
/// a generated QR payload or cloud-key token once.
pub(crate) async fn issue_credential(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<CredentialIn>,
) -> Result<Response, AppError> {
    let person_id = PersonId::new(path_id("person", &id)?);
    let now = core.now();
    let digests = core.clone();
    let requested = requested(input.body, |secret| digests.digest(secret))?;
    let subjects = match &requested {
        Requested::Value { value, .. } => Subject::of_issuing(value, person_id),
        Requested::Face(_) => vec![Subject::Person(person_id)],
    };
    let public_url = core.public_url();
    create_about(
        &core,
        &caller,
        subjects,
        input.idempotency,
        64,
        move |s, plan| {
            let person = person_of(s, person_id)?.clone();
            let (value, starts, ends, max_uses, shown, send, clear) = match requested {
                Requested::Face(jpeg) => {
                    let face = issue_face(s, plan, &person, jpeg, now)?;
                    return Ok(credential_view(s, &face, now));
                }
                Requested::Value {
                    value,
                    starts,
                    ends,
                    max_uses,
                    shown,
                    send,
                    clear,
                } => (value, starts, ends, max_uses, shown, send, clear),
            };
            check_can_issue(s.credentials.values(), person.tenant_id, person.id, &value)
                .map_err(issue_problem)?;
            let id = CredentialId::new(plan.next_id()?);
            let mut credential = Credential::issue(id, person.tenant_id, person.id, value, now)
                .with_window(starts, ends)?;
            if let Some(n) = max_uses {
                credential = credential.with_max_uses(n)?;
            }
            plan.audit("credential.issued", Kind::Credential, Some(id.get()));
            for message in issue_messages(
                &person,
                &credential,
                send,
                clear.as_deref(),
                &public_url,
                now,
            )? {
                plan.message(message);
            }
            plan.put(credential.clone(), None);
            sync_mobile_keys(s, Changed::Credential(&credential), plan, person.id, now)?;
            let mut view = changed_credential_view(s, &credential, now);
            if let Some(v) = view.as_object_mut() {
                v.extend(shown);
            }
            Ok(view)
        },
    )
    .await
}

/// A record a write is issuing or changing, not yet in the snapshot.
#[derive(Clone, Copy)]
pub(crate) enum Changed<'a> {
    Credential(&'a Credential),
    Phone(&'a Phone),
}

/// Creates and revokes mobile-key copies so that every live mobile key of the person has
/// one copy per active phone (multi-phone sync), as the person's credentials and phones
/// stand once `changed` is applied. Only the person's records are looked at; nothing of
/// the snapshot is copied.
pub(crate) fn sync_mobile_keys(
    s: &Snapshot,
    changed: Changed<'_>,
    plan: &mut Plan,
    person: PersonId,
    now: Timestamp,
) -> Result<(), AppError> {
    let (new_credential, new_phone) = match changed {
        Changed::Credential(c) => (Some(c), None),
        Changed::Phone(p) => (None, Some(p)),
    };
    let credentials: BTreeMap<CredentialId, &Credential> = s
        .credentials
        .values()
        .filter(|c| c.person_id == person)
        .chain(new_credential)
        .map(|c| (c.id, c))
        .collect();
    let phones = s
        .phones
        .values()
        .filter(|p| p.person_id == person && new_phone.is_none_or(|new| new.id != p.id))
        .chain(new_phone);
    let sync = mobile_key_sync(credentials.values().copied(), phones, person);
    let acs_id = s.people.get(&person).map(|p| p.acs_id.as_str());
    let event = |kind: &str, c: &Credential| {
        json!({"type": kind, "occurred_at": now.to_string(), "person_id": person.get(),
        "acs_id": acs_id, "credential_id": c.id.get(), "kind": "mobile_key",
        "parent_id": c.parent_id.map(CredentialId::get),
        "phone_id": match c.value {
            CredentialValue::MobileKey { phone_id } => phone_id.map(PhoneId::get),
            _ => None,
        }})
    };
    for (parent, phone) in sync.create {
        if let Some(parent) = credentials.get(&parent) {
            let copy = parent.copy_for_phone(CredentialId::new(plan.next_id()?), phone, now);
            plan.audit("credential.issued", Kind::Credential, Some(copy.id.get()));
            plan.access_event(now, event("credential.issued", &copy));
            plan.put(copy, None);
        }
    }
    for (copy, reason) in sync.revoke {
        if let Some(c) = credentials.get(&copy) {
            let mut c = (*c).clone();
            if c.revoke(reason).is_ok() {
                plan.audit("credential.revoked", Kind::Credential, Some(copy.get()));
                plan.access_event(now, event("credential.revoked", &c));
                plan.put(c, None);
            }
        }
    }
    Ok(())
}

/// `GET /v1/people/{id}/credentials`.
pub(crate) async fn list_credentials(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    query: PageResult,
) -> Result<Response, AppError> {
    let id = PersonId::new(path_id("person", &id)?);
    let q = page_query(query)?;
    let now = core.now();
    core.read_about(caller.tenant, vec![Subject::Person(id)], |s| {
        person_of(s, id)?;
        q.page(
            s.credentials
                .values()
                .filter(|c| c.person_id == id && !c.is_deleted())
                .map(|c| (c.id.get(), credential_view(s, c, now))),
        )
    })
    .await?
    .map(ok)
}

/// `GET /v1/credentials/{id}`.
pub(crate) async fn get_credential(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = CredentialId::new(path_id("credential", &id)?);
    let now = core.now();
    core.read_about(caller.tenant, vec![Subject::Credential(id)], |s| {
        s.credentials
            .get(&id)
            .filter(|c| !c.is_deleted())
            .map(|c| credential_view(s, c, now))
    })
    .await?
    .map(ok)
    .ok_or_else(|| AppError::not_found("credential", id))
}

async fn change_credential(
    core: &Core,
    caller: &Caller,
    id: &str,
    action: &'static str,
    change: impl FnOnce(&mut Credential) -> Result<(), crate::domain::CredentialTransitionError>
    + Clone
    + Send
    + 'static,
) -> Result<Json, AppError> {
    let id = CredentialId::new(path_id("credential", id)?);
    let now = core.now();
    core.write_about(caller, vec![Subject::Credential(id)], 8, move |s, plan| {
        let mut credential = s
            .credentials
            .get(&id)
            .filter(|c| !c.is_deleted())
            .ok_or_else(|| AppError::not_found("credential", id))?
            .clone();
        change(&mut credential).map_err(|e| AppError::invalid_state(e.to_string()))?;
        plan.audit(action, Kind::Credential, Some(id.get()));
        plan.put(credential.clone(), None);
        sync_mobile_keys(
            s,
            Changed::Credential(&credential),
            plan,
            credential.person_id,
            now,
        )?;
        Ok(changed_credential_view(s, &credential, now))
    })
    .await
}

/// `DELETE /v1/credentials/{id}`.
pub(crate) async fn delete_credential(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    change_credential(
        &core,
        &caller,
        &id,
        "credential.deleted",
        Credential::delete,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/credentials/{id}/suspend`.
pub(crate) async fn suspend_credential(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(ok(change_credential(
        &core,
        &caller,
        &id,
        "credential.suspended",
        Credential::suspend,
    )
    .await?))
}

/// `POST /v1/credentials/{id}/clear-lockout`: unlocks a key locked after wrong PINs.
pub(crate) async fn clear_credential_lockout(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(ok(change_credential(
        &core,
        &caller,
        &id,
        "credential.lockout_cleared",
        Credential::clear_lockout,
    )
    .await?))
}

/// `POST /v1/credentials/{id}/unsuspend`.
pub(crate) async fn unsuspend_credential(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(ok(change_credential(
        &core,
        &caller,
        &id,
        "credential.unsuspended",
        Credential::unsuspend,
    )
    .await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeIn {
    reason: String,
}

/// `POST /v1/credentials/{id}/revoke` with `{"reason": "lost" | "stolen" | "damaged" |
/// "terminated"}`: final; a lost or stolen card can never be issued again.
pub(crate) async fn revoke_credential(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<RevokeIn>,
) -> Result<Response, AppError> {
    let reason = named("reason", &input.body.reason, REVOKE_REASONS)?;
    Ok(ok(change_credential(
        &core,
        &caller,
        &id,
        "credential.revoked",
        move |c| c.revoke(reason),
    )
    .await?))
}
