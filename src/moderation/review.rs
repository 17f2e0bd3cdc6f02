use std::collections::HashSet;
use std::time::Duration;

use super::comments::Page;
use super::{Moderation, now};
use crate::domain::{
    Actor, Comment, CommentId, FieldViolation, Label, ModeratorId, PageSize, PageToken, Principal,
    ReviewDecision, ReviewId, ReviewItem, SpamLabel, toxicity_lesson,
};
use crate::storage::{
    Claim, DecideRejection, Decision, LabelSource, QueueCursor, QueueFilter, QueueOrder,
    QueueQuery, ReleaseRejection, Reopen, ReopenRejection, StoreError,
};

/// Who works an item: the platform's moderator id when given, else the key.
pub struct ReviewActor;

impl ReviewActor {
    pub fn of(principal: &Principal, moderator: Option<ModeratorId>) -> Actor {
        moderator
            .map(Actor::from)
            .unwrap_or_else(|| principal.actor())
    }
}

/// One decision of a bulk call and what became of it.
pub type BulkOutcome = (ReviewId, Result<Comment, DecideError>);

/// Queue counts are exact up to this many items.
pub const QUEUE_COUNT_CAP: u32 = 10_000;

/// The most decisions one `DecideReviews` call carries.
pub const MAX_BULK_DECISIONS: usize = 500;

/// A parsed decision on one review item.
#[derive(Debug, Clone)]
pub struct DecideRequest {
    pub review_id: ReviewId,
    pub decision: ReviewDecision,
    pub label: SpamLabel,
    pub note: String,
    pub reason_code: Option<String>,
    /// The comment version the moderator saw; `None`: no check.
    pub expected_version: Option<i64>,
    pub actor: Actor,
}

