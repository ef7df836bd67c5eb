//! The tenant's webhook endpoints: creating one (its signing secret returned once; a
//! repeated create with the same `Idempotency-Key` answers the same endpoint),
//! listing, changing, re-enabling, deleting, rotating the secret; recording each delivery
//! attempt and disabling an endpoint after repeated failure, with a `webhook.disabled`
//! event to the tenant's other endpoints and an audit entry.
//!
//! Changes of one core's endpoints take turns (the delivery task's read-modify-write of an
//! endpoint never overwrites an integrator's change made meanwhile). The core remembers
//! which tenants have an enabled endpoint, so that the access events of the others (most
//! of them, hundreds a second) cost neither a fan-out nor a wake-up of the delivery task.

use std::sync::PoisonError;

use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};
use rand::RngCore as _;
use serde_json::json;

use super::{Caller, Core, Idempotency, Plan, blocking};
use crate::domain::TenantId;
use crate::domain::webhook::{
    DISABLE_AFTER_FAILED_MESSAGES, WEBHOOK_DISABLED, check_description, check_event_types,
    check_url, is_event_type,
};
use crate::error::AppError;
use crate::store::{
    AttemptOutcome, AuditEntry, Change, DeliveryRow, IdempotentReply, Kind, NewDelivery, Store,
    WebhookEvent, WebhookRow, WebhookWrite,
};

/// How long the secret before a rotation keeps signing when the request does not say.
pub const KEEP_PREVIOUS_SECRET: SignedDuration = SignedDuration::from_hours(24);

/// The longest the previous secret may keep signing after a rotation.
pub const KEEP_PREVIOUS_SECRET_MAX: SignedDuration = SignedDuration::from_hours(24 * 7);

/// The fields of a new endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    /// Where events are posted.
    pub url: String,
    /// The event types it receives.
    pub event_types: Vec<String>,
    /// What the integrator calls it.
    pub description: String,
}

/// A change of an endpoint: the fields given are replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPatch {
    /// A new URL.
    pub url: Option<String>,
    /// New event types.
    pub event_types: Option<Vec<String>>,
    /// A new description.
    pub description: Option<String>,
    /// `true` re-enables a disabled endpoint (its count of failed messages is reset);
    /// `false` disables it.
    pub enabled: Option<bool>,
}

/// A fresh signing secret: `whsec_` and 32 random base64url characters.
fn new_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The tenant's endpoint `id`, or not found.
fn endpoint(store: &dyn Store, tenant: u64, id: u64) -> Result<WebhookRow, AppError> {
    store
        .webhooks(tenant)?
        .into_iter()
        .find(|w| w.id == id)
        .ok_or_else(|| AppError::not_found("webhook", id))
}

/// An audit entry for `action` on endpoint `id` by `actor`.
fn audit(action: &str, id: u64, actor: &str) -> AuditEntry {
    AuditEntry {
        action: action.to_owned(),
        kind: Kind::Webhook,
        record_id: Some(id),
        actor: actor.to_owned(),
    }
}

/// A fresh webhook event id: `evt_` and 32 random hex digits.
fn new_event_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("evt_{hex}")
}

/// The change that disables `row` (already holding its new state) for `reason`: the
/// endpoint, the audit entry and the `webhook.disabled` event to the other endpoints.
fn disabling(row: &WebhookRow, reason: &str, actor: &str, now: Timestamp) -> Change {
    Change {
        webhooks: vec![WebhookWrite::Put(row.clone())],
        audit: vec![audit("webhook.disabled", row.id, actor)],
        webhook_events: vec![WebhookEvent {
            id: new_event_id(),
            event_type: WEBHOOK_DISABLED.to_owned(),
            created_at: now,
            data: json!({"webhook_id": row.id, "url": row.url, "reason": reason}),
            due_at: now,
            access_event: None,
        }],
        ..Change::default()
    }
}

