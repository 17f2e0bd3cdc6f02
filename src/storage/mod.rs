//! Persistence: one [`Store`] trait, two backends.
//!
//! SQLite is the embedded default (no setup); Postgres is the production store.
//! Both implement the same trait and pass the same conformance suite
//! (`tests/api/storage.rs`). Database error codes are translated into
//! [`StoreError`] here, so nothing above this module knows which backend runs.
//!
//! **Invariants** kept by every backend:
//! - a write that returns `Ok` is committed (SQLite runs `synchronous=FULL`);
//! - every state change writes its audit row in the same transaction;
//! - every query is scoped by `tenant_id`, which leads every key and index
//!   (the one exception is the key-hash index used to find a caller's tenant);
//! - a review item is held by at most one actor at a time.

mod error;
mod postgres;
mod sqlite;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use error::StoreError;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use crate::domain::{
    Actor, ApiKeyInfo, AuthorStanding, Comment, CommentId, CommentStatus, FieldViolation, KeyHash,
    KeyId, Label, ModelKind, NewComment, Principal, ReportReason, ReviewDecision, ReviewId,
    ReviewItem, Role, Rule, Standing, StandingTerm, TenantId, TenantName, TenantSettings,
    TenantSettingsPatch, ToxicityCategory, ToxicityThresholds,
};
use crate::pipeline::Verdict;
use crate::pipeline::spam::{AuthorHistory, Fingerprint, Update};

/// Connection settings shared by both backends.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    /// How long a request waits for a connection before the call fails with
    /// `UNAVAILABLE`: short, so a dead database is reported, not queued behind.
    pub acquire_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// Opens the store named by `url` (`sqlite://…` or `postgres://…`) and migrates it.
pub async fn connect(url: &str, options: &DbOptions) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(SqliteStore::connect(url, options).await?)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Arc::new(PostgresStore::connect(url, options).await?)
    } else {
        anyhow::bail!("database url must start with sqlite:// or postgres://");
    };
    store.migrate().await.context("migrating the database")?;
    Ok(store)
}

/// A comment ready to be stored with its verdict.
#[derive(Clone, Copy)]
pub struct NewCommentRecord<'a> {
    pub comment_id: CommentId,
    pub comment: &'a NewComment,
    pub verdict: &'a Verdict,
    /// Stored for later author-history look-ups.
    pub fingerprint: Fingerprint,
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
}

impl NewCommentRecord<'_> {
    /// The comment as it reads back once stored.
    pub fn to_comment(&self) -> Comment {
        Comment {
            comment_id: self.comment_id,
            article_id: self.comment.article_id.as_str().to_owned(),
            author_id: self.comment.author_id.as_str().to_owned(),
            body: self
                .verdict
                .masked_body
                .clone()
                .unwrap_or_else(|| self.comment.body.as_str().to_owned()),
            original_body: self
                .verdict
                .masked_body
                .as_ref()
                .map(|_| self.comment.body.as_str().to_owned()),
            status: self.verdict.status,
            spam_score: self.verdict.spam_score,
            toxicity_score: self.verdict.toxicity_score,
            reasons: self.verdict.reasons.clone(),
            create_time: self.now,
            update_time: self.now,
            client_comment_id: self
                .comment
                .client_comment_id
                .as_ref()
                .map(|id| id.as_str().to_owned()),
            author_display_name: self.comment.author_display_name.as_str().to_owned(),
            parent_comment_id: self.comment.parent_comment_id,
            language: self
                .comment
                .language
                .as_ref()
                .map(|l| l.as_str())
                .or(self.verdict.detected_language)
                .unwrap_or_default()
                .to_owned(),
            version: 1,
        }
    }
}

/// A batch of comments laid out for one multi-row write: the stored form of
/// each comment, its queue item id when it is held, and its audit event.
/// Both backends write a whole group commit with a fixed number of
/// statements built from this, instead of three statements per comment.
pub(crate) struct CommentRows<'a> {
    pub rows: Vec<CommentRow<'a>>,
}

pub(crate) struct CommentRow<'a> {
    pub tenant: TenantId,
    pub comment: Comment,
    pub author_ip: Option<String>,
    pub fingerprint: Fingerprint,
    /// The id of its review item; `None` when the comment is not held.
    pub review: Option<(ReviewId, i32)>,
    pub audit: AuditEvent<'a>,
    /// `reasons` as stored (JSON).
    pub reasons_json: String,
    pub now: DateTime<Utc>,
}

