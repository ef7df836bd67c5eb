//! The fleet overview on the fleet control port: `/_fleet/ui` lists every terminal of a
//! fleet compactly (model, device id, power and connection, screen text, LED, latest
//! decision) with a link to each terminal's own panel, a page at a time so that a fleet of
//! a thousand stays light. `/_fleet/ui/state?offset=&limit=` serves one page as JSON; the
//! page's buttons post to the fleet control API (`/_fleet/power`, `/_fleet/faults`, …),
//! which keeps answering while terminals are powered off.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::{PANEL_CSS, asset, view};
use crate::terminal::Terminal;

/// The overview page.
pub(crate) const OVERVIEW_HTML: &str = include_str!("assets/overview.html");
/// The overview's script.
pub(crate) const OVERVIEW_JS: &str = include_str!("assets/overview.js");

/// Terminals per page when the request does not say.
pub(crate) const DEFAULT_PAGE: usize = 50;
/// Most terminals one page may ask for.
pub(crate) const MAX_PAGE: usize = 500;

/// Which page of the fleet to show.
#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

/// The overview's routes, served next to the fleet control API.
pub(crate) fn routes(terminals: Arc<[Terminal]>) -> Router {
    Router::new()
        .route(
            "/_fleet/ui",
            get(|| async { asset("text/html; charset=utf-8", OVERVIEW_HTML) }),
        )
        .route(
            "/_fleet/ui/panel.css",
            get(|| async { asset("text/css; charset=utf-8", PANEL_CSS) }),
        )
        .route(
            "/_fleet/ui/overview.js",
            get(|| async { asset("text/javascript; charset=utf-8", OVERVIEW_JS) }),
        )
        .route("/_fleet/ui/state", get(state))
        .with_state(terminals)
}

/// `GET /_fleet/ui/state?offset=&limit=`: one page of terminal summaries and the totals.
async fn state(State(terminals): State<Arc<[Terminal]>>, Query(page): Query<Page>) -> Response {
    let limit = page.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let offset = page.offset.min(terminals.len());
    let end = offset.saturating_add(limit).min(terminals.len());
    let powered = terminals.iter().filter(|t| t.display.powered()).count();
    let items: Vec<_> = terminals[offset..end]
        .iter()
        .enumerate()
        .map(|(i, t)| view::summary_json(offset + i, t))
        .collect();
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({
            "total": terminals.len(),
            "powered": powered,
            "offset": offset,
            "limit": limit,
            "terminals": items,
        })),
    )
        .into_response()
}
