//! Webhook endpoints on Postgres.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Postgres;
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use sqlx::query::Query;

use uuid::Uuid;

use super::{PostgresStore, audit, begin, events::audit_record};
use crate::domain::{
    Actor, TenantId, Webhook, WebhookCursor, WebhookDelivery, WebhookId, WebhookSettlement,
};
use crate::storage::{
    LeasedWebhook, LoggedEvent, StoreError, WEBHOOK_AUDIT_ACTIONS, WebhookRecord, WebhookStore,
    delivery_retried_event, delivery_state_column, event_type_column, event_types_from_json,
    event_types_to_json, webhook_disabled_event, webhook_event,
};

macro_rules! columns {
    () => {
        "webhook_id, url, description, event_types, secret, previous_secret, \
         previous_secret_expire_time, enabled, disabled_reason, create_time, update_time"
    };
}

/// An endpoint with its delivery state.
macro_rules! leased_columns {
    () => {
        concat!(
            "tenant_id, ",
            columns!(),
            ", cursor_event_id, cursor_sequence, failing_since"
        )
    };
}

macro_rules! delivery_columns {
    () => {
        "event_id, sequence, message_id, event_type, state, attempts, last_status, last_error, \
         event_time, first_attempt_time, last_attempt_time, next_attempt_time"
    };
}

fn leased(row: &PgRow) -> Result<LeasedWebhook, StoreError> {
    Ok(LeasedWebhook {
        tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
        record: record(row)?,
        cursor: WebhookCursor {
            event_id: row.try_get("cursor_event_id")?,
            sequence: row.try_get("cursor_sequence")?,
        },
        failing_since: row.try_get("failing_since")?,
    })
}

fn delivery(row: &PgRow) -> Result<WebhookDelivery, StoreError> {
    Ok(WebhookDelivery {
        event_id: row.try_get("event_id")?,
        sequence: row.try_get("sequence")?,
        message_id: row.try_get("message_id")?,
        event_type: event_type_column(row.try_get("event_type")?)?,
        state: delivery_state_column(row.try_get("state")?)?,
        attempts: row.try_get::<i32, _>("attempts")? as u32,
        last_status: row
            .try_get::<Option<i32>, _>("last_status")?
            .map(|s| s as u16),
        last_error: row.try_get("last_error")?,
        event_time: row.try_get("event_time")?,
        first_attempt_time: row.try_get("first_attempt_time")?,
        last_attempt_time: row.try_get("last_attempt_time")?,
        next_attempt_time: row.try_get("next_attempt_time")?,
    })
}

fn record(row: &PgRow) -> Result<WebhookRecord, StoreError> {
    Ok(WebhookRecord {
        webhook: Webhook {
            webhook_id: WebhookId::from_uuid(row.try_get("webhook_id")?),
            url: row.try_get("url")?,
            event_types: event_types_from_json(row.try_get("event_types")?)?,
            description: row.try_get("description")?,
            enabled: row.try_get("enabled")?,
            disabled_reason: row.try_get("disabled_reason")?,
            previous_secret_expire_time: row.try_get("previous_secret_expire_time")?,
            create_time: row.try_get("create_time")?,
            update_time: row.try_get("update_time")?,
        },
        sealed_secret: row.try_get("secret")?,
        sealed_previous_secret: row.try_get("previous_secret")?,
    })
}

/// Binds the key and every column an endpoint's change writes, as
/// $1 to $11 (the creation time, written once, is bound after them).
fn bind_fields<'q>(
    query: Query<'q, Postgres, <Postgres as sqlx::Database>::Arguments>,
    tenant: TenantId,
    r: &'q WebhookRecord,
) -> Query<'q, Postgres, <Postgres as sqlx::Database>::Arguments> {
    let w = &r.webhook;
    query
        .bind(tenant.as_uuid())
        .bind(w.webhook_id.as_uuid())
        .bind(&w.url)
        .bind(&w.description)
        .bind(event_types_to_json(&w.event_types))
        .bind(&r.sealed_secret)
        .bind(&r.sealed_previous_secret)
        .bind(w.previous_secret_expire_time)
        .bind(w.enabled)
        .bind(&w.disabled_reason)
        .bind(w.update_time)
}

