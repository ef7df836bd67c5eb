//! The receiver's listener: reads what a terminal sends (the body within its limit, the
//! peer's address), hands it to the monitor or online part, and writes their [`Answer`]
//! as the HTTP response. The only part of the receiver that knows HTTP.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Answer;
use crate::app::Core;

/// Largest body accepted from a terminal (biometric images are the largest).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The receiver's router (serve it with connect info, see [`serve`]).
pub fn router(core: Core) -> Router {
    Router::new()
        .fallback(receive)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(core)
}

/// Serves the receiver on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    core: Core,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(core).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn receive(
    State(core): State<Core>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    // Over the limit (or a broken body): the receiver's own error shape, not axum's text.
    let Ok(body) = body else {
        tracing::warn!(%peer, "terminal request body over the limit refused");
        return respond(Answer::refused(
            413,
            &format!("the body must be at most {MAX_BODY_BYTES} bytes"),
        ));
    };
    let last = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
    match last.strip_suffix(".fcgi") {
        Some(command) => {
            respond(super::online::online(&core, peer, command, uri.query(), &body).await)
        }
        None => respond(super::monitor::monitor(&core, peer, &last, &body).await),
    }
}

/// The HTTP response of an answer.
fn respond(answer: Answer) -> Response {
    match answer {
        Answer::Json(body) => (StatusCode::OK, axum::Json(body)).into_response(),
        Answer::RawJson(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Answer::Empty => StatusCode::OK.into_response(),
        Answer::Refused { status, why } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            axum::Json(json!({"error": why})),
        )
            .into_response(),
    }
}
