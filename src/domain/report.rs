//! Reader reports: what readers flag, for moderators to look at again, and
//! when reports send a published comment back to the queue (storage applies
//! that decision in the report's transaction).

use super::error::check_text;
use super::{Comment, CommentStatus, FieldViolation, Reason};

/// Why a reader reported a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportReason {
    Offensive,
    Spam,
    Harassment,
    /// Sends the comment back to the queue at once, hidden.
    Illegal,
    Other,
}

impl ReportReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportReason::Offensive => "offensive",
            ReportReason::Spam => "spam",
            ReportReason::Harassment => "harassment",
            ReportReason::Illegal => "illegal",
            ReportReason::Other => "other",
        }
    }

    pub fn from_db(value: &str) -> Option<Self> {
        Some(match value {
            "offensive" => ReportReason::Offensive,
            "spam" => ReportReason::Spam,
            "harassment" => ReportReason::Harassment,
            "illegal" => ReportReason::Illegal,
            "other" => ReportReason::Other,
            _ => return None,
        })
    }
}

/// The platform's id for the reader who reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReporterId(String);

impl ReporterId {
    pub const MAX_CHARS: usize = 256;

    pub fn parse(field: &str, value: String) -> Result<Self, FieldViolation> {
        check_text(field, &value, Self::MAX_CHARS, true)?;
        Ok(ReporterId(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the reader wrote with the report; may be empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportDetail(String);

impl ReportDetail {
    pub const MAX_CHARS: usize = 2_000;

    pub fn parse(field: &str, value: String) -> Result<Self, FieldViolation> {
        check_text(field, &value, Self::MAX_CHARS, false)?;
        Ok(ReportDetail(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A comment going back to the queue: its new status, the reason appended
/// and the new item's priority.
#[derive(Clone)]
pub(crate) struct Requeue {
    pub status: CommentStatus,
    pub reason: Reason,
    pub priority: i32,
}

/// Queue priorities above anything the pipeline gives (at most 200).
const ILLEGAL_REPORT_PRIORITY: i32 = 400;
const REPORTED_PRIORITY: i32 = 300;

/// Whether a report for `reason` sends `comment` back to the queue, given
/// the tenant's report `threshold` and whether it hides reported comments,
/// the comment's reports by reason (this one included) and whether it
/// already has an open review item. Only approved comments go back: a held
/// one is already in the queue and a rejected one is not published.
pub(crate) fn report_consequence(
    comment: &Comment,
    reason: ReportReason,
    threshold: u32,
    hide: bool,
    counts: &[(String, i64)],
    open_item: bool,
) -> Option<Requeue> {
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let illegal = reason == ReportReason::Illegal;
    if comment.status != CommentStatus::Approved
        || open_item
        || (!illegal && total < i64::from(threshold))
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
        status: if illegal || hide {
            CommentStatus::PendingReview
        } else {
            CommentStatus::Approved
        },
        reason: Reason::new(code, message),
        priority,
    })
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::CommentId;

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

    /// A report's reason and whether the tenant hides reported comments;
    /// the tenant's threshold is 3.
    struct Filed {
        reason: ReportReason,
        hide: bool,
    }

    fn report(reason: ReportReason, hide: bool) -> Filed {
        Filed { reason, hide }
    }

    fn consequence(
        comment: &Comment,
        report: &Filed,
        counts: &[(String, i64)],
        open_item: bool,
    ) -> Option<Requeue> {
        report_consequence(comment, report.reason, 3, report.hide, counts, open_item)
    }

    fn counts(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
        pairs.iter().map(|(r, n)| (r.to_string(), *n)).collect()
    }

    #[test]
    fn reports_requeue_at_the_threshold_or_at_once_for_illegal_content() {
        let comment = published();
        let spam = report(ReportReason::Spam, false);
        assert!(consequence(&comment, &spam, &counts(&[("spam", 2)]), false).is_none());
        let requeue = consequence(
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
        let hidden = report(ReportReason::Spam, true);
        assert_eq!(
            consequence(&comment, &hidden, &counts(&[("spam", 3)]), false)
                .unwrap()
                .status,
            CommentStatus::PendingReview
        );

        let illegal = report(ReportReason::Illegal, false);
        let at_once = consequence(&comment, &illegal, &counts(&[("illegal", 1)]), false).unwrap();
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
        let illegal = report(ReportReason::Illegal, false);
        let many = counts(&[("illegal", 5)]);
        assert!(consequence(&published(), &illegal, &many, true).is_none());
        for status in [CommentStatus::PendingReview, CommentStatus::Rejected] {
            let comment = Comment {
                status,
                ..published()
            };
            assert!(consequence(&comment, &illegal, &many, false).is_none());
        }
    }
}
