//! The audit trail and the decision stream, and the audit rows each
//! change writes: one place says what a change records, both backends store it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Decision, Erased, Lesson, NewReport, Reopen, StandingChange, StoreError};
use crate::domain::{
    Actor, AuthorStanding, Comment, CommentId, CommentStatus, ModelKind, Requeue, ReviewId,
    RuleStep, TenantId, TenantSettings, ToxicityCategory,
};

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Numbers the committed decision-stream events that have no number yet
    /// (oldest first), continuing each tenant's sequence; returns how many
    /// it numbered. Safe to run from several replicas at once: rounds
    /// exclude each other.
    async fn sequence_decision_events(&self) -> Result<u64, StoreError>;
    /// The tenant's numbered decision-stream events after `after_sequence`,
    /// in sequence order, at most `limit`.
    async fn list_decision_events(
        &self,
        tenant: TenantId,
        after_sequence: i64,
        limit: u32,
    ) -> Result<Vec<DecisionEvent>, StoreError>;
    /// The tenant's last numbered decision-stream event, 0 when none: where
    /// a client that wants only what happens from now on starts.
    async fn last_decision_sequence(&self, tenant: TenantId) -> Result<i64, StoreError>;
    /// The tenant's audit events matching every filter of `query`, in event
    /// order (newest first unless `oldest_first`), at most `query.limit`.
    async fn list_audit_events(
        &self,
        tenant: TenantId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditRecord>, StoreError>;
    /// Sends `()` each time another replica numbers decision events, for as
    /// long as the store lives. Backends without notifications never send
    /// (streams then poll).
    async fn listen_decision_events(&self, numbered: tokio::sync::mpsc::UnboundedSender<()>);
}

/// The most events one numbering round looks at; a round that looked at
/// this many is followed by another at once.
pub const NUMBERING_ROUND: u32 = 1000;

/// The channel on which Postgres announces newly numbered decision events.
pub const DECISIONS_CHANNEL: &str = "moderato_decisions";

/// One change of a comment's status or queue membership, as the decision
/// stream delivers it. Sequence numbers are per tenant, start at 1 and have
/// no gaps.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionEvent {
    pub sequence: i64,
    pub comment_id: CommentId,
    pub article_id: String,
    pub author_id: String,
    /// `None` when the comment was just created.
    pub from_status: Option<CommentStatus>,
    pub to_status: CommentStatus,
    /// Whether the comment has an open review item after the change.
    pub queued: bool,
    pub version: i64,
    pub create_time: DateTime<Utc>,
}

pub(crate) fn status_column(value: Option<String>) -> Result<Option<CommentStatus>, StoreError> {
    value
        .map(|s| {
            CommentStatus::from_db(&s).ok_or_else(|| StoreError::Corrupt(format!("status {s:?}")))
        })
        .transpose()
}

/// A stored audit row.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub event_id: i64,
    pub create_time: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub detail: serde_json::Value,
    /// The comment the event is about, directly or through its review item.
    pub comment_id: Option<CommentId>,
    /// The author of that comment, or the author the event is about.
    pub author_id: Option<String>,
}

/// Which audit events to list; every filter that is set must match.
#[derive(Debug, Clone)]
pub struct AuditQuery {
    /// Events about the comment or its review items.
    pub comment_id: Option<CommentId>,
    /// Events about the author's comments, their review items, or the author.
    pub author_id: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Events about one subject (a rule, a key, a review item…).
    pub subject_id: Option<String>,
    /// Inclusive.
    pub start_time: Option<DateTime<Utc>>,
    /// Exclusive.
    pub end_time: Option<DateTime<Utc>>,
    /// Continue after this event, in the listing's order.
    pub after_event: Option<i64>,
    pub oldest_first: bool,
    pub limit: u32,
}

impl AuditQuery {
    /// The whole trail, oldest first.
    pub fn all() -> Self {
        AuditQuery {
            comment_id: None,
            author_id: None,
            actor: None,
            action: None,
            subject_id: None,
            start_time: None,
            end_time: None,
            after_event: None,
            oldest_first: true,
            limit: u32::MAX,
        }
    }

