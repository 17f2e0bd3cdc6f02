//! Tenants, settings and API keys on Postgres. A key is found by its hash
//! alone (the one query not led by `tenant_id`): that is how a caller's
//! tenant is learned.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

use super::{PostgresStore, audit, begin};
use crate::domain::{
    Actor, ApiKeyInfo, FieldViolation, KeyHash, KeyId, ModerationMode, Principal, Role, TenantId,
    TenantName, TenantSettings, TenantSettingsPatch,
};
use crate::storage::{AuditEvent, NewApiKey, StoreError, TenantStore};

fn settings_from_row(row: &PgRow) -> Result<TenantSettings, StoreError> {
    let mode: String = row.try_get("moderation_mode")?;
    let max_body_chars: i32 = row.try_get("max_body_chars")?;
    Ok(TenantSettings {
        tenant_name: row.try_get("name")?,
        moderation_mode: ModerationMode::from_db(&mode)
            .ok_or_else(|| StoreError::Corrupt(format!("moderation mode {mode:?}")))?,
        review_threshold: row.try_get("review_threshold")?,
        reject_threshold: row.try_get("reject_threshold")?,
        max_body_chars: u32::try_from(max_body_chars)
            .map_err(|_| StoreError::Corrupt(format!("max_body_chars {max_body_chars}")))?,
        report_threshold: u32::try_from(row.try_get::<i32, _>("report_threshold")?)
            .map_err(|_| StoreError::Corrupt("report_threshold".into()))?,
        hide_reported: row.try_get("hide_reported")?,
        toxicity: crate::storage::toxicity_thresholds_from_json(
            row.try_get::<Option<Json<serde_json::Value>>, _>("toxicity_thresholds")?
                .map(|json| json.0),
        )?,
        max_comments_per_author_per_minute: count_column(
            row,
            "max_comments_per_author_per_minute",
        )?,
        max_comments_per_ip_per_minute: count_column(row, "max_comments_per_ip_per_minute")?,
        retain_rejected_bodies_days: count_column(row, "retain_rejected_bodies_days")?,
        retain_bodies_days: count_column(row, "retain_bodies_days")?,
        external_classifier: crate::storage::classifier_from_json(
            row.try_get("external_classifier")?,
        )?,
    })
}

fn key_from_row(row: &PgRow) -> Result<ApiKeyInfo, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(ApiKeyInfo {
        key_id: KeyId::from_uuid(row.try_get("key_id")?),
        role: Role::parse("role", &role)
            .map_err(|_| StoreError::Corrupt(format!("role {role:?}")))?,
        key_prefix: row.try_get("key_prefix")?,
        create_time: row.try_get("create_time")?,
        revoke_time: row.try_get("revoke_time")?,
        name: row.try_get("name")?,
        expire_time: row.try_get("expire_time")?,
        last_use_time: row.try_get("last_use_time")?,
        requests_per_second: optional_count_column(row, "requests_per_second")?,
    })
}

/// A non-negative count or limit stored as an integer.
fn count_column(row: &PgRow, column: &str) -> Result<u32, StoreError> {
    let value: i32 = row.try_get(column)?;
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} {value}")))
}

fn optional_count_column(row: &PgRow, column: &str) -> Result<Option<u32>, StoreError> {
    row.try_get::<Option<i32>, _>(column)?
        .map(|value| {
            u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} {value}")))
        })
        .transpose()
}

#[async_trait]
impl TenantStore for PostgresStore {
    #[tracing::instrument(skip_all)]
    async fn ensure_tenant(
        &self,
        name: &TenantName,
        now: DateTime<Utc>,
    ) -> Result<(TenantId, bool), StoreError> {
        let defaults = TenantSettings::defaults(name);
        let mut tx = begin(&self.pool).await?;
        let created: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO tenants (tenant_id, name, moderation_mode, review_threshold, \
             reject_threshold, max_body_chars, report_threshold, hide_reported, create_time, \
             update_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $8, $9, $7, $7) \
             ON CONFLICT (name) DO NOTHING RETURNING tenant_id",
        )
        .bind(TenantId::generate().as_uuid())
        .bind(name.as_str())
        .bind(defaults.moderation_mode.as_str())
        .bind(defaults.review_threshold)
        .bind(defaults.reject_threshold)
        .bind(defaults.max_body_chars as i32)
        .bind(now)
        .bind(defaults.report_threshold as i32)
        .bind(defaults.hide_reported)
        .fetch_optional(&mut *tx)
        .await?;
        let result = match created {
            Some(id) => {
                let tenant = TenantId::from_uuid(id);
                audit(
                    &mut tx,
                    tenant,
                    now,
                    AuditEvent {
                        actor: &Actor::operator(),
                        action: "tenant.created",
                        subject_type: "tenant",
                        subject_id: tenant.to_string(),
                        from_state: None,
                        to_state: None,
                        detail: serde_json::json!({ "name": name.as_str() }),
                        comment_id: None,
                        author_id: None,
                        stream: None,
                    },
                )
                .await?;
                (tenant, true)
            }
            None => {
                let id: Uuid = sqlx::query_scalar("SELECT tenant_id FROM tenants WHERE name = $1")
                    .bind(name.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                (TenantId::from_uuid(id), false)
            }
        };
        tx.commit().await?;
        Ok(result)
    }

