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
    Actor, ApiKeyInfo, Comment, CommentId, CommentStatus, FieldViolation, KeyHash, KeyId,
    NewComment, Principal, ReviewDecision, ReviewId, ReviewItem, Role, TenantId, TenantName,
    TenantSettings, TenantSettingsPatch,
};
use crate::pipeline::Verdict;

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
pub struct NewCommentRecord<'a> {
    pub comment_id: CommentId,
    pub comment: &'a NewComment,
    pub verdict: &'a Verdict,
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
            body: self.comment.body.as_str().to_owned(),
            status: self.verdict.status,
            spam_score: self.verdict.spam_score,
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
                .map(|l| l.as_str().to_owned())
                .unwrap_or_default(),
        }
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
    pub article_id: Option<String>,
    pub after: Option<QueueCursor>,
    pub limit: u32,
}

/// A request to lease queue items.
#[derive(Debug, Clone)]
pub struct Claim {
    pub actor: Actor,
    pub max_items: u32,
    pub now: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
}

/// A moderator's decision on one item.
#[derive(Debug, Clone)]
pub struct Decision {
    pub review_id: ReviewId,
    pub decision: ReviewDecision,
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

    /// The tenant's audit trail, oldest first; only `subject_id`'s when given.
    async fn list_audit_events(
        &self,
        tenant: TenantId,
        subject_id: Option<&str>,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    /// Open review items across all tenants, for the `/metrics` gauge.
    async fn queue_depth(&self) -> Result<i64, StoreError>;
}

/// The reason appended to a comment when a moderator decides it.
pub(crate) fn decision_reason(decision: &Decision) -> crate::domain::Reason {
    let verb = match decision.decision {
        ReviewDecision::Approve => "approved",
        ReviewDecision::Reject => "rejected",
    };
    crate::domain::Reason::new("review.decision", format!("{verb} by {}", decision.actor))
}

pub(crate) fn decided_status(decision: ReviewDecision) -> CommentStatus {
    match decision {
        ReviewDecision::Approve => CommentStatus::Approved,
        ReviewDecision::Reject => CommentStatus::Rejected,
    }
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
            "reasons": comment.reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(),
        }),
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
            "note": decision.note,
        }),
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
        })
    };
    serde_json::json!({ "before": view(before), "after": view(after) })
}
