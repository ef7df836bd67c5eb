//! `/v1/api-keys`: a tenant's keys. Issue a new one (the secret is in that reply only),
//! list them (prefixes, never secrets), revoke one. Rotation is issue → switch → revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::input::{Input, path_id};
use crate::app::{Caller, Core};
use crate::error::AppError;
use crate::store::ApiKeyRow;

fn key_view(k: &ApiKeyRow) -> Json {
    json!({"id": k.id, "label": k.label, "prefix": k.prefix, "created_at": k.created_at.to_string(),
           "revoked_at": k.revoked_at.map(|t| t.to_string())})
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyIn {
    #[serde(default)]
    label: String,
}

/// `POST /v1/api-keys`.
pub(crate) async fn issue(
    State(core): State<Core>,
    caller: Caller,
    input: Input<KeyIn>,
) -> Result<Response, AppError> {
    let label = input.body.label.trim().to_owned();
    if label.chars().count() > 200 {
        return Err(AppError::invalid(
            "label",
            "label must be at most 200 characters",
        ));
    }
    let (row, key) = core.issue_api_key(caller.tenant, &label).await?;
    let mut view = key_view(&row);
    view["key"] = json!(key.secret);
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

/// `GET /v1/api-keys`.
pub(crate) async fn list(State(core): State<Core>, caller: Caller) -> Result<Response, AppError> {
    let keys = core.api_keys(caller.tenant).await?;
    Ok(axum::Json(
        json!({"items": keys.iter().map(key_view).collect::<Vec<_>>(), "next_after": null}),
    )
    .into_response())
}

/// `DELETE /v1/api-keys/{id}`: the key stops working at once.
pub(crate) async fn revoke(
    State(core): State<Core>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id("api key", &id)?;
    core.revoke_api_key(caller.tenant, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
