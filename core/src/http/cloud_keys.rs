//! Cloud keys used by their holder: `/public/cloud-keys/{token}` – a page, the doors the
//! key opens now, and opening one. Only the link's token and its PIN are needed; both are
//! compared as keyed digests ([`Core::digest`]), never kept in clear.
//!
//! - Every request is rate-limited ([`super::rate_limit`]).
//! - A wrong PIN is counted on the credential (committed even though the request fails);
//!   the [`MAX_PIN_ATTEMPTS`](crate::domain::policy::MAX_PIN_ATTEMPTS)-th wrong PIN in a row locks the key (`lockout`), which the
//!   operator lifts with `POST /v1/credentials/{id}/clear-lockout`. A right PIN resets the
//!   count.
//! - Opening runs the decision function at the door (direction in, factor cloud key with
//!   its PIN). On a grant the core sends the door-open action to a terminal serving the
//!   door and only then records `access.granted` with the `acs_id` and consumes a one-time
//!   key; a terminal that does not answer gives `access.denied` with `device_error` and
//!   leaves the key unused. While one opening of a key is in flight, another is refused,
//!   so a one-time key cannot open twice.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::input::Input;
use super::ok;
use super::rate_limit::ClientAddr;
use crate::app::{Caller, Core, Subject};
use crate::domain::Lookup;
use crate::domain::{
    CredentialId, CredentialValue, Direction, DoorId, PresentedFactor, Snapshot, TenantId,
    Terminal, decide_with,
};
use crate::error::{AppError, RefusalClass};
use crate::records::credential::CLOUD_KEY;
use crate::store::Kind;

/// Wrong PINs in a row that lock a cloud key.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DoorsIn {
    pin: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenIn {
    pin: Option<String>,
    door_id: u64,
}

/// The key a token opens, with a caller acting for its tenant.
async fn by_token(core: &Core, token: &str) -> Result<(Caller, CredentialId), AppError> {
    let unknown = || AppError::not_found("cloud key", "given");
    if token.is_empty() || token.len() > 512 {
        return Err(unknown());
    }
    let store = core.store().clone();
    let token = core.digest(token);
    let owner = tokio::task::spawn_blocking(move || store.claim_owner(CLOUD_KEY, &token))
        .await
        .map_err(|_| AppError::internal())??;
    let (tenant, record) = owner.ok_or_else(unknown)?;
    Ok((
        Caller {
            tenant: TenantId::new(tenant),
            key_prefix: "cloud-key".into(),
        },
        CredentialId::new(record),
    ))
}

fn locked() -> AppError {
    AppError::refused(
        RefusalClass::Locked,
        "key-locked",
        "Key locked",
        "this key is locked after too many wrong PINs; ask the operator to unlock it",
    )
}

