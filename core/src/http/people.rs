//! `/v1/people`, their credentials and phones, and `/v1/groups`.
//!
//! Enrolling a person with a selfie creates the person and a face credential that is
//! issued but not distributed (it reaches terminals only once an entitlement covers them).
//! Credential values that are secrets (PINs, QR payloads, cloud-key tokens and PINs,
//! fingerprint templates) are never shown again after the reply that created them.

use std::collections::BTreeMap;
use std::io::Cursor;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use jiff::Timestamp;
use rand::Rng as _;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::input::{Input, REVOKE_REASONS, named, opt_instant, path_id};
use super::{PageQuery, create, create_about, delete_unused, get_one, ok, page_query};
use crate::app::{Caller, Core, Plan, Subject};
use crate::card::WiegandCard;
use crate::domain::{
    AcsId, Contact, Credential, CredentialId, CredentialStatus, CredentialValue, DisableReason,
    FingerprintTemplates, Group, GroupId, Invitation, IssueError, Person, PersonId, Phone, PhoneId,
    Pin, SecretText, Snapshot, check_can_issue, mobile_key_sync,
};
use crate::error::AppError;
use crate::notify::compose;
use crate::records::Stored as _;
use crate::records::credential::issue_subjects;
use crate::store::{Blob, Kind};

type PageResult = Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>;

/// Longest display name of a person (it becomes the terminal's `users.name`).
pub(crate) const MAX_PERSON_NAME: usize = 200;
/// Largest selfie accepted, decoded.
pub(crate) const MAX_SELFIE_BYTES: usize = 2 * 1024 * 1024;
/// Smallest and largest selfie side, in pixels.
pub(crate) const SELFIE_SIDE: std::ops::RangeInclusive<u32> = 64..=4096;

/// Checks a base64 selfie and returns its JPEG bytes; errors name `field`.
pub(crate) fn decode_selfie(field: &str, b64: &str) -> Result<Vec<u8>, AppError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| AppError::invalid(field, format!("{field} is not valid base64")))?;
    if bytes.len() > MAX_SELFIE_BYTES {
        return Err(AppError::invalid(
            field,
            format!("{field} must be at most {MAX_SELFIE_BYTES} bytes"),
        ));
    }
    let reader = image::ImageReader::new(Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|_| AppError::invalid(field, format!("{field} is not a JPEG image")))?;
    if reader.format() != Some(image::ImageFormat::Jpeg) {
        return Err(AppError::invalid(
            field,
            format!("{field} is not a JPEG image"),
        ));
    }
    let (w, h) = reader
        .into_dimensions()
        .map_err(|_| AppError::invalid(field, format!("{field} is not a readable JPEG image")))?;
    if !SELFIE_SIDE.contains(&w) || !SELFIE_SIDE.contains(&h) {
        return Err(AppError::invalid(
            field,
            format!(
                "{field} must be between {} and {} pixels on each side (got {w}×{h})",
                SELFIE_SIDE.start(),
                SELFIE_SIDE.end()
            ),
        ));
    }
    Ok(bytes)
}

pub(crate) fn person_view(p: &Person) -> Json {
    json!({"id": p.id.get(), "acs_id": p.acs_id.as_str(), "name": p.name,
           "email": p.contact.email, "phone_number": p.contact.phone_number,
           "valid_from": p.validity.from().map(|t| t.to_string()),
           "valid_to": p.validity.to().map(|t| t.to_string()),
           "enabled": p.enabled, "suspended": p.is_suspended()})
}

