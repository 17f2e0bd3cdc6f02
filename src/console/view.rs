//! What the console's JSON says: views of domain values, written for the
//! page (statuses and decisions as lower-case words, times as RFC 3339,
//! spans as UTF-8 byte offsets into the text they name).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{Comment, Reason, ReviewItem, Span, StandingTerm, TenantSettings};
use crate::moderation::AuthorView;
use crate::pipeline::Verdict;
use crate::storage::{AuditRecord, RuleRecord};

#[derive(Serialize)]
pub struct SessionView {
    pub tenant_id: String,
    pub role: &'static str,
    /// How decisions are signed when no moderator name is given.
    pub actor: String,
}

#[derive(Serialize)]
pub struct QueuePage {
    pub items: Vec<ItemView>,
    pub next_page_token: String,
    /// Open items matching the filters, exact up to 10,000.
    pub total: u64,
    /// More than `total` match.
    pub total_capped: bool,
}

#[derive(Serialize)]
pub struct ItemsView {
    pub items: Vec<ItemView>,
}

#[derive(Serialize)]
pub struct ItemView {
    pub review_id: String,
    pub priority: i32,
    pub enqueue_time: DateTime<Utc>,
    pub lease_expire_time: Option<DateTime<Utc>>,
    pub claimed_by: Option<String>,
    pub author_standing: &'static str,
    pub author_standing_until: Option<DateTime<Utc>>,
    pub comment: CommentView,
}

#[derive(Serialize)]
pub struct CommentView {
    pub comment_id: String,
    pub article_id: String,
    pub author_id: String,
    pub author_display_name: String,
    pub language: String,
    pub body: String,
    /// The text the spans point into: as submitted when masking changed
    /// `body`, else `body`.
    pub text: String,
    pub status: &'static str,
    pub spam_score: f64,
    pub toxicity_score: f64,
    pub reasons: Vec<ReasonView>,
    pub create_time: DateTime<Utc>,
    pub version: i64,
}

#[derive(Serialize)]
pub struct ReasonView {
    pub code: String,
    pub message: String,
    pub rule_id: String,
    pub rule_name: String,
    pub action: String,
    pub span: Option<SpanView>,
    pub target: Option<SpanView>,
    pub score: Option<f64>,
}

#[derive(Serialize)]
pub struct SpanView {
    pub start: u32,
    pub end: u32,
}

#[derive(Serialize)]
pub struct DecidedView {
    pub comment: CommentView,
}

impl From<ReviewItem> for ItemView {
    fn from(item: ReviewItem) -> Self {
        ItemView {
            review_id: item.review_id.to_string(),
            priority: item.priority,
            enqueue_time: item.enqueue_time,
            lease_expire_time: item.lease_expire_time,
            claimed_by: item.claimed_by,
            author_standing: item.author_standing.standing.as_str(),
            author_standing_until: item.author_standing.until,
            comment: item.comment.into(),
        }
    }
}

impl From<Comment> for CommentView {
    fn from(c: Comment) -> Self {
        CommentView {
            comment_id: c.comment_id.to_string(),
            article_id: c.article_id,
            author_id: c.author_id,
            author_display_name: c.author_display_name,
            language: c.language,
            text: c.original_body.unwrap_or_else(|| c.body.clone()),
            body: c.body,
            status: c.status.as_str(),
            spam_score: c.spam_score,
            toxicity_score: c.toxicity_score,
            reasons: c.reasons.into_iter().map(ReasonView::from).collect(),
            create_time: c.create_time,
            version: c.version,
        }
    }
}

impl From<Reason> for ReasonView {
    fn from(r: Reason) -> Self {
        let span = |s: Span| SpanView {
            start: s.start,
            end: s.end,
        };
        ReasonView {
            code: r.code,
            message: r.message,
            rule_id: r.rule_id,
            rule_name: r.rule_name,
            action: r.action,
            span: r.span.map(span),
            target: r.target.map(span),
            score: r.score,
        }
    }
}

#[derive(Serialize)]
pub struct TermView {
    pub standing: &'static str,
    pub until: Option<DateTime<Utc>>,
}

impl From<StandingTerm> for TermView {
    fn from(term: StandingTerm) -> Self {
        TermView {
            standing: term.standing.as_str(),
            until: term.until,
        }
    }
}

#[derive(Serialize)]
pub struct LastSetView {
    pub term: TermView,
    pub reason: String,
    pub set_by: String,
    pub update_time: DateTime<Utc>,
}

