//! The decision stream and the audit trail on Postgres. An advisory lock
//! makes numbering rounds exclusive across replicas, so sequence numbers have
//! no gaps.

use async_trait::async_trait;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row as _};
use uuid::Uuid;

use super::{PostgresStore, listen};
use crate::domain::{CommentId, TenantId};
use crate::storage::{AuditQuery, AuditRecord, DecisionEvent, EventStore, StoreError};

/// The advisory lock that makes decision-event numbering rounds exclusive
/// (an arbitrary constant: "moderato" in ASCII, truncated).
const SEQUENCER_LOCK: i64 = 0x6d6f_6465_7261_746f;

#[async_trait]
impl EventStore for PostgresStore {
    async fn sequence_decision_events(&self) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        // One round at a time across replicas; the statement below takes its
        // snapshot after the lock, so it sees the previous round's numbers.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SEQUENCER_LOCK)
            .execute(&mut *tx)
            .await?;
        let numbered = sqlx::query(
            "WITH pending AS ( \
                SELECT event_id, tenant_id FROM decision_events WHERE sequence IS NULL \
                ORDER BY event_id LIMIT 10000), \
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
        if numbered > 0 {
            // Delivered at commit, to every replica's streams.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(crate::storage::DECISIONS_CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
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
        let rows = sqlx::query(
            "SELECT sequence, comment_id, article_id, author_id, from_status, to_status, queued, \
             version, create_time FROM decision_events \
             WHERE tenant_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3",
        )
        .bind(tenant.as_uuid())
        .bind(after_sequence)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
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
                    create_time: row.try_get("create_time")?,
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
        query.build(&mut sql, tenant, |t| t);
        let rows = sql.build().fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|row| {
                let Json(detail): Json<serde_json::Value> = row.try_get("detail")?;
                Ok(AuditRecord {
                    event_id: row.try_get("event_id")?,
                    create_time: row.try_get("create_time")?,
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

    async fn listen_decision_events(&self, numbered: tokio::sync::mpsc::UnboundedSender<()>) {
        listen(
            &self.pool,
            crate::storage::DECISIONS_CHANNEL,
            "decision event",
            |_| numbered.send(()).is_ok(),
        )
        .await
    }
}