impl<'a> CommentRows<'a> {
    pub fn new(batch: &'a [(TenantId, NewCommentRecord<'a>)]) -> Result<Self, StoreError> {
        let rows = batch
            .iter()
            .map(|(tenant, record)| {
                let comment = record.to_comment();
                let review = (comment.status == CommentStatus::PendingReview)
                    .then(|| (ReviewId::generate(), record.verdict.review_priority));
                let audit = comment_created_event(record.actor, &comment);
                let reasons_json = serde_json::to_string(&comment.reasons)
                    .map_err(|err| StoreError::Unexpected(err.into()))?;
                Ok(CommentRow {
                    tenant: *tenant,
                    author_ip: record.comment.author_ip.map(|ip| ip.to_string()),
                    fingerprint: record.fingerprint,
                    review,
                    audit,
                    reasons_json,
                    now: record.now,
                    comment,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(CommentRows { rows })
    }

    /// The `(tenant, client_comment_id)` of the comments the insert did not
    /// create: idempotent retries, whose stored comment the backend reads
    /// back for [`CommentRows::outcomes`].
    pub fn retries<'r>(
        &'r self,
        created: &'r HashSet<Uuid>,
    ) -> impl Iterator<Item = (TenantId, Option<&'r str>)> + 'r {
        self.rows
            .iter()
            .filter(|r| !created.contains(&r.comment.comment_id.as_uuid()))
            .map(|r| (r.tenant, r.comment.client_comment_id.as_deref()))
    }

    /// The outcomes in batch order; `existing` holds the stored comments of
    /// [`CommentRows::retries`], in that order.
    pub fn outcomes(self, created: &HashSet<Uuid>, existing: Vec<Comment>) -> Vec<InsertOutcome> {
        let mut existing = existing.into_iter();
        self.rows
            .into_iter()
            .filter_map(|r| {
                if created.contains(&r.comment.comment_id.as_uuid()) {
                    Some(InsertOutcome::Created(r.comment))
                } else {
                    existing.next().map(InsertOutcome::Existing)
                }
            })
            .collect()
    }
}

/// What storing a comment did.
#[derive(Debug, Clone, PartialEq)]
pub enum InsertOutcome {
    Created(Comment),
    /// The tenant already had a comment with this `client_comment_id`.
    Existing(Comment),
}

/// Position after the last comment of a page (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentCursor {
    #[serde(rename = "t")]
    pub create_time_micros: i64,
    #[serde(rename = "i")]
    pub comment_id: Uuid,
}

impl CommentCursor {
    pub fn after(comment: &Comment) -> Self {
        CommentCursor {
            create_time_micros: comment.create_time.timestamp_micros(),
            comment_id: comment.comment_id.as_uuid(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CommentQuery {
    pub article_id: Option<String>,
    pub status: CommentStatus,
    pub after: Option<CommentCursor>,
    pub limit: u32,
}

/// Position after the last item of a queue page (priority, then age).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueCursor {
    #[serde(rename = "p")]
    pub priority: i32,
    #[serde(rename = "t")]
    pub enqueue_time_micros: i64,
    #[serde(rename = "i")]
    pub review_id: Uuid,
}

impl QueueCursor {
    pub fn after(item: &ReviewItem) -> Self {
        QueueCursor {
            priority: item.priority,
            enqueue_time_micros: item.enqueue_time.timestamp_micros(),
            review_id: item.review_id.as_uuid(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct QueueQuery {
    pub filter: QueueFilter,
    pub order: QueueOrder,
    pub after: Option<QueueCursor>,
    pub limit: u32,
}

/// How the queue is worked through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueOrder {
    /// Highest priority (reports, rule actions, spam score) then oldest.
    #[default]
    Priority,
    OldestFirst,
    NewestFirst,
}

impl QueueOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueOrder::Priority => "priority",
            QueueOrder::OldestFirst => "oldest",
            QueueOrder::NewestFirst => "newest",
        }
    }

    fn order_by(self) -> &'static str {
        match self {
            QueueOrder::Priority => " ORDER BY r.priority DESC, r.enqueue_time, r.review_id",
            QueueOrder::OldestFirst => " ORDER BY r.enqueue_time, r.review_id",
            QueueOrder::NewestFirst => " ORDER BY r.enqueue_time DESC, r.review_id DESC",
        }
    }

    /// Puts items in this order (for the items a claim returns).
    pub(crate) fn sort(self, items: &mut [ReviewItem]) {
        items.sort_by(|a, b| {
            let oldest = a
                .enqueue_time
                .cmp(&b.enqueue_time)
                .then(a.review_id.cmp(&b.review_id));
            match self {
                QueueOrder::Priority => b.priority.cmp(&a.priority).then(oldest),
                QueueOrder::OldestFirst => oldest,
                QueueOrder::NewestFirst => oldest.reverse(),
            }
        });
    }
}

/// Which open items a listing or a claim considers; every filter that is
/// set must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueFilter {
    pub article_id: Option<String>,
    /// Items whose comment has a reason with this code (`rule.words`,
    /// `spam.score`, `report.threshold`…).
    pub reason_code: Option<String>,
    pub min_spam_score: Option<f64>,
    /// Items whose comment readers reported.
    pub reported_only: bool,
}

impl QueueFilter {
    /// What a page token is bound to.
    pub fn scope(&self, order: QueueOrder) -> String {
        format!(
            "queue|{}|{:?}|{:?}|{:?}|{}",
            order.as_str(),
            self.article_id,
            self.reason_code,
            self.min_spam_score,
            self.reported_only
        )
    }
}

/// How each backend says "the comment `c` has a reason with code X": the
/// SQL before and after the bound code.
pub(crate) struct ReasonCodeSql {
    pub before: &'static str,
    pub after: &'static str,
}

/// Appends the conditions of an open-queue query over `review_items r JOIN
/// comments c` (the filter, then the position after `after`), its ORDER BY
/// and LIMIT; `time` encodes a cursor time as the backend stores it.
pub(crate) fn push_queue_conditions<DB, T>(
    sql: &mut sqlx::QueryBuilder<DB>,
    filter: &QueueFilter,
    order: QueueOrder,
    after: Option<(i32, T, Uuid)>,
    limit: u32,
    reason_code_sql: ReasonCodeSql,
) where
    DB: sqlx::Database,
    Uuid: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    String: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    f64: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    i32: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    T: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB> + Clone,
{
    if let Some(article) = &filter.article_id {
        sql.push(" AND r.article_id = ").push_bind(article.clone());
    }
    if let Some(code) = &filter.reason_code {
        sql.push(reason_code_sql.before)
            .push_bind(code.clone())
            .push(reason_code_sql.after);
    }
    if let Some(min) = filter.min_spam_score {
        sql.push(" AND c.spam_score >= ").push_bind(min);
    }
    if filter.reported_only {
        sql.push(
            " AND EXISTS (SELECT 1 FROM comment_reports rp \
             WHERE rp.tenant_id = r.tenant_id AND rp.comment_id = r.comment_id)",
        );
    }
    if let Some((priority, time, id)) = after {
        let later = |sql: &mut sqlx::QueryBuilder<DB>, op: &str| {
            sql.push(" (r.enqueue_time ")
                .push(op)
                .push(" ")
                .push_bind(time.clone())
                .push(" OR (r.enqueue_time = ")
                .push_bind(time.clone())
                .push(" AND r.review_id ")
                .push(op)
                .push(" ")
                .push_bind(id)
                .push("))");
        };
        match order {
            QueueOrder::Priority => {
                sql.push(" AND (r.priority < ")
                    .push_bind(priority)
                    .push(" OR (r.priority = ")
                    .push_bind(priority)
                    .push(" AND");
                later(sql, ">");
                sql.push("))");
            }
            QueueOrder::OldestFirst => {
                sql.push(" AND");
                later(sql, ">");
            }
            QueueOrder::NewestFirst => {
                sql.push(" AND");
                later(sql, "<");
            }
        }
    }
    sql.push(order.order_by()).push(" LIMIT ").push(limit);
}

/// A request to lease queue items.
#[derive(Debug, Clone)]
pub struct Claim {
    pub actor: Actor,
    pub max_items: u32,
    pub filter: QueueFilter,
    pub order: QueueOrder,
    pub now: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
}

/// A moderator's decision on one item.
#[derive(Debug, Clone)]
pub struct Decision {
    pub review_id: ReviewId,
    pub decision: ReviewDecision,
    /// The moderator's reason (`offensive`, `off_topic`…), when given.
    pub reason_code: Option<String>,
    /// The comment version the moderator saw: the decision is refused when
    /// the comment changed since. `None`: no check.
    pub expected_version: Option<i64>,
    pub note: String,
    pub actor: Actor,
    pub now: DateTime<Utc>,
}

/// Why a decision was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecideRejection {
    NotFound,
    AlreadyDecided,
    NotClaimedByCaller,
    /// The comment is at another version than the decision expected.
    Stale {
        current: i64,
    },
}

/// Why a release was not applied (nothing is released then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseRejection {
    NotFound(ReviewId),
    NotClaimedByCaller(ReviewId),
}

/// A new API key's stored form.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub key_id: KeyId,
    pub role: Role,
    pub hash: KeyHash,
    pub key_prefix: String,
}

