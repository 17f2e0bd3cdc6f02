//! Reading the audit trail. Writing it is the store's job: every state change
//! writes its event in the same transaction, so the trail cannot miss one.

use chrono::{DateTime, Utc};

use super::Moderation;
use super::comments::Page;
use crate::domain::{AuthorId, CommentId, FieldViolation, PageSize, PageToken, Principal};
use crate::storage::{AuditQuery, AuditRecord, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ListAuditError {
    #[error(transparent)]
    Invalid(FieldViolation),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which events to list; every filter that is set must match.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub comment_id: Option<CommentId>,
    pub author_id: Option<AuthorId>,
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Inclusive.
    pub start_time: Option<DateTime<Utc>>,
    /// Exclusive.
    pub end_time: Option<DateTime<Utc>>,
    pub oldest_first: bool,
}

impl AuditFilter {
    /// What a page token is bound to: a token is refused with other filters.
    fn scope(&self) -> String {
        format!(
            "audit|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}",
            self.comment_id.map(|id| id.to_string()),
            self.author_id.as_ref().map(AuthorId::as_str),
            self.actor,
            self.action,
            self.start_time.map(|t| t.timestamp_micros()),
            self.end_time.map(|t| t.timestamp_micros()),
            self.oldest_first,
        )
    }
}

impl Moderation {
    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id))]
    pub async fn list_audit_events(
        &self,
        principal: &Principal,
        filter: AuditFilter,
        page_size: PageSize,
        page_token: &str,
    ) -> Result<Page<AuditRecord>, ListAuditError> {
        let scope = filter.scope();
        let after_event: Option<i64> =
            PageToken::decode("page_token", page_token, &scope).map_err(ListAuditError::Invalid)?;
        let limit = page_size.get();
        let query = AuditQuery {
            comment_id: filter.comment_id,
            author_id: filter.author_id.map(AuthorId::into_inner),
            actor: filter.actor,
            action: filter.action,
            subject_id: None,
            start_time: filter.start_time,
            end_time: filter.end_time,
            after_event,
            oldest_first: filter.oldest_first,
            limit: limit + 1,
        };
        let events = self
            .store()
            .list_audit_events(principal.tenant_id, &query)
            .await?;
        Ok(Page::from_overfetch(events, limit, &scope, |e| e.event_id))
    }
}
