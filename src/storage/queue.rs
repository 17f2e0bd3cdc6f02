//! The review queue: held comments leased to one moderator at a time, and
//! the decisions, releases and reopenings that change them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::StoreError;
use crate::domain::{Actor, Comment, CommentId, ReviewDecision, ReviewId, ReviewItem, TenantId};

#[async_trait]
pub trait QueueStore: Send + Sync {
    /// How many open items match `filter`, counted up to `cap` (a count
    /// of a huge queue costs no more than `cap` index entries).
    async fn count_review_queue(
        &self,
        tenant: TenantId,
        filter: &QueueFilter,
        cap: u32,
    ) -> Result<u64, StoreError>;
    /// Open items, claimed or not: highest priority, then oldest, first.
    async fn list_review_queue(
        &self,
        tenant: TenantId,
        query: &QueueQuery,
    ) -> Result<Vec<ReviewItem>, StoreError>;
    /// Leases up to `claim.max_items` items that nobody holds (or whose lease
    /// has expired) to `claim.actor`. No item is ever leased to two actors.
    async fn claim_reviews(
        &self,
        tenant: TenantId,
        claim: &Claim,
    ) -> Result<Vec<ReviewItem>, StoreError>;
    async fn decide_review(
        &self,
        tenant: TenantId,
        decision: &Decision,
    ) -> Result<Result<Comment, DecideRejection>, StoreError>;
    /// All or nothing: either every id is released or none is.
    async fn release_reviews(
        &self,
        tenant: TenantId,
        ids: &[ReviewId],
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Result<Vec<ReviewId>, ReleaseRejection>, StoreError>;
    /// Sends a decided comment (approved or rejected, by the pipeline or a
    /// moderator) back to the queue: a new open review item, status
    /// pending review, a `review.reopened` reason, version + 1, and the
    /// `comment.reopened` audit event, in one transaction.
    async fn reopen_comment(
        &self,
        tenant: TenantId,
        reopen: &Reopen<'_>,
    ) -> Result<Result<Comment, ReopenRejection>, StoreError>;
    /// Open review items across all tenants, for the `/metrics` gauge.
    async fn queue_depth(&self) -> Result<i64, StoreError>;
}

/// Position after the last item of a queue page (priority, then age).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueCursor {
    #[serde(rename = "p")]
    pub priority: i32,
    #[serde(rename = "t")]
    pub enqueue_time_micros: i64,
    #[serde(rename = "i")]
    pub review_id: Uuid,
}

impl QueueCursor {
    pub fn after(item: &ReviewItem) -> Self {
        QueueCursor {
            priority: item.priority,
            enqueue_time_micros: item.enqueue_time.timestamp_micros(),
            review_id: item.review_id.as_uuid(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct QueueQuery {
    pub filter: QueueFilter,
    pub order: QueueOrder,
    pub after: Option<QueueCursor>,
    pub limit: u32,
}

/// How the queue is worked through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueOrder {
    /// Highest priority (reports, rule actions, spam score) then oldest.
    #[default]
    Priority,
    OldestFirst,
    NewestFirst,
}

impl QueueOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueOrder::Priority => "priority",
            QueueOrder::OldestFirst => "oldest",
            QueueOrder::NewestFirst => "newest",
        }
    }

    fn order_by(self) -> &'static str {
        match self {
            QueueOrder::Priority => " ORDER BY r.priority DESC, r.enqueue_time, r.review_id",
            QueueOrder::OldestFirst => " ORDER BY r.enqueue_time, r.review_id",
            QueueOrder::NewestFirst => " ORDER BY r.enqueue_time DESC, r.review_id DESC",
        }
    }

    /// Puts items in this order (for the items a claim returns).
    pub(crate) fn sort(self, items: &mut [ReviewItem]) {
        items.sort_by(|a, b| {
            let oldest = a
                .enqueue_time
                .cmp(&b.enqueue_time)
                .then(a.review_id.cmp(&b.review_id));
            match self {
                QueueOrder::Priority => b.priority.cmp(&a.priority).then(oldest),
                QueueOrder::OldestFirst => oldest,
                QueueOrder::NewestFirst => oldest.reverse(),
            }
        });
    }
}

/// Which open items a listing or a claim considers; every filter that is
/// set must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueFilter {
    pub article_id: Option<String>,
    /// Items whose comment has a reason with this code (`rule.words`,
    /// `spam.score`, `report.threshold`…).
    pub reason_code: Option<String>,
    pub min_spam_score: Option<f64>,
    /// Items whose comment readers reported.
    pub reported_only: bool,
}

impl QueueFilter {
    /// What a page token is bound to.
    pub fn scope(&self, order: QueueOrder) -> String {
        format!(
            "queue|{}|{:?}|{:?}|{:?}|{}",
            order.as_str(),
            self.article_id,
            self.reason_code,
            self.min_spam_score,
            self.reported_only
        )
    }
}

/// How each backend says "the comment `c` has a reason with code X": the
/// SQL before and after the bound code.
pub(crate) struct ReasonCodeSql {
    pub before: &'static str,
    pub after: &'static str,
}

