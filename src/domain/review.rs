use chrono::{DateTime, Utc};

use super::error::check_text;
use super::{
    Actor, Comment, CommentStatus, FieldViolation, Label, Reason, ReviewId, ToxicityCategory,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewDecision {
    Approve,
    Reject,
}

impl ReviewDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewDecision::Approve => "approve",
            ReviewDecision::Reject => "reject",
        }
    }

    /// The status a comment takes when a moderator decides it so.
    pub fn status(self) -> CommentStatus {
        match self {
            ReviewDecision::Approve => CommentStatus::Approved,
            ReviewDecision::Reject => CommentStatus::Rejected,
        }
    }

    /// The reason appended to a comment when `actor` decides it so.
    pub fn reason(self, actor: &Actor, reason_code: Option<&str>) -> Reason {
        let verb = match self {
            ReviewDecision::Approve => "approved",
            ReviewDecision::Reject => "rejected",
        };
        let message = match reason_code {
            Some(code) => format!("{verb} by {actor} ({code})"),
            None => format!("{verb} by {actor}"),
        };
        Reason::new("review.decision", message)
    }
}

/// Where a reopened comment goes in the queue: after reports, before what
/// the pipeline holds.
pub const REOPENED_PRIORITY: i32 = 250;

/// The reason a reopened comment carries back to the queue.
pub fn reopened_reason(actor: &Actor, note: &str) -> Reason {
    let message = if note.is_empty() {
        format!("reopened by {actor}")
    } else {
        format!("reopened by {actor}: {note}")
    };
    Reason::new("review.reopened", message)
}

/// What a review decision teaches the tenant's spam model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpamLabel {
    /// Approving teaches ham, rejecting teaches spam.
    #[default]
    FromDecision,
    Spam,
    Ham,
    /// Teach nothing (e.g. rejected as abusive, which is not spam).
    Skip,
}

impl SpamLabel {
    /// Whether the decision is spam, or `None` when it teaches nothing. A
    /// rejection for abuse (a `toxicity.*` or `hate.*` reason code) is not
    /// a spam lesson unless the moderator says so.
    pub fn teaches(self, decision: ReviewDecision, reason_code: Option<&str>) -> Option<bool> {
        match self {
            SpamLabel::FromDecision
                if decision == ReviewDecision::Reject
                    && reason_code
                        .is_some_and(|c| ToxicityCategory::from_reason_code(c).is_some()) =>
            {
                None
            }
            SpamLabel::FromDecision => Some(decision == ReviewDecision::Reject),
            SpamLabel::Spam => Some(true),
            SpamLabel::Ham => Some(false),
            SpamLabel::Skip => None,
        }
    }
}

/// What a review decision teaches the tenant's toxicity model: approving,
/// that the comment is not toxic; rejecting with a `toxicity.<category>` or
/// `hate.*` reason code, that category; any other rejection, nothing (a
/// comment rejected as spam or off topic says nothing about abuse).
pub fn toxicity_lesson(decision: ReviewDecision, reason_code: Option<&str>) -> Option<Label> {
    match decision {
        ReviewDecision::Approve => Some(Label::NotToxic),
        ReviewDecision::Reject => reason_code
            .and_then(ToxicityCategory::from_reason_code)
            .map(Label::Toxic),
    }
}

/// A moderator's identity inside the publisher's platform. Platforms usually
/// hold one moderator key and act for many people; this tells them apart in
/// claims and in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeratorId(String);

impl ModeratorId {
    pub fn parse(field: &str, value: String) -> Result<Option<Self>, FieldViolation> {
        if value.is_empty() {
            return Ok(None);
        }
        check_text(field, &value, 128, true)?;
        // `key:` names callers that gave no moderator id; keep that namespace ours.
        if value.starts_with("key:") || value == "system" || value.starts_with("operator:") {
            return Err(FieldViolation::new(field, "uses a reserved prefix"));
        }
        Ok(Some(Self(value)))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A held comment in the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewItem {
    pub review_id: ReviewId,
    pub comment: Comment,
    pub priority: i32,
    pub enqueue_time: DateTime<Utc>,
    pub lease_expire_time: Option<DateTime<Utc>>,
    pub claimed_by: Option<String>,
    /// The comment author's standing as stored (see [`StandingTerm::in_force`]).
    pub author_standing: super::StandingTerm,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_for_abuse_teaches_its_category_and_not_spam() {
        use ReviewDecision::{Approve, Reject};
        assert_eq!(
            toxicity_lesson(Reject, Some("toxicity.threat")),
            Some(Label::Toxic(ToxicityCategory::Threat))
        );
        assert_eq!(
            toxicity_lesson(Reject, Some("hate.dehumanisation")),
            Some(Label::Toxic(ToxicityCategory::IdentityAttack))
        );
        assert_eq!(
            toxicity_lesson(Reject, Some("hate.threat")),
            Some(Label::Toxic(ToxicityCategory::Threat))
        );
        assert_eq!(toxicity_lesson(Reject, Some("toxicity.rude")), None);
        assert_eq!(toxicity_lesson(Reject, Some("spam")), None);
        assert_eq!(toxicity_lesson(Reject, None), None);
        assert_eq!(toxicity_lesson(Approve, None), Some(Label::NotToxic));

        let default = SpamLabel::FromDecision;
        assert_eq!(default.teaches(Reject, Some("toxicity.insult")), None);
        assert_eq!(default.teaches(Reject, Some("hate.slur")), None);
        assert_eq!(default.teaches(Reject, Some("off_topic")), Some(true));
        assert_eq!(
            default.teaches(Approve, Some("toxicity.insult")),
            Some(false)
        );
        assert_eq!(
            SpamLabel::Spam.teaches(Reject, Some("toxicity.insult")),
            Some(true),
            "the moderator's word wins"
        );
    }

    #[test]
    fn a_decision_gives_the_status_and_a_reason_naming_who_and_why() {
        let actor = Actor::operator();
        assert_eq!(ReviewDecision::Reject.status(), CommentStatus::Rejected);
        assert_eq!(ReviewDecision::Approve.status(), CommentStatus::Approved);
        let reason = ReviewDecision::Reject.reason(&actor, Some("off_topic"));
        assert_eq!(reason.code, "review.decision");
        assert_eq!(reason.message, format!("rejected by {actor} (off_topic)"));
        let reopened = reopened_reason(&actor, "");
        assert_eq!(reopened.message, format!("reopened by {actor}"));
        assert_eq!(
            reopened_reason(&actor, "wrong call").message,
            format!("reopened by {actor}: wrong call")
        );
    }
}
