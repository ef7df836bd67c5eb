//! Asynchronous enrollment results (monitor topics `card`, `user_image`, `template`;
//! online `card_create.fcgi` and its siblings): they end the terminal's pending
//! enrollment.

use serde_json::Value as Json;

use super::sender::Sender;
use crate::app::Core;

/// An asynchronous enrollment result: ends the terminal's pending enrollment.
pub(super) async fn enrollment_result(core: &Core, from: &Sender, doc: &Json) {
    let pending = core
        .enrollments()
        .pending_on(from.tenant, from.terminal, core.now())
        .await;
    match pending {
        Ok(Some(enrollment)) => match crate::enroll::complete(core, &enrollment, doc).await {
            Ok(status) => {
                tracing::info!(terminal = %from.terminal, enrollment = enrollment.id, ?status, "enrollment result");
            }
            Err(e) => {
                tracing::error!(terminal = %from.terminal, enrollment = enrollment.id, error = %e.detail, "enrollment result not recorded");
            }
        },
        Err(e) => {
            tracing::error!(terminal = %from.terminal, error = %e.detail, "enrollment result: pending enrollment unreadable");
        }
        Ok(None) => {
            tracing::warn!(terminal = %from.terminal, "enrollment result without a pending enrollment ignored");
        }
    }
}