/// Appends the conditions of an open-queue query over `review_items r JOIN
/// comments c` (the filter, then the position after `after`), its ORDER BY
/// and LIMIT; `time` encodes a cursor time as the backend stores it.
pub(crate) fn push_queue_conditions<DB, T>(
    sql: &mut sqlx::QueryBuilder<DB>,
    filter: &QueueFilter,
    order: QueueOrder,
    after: Option<(i32, T, Uuid)>,
    limit: u32,
    reason_code_sql: ReasonCodeSql,
) where
    DB: sqlx::Database,
    Uuid: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    String: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    f64: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    i32: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    T: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB> + Clone,
{
    push_queue_filter(sql, filter, reason_code_sql);
    push_queue_after(sql, order, after);
    sql.push(order.order_by()).push(" LIMIT ").push(limit);
}

/// The statement counting the open items of `tenant` matching `filter`, up
/// to `cap` (`QueueStore::count_review_queue`; the same on both backends).
pub(crate) fn count_queue_sql<DB>(
    tenant: crate::domain::TenantId,
    filter: &QueueFilter,
    cap: u32,
    reason_code_sql: ReasonCodeSql,
) -> sqlx::QueryBuilder<DB>
where
    DB: sqlx::Database,
    Uuid: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    String: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    f64: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
{
    let mut sql = sqlx::QueryBuilder::new(
        "SELECT count(*) FROM (SELECT 1 FROM review_items r \
         JOIN comments c ON c.tenant_id = r.tenant_id AND c.comment_id = r.comment_id \
         WHERE r.state = 'open' AND r.tenant_id = ",
    );
    sql.push_bind(tenant.as_uuid());
    push_queue_filter(&mut sql, filter, reason_code_sql);
    // A literal LIMIT (SQLite re-prepares a statement whose LIMIT is bound).
    sql.push(" LIMIT ").push(cap).push(") capped");
    sql
}

/// Appends the filter's conditions of an open-queue query over
/// `review_items r JOIN comments c`.
pub(crate) fn push_queue_filter<DB>(
    sql: &mut sqlx::QueryBuilder<DB>,
    filter: &QueueFilter,
    reason_code_sql: ReasonCodeSql,
) where
    DB: sqlx::Database,
    String: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    f64: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
{
    if let Some(article) = &filter.article_id {
        sql.push(" AND r.article_id = ").push_bind(article.clone());
    }
    if let Some(code) = &filter.reason_code {
        sql.push(reason_code_sql.before)
            .push_bind(code.clone())
            .push(reason_code_sql.after);
    }
    if let Some(min) = filter.min_spam_score {
        sql.push(" AND c.spam_score >= ").push_bind(min);
    }
    if filter.reported_only {
        sql.push(
            " AND EXISTS (SELECT 1 FROM comment_reports rp \
             WHERE rp.tenant_id = r.tenant_id AND rp.comment_id = r.comment_id)",
        );
    }
}

/// Appends the position after `after` in `order`.
fn push_queue_after<DB, T>(
    sql: &mut sqlx::QueryBuilder<DB>,
    order: QueueOrder,
    after: Option<(i32, T, Uuid)>,
) where
    DB: sqlx::Database,
    Uuid: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    i32: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    T: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB> + Clone,
{
    if let Some((priority, time, id)) = after {
        let later = |sql: &mut sqlx::QueryBuilder<DB>, op: &str| {
            sql.push(" (r.enqueue_time ")
                .push(op)
                .push(" ")
                .push_bind(time.clone())
                .push(" OR (r.enqueue_time = ")
                .push_bind(time.clone())
                .push(" AND r.review_id ")
                .push(op)
                .push(" ")
                .push_bind(id)
                .push("))");
        };
        match order {
            QueueOrder::Priority => {
                sql.push(" AND (r.priority < ")
                    .push_bind(priority)
                    .push(" OR (r.priority = ")
                    .push_bind(priority)
                    .push(" AND");
                later(sql, ">");
                sql.push("))");
            }
            QueueOrder::OldestFirst => {
                sql.push(" AND");
                later(sql, ">");
            }
            QueueOrder::NewestFirst => {
                sql.push(" AND");
                later(sql, "<");
            }
        }
    }
}

/// A request to lease queue items.
#[derive(Debug, Clone)]
pub struct Claim {
    pub actor: Actor,
    pub max_items: u32,
    pub filter: QueueFilter,
    pub order: QueueOrder,
    pub now: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
}

/// A moderator's decision on one item.
#[derive(Debug, Clone)]
pub struct Decision {
    pub review_id: ReviewId,
    pub decision: ReviewDecision,
    /// The moderator's reason (`offensive`, `off_topic`…), when given.
    pub reason_code: Option<String>,
    /// The comment version the moderator saw: the decision is refused when
    /// the comment changed since. `None`: no check.
    pub expected_version: Option<i64>,
    pub note: String,
    pub actor: Actor,
    pub now: DateTime<Utc>,
}

/// Why a decision was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecideRejection {
    NotFound,
    AlreadyDecided,
    NotClaimedByCaller,
    /// The comment is at another version than the decision expected.
    Stale {
        current: i64,
    },
}

/// Why a release was not applied (nothing is released then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseRejection {
    NotFound(ReviewId),
    NotClaimedByCaller(ReviewId),
}

/// A moderator reversing a decision.
pub struct Reopen<'a> {
    pub comment_id: CommentId,
    pub expected_version: Option<i64>,
    pub note: &'a str,
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
}

/// Why a reopen was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReopenRejection {
    NotFound,
    /// The comment is waiting in the queue already.
    InQueue,
    Stale {
        current: i64,
    },
}
