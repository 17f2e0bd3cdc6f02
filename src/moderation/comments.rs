use std::sync::Arc;

use super::batch::PendingComment;
use super::{Moderation, now};
use crate::domain::{
    ArticleId, Comment, CommentId, CommentStatus, FieldViolation, ModelKind, NewComment, PageSize,
    PageToken, Permission, Principal, TenantId, TenantSettings,
};
use crate::pipeline::spam::{Features, SpamInput, history};
use crate::storage::{CommentCursor, CommentQuery, HistoryLookup, InsertOutcome, StoreError};
use crate::telemetry;

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Invalid(FieldViolation),
    #[error("client_comment_id was already used for a different comment")]
    IdempotencyKeyReused,
    /// The tenant's per-author or per-IP rate.
    #[error(
        "this {scope} has submitted {limit} comments in the last minute, the tenant's limit; retry after the RetryInfo delay"
    )]
    RateLimited {
        scope: &'static str,
        limit: u32,
        retry_after: std::time::Duration,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum GetCommentError {
    #[error("comment not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum ListCommentsError {
    #[error(transparent)]
    Invalid(FieldViolation),
    #[error("listing comments that are not approved needs the moderator or admin role")]
    StatusForbidden,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One page of results and the token for the next one (empty on the last page).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
}

impl<T> Page<T> {
    /// `items` were fetched with one row more than `limit`: that extra row
    /// only tells that a next page exists, and is dropped.
    pub(crate) fn from_overfetch<C: serde::Serialize>(
        mut items: Vec<T>,
        limit: u32,
        scope: &str,
        cursor_after: impl Fn(&T) -> C,
    ) -> Self {
        let next_page_token = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items
                .last()
                .map(|last| PageToken::encode(scope, &cursor_after(last)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Page {
            items,
            next_page_token,
        }
    }
}

impl Moderation {
    /// The tenant's settings, cached for [`super::CACHE_TTL`].
    pub(crate) async fn settings(
        &self,
        tenant: TenantId,
    ) -> Result<Arc<TenantSettings>, StoreError> {
        if let Some(settings) = self.inner.settings.get(&tenant) {
            return Ok(settings);
        }
        let settings = self
            .inner
            .store
            .tenant_settings(tenant)
            .await?
            .map(Arc::new)
            .ok_or_else(|| StoreError::Corrupt(format!("API key of missing tenant {tenant}")))?;
        self.inner.settings.insert(tenant, settings.clone());
        Ok(settings)
    }

    /// Decides and stores a comment; returns it only once it is committed.
    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id))]
    pub async fn submit_comment(
        &self,
        principal: &Principal,
        comment: NewComment,
    ) -> Result<Comment, SubmitError> {
        let settings = self.settings(principal.tenant_id).await?;
        if comment.body.char_count() > settings.max_body_chars as usize {
            return Err(SubmitError::Invalid(FieldViolation::new(
                "body",
                format!("is longer than {} characters", settings.max_body_chars),
            )));
        }
        let rules = self.rules_for(principal.tenant_id).await?;
        let model = self.model_for(principal.tenant_id, ModelKind::Spam).await?;
        let toxicity = self
            .model_for(principal.tenant_id, ModelKind::Toxicity)
            .await?;
        let features = Features::extract(comment.body.as_str());
        let at = now();
        // The one extra round trip the spam score and the author's standing
        // cost, shared with the submissions arriving at the same time.
        // The external classifier's opinion, if the tenant has one, is
        // asked for meanwhile, within its own deadline.
        let (facts, external) = tokio::join!(
            self.inner.history.read(HistoryLookup {
                tenant: principal.tenant_id,
                author: comment.author_id.as_str().to_owned(),
                exact: features.fingerprint.exact,
                since: at - history::DUPLICATE_WINDOW,
            }),
            self.external_opinion(
                principal.tenant_id,
                settings.external_classifier.as_ref(),
                comment.body.as_str(),
                comment.language.as_ref().map(|l| l.as_str()),
            )
        );
        let facts = facts?;
        if let Some(refusal) = self.over_submission_rate(principal, &comment, &settings, &facts, at)
        {
            // A retry of a comment stored before the limit was reached is
            // answered with it, as any retry is.
            if let Some(client_id) = &comment.client_comment_id
                && let Some(stored) = self
                    .inner
                    .store
                    .find_by_client_comment_id(principal.tenant_id, client_id.as_str())
                    .await?
            {
                return if comment.is_same_submission(&stored) {
                    Ok(stored)
                } else {
                    Err(SubmitError::IdempotencyKeyReused)
                };
            }
            return Err(refusal);
        }
        let verdict = self.inner.pipeline.evaluate_with(
            &comment,
            &settings,
            &rules.compiled,
            SpamInput {
                features: &features,
                model: &model.model,
                history: &facts.history,
                now: at,
            },
            &toxicity.model,
            facts.standing,
            external.as_ref(),
        );
        let outcome = self
            .inner
            .writer
            .insert(PendingComment {
                tenant: principal.tenant_id,
                comment_id: CommentId::generate(),
                comment: comment.clone(),
                verdict,
                fingerprint: features.fingerprint,
                actor: principal.actor(),
                now: at,
                ip_hash: comment
                    .author_ip
                    .map(|ip| self.inner.ip_hasher.hash(principal.tenant_id, ip)),
            })
            .await?;
        match outcome {
            InsertOutcome::Created(stored) => {
                telemetry::record_decision(stored.status);
                Ok(stored)
            }
            InsertOutcome::Existing(stored) if comment.is_same_submission(&stored) => Ok(stored),
            InsertOutcome::Existing(_) => Err(SubmitError::IdempotencyKeyReused),
        }
    }

    /// The tenant's per-author and per-IP rates. The author's is counted
    /// from the author's latest comments as stored (exact across replicas,
    /// save submissions of the same author in flight at the same instant);
    /// the IP's from this replica's buckets (see `limits`).
    fn over_submission_rate(
        &self,
        principal: &Principal,
        comment: &NewComment,
        settings: &TenantSettings,
        facts: &crate::storage::AuthorFacts,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Option<SubmitError> {
        let minute = chrono::Duration::minutes(1);
        let limit = settings.max_comments_per_author_per_minute as usize;
        if limit > 0 {
            // `recent` is newest first: a place frees up when the
            // limit-th newest comment of the window leaves it.
            if let Some(limit_th) = facts
                .history
                .recent
                .iter()
                .filter(|c| c.create_time > at - minute)
                .nth(limit - 1)
            {
                let frees_at = limit_th.create_time + minute;
                return Some(SubmitError::RateLimited {
                    scope: "author",
                    limit: limit as u32,
                    retry_after: (frees_at - at).to_std().unwrap_or_default(),
                });
            }
        }
        let limit = settings.max_comments_per_ip_per_minute;
        if limit > 0
            && let Some(ip) = comment.author_ip
        {
            // `limit` a minute, bursts of a minute's worth: this replica's
            // share of both.
            let (per_minute, burst) =
                super::limits::share(f64::from(limit), self.inner.replicas.get());
            let per_second = per_minute / 60.0;
            if let Err(retry_after) = self.inner.ip_buckets.take(
                &(principal.tenant_id, ip),
                per_second,
                burst,
                std::time::Instant::now(),
            ) {
                return Some(SubmitError::RateLimited {
                    scope: "IP address",
                    limit,
                    retry_after,
                });
            }
        }
        None
    }

    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id, %id))]
    pub async fn get_comment(
        &self,
        principal: &Principal,
        id: CommentId,
    ) -> Result<Comment, GetCommentError> {
        self.inner
            .store
            .get_comment(principal.tenant_id, id)
            .await?
            .ok_or(GetCommentError::NotFound)
    }

    /// Newest first. `status` `None` means approved.
    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id))]
    pub async fn list_comments(
        &self,
        principal: &Principal,
        article_id: Option<ArticleId>,
        status: Option<CommentStatus>,
        page_size: PageSize,
        page_token: &str,
    ) -> Result<Page<Comment>, ListCommentsError> {
        let status = status.unwrap_or(CommentStatus::Approved);
        if status != CommentStatus::Approved && !principal.can(Permission::ReadAnyStatus) {
            return Err(ListCommentsError::StatusForbidden);
        }
        let article_id = article_id.map(ArticleId::into_inner);
        let scope = format!(
            "comments|{}|{}",
            status.as_str(),
            article_id.as_deref().unwrap_or("")
        );
        let after: Option<CommentCursor> = PageToken::decode("page_token", page_token, &scope)
            .map_err(ListCommentsError::Invalid)?;
        let limit = page_size.get();
        let items = self
            .inner
            .store
            .list_comments(
                principal.tenant_id,
                &CommentQuery {
                    article_id,
                    status,
                    after,
                    limit: limit + 1,
                },
            )
            .await?;
        Ok(Page::from_overfetch(
            items,
            limit,
            &scope,
            CommentCursor::after,
        ))
    }
}
