//! `/v1/webhooks`: the tenant's webhook endpoints – create (the signing secret is in that
//! reply only), list, read, change or re-enable (`PATCH`), delete, rotate the secret – and
//! each endpoint's delivery log (`/v1/webhooks/{id}/deliveries`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::SignedDuration;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::input::{Input, path_id};
use super::{PageResult, ok, page_query};
use crate::app::{Caller, Core, KEEP_PREVIOUS_SECRET, NewWebhook, WebhookPatch};
use crate::error::AppError;
use crate::store::{DeliveryRow, WebhookRow};

fn webhook_view(w: &WebhookRow) -> Json {
    json!({
        "id": w.id,
        "url": w.url,
        "description": w.description,
        "event_types": w.event_types,
        "status": if w.enabled { "enabled" } else { "disabled" },
        "disabled_reason": w.disabled_reason,
        "failed_messages": w.failed_messages,
        "previous_secret_expires_at": w.previous_secret.as_ref().map(|(_, until)| until.to_string()),
        "created_at": w.created_at.to_string(),
        "updated_at": w.updated_at.to_string(),
    })
}

fn delivery_view(d: &DeliveryRow) -> Json {
    let a = &d.delivery;
    json!({
        "id": d.id,
        "message_id": a.message_id,
        "event_id": a.event_id,
        "event_type": a.event_type,
        "attempt": a.attempt,
        "attempted_at": a.attempted_at.to_string(),
        "outcome": a.outcome.as_str(),
        "status_code": a.status_code,
        "error": a.error,
        "duration_ms": a.duration_ms,
    })
}

/// The view of an endpoint with its secret (create and rotation replies only).
fn with_secret(w: &WebhookRow) -> Json {
    let mut view = webhook_view(w);
    view["secret"] = json!(w.secret);
    view
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookIn {
    url: String,
    event_types: Vec<String>,
    #[serde(default)]
    description: String,
}

/// `POST /v1/webhooks`: 201 with the endpoint and its `secret`, shown this once (and to
/// a repetition of the request under the same `Idempotency-Key`).
pub(crate) async fn create(
    State(core): State<Core>,
    caller: Caller,
    input: Input<WebhookIn>,
) -> Result<Response, AppError> {
    let body = input.body;
    let row = core
        .create_webhook(
            &caller,
            NewWebhook {
                url: body.url,
                event_types: body.event_types,
                description: body.description,
            },
            input.idempotency,
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(with_secret(&row))).into_response())
}

/// `GET /v1/webhooks?after=&limit=`.
pub(crate) async fn list(
    State(core): State<Core>,
    caller: Caller,
    query: PageResult,
) -> Result<Response, AppError> {
    let q = page_query(query)?;
    let rows = core.webhooks(&caller).await?;
    q.page(rows.iter().map(|w| (w.id, webhook_view(w)))).map(ok)
}

/// `GET /v1/webhooks/{id}`.
pub(crate) async fn get(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id("webhook", &id)?;
    Ok(ok(webhook_view(&core.webhook(&caller, id).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookPatchIn {
    url: Option<String>,
    event_types: Option<Vec<String>>,
    description: Option<String>,
    status: Option<String>,
}

/// `PATCH /v1/webhooks/{id}`: the fields given are replaced; `"status": "enabled"`
/// re-enables a disabled endpoint, `"disabled"` disables it.
pub(crate) async fn patch(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<WebhookPatchIn>,
) -> Result<Response, AppError> {
    let id = path_id("webhook", &id)?;
    let body = input.body;
    let enabled = match body.status.as_deref() {
        None => None,
        Some("enabled") => Some(true),
        Some("disabled") => Some(false),
        Some(_) => {
            return Err(AppError::invalid(
                "status",
                "status must be 'enabled' or 'disabled'",
            ));
        }
    };
    let patch = WebhookPatch {
        url: body.url,
        event_types: body.event_types,
        description: body.description,
        enabled,
    };
    Ok(ok(webhook_view(
        &core.update_webhook(&caller, id, patch).await?,
    )))
}

/// `DELETE /v1/webhooks/{id}`.
pub(crate) async fn delete(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id("webhook", &id)?;
    core.delete_webhook(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateIn {
    keep_previous_seconds: Option<i64>,
}

/// `POST /v1/webhooks/{id}/rotate-secret`: the endpoint with its new `secret`, shown this
/// once; the previous one keeps signing beside it for `keep_previous_seconds` (default a
/// day, 0 to stop at once).
pub(crate) async fn rotate_secret(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    input: Input<RotateIn>,
) -> Result<Response, AppError> {
    let id = path_id("webhook", &id)?;
    let keep = input
        .body
        .keep_previous_seconds
        .map_or(KEEP_PREVIOUS_SECRET, SignedDuration::from_secs);
    let row = core.rotate_webhook_secret(&caller, id, keep).await?;
    Ok(ok(with_secret(&row)))
}

/// `GET /v1/webhooks/{id}/deliveries?after=&limit=`: the attempts, oldest first.
pub(crate) async fn deliveries(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
    query: PageResult,
) -> Result<Response, AppError> {
    let id = path_id("webhook", &id)?;
    let q = page_query(query)?;
    let (after, limit) = q.window()?;
    let rows = core
        .webhook_deliveries(&caller, id, after, limit + 1)
        .await?;
    q.page(rows.iter().map(|d| (d.id, delivery_view(d))))
        .map(ok)
}