    /// Everything about one subject, oldest first.
    pub fn subject(id: &str) -> Self {
        AuditQuery {
            subject_id: Some(id.to_owned()),
            ..AuditQuery::all()
        }
    }

    /// Appends the SELECT for this query to `sql`; `time` encodes a time as
    /// the backend stores it.
    pub(crate) fn build<DB, T>(
        &self,
        sql: &mut sqlx::QueryBuilder<DB>,
        tenant: TenantId,
        time: impl Fn(DateTime<Utc>) -> T,
    ) where
        DB: sqlx::Database,
        Uuid: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
        String: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
        i64: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
        T: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    {
        sql.push(
            "SELECT event_id, create_time, actor, action, subject_type, subject_id, from_state, \
             to_state, detail, comment_id, author_id FROM audit_events WHERE tenant_id = ",
        )
        .push_bind(tenant.as_uuid());
        let mut text = |column: &str, value: &Option<String>| {
            if let Some(value) = value {
                sql.push(format_args!(" AND {column} = "))
                    .push_bind(value.clone());
            }
        };
        text("author_id", &self.author_id);
        text("actor", &self.actor);
        text("action", &self.action);
        text("subject_id", &self.subject_id);
        if let Some(id) = self.comment_id {
            sql.push(" AND comment_id = ").push_bind(id.as_uuid());
        }
        if let Some(start) = self.start_time {
            sql.push(" AND create_time >= ").push_bind(time(start));
        }
        if let Some(end) = self.end_time {
            sql.push(" AND create_time < ").push_bind(time(end));
        }
        let (after, order) = if self.oldest_first {
            (" AND event_id > ", " ORDER BY event_id LIMIT ")
        } else {
            (" AND event_id < ", " ORDER BY event_id DESC LIMIT ")
        };
        if let Some(event) = self.after_event {
            sql.push(after).push_bind(event);
        }
        sql.push(order).push(self.limit);
    }
}

/// One row of the append-only audit trail: who moved what from which state to which.
pub(crate) struct AuditEvent<'a> {
    pub actor: &'a Actor,
    pub action: &'static str,
    pub subject_type: &'static str,
    pub subject_id: String,
    pub from_state: Option<&'static str>,
    pub to_state: Option<&'static str>,
    pub detail: serde_json::Value,
    /// The comment the event is about (itself or through its review item);
    /// the backends store its author with it, so the trail can be listed by
    /// comment and by author.
    pub comment_id: Option<CommentId>,
    /// The author the event is about when no comment is (standing changes).
    pub author_id: Option<String>,
    /// Set when the event changes the comment's status or queue membership:
    /// the row is then also the comment's decision-stream event, with the
    /// statuses in `from_state` and `to_state` (one event log).
    pub stream: Option<StreamFacts>,
}

/// What a decision-stream event says beyond its audit row.
pub(crate) struct StreamFacts {
    pub article_id: String,
    /// Whether the comment has an open review item after the change.
    pub queued: bool,
    /// The comment's version after the change.
    pub version: i64,
}

impl StreamFacts {
    /// The stream facts of a change already applied to `comment`.
    fn of(comment: &Comment, queued: bool) -> Self {
        StreamFacts {
            article_id: comment.article_id.clone(),
            queued,
            version: comment.version,
        }
    }
}

pub(crate) fn comment_created_event<'a>(
    actor: &'a Actor,
    comment: &Comment,
    queued: bool,
) -> AuditEvent<'a> {
    AuditEvent {
        actor,
        action: "comment.created",
        subject_type: "comment",
        subject_id: comment.comment_id.to_string(),
        from_state: None,
        to_state: Some(comment.status.as_str()),
        detail: serde_json::json!({
            "spam_score": comment.spam_score,
            "toxicity_score": comment.toxicity_score,
            "reasons": comment.reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(),
        }),
        comment_id: Some(comment.comment_id),
        author_id: None,
        stream: Some(StreamFacts::of(comment, queued)),
    }
}

