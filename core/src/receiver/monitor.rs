//! Monitor notifications (`POST <path>/<topic>`, JSON): `dao` access-log inserts become
//! access events; enrollment topics end a pending enrollment; the other topics are
//! acknowledged.

use std::net::SocketAddr;

use serde_json::{Value as Json, json};

use super::Answer;
use super::enrollment::enrollment_result;
use super::sender::sender;
use crate::app::Core;
use crate::device_events::{json_i64, record_access_log};

pub(super) async fn monitor(core: &Core, peer: SocketAddr, topic: &str, body: &[u8]) -> Answer {
    let Ok(doc) = serde_json::from_slice::<Json>(body) else {
        tracing::warn!(%peer, topic, "monitor notification is not JSON");
        return Answer::refused(400, "the body must be JSON");
    };
    let from = match sender(core, json_i64(doc.get("device_id")), peer).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if matches!(topic, "card" | "user_image" | "template" | "face_template") {
        enrollment_result(core, &from, &doc).await;
    } else if topic == "dao" {
        let Some(changes) = doc.get("object_changes").and_then(Json::as_array) else {
            return Answer::refused(400, "object_changes is required");
        };
        let inserted_logs = changes.iter().filter_map(|change| {
            (change.get("object").and_then(Json::as_str) == Some("access_logs")
                && change.get("type").and_then(Json::as_str) == Some("inserted"))
            .then(|| change.get("values"))
            .flatten()
        });
        // A malformed row is the terminal's mistake (400, nothing recorded), not ours to retry.
        if inserted_logs
            .clone()
            .any(|v| json_i64(v.get("id")).is_none())
        {
            tracing::warn!(terminal = %from.terminal, "access log without id refused");
            return Answer::refused(400, "every access log needs an integer id");
        }
        for values in inserted_logs {
            if let Err(e) = record_access_log(core, from.tenant, from.terminal, values).await {
                tracing::warn!(terminal = %from.terminal, error = %e, "access log not recorded");
                return Answer::refused(503, "try again");
            }
        }
    } else {
        tracing::debug!(terminal = %from.terminal, topic, "monitor notification");
    }
    Answer::Json(json!({}))
}
