//! Selfie-enroll invitations: the operator's side under `/v1` (create, list, get) and the
//! person's side under `/public/selfie-invitations/{token}` (a small page and the selfie
//! upload), which needs only the link's token.
//!
//! Creating an invitation supersedes the person's earlier open ones and puts the link in
//! the outbox (e-mail and/or text), in the same transaction. The token is shown once, in
//! the create reply and the message; the store keeps only a keyed digest of its SHA-256
//! digest (`store::secrets`), which is also how the public side finds the invitation
//! (and its tenant).
//!
//! The public upload takes the same checks as operator enrollment (base64 JPEG, size,
//! dimensions) and is rate-limited per client address and per token
//! ([`super::rate_limit`]). The selfie becomes the person's face credential, issued but not
//! distributed; a used, expired or superseded link is refused with its own problem type.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use sha2::{Digest as _, Sha256};

use super::PageResult;
use super::credential_requests::random_token;
use super::credentials::issue_problem;
use super::input::{Input, opt_instant, parse, path_id};
use super::people::{decode_selfie, issue_face, person_of};
use super::rate_limit::ClientAddr;
use super::{create_about, ok, page_query};
use crate::app::{Caller, Core, Subject};
use crate::domain::{
    Contact, CredentialValue, Delivery, Invitation, InvitationId, InvitationRefused, PersonId,
    check_can_issue, supersede_earlier,
};
use crate::error::{AppError, RefusalClass};
use crate::notify::compose;
use crate::records::invitation::TOKEN_SCOPE;
use crate::store::Kind;