pub(crate) fn decision_event<'a>(
    decision: &'a Decision,
    comment: &Comment,
    from: CommentStatus,
) -> AuditEvent<'a> {
    AuditEvent {
        actor: &decision.actor,
        action: "comment.reviewed",
        subject_type: "comment",
        subject_id: comment.comment_id.to_string(),
        from_state: Some(from.as_str()),
        to_state: Some(comment.status.as_str()),
        detail: serde_json::json!({
            "review_id": decision.review_id.to_string(),
            "decision": decision.decision.as_str(),
            "reason_code": decision.reason_code,
            "note": decision.note,
        }),
        comment_id: Some(comment.comment_id),
        author_id: None,
        stream: Some(StreamFacts::of(comment, false)),
    }
}

/// `comment` as reopened.
pub(crate) fn reopened_event<'a>(
    reopen: &Reopen<'a>,
    comment: &Comment,
    from: CommentStatus,
    review_id: ReviewId,
) -> AuditEvent<'a> {
    AuditEvent {
        actor: reopen.actor,
        action: "comment.reopened",
        subject_type: "comment",
        subject_id: reopen.comment_id.to_string(),
        from_state: Some(from.as_str()),
        to_state: Some(CommentStatus::PendingReview.as_str()),
        detail: serde_json::json!({
            "review_id": review_id.to_string(),
            "note": reopen.note,
        }),
        comment_id: Some(reopen.comment_id),
        author_id: None,
        stream: Some(StreamFacts::of(comment, true)),
    }
}

pub(crate) fn reported_event<'a>(report: &NewReport<'a>, reports: i64) -> AuditEvent<'a> {
    AuditEvent {
        actor: report.actor,
        action: "comment.reported",
        subject_type: "comment",
        subject_id: report.comment_id.to_string(),
        from_state: None,
        to_state: None,
        detail: serde_json::json!({
            "reporter_id": report.reporter,
            "reason": report.reason.as_str(),
            "reports": reports,
        }),
        comment_id: Some(report.comment_id),
        author_id: None,
        stream: None,
    }
}

/// `comment` as requeued.
pub(crate) fn requeued_event<'a>(
    report: &NewReport<'a>,
    comment: &Comment,
    from: CommentStatus,
    requeue: &Requeue,
    reports: i64,
) -> AuditEvent<'a> {
    AuditEvent {
        actor: report.actor,
        action: "comment.requeued",
        subject_type: "comment",
        subject_id: report.comment_id.to_string(),
        from_state: Some(from.as_str()),
        to_state: Some(requeue.status.as_str()),
        detail: serde_json::json!({
            "reason": requeue.reason.code,
            "reports": reports,
            "hidden": requeue.status != CommentStatus::Approved,
        }),
        comment_id: Some(report.comment_id),
        author_id: None,
        stream: Some(StreamFacts::of(comment, true)),
    }
}

/// A retention run that removed the text of `count` of the tenant's comments.
pub(crate) fn purge_event(actor: &Actor, tenant: TenantId, count: u64) -> AuditEvent<'_> {
    AuditEvent {
        actor,
        action: "comments.purged",
        subject_type: "tenant",
        subject_id: tenant.to_string(),
        from_state: None,
        to_state: None,
        detail: serde_json::json!({ "comments": count, "reason": "retention" }),
        comment_id: None,
        author_id: None,
        stream: None,
    }
}

/// An erasure at the author's request: what it erased, never what the text was.
pub(crate) fn erased_event<'a>(actor: &'a Actor, author: &str, erased: &Erased) -> AuditEvent<'a> {
    AuditEvent {
        actor,
        action: "author.erased",
        subject_type: "author",
        subject_id: author.to_owned(),
        from_state: None,
        to_state: None,
        detail: serde_json::json!({ "comments": erased.comments, "reports": erased.reports }),
        comment_id: None,
        author_id: Some(author.to_owned()),
        stream: None,
    }
}

/// An export of what is held about an author (who asked, and how much
/// they were given).
pub(crate) fn exported_event<'a>(
    actor: &'a Actor,
    author: &str,
    comments: usize,
    reports: usize,
) -> AuditEvent<'a> {
    AuditEvent {
        actor,
        action: "author.exported",
        subject_type: "author",
        subject_id: author.to_owned(),
        from_state: None,
        to_state: None,
        detail: serde_json::json!({ "comments": comments, "reports": reports }),
        comment_id: None,
        author_id: Some(author.to_owned()),
        stream: None,
    }
}

