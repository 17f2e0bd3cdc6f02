use tonic::{Request, Response, Status};

use super::pb::review_service_server::ReviewService;
use super::{Gate, auth::credentials, convert, observe, pb};
use crate::domain::{AuthorId, CommentId, PageSize, Permission};
use crate::moderation::{ClaimRequest, Moderation, ReviewActor};

pub struct ReviewApi {
    moderation: Moderation,
    gate: Gate,
}

impl ReviewApi {
    pub fn new(moderation: Moderation, gate: Gate) -> Self {
        ReviewApi { moderation, gate }
    }
}

#[tonic::async_trait]
impl ReviewService for ReviewApi {
    async fn list_review_queue(
        &self,
        request: Request<pb::ListReviewQueueRequest>,
    ) -> Result<Response<pb::ListReviewQueueResponse>, Status> {
        observe(&self.gate, "ListReviewQueue", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Review)
                .await?;
            let request = request.into_inner();
            let filter = convert::queue_filter(
                request.article_id,
                request.reason_code,
                request.min_spam_score,
                request.reported_only,
            )?;
            let order = convert::queue_order(request.order)?;
            let page_size = PageSize::parse("page_size", request.page_size, 50, 500)?;
            let page = self
                .moderation
                .list_review_queue(&principal, filter, order, page_size, &request.page_token)
                .await?;
            Ok(pb::ListReviewQueueResponse {
                items: page.items.into_iter().map(convert::review_item).collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn claim_reviews(
        &self,
        request: Request<pb::ClaimReviewsRequest>,
    ) -> Result<Response<pb::ClaimReviewsResponse>, Status> {
        observe(&self.gate, "ClaimReviews", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Review)
                .await?;
            let request = request.into_inner();
            let (max_items, lease) =
                convert::claim_limits(request.max_items, request.lease_seconds)?;
            let moderator = convert::moderator_id(request.moderator_id)?;
            let filter = convert::queue_filter(
                request.article_id,
                request.reason_code,
                request.min_spam_score,
                request.reported_only,
            )?;
            let order = convert::queue_order(request.order)?;
            let items = self
                .moderation
                .claim_reviews(
                    &principal,
                    ClaimRequest {
                        max_items,
                        lease,
                        actor: ReviewActor::of(&principal, moderator),
                        filter,
                        order,
                    },
                )
                .await?;
            Ok(pb::ClaimReviewsResponse {
                items: items.into_iter().map(convert::review_item).collect(),
            })
        })
        .await
    }

    async fn decide_review(
        &self,
        request: Request<pb::DecideReviewRequest>,
    ) -> Result<Response<pb::DecideReviewResponse>, Status> {
        observe(&self.gate, "DecideReview", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Review)
                .await?;
            let request = request.into_inner();
            let moderator = convert::moderator_id(request.moderator_id)?;
            let decision = convert::decide_request(
                "",
                request.review_id,
                request.decision,
                request.spam_label,
                request.note,
                request.reason_code,
                request.expected_version,
                ReviewActor::of(&principal, moderator),
            )?;
            let comment = self.moderation.decide_review(&principal, decision).await?;
            Ok(pb::DecideReviewResponse {
                comment: Some(convert::comment(comment)),
            })
        })
        .await
    }

    async fn decide_reviews(
        &self,
        request: Request<pb::DecideReviewsRequest>,
    ) -> Result<Response<pb::DecideReviewsResponse>, Status> {
        observe(&self.gate, "DecideReviews", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Review)
                .await?;
            let request = request.into_inner();
            let moderator = convert::moderator_id(request.moderator_id)?;
            let actor = ReviewActor::of(&principal, moderator);
            let decisions = convert::bulk_decisions(request.decisions, actor)?;
            let results = self
                .moderation
                .decide_reviews(&principal, decisions)
                .await?;
            Ok(pb::DecideReviewsResponse {
                results: results.into_iter().map(convert::bulk_result).collect(),
            })
        })
        .await
    }

    async fn reopen_comment(
        &self,
        request: Request<pb::ReopenCommentRequest>,
    ) -> Result<Response<pb::ReopenCommentResponse>, Status> {
        observe(&self.gate, "ReopenComment", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Review)
                .await?;
            let request = request.into_inner();
            let comment_id = CommentId::parse("comment_id", &request.comment_id)?;
            let note = convert::note(request.note)?;
            let expected_version = convert::expected_version(request.expected_version)?;
            let moderator = convert::moderator_id(request.moderator_id)?;
            let comment = self
                .moderation
                .reopen_comment(
                    &principal,
                    comment_id,
                    expected_version,
                    &note,
                    ReviewActor::of(&principal, moderator),
                )
                .await?;
            Ok(pb::ReopenCommentResponse {
                comment: Some(convert::comment(comment)),
            })
        })
        .await
    }

    type WatchQueueStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<pb::WatchQueueResponse, Status>> + Send>,
    >;

    async fn watch_queue(
        &self,
        request: Request<pb::WatchQueueRequest>,
    ) -> Result<Response<Self::WatchQueueStream>, Status> {
        observe(&self.gate, "WatchQueue", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Review)
                .await?;
            let after = convert::after_sequence(request.get_ref().after_sequence)?;
            let events = self.moderation.watch_decisions(&principal, after);
            let stream = tokio_stream::StreamExt::filter_map(
                tokio_stream::wrappers::ReceiverStream::new(events),
                |event| match event {
                    Ok(event) => convert::queue_move(event).map(Ok),
                    Err(err) => Some(Err(Status::from(err))),
                },
            );
            Ok(Box::pin(stream) as Self::WatchQueueStream)
        })
        .await
    }

    async fn release_reviews(
        &self,
        request: Request<pb::ReleaseReviewsRequest>,
    ) -> Result<Response<pb::ReleaseReviewsResponse>, Status> {
        observe(&self.gate, "ReleaseReviews", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Review)
                .await?;
            let request = request.into_inner();
            let ids = convert::review_ids(request.review_ids)?;
            let moderator = convert::moderator_id(request.moderator_id)?;
            let released = self
                .moderation
                .release_reviews(&principal, ids, ReviewActor::of(&principal, moderator))
                .await?;
            Ok(pb::ReleaseReviewsResponse {
                review_ids: released.iter().map(ToString::to_string).collect(),
            })
        })
        .await
    }

    async fn set_author_standing(
        &self,
        request: Request<pb::SetAuthorStandingRequest>,
    ) -> Result<Response<pb::SetAuthorStandingResponse>, Status> {
        observe(&self.gate, "SetAuthorStanding", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Review)
                .await?;
            let request = request.into_inner();
            let author = AuthorId::parse("author_id", request.author_id)?;
            let term = convert::standing_term(request.standing, request.until)?;
            let reason = convert::standing_reason(request.reason)?;
            let moderator = convert::moderator_id(request.moderator_id)?;
            let view = self
                .moderation
                .set_author_standing(
                    &principal,
                    ReviewActor::of(&principal, moderator),
                    author,
                    term,
                    &reason,
                )
                .await?;
            Ok(pb::SetAuthorStandingResponse {
                author: Some(convert::author(&view)),
            })
        })
        .await
    }

    async fn get_author(
        &self,
        request: Request<pb::GetAuthorRequest>,
    ) -> Result<Response<pb::GetAuthorResponse>, Status> {
        observe(&self.gate, "GetAuthor", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Review)
                .await?;
            let request = request.into_inner();
            let author = AuthorId::parse("author_id", request.author_id)?;
            let recent = PageSize::parse("page_size", request.page_size, 20, 100)?;
            let view = self
                .moderation
                .get_author(&principal, author, recent.get())
                .await?;
            Ok(pb::GetAuthorResponse {
                author: Some(convert::author(&view)),
                recent_comments: view.recent.into_iter().map(convert::comment).collect(),
            })
        })
        .await
    }
}
