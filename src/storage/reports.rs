//! Readers' reports as stored. What a report triggers is decided by
//! [`crate::domain::report_consequence`]; the backends apply it in the same
//! transaction as the report.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::{Actor, Comment, CommentId, ReportReason, TenantId};

#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Records a reader's report and applies what it triggers, in one
    /// transaction: once the comment has `policy.threshold` reports (or one
    /// report of illegal content) an approved comment gets an open review
    /// item and a reason listing the reports, and is withdrawn (pending
    /// review) when the policy hides reported comments or the content is
    /// reported illegal. Audited as `comment.reported` and `comment.requeued`.
    async fn report_comment(
        &self,
        tenant: TenantId,
        report: &NewReport<'_>,
    ) -> Result<ReportOutcome, StoreError>;
    /// Every report `reporter` made, oldest first.
    async fn reports_by(
        &self,
        tenant: TenantId,
        reporter: &str,
    ) -> Result<Vec<ReportRecord>, StoreError>;
}

/// A stored report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRecord {
    pub comment_id: CommentId,
    pub reason: ReportReason,
    /// Empty once erased.
    pub detail: String,
    pub create_time: DateTime<Utc>,
}

/// A reader's report on its way to the store.
pub struct NewReport<'a> {
    pub comment_id: CommentId,
    pub reporter: &'a str,
    pub reason: ReportReason,
    pub detail: &'a str,
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
    /// A reporter may file at most `max_recent` reports since `recent_since`.
    pub max_recent: u32,
    pub recent_since: DateTime<Utc>,
    pub threshold: u32,
    pub hide: bool,
}

/// What a report did.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportOutcome {
    NotFound,
    /// The reporter filed too many reports lately; nothing was stored.
    RateLimited,
    /// The reporter had already reported this comment; nothing changed.
    Duplicate {
        comment: Comment,
        reports: i64,
    },
    Recorded {
        comment: Comment,
        /// Reports on the comment, this one included.
        reports: i64,
        /// This report sent the comment back to the queue.
        requeued: bool,
    },
}

/// A report as either backend reads it.
pub(crate) fn report_record(
    comment_id: uuid::Uuid,
    reason: &str,
    detail: String,
    create_time: DateTime<Utc>,
) -> Result<ReportRecord, StoreError> {
    Ok(ReportRecord {
        comment_id: CommentId::from_uuid(comment_id),
        reason: ReportReason::from_db(reason)
            .ok_or_else(|| StoreError::Corrupt(format!("report reason {reason:?}")))?,
        detail,
        create_time,
    })
}