#[derive(Serialize)]
pub struct AuthorPanel {
    pub author_id: String,
    /// In force now (an ended term reads as normal).
    pub in_force: TermView,
    /// As last set, with who and why; absent when never set.
    pub last_set: Option<LastSetView>,
    pub approved: i64,
    pub pending_review: i64,
    pub rejected: i64,
    /// Newest first.
    pub recent: Vec<CommentView>,
}

impl From<AuthorView> for AuthorPanel {
    fn from(view: AuthorView) -> Self {
        AuthorPanel {
            author_id: view.author_id,
            in_force: view.in_force.into(),
            last_set: view.last_set.map(|s| LastSetView {
                term: s.term.into(),
                reason: s.reason,
                set_by: s.set_by,
                update_time: s.update_time,
            }),
            approved: view.approved,
            pending_review: view.pending_review,
            rejected: view.rejected,
            recent: view.recent.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Serialize)]
pub struct TrailEvent {
    pub event_id: i64,
    pub create_time: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub detail: serde_json::Value,
}

#[derive(Serialize)]
pub struct TrailView {
    pub events: Vec<TrailEvent>,
}

impl From<AuditRecord> for TrailEvent {
    fn from(r: AuditRecord) -> Self {
        TrailEvent {
            event_id: r.event_id,
            create_time: r.create_time,
            actor: r.actor,
            action: r.action,
            from_state: r.from_state,
            to_state: r.to_state,
            detail: r.detail,
        }
    }
}

#[derive(Serialize)]
pub struct RulesView {
    pub rules_version: i64,
    pub rules: Vec<RuleView>,
}

#[derive(Serialize)]
pub struct RuleView {
    /// As in a rules file (`moderato rules export`).
    pub rule: serde_json::Value,
    pub revision: i64,
    pub update_time: DateTime<Utc>,
}

impl From<RuleRecord> for RuleView {
    fn from(r: RuleRecord) -> Self {
        RuleView {
            rule: serde_json::to_value(&r.rule).unwrap_or(serde_json::Value::Null),
            revision: r.revision,
            update_time: r.update_time,
        }
    }
}

#[derive(Serialize)]
pub struct TestView {
    pub text: String,
    pub status: &'static str,
    pub spam_score: f64,
    pub toxicity_score: f64,
    pub reasons: Vec<ReasonView>,
    pub published_body: String,
}

impl TestView {
    pub fn new(verdict: Verdict, text: String) -> Self {
        TestView {
            status: verdict.status.as_str(),
            spam_score: verdict.spam_score,
            toxicity_score: verdict.toxicity_score,
            reasons: verdict.reasons.into_iter().map(Into::into).collect(),
            published_body: verdict.masked_body.unwrap_or_else(|| text.clone()),
            text,
        }
    }
}

#[derive(Serialize)]
pub struct SettingsView {
    pub tenant_name: String,
    pub moderation_mode: &'static str,
    pub review_threshold: f64,
    pub reject_threshold: f64,
    pub max_body_chars: u32,
    pub report_threshold: u32,
    pub hide_reported: bool,
    /// Per toxicity category: the scores that hold and reject.
    pub toxicity: Vec<CategoryView>,
    pub max_comments_per_author_per_minute: u32,
    pub max_comments_per_ip_per_minute: u32,
    pub retain_rejected_bodies_days: u32,
    pub retain_bodies_days: u32,
}

#[derive(Serialize)]
pub struct CategoryView {
    pub category: &'static str,
    pub review: f64,
    pub reject: f64,
}

impl From<TenantSettings> for SettingsView {
    fn from(s: TenantSettings) -> Self {
        SettingsView {
            tenant_name: s.tenant_name,
            moderation_mode: s.moderation_mode.as_str(),
            review_threshold: s.review_threshold,
            reject_threshold: s.reject_threshold,
            max_body_chars: s.max_body_chars,
            report_threshold: s.report_threshold,
            hide_reported: s.hide_reported,
            max_comments_per_author_per_minute: s.max_comments_per_author_per_minute,
            max_comments_per_ip_per_minute: s.max_comments_per_ip_per_minute,
            retain_rejected_bodies_days: s.retain_rejected_bodies_days,
            retain_bodies_days: s.retain_bodies_days,
            toxicity: crate::domain::ToxicityCategory::ALL
                .into_iter()
                .map(|c| {
                    let (review, reject) = s.toxicity.get(c);
                    CategoryView {
                        category: c.name(),
                        review,
                        reject,
                    }
                })
                .collect(),
        }
    }
}