impl Core {
    /// Runs `f` on a blocking thread, taking turns with every other change of endpoints,
    /// and notes afterwards whether the tenant has an enabled endpoint.
    async fn edit_webhooks<R: Send + 'static>(
        &self,
        tenant: u64,
        f: impl FnOnce(&dyn Store, Timestamp) -> Result<R, AppError> + Send + 'static,
    ) -> Result<R, AppError> {
        let core = self.clone();
        let result = blocking(move || {
            let _turn = core
                .inner
                .webhook_edits
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let result = f(&**core.store(), core.now());
            let mut known = core
                .inner
                .webhook_tenants
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match core.store().webhooks(tenant) {
                Ok(rows) => {
                    known.insert(tenant, rows.iter().any(|w| w.enabled));
                }
                // Read again at the next use.
                Err(_) => {
                    known.remove(&tenant);
                }
            }
            result
        })
        .await;
        // A change may have appended a `webhook.disabled` event.
        self.outbox_changed();
        result
    }

    /// Before a commit: when the tenant has an enabled endpoint, adds the webhook event
    /// of each access event of the plan whose type endpoints may subscribe to (the commit
    /// fans them out to the subscribed endpoints), due now on the core's clock.
    pub(super) fn prepare_webhook_events(
        &self,
        tenant: TenantId,
        plan: &mut Plan,
    ) -> Result<(), AppError> {
        if plan.change.access_events.is_empty() {
            return Ok(());
        }
        let tenant = tenant.get();
        let listening = {
            // Held while reading the store, so that an edit noting a change after its
            // commit is never overwritten by a value read before it.
            let mut known = self
                .inner
                .webhook_tenants
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match known.get(&tenant) {
                Some(listening) => *listening,
                None => {
                    let listening = self.store().webhooks(tenant)?.iter().any(|w| w.enabled);
                    known.insert(tenant, listening);
                    listening
                }
            }
        };
        if !listening {
            return Ok(());
        }
        let now = self.now();
        let change = &mut plan.change;
        for (i, event) in change.access_events.iter().enumerate() {
            if let Some(event_type) = event.data["type"].as_str().filter(|t| is_event_type(t)) {
                change.webhook_events.push(WebhookEvent {
                    id: new_event_id(),
                    event_type: event_type.to_owned(),
                    created_at: event.occurred_at,
                    data: event.data.clone(),
                    due_at: now,
                    access_event: Some(i),
                });
            }
        }
        Ok(())
    }

    /// Creates an endpoint; the returned row holds its secret, shown to the caller once.
    /// With an `Idempotency-Key`, a repeated request answers the endpoint the first one
    /// made (with its secret as it is now: the store keeps only the endpoint's id with the
    /// key, never the secret in clear).
    pub async fn create_webhook(
        &self,
        caller: &Caller,
        new: NewWebhook,
        idempotency: Option<Idempotency>,
    ) -> Result<WebhookRow, AppError> {
        let url = check_url(&new.url)?;
        let event_types = check_event_types(&new.event_types)?;
        let description = check_description(&new.description)?;
        let (tenant, actor) = (caller.tenant.get(), caller.key_prefix.clone());
        self.edit_webhooks(tenant, move |store, now| {
            if let Some(key) = &idempotency
                && let Some(reply) = store.idempotent_reply(tenant, &key.key)?
            {
                if reply.fingerprint != key.fingerprint {
                    return Err(AppError::idempotency_mismatch(&key.key));
                }
                let id = serde_json::from_str::<serde_json::Value>(&reply.body)
                    .ok()
                    .and_then(|b| b["webhook_id"].as_u64())
                    .ok_or_else(|| {
                        tracing::error!("an idempotency reply of a webhook create without its id");
                        AppError::internal()
                    })?;
                return endpoint(store, tenant, id);
            }
            let id = store.allocate_ids(1)?[0];
            let row = WebhookRow {
                id,
                url,
                description,
                event_types,
                secret: new_secret(),
                previous_secret: None,
                enabled: true,
                disabled_reason: None,
                failed_messages: 0,
                created_at: now,
                updated_at: now,
            };
            store.commit(
                tenant,
                Change {
                    webhooks: vec![WebhookWrite::Put(row.clone())],
                    audit: vec![audit("webhook.created", id, &actor)],
                    idempotency: idempotency.map(|key| IdempotentReply {
                        key: key.key,
                        fingerprint: key.fingerprint,
                        status: 201,
                        body: json!({ "webhook_id": id }).to_string(),
                    }),
                    ..Change::default()
                },
            )?;
            Ok(row)
        })
        .await
    }

    /// The tenant's endpoints, by id.
    pub async fn webhooks(&self, caller: &Caller) -> Result<Vec<WebhookRow>, AppError> {
        let (store, tenant) = (self.store().clone(), caller.tenant.get());
        blocking(move || Ok(store.webhooks(tenant)?)).await
    }

    /// The tenant's endpoint `id`.
    pub async fn webhook(&self, caller: &Caller, id: u64) -> Result<WebhookRow, AppError> {
        let (store, tenant) = (self.store().clone(), caller.tenant.get());
        blocking(move || endpoint(&*store, tenant, id)).await
    }

    /// Changes the endpoint `id`; disabling it sends `webhook.disabled` to the others.
    pub async fn update_webhook(
        &self,
        caller: &Caller,
        id: u64,
        patch: WebhookPatch,
    ) -> Result<WebhookRow, AppError> {
        let url = patch.url.as_deref().map(check_url).transpose()?;
        let event_types = patch
            .event_types
            .as_deref()
            .map(check_event_types)
            .transpose()?;
        let description = patch
            .description
            .as_deref()
            .map(check_description)
            .transpose()?;
        let (tenant, actor) = (caller.tenant.get(), caller.key_prefix.clone());
        self.edit_webhooks(tenant, move |store, now| {
            let mut row = endpoint(store, tenant, id)?;
            let was_enabled = row.enabled;
            row.url = url.unwrap_or(row.url);
            row.event_types = event_types.unwrap_or(row.event_types);
            row.description = description.unwrap_or(row.description);
            row.updated_at = now;
            let change = match patch.enabled {
                Some(false) if was_enabled => {
                    row.enabled = false;
                    row.disabled_reason = Some("disabled by the integrator".to_owned());
                    disabling(&row, "disabled by the integrator", &actor, now)
                }
                Some(true) if !was_enabled => {
                    row.enabled = true;
                    row.disabled_reason = None;
                    row.failed_messages = 0;
                    Change {
                        webhooks: vec![WebhookWrite::Put(row.clone())],
                        audit: vec![audit("webhook.enabled", id, &actor)],
                        ..Change::default()
                    }
                }
                _ => Change {
                    webhooks: vec![WebhookWrite::Put(row.clone())],
                    audit: vec![audit("webhook.updated", id, &actor)],
                    ..Change::default()
                },
            };
            store.commit(tenant, change)?;
            Ok(row)
        })
        .await
    }

    /// Deletes the endpoint `id` and its delivery log; its pending messages fail.
    pub async fn delete_webhook(&self, caller: &Caller, id: u64) -> Result<(), AppError> {
        let (tenant, actor) = (caller.tenant.get(), caller.key_prefix.clone());
        self.edit_webhooks(tenant, move |store, _| {
            endpoint(store, tenant, id)?;
            store.commit(
                tenant,
                Change {
                    webhooks: vec![WebhookWrite::Delete(id)],
                    audit: vec![audit("webhook.deleted", id, &actor)],
                    ..Change::default()
                },
            )?;
            Ok(())
        })
        .await
    }

    /// Gives the endpoint `id` a new secret (returned once); the old one keeps signing
    /// beside it for `keep_previous` (none when zero).
    pub async fn rotate_webhook_secret(
        &self,
        caller: &Caller,
        id: u64,
        keep_previous: SignedDuration,
    ) -> Result<WebhookRow, AppError> {
        if keep_previous.is_negative() || keep_previous > KEEP_PREVIOUS_SECRET_MAX {
            return Err(AppError::invalid(
                "keep_previous_seconds",
                format!(
                    "keep_previous_seconds must be in 0..={}",
                    KEEP_PREVIOUS_SECRET_MAX.as_secs()
                ),
            ));
        }
        let (tenant, actor) = (caller.tenant.get(), caller.key_prefix.clone());
        self.edit_webhooks(tenant, move |store, now| {
            let mut row = endpoint(store, tenant, id)?;
            let old = std::mem::replace(&mut row.secret, new_secret());
            row.previous_secret = (!keep_previous.is_zero())
                .then(|| {
                    now.checked_add(keep_previous)
                        .ok()
                        .map(|until| (old, until))
                })
                .flatten();
            row.updated_at = now;
            store.commit(
                tenant,
                Change {
                    webhooks: vec![WebhookWrite::Put(row.clone())],
                    audit: vec![audit("webhook.secret_rotated", id, &actor)],
                    ..Change::default()
                },
            )?;
            Ok(row)
        })
        .await
    }

    /// The delivery attempts to the endpoint `id` above `after`, oldest first.
    pub async fn webhook_deliveries(
        &self,
        caller: &Caller,
        id: u64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>, AppError> {
        let (store, tenant) = (self.store().clone(), caller.tenant.get());
        blocking(move || {
            endpoint(&*store, tenant, id)?;
            Ok(store.webhook_deliveries(tenant, id, after, limit)?)
        })
        .await
    }

    /// Records a delivery attempt of the tenant's endpoint; when it gives up a message and
    /// the endpoint has now given up [`DISABLE_AFTER_FAILED_MESSAGES`] in a row, disables
    /// it in the same transaction. Whether it was disabled.
    pub async fn record_webhook_delivery(
        &self,
        tenant: u64,
        delivery: NewDelivery,
    ) -> Result<bool, AppError> {
        self.edit_webhooks(tenant, move |store, now| {
            let row = store
                .webhooks(tenant)?
                .into_iter()
                .find(|w| w.id == delivery.webhook_id);
            let mut change = match row {
                Some(mut row)
                    if delivery.outcome == AttemptOutcome::GivenUp
                        && row.enabled
                        && row.failed_messages + 1 >= DISABLE_AFTER_FAILED_MESSAGES =>
                {
                    let reason = format!(
                        "{DISABLE_AFTER_FAILED_MESSAGES} messages in a row failed every attempt"
                    );
                    row.enabled = false;
                    row.disabled_reason = Some(reason.clone());
                    row.updated_at = now;
                    tracing::warn!(
                        webhook_id = row.id,
                        "webhook endpoint disabled after repeated failure"
                    );
                    // The count is moved by the delivery recorded below.
                    disabling(&row, &reason, "system", now)
                }
                _ => Change::default(),
            };
            let disabled = !change.webhooks.is_empty();
            change.webhook_deliveries.push(delivery);
            store.commit(tenant, change)?;
            Ok(disabled)
        })
        .await
    }
}