/// Hex SHA-256 of a link token.
pub(crate) fn token_digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn invitation_view(i: &Invitation, now: Timestamp) -> Json {
    json!({
        "id": i.id.get(),
        "person_id": i.person_id.get(),
        "status": i.status_at(now).name(),
        "valid_from": i.valid_from.to_string(),
        "expires_at": i.expires_at.to_string(),
        "send_by_email": i.delivery.email.is_some(),
        "send_by_text": i.delivery.text.is_some(),
        "created_at": i.created_at.to_string(),
        "credential_id": match i.state {
            crate::domain::InvitationState::Used { credential_id, .. } => Some(credential_id.get()),
            _ => None,
        },
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InvitationIn {
    #[serde(default)]
    send_by_email: bool,
    #[serde(default)]
    send_by_text: bool,
    /// Overrides the person's e-mail address.
    email: Option<String>,
    /// Overrides the person's mobile number.
    phone_number: Option<String>,
    valid_from: Option<String>,
    expires_at: Option<String>,
}

/// `POST /v1/people/{id}/selfie-invitations`: asks the person for a selfie by e-mail
/// and/or text. The reply carries the link once.
pub(crate) async fn create_invitation(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<InvitationIn>,
) -> Result<Response, AppError> {
    let person_id = PersonId::new(path_id("person", &id)?);
    let body = input.body;
    let now = core.now();
    let valid_from = opt_instant("valid_from", body.valid_from.as_deref())?.unwrap_or(now);
    let expires_at = opt_instant("expires_at", body.expires_at.as_deref())?
        .unwrap_or_else(|| valid_from + crate::domain::policy::INVITATION_VALIDITY);
    let email = body
        .email
        .as_deref()
        .map(Contact::parse_email)
        .transpose()?;
    let phone_number = body
        .phone_number
        .as_deref()
        .map(Contact::parse_phone_number)
        .transpose()?;
    let token = random_token(43);
    let link = compose::invitation_link(&core.public_url(), &token);
    let subjects = vec![Subject::Person(person_id)];
    create_about(
        &core,
        &caller,
        subjects,
        input.idempotency,
        1,
        move |s, plan| {
            let person = person_of(s, person_id)?;
            let email = match (body.send_by_email, email) {
                (false, _) => None,
                (true, Some(e)) => Some(e),
                (true, None) => Some(person.contact.email.clone().ok_or_else(|| {
                    AppError::invalid("email", "the person has no e-mail address; give one")
                })?),
            };
            let text = match (body.send_by_text, phone_number) {
                (false, _) => None,
                (true, Some(n)) => Some(n),
                (true, None) => Some(person.contact.phone_number.clone().ok_or_else(|| {
                    AppError::invalid("phone_number", "the person has no mobile number; give one")
                })?),
            };
            let face = CredentialValue::face("selfie:invitation")?;
            check_can_issue(s.credentials.values(), person.tenant_id, person.id, &face)
                .map_err(issue_problem)?;
            let invitation = Invitation::new(
                InvitationId::new(plan.next_id()?),
                person.tenant_id,
                person.id,
                token_digest(&token),
                (valid_from, expires_at),
                Delivery::new(email, text)?,
                now,
            )?;
            for old in supersede_earlier(s.invitations.values(), person.id, invitation.id) {
                plan.audit(
                    "invitation.superseded",
                    Kind::Invitation,
                    Some(old.id.get()),
                );
                plan.put(old, None);
            }
            for message in compose::invitation(person, &invitation, &link, now) {
                plan.message(message);
            }
            plan.audit(
                "invitation.created",
                Kind::Invitation,
                Some(invitation.id.get()),
            );
            let mut view = invitation_view(&invitation, now);
            view["link"] = json!(link);
            plan.put(invitation, None);
            Ok(view)
        },
    )
    .await
}

/// `GET /v1/people/{id}/selfie-invitations`.
pub(crate) async fn list_invitations(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    query: PageResult,
) -> Result<Response, AppError> {
    let person_id = PersonId::new(path_id("person", &id)?);
    let q = page_query(query)?;
    let now = core.now();
    core.read_about(caller.tenant, vec![Subject::Person(person_id)], |s| {
        person_of(s, person_id)?;
        q.page(
            s.invitations
                .values()
                .filter(|i| i.person_id == person_id)
                .map(|i| (i.id.get(), invitation_view(i, now))),
        )
    })
    .await?
    .map(ok)
}

/// `GET /v1/selfie-invitations/{id}`.
pub(crate) async fn get_invitation(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = InvitationId::new(path_id("selfie invitation", &id)?);
    let now = core.now();
    core.read_about(caller.tenant, vec![Subject::Invitation(id)], |s| {
        s.invitations.get(&id).map(|i| invitation_view(i, now))
    })
    .await?
    .map(ok)
    .ok_or_else(|| AppError::not_found("selfie invitation", id))
}

/// The problem for a link that cannot be used.
fn refused(e: InvitationRefused) -> AppError {
    let (class, kind) = match e {
        InvitationRefused::NotYetValid => (RefusalClass::Conflict, "invitation-not-yet-valid"),
        InvitationRefused::Expired => (RefusalClass::Gone, "invitation-expired"),
        InvitationRefused::Used => (RefusalClass::Gone, "invitation-used"),
        InvitationRefused::Superseded => (RefusalClass::Gone, "invitation-superseded"),
    };
    AppError::refused(class, kind, "Invitation link unusable", e.to_string())
}

/// The invitation a token opens, with the caller acting for its tenant.
async fn by_token(core: &Core, token: &str) -> Result<(Caller, InvitationId), AppError> {
    let unknown = || AppError::not_found("invitation link", "given");
    if token.is_empty() || token.len() > 128 {
        return Err(unknown());
    }
    let digest = token_digest(token);
    let store = core.store().clone();
    let owner = tokio::task::spawn_blocking(move || store.claim_owner(TOKEN_SCOPE, &digest))
        .await
        .map_err(|_| AppError::internal())??;
    let (tenant, record) = owner.ok_or_else(unknown)?;
    Ok((
        Caller {
            tenant: crate::domain::TenantId::new(tenant),
            key_prefix: "public-link".into(),
        },
        InvitationId::new(record),
    ))
}

/// The page a person's link opens: what the link is for, and a form that posts the selfie.
const PAGE: &str = include_str!("selfie_page.html");

/// `GET /public/selfie-invitations/{token}`: the page (HTML) or, asked for JSON, the
/// invitation's status and window.
pub(crate) async fn public_page(
    State(core): State<Core>,
    State(limits): State<std::sync::Arc<super::rate_limit::RateLimiter>>,
    peer: ClientAddr,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    super::rate_limit::check(&limits, &core, peer, &token).await?;
    let (caller, id) = by_token(&core, &token).await?;
    let now = core.now();
    let invitation = core
        .read_about(caller.tenant, vec![Subject::Invitation(id)], |s| {
            s.invitations.get(&id).cloned()
        })
        .await?
        .ok_or_else(|| AppError::not_found("invitation link", "given"))?;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        return Ok(ok(json!({
            "status": invitation.status_at(now).name(),
            "valid_from": invitation.valid_from.to_string(),
            "expires_at": invitation.expires_at.to_string(),
        })));
    }
    invitation.check_usable(now).map_err(refused)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SelfieIn {
    selfie: String,
}

/// `POST /public/selfie-invitations/{token}`: the selfie, as `image/jpeg` bytes or JSON
/// `{"selfie": "<base64>"}`. Answers 201 with the invitation's new status.
pub(crate) async fn public_submit(
    State(core): State<Core>,
    State(limits): State<std::sync::Arc<super::rate_limit::RateLimiter>>,
    peer: ClientAddr,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    super::rate_limit::check(&limits, &core, peer, &token).await?;
    let (caller, id) = by_token(&core, &token).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let jpeg = if content_type.starts_with("image/jpeg") {
        use base64::Engine as _;
        // One set of checks for both shapes: the operator's base64 path.
        decode_selfie(
            "selfie",
            &base64::engine::general_purpose::STANDARD.encode(&body),
        )?
    } else if content_type.starts_with("application/json") {
        let input: SelfieIn = parse(&body)?;
        decode_selfie("selfie", &input.selfie)?
    } else {
        return Err(AppError::malformed(
            "send the selfie as image/jpeg or as JSON {\"selfie\": \"<base64>\"}",
        ));
    };
    let now = core.now();
    let view = core
        .write_about(&caller, vec![Subject::Invitation(id)], 1, move |s, plan| {
            let mut invitation = s
                .invitations
                .get(&id)
                .cloned()
                .ok_or_else(|| AppError::not_found("invitation link", "given"))?;
            invitation.check_usable(now).map_err(refused)?;
            let person = person_of(s, invitation.person_id)?.clone();
            let face = issue_face(s, plan, &person, jpeg, now)?;
            invitation.use_for(face.id, now).map_err(refused)?;
            plan.audit("invitation.used", Kind::Invitation, Some(id.get()));
            plan.access_event(
                now,
                json!({"type": "enrollment.finished", "occurred_at": now.to_string(),
                       "person_id": person.id.get(), "acs_id": person.acs_id.as_str(),
                       "credential_id": face.id.get(), "channel": "self_link",
                       "outcome": "accepted", "invitation_id": id.get()}),
            );
            let view = json!({"status": invitation.status_at(now).name(),
                              "credential_id": face.id.get()});
            plan.put(invitation, None);
            Ok(view)
        })
        .await?;
    Ok((StatusCode::CREATED, ok(view)).into_response())
}
