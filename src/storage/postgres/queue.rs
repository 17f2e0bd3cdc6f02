//! The review queue on Postgres. Claims use `FOR UPDATE SKIP LOCKED`, so
//! moderators and replicas claim from one queue without waiting on each other
//! or ever sharing an item.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Row as _, Transaction};
use uuid::Uuid;

use super::comments::comment_for_update;
use super::{PostgresStore, audit, begin, comment_from_row, micros};
use crate::domain::{
    Actor, Comment, CommentId, CommentStatus, Requeue, ReviewId, ReviewItem, TenantId,
};
use crate::storage::{
    Claim, DecideRejection, Decision, QueueFilter, QueueQuery, QueueStore, ReasonCodeSql,
    ReleaseRejection, Reopen, ReopenRejection, StoreError, count_queue_sql, push_queue_conditions,
    standing_term,
};

/// "The comment has a reason with this code", for queue filters.
const REASON_CODE_SQL: ReasonCodeSql = ReasonCodeSql {
    before: " AND c.reasons::jsonb @> jsonb_build_array(jsonb_build_object('code', ",
    after: "::text))",
};

fn review_item_from_row(row: &PgRow) -> Result<ReviewItem, StoreError> {
    Ok(ReviewItem {
        review_id: ReviewId::from_uuid(row.try_get("review_id")?),
        comment: comment_from_row(row)?,
        priority: row.try_get("priority")?,
        enqueue_time: row.try_get("enqueue_time")?,
        lease_expire_time: row.try_get("lease_expire_time")?,
        claimed_by: row.try_get("claimed_by")?,
        author_standing: standing_term(
            row.try_get::<Option<String>, _>("author_standing")?
                .map(|s| Ok::<_, StoreError>((s, row.try_get("author_standing_until")?)))
                .transpose()?,
        )?,
    })
}

/// Whether the comment has an open review item (held, or sent back).
pub(super) async fn has_open_item(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    comment_id: CommentId,
) -> Result<bool, StoreError> {
    let open: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM review_items \
         WHERE tenant_id = $1 AND comment_id = $2 AND state = 'open'",
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
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    comment: &mut Comment,
    requeue: Requeue,
    now: DateTime<Utc>,
) -> Result<ReviewId, StoreError> {
    let review_id = ReviewId::generate();
    sqlx::query(
        "INSERT INTO review_items (tenant_id, review_id, comment_id, article_id, priority, \
         state, enqueue_time) VALUES ($1, $2, $3, $4, $5, 'open', $6)",
    )
    .bind(tenant.as_uuid())
    .bind(review_id.as_uuid())
    .bind(comment.comment_id.as_uuid())
    .bind(&comment.article_id)
    .bind(requeue.priority)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let from = comment.status;
    comment.status = requeue.status;
    comment.reasons.push(requeue.reason);
    comment.update_time = now;
    comment.version += 1;
    sqlx::query(
        "UPDATE comments SET status = $3, reasons = $4, update_time = $5, \
         version = version + 1 WHERE tenant_id = $1 AND comment_id = $2",
    )
    .bind(tenant.as_uuid())
    .bind(comment.comment_id.as_uuid())
    .bind(comment.status.as_str())
    .bind(crate::storage::reasons::encode(&comment.reasons))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if comment.status != from {
        super::authors::restatus(tx, tenant, comment, from).await?;
    }
    Ok(review_id)
}

