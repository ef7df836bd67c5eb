//! Asynchronous enrollment results (monitor topics `card`, `user_image`, `template`;
//! online `card_create.fcgi` and its siblings): they end the terminal's pending
//! enrollment.

use serde_json::Value as Json;

use super::sender::Sender;
use crate::app::Core;

/// An asynchronous enrollment result: ends the terminal's pending enrollment.
pub(super) async fn enrollment_result(core: &Core, from: &Sender, doc: &Json) {
    match core.enrollments().pending_on(from.tenant, from.terminal) {
        Some(enrollment) => {
            let status = crate::enroll::complete(core, &enrollment, doc).await;
            tracing::info!(terminal = %from.terminal, enrollment = enrollment.id, ?status, "enrollment result");
        }
        None => {
            tracing::warn!(terminal = %from.terminal, "enrollment result without a pending enrollment ignored");
        }
    }
}
