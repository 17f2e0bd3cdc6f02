//! Webhook endpoints as stored: their settings and sealed secrets. Which
//! secret signs, and what a change may do, is decided above; the backends
//! store it, each change with its audit row.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::{Actor, TenantId, Webhook, WebhookEventType, WebhookId};

#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a new endpoint unless the tenant has `max` already (`None`,
    /// nothing written); audited as `webhook.created`.
    async fn create_webhook(
        &self,
        tenant: TenantId,
        record: &WebhookRecord,
        max: usize,
        actor: &Actor,
    ) -> Result<Option<()>, StoreError>;
    /// The tenant's endpoints, oldest first.
    async fn list_webhooks(&self, tenant: TenantId) -> Result<Vec<WebhookRecord>, StoreError>;
    /// Replaces the endpoint's stored form with `record` (same id) if it
    /// exists; audited as `action` (`webhook.updated`,
    /// `webhook.secret_rotated`). `None` when the tenant has no such endpoint.
    async fn replace_webhook(
        &self,
        tenant: TenantId,
        record: &WebhookRecord,
        action: &'static str,
        actor: &Actor,
    ) -> Result<Option<()>, StoreError>;
    /// Deletes the endpoint; audited as `webhook.deleted`. `false` when the
    /// tenant has no such endpoint.
    async fn delete_webhook(
        &self,
        tenant: TenantId,
        id: WebhookId,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

/// An endpoint and its sealed secrets.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRecord {
    pub webhook: Webhook,
    pub sealed_secret: String,
    /// Signs too until `webhook.previous_secret_expire_time`.
    pub sealed_previous_secret: Option<String>,
}

pub(crate) fn event_types_to_json(types: &[WebhookEventType]) -> String {
    serde_json::to_string(&types.iter().map(|t| t.as_str()).collect::<Vec<_>>())
        .expect("names serialise")
}

pub(crate) fn event_types_from_json(json: &str) -> Result<Vec<WebhookEventType>, StoreError> {
    let names: Vec<String> = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("webhook event types: {e}")))?;
    names
        .iter()
        .map(|n| {
            WebhookEventType::from_db(n)
                .ok_or_else(|| StoreError::Corrupt(format!("webhook event type {n:?}")))
        })
        .collect()
}

/// The audit row of a change to an endpoint (its URL and event types; never
/// a secret).
pub(crate) fn webhook_event<'a>(
    actor: &'a Actor,
    action: &'static str,
    webhook: &Webhook,
) -> super::AuditEvent<'a> {
    super::AuditEvent {
        actor,
        action,
        subject_type: "webhook",
        subject_id: webhook.webhook_id.to_string(),
        from_state: None,
        to_state: Some(if webhook.enabled {
            "enabled"
        } else {
            "disabled"
        }),
        detail: serde_json::json!({
            "url": webhook.url,
            "event_types": webhook.event_types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        }),
        comment_id: None,
        author_id: None,
        stream: None,
    }
}