/// Checks contact details (fields `email`, `phone_number`).
fn contact(email: Option<&str>, phone_number: Option<&str>) -> Result<Contact, AppError> {
    Ok(Contact {
        email: email.map(Contact::parse_email).transpose()?,
        phone_number: phone_number.map(Contact::parse_phone_number).transpose()?,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactIn {
    email: Option<String>,
    phone_number: Option<String>,
}

/// `PUT /v1/people/{id}/contact` with `{"email", "phone_number"}` (either may be `null`):
/// where the person's messages go.
pub(crate) async fn set_contact(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<ContactIn>,
) -> Result<Response, AppError> {
    let id = PersonId::new(path_id("person", &id)?);
    let contact = contact(
        input.body.email.as_deref(),
        input.body.phone_number.as_deref(),
    )?;
    let view = core
        .write_about(&caller, vec![Subject::Person(id)], 0, move |s, plan| {
            let mut person = person_of(s, id)?.clone();
            person.contact = contact;
            plan.audit("person.updated", Kind::Person, Some(id.get()));
            let view = person_view(&person);
            plan.put(person, None);
            Ok(view)
        })
        .await?;
    Ok(ok(view))
}

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

/// The subjects of a list of person ids given in a request.
pub(crate) fn people_subjects(ids: &[u64]) -> Vec<Subject> {
    ids.iter()
        .map(|id| Subject::Person(PersonId::new(*id)))
        .collect()
}

pub(crate) fn person_of(s: &Snapshot, id: PersonId) -> Result<&Person, AppError> {
    s.people
        .get(&id)
        .ok_or_else(|| AppError::not_found("person", id))
}

/// Issues a face credential from selfie bytes (issued, not distributed). A person just
/// created has no face yet, so only an existing person is checked (the store's unique
/// key backs the rule either way).
pub(crate) fn issue_face(
    s: &Snapshot,
    plan: &mut Plan,
    person: &Person,
    jpeg: Vec<u8>,
    at: Timestamp,
) -> Result<Credential, AppError> {
    let id = CredentialId::new(plan.next_id()?);
    let value = CredentialValue::face(&format!("selfie:{id}"))?;
    if s.people.contains_key(&person.id) {
        check_can_issue(s.credentials.values(), person.tenant_id, person.id, &value)
            .map_err(issue_problem)?;
    }
    let credential = Credential::issue(id, person.tenant_id, person.id, value, at);
    plan.audit("credential.issued", Kind::Credential, Some(id.get()));
    plan.put(
        credential.clone(),
        Some(Blob {
            media_type: "image/jpeg".into(),
            bytes: jpeg,
        }),
    );
    Ok(credential)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnrollIn {
    acs_id: String,
    #[serde(default)]
    name: String,
    email: Option<String>,
    phone_number: Option<String>,
    selfie: Option<String>,
    valid_from: Option<String>,
    valid_to: Option<String>,
}

/// `POST /v1/people`: `acs_id` (+ optional base64 `selfie`) → the person, and the face
/// credential issued but not distributed.
pub(crate) async fn enroll(
    State(core): State<Core>,
    caller: Caller,
    input: Input<EnrollIn>,
) -> Result<Response, AppError> {
    let body = input.body;
    // Decode outside the tenant's write turn: checking an image is the slow part.
    let jpeg = body
        .selfie
        .as_deref()
        .map(|b| decode_selfie("selfie", b))
        .transpose()?;
    let acs_id = AcsId::parse(&body.acs_id)?;
    if body.name.chars().count() > MAX_PERSON_NAME {
        return Err(AppError::invalid(
            "name",
            format!("name must be at most {MAX_PERSON_NAME} characters"),
        ));
    }
    let contact = contact(body.email.as_deref(), body.phone_number.as_deref())?;
    let valid_from = opt_instant("valid_from", body.valid_from.as_deref())?;
    let valid_to = opt_instant("valid_to", body.valid_to.as_deref())?;
    let tenant = caller.tenant;
    let now = core.now();
    create(&core, &caller, input.idempotency, 2, move |s, plan| {
        // Uniqueness of the acs_id is the store's unique key (409 naming `acs_id`): a scan
        // of every person here would make enrollment slower as the tenant grows.
        let mut person = Person::new(PersonId::new(plan.next_id()?), tenant, acs_id, &body.name)
            .with_validity(valid_from, valid_to)?;
        person.contact = contact;
        plan.audit("person.created", Kind::Person, Some(person.id.get()));
        let mut view = person_view(&person);
        plan.put(person.clone(), None);
        let mut credentials = Vec::new();
        if let Some(jpeg) = jpeg {
            let face = issue_face(s, plan, &person, jpeg, now)?;
            credentials.push(
                json!({"id": face.id.get(), "kind": "face", "status": "disabled",
                                    "disable_reasons": ["needs_provisioning"]}),
            );
        }
        view["credentials"] = json!(credentials);
        Ok(view)
    })
    .await
}

/// `GET /v1/people`: paged from the store, which holds everyone (the snapshot holds only
/// the entitled).
pub(crate) async fn list_people(
    State(core): State<Core>,
    caller: Caller,
    query: PageResult,
) -> Result<Response, AppError> {
    let q = page_query(query)?;
    let (after, limit) = q.window()?;
    let records = core
        .stored_page(caller.tenant, Kind::Person, after, limit + 1)
        .await?;
    let mut people = Vec::with_capacity(records.len());
    for record in &records {
        let person =
            Person::from_document(caller.tenant, record.id, &record.data).map_err(|e| {
                tracing::error!(error = %e, "stored person unreadable");
                AppError::internal()
            })?;
        people.push((record.id, person_view(&person)));
    }
    q.page(people).map(ok)
}

/// `GET /v1/people/{id}`.
pub(crate) async fn get_person(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = PersonId::new(path_id("person", &id)?);
    let now = core.now();
    core.read_about(caller.tenant, vec![Subject::Person(id)], |s| {
        s.people.get(&id).map(|p| {
            let mut view = person_view(p);
            view["credentials"] = s
                .credentials
                .values()
                .filter(|c| c.person_id == id && !c.is_deleted())
                .map(|c| credential_view(s, c, now))
                .collect();
            view
        })
    })
    .await?
    .map(ok)
    .ok_or_else(|| AppError::not_found("person", id))
}

/// `DELETE /v1/people/{id}`: the person's credentials are deleted, their memberships
/// removed, and they leave every event, group and access.
pub(crate) async fn delete_person(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = PersonId::new(path_id("person", &id)?);
    let now = core.now();
    core.write_about(&caller, vec![Subject::Person(id)], 0, move |s, plan| {
        person_of(s, id)?;
        for c in s.credentials.values().filter(|c| c.person_id == id) {
            plan.delete::<Credential>(c.id.get());
        }
        for p in s.phones.values().filter(|p| p.person_id == id) {
            plan.delete::<Phone>(p.id.get());
        }
        for i in s.invitations.values().filter(|i| i.person_id == id) {
            plan.delete::<Invitation>(i.id.get());
        }
        for m in s.memberships.values().filter(|m| m.person_id == id) {
            let mut m = m.clone();
            if m.is_active_at(now) || m.removed_at().is_none() {
                let _ = m.remove(now);
                plan.put(m, None);
            }
        }
        for e in s.events.values().filter(|e| e.is_attendee(id)) {
            let mut e = e.clone();
            let _ = e.remove_attendee(id);
            plan.put(e, None);
        }
        for g in s.groups.values().filter(|g| g.members.contains(&id)) {
            let mut g = g.clone();
            g.members.remove(&id);
            plan.put(g, None);
        }
        for a in s.accesses.values().filter(|a| a.person_ids.contains(&id)) {
            let mut a = a.clone();
            a.person_ids.remove(&id);
            plan.put(a, None);
        }
        plan.audit("person.deleted", Kind::Person, Some(id.get()));
        plan.delete::<Person>(id.get());
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn change_person(
    core: &Core,
    caller: &Caller,
    id: &str,
    action: &'static str,
    change: fn(&mut Person) -> Result<(), crate::domain::PersonError>,
) -> Result<Response, AppError> {
    let id = PersonId::new(path_id("person", id)?);
    let view = core
        .write_about(caller, vec![Subject::Person(id)], 0, move |s, plan| {
            let mut person = person_of(s, id)?.clone();
            change(&mut person).map_err(|e| AppError::invalid_state(e.to_string()))?;
            plan.audit(action, Kind::Person, Some(id.get()));
            let view = person_view(&person);
            plan.put(person, None);
            Ok(view)
        })
        .await?;
    Ok(ok(view))
}

/// `POST /v1/people/{id}/suspend`.
pub(crate) async fn suspend_person(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    change_person(&core, &caller, &id, "person.suspended", Person::suspend).await
}

/// `POST /v1/people/{id}/unsuspend`.
pub(crate) async fn unsuspend_person(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    change_person(&core, &caller, &id, "person.unsuspended", Person::unsuspend).await
}

/// `GET /v1/people/{id}/selfie`: the JPEG of the person's live face credential.
pub(crate) async fn selfie(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = PersonId::new(path_id("person", &id)?);
    let face = core
        .read_about(caller.tenant, vec![Subject::Person(id)], |s| {
            s.credentials
                .values()
                .find(|c| {
                    c.person_id == id
                        && c.is_live()
                        && matches!(c.value, CredentialValue::Face { .. })
                })
                .map(|c| c.id)
        })
        .await?
        .ok_or_else(|| AppError::not_found("selfie of person", id))?;
    let blob = core
        .blob(caller.tenant, face.get())
        .await?
        .ok_or_else(|| AppError::not_found("selfie of person", id))?;
    Ok(([(header::CONTENT_TYPE, blob.media_type)], blob.bytes).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum CredentialIn {
    Face {
        selfie: String,
    },
    Card {
        facility_code: u32,
        card_number: u32,
        starts_at: Option<String>,
        ends_at: Option<String>,
    },
    Pin {
        pin: String,
        starts_at: Option<String>,
        ends_at: Option<String>,
    },
    Qr {
        qr: Option<String>,
        starts_at: Option<String>,
        ends_at: Option<String>,
        max_uses: Option<u32>,
    },
    Fingerprint {
        templates: Vec<String>,
    },
    CloudKey {
        pin: Option<String>,
        starts_at: Option<String>,
        ends_at: Option<String>,
        #[serde(default)]
        one_time: bool,
        #[serde(default)]
        send_by_email: bool,
        #[serde(default)]
        send_by_text: bool,
    },
    MobileKey {
        starts_at: Option<String>,
        ends_at: Option<String>,
    },
}

pub(crate) fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// What a credential request asks for, checked before the tenant's write turn.
enum Requested {
    Face(Vec<u8>),
    Value {
        value: CredentialValue,
        starts: Option<Timestamp>,
        ends: Option<Timestamp>,
        max_uses: Option<u32>,
        /// Generated values shown once in the reply.
        shown: serde_json::Map<String, Json>,
        /// Whether to send a cloud key by e-mail and by text.
        send: (bool, bool),
    },
}

fn requested(body: CredentialIn) -> Result<Requested, AppError> {
    let window = |starts: Option<String>, ends: Option<String>| {
        Ok::<_, AppError>((
            opt_instant("starts_at", starts.as_deref())?,
            opt_instant("ends_at", ends.as_deref())?,
        ))
    };
    let mut shown = serde_json::Map::new();
    let mut send = (false, false);
    let (value, (starts, ends), max_uses) = match body {
        CredentialIn::Face { selfie } => {
            return Ok(Requested::Face(decode_selfie("selfie", &selfie)?));
        }
        CredentialIn::Card {
            facility_code,
            card_number,
            starts_at,
            ends_at,
        } => (
            CredentialValue::Card(WiegandCard::new(facility_code, card_number)),
            window(starts_at, ends_at)?,
            None,
        ),
        CredentialIn::Pin {
            pin,
            starts_at,
            ends_at,
        } => (
            CredentialValue::Pin(Pin::parse(&pin)?),
            window(starts_at, ends_at)?,
            None,
        ),
        CredentialIn::Qr {
            qr,
            starts_at,
            ends_at,
            max_uses,
        } => {
            let text = match qr {
                Some(text) => text,
                None => {
                    let text = random_token(24);
                    shown.insert("qr".into(), json!(text));
                    text
                }
            };
            (
                CredentialValue::Qr(SecretText::parse("qr", &text)?),
                window(starts_at, ends_at)?,
                max_uses,
            )
        }
        CredentialIn::Fingerprint { templates } => (
            CredentialValue::Fingerprint(FingerprintTemplates::new(templates)?),
            (None, None),
            None,
        ),
        CredentialIn::CloudKey {
            pin,
            starts_at,
            ends_at,
            one_time,
            send_by_email,
            send_by_text,
        } => {
            let token = random_token(32);
            shown.insert("token".into(), json!(token));
            send = (send_by_email, send_by_text);
            // A cloud key always has a PIN: the operator's, or one made here and shown once.
            let pin = match pin {
                Some(pin) => Pin::parse(&pin)?,
                None => {
                    let digits = random_pin(6);
                    shown.insert("pin".into(), json!(digits));
                    Pin::parse(&digits)?
                }
            };
            (
                CredentialValue::CloudKey {
                    token: SecretText::parse("token", &token)?,
                    pin: Some(pin),
                },
                window(starts_at, ends_at)?,
                one_time.then_some(1),
            )
        }
        CredentialIn::MobileKey { starts_at, ends_at } => (
            CredentialValue::MobileKey { phone_id: None },
            window(starts_at, ends_at)?,
            None,
        ),
    };
    Ok(Requested::Value {
        value,
        starts,
        ends,
        max_uses,
        shown,
        send,
    })
}

/// `len` random decimal digits.
fn random_pin(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// The messages issuing `credential` to `person` causes: a cloud key's link and PIN (to
/// the channels asked for), a welcome for a mobile key.
fn issue_messages(
    person: &Person,
    credential: &Credential,
    (by_email, by_text): (bool, bool),
    public_url: &str,
    now: Timestamp,
) -> Result<Vec<crate::store::NewMessage>, AppError> {
    match &credential.value {
        CredentialValue::CloudKey { token, pin } if by_email || by_text => {
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
                &compose::cloud_key_link(public_url, token.expose()),
                pin.as_ref().map_or("", |p| p.expose()),
                compose::Recipients { email, text },
                now,
            ))
        }
        CredentialValue::MobileKey { phone_id: None } => {
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
    let requested = requested(input.body)?;
    let subjects = match &requested {
        Requested::Value { value, .. } => issue_subjects(value, person_id),
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
            let (value, starts, ends, max_uses, shown, send) = match requested {
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
                } => (value, starts, ends, max_uses, shown, send),
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
            for message in issue_messages(&person, &credential, send, &public_url, now)? {
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
enum Changed<'a> {
    Credential(&'a Credential),
    Phone(&'a Phone),
}

/// Creates and revokes mobile-key copies so that every live mobile key of the person has
/// one copy per active phone (multi-phone sync), as the person's credentials and phones
/// stand once `changed` is applied. Only the person's records are looked at; nothing of
/// the snapshot is copied.
fn sync_mobile_keys(
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

fn phone_view(p: &Phone) -> Json {
    json!({"id": p.id.get(), "person_id": p.person_id.get(), "active": p.active})
}

/// The access-control event of a phone's enrollment or deactivation.
fn phone_event(kind: &str, s: &Snapshot, phone: &Phone, now: Timestamp) -> Json {
    json!({"type": kind, "occurred_at": now.to_string(), "phone_id": phone.id.get(),
           "person_id": phone.person_id.get(),
           "acs_id": s.people.get(&phone.person_id).map(|p| p.acs_id.as_str())})
}

/// `POST /v1/people/{id}/phones`: registers a phone; every mobile key of the person is
/// issued to it.
pub(crate) async fn add_phone(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<Json>,
) -> Result<Response, AppError> {
    if !input
        .body
        .as_object()
        .is_some_and(serde_json::Map::is_empty)
    {
        return Err(AppError::malformed("the body must be an empty object"));
    }
    let person_id = PersonId::new(path_id("person", &id)?);
    let now = core.now();
    let subjects = vec![Subject::Person(person_id)];
    create_about(
        &core,
        &caller,
        subjects,
        input.idempotency,
        64,
        move |s, plan| {
            person_of(s, person_id)?;
            let phone = Phone {
                id: PhoneId::new(plan.next_id()?),
                person_id,
                active: true,
            };
            plan.audit("phone.added", Kind::Phone, Some(phone.id.get()));
            plan.access_event(now, phone_event("phone.enrolled", s, &phone, now));
            plan.put(phone.clone(), None);
            sync_mobile_keys(s, Changed::Phone(&phone), plan, person_id, now)?;
            Ok(phone_view(&phone))
        },
    )
    .await
}

/// `GET /v1/people/{id}/phones`.
pub(crate) async fn list_phones(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    query: PageResult,
) -> Result<Response, AppError> {
    let id = PersonId::new(path_id("person", &id)?);
    let q = page_query(query)?;
    core.read_about(caller.tenant, vec![Subject::Person(id)], |s| {
        person_of(s, id)?;
        q.page(
            s.phones
                .values()
                .filter(|p| p.person_id == id)
                .map(|p| (p.id.get(), phone_view(p))),
        )
    })
    .await?
    .map(ok)
}

/// `POST /v1/phones/{id}/deactivate`: the phone's mobile-key copies are revoked.
pub(crate) async fn deactivate_phone(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = PhoneId::new(path_id("phone", &id)?);
    let now = core.now();
    let view = core
        .write_about(&caller, vec![Subject::Phone(id)], 0, move |s, plan| {
            let mut phone = s
                .phones
                .get(&id)
                .ok_or_else(|| AppError::not_found("phone", id))?
                .clone();
            if !phone.active {
                return Err(AppError::invalid_state(format!(
                    "phone {id} is already inactive"
                )));
            }
            phone.active = false;
            plan.audit("phone.deactivated", Kind::Phone, Some(id.get()));
            plan.access_event(now, phone_event("phone.deactivated", s, &phone, now));
            plan.put(phone.clone(), None);
            sync_mobile_keys(s, Changed::Phone(&phone), plan, phone.person_id, now)?;
            Ok(phone_view(&phone))
        })
        .await?;
    Ok(ok(view))
}

fn group_view(g: &Group) -> Json {
    json!({"id": g.id.get(), "name": g.name,
           "member_ids": g.members.iter().map(|p| p.get()).collect::<Vec<_>>()})
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupIn {
    name: String,
    #[serde(default)]
    member_ids: Vec<u64>,
}

/// `POST /v1/groups`.
pub(crate) async fn create_group(
    State(core): State<Core>,
    caller: Caller,
    input: Input<GroupIn>,
) -> Result<Response, AppError> {
    let tenant = caller.tenant;
    let subjects = people_subjects(&input.body.member_ids);
    create_about(
        &core,
        &caller,
        subjects,
        input.idempotency,
        1,
        move |s, plan| {
            let mut group = Group::new(GroupId::new(plan.next_id()?), tenant, &input.body.name)?;
            for (i, raw) in input.body.member_ids.iter().enumerate() {
                let person = PersonId::new(*raw);
                if !s.people.contains_key(&person) {
                    return Err(AppError::invalid(
                        format!("member_ids[{i}]"),
                        format!("person {person} does not exist"),
                    ));
                }
                group.members.insert(person);
            }
            plan.audit("group.created", Kind::Group, Some(group.id.get()));
            let view = group_view(&group);
            plan.put(group, None);
            Ok(view)
        },
    )
    .await
}

/// `GET /v1/groups`.
pub(crate) async fn list_groups(
    State(core): State<Core>,
    caller: Caller,
    query: PageResult,
) -> Result<Response, AppError> {
    let q = page_query(query)?;
    core.read(caller.tenant, |s| {
        q.page(s.groups.values().map(|g| (g.id.get(), group_view(g))))
    })
    .await?
    .map(ok)
}

/// `GET /v1/groups/{id}`.
pub(crate) async fn get_group(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    get_one(&core, &caller, "group", &id, |s, id| {
        s.groups.get(&GroupId::new(id)).map(group_view)
    })
    .await
}

/// `DELETE /v1/groups/{id}`.
pub(crate) async fn delete_group(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    delete_unused::<Group>(
        &core,
        &caller,
        &id,
        |s, id| s.groups.contains_key(&GroupId::new(id)),
        |s, id| {
            s.accesses
                .values()
                .find(|a| a.is_live() && a.group_ids.contains(&GroupId::new(id)))
                .map(|a| format!("access {}", a.id))
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PersonRef {
    person_id: u64,
}

/// `POST /v1/groups/{id}/members` with `{"person_id"}`.
pub(crate) async fn add_group_member(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<PersonRef>,
) -> Result<Response, AppError> {
    let id = GroupId::new(path_id("group", &id)?);
    let person = PersonId::new(input.body.person_id);
    let view = core
        .write_about(&caller, vec![Subject::Person(person)], 0, move |s, plan| {
            let mut group = s
                .groups
                .get(&id)
                .ok_or_else(|| AppError::not_found("group", id))?
                .clone();
            if !s.people.contains_key(&person) {
                return Err(AppError::invalid(
                    "person_id",
                    format!("person {person} does not exist"),
                ));
            }
            if !group.members.insert(person) {
                return Err(AppError::conflict(
                    Some("person_id"),
                    format!("person {person} is already a member of group {id}"),
                ));
            }
            plan.audit("group.member_added", Kind::Group, Some(id.get()));
            let view = group_view(&group);
            plan.put(group, None);
            Ok(view)
        })
        .await?;
    Ok(ok(view))
}

/// `DELETE /v1/groups/{id}/members/{person_id}`.
pub(crate) async fn remove_group_member(
    State(core): State<Core>,
    caller: Caller,
    Path((id, person)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let id = GroupId::new(path_id("group", &id)?);
    let person = PersonId::new(path_id("person", &person)?);
    core.write(&caller, 0, move |s, plan| {
        let mut group = s
            .groups
            .get(&id)
            .ok_or_else(|| AppError::not_found("group", id))?
            .clone();
        if !group.members.remove(&person) {
            return Err(AppError::not_found("member of group", person));
        }
        plan.audit("group.member_removed", Kind::Group, Some(id.get()));
        plan.put(group, None);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