/// The audit event of a standing change.
pub(crate) fn standing_event<'a>(
    author: &str,
    from: AuthorStanding,
    change: &StandingChange<'a>,
) -> AuditEvent<'a> {
    AuditEvent {
        actor: change.actor,
        action: "author.standing_changed",
        subject_type: "author",
        subject_id: author.to_owned(),
        from_state: Some(from.as_str()),
        to_state: Some(change.term.standing.as_str()),
        detail: serde_json::json!({
            "reason": change.reason,
            "until": change.term.until,
        }),
        comment_id: None,
        author_id: Some(author.to_owned()),
        stream: None,
    }
}

pub(crate) fn settings_change_detail(
    before: &TenantSettings,
    after: &TenantSettings,
) -> serde_json::Value {
    let view = |s: &TenantSettings| {
        serde_json::json!({
            "moderation_mode": s.moderation_mode.as_str(),
            "review_threshold": s.review_threshold,
            "reject_threshold": s.reject_threshold,
            "max_body_chars": s.max_body_chars,
            "report_threshold": s.report_threshold,
            "hide_reported": s.hide_reported,
            "max_comments_per_author_per_minute": s.max_comments_per_author_per_minute,
            "max_comments_per_ip_per_minute": s.max_comments_per_ip_per_minute,
            "retain_rejected_bodies_days": s.retain_rejected_bodies_days,
            "retain_bodies_days": s.retain_bodies_days,
            // Never the key.
            "external_classifier": s.external_classifier.as_ref().map(|c| serde_json::json!({
                "kind": c.kind.as_str(),
                "url": c.url,
                "timeout_ms": c.timeout_ms,
            })),
            "toxicity_thresholds": ToxicityCategory::ALL
                .into_iter()
                .map(|c| (c.name().to_owned(), serde_json::json!(s.toxicity.get(c))))
                .collect::<serde_json::Map<_, _>>(),
        })
    };
    serde_json::json!({ "before": view(before), "after": view(after) })
}

impl Lesson<'_> {
    pub(crate) fn audit_event(&self, version: i64) -> AuditEvent<'_> {
        let (subject_type, subject_id, to_state) = match self.comment {
            Some((id, label)) => ("comment", id.to_string(), Some(label.as_str())),
            None => (
                match self.kind {
                    ModelKind::Spam => "spam_model",
                    ModelKind::Toxicity => "toxicity_model",
                },
                "import".to_owned(),
                None,
            ),
        };
        let (positive, negative) = match self.kind {
            ModelKind::Spam => ("spam_examples", "ham_examples"),
            ModelKind::Toxicity => ("toxic_examples", "clean_examples"),
        };
        AuditEvent {
            actor: self.actor,
            action: match self.kind {
                ModelKind::Spam => "spam.learned",
                ModelKind::Toxicity => "toxicity.learned",
            },
            subject_type,
            subject_id,
            from_state: None,
            to_state,
            detail: serde_json::json!({
                "source": self.source.as_str(),
                positive: self.positive_examples,
                negative: self.negative_examples,
                "features": self.update.weights.len(),
                "version": version,
            }),
            comment_id: self.comment.map(|(id, _)| id),
            author_id: None,
            stream: None,
        }
    }
}

// The plan of a rule change is the domain's (`plan_rule_change`); what each
// of its writes records in the trail is said here, with the other events.
impl RuleStep<'_> {
    pub(crate) fn audit_event<'b>(&self, actor: &'b Actor) -> AuditEvent<'b> {
        let (action, from, to) = match self {
            RuleStep::Put {
                create_time: None, ..
            } => ("rule.created", None, Some("active")),
            RuleStep::Put { .. } => ("rule.updated", Some("active"), Some("active")),
            RuleStep::Delete { .. } => ("rule.deleted", Some("active"), None),
        };
        let (rule_id, revision, definition) = self.history();
        AuditEvent {
            actor,
            action,
            subject_type: "rule",
            subject_id: rule_id.to_owned(),
            from_state: from,
            to_state: to,
            detail: serde_json::json!({ "revision": revision, "rule": definition }),
            comment_id: None,
            author_id: None,
            stream: None,
        }
    }
}
