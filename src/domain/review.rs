use chrono::{DateTime, Utc};

use super::error::check_text;
use super::{Comment, FieldViolation, ReviewId};

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
    /// Whether the decision is spam, or `None` when it teaches nothing.
    pub fn teaches(self, decision: ReviewDecision) -> Option<bool> {
        match self {
            SpamLabel::FromDecision => Some(decision == ReviewDecision::Reject),
            SpamLabel::Spam => Some(true),
            SpamLabel::Ham => Some(false),
            SpamLabel::Skip => None,
        }
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