#[async_trait]
impl QueueStore for PostgresStore {
    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_review_queue(
        &self,
        tenant: TenantId,
        query: &QueueQuery,
    ) -> Result<Vec<ReviewItem>, StoreError> {
        let after = query
            .after
            .map(|c| Ok::<_, StoreError>((c.priority, micros(c.enqueue_time_micros)?, c.review_id)))
            .transpose()?;
        let mut sql = QueryBuilder::new(concat!(
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
        let mut tx = begin(&self.pool).await?;
        // SKIP LOCKED: rows another transaction is claiming right now are passed
        // over, not waited for and never double-claimed.
        let mut sql = QueryBuilder::new(
            "WITH picked AS ( \
                SELECT r.review_id FROM review_items r \
                JOIN comments c ON c.tenant_id = r.tenant_id AND c.comment_id = r.comment_id \
                WHERE r.state = 'open' AND r.tenant_id = ",
        );
        sql.push_bind(tenant.as_uuid())
            .push(" AND (r.lease_expire_time IS NULL OR r.lease_expire_time <= ")
            .push_bind(claim.now)
            .push(")");
        push_queue_conditions::<_, DateTime<Utc>>(
            &mut sql,
            &claim.filter,
            claim.order,
            None,
            claim.max_items,
            REASON_CODE_SQL,
        );
        sql.push(" FOR UPDATE OF r SKIP LOCKED) UPDATE review_items r SET claimed_by = ")
            .push_bind(claim.actor.as_str().to_owned())
            .push(", lease_expire_time = ")
            .push_bind(claim.lease_until)
            .push(" FROM picked WHERE r.tenant_id = ")
            .push_bind(tenant.as_uuid())
            .push(" AND r.review_id = picked.review_id RETURNING r.review_id");
        let claimed: Vec<Uuid> = sql.build_query_scalar().fetch_all(&mut *tx).await?;
        if claimed.is_empty() {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        sqlx::query(
            "INSERT INTO audit_events \
             (tenant_id, create_time, actor, action, subject_type, subject_id, from_state, to_state, \
              detail, comment_id, author_id) \
             SELECT $1, $2, $3, 'review.claimed', 'review', r.review_id::text, 'open', 'claimed', \
                $5, r.comment_id, c.author_id \
             FROM review_items r \
             JOIN comments c ON c.tenant_id = r.tenant_id AND c.comment_id = r.comment_id \
             WHERE r.tenant_id = $1 AND r.review_id = ANY($4) ORDER BY r.review_id",
        )
        .bind(tenant.as_uuid())
        .bind(claim.now)
        .bind(claim.actor.as_str())
        .bind(&claimed)
        .bind(Json(serde_json::json!({ "lease_expire_time": claim.lease_until })))
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(concat!(
            review_items_from!(),
            " \
             WHERE r.tenant_id = $1 AND r.review_id = ANY($2)"
        ))
        .bind(tenant.as_uuid())
        .bind(&claimed)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut items = rows
            .iter()
            .map(review_item_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        claim.order.sort(&mut items);
        Ok(items)
    }

    #[tracing::instrument(skip_all, fields(%tenant, review_id = %decision.review_id))]
    async fn decide_review(
        &self,
        tenant: TenantId,
        decision: &Decision,
    ) -> Result<Result<Comment, DecideRejection>, StoreError> {
        let mut tx = super::begin_appending(&self.pool).await?;
        let item = sqlx::query(
            "SELECT comment_id, state, claimed_by FROM review_items \
             WHERE tenant_id = $1 AND review_id = $2 FOR UPDATE",
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
            " FROM comments c \
             WHERE c.tenant_id = $1 AND c.comment_id = $2 FOR UPDATE"
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
            "UPDATE comments SET status = $3, reasons = $4, update_time = $5, version = version + 1 \
             WHERE tenant_id = $1 AND comment_id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(comment_id)
        .bind(comment.status.as_str())
        .bind(crate::storage::reasons::encode(&comment.reasons))
        .bind(decision.now)
        .execute(&mut *tx)
        .await?;
        if comment.status != from {
            super::authors::restatus(&mut tx, tenant, &comment, from).await?;
        }
        sqlx::query(
            "UPDATE review_items SET state = 'decided', decided_by = $3, decision = $4, note = $5, \
             decide_time = $6, lease_expire_time = NULL, decision_code = $7 \
             WHERE tenant_id = $1 AND review_id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(decision.review_id.as_uuid())
        .bind(decision.actor.as_str())
        .bind(decision.decision.as_str())
        .bind(&decision.note)
        .bind(decision.now)
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
        let uuids: Vec<Uuid> = ids.iter().map(ReviewId::as_uuid).collect();
        let mut tx = begin(&self.pool).await?;
        let rows = sqlx::query(
            "SELECT review_id, state, claimed_by FROM review_items \
             WHERE tenant_id = $1 AND review_id = ANY($2) FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(&uuids)
        .fetch_all(&mut *tx)
        .await?;
        let mut held = std::collections::HashMap::new();
        for row in &rows {
            let id: Uuid = row.try_get("review_id")?;
            let state: String = row.try_get("state")?;
            let claimed_by: Option<String> = row.try_get("claimed_by")?;
            held.insert(
                id,
                state == "open" && claimed_by.as_deref() == Some(actor.as_str()),
            );
        }
        for id in ids {
            match held.get(&id.as_uuid()) {
                None => return Ok(Err(ReleaseRejection::NotFound(*id))),
                Some(false) => return Ok(Err(ReleaseRejection::NotClaimedByCaller(*id))),
                Some(true) => {}
            }
        }
        sqlx::query(
            "UPDATE review_items SET claimed_by = NULL, lease_expire_time = NULL \
             WHERE tenant_id = $1 AND review_id = ANY($2)",
        )
        .bind(tenant.as_uuid())
        .bind(&uuids)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO audit_events \
             (tenant_id, create_time, actor, action, subject_type, subject_id, from_state, to_state, \
              detail, comment_id, author_id) \
             SELECT $1, $2, $3, 'review.released', 'review', r.review_id::text, 'claimed', 'open', \
                '{}'::jsonb, r.comment_id, c.author_id \
             FROM review_items r \
             JOIN comments c ON c.tenant_id = r.tenant_id AND c.comment_id = r.comment_id \
             WHERE r.tenant_id = $1 AND r.review_id = ANY($4) ORDER BY r.review_id",
        )
        .bind(tenant.as_uuid())
        .bind(now)
        .bind(actor.as_str())
        .bind(&uuids)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(ids.to_vec()))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn reopen_comment(
        &self,
        tenant: TenantId,
        reopen: &Reopen<'_>,
    ) -> Result<Result<Comment, ReopenRejection>, StoreError> {
        let mut tx = super::begin_appending(&self.pool).await?;
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