#[async_trait]
impl WebhookStore for PostgresStore {
    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn create_webhook(
        &self,
        tenant: TenantId,
        r: &WebhookRecord,
        max: usize,
        actor: &Actor,
    ) -> Result<Option<()>, StoreError> {
        let mut tx = begin(&self.pool).await?;
        // The tenant's row lock orders concurrent creations, so the count holds.
        sqlx::query("SELECT 1 FROM tenants WHERE tenant_id = $1 FOR UPDATE")
            .bind(tenant.as_uuid())
            .execute(&mut *tx)
            .await?;
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM webhooks WHERE tenant_id = $1")
            .bind(tenant.as_uuid())
            .fetch_one(&mut *tx)
            .await?;
        if count as usize >= max {
            return Ok(None);
        }
        let w = &r.webhook;
        // A new endpoint starts at the end of the log: the watermark and the
        // tenant's last number, read in one snapshot (a round moves both at
        // once).
        bind_fields(
            sqlx::query(
                "INSERT INTO webhooks (tenant_id, webhook_id, url, description, event_types, \
                    secret, previous_secret, previous_secret_expire_time, enabled, \
                    disabled_reason, update_time, create_time, cursor_event_id, \
                    cursor_sequence) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                    (SELECT event_id FROM decision_numbering), \
                    COALESCE( \
                        (SELECT max(sequence) FROM decision_sequence WHERE tenant_id = $1), \
                        (SELECT max(sequence) FROM decision_events_before_16 \
                         WHERE tenant_id = $1), \
                        0))",
            ),
            tenant,
            r,
        )
        .bind(w.create_time)
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            tenant,
            w.update_time,
            webhook_event(actor, "webhook.created", w),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(()))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_webhooks(&self, tenant: TenantId) -> Result<Vec<WebhookRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM webhooks WHERE tenant_id = $1 ORDER BY webhook_id"
        ))
        .bind(tenant.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn replace_webhook(
        &self,
        tenant: TenantId,
        r: &WebhookRecord,
        action: &'static str,
        actor: &Actor,
    ) -> Result<Option<()>, StoreError> {
        let mut tx = begin(&self.pool).await?;
        let w = &r.webhook;
        let updated = bind_fields(
            sqlx::query(
                "UPDATE webhooks SET url = $3, description = $4, event_types = $5, \
                    secret = $6, previous_secret = $7, previous_secret_expire_time = $8, \
                    enabled = $9, disabled_reason = $10, update_time = $11 \
                 WHERE tenant_id = $1 AND webhook_id = $2",
            ),
            tenant,
            r,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(None);
        }
        audit(
            &mut tx,
            tenant,
            w.update_time,
            webhook_event(actor, action, w),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(()))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn delete_webhook(
        &self,
        tenant: TenantId,
        id: WebhookId,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = begin(&self.pool).await?;
        let row = sqlx::query(concat!(
            "DELETE FROM webhooks WHERE tenant_id = $1 AND webhook_id = $2 RETURNING ",
            columns!()
        ))
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let mut gone = record(&row)?.webhook;
        gone.enabled = false;
        audit(
            &mut tx,
            tenant,
            now,
            webhook_event(actor, "webhook.deleted", &gone),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(skip_all)]
    async fn lease_webhooks(
        &self,
        owner: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<LeasedWebhook>, StoreError> {
        // SKIP LOCKED: replicas leasing at once take different endpoints.
        let rows = sqlx::query(concat!(
            "UPDATE webhooks SET lease_owner = $1, lease_expire_time = $3 \
             WHERE (tenant_id, webhook_id) IN ( \
                SELECT tenant_id, webhook_id FROM webhooks \
                WHERE enabled AND (lease_expire_time IS NULL OR lease_expire_time < $2) \
                ORDER BY lease_expire_time NULLS FIRST LIMIT $4 FOR UPDATE SKIP LOCKED) \
             RETURNING ",
            leased_columns!()
        ))
        .bind(owner)
        .bind(now)
        .bind(until)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(leased).collect()
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn renew_webhook_lease(
        &self,
        tenant: TenantId,
        id: WebhookId,
        owner: Uuid,
        until: DateTime<Utc>,
    ) -> Result<Option<LeasedWebhook>, StoreError> {
        let row = sqlx::query(concat!(
            "UPDATE webhooks SET lease_expire_time = $4 \
             WHERE tenant_id = $1 AND webhook_id = $2 AND lease_owner = $3 AND enabled \
             RETURNING ",
            leased_columns!()
        ))
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(owner)
        .bind(until)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(leased).transpose()
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn release_webhook_lease(
        &self,
        tenant: TenantId,
        id: WebhookId,
        owner: Uuid,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhooks SET lease_owner = NULL, lease_expire_time = NULL \
             WHERE tenant_id = $1 AND webhook_id = $2 AND lease_owner = $3",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn webhook_events(
        &self,
        tenant: TenantId,
        after: WebhookCursor,
        limit: u32,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        // The watermark first: every stream event at or below it was
        // numbered before it moved, so the numbers read next cover them.
        let watermark: i64 = sqlx::query_scalar("SELECT event_id FROM decision_numbering")
            .fetch_one(&self.pool)
            .await?;
        let numbered: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT sequence, event_id FROM decision_sequence \
             WHERE tenant_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3",
        )
        .bind(tenant.as_uuid())
        .bind(after.sequence)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let bound = match numbered.last() {
            Some(&(_, last)) if numbered.len() == limit as usize => last.min(watermark),
            _ => watermark,
        };
        let rows = sqlx::query(
            "SELECT event_id, create_time, actor, action, subject_type, subject_id, from_state, \
                to_state, detail, comment_id, author_id, queued, version \
             FROM audit_events \
             WHERE tenant_id = $1 AND event_id > $2 AND event_id <= $3 \
                AND (queued IS NOT NULL OR action = ANY($4)) \
             ORDER BY event_id LIMIT $5",
        )
        .bind(tenant.as_uuid())
        .bind(after.event_id)
        .bind(bound)
        .bind(&WEBHOOK_AUDIT_ACTIONS[..])
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        crate::storage::logged_events(
            &numbered,
            rows.iter().map(|row| {
                Ok((
                    audit_record(row)?,
                    row.try_get::<Option<bool>, _>("queued")?,
                    row.try_get::<Option<i64>, _>("version")?,
                ))
            }),
        )
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn open_webhook_deliveries(
        &self,
        tenant: TenantId,
        id: WebhookId,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries \
             WHERE tenant_id = $1 AND webhook_id = $2 AND state IN ('pending', 'retrying') \
             ORDER BY event_id"
        ))
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery).collect()
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn settle_webhook(
        &self,
        tenant: TenantId,
        id: WebhookId,
        owner: Uuid,
        s: &WebhookSettlement,
    ) -> Result<bool, StoreError> {
        let mut tx = begin(&self.pool).await?;
        // Disabling also gives the lease back.
        let updated = sqlx::query(
            "UPDATE webhooks SET \
                cursor_event_id = COALESCE($4, cursor_event_id), \
                cursor_sequence = COALESCE($5, cursor_sequence), \
                failing_since = $6, \
                enabled = enabled AND $7::text IS NULL, \
                disabled_reason = COALESCE($7, disabled_reason), \
                lease_owner = CASE WHEN $7::text IS NULL THEN lease_owner END, \
                lease_expire_time = CASE WHEN $7::text IS NULL THEN lease_expire_time END, \
                update_time = CASE WHEN $7::text IS NULL THEN update_time ELSE $8 END \
             WHERE tenant_id = $1 AND webhook_id = $2 AND lease_owner = $3",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(owner)
        .bind(s.cursor.map(|c| c.event_id))
        .bind(s.cursor.map(|c| c.sequence))
        .bind(s.failing_since)
        .bind(&s.disable)
        .bind(s.now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        if let Some(d) = &s.delivery {
            sqlx::query(concat!(
                "INSERT INTO webhook_deliveries (tenant_id, webhook_id, ",
                delivery_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                 ON CONFLICT (tenant_id, webhook_id, event_id) DO UPDATE SET \
                    state = excluded.state, attempts = excluded.attempts, \
                    last_status = excluded.last_status, last_error = excluded.last_error, \
                    last_attempt_time = excluded.last_attempt_time, \
                    next_attempt_time = excluded.next_attempt_time"
            ))
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .bind(d.event_id)
            .bind(d.sequence)
            .bind(&d.message_id)
            .bind(d.event_type.as_str())
            .bind(d.state.as_str())
            .bind(d.attempts as i32)
            .bind(d.last_status.map(i32::from))
            .bind(&d.last_error)
            .bind(d.event_time)
            .bind(d.first_attempt_time)
            .bind(d.last_attempt_time)
            .bind(d.next_attempt_time)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(reason) = &s.disable {
            audit(
                &mut tx,
                tenant,
                s.now,
                webhook_disabled_event(&Actor::system(), id, reason),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_webhook_deliveries(
        &self,
        tenant: TenantId,
        id: WebhookId,
        before_event: Option<i64>,
        limit: u32,
    ) -> Result<Option<Vec<WebhookDelivery>>, StoreError> {
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM webhooks WHERE tenant_id = $1 AND webhook_id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries \
             WHERE tenant_id = $1 AND webhook_id = $2 AND event_id < $3 \
             ORDER BY event_id DESC LIMIT $4"
        ))
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(before_event.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(delivery)
            .collect::<Result<_, _>>()
            .map(Some)
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn retry_webhook_delivery(
        &self,
        tenant: TenantId,
        id: WebhookId,
        message_id: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<WebhookDelivery>, StoreError> {
        let mut tx = begin(&self.pool).await?;
        let row = sqlx::query(concat!(
            "UPDATE webhook_deliveries SET next_attempt_time = $4, \
                state = CASE WHEN state = 'pending' THEN 'pending' ELSE 'retrying' END \
             WHERE tenant_id = $1 AND webhook_id = $2 AND message_id = $3 RETURNING ",
            delivery_columns!()
        ))
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(message_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let d = delivery(&row)?;
        audit(&mut tx, tenant, now, delivery_retried_event(actor, id, &d)).await?;
        tx.commit().await?;
        Ok(Some(d))
    }
}