/// A stored rule with its revision (1 on creation, +1 on every update).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRecord {
    pub rule: Rule,
    pub revision: i64,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

/// A change to a tenant's rules, applied atomically with its history rows,
/// its audit rows and a bump of the tenant's rules version.
#[derive(Debug, Clone)]
pub enum RuleChange {
    Create(Rule),
    /// `expected_revision`: refuse the update unless the rule is at it.
    Update {
        rule: Rule,
        expected_revision: Option<i64>,
    },
    Delete {
        rule_id: String,
    },
    /// Upserts every rule; with `replace`, also deletes the rules not listed.
    Import {
        rules: Vec<Rule>,
        replace: bool,
    },
}

/// Why a rule change was not applied (nothing was).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleRejection {
    AlreadyExists(String),
    NotFound(String),
    RevisionMismatch { rule_id: String, current: i64 },
}

/// A tenant's stored model of one kind: offsets from the seed model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredModel {
    /// 0 while the tenant has learned nothing.
    pub version: i64,
    pub bias: f64,
    /// Spam (or toxic) examples learned.
    pub positive_examples: i64,
    /// Ham (or clean) examples learned.
    pub negative_examples: i64,
    /// `(feature, offset)` for every feature written after the version asked
    /// for (absolute offsets, so loading twice is harmless).
    pub weights: Vec<(u32, f64)>,
}

