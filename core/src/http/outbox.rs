//! `/v1/outbox`: the delivery status of the tenant's messages (channel, recipient,
//! subject, cause, status, attempts, last error). Bodies are never shown: they may carry a
//! PIN meant only for its owner.

use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Value as Json, json};

use super::PageResult;
use super::input::path_id;
use super::{MAX_PAGE, ok, page_query};
use crate::app::{Caller, Core};
use crate::error::AppError;
use crate::store::MessageRow;

fn message_view(m: &MessageRow) -> Json {
    json!({
        "id": m.id,
        "channel": m.message.channel.as_str(),
        "recipient": m.message.recipient,
        "subject": m.message.subject,
        "cause": m.message.cause,
        "record_id": m.message.record_id,
        "created_at": m.message.created_at.to_string(),
        "status": m.status.as_str(),
        "attempts": m.attempts,
        "next_attempt_at": (m.status == crate::store::MessageStatus::Pending)
            .then(|| m.next_attempt_at.to_string()),
        "sent_at": m.sent_at.map(|t| t.to_string()),
        "last_error": m.last_error,
    })
}

async fn messages(
    core: &Core,
    caller: &Caller,
    after: u64,
    limit: usize,
) -> Result<Vec<MessageRow>, AppError> {
    let store = core.store().clone();
    let tenant = caller.tenant.get();
    tokio::task::spawn_blocking(move || store.messages(tenant, after, limit))
        .await
        .map_err(|_| AppError::internal())?
        .map_err(AppError::from)
}

/// `GET /v1/outbox?after=&limit=`: oldest first.
pub(crate) async fn list(
    State(core): State<Core>,
    caller: Caller,
    query: PageResult,
) -> Result<Response, AppError> {
    let q = page_query(query)?;
    let limit = q.limit.unwrap_or(50).min(MAX_PAGE);
    let rows = messages(&core, &caller, q.after.unwrap_or(0), limit + 1).await?;
    q.page(rows.iter().map(|m| (m.id, message_view(m)))).map(ok)
}

/// `GET /v1/outbox/{id}`.
pub(crate) async fn get(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id("message", &id)?;
    let rows = messages(&core, &caller, id.saturating_sub(1), 1).await?;
    rows.iter()
        .find(|m| m.id == id)
        .map(|m| ok(message_view(m)))
        .ok_or_else(|| AppError::not_found("message", id))
}
