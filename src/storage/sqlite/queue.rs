//! The review queue on SQLite. No `SKIP LOCKED`: the write lock that
//! `BEGIN IMMEDIATE` takes makes picking and leasing items one step, so an
//! item is never leased twice.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row as _, Sqlite, Transaction};
use uuid::Uuid;

use super::comments::comment_for_update;
use super::{
    BEGIN_WRITE, SqliteStore, audit, comment_from_row, optional_time_column, time_column, to_micros,
};
use crate::domain::{
    Actor, Comment, CommentId, CommentStatus, Requeue, ReviewId, ReviewItem, TenantId,
};
use crate::storage::{
    AuditEvent, Claim, DecideRejection, Decision, QueueFilter, QueueQuery, QueueStore,
    ReasonCodeSql, ReleaseRejection, Reopen, ReopenRejection, StoreError, count_queue_sql,
    push_queue_conditions, standing_term,
};

/// "The comment has a reason with this code", for queue filters.
const REASON_CODE_SQL: ReasonCodeSql = ReasonCodeSql {
    before: " AND EXISTS (SELECT 1 FROM json_each(c.reasons) WHERE json_extract(value, '$.code') = ",
    after: ")",
};

fn review_item_from_row(row: &SqliteRow) -> Result<ReviewItem, StoreError> {
    Ok(ReviewItem {
        review_id: ReviewId::from_uuid(row.try_get("review_id")?),
        comment: comment_from_row(row)?,
        priority: row.try_get("priority")?,
        enqueue_time: time_column(row, "enqueue_time")?,
        lease_expire_time: optional_time_column(row, "lease_expire_time")?,
        claimed_by: row.try_get("claimed_by")?,
        author_standing: standing_term(
            row.try_get::<Option<String>, _>("author_standing")?
                .map(|s| {
                    Ok::<_, StoreError>((s, optional_time_column(row, "author_standing_until")?))
                })
                .transpose()?,
        )?,
    })
}

const REVIEW_ITEM_SELECT: &str = concat!(review_items_from!(), " ");

/// Whether the comment has an open review item (held, or sent back).
pub(super) async fn has_open_item(
    tx: &mut Transaction<'static, Sqlite>,
    tenant: TenantId,
    comment_id: CommentId,
) -> Result<bool, StoreError> {
    let open: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM review_items \
         WHERE tenant_id = ?1 AND comment_id = ?2 AND state = 'open'",
    )
    .bind(tenant.as_uuid())
    .bind(comment_id.as_uuid())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(open.is_some())
}

/// Queues `comment` again inside `tx`: a new open review item, the new
/// status, the reason appended and the version bumped, stored and applied
/// to `comment`. Returns the new item's id. The caller audits the change,
/// with its stream facts.
pub(super) async fn requeue_in(
    tx: &mut Transaction<'static, Sqlite>,
    tenant: TenantId,
    comment: &mut Comment,
    requeue: Requeue,
    now: DateTime<Utc>,
) -> Result<ReviewId, StoreError> {
    let review_id = ReviewId::generate();
    sqlx::query(
        "INSERT INTO review_items (tenant_id, review_id, comment_id, article_id, priority, \
         state, enqueue_time) VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6)",
    )
    .bind(tenant.as_uuid())
    .bind(review_id.as_uuid())
    .bind(comment.comment_id.as_uuid())
    .bind(&comment.article_id)
    .bind(requeue.priority)
    .bind(to_micros(now))
    .execute(&mut **tx)
    .await?;
    let from = comment.status;
    comment.status = requeue.status;
    comment.reasons.push(requeue.reason);
    comment.update_time = now;
    comment.version += 1;
    sqlx::query(
        "UPDATE comments SET status = ?3, reasons = ?4, update_time = ?5, \
         version = version + 1 WHERE tenant_id = ?1 AND comment_id = ?2",
    )
    .bind(tenant.as_uuid())
    .bind(comment.comment_id.as_uuid())
    .bind(comment.status.as_str())
    .bind(crate::storage::reasons::encode(&comment.reasons))
    .bind(to_micros(now))
    .execute(&mut **tx)
    .await?;
    if comment.status != from {
        super::authors::restatus(tx, tenant, comment, from).await?;
    }
    Ok(review_id)
}