/// Where a label came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelSource {
    /// A moderator's decision on a held comment.
    Review,
    /// `MarkSpam` / `MarkHam` / `MarkToxic` / `MarkNotToxic`.
    Mark,
    /// `moderato train`.
    Import,
}

impl LabelSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LabelSource::Review => "review",
            LabelSource::Mark => "mark",
            LabelSource::Import => "import",
        }
    }
}

/// Something a tenant's model learns, applied atomically: the weight
/// deltas, the example counts, the label (a comment teaches each model
/// spam/ham or toxic/not toxic once) and an audit row.
#[derive(Debug, Clone)]
pub struct Lesson<'a> {
    pub kind: ModelKind,
    pub source: LabelSource,
    /// The labelled comment and its label (of `kind`); `None` for an import.
    pub comment: Option<(CommentId, Label)>,
    pub positive_examples: i64,
    pub negative_examples: i64,
    pub update: &'a Update,
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
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
        }
    }
}

/// One author-history look-up (see [`Store::author_facts`]).
#[derive(Debug, Clone)]
pub struct HistoryLookup {
    pub tenant: TenantId,
    pub author: String,
    /// The fingerprint of the text being submitted.
    pub exact: i64,
    /// Other authors' copies of the text count from this time on.
    pub since: DateTime<Utc>,
}

/// What a submission needs to know about its author.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorFacts {
    pub history: AuthorHistory,
    /// Normal when no standing was ever set.
    pub standing: StandingTerm,
}

/// A standing being set.
pub struct StandingChange<'a> {
    pub term: StandingTerm,
    pub reason: &'a str,
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
}

/// What a moderator sees of an author (`GetAuthor`).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorRecord {
    /// `None`: never set, so normal.
    pub standing: Option<Standing>,
    pub recent: Vec<Comment>,
    pub approved: i64,
    pub pending_review: i64,
    pub rejected: i64,
}

/// One row of the author-facts query: which look-up it answers (`ord`, from
/// 0), then either one of the author's comments (`others` unset) or the
/// count of the same text by others, which also carries the standing.
pub(crate) struct HistoryRow {
    pub ord: i64,
    pub others: Option<i64>,
    pub text_hash: Option<i64>,
    pub simhash: Option<i64>,
    pub create_time: Option<DateTime<Utc>>,
    pub status: Option<String>,
    pub standing: Option<String>,
    pub standing_until: Option<DateTime<Utc>>,
}