/// Checks the PIN given with the key against its digest, counting a wrong one (committed)
/// and locking the key at the limit. Returns the digests of the token and of the PIN
/// given, which is how the decision takes them, on success.
async fn check_pin(
    core: &Core,
    caller: &Caller,
    id: CredentialId,
    pin: Option<&str>,
) -> Result<(String, Option<String>), AppError> {
    let now = core.now();
    let given = pin.map(|p| core.digest(p.trim()));
    core.write_about(caller, vec![Subject::Credential(id)], 0, move |s, plan| {
        let credential = s
            .credentials
            .get(&id)
            .filter(|c| c.is_live())
            .ok_or_else(|| AppError::not_found("cloud key", "given"))?;
        let CredentialValue::CloudKey {
            token,
            pin: expected,
        } = &credential.value
        else {
            return Err(AppError::not_found("cloud key", "given"));
        };
        if credential.is_locked_out() {
            return Ok(Err(locked()));
        }
        let right = match expected {
            None => true,
            Some(expected) => given.as_deref().is_some_and(|g| expected.matches(g)),
        };
        let mut credential = credential.clone();
        if right {
            if credential.failed_attempts() > 0 {
                credential.record_right_pin();
                plan.put(credential, None);
            }
            return Ok(Ok((token.expose().to_owned(), given)));
        }
        let locked_now = credential
            .record_wrong_pin(crate::domain::policy::MAX_PIN_ATTEMPTS)
            .map_err(|e| AppError::invalid_state(e.to_string()))?;
        let left =
            crate::domain::policy::MAX_PIN_ATTEMPTS.saturating_sub(credential.failed_attempts());
        plan.audit("credential.wrong_pin", Kind::Credential, Some(id.get()));
        if locked_now {
            plan.audit("credential.locked_out", Kind::Credential, Some(id.get()));
            plan.access_event(
                now,
                json!({"type": "credential.locked_out", "occurred_at": now.to_string(),
                           "credential_id": id.get(), "person_id": credential.person_id.get(),
                           "reason_code": "too_many_attempts"}),
            );
        }
        plan.put(credential, None);
        Ok(Err(if locked_now {
            locked()
        } else {
            AppError::refused(
                RefusalClass::Forbidden,
                "wrong-pin",
                "Wrong PIN",
                format!("wrong PIN; {left} attempts left before the key locks"),
            )
        }))
    })
    .await?
}

fn factors(token: &str, pin: Option<&str>) -> [PresentedFactor; 1] {
    [PresentedFactor::CloudKey {
        token: token.to_owned(),
        pin: pin.map(str::to_owned),
    }]
}

/// The doors the key opens at this instant.
fn open_doors(
    s: &Snapshot,
    lookup: &Lookup,
    token: &str,
    pin: Option<&str>,
    now: jiff::Timestamp,
) -> Vec<Json> {
    let factors = factors(token, pin);
    s.topology
        .doors
        .values()
        .filter(|d| decide_with(s, Some(lookup), &factors, d.id, Direction::In, now).granted())
        .map(|d| json!({"door_id": d.id.get(), "name": d.name}))
        .collect()
}

/// `GET /public/cloud-keys/{token}`: the page the link opens.
pub(crate) async fn page(
    State(core): State<Core>,
    State(limits): State<std::sync::Arc<super::rate_limit::RateLimiter>>,
    peer: ClientAddr,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    super::rate_limit::check(&limits, &core, peer, &token).await?;
    by_token(&core, &token).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        include_str!("cloud_key_page.html"),
    )
        .into_response())
}

/// `POST /public/cloud-keys/{token}/doors` with `{"pin"}`: the doors it opens now.
pub(crate) async fn doors(
    State(core): State<Core>,
    State(limits): State<std::sync::Arc<super::rate_limit::RateLimiter>>,
    peer: ClientAddr,
    Path(token): Path<String>,
    input: Input<DoorsIn>,
) -> Result<Response, AppError> {
    super::rate_limit::check(&limits, &core, peer, &token).await?;
    let (caller, id) = by_token(&core, &token).await?;
    let (token, pin) = check_pin(&core, &caller, id, input.body.pin.as_deref()).await?;
    let now = core.now();
    let doors = core
        .read_about(caller.tenant, vec![Subject::Credential(id)], |s| {
            let lookup = core.lookup(caller.tenant, s);
            open_doors(s, &lookup, &token, pin.as_deref(), now)
        })
        .await?;
    Ok(ok(json!({"doors": doors})))
}

/// What phase one of an opening found.
enum Verdict {
    Denied(Json),
    Granted { terminal: Terminal, event: Json },
}

