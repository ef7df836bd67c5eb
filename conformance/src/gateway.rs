//! The gateway: the run's one way to the terminal. An HTTP proxy on a loopback port that
//! the cases and the workflow core talk to instead of the terminal itself. Every request
//! passes the [guard](crate::custody::guard) first (a refused one never reaches the
//! terminal and is answered with the device's error envelope, naming the guard); with
//! `--record` every exchange is also written to the recording.
//!
//! The terminal's callbacks (monitor, online requests) do not pass here: they go from
//! the terminal to the core's receiver directly.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::custody::guard::Guard;
use crate::record::{Exchange, Recorder};

#[derive(Debug, Clone)]
struct Gateway {
    target: String,
    http: reqwest::Client,
    guard: Option<Guard>,
    recorder: Option<Recorder>,
}

async fn forward(
    State(gw): State<Gateway>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = uri.query().unwrap_or("");
    let command = uri
        .path()
        .trim_start_matches('/')
        .strip_suffix(".fcgi")
        .unwrap_or("");
    if let Some(guard) = &gw.guard
        && !command.is_empty()
        && let Err(why) = guard.admit(command, query, &body)
    {
        let mut reply = (
            StatusCode::BAD_REQUEST,
            json!({"error": format!("acs-conformance guard: {why}"), "code": 1}).to_string(),
        )
            .into_response();
        reply.headers_mut().insert(
            "content-type",
            axum::http::HeaderValue::from_static("application/json"),
        );
        return reply;
    }
    let url = if query.is_empty() {
        format!("{}{}", gw.target, uri.path())
    } else {
        format!("{}{}?{query}", gw.target, uri.path())
    };
    let mut req = gw.http.request(method.clone(), &url).body(body.to_vec());
    for name in ["content-type", "cookie"] {
        if let Some(v) = headers.get(name) {
            req = req.header(name, v);
        }
    }
    let reply = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_GATEWAY,
                crate::redact::redact(&format!("acs-conformance gateway: {e}")),
            )
                .into_response();
        }
    };
    let status = reply.status();
    let response_type = reply
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let set_cookie = reply.headers().get("set-cookie").cloned();
    let bytes = reply.bytes().await.unwrap_or_default();
    if let Some(recorder) = &gw.recorder {
        recorder.write(Exchange {
            method: &method,
            uri: &uri,
            headers: &headers,
            body: &body,
            status: status.as_u16(),
            response_type: &response_type,
            response: &bytes,
        });
    }
    let mut response = (status, bytes.to_vec()).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&response_type)
        && !response_type.is_empty()
    {
        response.headers_mut().insert("content-type", v);
    }
    if let Some(cookie) = set_cookie {
        response.headers_mut().insert("set-cookie", cookie);
    }
    response
}

/// Starts a gateway to the terminal at `target`, guarded by `guard` and recording to
/// `recorder` when given; answers its base URL. It serves until the process ends.
pub async fn start(
    target: &str,
    guard: Option<Guard>,
    recorder: Option<Recorder>,
) -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let gw = Gateway {
        target: target.trim_end_matches('/').to_owned(),
        http: reqwest::Client::new(),
        guard,
        recorder,
    };
    let app = axum::Router::new().fallback(forward).with_state(gw);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}
