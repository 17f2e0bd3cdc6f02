//! Webhook endpoints on Postgres.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Postgres;
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use sqlx::query::Query;

use super::{PostgresStore, audit};
use crate::domain::{Actor, TenantId, Webhook, WebhookId};
use crate::storage::{
    StoreError, WebhookRecord, WebhookStore, event_types_from_json, event_types_to_json,
    webhook_event,
};

macro_rules! columns {
    () => {
        "webhook_id, url, description, event_types, secret, previous_secret, \
         previous_secret_expire_time, enabled, disabled_reason, create_time, update_time"
    };
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
        let mut tx = self.pool.begin().await?;
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
        bind_fields(
            sqlx::query(
                "INSERT INTO webhooks (tenant_id, webhook_id, url, description, event_types, \
                    secret, previous_secret, previous_secret_expire_time, enabled, \
                    disabled_reason, update_time, create_time) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
        let mut tx = self.pool.begin().await?;
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
        let mut tx = self.pool.begin().await?;
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
}
