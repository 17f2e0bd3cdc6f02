use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::check_text;
use super::{CommentId, FieldViolation};

/// Hard ceiling on a body, whatever a tenant's `max_body_chars` says: it bounds
/// the work one request can cause before the tenant's policy is even known.
pub const MAX_BODY_CHARS_CEILING: usize = 100_000;

macro_rules! text_field {
    ($(#[$doc:meta])* $name:ident, $max:expr, required = $required:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(field: &str, value: String) -> Result<Self, FieldViolation> {
                check_text(field, &value, Self::MAX_CHARS, $required)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }
    };
}

text_field!(
    /// The publisher's id for an article.
    ArticleId, 256, required = true
);
text_field!(
    /// The publisher's id for a reader.
    AuthorId, 256, required = true
);
text_field!(
    /// An idempotency key chosen by the publisher, unique within a tenant.
    ClientCommentId, 128, required = true
);
text_field!(
    /// The name a reader shows; may be empty.
    DisplayName, 256, required = false
);

/// A comment's text, kept exactly as submitted (spans are byte offsets into it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentBody(String);

impl CommentBody {
    pub fn parse(field: &str, value: String) -> Result<Self, FieldViolation> {
        if value.trim().is_empty() {
            return Err(FieldViolation::new(
                field,
                "is required and must not be blank",
            ));
        }
        if value.chars().count() > MAX_BODY_CHARS_CEILING {
            return Err(FieldViolation::new(
                field,
                format!("is longer than {MAX_BODY_CHARS_CEILING} characters"),
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }
}

/// A BCP 47-shaped language tag (`fr`, `en-GB`); not checked against a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageTag(String);

impl LanguageTag {
    pub fn parse(field: &str, value: String) -> Result<Option<Self>, FieldViolation> {
        if value.is_empty() {
            return Ok(None);
        }
        let well_formed = value.len() <= 35
            && value.split('-').all(|part| {
                !part.is_empty()
                    && part.len() <= 8
                    && part.bytes().all(|b| b.is_ascii_alphanumeric())
            });
        if !well_formed {
            return Err(FieldViolation::new(
                field,
                "must be a language tag such as `fr` or `en-GB`",
            ));
        }
        Ok(Some(Self(value)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A comment as it arrives, parsed.
#[derive(Debug, Clone)]
pub struct NewComment {
    pub article_id: ArticleId,
    pub author_id: AuthorId,
    pub body: CommentBody,
    pub client_comment_id: Option<ClientCommentId>,
    pub author_display_name: DisplayName,
    pub author_ip: Option<IpAddr>,
    pub parent_comment_id: Option<CommentId>,
    pub language: Option<LanguageTag>,
}

impl NewComment {
    /// Whether a stored comment is the same submission (an idempotent retry)
    /// rather than a different comment reusing the idempotency key.
    pub fn is_same_submission(&self, stored: &Comment) -> bool {
        stored.article_id == self.article_id.as_str()
            && stored.author_id == self.author_id.as_str()
            && stored.original_body.as_deref().unwrap_or(&stored.body) == self.body.as_str()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommentStatus {
    Approved,
    PendingReview,
    Rejected,
}

impl CommentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CommentStatus::Approved => "approved",
            CommentStatus::PendingReview => "pending_review",
            CommentStatus::Rejected => "rejected",
        }
    }

    pub fn from_db(value: &str) -> Option<Self> {
        match value {
            "approved" => Some(CommentStatus::Approved),
            "pending_review" => Some(CommentStatus::PendingReview),
            "rejected" => Some(CommentStatus::Rejected),
            _ => None,
        }
    }
}

/// A byte range into the original body, `start..end`, on `char` boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

/// One explanation of a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub code: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rule_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rule_name: String,
    /// What the rule asked for: `reject`, `review`, `score`, `tag`, `mask`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub action: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
    /// Who the finding is about, when that is a second place in the text:
    /// the group a hateful construction attacks (`span` holds the attack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Span>,
    /// What this finding added to the spam score, or how sure it makes its
    /// toxicity category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

impl Reason {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Reason {
            code: code.into(),
            rule_id: String::new(),
            rule_name: String::new(),
            action: String::new(),
            message: message.into(),
            span: None,
            target: None,
            score: None,
        }
    }

    /// The reason as kept once the text it explains is erased (at its
    /// author's request): code, rule, action and score stay, so the
    /// decision stays explained; spans into the text go, and so does a
    /// link rule's quote of the link's host, the one message that repeats
    /// the author's words.
    pub fn without_text(self) -> Reason {
        let message = if self.code == "rule.links" && self.message.contains('"') {
            format!(
                "{}: a link (its address was erased with the text)",
                self.rule_name
            )
        } else {
            self.message
        };
        Reason {
            message,
            span: None,
            target: None,
            ..self
        }
    }
}

/// A stored comment.
#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    pub comment_id: CommentId,
    pub article_id: String,
    pub author_id: String,
    /// The text to publish: as submitted, or with masked words replaced by `***`.
    pub body: String,
    /// The text as submitted, when masking changed it; spans point into this
    /// text when it is set, else into `body`.
    pub original_body: Option<String>,
    pub status: CommentStatus,
    pub spam_score: f64,
    /// The highest toxicity category's score, in [0, 1].
    pub toxicity_score: f64,
    pub reasons: Vec<Reason>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub client_comment_id: Option<String>,
    pub author_display_name: String,
    pub parent_comment_id: Option<CommentId>,
    pub language: String,
    /// Starts at 1; every change of status adds one. A moderator's decision
    /// may name the version it saw (optimistic concurrency).
    pub version: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_erased_reason_keeps_the_decision_and_loses_the_text() {
        let link = Reason {
            rule_id: "r1".into(),
            rule_name: "liens".into(),
            action: "review".into(),
            span: Some(Span { start: 4, end: 20 }),
            ..Reason::new(
                "rule.links",
                "liens: link to \"arnaque.example\", which is not an allowed domain",
            )
        };
        let erased = link.clone().without_text();
        assert!(!erased.message.contains("arnaque"), "{}", erased.message);
        assert_eq!(erased.span, None);
        assert_eq!(
            (
                erased.code.as_str(),
                erased.rule_id.as_str(),
                erased.action.as_str()
            ),
            ("rule.links", "r1", "review")
        );

        let hate = Reason {
            span: Some(Span { start: 0, end: 3 }),
            target: Some(Span { start: 5, end: 9 }),
            score: Some(0.9),
            ..Reason::new(
                "hate.dehumanization",
                "dehumanises migrants (identity attack)",
            )
        };
        let erased = hate.clone().without_text();
        assert_eq!((erased.span, erased.target), (None, None));
        assert_eq!(
            erased.message, hate.message,
            "a message that quotes no text stays"
        );
        assert_eq!(erased.score, Some(0.9));
        let count = Reason::new("rule.links", "liens: 4 links, more than 3");
        assert_eq!(count.clone().without_text().message, count.message);
    }

    #[test]
    fn body_must_not_be_blank_and_is_kept_verbatim() {
        assert!(CommentBody::parse("body", "  \n\t ".into()).is_err());
        assert!(CommentBody::parse("body", String::new()).is_err());
        let body = CommentBody::parse("body", "  Très bien dit ! ".into()).unwrap();
        assert_eq!(body.as_str(), "  Très bien dit ! ");
        assert_eq!(body.char_count(), 18);
    }

    #[test]
    fn ids_are_bounded_and_free_of_control_characters() {
        assert!(ArticleId::parse("article_id", "".into()).is_err());
        assert!(ArticleId::parse("article_id", "a\u{0}b".into()).is_err());
        assert!(ArticleId::parse("article_id", "x".repeat(257)).is_err());
        assert!(ArticleId::parse("article_id", "économie/2026/budget".into()).is_ok());
        assert!(DisplayName::parse("n", String::new()).is_ok());
        assert!(DisplayName::parse("n", "   ".into()).is_err());
    }

    #[test]
    fn language_tags() {
        assert_eq!(LanguageTag::parse("l", String::new()).unwrap(), None);
        assert!(LanguageTag::parse("l", "fr".into()).unwrap().is_some());
        assert!(LanguageTag::parse("l", "en-GB".into()).unwrap().is_some());
        assert!(LanguageTag::parse("l", "fr_FR".into()).is_err());
        assert!(LanguageTag::parse("l", "fr--x".into()).is_err());
    }

    #[test]
    fn status_round_trips_through_its_storage_name() {
        for s in [
            CommentStatus::Approved,
            CommentStatus::PendingReview,
            CommentStatus::Rejected,
        ] {
            assert_eq!(CommentStatus::from_db(s.as_str()), Some(s));
        }
        assert_eq!(CommentStatus::from_db("published"), None);
    }
}
