//! The decision stream and the audit trail on SQLite. The write lock makes
//! numbering rounds exclusive, so sequence numbers have no gaps.

use async_trait::async_trait;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row as _, Sqlite};
use uuid::Uuid;

use super::{BEGIN_WRITE, SqliteStore, time_column, to_micros};
use crate::domain::{CommentId, TenantId};
use crate::storage::{AuditQuery, AuditRecord, DecisionEvent, EventStore, StoreError};

#[async_trait]
impl EventStore for SqliteStore {
    async fn sequence_decision_events(&self) -> Result<u64, StoreError> {
        // The write lock excludes other rounds (and other processes). The
        // LIMIT is `NUMBERING_ROUND`, written out (SQLite re-prepares a
        // statement whose LIMIT is bound).
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let numbered = sqlx::query(
            "WITH pending AS ( \
                SELECT event_id, tenant_id FROM decision_events WHERE sequence IS NULL \
                ORDER BY event_id LIMIT 1000), \
             bases AS ( \
                SELECT t.tenant_id, COALESCE((SELECT max(d.sequence) FROM decision_events d \
                    WHERE d.tenant_id = t.tenant_id AND d.sequence IS NOT NULL), 0) AS base \
                FROM (SELECT DISTINCT tenant_id FROM pending) t), \
             numbered AS ( \
                SELECT p.event_id, \
                    b.base + row_number() OVER (PARTITION BY p.tenant_id ORDER BY p.event_id) AS seq \
                FROM pending p JOIN bases b ON b.tenant_id = p.tenant_id) \
             UPDATE decision_events SET sequence = numbered.seq FROM numbered \
             WHERE decision_events.event_id = numbered.event_id",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(numbered)
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_decision_events(
        &self,
        tenant: TenantId,
        after_sequence: i64,
        limit: u32,
    ) -> Result<Vec<DecisionEvent>, StoreError> {
        // A literal LIMIT: a bound one re-prepares the statement every run.
        let mut sql = QueryBuilder::<Sqlite>::new(
            "SELECT sequence, comment_id, article_id, author_id, from_status, to_status, queued, \
             version, create_time FROM decision_events WHERE tenant_id = ",
        );
        sql.push_bind(tenant.as_uuid())
            .push(" AND sequence > ")
            .push_bind(after_sequence)
            .push(" ORDER BY sequence LIMIT ")
            .push(limit);
        let rows = sql.build().fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|row| {
                Ok(DecisionEvent {
                    sequence: row.try_get("sequence")?,
                    comment_id: CommentId::from_uuid(row.try_get("comment_id")?),
                    article_id: row.try_get("article_id")?,
                    author_id: row.try_get("author_id")?,
                    from_status: crate::storage::status_column(row.try_get("from_status")?)?,
                    to_status: crate::storage::status_column(Some(row.try_get("to_status")?))?
                        .ok_or_else(|| StoreError::Corrupt("event without status".into()))?,
                    queued: row.try_get("queued")?,
                    version: row.try_get("version")?,
                    create_time: time_column(&row, "create_time")?,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_audit_events(
        &self,
        tenant: TenantId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut sql = QueryBuilder::new("");
        query.build(&mut sql, tenant, to_micros);
        let rows = sql.build().fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|row| {
                let Json(detail): Json<serde_json::Value> = row.try_get("detail")?;
                Ok(AuditRecord {
                    event_id: row.try_get("event_id")?,
                    create_time: time_column(&row, "create_time")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    subject_type: row.try_get("subject_type")?,
                    subject_id: row.try_get("subject_id")?,
                    from_state: row.try_get("from_state")?,
                    to_state: row.try_get("to_state")?,
                    detail,
                    comment_id: row
                        .try_get::<Option<Uuid>, _>("comment_id")?
                        .map(CommentId::from_uuid),
                    author_id: row.try_get("author_id")?,
                })
            })
            .collect()
    }

    async fn listen_decision_events(&self, _numbered: tokio::sync::mpsc::UnboundedSender<()>) {
        // No notifications: streams in this process hear from its sequencer,
        // other processes' events are found by polling.
        std::future::pending::<()>().await
    }
}