#[async_trait]
impl QueueStore for SqliteStore {
    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_review_queue(
        &self,
        tenant: TenantId,
        query: &QueueQuery,
    ) -> Result<Vec<ReviewItem>, StoreError> {
        let after = query
            .after
            .map(|c| (c.priority, c.enqueue_time_micros, c.review_id));
        let mut sql = QueryBuilder::<Sqlite>::new(concat!(
            review_items_from!(),
            " \
             WHERE r.state = 'open' AND r.tenant_id = "
        ));
        sql.push_bind(tenant.as_uuid());
        push_queue_conditions(
            &mut sql,
            &query.filter,
            query.order,
            after,
            query.limit,
            REASON_CODE_SQL,
        );
        let rows = sql.build().fetch_all(&self.pool).await?;
        rows.iter().map(review_item_from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn count_review_queue(
        &self,
        tenant: TenantId,
        filter: &QueueFilter,
        cap: u32,
    ) -> Result<u64, StoreError> {
        let mut sql = count_queue_sql(tenant, filter, cap, REASON_CODE_SQL);
        let count: i64 = sql.build_query_scalar().fetch_one(&self.pool).await?;
        Ok(count as u64)
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn claim_reviews(
        &self,
        tenant: TenantId,
        claim: &Claim,
    ) -> Result<Vec<ReviewItem>, StoreError> {
        // The write lock taken by BEGIN IMMEDIATE makes the pick-and-lease atomic.
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let mut sql = QueryBuilder::<Sqlite>::new("UPDATE review_items SET claimed_by = ");
        sql.push_bind(claim.actor.as_str().to_owned())
            .push(", lease_expire_time = ")
            .push_bind(to_micros(claim.lease_until))
            .push(" WHERE tenant_id = ")
            .push_bind(tenant.as_uuid())
            .push(
                " AND review_id IN (SELECT r.review_id FROM review_items r \
                 JOIN comments c ON c.tenant_id = r.tenant_id AND c.comment_id = r.comment_id \
                 WHERE r.state = 'open' AND r.tenant_id = ",
            )
            .push_bind(tenant.as_uuid())
            .push(" AND (r.lease_expire_time IS NULL OR r.lease_expire_time <= ")
            .push_bind(to_micros(claim.now))
            .push(")");
        push_queue_conditions::<_, i64>(
            &mut sql,
            &claim.filter,
            claim.order,
            None,
            claim.max_items,
            REASON_CODE_SQL,
        );
        sql.push(") RETURNING review_id");
        let claimed: Vec<Uuid> = sql.build_query_scalar().fetch_all(&mut *tx).await?;
        let mut items = Vec::with_capacity(claimed.len());
        for id in &claimed {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "{REVIEW_ITEM_SELECT} WHERE r.tenant_id = ?1 AND r.review_id = ?2"
            )))
            .bind(tenant.as_uuid())
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            let item = review_item_from_row(&row)?;
            audit(
                &mut tx,
                tenant,
                claim.now,
                AuditEvent {
                    actor: &claim.actor,
                    action: "review.claimed",
                    subject_type: "review",
                    subject_id: id.to_string(),
                    from_state: Some("open"),
                    to_state: Some("claimed"),
                    detail: serde_json::json!({ "lease_expire_time": claim.lease_until }),
                    comment_id: Some(item.comment.comment_id),
                    author_id: None,
                    stream: None,
                },
            )
            .await?;
            items.push(item);
        }
        tx.commit().await?;
        claim.order.sort(&mut items);
        Ok(items)
    }

    #[tracing::instrument(skip_all, fields(%tenant, review_id = %decision.review_id))]
    async fn decide_review(
        &self,
        tenant: TenantId,
        decision: &Decision,
    ) -> Result<Result<Comment, DecideRejection>, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let item = sqlx::query(
            "SELECT comment_id, state, claimed_by FROM review_items \
             WHERE tenant_id = ?1 AND review_id = ?2",
        )
        .bind(tenant.as_uuid())
        .bind(decision.review_id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(item) = item else {
            return Ok(Err(DecideRejection::NotFound));
        };
        let state: String = item.try_get("state")?;
        let claimed_by: Option<String> = item.try_get("claimed_by")?;
        if state != "open" {
            return Ok(Err(DecideRejection::AlreadyDecided));
        }
        if claimed_by.as_deref() != Some(decision.actor.as_str()) {
            return Ok(Err(DecideRejection::NotClaimedByCaller));
        }
        let comment_id: Uuid = item.try_get("comment_id")?;
        let row = sqlx::query(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments c WHERE c.tenant_id = ?1 AND c.comment_id = ?2"
        ))
        .bind(tenant.as_uuid())
        .bind(comment_id)
        .fetch_one(&mut *tx)
        .await?;
        let mut comment = comment_from_row(&row)?;
        if let Some(expected) = decision.expected_version
            && expected != comment.version
        {
            return Ok(Err(DecideRejection::Stale {
                current: comment.version,
            }));
        }
        let from = comment.status;
        comment.status = decision.decision.status();
        comment.reasons.push(
            decision
                .decision
                .reason(&decision.actor, decision.reason_code.as_deref()),
        );
        comment.update_time = decision.now;
        comment.version += 1;