/// Assembles the rows of either backend's author-facts query into one
/// answer per look-up; the rows of a look-up come newest first.
pub(crate) fn author_facts_from_rows(
    lookups: usize,
    rows: impl IntoIterator<Item = HistoryRow>,
) -> Result<Vec<AuthorFacts>, StoreError> {
    let mut facts = vec![
        AuthorFacts {
            history: AuthorHistory {
                known: true,
                ..AuthorHistory::default()
            },
            standing: StandingTerm::default(),
        };
        lookups
    ];
    for row in rows {
        let answer = usize::try_from(row.ord)
            .ok()
            .and_then(|ord| facts.get_mut(ord))
            .ok_or_else(|| StoreError::Corrupt(format!("history row for look-up {}", row.ord)))?;
        if let Some(others) = row.others {
            answer.history.same_text_by_others = others as u32;
            answer.standing = standing_term(row.standing.map(|s| (s, row.standing_until)))?;
            continue;
        }
        let status = row.status.unwrap_or_default();
        answer
            .history
            .recent
            .push(crate::pipeline::spam::RecentComment {
                // Comments stored before fingerprints existed match nothing.
                exact: row.text_hash.unwrap_or(0),
                simhash: row.simhash.unwrap_or(0),
                create_time: row
                    .create_time
                    .ok_or_else(|| StoreError::Corrupt("comment without a time".into()))?,
                status: CommentStatus::from_db(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("comment status {status:?}")))?,
            });
    }
    Ok(facts)
}

/// A stored standing; no row is normal.
pub(crate) fn standing_term(
    row: Option<(String, Option<DateTime<Utc>>)>,
) -> Result<StandingTerm, StoreError> {
    let Some((standing, until)) = row else {
        return Ok(StandingTerm::default());
    };
    Ok(StandingTerm {
        standing: AuthorStanding::from_db(&standing)
            .ok_or_else(|| StoreError::Corrupt(format!("author standing {standing:?}")))?,
        until,
    })
}

/// What `get_author` answers, from the rows either backend read.
pub(crate) fn author_record(
    standing: Option<Standing>,
    recent: Vec<Comment>,
    counts: Vec<(String, i64)>,
) -> Option<AuthorRecord> {
    if standing.is_none() && recent.is_empty() {
        return None;
    }
    let count = |status: CommentStatus| {
        counts
            .iter()
            .find(|(s, _)| s == status.as_str())
            .map_or(0, |(_, n)| *n)
    };
    Some(AuthorRecord {
        standing,
        approved: count(CommentStatus::Approved),
        pending_review: count(CommentStatus::PendingReview),
        rejected: count(CommentStatus::Rejected),
        recent,
    })
}

/// A moderator reversing a decision.
pub struct Reopen<'a> {
    pub comment_id: CommentId,
    pub expected_version: Option<i64>,
    pub note: &'a str,
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
}

/// Why a reopen was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReopenRejection {
    NotFound,
    /// The comment is waiting in the queue already.
    InQueue,
    Stale {
        current: i64,
    },
}

/// Where a reopened comment goes in the queue: after reports, before what
/// the pipeline holds.
pub(crate) const REOPENED_PRIORITY: i32 = 250;

pub(crate) fn reopened_reason(reopen: &Reopen<'_>) -> crate::domain::Reason {
    let message = if reopen.note.is_empty() {
        format!("reopened by {}", reopen.actor)
    } else {
        format!("reopened by {}: {}", reopen.actor, reopen.note)
    };
    crate::domain::Reason::new("review.reopened", message)
}

pub(crate) fn reopened_event<'a>(
    reopen: &Reopen<'a>,
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
    }
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
    }
}

pub(crate) fn requeued_event<'a>(
    report: &NewReport<'a>,
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
    }
}

/// What a lesson did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearnOutcome {
    /// Applied; the tenant's model is now at `version`.
    Learned { version: i64 },
    /// The comment already carried this label: nothing changed.
    AlreadyLearned,
}