/// A parsed `ClaimReviews` request.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub max_items: u32,
    pub lease: Duration,
    pub actor: Actor,
    pub filter: QueueFilter,
    pub order: QueueOrder,
}

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("review item not found")]
    NotFound,
    #[error("this review item was already decided")]
    AlreadyDecided,
    #[error("this review item is not claimed by the caller; claim it first")]
    NotClaimed,
    #[error("the comment changed since it was read: it is at version {current}; read it again")]
    Stale { current: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum ReopenError {
    #[error("comment not found")]
    NotFound,
    #[error("the comment is in the review queue already")]
    InQueue,
    #[error("the comment changed since it was read: it is at version {current}; read it again")]
    Stale { current: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("review item {0} not found")]
    NotFound(ReviewId),
    #[error("review item {0} is not claimed by the caller")]
    NotClaimed(ReviewId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum ListQueueError {
    #[error(transparent)]
    Invalid(FieldViolation),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Moderation {
    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id))]
    pub async fn list_review_queue(
        &self,
        principal: &Principal,
        filter: QueueFilter,
        order: QueueOrder,
        page_size: PageSize,
        page_token: &str,
    ) -> Result<Page<ReviewItem>, ListQueueError> {
        let scope = filter.scope(order);
        let after: Option<QueueCursor> =
            PageToken::decode("page_token", page_token, &scope).map_err(ListQueueError::Invalid)?;
        let limit = page_size.get();
        let items = self
            .inner
            .store
            .list_review_queue(
                principal.tenant_id,
                &QueueQuery {
                    filter,
                    order,
                    after,
                    limit: limit + 1,
                },
            )
            .await?;
        Ok(Page::from_overfetch(
            in_force(items),
            limit,
            &scope,
            QueueCursor::after,
        ))
    }

    /// How many open items match `filter`: exact up to [`QUEUE_COUNT_CAP`],
    /// else the cap and `true`.
    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id))]
    pub async fn count_review_queue(
        &self,
        principal: &Principal,
        filter: &QueueFilter,
    ) -> Result<(u64, bool), StoreError> {
        let counted = self
            .inner
            .store
            .count_review_queue(principal.tenant_id, filter, QUEUE_COUNT_CAP + 1)
            .await?;
        Ok((
            counted.min(u64::from(QUEUE_COUNT_CAP)),
            counted > u64::from(QUEUE_COUNT_CAP),
        ))
    }

    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id))]
    pub async fn claim_reviews(
        &self,
        principal: &Principal,
        request: ClaimRequest,
    ) -> Result<Vec<ReviewItem>, StoreError> {
        let now = now();
        let lease = chrono::Duration::from_std(request.lease).unwrap_or(chrono::Duration::MAX);
        self.inner
            .store
            .claim_reviews(
                principal.tenant_id,
                &Claim {
                    actor: request.actor,
                    max_items: request.max_items,
                    filter: request.filter,
                    order: request.order,
                    now,
                    lease_until: now + lease,
                },
            )
            .await
            .map(in_force)
    }

    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id, %comment_id))]
    pub async fn reopen_comment(
        &self,
        principal: &Principal,
        comment_id: CommentId,
        expected_version: Option<i64>,
        note: &str,
        actor: Actor,
    ) -> Result<Comment, ReopenError> {
        let outcome = self
            .inner
            .store
            .reopen_comment(
                principal.tenant_id,
                &Reopen {
                    comment_id,
                    expected_version,
                    note,
                    actor: &actor,
                    now: now(),
                },
            )
            .await?;
        match outcome {
            Ok(comment) => {
                self.inner.sequencer.kick();
                Ok(comment)
            }
            Err(ReopenRejection::NotFound) => Err(ReopenError::NotFound),
            Err(ReopenRejection::InQueue) => Err(ReopenError::InQueue),
            Err(ReopenRejection::Stale { current }) => Err(ReopenError::Stale { current }),
        }
    }

    /// Decides each item on its own transaction, in order. A refusal is
    /// that item's result; a database failure ends the call (the items
    /// before it stay decided and answer `AlreadyDecided` on a retry).
    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id, decisions = requests.len()))]
    pub async fn decide_reviews(
        &self,
        principal: &Principal,
        requests: Vec<DecideRequest>,
    ) -> Result<Vec<BulkOutcome>, StoreError> {
        let mut results = Vec::with_capacity(requests.len());
        for request in requests {
            let review_id = request.review_id;
            match self.decide_review(principal, request).await {
                Err(DecideError::Store(err)) => return Err(err),
                outcome => results.push((review_id, outcome)),
            }
        }
        Ok(results)
    }

    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id, review_id = %request.review_id))]
    pub async fn decide_review(
        &self,
        principal: &Principal,
        request: DecideRequest,
    ) -> Result<Comment, DecideError> {
        let DecideRequest {
            review_id,
            decision,
            label,
            note,
            reason_code,
            expected_version,
            actor,
        } = request;
        let lessons = [
            label
                .teaches(decision, reason_code.as_deref())
                .map(Label::spam),
            toxicity_lesson(decision, reason_code.as_deref()),
        ];
        let outcome = self
            .inner
            .store
            .decide_review(
                principal.tenant_id,
                &Decision {
                    review_id,
                    decision,
                    reason_code,
                    expected_version,
                    note,
                    actor: actor.clone(),
                    now: now(),
                },
            )
            .await?;
        match outcome {
            Ok(comment) => {
                self.inner.sequencer.kick();
                crate::telemetry::record_decision(comment.status);
                // The decision is committed whatever happens here: a label
                // that cannot be stored now is logged, not turned into an
                // error the caller would retry.
                for lesson in lessons.into_iter().flatten() {
                    if let Err(err) = self
                        .learn_comment(
                            principal.tenant_id,
                            &comment,
                            lesson,
                            LabelSource::Review,
                            &actor,
                        )
                        .await
                    {
                        tracing::warn!(
                            model = lesson.kind().as_str(),
                            error = %err,
                            "the decision was stored but not learned"
                        );
                    }
                }
                Ok(comment)
            }
            Err(DecideRejection::NotFound) => Err(DecideError::NotFound),
            Err(DecideRejection::AlreadyDecided) => Err(DecideError::AlreadyDecided),
            Err(DecideRejection::NotClaimedByCaller) => Err(DecideError::NotClaimed),
            Err(DecideRejection::Stale { current }) => Err(DecideError::Stale { current }),
        }
    }

    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id))]
    pub async fn release_reviews(
        &self,
        principal: &Principal,
        review_ids: Vec<ReviewId>,
        actor: Actor,
    ) -> Result<Vec<ReviewId>, ReleaseError> {
        let mut seen = HashSet::new();
        let ids: Vec<ReviewId> = review_ids
            .into_iter()
            .filter(|id| seen.insert(*id))
            .collect();
        match self
            .inner
            .store
            .release_reviews(principal.tenant_id, &ids, &actor, now())
            .await?
        {
            Ok(released) => Ok(released),
            Err(ReleaseRejection::NotFound(id)) => Err(ReleaseError::NotFound(id)),
            Err(ReleaseRejection::NotClaimedByCaller(id)) => Err(ReleaseError::NotClaimed(id)),
        }
    }
}

/// Items with their author's standing as in force now: a term that ended is
/// shown as normal.
fn in_force(mut items: Vec<ReviewItem>) -> Vec<ReviewItem> {
    let at = now();
    for item in &mut items {
        item.author_standing = item.author_standing.in_force(at);
    }
    items
}
