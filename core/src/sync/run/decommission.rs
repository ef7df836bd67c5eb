//! A terminal deleted from the core: what the core wrote to its device is removed – every
//! person with their credentials and photo, the rules, the holidays, the core's entry as
//! online server – and the device's monitor and online settings stop pointing at the
//! core; then its applied record is cleared. A device that cannot be reached is tried
//! again with backoff; when it never answers, the log says clearly what stays on it.

use serde_json::json;

use super::SyncOptions;
use super::applied::{load_applied, record};
use crate::app::Core;
use crate::domain::{TenantId, TerminalId};
use crate::retry::Backoff;
use crate::sync::apply::{SERVER_DEVICE_ID, apply};
use crate::sync::image::{DeviceImage, SubjectImage};
use crate::sync::plan::plan;
use crate::terminal::TerminalClient;

/// How often a deleted terminal's device is tried before it is given up.
const ATTEMPTS: u32 = 5;

/// Removes from the device of the deleted `terminal` everything the core applied to it.
pub(super) async fn decommission(
    core: Core,
    tenant: TenantId,
    terminal: TerminalId,
    client: TerminalClient,
    options: SyncOptions,
) {
    let (applied, ..) = load_applied(&core, tenant, terminal).await;
    if applied.is_empty() {
        return;
    }
    let mut backoff = Backoff::new(options.retry_initial, options.retry_max);
    for attempt in 1..=ATTEMPTS {
        match clear(&core, tenant, &client, &applied).await {
            Ok(()) => {
                let forgotten = applied.keys().map(|k| (k.clone(), None)).collect();
                record(&core, tenant, terminal, forgotten).await;
                tracing::info!(%terminal, subjects = applied.len(), "deleted terminal cleared");
                return;
            }
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(%terminal, attempt, error = %e, "the deleted terminal could not be cleared yet; trying again");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => {
                tracing::error!(%terminal, error = %e, subjects = applied.len(),
                    "the deleted terminal could not be cleared: the people, credentials and rules the core wrote stay on the device");
            }
        }
    }
}

async fn clear(
    core: &Core,
    tenant: TenantId,
    client: &TerminalClient,
    applied: &DeviceImage,
) -> Result<(), crate::sync::apply::ApplyError> {
    for step in plan(&DeviceImage::new(), applied) {
        // Removals write no times: the clock's skew does not matter.
        apply(client, core, tenant, &step, 0).await?;
    }
    // The monitor and online settings are the core's only if it set them.
    let set_up = applied
        .values()
        .flat_map(SubjectImage::candidates)
        .any(|image| matches!(image, SubjectImage::Setup(_)));
    if !set_up {
        return Ok(());
    }
    client
        .destroy_objects("devices", json!({"devices": {"id": SERVER_DEVICE_ID}}))
        .await?;
    client
        .set_configuration(json!({
            "monitor": {"hostname": ""},
            "general": {"online": "0", "local_identification": "1"},
            "online_client": {"server_id": ""},
        }))
        .await?;
    Ok(())
}