/// The channel on which Postgres announces rule changes (payload: tenant id).
pub const RULES_CHANNEL: &str = "moderato_rules";
/// The channel on which Postgres announces newly numbered decision events.
pub const DECISIONS_CHANNEL: &str = "moderato_decisions";

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies pending migrations; safe when several replicas start at once.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// One round trip, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Closes the pool, waiting for connections in use to come back.
    async fn close(&self);

    /// Creates the tenant unless it exists. `true` when this call created it.
    async fn ensure_tenant(
        &self,
        name: &TenantName,
        now: DateTime<Utc>,
    ) -> Result<(TenantId, bool), StoreError>;
    async fn find_tenant(&self, name: &TenantName) -> Result<Option<TenantId>, StoreError>;
    async fn count_tenants(&self) -> Result<i64, StoreError>;
    async fn tenant_settings(&self, tenant: TenantId)
    -> Result<Option<TenantSettings>, StoreError>;
    /// Applies `patch` atomically; the inner error names the offending field.
    async fn update_tenant_settings(
        &self,
        tenant: TenantId,
        patch: &TenantSettingsPatch,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Result<TenantSettings, FieldViolation>, StoreError>;

    async fn create_api_key(
        &self,
        tenant: TenantId,
        key: &NewApiKey,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyInfo, StoreError>;
    /// The active (unrevoked) key with this hash.
    async fn authenticate(&self, hash: &KeyHash) -> Result<Option<Principal>, StoreError>;
    async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKeyInfo>, StoreError>;
    /// `None` when the tenant has no such key. Revoking twice keeps the first time.
    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        key_id: KeyId,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<ApiKeyInfo>, StoreError>;

    /// Stores a comment, its queue item when held, and its audit row, in one
    /// transaction; idempotent on `client_comment_id`.
    async fn insert_comment(
        &self,
        tenant: TenantId,
        record: &NewCommentRecord<'_>,
    ) -> Result<InsertOutcome, StoreError>;
    /// How many transactions writing comments should run at once: SQLite
    /// has one writer at a time, Postgres overlaps a commit with the next
    /// batch being gathered.
    fn concurrent_writers(&self) -> usize;
    /// Stores several comments in one transaction (group commit): one
    /// outcome per record, in order, each as `insert_comment` would give it.
    /// When the batch cannot commit as a whole, each record is retried alone
    /// (unless the database is unavailable), so one bad record never fails
    /// the others.
    async fn insert_comments(
        &self,
        batch: &[(TenantId, NewCommentRecord<'_>)],
    ) -> Vec<Result<InsertOutcome, StoreError>>;
    async fn get_comment(
        &self,
        tenant: TenantId,
        id: CommentId,
    ) -> Result<Option<Comment>, StoreError>;
    /// Newest first; at most `query.limit` comments.
    async fn list_comments(
        &self,
        tenant: TenantId,
        query: &CommentQuery,
    ) -> Result<Vec<Comment>, StoreError>;

    /// Open items, claimed or not: highest priority, then oldest, first.
    async fn list_review_queue(
        &self,
        tenant: TenantId,
        query: &QueueQuery,
    ) -> Result<Vec<ReviewItem>, StoreError>;
    /// Leases up to `claim.max_items` items that nobody holds (or whose lease
    /// has expired) to `claim.actor`. No item is ever leased to two actors.
    async fn claim_reviews(
        &self,
        tenant: TenantId,
        claim: &Claim,
    ) -> Result<Vec<ReviewItem>, StoreError>;
    async fn decide_review(
        &self,
        tenant: TenantId,
        decision: &Decision,
    ) -> Result<Result<Comment, DecideRejection>, StoreError>;
    /// All or nothing: either every id is released or none is.
    async fn release_reviews(
        &self,
        tenant: TenantId,
        ids: &[ReviewId],
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Result<Vec<ReviewId>, ReleaseRejection>, StoreError>;

    /// Sends a decided comment (approved or rejected, by the pipeline or a
    /// moderator) back to the queue: a new open review item, status
    /// pending review, a `review.reopened` reason, version + 1, and the
    /// `comment.reopened` audit event, in one transaction.
    async fn reopen_comment(
        &self,
        tenant: TenantId,
        reopen: &Reopen<'_>,
    ) -> Result<Result<Comment, ReopenRejection>, StoreError>;
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
    /// The tenant's audit events matching every filter of `query`, in event
    /// order (newest first unless `oldest_first`), at most `query.limit`.
    async fn list_audit_events(
        &self,
        tenant: TenantId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    /// The tenant's rules, in id order, with the tenant's rules version.
    async fn load_rules(&self, tenant: TenantId) -> Result<(i64, Vec<RuleRecord>), StoreError>;
    /// Every tenant's rules version, for replicas polling for changes.
    async fn rules_versions(&self) -> Result<Vec<(TenantId, i64)>, StoreError>;
    /// Applies `change`; returns the rules it wrote (none for a deletion).
    async fn change_rules(
        &self,
        tenant: TenantId,
        change: &RuleChange,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Result<Vec<RuleRecord>, RuleRejection>, StoreError>;
    /// Sends the tenant of every rule change announced by other replicas, for
    /// as long as the store lives. Backends without notifications never send
    /// (replicas then rely on polling [`Store::rules_versions`]).
    async fn listen_rule_changes(&self, changes: tokio::sync::mpsc::UnboundedSender<TenantId>);
    /// Sends `()` each time another replica numbers decision events, for as
    /// long as the store lives. Backends without notifications never send
    /// (streams then poll).
    async fn listen_decision_events(&self, numbered: tokio::sync::mpsc::UnboundedSender<()>);

    /// What the store knows about each look-up's author and text, in one
    /// indexed query for the whole slice: the author's standing, latest
    /// `limit` comments (newest first) and the number of other authors'
    /// comments with this text since `since` (up to
    /// [`crate::pipeline::spam::history::SAME_TEXT_CAP`]). One answer per
    /// look-up, in order; look-ups may name different tenants and never see
    /// each other's rows.
    async fn author_facts(
        &self,
        lookups: &[HistoryLookup],
        limit: u32,
    ) -> Result<Vec<AuthorFacts>, StoreError>;
    /// Sets the author's standing (insert or replace) and audits the change
    /// (`author.standing_changed`, from the standing in force at `change.now`).
    async fn set_author_standing(
        &self,
        tenant: TenantId,
        author: &str,
        change: &StandingChange<'_>,
    ) -> Result<Standing, StoreError>;
    /// The author's stored standing, latest `recent` comments (newest first)
    /// and comment counts by status; `None` when the tenant knows nothing of
    /// the author.
    async fn get_author(
        &self,
        tenant: TenantId,
        author: &str,
        recent: u32,
    ) -> Result<Option<AuthorRecord>, StoreError>;
    /// The tenant's model row of `kind` and the weights written after
    /// `after_version`.
    async fn load_model(
        &self,
        tenant: TenantId,
        kind: ModelKind,
        after_version: i64,
    ) -> Result<StoredModel, StoreError>;
    /// Every tenant's model versions, for replicas polling for changes.
    async fn model_versions(&self) -> Result<Vec<(TenantId, ModelKind, i64)>, StoreError>;
    /// Adds `lesson` to the tenant's model of its kind (`weight = weight +
    /// delta`, so concurrent lessons from several replicas all count).
    async fn learn(
        &self,
        tenant: TenantId,
        lesson: &Lesson<'_>,
    ) -> Result<LearnOutcome, StoreError>;

    /// Open review items across all tenants, for the `/metrics` gauge.
    async fn queue_depth(&self) -> Result<i64, StoreError>;
}

/// After a failed group commit: every record fails as unavailable when the
/// database is, else each is tried in a transaction of its own.
pub(crate) async fn retry_alone<S: Store + ?Sized>(
    store: &S,
    batch: &[(TenantId, NewCommentRecord<'_>)],
    err: StoreError,
) -> Vec<Result<InsertOutcome, StoreError>> {
    if let Some(errors) = err.unavailable_for_each(batch.len()) {
        return errors;
    }
    tracing::warn!(error = %err, comments = batch.len(), "group commit failed; writing one by one");
    let mut outcomes = Vec::with_capacity(batch.len());
    for (tenant, record) in batch {
        outcomes.push(store.insert_comment(*tenant, record).await);
    }
    outcomes
}

/// The reason appended to a comment when a moderator decides it.
pub(crate) fn decision_reason(decision: &Decision) -> crate::domain::Reason {
    let verb = match decision.decision {
        ReviewDecision::Approve => "approved",
        ReviewDecision::Reject => "rejected",
    };
    let message = match &decision.reason_code {
        Some(code) => format!("{verb} by {} ({code})", decision.actor),
        None => format!("{verb} by {}", decision.actor),
    };
    crate::domain::Reason::new("review.decision", message)
}

pub(crate) fn decided_status(decision: ReviewDecision) -> CommentStatus {
    match decision {
        ReviewDecision::Approve => CommentStatus::Approved,
        ReviewDecision::Reject => CommentStatus::Rejected,
    }
}

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
}

pub(crate) fn comment_created_event<'a>(actor: &'a Actor, comment: &Comment) -> AuditEvent<'a> {
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
    }
}

/// `(tenant, kind, version)` rows of `models`, read.
pub(crate) fn model_versions(
    rows: Vec<(Uuid, String, i64)>,
) -> Result<Vec<(TenantId, ModelKind, i64)>, StoreError> {
    rows.into_iter()
        .map(|(tenant, kind, version)| {
            let kind = ModelKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown model kind {kind}")))?;
            Ok((TenantId::from_uuid(tenant), kind, version))
        })
        .collect()
}

/// A tenant's toxicity thresholds as stored: `None` while they are the
/// defaults, else every category's `[review, reject]` by name.
pub(crate) fn toxicity_thresholds_to_json(t: &ToxicityThresholds) -> Option<serde_json::Value> {
    (*t != ToxicityThresholds::default()).then(|| {
        ToxicityCategory::ALL
            .into_iter()
            .map(|c| {
                let (review, reject) = t.get(c);
                (c.name().to_owned(), serde_json::json!([review, reject]))
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    })
}

/// The thresholds a stored value holds; categories it does not name keep
/// the defaults.
pub(crate) fn toxicity_thresholds_from_json(
    value: Option<serde_json::Value>,
) -> Result<ToxicityThresholds, StoreError> {
    let mut thresholds = ToxicityThresholds::default();
    let Some(value) = value else {
        return Ok(thresholds);
    };
    let corrupt = |what: String| StoreError::Corrupt(format!("toxicity_thresholds: {what}"));
    let object = value
        .as_object()
        .ok_or_else(|| corrupt("not an object".into()))?;
    for (name, pair) in object {
        let category =
            ToxicityCategory::parse(name).ok_or_else(|| corrupt(format!("category {name:?}")))?;
        let pair: Vec<f64> = pair
            .as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
            .unwrap_or_default();
        let [review, reject] = pair[..] else {
            return Err(corrupt(format!("{name}: not [review, reject]")));
        };
        if !(0.0..=1.0).contains(&review) || !(review..=1.0).contains(&reject) {
            return Err(corrupt(format!("{name}: [{review}, {reject}]")));
        }
        thresholds.review[category.index()] = review;
        thresholds.reject[category.index()] = reject;
    }
    Ok(thresholds)
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
            "toxicity_thresholds": ToxicityCategory::ALL
                .into_iter()
                .map(|c| (c.name().to_owned(), serde_json::json!(s.toxicity.get(c))))
                .collect::<serde_json::Map<_, _>>(),
        })
    };
    serde_json::json!({ "before": view(before), "after": view(after) })
}

/// One write a rule change makes.
pub(crate) enum RuleStep<'a> {
    Put {
        rule: &'a Rule,
        revision: i64,
        /// `None` for a new rule.
        create_time: Option<DateTime<Utc>>,
    },
    Delete {
        rule_id: String,
        revision: i64,
    },
}

impl RuleStep<'_> {
    /// The `rule_revisions` row: id, revision, definition (`None` = deleted).
    pub(crate) fn history(&self) -> (&str, i64, Option<&Rule>) {
        match self {
            RuleStep::Put { rule, revision, .. } => (&rule.id, *revision, Some(rule)),
            RuleStep::Delete { rule_id, revision } => (rule_id, *revision, None),
        }
    }

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
        }
    }
}

