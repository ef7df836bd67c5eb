//! Applying a pass's planned steps: each subject recorded in doubt before its step and
//! settled after; new people pushed many per call, a refused batch again one by one.

use std::ops::ControlFlow;

use super::{Ended, TerminalTask};
use crate::sync::apply::{ApplyError, apply, apply_new_users};
use crate::sync::image::{DeviceImage, SubjectImage, UserImage};
use crate::sync::plan::Step;
use crate::sync::run::applied::{doubt, settle};

/// How many new people one batch pushes.
const NEW_USERS_PER_BATCH: usize = 100;

/// What applying a pass's steps left.
pub(super) struct Applied {
    /// Steps not applied.
    pub(super) remaining: usize,
    /// The last failure, if a step failed.
    pub(super) failure: Option<ApplyError>,
}

/// How pushing a batch of new people went.
enum Batch {
    /// Every one of them is on the device.
    Pushed,
    /// The device refused the batch: one of them is at fault.
    Refused,
    /// The device could not be reached: the pass ends.
    Unreachable(ApplyError),
}

/// Applies `steps` in order, recording each subject in doubt before and settled after.
/// New people go many per call; a refused batch is pushed again one by one. A step the
/// device refuses is skipped (and reported); an unreachable device ends the pass.
pub(super) async fn apply_steps(
    task: &TerminalTask,
    applied: &mut DeviceImage,
    steps: &[Step],
    skew: i64,
) -> Result<Applied, Ended> {
    let mut outcome = Applied {
        remaining: steps.len(),
        failure: None,
    };
    let mut index = 0;
    while index < steps.len() {
        if task.stop.is_cancelled() {
            return Err(Ended);
        }
        let batch = new_users_batch(&steps[index..]);
        if batch.len() > 1 {
            match push_new_users(task, applied, &batch, skew).await {
                Batch::Pushed => {
                    outcome.remaining -= batch.len();
                    index += batch.len();
                    continue;
                }
                Batch::Unreachable(e) => {
                    outcome.failure = Some(e);
                    break;
                }
                Batch::Refused => {}
            }
        }
        let end = index + batch.len().max(1);
        if apply_one_by_one(task, applied, &steps[index..end], &mut outcome, skew)
            .await
            .is_break()
        {
            break;
        }
        index = end;
    }
    Ok(outcome)
}

/// The steps at the start of `steps` that add people the terminal has no record of (at
/// most [`NEW_USERS_PER_BATCH`]).
fn new_users_batch(steps: &[Step]) -> Vec<&Step> {
    steps
        .iter()
        .take_while(|s| new_user(s).is_some())
        .take(NEW_USERS_PER_BATCH)
        .collect()
}

/// The person a step adds to a terminal that has no record of them.
fn new_user(step: &Step) -> Option<&UserImage> {
    match step {
        Step::Put {
            desired: SubjectImage::User(user),
            applied: None,
            ..
        } => Some(&**user),
        _ => None,
    }
}

/// Pushes the new people of `batch` in one call.
async fn push_new_users(
    task: &TerminalTask,
    applied: &mut DeviceImage,
    batch: &[&Step],
    skew: i64,
) -> Batch {
    let users: Vec<&UserImage> = batch.iter().filter_map(|s| new_user(s)).collect();
    doubt(task, applied, batch).await;
    match apply_new_users(&task.client, &task.core, task.tenant, &users, skew).await {
        Ok(()) => {
            settle(task, applied, batch).await;
            Batch::Pushed
        }
        Err(e) if e.is_retryable() => {
            tracing::warn!(terminal = %task.terminal, people = batch.len(), error = %e, "sync batch failed");
            Batch::Unreachable(e)
        }
        Err(e) => {
            tracing::warn!(terminal = %task.terminal, error = %e, "sync batch refused; pushing one by one");
            Batch::Refused
        }
    }
}

/// Applies `steps` one at a time; breaks on a failure worth retrying (the device is
/// unreachable), after recording it in `outcome`.
async fn apply_one_by_one(
    task: &TerminalTask,
    applied: &mut DeviceImage,
    steps: &[Step],
    outcome: &mut Applied,
    skew: i64,
) -> ControlFlow<()> {
    for step in steps {
        doubt(task, applied, &[step]).await;
        match apply(&task.client, &task.core, task.tenant, step, skew).await {
            Ok(()) => {
                settle(task, applied, &[step]).await;
                outcome.remaining -= 1;
            }
            Err(e) => {
                let retryable = e.is_retryable();
                tracing::warn!(terminal = %task.terminal, subject = step.key(), error = %e, "sync step failed");
                outcome.failure = Some(e);
                if retryable {
                    return ControlFlow::Break(());
                }
            }
        }
    }
    ControlFlow::Continue(())
}
