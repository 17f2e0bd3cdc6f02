//! Comments as submitted: stored once with their verdict, idempotent on
//! `client_comment_id`, and written in group commits so a burst of
//! submissions costs a few transactions, not one per comment.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AuditEvent, StoreError, comment_created_event};
use crate::domain::{Actor, Comment, CommentId, CommentStatus, NewComment, ReviewId, TenantId};
use crate::pipeline::Verdict;
use crate::pipeline::spam::Fingerprint;

#[async_trait]
pub trait CommentStore: Send + Sync {
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
    /// Up to `limit` comments whose `author_ip` is still an address, as
    /// releases before the keyed hash stored it.
    async fn plaintext_author_ips(
        &self,
        limit: u32,
    ) -> Result<Vec<(TenantId, CommentId, String)>, StoreError>;
    /// Replaces those addresses with their hashes, in one transaction.
    async fn replace_author_ips(
        &self,
        hashed: &[(TenantId, CommentId, String)],
    ) -> Result<(), StoreError>;
    /// Replaces with `marker` the text of up to `limit` comments past their
    /// tenant's retention at `now` (`retain_rejected_bodies_days` for
    /// rejected ones, `retain_bodies_days` for all; 0 keeps), marks them
    /// purged, and audits one `comments.purged` event per tenant, in one
    /// transaction. Returns how many it purged per tenant. On Postgres a
    /// run that finds another replica's run in progress purges nothing.
    async fn purge_expired_bodies(
        &self,
        now: DateTime<Utc>,
        marker: &str,
        limit: u32,
    ) -> Result<Vec<(TenantId, u64)>, StoreError>;
    /// The comment stored under this idempotency key, if any.
    async fn find_by_client_comment_id(
        &self,
        tenant: TenantId,
        client_comment_id: &str,
    ) -> Result<Option<Comment>, StoreError>;
    /// Newest first; at most `query.limit` comments.
    async fn list_comments(
        &self,
        tenant: TenantId,
        query: &CommentQuery,
    ) -> Result<Vec<Comment>, StoreError>;
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
    /// `author_ip` as stored: keyed hash (`domain::IpHasher`), never the address.
    pub ip_hash: Option<&'a str>,
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
    /// The comment's entry in its author's facts row.
    pub recent_entry: Vec<u8>,
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
                let audit = comment_created_event(record.actor, &comment, review.is_some());
                let reasons_json = super::reasons::encode(&comment.reasons);
                let recent_entry = super::authors::RecentEntry::of(
                    comment.comment_id,
                    record.fingerprint.exact,
                    record.fingerprint.simhash,
                    comment.create_time,
                    comment.status,
                )
                .encode();
                Ok(CommentRow {
                    tenant: *tenant,
                    author_ip: record.ip_hash.map(str::to_owned),
                    fingerprint: record.fingerprint,
                    review,
                    audit,
                    reasons_json,
                    recent_entry,
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

/// After a failed group commit: every record fails as unavailable when the
/// database is, else each is tried in a transaction of its own.
pub(crate) async fn retry_alone<S: CommentStore + ?Sized>(
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