/// Decides the writes of `change` given the stored `(revision, create_time)`
/// of each rule id, or why it cannot apply. Shared by both backends.
pub(crate) fn plan_rule_change<'a>(
    change: &'a RuleChange,
    existing: &std::collections::HashMap<String, (i64, DateTime<Utc>)>,
) -> Result<Vec<RuleStep<'a>>, RuleRejection> {
    match change {
        RuleChange::Create(rule) => {
            if existing.contains_key(&rule.id) {
                return Err(RuleRejection::AlreadyExists(rule.id.clone()));
            }
            Ok(vec![RuleStep::Put {
                rule,
                revision: 1,
                create_time: None,
            }])
        }
        RuleChange::Update {
            rule,
            expected_revision,
        } => {
            let Some(&(current, created)) = existing.get(&rule.id) else {
                return Err(RuleRejection::NotFound(rule.id.clone()));
            };
            if expected_revision.is_some_and(|expected| expected != current) {
                return Err(RuleRejection::RevisionMismatch {
                    rule_id: rule.id.clone(),
                    current,
                });
            }
            Ok(vec![RuleStep::Put {
                rule,
                revision: current + 1,
                create_time: Some(created),
            }])
        }
        RuleChange::Delete { rule_id } => {
            let Some(&(current, _)) = existing.get(rule_id) else {
                return Err(RuleRejection::NotFound(rule_id.clone()));
            };
            Ok(vec![RuleStep::Delete {
                rule_id: rule_id.clone(),
                revision: current + 1,
            }])
        }
        RuleChange::Import { rules, replace } => {
            let mut steps: Vec<RuleStep<'a>> = rules
                .iter()
                .map(|rule| match existing.get(&rule.id) {
                    Some(&(current, created)) => RuleStep::Put {
                        rule,
                        revision: current + 1,
                        create_time: Some(created),
                    },
                    None => RuleStep::Put {
                        rule,
                        revision: 1,
                        create_time: None,
                    },
                })
                .collect();
            if *replace {
                let listed: std::collections::HashSet<&str> =
                    rules.iter().map(|r| r.id.as_str()).collect();
                let mut doomed: Vec<_> = existing
                    .iter()
                    .filter(|(id, _)| !listed.contains(id.as_str()))
                    .map(|(id, (current, _))| RuleStep::Delete {
                        rule_id: id.clone(),
                        revision: current + 1,
                    })
                    .collect();
                doomed.sort_by(|a, b| a.history().0.cmp(b.history().0));
                steps.extend(doomed);
            }
            Ok(steps)
        }
    }
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
