//! The web panel: each virtual terminal as a person in front of it would see it – model,
//! device id, operating mode, power and connection, the screen text and the enrollment
//! countdown, the LED, the door, the last access decisions and callback deliveries – with
//! buttons to act as that person.
//!
//! Served on the terminal's own port under `/_sim/ui` (and, for a fleet, an overview on
//! the fleet control port under `/_fleet/ui`, see [`overview`]). The page, its style sheet
//! and its script are built into the binary (`assets/`), fetch nothing from the network
//! and need no set-up. The panel adds no behaviour of its own: every button posts to the
//! same `/_sim/` (or `/_fleet/`) control API the library and other tools use; the panel's
//! own endpoints only read – `/_sim/ui/state` (the terminal's picture as JSON, see
//! [`view`]) and `/_sim/ui/events` (the live stream of that picture, see [`stream`]).

pub(crate) mod overview;
pub(crate) mod stream;
pub(crate) mod view;

pub(crate) use view::screen_json;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::terminal::Terminal;

/// The terminal panel's page.
pub(crate) const PANEL_HTML: &str = include_str!("assets/panel.html");
/// The style sheet shared by the terminal panel and the fleet overview.
pub(crate) const PANEL_CSS: &str = include_str!("assets/panel.css");
/// The terminal panel's script.
pub(crate) const PANEL_JS: &str = include_str!("assets/panel.js");

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// A built-in asset; never cached, so a rebuilt simulator is seen at once.
pub(crate) fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// The panel's routes on a terminal's own listener (merged into [`crate::api::router`]).
pub(crate) fn routes() -> Router<std::sync::Arc<Terminal>> {
    Router::new()
        .route("/_sim/ui", get(|| async { asset(HTML, PANEL_HTML) }))
        .route("/_sim/ui/", get(|| async { asset(HTML, PANEL_HTML) }))
        .route(
            "/_sim/ui/panel.css",
            get(|| async { asset(CSS, PANEL_CSS) }),
        )
        .route("/_sim/ui/panel.js", get(|| async { asset(JS, PANEL_JS) }))
        .route("/_sim/ui/state", get(state))
        .route("/_sim/ui/events", get(stream::events))
}

/// `GET /_sim/ui/state`.
async fn state(State(terminal): State<std::sync::Arc<Terminal>>) -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(view::terminal_json(&terminal)),
    )
        .into_response()
}
