//! Readers' reports, and when they send a published comment back to the queue.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::{Actor, Comment, CommentId, CommentStatus, ReportReason, TenantId};

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

/// A comment going back to the queue: its new status, the reason appended
/// and the new item's priority.
#[derive(Clone)]
pub(crate) struct Requeue {
    pub status: CommentStatus,
    pub reason: crate::domain::Reason,
    pub priority: i32,
}

/// Queue priorities above anything the pipeline gives (at most 200).
const ILLEGAL_REPORT_PRIORITY: i32 = 400;
const REPORTED_PRIORITY: i32 = 300;

/// Whether `report` sends `comment` back to the queue, given the comment's
/// reports by reason (this one included) and whether it already has an open
/// review item. Only approved comments go back: a held one is already in the
/// queue and a rejected one is not published.
pub(crate) fn report_consequence(
    comment: &Comment,
    report: &NewReport<'_>,
    counts: &[(String, i64)],
    open_item: bool,
) -> Option<Requeue> {
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let illegal = report.reason == ReportReason::Illegal;
    if comment.status != CommentStatus::Approved
        || open_item
        || (!illegal && total < i64::from(report.threshold))
    {
        return None;
    }
    let mut by_reason: Vec<_> = counts.iter().collect();
    by_reason.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let listed = by_reason
        .iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let readers = if total == 1 { "reader" } else { "readers" };
    let (code, message, priority) = if illegal {
        (
            "report.illegal",
            format!("reported as illegal content; {total} {readers} reported it ({listed})"),
            ILLEGAL_REPORT_PRIORITY,
        )
    } else {
        (
            "report.threshold",
            format!("{total} {readers} reported it ({listed})"),
            REPORTED_PRIORITY,
        )
    };
    Some(Requeue {
        status: if illegal || report.hide {
            CommentStatus::PendingReview
        } else {
            CommentStatus::Approved
        },
        reason: crate::domain::Reason::new(code, message),
        priority,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published() -> Comment {
        Comment {
            comment_id: CommentId::generate(),
            article_id: "a1".into(),
            author_id: "ama".into(),
            body: "Bonjour".into(),
            original_body: None,
            status: CommentStatus::Approved,
            spam_score: 0.1,
            toxicity_score: 0.0,
            reasons: Vec::new(),
            create_time: Utc::now(),
            update_time: Utc::now(),
            client_comment_id: None,
            author_display_name: String::new(),
            parent_comment_id: None,
            language: "fr".into(),
            version: 1,
        }
    }

    fn report<'a>(actor: &'a Actor, reason: ReportReason, hide: bool) -> NewReport<'a> {
        NewReport {
            comment_id: CommentId::generate(),
            reporter: "r1",
            reason,
            detail: "",
            actor,
            now: Utc::now(),
            max_recent: 20,
            recent_since: Utc::now(),
            threshold: 3,
            hide,
        }
    }

    fn counts(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
        pairs.iter().map(|(r, n)| (r.to_string(), *n)).collect()
    }

    #[test]
    fn reports_requeue_at_the_threshold_or_at_once_for_illegal_content() {
        let actor = Actor::system();
        let comment = published();
        let spam = report(&actor, ReportReason::Spam, false);
        assert!(report_consequence(&comment, &spam, &counts(&[("spam", 2)]), false).is_none());
        let requeue = report_consequence(
            &comment,
            &spam,
            &counts(&[("offensive", 1), ("spam", 2)]),
            false,
        )
        .unwrap();
        assert_eq!(
            requeue.status,
            CommentStatus::Approved,
            "published until decided"
        );
        assert_eq!(requeue.reason.code, "report.threshold");
        assert_eq!(
            requeue.reason.message,
            "3 readers reported it (spam 2, offensive 1)"
        );
        let hidden = report(&actor, ReportReason::Spam, true);
        assert_eq!(
            report_consequence(&comment, &hidden, &counts(&[("spam", 3)]), false)
                .unwrap()
                .status,
            CommentStatus::PendingReview
        );

        let illegal = report(&actor, ReportReason::Illegal, false);
        let at_once =
            report_consequence(&comment, &illegal, &counts(&[("illegal", 1)]), false).unwrap();
        assert_eq!(
            at_once.status,
            CommentStatus::PendingReview,
            "always withdrawn"
        );
        assert_eq!(at_once.reason.code, "report.illegal");
        assert!(at_once.priority > requeue.priority);
    }

    #[test]
    fn only_published_comments_out_of_the_queue_go_back() {
        let actor = Actor::system();
        let illegal = report(&actor, ReportReason::Illegal, false);
        let many = counts(&[("illegal", 5)]);
        assert!(report_consequence(&published(), &illegal, &many, true).is_none());
        for status in [CommentStatus::PendingReview, CommentStatus::Rejected] {
            let comment = Comment {
                status,
                ..published()
            };
            assert!(report_consequence(&comment, &illegal, &many, false).is_none());
        }
    }
}
