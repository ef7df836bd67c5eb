//! `remote_enroll`, `cancel_remote_enroll` and `enroller_state` (docs/device-api.md §5).
//! Synchronous enrollment holds the request open until the capture ends; asynchronous
//! enrollment answers `{}` at once and a tracked background task captures, saves and
//! queues the result callbacks.

use serde_json::{Map, Value as Json, json};

use super::{ApiError, BoxFuture, Call, Reply, members};
use crate::enroll::{self, Captured, EnrollFailure, EnrollRequest};
use crate::terminal::Terminal;

pub(super) fn remote_enroll<'a>(call: &'a Call<'_>) -> BoxFuture<'a> {
    Box::pin(async move {
        let body = call.json()?;
        let request = EnrollRequest::parse(call.device, members(body)?)?;
        let terminal = call.terminal;
        let slot = terminal.enroller.begin(request.kind, &terminal.shutdown)?;
        tracing::info!(kind = ?request.kind, sync = request.sync, save = request.save, "remote enrollment started");
        if request.sync {
            let result = run(terminal, &request, &slot.cancelled()).await;
            drop(slot);
            Ok(Reply::Json(sync_reply(terminal, &request, &result)))
        } else {
            let terminal = terminal.clone();
            terminal.tasks.clone().spawn(async move {
                let result = run(&terminal, &request, &slot.cancelled()).await;
                // What was saved is on disk before anyone is told about it.
                let device = &terminal.device;
                if let Err(why) = device.wait_durable(device.change_mark()).await {
                    tracing::warn!(error = %why, "enrollment not on disk; reporting it anyway");
                }
                if let Ok(captured) = &result {
                    for callback in enroll::result_callbacks(&terminal.device, &request, captured) {
                        terminal.outbox.send(callback);
                    }
                }
                // Freed only now, so "not running" means every result callback is queued.
                drop(slot);
            });
            Ok(Reply::Json(json!({})))
        }
    })
}

/// Captures, saves when asked, and records the outcome in the enroller state.
async fn run(
    terminal: &Terminal,
    request: &EnrollRequest,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Captured, EnrollFailure> {
    let countdown = request.counts_down().then(|| {
        terminal
            .scheduler
            .now()
            .saturating_add(std::time::Duration::from_secs(u64::from(request.countdown)))
    });
    terminal
        .display
        .enrollment_started(request.kind, request.message.as_deref(), countdown);
    let mut result = enroll::capture(
        &terminal.device,
        &terminal.person,
        &terminal.scheduler,
        request,
        cancel,
    )
    .await;
    if let (Ok(captured), true, Some(user)) = (&result, request.save, request.user_id) {
        if cancel.is_cancelled() {
            result = Err(EnrollFailure::Cancelled);
        } else if let Err(e) = enroll::save(&terminal.device, user, captured) {
            result = Err(e);
        }
    }
    terminal.enroller.finish(request.kind, &result);
    terminal.display.enrollment_finished(
        request.kind,
        result
            .as_ref()
            .err()
            .map(EnrollFailure::error_code)
            .as_deref(),
    );
    match &result {
        Ok(_) => tracing::info!(kind = ?request.kind, "remote enrollment captured"),
        Err(e) => {
            tracing::info!(kind = ?request.kind, error = %e.error_code(), "remote enrollment ended without result")
        }
    }
    result
}

fn sync_reply(
    terminal: &Terminal,
    request: &EnrollRequest,
    result: &Result<Captured, EnrollFailure>,
) -> Json {
    let mut reply = Map::new();
    match result {
        Ok(captured) => {
            reply.insert("success".into(), json!(true));
            reply.insert("user_id".into(), json!(request.user_id.unwrap_or(0)));
            reply.insert(
                "device_id".into(),
                json!(terminal.device.identity().device_id),
            );
            reply.extend(enroll::captured_members(captured));
        }
        Err(failure) => {
            reply.insert("success".into(), json!(false));
            reply.insert("error".into(), json!(failure.error_code()));
            if let EnrollFailure::FaceExists(owner) = failure {
                reply.insert("info".into(), json!({"match_user_id": owner}));
            }
        }
    }
    Json::Object(reply)
}

pub(super) fn cancel(call: &Call<'_>) -> Result<Reply, ApiError> {
    let was_running = call.terminal.cancel_enrollment();
    tracing::info!(was_running, "remote enrollment cancelled");
    Ok(Reply::Empty)
}

pub(super) fn state(call: &Call<'_>) -> Result<Reply, ApiError> {
    Ok(Reply::Json(call.terminal.enroller_state()))
}
