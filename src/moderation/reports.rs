//! Reader reports. The store records a report and applies what it triggers
//! in one transaction, so concurrent reports on one comment requeue it once.

use chrono::Duration;

use super::{Moderation, now};
use crate::domain::{Comment, CommentId, Principal, ReportDetail, ReportReason, ReporterId};
use crate::storage::{NewReport, ReportOutcome, StoreError};

/// Reports one reader may file in [`REPORT_WINDOW`], per tenant: enough for
/// any honest reader, few enough that one account cannot flood the queue.
pub const REPORTS_PER_WINDOW: u32 = 20;
pub const REPORT_WINDOW: Duration = Duration::hours(1);

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("comment not found")]
    NotFound,
    #[error("this reader filed {REPORTS_PER_WINDOW} reports in the last hour; try again later")]
    RateLimited,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a report did.
#[derive(Debug, Clone)]
pub struct Reported {
    pub comment: Comment,
    pub reports: i64,
    /// False when the reader had already reported the comment.
    pub recorded: bool,
    pub requeued: bool,
}

impl Moderation {
    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id, reason = reason.as_str()))]
    pub async fn report_comment(
        &self,
        principal: &Principal,
        comment_id: CommentId,
        reporter: ReporterId,
        reason: ReportReason,
        detail: ReportDetail,
    ) -> Result<Reported, ReportError> {
        let settings = self.settings(principal.tenant_id).await?;
        let at = now();
        let actor = principal.actor();
        let outcome = self
            .store()
            .report_comment(
                principal.tenant_id,
                &NewReport {
                    comment_id,
                    reporter: reporter.as_str(),
                    reason,
                    detail: detail.as_str(),
                    actor: &actor,
                    now: at,
                    max_recent: REPORTS_PER_WINDOW,
                    recent_since: at - REPORT_WINDOW,
                    threshold: settings.report_threshold,
                    hide: settings.hide_reported,
                },
            )
            .await?;
        match outcome {
            ReportOutcome::NotFound => Err(ReportError::NotFound),
            ReportOutcome::RateLimited => Err(ReportError::RateLimited),
            ReportOutcome::Duplicate { comment, reports } => Ok(Reported {
                comment,
                reports,
                recorded: false,
                requeued: false,
            }),
            ReportOutcome::Recorded {
                comment,
                reports,
                requeued,
            } => {
                if requeued {
                    self.inner.sequencer.kick();
                }
                metrics::counter!("moderato_reports_total", "reason" => reason.as_str(), "requeued" => requeued.to_string()).increment(1);
                Ok(Reported {
                    comment,
                    reports,
                    recorded: true,
                    requeued,
                })
            }
        }
    }
}
