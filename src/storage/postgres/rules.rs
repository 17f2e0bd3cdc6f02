//! Rules and their revisions on Postgres. A change is announced on
//! `RULES_CHANNEL` when it commits, so other replicas reload at once rather
//! than at their next poll.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

use super::{PostgresStore, audit, begin, listen, versions};
use crate::domain::{Actor, Rule, TenantId};
use crate::domain::{RuleChange, RuleRejection};
use crate::storage::{RuleRecord, RuleStore, StoreError};

fn rule_from_row(row: &PgRow) -> Result<RuleRecord, StoreError> {
    let Json(rule): Json<Rule> = row.try_get("definition")?;
    Ok(RuleRecord {
        rule,
        revision: row.try_get("revision")?,
        create_time: row.try_get("create_time")?,
        update_time: row.try_get("update_time")?,
    })
}

#[async_trait]
impl RuleStore for PostgresStore {
    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn load_rules(&self, tenant: TenantId) -> Result<(i64, Vec<RuleRecord>), StoreError> {
        let mut tx = begin(&self.pool).await?;
        let version: i64 =
            sqlx::query_scalar("SELECT rules_version FROM tenants WHERE tenant_id = $1")
                .bind(tenant.as_uuid())
                .fetch_one(&mut *tx)
                .await?;
        let rows = sqlx::query(
            "SELECT rule_id, revision, definition, create_time, update_time FROM rules \
             WHERE tenant_id = $1 ORDER BY rule_id",
        )
        .bind(tenant.as_uuid())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let rules = rows.iter().map(rule_from_row).collect::<Result<_, _>>()?;
        Ok((version, rules))
    }

    async fn rules_versions(&self) -> Result<Vec<(TenantId, i64)>, StoreError> {
        versions(&self.pool, "SELECT tenant_id, rules_version FROM tenants").await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn change_rules(
        &self,
        tenant: TenantId,
        change: &RuleChange,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Result<Vec<RuleRecord>, RuleRejection>, StoreError> {
        let mut tx = begin(&self.pool).await?;
        // One writer per tenant's rules at a time: revisions stay gap-free.
        sqlx::query("SELECT 1 FROM tenants WHERE tenant_id = $1 FOR UPDATE")
            .bind(tenant.as_uuid())
            .execute(&mut *tx)
            .await?;
        let existing: HashMap<String, (i64, DateTime<Utc>)> =
            sqlx::query_as::<_, (String, i64, DateTime<Utc>)>(
                "SELECT rule_id, revision, create_time FROM rules WHERE tenant_id = $1",
            )
            .bind(tenant.as_uuid())
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(id, revision, created)| (id, (revision, created)))
            .collect();
        let plan = match crate::domain::plan_rule_change(change, &existing) {
            Ok(plan) => plan,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let mut written = Vec::new();
        for step in &plan {
            match step {
                crate::domain::RuleStep::Put {
                    rule,
                    revision,
                    create_time,
                } => {
                    sqlx::query(
                        "INSERT INTO rules (tenant_id, rule_id, revision, definition, create_time, update_time) \
                         VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (tenant_id, rule_id) DO UPDATE \
                         SET revision = EXCLUDED.revision, definition = EXCLUDED.definition, \
                             update_time = EXCLUDED.update_time",
                    )
                    .bind(tenant.as_uuid())
                    .bind(&rule.id)
                    .bind(revision)
                    .bind(Json(rule))
                    .bind(create_time.unwrap_or(now))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    written.push(RuleRecord {
                        rule: (*rule).clone(),
                        revision: *revision,
                        create_time: create_time.unwrap_or(now),
                        update_time: now,
                    });
                }
                crate::domain::RuleStep::Delete { rule_id, .. } => {
                    sqlx::query("DELETE FROM rules WHERE tenant_id = $1 AND rule_id = $2")
                        .bind(tenant.as_uuid())
                        .bind(rule_id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            let (rule_id, revision, definition) = step.history();
            sqlx::query(
                "INSERT INTO rule_revisions (tenant_id, rule_id, revision, definition, actor, create_time) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(tenant.as_uuid())
            .bind(rule_id)
            .bind(revision)
            .bind(definition.map(Json))
            .bind(actor.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            audit(&mut tx, tenant, now, step.audit_event(actor)).await?;
        }
        sqlx::query("UPDATE tenants SET rules_version = rules_version + 1 WHERE tenant_id = $1")
            .bind(tenant.as_uuid())
            .execute(&mut *tx)
            .await?;
        // Delivered to every listening replica when (and only if) this commits.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(crate::storage::RULES_CHANNEL)
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(written))
    }

    async fn listen_rule_changes(&self, changes: tokio::sync::mpsc::UnboundedSender<TenantId>) {
        listen(
            &self.pool,
            crate::storage::RULES_CHANNEL,
            "rule change",
            |payload| match Uuid::try_parse(payload) {
                Ok(id) => changes.send(TenantId::from_uuid(id)).is_ok(),
                Err(_) => !changes.is_closed(),
            },
        )
        .await
    }
}
