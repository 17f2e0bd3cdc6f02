//! The decision stream and the audit trail on Postgres: one event log, in
//! which an audit row with stream facts is also a stream event, numbered
//! in `decision_sequence` (migration `20261201000016_one_event_log`).
//! Numbering rounds hold an advisory lock exclusively and every transaction
//! appending events holds it shared, so a round sees every event it will
//! ever see below its watermark: numbers have no gaps, and a round reads
//! only what is new (migration `20261201000012_decision_numbering`).

use async_trait::async_trait;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row as _};
use uuid::Uuid;

use super::{PostgresStore, begin, listen};
use crate::domain::{CommentId, TenantId};
use crate::storage::{AuditQuery, AuditRecord, DecisionEvent, EventStore, StoreError};

/// The advisory lock between numbering rounds (exclusive) and transactions
/// that append decision events (shared; see [`super::begin_appending`]).
/// An arbitrary constant: "moderato" in ASCII. The migration's trigger
/// spells it in decimal.
pub(super) const NUMBERING_LOCK: i64 = 0x6d6f_6465_7261_746f;

/// The longest a numbering round waits for writers to finish, in
/// milliseconds (a macro so the statement is a literal).
macro_rules! ROUND_LOCK_WAIT_MS {
    () => {
        "200"
    };
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn sequence_decision_events(&self) -> Result<u64, StoreError> {
        let mut tx = begin(&self.pool).await?;
        // Exclusive: waits for every transaction that appends events (they
        // hold it shared) and keeps new ones out until this round commits,
        // so no event id after the watermark can still commit later; and
        // one round at a time across replicas. The statements below take
        // their snapshots after the lock.
        //
        // Bounded: while the round waits, new writers queue behind it, so a
        // writer stuck inside its transaction (a hung client of the pool, a
        // lost connection Postgres has not noticed yet) must not hold every
        // other writer for as long as it is stuck. After `ROUND_LOCK_WAIT`
        // the round fails (`lock_not_available`), the queued writers go on,
        // and the sequencer tries again later.
        sqlx::query(concat!(
            "SET LOCAL lock_timeout = '",
            ROUND_LOCK_WAIT_MS!(),
            "ms'"
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(NUMBERING_LOCK)
            .execute(&mut *tx)
            .await?;
        // Three short statements whose plans do not depend on statistics
        // (a new database has none for minutes): a primary-key range with a
        // small LIMIT, one index probe per tenant, updates by key. One
        // statement joining them took sequential scans of the whole table
        // before the first autoanalyze (700 in a 20 s benchmark).
        let pending: Vec<(i64, Uuid)> = sqlx::query_as(
            "SELECT event_id, tenant_id FROM audit_events \
             WHERE event_id > (SELECT event_id FROM decision_numbering) AND queued IS NOT NULL \
             ORDER BY event_id LIMIT $1",
        )
        .bind(i64::from(crate::storage::NUMBERING_ROUND))
        .fetch_all(&mut *tx)
        .await?;
        // A round that saw every pending stream event also moves the
        // watermark past the other events committed meanwhile (all of them,
        // under the lock): webhook deliveries read every audit event below
        // it, and a report or a standing change must not wait for the next
        // comment to be numbered.
        let mut watermark = pending.last().map_or(0, |&(id, _)| id);
        if pending.len() < crate::storage::NUMBERING_ROUND as usize {
            let (current, drawn): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT event_id FROM decision_numbering), \
                    (SELECT CASE WHEN is_called THEN last_value ELSE 0 END \
                     FROM audit_events_event_id_seq)",
            )
            .fetch_one(&mut *tx)
            .await?;
            watermark = watermark.max(drawn);
            if pending.is_empty() {
                if drawn > current {
                    sqlx::query("UPDATE decision_numbering SET event_id = $1")
                        .bind(drawn)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                }
                return Ok(0);
            }
        }
        let mut tenants: Vec<Uuid> = pending.iter().map(|(_, tenant)| *tenant).collect();
        tenants.sort_unstable();
        tenants.dedup();
        // A tenant's numbers continue those of the events written before
        // the one event log (migration 16).
        let bases: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT t, COALESCE( \
                (SELECT max(n.sequence) FROM decision_sequence n WHERE n.tenant_id = t), \
                (SELECT max(d.sequence) FROM decision_events_before_16 d \
                    WHERE d.tenant_id = t AND d.sequence IS NOT NULL), \
                0) \
             FROM UNNEST($1::uuid[]) AS t",
        )
        .bind(&tenants)
        .fetch_all(&mut *tx)
        .await?;
        let mut next: std::collections::HashMap<Uuid, i64> = bases.into_iter().collect();
        let (mut ids, mut owners, mut sequences) = (Vec::new(), Vec::new(), Vec::new());
        for (event_id, tenant) in &pending {
            let sequence = next.entry(*tenant).or_insert(0);
            *sequence += 1;
            ids.push(*event_id);
            owners.push(*tenant);
            sequences.push(*sequence);
        }
        sqlx::query(
            "WITH marked AS (UPDATE decision_numbering SET event_id = $4) \
             INSERT INTO decision_sequence (tenant_id, sequence, event_id) \
             SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::int8[])",
        )
        .bind(&owners)
        .bind(&sequences)
        .bind(&ids)
        .bind(watermark)
        .execute(&mut *tx)
        .await?;
        // Delivered at commit, to every replica's streams.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(crate::storage::DECISIONS_CHANNEL)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ids.len() as u64)
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_decision_events(
        &self,
        tenant: TenantId,
        after_sequence: i64,
        limit: u32,
    ) -> Result<Vec<DecisionEvent>, StoreError> {
        // The events written before the one event log first (migration
        // 16; their numbers are all below the new ones), then the audit
        // rows the sequence points at, by key.
        let rows = sqlx::query(
            "(SELECT sequence, comment_id, article_id, author_id, from_status, to_status, queued, \
                version, create_time FROM decision_events_before_16 \
              WHERE tenant_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3) \
             UNION ALL \
             (SELECT n.sequence, a.comment_id, a.article_id, a.author_id, a.from_state, \
                a.to_state, a.queued, a.version, a.create_time \
              FROM decision_sequence n \
              JOIN audit_events a ON a.tenant_id = n.tenant_id AND a.event_id = n.event_id \
              WHERE n.tenant_id = $1 AND n.sequence > $2 ORDER BY n.sequence LIMIT $3) \
             ORDER BY sequence LIMIT $3",
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
    async fn last_decision_sequence(&self, tenant: TenantId) -> Result<i64, StoreError> {
        // Numbers continue those written before the one event log.
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT COALESCE( \
                (SELECT max(sequence) FROM decision_sequence WHERE tenant_id = $1), \
                (SELECT max(sequence) FROM decision_events_before_16 WHERE tenant_id = $1))",
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
        query.build(&mut sql, tenant, |t| t);
        let rows = sql.build().fetch_all(&self.pool).await?;
        rows.iter().map(audit_record).collect()
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

/// An audit row as selected by [`AuditQuery::build`] (and by webhook reads).
pub(super) fn audit_record(row: &sqlx::postgres::PgRow) -> Result<AuditRecord, StoreError> {
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
}