/// `POST /public/cloud-keys/{token}/open` with `{"pin", "door_id"}`.
pub(crate) async fn open(
    State(core): State<Core>,
    State(limits): State<std::sync::Arc<super::rate_limit::RateLimiter>>,
    peer: ClientAddr,
    Path(token): Path<String>,
    input: Input<OpenIn>,
) -> Result<Response, AppError> {
    super::rate_limit::check(&limits, &core, peer, &token).await?;
    let (caller, id) = by_token(&core, &token).await?;
    let OpenIn { pin, door_id } = input.body;
    let (token, pin) = check_pin(&core, &caller, id, pin.as_deref()).await?;
    let _in_flight = core
        .key_in_use(id.get())
        .ok_or_else(|| AppError::invalid_state("this key is already opening a door; try again"))?;
    let door = DoorId::new(door_id);
    let now = core.now();
    // Phase one: decide (a denial is recorded at once).
    let (indexes, tenant) = (core.clone(), caller.tenant);
    let verdict = core
        .write_about(&caller, vec![Subject::Credential(id)], 0, move |s, plan| {
            let door_name = s
                .topology
                .doors
                .get(&door)
                .map(|d| d.name.clone())
                .ok_or_else(|| {
                    AppError::invalid("door_id", format!("door {door} does not exist"))
                })?;
            let lookup = indexes.lookup(tenant, s);
            let decision = decide_with(
                s,
                Some(&lookup),
                &factors(&token, pin.as_deref()),
                door,
                Direction::In,
                now,
            );
            let mut event = json!({
                "type": "access.granted", "occurred_at": now.to_string(),
                "door_id": door.get(), "door_name": door_name, "direction": "in",
                "result": "granted", "reason_code": null,
                "person_id": decision.person_id.map(|p| p.get()),
                "acs_id": decision.acs_id.as_ref().map(|a| a.as_str().to_owned()),
                "credential_id": id.get(), "auth_type": decision.auth_type.map(|a| a.name()),
                "source": "cloud_key",
            });
            let terminal = s
                .topology
                .terminals
                .values()
                .find(|t| t.door_ids.contains(&door))
                .cloned();
            match (decision.reason(), terminal) {
                (None, Some(terminal)) => Ok(Verdict::Granted { terminal, event }),
                (reason, _) => {
                    let code = reason.map_or("device_error", |r| r.code());
                    event["type"] = json!("access.denied");
                    event["result"] = json!("denied");
                    event["reason_code"] = json!(code);
                    plan.access_event(now, event.clone());
                    Ok(Verdict::Denied(event))
                }
            }
        })
        .await?;
    let (terminal, mut event) = match verdict {
        Verdict::Denied(event) => return Ok(denied(event)),
        Verdict::Granted { terminal, event } => (terminal, event),
    };
    // Phase two: open the door on the terminal serving it.
    let opened = core
        .terminal_calls()
        .execute_actions(
            &terminal,
            json!([crate::device_events::door_action(&terminal)]),
        )
        .await;
    if let Err(error) = &opened {
        tracing::warn!(terminal = %terminal.id, %error, "cloud key: door open failed");
        event["type"] = json!("access.denied");
        event["result"] = json!("denied");
        event["reason_code"] = json!("device_error");
    }
    event["terminal_id"] = json!(terminal.id.get());
    // Phase three: record the outcome, consuming a one-time key on success.
    let granted = opened.is_ok();
    let recorded = event.clone();
    core.write_about(&caller, vec![Subject::Credential(id)], 0, move |s, plan| {
        if granted && let Some(c) = s.credentials.get(&id) {
            let mut c = c.clone();
            if c.max_uses.is_some() && c.consume().is_ok() {
                plan.audit("credential.consumed", Kind::Credential, Some(id.get()));
                plan.put(c, None);
            }
        }
        plan.access_event(now, recorded);
        Ok(())
    })
    .await?;
    if granted {
        Ok(ok(event))
    } else {
        Ok(denied(event))
    }
}

/// 403 with the recorded access event as the problem's extension.
fn denied(event: Json) -> Response {
    let reason = event["reason_code"].as_str().unwrap_or("denied").to_owned();
    let problem = AppError::refused(
        RefusalClass::Forbidden,
        "access-denied",
        "Access denied",
        format!("access denied: {reason}"),
    );
    let mut body = super::problem::body(&problem);
    body["reason_code"] = json!(reason);
    body["access_event"] = event;
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}
