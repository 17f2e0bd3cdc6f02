//! What the store knows about an author: the history and standing a
//! submission is judged by, and the view a moderator gets.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::{
    Actor, AuthorStanding, Comment, CommentStatus, Standing, StandingTerm, TenantId,
};
use crate::pipeline::spam::AuthorHistory;

#[async_trait]
pub trait AuthorStore: Send + Sync {
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
}

/// One author-history look-up (see [`AuthorStore::author_facts`]).
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
