use tonic::{Request, Response, Status};

use super::pb::comment_service_server::CommentService;
use super::{Gate, auth::credentials, convert, observe, pb};
use crate::domain::{CommentId, Label, PageSize, Permission, ReportDetail, ReporterId};
use crate::moderation::{Marked, Moderation};

pub struct CommentApi {
    moderation: Moderation,
    gate: Gate,
}

impl CommentApi {
    pub fn new(moderation: Moderation, gate: Gate) -> Self {
        CommentApi { moderation, gate }
    }
}

#[tonic::async_trait]
impl CommentService for CommentApi {
    async fn submit_comment(
        &self,
        request: Request<pb::SubmitCommentRequest>,
    ) -> Result<Response<pb::SubmitCommentResponse>, Status> {
        observe(&self.gate, "SubmitComment", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::SubmitComments)
                .await?;
            let comment = convert::new_comment(request.into_inner())?;
            let stored = self.moderation.submit_comment(&principal, comment).await?;
            Ok(pb::SubmitCommentResponse {
                comment: Some(convert::comment(stored)),
            })
        })
        .await
    }

    async fn get_comment(
        &self,
        request: Request<pb::GetCommentRequest>,
    ) -> Result<Response<pb::GetCommentResponse>, Status> {
        observe(&self.gate, "GetComment", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::ReadComments)
                .await?;
            let id = CommentId::parse("comment_id", &request.get_ref().comment_id)?;
            let comment = self.moderation.get_comment(&principal, id).await?;
            Ok(pb::GetCommentResponse {
                comment: Some(convert::comment(comment)),
            })
        })
        .await
    }

    async fn list_comments(
        &self,
        request: Request<pb::ListCommentsRequest>,
    ) -> Result<Response<pb::ListCommentsResponse>, Status> {
        observe(&self.gate, "ListComments", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::ReadComments)
                .await?;
            let request = request.into_inner();
            let article_id = convert::optional_article_id(request.article_id)?;
            let status = convert::status_filter(request.status)?;
            let page_size = PageSize::parse("page_size", request.page_size, 50, 500)?;
            let page = self
                .moderation
                .list_comments(
                    &principal,
                    article_id,
                    status,
                    page_size,
                    &request.page_token,
                )
                .await?;
            Ok(pb::ListCommentsResponse {
                comments: page.items.into_iter().map(convert::comment).collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn mark_spam(
        &self,
        request: Request<pb::MarkSpamRequest>,
    ) -> Result<Response<pb::MarkSpamResponse>, Status> {
        observe(&self.gate, "MarkSpam", async {
            let marked = self
                .mark(&request, &request.get_ref().comment_id, Label::Spam)
                .await?;
            Ok(pb::MarkSpamResponse {
                learned: marked.learned,
                model_version: marked.model_version,
            })
        })
        .await
    }

    async fn mark_toxic(
        &self,
        request: Request<pb::MarkToxicRequest>,
    ) -> Result<Response<pb::MarkToxicResponse>, Status> {
        observe(&self.gate, "MarkToxic", async {
            let category = convert::toxicity_category("category", request.get_ref().category)?;
            let marked = self
                .mark(
                    &request,
                    &request.get_ref().comment_id,
                    Label::Toxic(category),
                )
                .await?;
            Ok(pb::MarkToxicResponse {
                learned: marked.learned,
                model_version: marked.model_version,
            })
        })
        .await
    }

    async fn mark_not_toxic(
        &self,
        request: Request<pb::MarkNotToxicRequest>,
    ) -> Result<Response<pb::MarkNotToxicResponse>, Status> {
        observe(&self.gate, "MarkNotToxic", async {
            let marked = self
                .mark(&request, &request.get_ref().comment_id, Label::NotToxic)
                .await?;
            Ok(pb::MarkNotToxicResponse {
                learned: marked.learned,
                model_version: marked.model_version,
            })
        })
        .await
    }

    async fn report_comment(
        &self,
        request: Request<pb::ReportCommentRequest>,
    ) -> Result<Response<pb::ReportCommentResponse>, Status> {
        observe(&self.gate, "ReportComment", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::ReportComments)
                .await?;
            let request = request.into_inner();
            let comment_id = CommentId::parse("comment_id", &request.comment_id)?;
            let reporter = ReporterId::parse("reporter_id", request.reporter_id)?;
            let reason = convert::report_reason(request.reason)?;
            let detail = ReportDetail::parse("detail", request.detail)?;
            let reported = self
                .moderation
                .report_comment(&principal, comment_id, reporter, reason, detail)
                .await?;
            Ok(pb::ReportCommentResponse {
                comment: Some(convert::comment(reported.comment)),
                report_count: reported.reports,
                recorded: reported.recorded,
                requeued: reported.requeued,
            })
        })
        .await
    }

    type WatchDecisionsStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<pb::WatchDecisionsResponse, Status>> + Send>,
    >;

    async fn watch_decisions(
        &self,
        request: Request<pb::WatchDecisionsRequest>,
    ) -> Result<Response<Self::WatchDecisionsStream>, Status> {
        observe(&self.gate, "WatchDecisions", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::ReadComments)
                .await?;
            let after = convert::after_sequence(request.get_ref().after_sequence)?;
            let events = self.moderation.watch_decisions(&principal, after);
            let stream = tokio_stream::StreamExt::map(
                tokio_stream::wrappers::ReceiverStream::new(events),
                |event| event.map(convert::decision_event).map_err(Status::from),
            );
            Ok(Box::pin(stream) as Self::WatchDecisionsStream)
        })
        .await
    }

    async fn mark_ham(
        &self,
        request: Request<pb::MarkHamRequest>,
    ) -> Result<Response<pb::MarkHamResponse>, Status> {
        observe(&self.gate, "MarkHam", async {
            let marked = self
                .mark(&request, &request.get_ref().comment_id, Label::Ham)
                .await?;
            Ok(pb::MarkHamResponse {
                learned: marked.learned,
                model_version: marked.model_version,
            })
        })
        .await
    }
}

impl CommentApi {
    async fn mark<T>(
        &self,
        request: &Request<T>,
        comment_id: &str,
        label: Label,
    ) -> Result<Marked, Status> {
        let principal = self
            .moderation
            .authorize(credentials(request), Permission::LabelComments)
            .await?;
        let id = CommentId::parse("comment_id", comment_id)?;
        Ok(self.moderation.mark_comment(&principal, id, label).await?)
    }
}