        sqlx::query(
            "UPDATE comments SET status = ?3, reasons = ?4, update_time = ?5, version = version + 1 \
             WHERE tenant_id = ?1 AND comment_id = ?2",
        )
        .bind(tenant.as_uuid())
        .bind(comment_id)
        .bind(comment.status.as_str())
        .bind(crate::storage::reasons::encode(&comment.reasons))
        .bind(to_micros(decision.now))
        .execute(&mut *tx)
        .await?;
        if comment.status != from {
            super::authors::restatus(&mut tx, tenant, &comment, from).await?;
        }
        sqlx::query(
            "UPDATE review_items SET state = 'decided', decided_by = ?3, decision = ?4, note = ?5, \
             decide_time = ?6, lease_expire_time = NULL, decision_code = ?7 \
             WHERE tenant_id = ?1 AND review_id = ?2",
        )
        .bind(tenant.as_uuid())
        .bind(decision.review_id.as_uuid())
        .bind(decision.actor.as_str())
        .bind(decision.decision.as_str())
        .bind(&decision.note)
        .bind(to_micros(decision.now))
        .bind(decision.reason_code.as_deref())
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            tenant,
            decision.now,
            crate::storage::decision_event(decision, &comment, from),
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(comment))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn release_reviews(
        &self,
        tenant: TenantId,
        ids: &[ReviewId],
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Result<Vec<ReviewId>, ReleaseRejection>, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let mut comments = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(
                "SELECT state, claimed_by, comment_id FROM review_items \
                 WHERE tenant_id = ?1 AND review_id = ?2",
            )
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok(Err(ReleaseRejection::NotFound(*id)));
            };
            let state: String = row.try_get("state")?;
            let claimed_by: Option<String> = row.try_get("claimed_by")?;
            if state != "open" || claimed_by.as_deref() != Some(actor.as_str()) {
                return Ok(Err(ReleaseRejection::NotClaimedByCaller(*id)));
            }
            comments.push(CommentId::from_uuid(row.try_get("comment_id")?));
        }
        for (id, comment_id) in ids.iter().zip(comments) {
            sqlx::query(
                "UPDATE review_items SET claimed_by = NULL, lease_expire_time = NULL \
                 WHERE tenant_id = ?1 AND review_id = ?2",
            )
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await?;
            audit(
                &mut tx,
                tenant,
                now,
                AuditEvent {
                    actor,
                    action: "review.released",
                    subject_type: "review",
                    subject_id: id.to_string(),
                    from_state: Some("claimed"),
                    to_state: Some("open"),
                    detail: serde_json::json!({}),
                    comment_id: Some(comment_id),
                    author_id: None,
                    stream: None,
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Ok(ids.to_vec()))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn reopen_comment(
        &self,
        tenant: TenantId,
        reopen: &Reopen<'_>,
    ) -> Result<Result<Comment, ReopenRejection>, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let Some(mut comment) = comment_for_update(&mut tx, tenant, reopen.comment_id).await?
        else {
            return Ok(Err(ReopenRejection::NotFound));
        };
        if let Some(expected) = reopen.expected_version
            && expected != comment.version
        {
            return Ok(Err(ReopenRejection::Stale {
                current: comment.version,
            }));
        }
        // Held, or published with an open item (sent back by reports).
        if comment.status == CommentStatus::PendingReview
            || has_open_item(&mut tx, tenant, reopen.comment_id).await?
        {
            return Ok(Err(ReopenRejection::InQueue));
        }
        let from = comment.status;
        let review_id = requeue_in(
            &mut tx,
            tenant,
            &mut comment,
            Requeue {
                status: CommentStatus::PendingReview,
                reason: crate::domain::reopened_reason(reopen.actor, reopen.note),
                priority: crate::domain::REOPENED_PRIORITY,
            },
            reopen.now,
        )
        .await?;
        audit(
            &mut tx,
            tenant,
            reopen.now,
            crate::storage::reopened_event(reopen, &comment, from, review_id),
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(comment))
    }

    async fn queue_depth(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM review_items WHERE state = 'open'")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
