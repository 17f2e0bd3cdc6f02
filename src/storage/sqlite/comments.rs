//! Comments on SQLite. A group commit writes a whole batch with a fixed
//! number of multi-row statements, because each statement is a hand-off to
//! the connection's worker thread.

use std::collections::HashSet;

use async_trait::async_trait;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Sqlite, Transaction};
use uuid::Uuid;

use chrono::{DateTime, Utc};

use super::{BEGIN_WRITE, SqliteStore, audit, comment_from_row, to_micros};
use crate::domain::{Actor, Comment, CommentId, CommentStatus, ReviewId, TenantId};
use crate::storage::purge_event;
use crate::storage::{
    CommentQuery, CommentRow, CommentRows, CommentStore, InsertOutcome, NewCommentRecord,
    RecentEntry, StoreError,
};

/// What one group commit adds to an author's facts row: the new entries,
/// newest first, and the new comments by status.
struct AuthorDelta<'a> {
    tenant: TenantId,
    author: &'a str,
    recent: Vec<u8>,
    /// Approved, pending review, rejected.
    counts: [i64; 3],
}

/// Writes comments, the queue items of the held ones, their audit rows and
/// their authors' facts rows inside `tx` with four multi-row statements,
/// whatever the batch size: each
/// statement is a hand-off to the connection's worker thread, which costs
/// more than the insert itself. The rows `ON CONFLICT DO NOTHING` skipped
/// are idempotent retries, read back after.
async fn write_comments(
    tx: &mut Transaction<'static, Sqlite>,
    batch: &[(TenantId, NewCommentRecord<'_>)],
) -> Result<Vec<InsertOutcome>, StoreError> {
    let rows = CommentRows::new(batch)?;
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO comments (tenant_id, comment_id, client_comment_id, article_id, author_id, \
         author_display_name, author_ip, parent_comment_id, language, body, status, spam_score, \
         reasons, create_time, update_time, original_body, text_hash, simhash, toxicity_score) ",
    );
    insert.push_values(&rows.rows, |mut values, r| {
        let c = &r.comment;
        values
            .push_bind(r.tenant.as_uuid())
            .push_bind(c.comment_id.as_uuid())
            .push_bind(c.client_comment_id.clone())
            .push_bind(c.article_id.clone())
            .push_bind(c.author_id.clone())
            .push_bind(c.author_display_name.clone())
            .push_bind(r.author_ip.clone())
            .push_bind(c.parent_comment_id.map(|id| id.as_uuid()))
            .push_bind(c.language.clone())
            .push_bind(c.body.clone())
            .push_bind(c.status.as_str())
            .push_bind(c.spam_score)
            .push_bind(r.reasons_json.clone())
            .push_bind(to_micros(r.now))
            .push_bind(to_micros(r.now))
            .push_bind(c.original_body.clone())
            .push_bind(r.fingerprint.exact)
            .push_bind(r.fingerprint.simhash)
            .push_bind(c.toxicity_score);
    });
    insert.push(
        " ON CONFLICT (tenant_id, client_comment_id) WHERE client_comment_id IS NOT NULL \
         DO NOTHING RETURNING comment_id",
    );
    let created: HashSet<Uuid> = insert
        .build_query_scalar::<Uuid>()
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
    let new_rows: Vec<&CommentRow<'_>> = rows
        .rows
        .iter()
        .filter(|r| created.contains(&r.comment.comment_id.as_uuid()))
        .collect();
    let held: Vec<(&CommentRow<'_>, ReviewId, i32)> = new_rows
        .iter()
        .filter_map(|r| r.review.map(|(id, priority)| (*r, id, priority)))
        .collect();
    if !held.is_empty() {
        let mut queue = QueryBuilder::<Sqlite>::new(
            "INSERT INTO review_items (tenant_id, review_id, comment_id, article_id, priority, \
             state, enqueue_time) ",
        );
        queue.push_values(&held, |mut values, (r, review_id, priority)| {
            values
                .push_bind(r.tenant.as_uuid())
                .push_bind(review_id.as_uuid())
                .push_bind(r.comment.comment_id.as_uuid())
                .push_bind(r.comment.article_id.clone())
                .push_bind(*priority)
                .push_bind("open")
                .push_bind(to_micros(r.now));
        });
        queue.build().execute(&mut **tx).await?;
    }

    if !new_rows.is_empty() {
        let mut audit = QueryBuilder::<Sqlite>::new(
            "INSERT INTO audit_events (tenant_id, create_time, actor, action, subject_type, \
             subject_id, from_state, to_state, detail, comment_id, author_id, article_id, queued, \
             version) ",
        );
        // Each row is also the comment's decision-stream event, numbered by
        // the sequencer after the commit.
        audit.push_values(&new_rows, |mut values, r| {
            let e = &r.audit;
            let stream = e.stream.as_ref();
            values
                .push_bind(r.tenant.as_uuid())
                .push_bind(to_micros(r.now))
                .push_bind(e.actor.as_str().to_owned())
                .push_bind(e.action)
                .push_bind(e.subject_type)
                .push_bind(e.subject_id.clone())
                .push_bind(e.from_state)
                .push_bind(e.to_state)
                .push_bind(Json(e.detail.clone()))
                .push_bind(r.comment.comment_id.as_uuid())
                .push_bind(r.comment.author_id.clone())
                .push_bind(stream.map(|s| s.article_id.clone()))
                .push_bind(stream.map(|s| s.queued))
                .push_bind(stream.map(|s| s.version));
        });
        audit.build().execute(&mut **tx).await?;
    }

    // Each author's new entries, newest first, prepended to the facts row.
    let mut authors: Vec<(&CommentRow<'_>, usize)> =
        new_rows.iter().enumerate().map(|(i, r)| (*r, i)).collect();
    authors.sort_by(|(a, i), (b, j)| {
        (a.tenant, &a.comment.author_id)
            .cmp(&(b.tenant, &b.comment.author_id))
            .then_with(|| b.comment.create_time.cmp(&a.comment.create_time))
            .then_with(|| j.cmp(i))
    });
    let mut facts: Vec<AuthorDelta<'_>> = Vec::new();
    for (r, _) in authors {
        let same = facts
            .last()
            .is_some_and(|d| d.tenant == r.tenant && d.author == r.comment.author_id);
        if !same {
            facts.push(AuthorDelta {
                tenant: r.tenant,
                author: &r.comment.author_id,
                recent: Vec::new(),
                counts: [0; 3],
            });
        }
        let delta = facts.last_mut().expect("pushed above");
        if delta.recent.len() < RecentEntry::ALL_BYTES {
            delta.recent.extend_from_slice(&r.recent_entry);
        }
        delta.counts[match r.comment.status {
            CommentStatus::Approved => 0,
            CommentStatus::PendingReview => 1,
            CommentStatus::Rejected => 2,
        }] += 1;
    }
    if !facts.is_empty() {
        let mut upsert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO author_facts (tenant_id, author_id, recent, approved, pending_review, \
             rejected) ",
        );
        upsert.push_values(&facts, |mut values, d| {
            values
                .push_bind(d.tenant.as_uuid())
                .push_bind(d.author.to_string())
                .push_bind(d.recent.clone())
                .push_bind(d.counts[0])
                .push_bind(d.counts[1])
                .push_bind(d.counts[2]);
        });
        // `||` makes text of blobs; the cast makes it bytes again, and
        // `substr` of a blob counts bytes.
        upsert
            .push(
                " ON CONFLICT (tenant_id, author_id) DO UPDATE SET recent = \
                 substr(CAST(excluded.recent || author_facts.recent AS BLOB), 1, ",
            )
            .push(RecentEntry::ALL_BYTES)
            .push(
                "), approved = author_facts.approved + excluded.approved, \
                 pending_review = author_facts.pending_review + excluded.pending_review, \
                 rejected = author_facts.rejected + excluded.rejected",
            );
        upsert.build().execute(&mut **tx).await?;
    }

    let mut existing = Vec::new();
    for (tenant, client_id) in rows.retries(&created) {
        // Stored by an earlier transaction or earlier in this statement.
        let row = sqlx::query(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments c WHERE c.tenant_id = ?1 AND c.client_comment_id = ?2"
        ))
        .bind(tenant.as_uuid())
        .bind(client_id)
        .fetch_one(&mut **tx)
        .await?;
        existing.push(comment_from_row(&row)?);
    }
    Ok(rows.outcomes(&created, existing))
}

/// The comment, read inside `tx` (the write lock is the transaction's); `None` when the tenant has
/// no such comment.
pub(super) async fn comment_for_update(
    tx: &mut Transaction<'static, Sqlite>,
    tenant: TenantId,
    comment_id: CommentId,
) -> Result<Option<Comment>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        comment_columns!(),
        " FROM comments c WHERE c.tenant_id = ?1 AND c.comment_id = ?2"
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
impl CommentStore for SqliteStore {
    fn concurrent_writers(&self) -> usize {
        1
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn insert_comment(
        &self,
        tenant: TenantId,
        record: &NewCommentRecord<'_>,
    ) -> Result<InsertOutcome, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let mut outcomes = write_comments(&mut tx, &[(tenant, *record)]).await?;
        tx.commit().await?;
        outcomes
            .pop()
            .ok_or_else(|| StoreError::Corrupt("no outcome for a comment".into()))
    }

    #[tracing::instrument(skip_all, fields(comments = batch.len()))]
    async fn insert_comments(
        &self,
        batch: &[(TenantId, NewCommentRecord<'_>)],
    ) -> Vec<Result<InsertOutcome, StoreError>> {
        let attempt = async {
            let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
            let outcomes = write_comments(&mut tx, batch).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(outcomes)
        }
        .await;
        match attempt {
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
            " FROM comments c WHERE c.tenant_id = ?1 AND c.comment_id = ?2"
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
             WHERE author_ip IS NOT NULL AND substr(author_ip, 1, 3) <> 'h1:' LIMIT ?1",
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
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        for (tenant, comment, hash) in hashed {
            sqlx::query(
                "UPDATE comments SET author_ip = ?3 WHERE tenant_id = ?1 AND comment_id = ?2",
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
        const DAY: i64 = 86_400_000_000;
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let doomed: Vec<(uuid::Uuid, uuid::Uuid)> = sqlx::query_as(
            "SELECT c.tenant_id, c.comment_id FROM comments c \
             JOIN tenants t ON t.tenant_id = c.tenant_id \
             WHERE c.purge_time IS NULL \
               AND (t.retain_bodies_days > 0 OR t.retain_rejected_bodies_days > 0) \
               AND ((t.retain_bodies_days > 0 AND c.create_time < ?1 - t.retain_bodies_days * ?3) \
                 OR (t.retain_rejected_bodies_days > 0 AND c.status = 'rejected' \
                     AND c.create_time < ?1 - t.retain_rejected_bodies_days * ?3)) \
             LIMIT ?2",
        )
        .bind(to_micros(now))
        .bind(i64::from(limit))
        .bind(DAY)
        .fetch_all(&mut *tx)
        .await?;
        let mut counts: std::collections::BTreeMap<uuid::Uuid, u64> = Default::default();
        for (tenant, comment) in &doomed {
            sqlx::query(
                "UPDATE comments SET body = ?3, original_body = NULL, purge_time = ?4 \
                 WHERE tenant_id = ?1 AND comment_id = ?2",
            )
            .bind(tenant)
            .bind(comment)
            .bind(marker)
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?;
            *counts.entry(*tenant).or_default() += 1;
        }
        let purged: Vec<(TenantId, u64)> = counts
            .into_iter()
            .map(|(t, n)| (TenantId::from_uuid(t), n))
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
            " FROM comments c WHERE c.tenant_id = ?1 AND c.client_comment_id = ?2"
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
            Some(c) => (Some(c.create_time_micros), Some(c.comment_id)),
            None => (None, None),
        };
        let rows = sqlx::query(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments c \
             WHERE c.tenant_id = ?1 AND c.status = ?2 \
               AND (?3 IS NULL OR c.article_id = ?3) \
               AND (?4 IS NULL OR (c.create_time, c.comment_id) < (?4, ?5)) \
             ORDER BY c.create_time DESC, c.comment_id DESC LIMIT ?6"
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
