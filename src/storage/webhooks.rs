//! Webhook endpoints as stored: their settings and sealed secrets, where
//! each is in the event log, which replica delivers to it, and what became
//! of each event sent. Which secret signs, what a change may do and what an
//! answer means are decided above; the backends store it, each endpoint
//! change with its audit row.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use uuid::Uuid;

use super::{AuditRecord, StoreError};
use crate::domain::{
    Actor, DeliveryState, TenantId, Webhook, WebhookCursor, WebhookDelivery, WebhookEventType,
    WebhookId, WebhookSettlement,
};

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

    /// Leases up to `limit` enabled endpoints nobody holds (or whose lease
    /// lapsed before `now`) to `owner` until `until`, with where each is in
    /// the log. Safe from several replicas at once: each endpoint goes to one.
    async fn lease_webhooks(
        &self,
        owner: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<LeasedWebhook>, StoreError>;
    /// Extends `owner`'s lease to `until` and reads the endpoint again (its
    /// settings may have changed); `None` when the lease is no longer
    /// `owner`'s, the endpoint is gone or disabled.
    async fn renew_webhook_lease(
        &self,
        tenant: TenantId,
        id: WebhookId,
        owner: Uuid,
        until: DateTime<Utc>,
    ) -> Result<Option<LeasedWebhook>, StoreError>;
    /// Gives the endpoint back (a replica stopping), if `owner` holds it.
    async fn release_webhook_lease(
        &self,
        tenant: TenantId,
        id: WebhookId,
        owner: Uuid,
    ) -> Result<(), StoreError>;
    /// The tenant's events a webhook can carry (decision-stream events and
    /// the audit-only kinds in [`WEBHOOK_AUDIT_ACTIONS`]) after the
    /// cursor, in log order, at most `limit`; only committed events (at or
    /// below the numbering watermark), stream events with their numbers.
    async fn webhook_events(
        &self,
        tenant: TenantId,
        after: WebhookCursor,
        limit: u32,
    ) -> Result<Vec<LoggedEvent>, StoreError>;
    /// The endpoint's open deliveries (its pending head and the retries an
    /// admin asked for), oldest event first.
    async fn open_webhook_deliveries(
        &self,
        tenant: TenantId,
        id: WebhookId,
    ) -> Result<Vec<WebhookDelivery>, StoreError>;
    /// Applies what a delivery attempt (or a skip) settled, in one
    /// transaction, if `owner` still holds the lease; `false` (nothing
    /// written) when it does not.
    async fn settle_webhook(
        &self,
        tenant: TenantId,
        id: WebhookId,
        owner: Uuid,
        settlement: &WebhookSettlement,
    ) -> Result<bool, StoreError>;
    /// The endpoint's deliveries, newest event first, before `before_event`
    /// when given, at most `limit`; `None` when the tenant has no such endpoint.
    async fn list_webhook_deliveries(
        &self,
        tenant: TenantId,
        id: WebhookId,
        before_event: Option<i64>,
        limit: u32,
    ) -> Result<Option<Vec<WebhookDelivery>>, StoreError>;
    /// Asks for one more attempt of a delivery: a pending one is due at
    /// `now`, a delivered or failed one becomes `retrying`. Audited as
    /// `webhook.delivery_retried`. `None` when there is no such delivery.
    async fn retry_webhook_delivery(
        &self,
        tenant: TenantId,
        id: WebhookId,
        message_id: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<WebhookDelivery>, StoreError>;
}

/// The audit actions besides decision-stream events that webhooks carry.
pub const WEBHOOK_AUDIT_ACTIONS: [&str; 2] = ["comment.reported", "author.standing_changed"];

/// An endpoint a replica holds, with its delivery state.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedWebhook {
    pub tenant_id: TenantId,
    pub record: WebhookRecord,
    pub cursor: WebhookCursor,
    pub failing_since: Option<DateTime<Utc>>,
}

/// An event from the log as webhooks see it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    pub audit: AuditRecord,
    /// The decision-stream number, for stream events.
    pub sequence: Option<i64>,
    /// Stream events: whether the comment has an open review item after it.
    pub queued: Option<bool>,
    /// Stream events: the comment's version after it.
    pub version: Option<i64>,
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

pub(crate) fn delivery_state_column(value: &str) -> Result<DeliveryState, StoreError> {
    DeliveryState::from_db(value)
        .ok_or_else(|| StoreError::Corrupt(format!("webhook delivery state {value:?}")))
}

pub(crate) fn event_type_column(value: &str) -> Result<WebhookEventType, StoreError> {
    WebhookEventType::from_db(value)
        .ok_or_else(|| StoreError::Corrupt(format!("webhook event type {value:?}")))
}

/// The audit row of an endpoint the service turned off, with why.
pub(crate) fn webhook_disabled_event<'a>(
    actor: &'a Actor,
    id: WebhookId,
    reason: &str,
) -> super::AuditEvent<'a> {
    super::AuditEvent {
        actor,
        action: "webhook.disabled",
        subject_type: "webhook",
        subject_id: id.to_string(),
        from_state: Some("enabled"),
        to_state: Some("disabled"),
        detail: serde_json::json!({ "reason": reason }),
        comment_id: None,
        author_id: None,
        stream: None,
    }
}

/// The audit row of a retry an admin asked for.
pub(crate) fn delivery_retried_event<'a>(
    actor: &'a Actor,
    id: WebhookId,
    delivery: &WebhookDelivery,
) -> super::AuditEvent<'a> {
    super::AuditEvent {
        actor,
        action: "webhook.delivery_retried",
        subject_type: "webhook",
        subject_id: id.to_string(),
        from_state: None,
        to_state: Some(delivery.state.as_str()),
        detail: serde_json::json!({
            "message_id": delivery.message_id,
            "event_type": delivery.event_type.as_str(),
        }),
        comment_id: None,
        author_id: None,
        stream: None,
    }
}

/// Joins the audit rows a webhook read with the numbers of the stream
/// events among them (`numbered`: sequence, event id). Every stream row
/// read is at or below the watermark, so it has a number.
pub(crate) fn logged_events(
    numbered: &[(i64, i64)],
    rows: impl Iterator<Item = Result<(AuditRecord, Option<bool>, Option<i64>), StoreError>>,
) -> Result<Vec<LoggedEvent>, StoreError> {
    let numbers: std::collections::HashMap<i64, i64> = numbered
        .iter()
        .map(|&(sequence, event)| (event, sequence))
        .collect();
    rows.map(|row| {
        let (audit, queued, version) = row?;
        let sequence = match queued {
            Some(_) => Some(*numbers.get(&audit.event_id).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "stream event {} below the watermark has no number",
                    audit.event_id
                ))
            })?),
            None => None,
        };
        Ok(LoggedEvent {
            audit,
            sequence,
            queued,
            version,
        })
    })
    .collect()
}
