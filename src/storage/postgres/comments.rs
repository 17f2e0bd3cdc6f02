//! Comments on Postgres. A group commit is one statement over arrays
//! (one round trip, atomic without an explicit transaction), whatever the
//! batch size.

use std::collections::HashSet;

use async_trait::async_trait;
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use chrono::{DateTime, Utc};

use super::{PostgresStore, audit, begin, comment_from_row, micros};
use crate::domain::{Actor, Comment, CommentId, TenantId};
use crate::storage::purge_event;
use crate::storage::{
    CommentCursor, CommentQuery, CommentRows, CommentStore, InsertOutcome, NewCommentRecord,
    StoreError,
};

/// Writes comments, the queue items of the held ones, their audit rows
/// (which are also their decision-stream events) and their entries in
/// their authors' facts rows with one statement
/// (one round trip, atomic without an explicit transaction): the batch is
/// passed as arrays and unnested, and the rows `ON CONFLICT DO NOTHING`
/// skipped are idempotent retries, read back after. Facts rows are locked
/// in (tenant, author) order, so two batches never wait for each other's
/// facts rows in a cycle. The input takes the numbering lock shared before
/// any row is written (see [`super::begin_appending`]).
async fn write_comments(
    pool: &PgPool,
    batch: &[(TenantId, NewCommentRecord<'_>)],
) -> Result<Vec<InsertOutcome>, StoreError> {
    let rows = CommentRows::new(batch)?;
    let column =
        |f: &dyn Fn(&crate::storage::CommentRow<'_>) -> Option<String>| -> Vec<Option<String>> {
            rows.rows.iter().map(f).collect()
        };
    let r = &rows.rows;
    let created: Vec<Uuid> = sqlx::query_scalar(
        "WITH input AS ( \
            SELECT t.* FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], \
                $6::text[], $7::text[], $8::uuid[], $9::text[], $10::text[], $11::text[], \
                $12::float8[], $13::text[], $14::timestamptz[], $15::text[], $16::int8[], \
                $17::int8[], $18::uuid[], $19::int4[], $20::text[], $21::text[], $22::float8[], \
                $24::bytea[]) \
            WITH ORDINALITY AS t(tenant_id, comment_id, client_comment_id, article_id, author_id, \
                author_display_name, author_ip, parent_comment_id, language, body, status, \
                spam_score, reasons, create_time, original_body, text_hash, simhash, review_id, \
                priority, actor, audit_detail, toxicity_score, recent_entry, ord) \
            CROSS JOIN (SELECT pg_advisory_xact_lock_shared($23)) AS numbering_lock), \
         inserted AS ( \
            INSERT INTO comments (tenant_id, comment_id, client_comment_id, article_id, author_id, \
                author_display_name, author_ip, parent_comment_id, language, body, status, \
                spam_score, reasons, create_time, update_time, original_body, text_hash, simhash, \
                toxicity_score) \
            SELECT tenant_id, comment_id, client_comment_id, article_id, author_id, \
                author_display_name, author_ip, parent_comment_id, language, body, status, \
                spam_score, reasons, create_time, create_time, original_body, text_hash, \
                simhash, toxicity_score \
            FROM input ORDER BY ord \
            ON CONFLICT (tenant_id, client_comment_id) WHERE client_comment_id IS NOT NULL \
            DO NOTHING \
            RETURNING tenant_id, comment_id), \
         queued AS ( \
            INSERT INTO review_items (tenant_id, review_id, comment_id, article_id, priority, \
                state, enqueue_time) \
            SELECT i.tenant_id, i.review_id, i.comment_id, i.article_id, i.priority, 'open', \
                i.create_time \
            FROM input i JOIN inserted USING (tenant_id, comment_id) \
            WHERE i.review_id IS NOT NULL ORDER BY i.ord), \
         audited AS ( \
            INSERT INTO audit_events (tenant_id, create_time, actor, action, subject_type, \
                subject_id, from_state, to_state, detail, comment_id, author_id, article_id, \
                queued, version) \
            SELECT i.tenant_id, i.create_time, i.actor, 'comment.created', 'comment', \
                i.comment_id::text, NULL, i.status, i.audit_detail::jsonb, \
                i.comment_id, i.author_id, i.article_id, i.review_id IS NOT NULL, 1 \
            FROM input i JOIN inserted USING (tenant_id, comment_id) ORDER BY i.ord), \
         facts AS ( \
            INSERT INTO author_facts (tenant_id, author_id, recent, approved, pending_review, \
                rejected) \
            SELECT i.tenant_id, i.author_id, substring(string_agg(i.recent_entry, ''::bytea \
                ORDER BY i.create_time DESC, i.ord DESC) FROM 1 FOR $25), \
                count(*) FILTER (WHERE i.status = 'approved'), \
                count(*) FILTER (WHERE i.status = 'pending_review'), \
                count(*) FILTER (WHERE i.status = 'rejected') \
            FROM input i JOIN inserted USING (tenant_id, comment_id) \
            GROUP BY i.tenant_id, i.author_id ORDER BY i.tenant_id, i.author_id \
            ON CONFLICT (tenant_id, author_id) DO UPDATE \
            SET recent = substring(EXCLUDED.recent || author_facts.recent FROM 1 FOR $25), \
                approved = author_facts.approved + EXCLUDED.approved, \
                pending_review = author_facts.pending_review + EXCLUDED.pending_review, \
                rejected = author_facts.rejected + EXCLUDED.rejected) \
         SELECT comment_id FROM inserted",
    )
    .bind(r.iter().map(|r| r.tenant.as_uuid()).collect::<Vec<_>>())
    .bind(
        r.iter()
            .map(|r| r.comment.comment_id.as_uuid())
            .collect::<Vec<_>>(),
    )
    .bind(column(&|r| r.comment.client_comment_id.clone()))
    .bind(
        r.iter()
            .map(|r| r.comment.article_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        r.iter()
            .map(|r| r.comment.author_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        r.iter()
            .map(|r| r.comment.author_display_name.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(column(&|r| r.author_ip.clone()))
    .bind(
        r.iter()
            .map(|r| r.comment.parent_comment_id.map(|id| id.as_uuid()))
            .collect::<Vec<_>>(),
    )
    .bind(
        r.iter()
            .map(|r| r.comment.language.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        r.iter()
            .map(|r| r.comment.body.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        r.iter()
            .map(|r| r.comment.status.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(r.iter().map(|r| r.comment.spam_score).collect::<Vec<_>>())
    .bind(
        r.iter()
            .map(|r| r.reasons_json.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(r.iter().map(|r| r.now).collect::<Vec<_>>())
    .bind(column(&|r| r.comment.original_body.clone()))
    .bind(r.iter().map(|r| r.fingerprint.exact).collect::<Vec<_>>())
    .bind(r.iter().map(|r| r.fingerprint.simhash).collect::<Vec<_>>())
    .bind(
        r.iter()
            .map(|r| r.review.map(|(id, _)| id.as_uuid()))
            .collect::<Vec<_>>(),
    )
    .bind(
        r.iter()
            .map(|r| r.review.map_or(0, |(_, priority)| priority))
            .collect::<Vec<_>>(),
    )
    .bind(r.iter().map(|r| r.audit.actor.as_str()).collect::<Vec<_>>())
    .bind(
        r.iter()
            .map(|r| r.audit.detail.to_string())
            .collect::<Vec<_>>(),
    )
    .bind(
        r.iter()
            .map(|r| r.comment.toxicity_score)
            .collect::<Vec<_>>(),
    )
    .bind(super::events::NUMBERING_LOCK)
    .bind(
        r.iter()
            .map(|r| r.recent_entry.as_slice())
            .collect::<Vec<_>>(),
    )
    .bind(crate::storage::RecentEntry::ALL_BYTES as i32)
    .fetch_all(pool)
    .await?;
    let created: HashSet<Uuid> = created.into_iter().collect();
    let mut existing = Vec::new();
    for (tenant, client_id) in rows.retries(&created) {
        // Committed, by this statement or an earlier one.
        let row = sqlx::query(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments c WHERE c.tenant_id = $1 AND c.client_comment_id = $2"
        ))
        .bind(tenant.as_uuid())
        .bind(client_id)
        .fetch_one(pool)
        .await?;
        existing.push(comment_from_row(&row)?);
    }
    Ok(rows.outcomes(&created, existing))
}

/// The comment, read inside `tx` locked until `tx` ends; `None` when the tenant has
/// no such comment.
pub(super) async fn comment_for_update(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    comment_id: CommentId,
) -> Result<Option<Comment>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        comment_columns!(),
        " FROM comments c WHERE c.tenant_id = $1 AND c.comment_id = $2 FOR UPDATE"
    ))
    .bind(tenant.as_uuid())
    .bind(comment_id.as_uuid())
    .fetch_optional(&mut **tx)
    .await?
    .as_ref()
    .map(comment_from_row)
    .transpose()
}

#[async_trait]
impl CommentStore for PostgresStore {
    fn concurrent_writers(&self) -> usize {
        2
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn insert_comment(
        &self,
        tenant: TenantId,
        record: &NewCommentRecord<'_>,
    ) -> Result<InsertOutcome, StoreError> {
        let mut outcomes = write_comments(&self.pool, &[(tenant, *record)]).await?;
        outcomes
            .pop()
            .ok_or_else(|| StoreError::Corrupt("no outcome for a comment".into()))
    }

    #[tracing::instrument(skip_all, fields(comments = batch.len()))]
    async fn insert_comments(
        &self,
        batch: &[(TenantId, NewCommentRecord<'_>)],
    ) -> Vec<Result<InsertOutcome, StoreError>> {
        match write_comments(&self.pool, batch).await {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(err) => crate::storage::retry_alone(self, batch, err).await,
        }
    }

    #[tracing::instrument(skip_all, fields(%tenant, %id))]
    async fn get_comment(
        &self,
        tenant: TenantId,
        id: CommentId,
    ) -> Result<Option<Comment>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments c WHERE c.tenant_id = $1 AND c.comment_id = $2"
        ))
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(comment_from_row).transpose()
    }

    async fn plaintext_author_ips(
        &self,
        limit: u32,
    ) -> Result<Vec<(TenantId, CommentId, String)>, StoreError> {
        let rows: Vec<(uuid::Uuid, uuid::Uuid, String)> = sqlx::query_as(
            "SELECT tenant_id, comment_id, author_ip FROM comments \
             WHERE author_ip IS NOT NULL AND left(author_ip, 3) <> 'h1:' LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(t, c, ip)| (TenantId::from_uuid(t), CommentId::from_uuid(c), ip))
            .collect())
    }

    async fn replace_author_ips(
        &self,
        hashed: &[(TenantId, CommentId, String)],
    ) -> Result<(), StoreError> {
        let mut tx = begin(&self.pool).await?;
        for (tenant, comment, hash) in hashed {
            sqlx::query(
                "UPDATE comments SET author_ip = $3 WHERE tenant_id = $1 AND comment_id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(comment.as_uuid())
            .bind(hash)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn purge_expired_bodies(
        &self,
        now: DateTime<Utc>,
        marker: &str,
        limit: u32,
    ) -> Result<Vec<(TenantId, u64)>, StoreError> {
        let mut tx = begin(&self.pool).await?;
        // One replica purges at a time; the others skip this round.
        let ours: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext('moderato.retention'))")
                .fetch_one(&mut *tx)
                .await?;
        if !ours {
            return Ok(Vec::new());
        }
        let rows: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
            "WITH doomed AS ( \
                 SELECT c.tenant_id, c.comment_id FROM comments c \
                 JOIN tenants t ON t.tenant_id = c.tenant_id \
                 WHERE c.purge_time IS NULL \
                   AND (t.retain_bodies_days > 0 OR t.retain_rejected_bodies_days > 0) \
                   AND ((t.retain_bodies_days > 0 \
                         AND c.create_time < $1 - make_interval(days => t.retain_bodies_days)) \
                     OR (t.retain_rejected_bodies_days > 0 AND c.status = 'rejected' \
                         AND c.create_time < $1 - make_interval(days => t.retain_rejected_bodies_days))) \
                 LIMIT $3 FOR UPDATE OF c SKIP LOCKED \
             ), purged AS ( \
                 UPDATE comments c SET body = $2, original_body = NULL, purge_time = $1 \
                 FROM doomed d WHERE c.tenant_id = d.tenant_id AND c.comment_id = d.comment_id \
                 RETURNING c.tenant_id \
             ) \
             SELECT tenant_id, count(*) FROM purged GROUP BY tenant_id",
        )
        .bind(now)
        .bind(marker)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let purged: Vec<(TenantId, u64)> = rows
            .into_iter()
            .map(|(t, n)| (TenantId::from_uuid(t), n as u64))
            .collect();
        let system = Actor::system();
        for (tenant, count) in &purged {
            audit(&mut tx, *tenant, now, purge_event(&system, *tenant, *count)).await?;
        }
        tx.commit().await?;
        Ok(purged)
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn find_by_client_comment_id(
        &self,
        tenant: TenantId,
        client_comment_id: &str,
    ) -> Result<Option<Comment>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments c WHERE c.tenant_id = $1 AND c.client_comment_id = $2"
        ))
        .bind(tenant.as_uuid())
        .bind(client_comment_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(comment_from_row).transpose()
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_comments(
        &self,
        tenant: TenantId,
        query: &CommentQuery,
    ) -> Result<Vec<Comment>, StoreError> {
        let (after_time, after_id) = match query.after {
            Some(CommentCursor {
                create_time_micros,
                comment_id,
            }) => (Some(micros(create_time_micros)?), Some(comment_id)),
            None => (None, None),
        };
        let rows = sqlx::query(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments c \
             WHERE c.tenant_id = $1 AND c.status = $2 \
               AND ($3::text IS NULL OR c.article_id = $3) \
               AND ($4::timestamptz IS NULL OR (c.create_time, c.comment_id) < ($4, $5)) \
             ORDER BY c.create_time DESC, c.comment_id DESC LIMIT $6"
        ))
        .bind(tenant.as_uuid())
        .bind(query.status.as_str())
        .bind(query.article_id.as_deref())
        .bind(after_time)
        .bind(after_id)
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(comment_from_row).collect()
    }
}
