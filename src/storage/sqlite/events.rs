//! The decision stream and the audit trail on SQLite: one event log, in
//! which an audit row with stream facts is also a stream event, numbered
//! in `decision_sequence`. The write lock makes numbering rounds exclusive
//! and every write is committed when a round runs, so sequence numbers have
//! no gaps.

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
                SELECT event_id, tenant_id FROM audit_events \
                WHERE event_id > (SELECT event_id FROM decision_numbering) AND queued IS NOT NULL \
                ORDER BY event_id LIMIT 1000), \
             bases AS ( \
                SELECT t.tenant_id, COALESCE( \
                    (SELECT max(n.sequence) FROM decision_sequence n \
                        WHERE n.tenant_id = t.tenant_id), \
                    (SELECT max(d.sequence) FROM decision_events_before_16 d \
                        WHERE d.tenant_id = t.tenant_id AND d.sequence IS NOT NULL), \
                    0) AS base \
                FROM (SELECT DISTINCT tenant_id FROM pending) t) \
             INSERT INTO decision_sequence (tenant_id, sequence, event_id) \
             SELECT p.tenant_id, \
                b.base + row_number() OVER (PARTITION BY p.tenant_id ORDER BY p.event_id), \
                p.event_id \
             FROM pending p JOIN bases b ON b.tenant_id = p.tenant_id \
             RETURNING event_id",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut watermark = numbered
            .iter()
            .map(|row| row.get::<i64, _>(0))
            .max()
            .unwrap_or(0);
        // A round that saw every pending stream event also moves the
        // watermark past the other events (every row here is committed):
        // webhook deliveries read every audit event below it.
        if numbered.len() < crate::storage::NUMBERING_ROUND as usize {
            let last: i64 =
                sqlx::query_scalar("SELECT COALESCE(max(event_id), 0) FROM audit_events")
                    .fetch_one(&mut *tx)
                    .await?;
            watermark = watermark.max(last);
        }
        sqlx::query("UPDATE decision_numbering SET event_id = ?1 WHERE event_id < ?1")
            .bind(watermark)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(numbered.len() as u64)
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_decision_events(
        &self,
        tenant: TenantId,
        after_sequence: i64,
        limit: u32,
    ) -> Result<Vec<DecisionEvent>, StoreError> {
        // A literal LIMIT: a bound one re-prepares the statement every run.
        // The events written before the one event log first (migration
        // 16; their numbers are all below the new ones), then the audit
        // rows the sequence points at, by key.
        let mut sql = QueryBuilder::<Sqlite>::new(
            "SELECT * FROM (SELECT sequence, comment_id, article_id, author_id, from_status, \
                to_status, queued, version, create_time FROM decision_events_before_16 \
              WHERE tenant_id = ",
        );
        sql.push_bind(tenant.as_uuid())
            .push(" AND sequence > ")
            .push_bind(after_sequence)
            .push(" ORDER BY sequence LIMIT ")
            .push(limit)
            .push(
                ") UNION ALL SELECT * FROM (SELECT n.sequence, a.comment_id, a.article_id, \
                a.author_id, a.from_state, a.to_state, a.queued, a.version, a.create_time \
                FROM decision_sequence n JOIN audit_events a ON a.event_id = n.event_id \
                WHERE n.tenant_id = ",
            )
            .push_bind(tenant.as_uuid())
            .push(" AND n.sequence > ")
            .push_bind(after_sequence)
            .push(" ORDER BY n.sequence LIMIT ")
            .push(limit)
            .push(") ORDER BY sequence LIMIT ")
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
    async fn last_decision_sequence(&self, tenant: TenantId) -> Result<i64, StoreError> {
        // Numbers continue those written before the one event log.
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT COALESCE( \
                (SELECT max(sequence) FROM decision_sequence WHERE tenant_id = ?1), \
                (SELECT max(sequence) FROM decision_events_before_16 WHERE tenant_id = ?1))",
        )
        .bind(tenant.as_uuid())
        .fetch_one(&self.pool)
        .await?;
        Ok(last.unwrap_or(0))
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
        rows.iter().map(audit_record).collect()
    }

    async fn listen_decision_events(&self, _numbered: tokio::sync::mpsc::UnboundedSender<()>) {
        // No notifications: streams in this process hear from its sequencer,
        // other processes' events are found by polling.
        std::future::pending::<()>().await
    }
}

/// An audit row as selected by [`AuditQuery::build`] (and by webhook reads).
pub(super) fn audit_record(row: &sqlx::sqlite::SqliteRow) -> Result<AuditRecord, StoreError> {
    let Json(detail): Json<serde_json::Value> = row.try_get("detail")?;
    Ok(AuditRecord {
        event_id: row.try_get("event_id")?,
        create_time: time_column(row, "create_time")?,
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
}