    async fn find_tenant(&self, name: &TenantName) -> Result<Option<TenantId>, StoreError> {
        let id: Option<Uuid> = sqlx::query_scalar("SELECT tenant_id FROM tenants WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(id.map(TenantId::from_uuid))
    }

    async fn count_tenants(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM tenants")
            .fetch_one(&self.pool)
            .await?)
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn tenant_settings(
        &self,
        tenant: TenantId,
    ) -> Result<Option<TenantSettings>, StoreError> {
        let row = sqlx::query(
            "SELECT name, moderation_mode, review_threshold, reject_threshold, max_body_chars, \
             report_threshold, hide_reported, toxicity_thresholds, \
             max_comments_per_author_per_minute, max_comments_per_ip_per_minute, \
             retain_rejected_bodies_days, retain_bodies_days, external_classifier \
             FROM tenants WHERE tenant_id = $1",
        )
        .bind(tenant.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(settings_from_row).transpose()
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn update_tenant_settings(
        &self,
        tenant: TenantId,
        patch: &TenantSettingsPatch,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Result<TenantSettings, FieldViolation>, StoreError> {
        let mut tx = begin(&self.pool).await?;
        let row = sqlx::query(
            "SELECT name, moderation_mode, review_threshold, reject_threshold, max_body_chars, \
             report_threshold, hide_reported, toxicity_thresholds, \
             max_comments_per_author_per_minute, max_comments_per_ip_per_minute, \
             retain_rejected_bodies_days, retain_bodies_days, external_classifier \
             FROM tenants WHERE tenant_id = $1 FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .fetch_one(&mut *tx)
        .await?;
        let current = settings_from_row(&row)?;
        let next = match current.apply(patch) {
            Ok(next) => next,
            Err(violation) => return Ok(Err(violation)),
        };
        sqlx::query(
            "UPDATE tenants SET moderation_mode = $2, review_threshold = $3, reject_threshold = $4, \
             max_body_chars = $5, update_time = $6, report_threshold = $7, hide_reported = $8, \
             toxicity_thresholds = $9, max_comments_per_author_per_minute = $10, \
             max_comments_per_ip_per_minute = $11, retain_rejected_bodies_days = $12, \
             retain_bodies_days = $13, external_classifier = $14 \
             WHERE tenant_id = $1",
        )
        .bind(tenant.as_uuid())
        .bind(next.moderation_mode.as_str())
        .bind(next.review_threshold)
        .bind(next.reject_threshold)
        .bind(next.max_body_chars as i32)
        .bind(now)
        .bind(next.report_threshold as i32)
        .bind(next.hide_reported)
        .bind(crate::storage::toxicity_thresholds_to_json(&next.toxicity).map(Json))
        .bind(next.max_comments_per_author_per_minute as i32)
        .bind(next.max_comments_per_ip_per_minute as i32)
        .bind(next.retain_rejected_bodies_days as i32)
        .bind(next.retain_bodies_days as i32)
        .bind(crate::storage::classifier_to_json(next.external_classifier.as_ref()))
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            tenant,
            now,
            AuditEvent {
                actor,
                action: "tenant.settings_updated",
                subject_type: "tenant",
                subject_id: tenant.to_string(),
                from_state: None,
                to_state: None,
                detail: crate::storage::settings_change_detail(&current, &next),
                comment_id: None,
                author_id: None,
                stream: None,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(next))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn create_api_key(
        &self,
        tenant: TenantId,
        key: &NewApiKey,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyInfo, StoreError> {
        let mut tx = begin(&self.pool).await?;
        sqlx::query(
            "INSERT INTO api_keys (tenant_id, key_id, key_hash, key_prefix, role, create_time, \
             name, expire_time, requests_per_second) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(tenant.as_uuid())
        .bind(key.key_id.as_uuid())
        .bind(key.hash.as_bytes().as_slice())
        .bind(&key.key_prefix)
        .bind(key.spec.role.as_str())
        .bind(now)
        .bind(&key.spec.name)
        .bind(key.spec.expire_time)
        .bind(key.spec.requests_per_second.map(|r| r as i32))
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            tenant,
            now,
            AuditEvent {
                actor,
                action: "api_key.created",
                subject_type: "api_key",
                subject_id: key.key_id.to_string(),
                from_state: None,
                to_state: Some("active"),
                detail: serde_json::json!({
                    "role": key.spec.role.as_str(),
                    "name": key.spec.name,
                    "expire_time": key.spec.expire_time,
                    "requests_per_second": key.spec.requests_per_second,
                }),
                comment_id: None,
                author_id: None,
                stream: None,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(ApiKeyInfo {
            key_id: key.key_id,
            role: key.spec.role,
            key_prefix: key.key_prefix.clone(),
            create_time: now,
            revoke_time: None,
            name: key.spec.name.clone(),
            expire_time: key.spec.expire_time,
            last_use_time: None,
            requests_per_second: key.spec.requests_per_second,
        })
    }

    async fn authenticate(&self, hash: &KeyHash) -> Result<Option<Principal>, StoreError> {
        let row = sqlx::query(
            "SELECT tenant_id, key_id, role, expire_time, requests_per_second FROM api_keys \
             WHERE key_hash = $1 AND revoke_time IS NULL",
        )
        .bind(hash.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let role: String = row.try_get("role")?;
        Ok(Some(Principal {
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            key_id: KeyId::from_uuid(row.try_get("key_id")?),
            role: Role::parse("role", &role)
                .map_err(|_| StoreError::Corrupt(format!("role {role:?}")))?,
            expire_time: row.try_get("expire_time")?,
            requests_per_second: optional_count_column(&row, "requests_per_second")?,
        }))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKeyInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_id, role, key_prefix, create_time, revoke_time, name, expire_time, last_use_time, requests_per_second \
             FROM api_keys \
             WHERE tenant_id = $1 ORDER BY create_time, key_id",
        )
        .bind(tenant.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(%tenant, %key_id))]
    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        key_id: KeyId,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<ApiKeyInfo>, StoreError> {
        let mut tx = begin(&self.pool).await?;
        let revoked = sqlx::query(
            "UPDATE api_keys SET revoke_time = $3 \
             WHERE tenant_id = $1 AND key_id = $2 AND revoke_time IS NULL",
        )
        .bind(tenant.as_uuid())
        .bind(key_id.as_uuid())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if revoked {
            audit(
                &mut tx,
                tenant,
                now,
                AuditEvent {
                    actor,
                    action: "api_key.revoked",
                    subject_type: "api_key",
                    subject_id: key_id.to_string(),
                    from_state: Some("active"),
                    to_state: Some("revoked"),
                    detail: serde_json::json!({}),
                    comment_id: None,
                    author_id: None,
                    stream: None,
                },
            )
            .await?;
        }
        let row = sqlx::query(
            "SELECT key_id, role, key_prefix, create_time, revoke_time, name, expire_time, last_use_time, requests_per_second \
             FROM api_keys \
             WHERE tenant_id = $1 AND key_id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(key_id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(key_from_row).transpose()
    }

    #[tracing::instrument(skip_all, fields(%tenant, %key_id))]
    async fn touch_api_key(
        &self,
        tenant: TenantId,
        key_id: KeyId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE api_keys SET last_use_time = $3 \
             WHERE tenant_id = $1 AND key_id = $2 \
             AND (last_use_time IS NULL OR last_use_time < $3 - interval '1 minute')",
        )
        .bind(tenant.as_uuid())
        .bind(key_id.as_uuid())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn keys_revoked_since(&self, since: DateTime<Utc>) -> Result<Vec<KeyId>, StoreError> {
        let ids: Vec<Uuid> =
            sqlx::query_scalar("SELECT key_id FROM api_keys WHERE revoke_time >= $1")
                .bind(since)
                .fetch_all(&self.pool)
                .await?;
        Ok(ids.into_iter().map(KeyId::from_uuid).collect())
    }
}
