//! Author standing: trust, pre-moderation, suspension and bans, set by
//! moderators and read back with the author's record.
//!
//! The standing is not cached: the submission path reads it with the
//! author's history in the same batched query, so a ban applies to the very
//! next comment on every replica.

use super::{Moderation, now};
use crate::domain::{
    Actor, AuthorId, AuthorStanding, Comment, FieldViolation, Principal, Standing, StandingTerm,
};
use chrono::{DateTime, Utc};

use crate::storage::{AuthorRecord, StandingChange, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AuthorError {
    #[error(transparent)]
    Invalid(FieldViolation),
    #[error("nothing is known about this author: no comment and no standing")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An author as moderators see them.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorView {
    pub author_id: String,
    /// In force now; an ended term is normal with no end.
    pub in_force: StandingTerm,
    /// As last set; `None` when it never was.
    pub last_set: Option<Standing>,
    pub approved: i64,
    pub pending_review: i64,
    pub rejected: i64,
    /// Newest first.
    pub recent: Vec<Comment>,
}

/// How many latest comments `SetAuthorStanding` reads back.
const RECENT_AFTER_SET: u32 = 20;

impl Moderation {
    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id, standing = %term.standing))]
    pub async fn set_author_standing(
        &self,
        principal: &Principal,
        actor: Actor,
        author: AuthorId,
        term: StandingTerm,
        reason: &str,
    ) -> Result<AuthorView, AuthorError> {
        let at = now();
        let invalid =
            |reason: &str| Err(AuthorError::Invalid(FieldViolation::new("until", reason)));
        match (term.standing, term.until) {
            (_, Some(until)) if until <= at => return invalid("must be in the future"),
            (AuthorStanding::Normal, Some(_)) => return invalid("must not be set for NORMAL"),
            (AuthorStanding::Suspended, None) => {
                return invalid("is required for SUSPENDED (a ban has no end)");
            }
            _ => {}
        }
        self.store()
            .set_author_standing(
                principal.tenant_id,
                author.as_str(),
                &StandingChange {
                    term,
                    reason,
                    actor: &actor,
                    now: at,
                },
            )
            .await?;
        self.get_author(principal, author, RECENT_AFTER_SET).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id))]
    pub async fn get_author(
        &self,
        principal: &Principal,
        author: AuthorId,
        recent: u32,
    ) -> Result<AuthorView, AuthorError> {
        let record = self
            .store()
            .get_author(principal.tenant_id, author.as_str(), recent)
            .await?
            .ok_or(AuthorError::NotFound)?;
        Ok(AuthorView::of(author, record, now()))
    }
}

impl AuthorView {
    /// The view of a stored record at `at`.
    pub(super) fn of(author: AuthorId, record: AuthorRecord, at: DateTime<Utc>) -> Self {
        AuthorView {
            author_id: author.into_inner(),
            in_force: record
                .standing
                .as_ref()
                .map_or_else(StandingTerm::default, |s| s.term.in_force(at)),
            last_set: record.standing,
            approved: record.approved,
            pending_review: record.pending_review,
            rejected: record.rejected,
            recent: record.recent,
        }
    }
}
