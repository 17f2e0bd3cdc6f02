//! What the store knows about an author: the history and standing a
//! submission is judged by, and the view a moderator gets.
//!
//! The history is maintained, not scanned: each author has one
//! `author_facts` row whose `recent` column holds the author's latest
//! [`history::RECENT_LIMIT`] comments as fixed-size entries (see
//! [`RecentEntry`]), newest first. The group commit prepends the batch's
//! new entries in the statement that stores the comments; a status change
//! rewrites the entry's status byte in the transaction that makes it. A
//! submission then reads one row by key instead of the author's latest
//! comments (50 rows of a prolific author, each on its own page: issue #12).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::{
    Actor, AuthorStanding, Comment, CommentId, CommentStatus, Standing, StandingTerm, TenantId,
};
use crate::pipeline::spam::AuthorHistory;
use crate::pipeline::spam::history::{self, RecentComment};

#[async_trait]
pub trait AuthorStore: Send + Sync {
    /// What the store knows about each look-up's author and text, in one
    /// indexed query for the whole slice: the author's standing, latest
    /// [`history::RECENT_LIMIT`] comments (newest first, from the author's
    /// facts row) and the number of other authors' comments with this text
    /// since `since` (up to [`history::SAME_TEXT_CAP`]). One answer per
    /// look-up, in order; look-ups may name different tenants and never see
    /// each other's rows.
    async fn author_facts(&self, lookups: &[HistoryLookup])
    -> Result<Vec<AuthorFacts>, StoreError>;
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
    /// Erases what identifies the author, in one transaction: each of the
    /// author's comments not erased yet gets `erasure.marker` as its body,
    /// no original body, display name, address hash or text fingerprints,
    /// and its reasons [`Reason::without_text`]; the reports the author
    /// made and the reports on the author's comments lose their free text;
    /// the fingerprints in the author's facts row are zeroed. Statuses,
    /// scores, counts, standing, decisions and the audit trail stay.
    /// Audited as `author.erased` with what this call erased (0 and 0 when
    /// an earlier call erased everything). `None`, with nothing written,
    /// when the tenant knows nothing of the author.
    ///
    /// [`Reason::without_text`]: crate::domain::Reason::without_text
    async fn erase_author(
        &self,
        tenant: TenantId,
        author: &str,
        erasure: &Erasure<'_>,
    ) -> Result<Option<Erased>, StoreError>;
    /// Audits an export of the author's data (`author.exported`, with how
    /// many comments and reports it gave).
    async fn audit_author_export(
        &self,
        tenant: TenantId,
        author: &str,
        given: (usize, usize),
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// An erasure on its way to the store (see [`AuthorStore::erase_author`]).
pub struct Erasure<'a> {
    /// What an erased comment's body reads.
    pub marker: &'a str,
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
}

/// A comment's stored reasons as an erasure leaves them.
pub(crate) fn erased_reasons(stored: &str) -> Result<String, StoreError> {
    let reasons: Vec<crate::domain::Reason> = super::reasons::decode(stored)?
        .into_iter()
        .map(crate::domain::Reason::without_text)
        .collect();
    Ok(super::reasons::encode(&reasons))
}

/// What one erasure call erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    pub comments: u64,
    pub reports: u64,
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
/// 0), the author's facts (`None`: no comment yet), the count of the same
/// text by others, and the standing.
pub(crate) struct HistoryRow {
    pub ord: i64,
    pub recent: Option<Vec<u8>>,
    pub others: i64,
    pub standing: Option<String>,
    pub standing_until: Option<DateTime<Utc>>,
}

/// Assembles the rows of either backend's author-facts query into one
/// answer per look-up.
pub(crate) fn author_facts_from_rows(
    lookups: usize,
    rows: impl IntoIterator<Item = HistoryRow>,
) -> Result<Vec<AuthorFacts>, StoreError> {
    let mut facts = vec![None; lookups];
    for row in rows {
        let answer = usize::try_from(row.ord)
            .ok()
            .and_then(|ord| facts.get_mut(ord))
            .ok_or_else(|| StoreError::Corrupt(format!("history row for look-up {}", row.ord)))?;
        *answer = Some(AuthorFacts {
            history: AuthorHistory {
                known: true,
                recent: match &row.recent {
                    Some(recent) => RecentEntry::decode_all(recent)?,
                    None => Vec::new(),
                },
                same_text_by_others: row.others as u32,
            },
            standing: standing_term(row.standing.map(|s| (s, row.standing_until)))?,
        });
    }
    facts
        .into_iter()
        .map(|f| f.ok_or_else(|| StoreError::Corrupt("no answer for a look-up".into())))
        .collect()
}

/// One of an author's recent comments in `author_facts.recent`: 33 bytes,
/// big-endian, so SQL can build and search them (the migration builds them
/// from existing comments): the last 8 bytes of the comment id (its tag), the exact
/// and simhash fingerprints, the creation time in microseconds since the
/// epoch, and a status byte (`a`pproved, `p`ending review, `r`ejected).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecentEntry {
    pub id_tag: [u8; 8],
    pub comment: RecentComment,
}

impl RecentEntry {
    pub const BYTES: usize = 33;
    /// The length of a full `recent` column.
    pub const ALL_BYTES: usize = Self::BYTES * history::RECENT_LIMIT as usize;

    pub fn of(
        comment_id: CommentId,
        exact: i64,
        simhash: i64,
        create_time: DateTime<Utc>,
        status: CommentStatus,
    ) -> Self {
        RecentEntry {
            id_tag: Self::id_tag(comment_id),
            comment: RecentComment {
                exact,
                simhash,
                create_time,
                status,
            },
        }
    }

    /// How an entry names its comment (its tag): the last 8 bytes of its id, which
    /// hold 62 random bits in a UUIDv7 (the first 8 are mostly the
    /// millisecond, shared by a burst) and in a v4, so two of one author's
    /// latest comments share them with a chance below 50²/2⁶³.
    pub fn id_tag(comment_id: CommentId) -> [u8; 8] {
        let mut prefix = [0; 8];
        prefix.copy_from_slice(&comment_id.as_uuid().as_bytes()[8..]);
        prefix
    }

    pub fn status_byte(status: CommentStatus) -> u8 {
        match status {
            CommentStatus::Approved => b'a',
            CommentStatus::PendingReview => b'p',
            CommentStatus::Rejected => b'r',
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let c = &self.comment;
        let mut out = Vec::with_capacity(Self::BYTES);
        out.extend_from_slice(&self.id_tag);
        out.extend_from_slice(&c.exact.to_be_bytes());
        out.extend_from_slice(&c.simhash.to_be_bytes());
        out.extend_from_slice(&c.create_time.timestamp_micros().to_be_bytes());
        out.push(Self::status_byte(c.status));
        out
    }

    /// The comments of a `recent` column, newest first (writers from
    /// several replicas may prepend out of time order).
    pub fn decode_all(recent: &[u8]) -> Result<Vec<RecentComment>, StoreError> {
        if !recent.len().is_multiple_of(Self::BYTES) {
            return Err(StoreError::Corrupt(format!(
                "author facts of {} bytes",
                recent.len()
            )));
        }
        let mut out = recent
            .chunks_exact(Self::BYTES)
            .map(|e| {
                let int =
                    |at: usize| i64::from_be_bytes(e[at..at + 8].try_into().expect("8 bytes"));
                let create_time = DateTime::from_timestamp_micros(int(24))
                    .ok_or_else(|| StoreError::Corrupt("author facts: time".into()))?;
                let status = match e[32] {
                    b'a' => CommentStatus::Approved,
                    b'p' => CommentStatus::PendingReview,
                    b'r' => CommentStatus::Rejected,
                    other => {
                        return Err(StoreError::Corrupt(format!(
                            "author facts: status byte {other}"
                        )));
                    }
                };
                Ok(RecentComment {
                    exact: int(8),
                    simhash: int(16),
                    create_time,
                    status,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by_key(|c| std::cmp::Reverse(c.create_time));
        Ok(out)
    }

    /// `recent` with every entry's text fingerprints zeroed: the times and
    /// statuses (velocity, standing) stay, nothing derived from the text does.
    pub fn without_fingerprints(recent: &[u8]) -> Vec<u8> {
        let mut out = recent.to_vec();
        for entry in out.chunks_exact_mut(Self::BYTES) {
            entry[8..24].fill(0);
        }
        out
    }

    /// `recent` with the status byte of `comment_id`'s entry set; `None`
    /// when the comment is not among the author's latest.
    pub fn restatus(
        recent: &[u8],
        comment_id: CommentId,
        status: CommentStatus,
    ) -> Option<Vec<u8>> {
        let tag = Self::id_tag(comment_id);
        let at = recent
            .chunks_exact(Self::BYTES)
            .position(|e| e[..8] == tag)?;
        let mut out = recent.to_vec();
        out[at * Self::BYTES + 32] = Self::status_byte(status);
        Some(out)
    }
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

/// What `get_author` answers, from the rows either backend read: the
/// standing, the latest comments and the counts by status (approved,
/// pending review, rejected) of the author's facts row.
pub(crate) fn author_record(
    standing: Option<Standing>,
    recent: Vec<Comment>,
    counts: Option<(i64, i64, i64)>,
) -> Option<AuthorRecord> {
    if standing.is_none() && recent.is_empty() {
        return None;
    }
    let (approved, pending_review, rejected) = counts.unwrap_or_default();
    Some(AuthorRecord {
        standing,
        approved,
        pending_review,
        rejected,
        recent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000 + seconds, 123_456_000).unwrap()
    }

    #[test]
    fn entries_read_back_newest_first_and_statuses_change_in_place() {
        let ids: Vec<CommentId> = (0..3).map(|_| CommentId::generate()).collect();
        let entries = [
            RecentEntry::of(ids[0], -5, i64::MIN, at(10), CommentStatus::Approved),
            RecentEntry::of(ids[1], i64::MAX, 7, at(30), CommentStatus::PendingReview),
            RecentEntry::of(ids[2], 0, -1, at(20), CommentStatus::Rejected),
        ];
        let recent: Vec<u8> = entries.iter().flat_map(RecentEntry::encode).collect();
        assert_eq!(recent.len(), 3 * RecentEntry::BYTES);
        let read = RecentEntry::decode_all(&recent).unwrap();
        assert_eq!(
            read,
            [
                entries[1].comment.clone(),
                entries[2].comment.clone(),
                entries[0].comment.clone()
            ],
            "newest first, whatever the stored order"
        );

        let changed = RecentEntry::restatus(&recent, ids[1], CommentStatus::Rejected).unwrap();
        let statuses: Vec<_> = RecentEntry::decode_all(&changed)
            .unwrap()
            .into_iter()
            .map(|c| c.status)
            .collect();
        assert_eq!(
            statuses,
            [
                CommentStatus::Rejected,
                CommentStatus::Rejected,
                CommentStatus::Approved
            ]
        );
        let blank = RecentEntry::decode_all(&RecentEntry::without_fingerprints(&recent)).unwrap();
        assert!(blank.iter().all(|c| c.exact == 0 && c.simhash == 0));
        assert_eq!(
            blank
                .iter()
                .map(|c| (c.create_time, c.status))
                .collect::<Vec<_>>(),
            read.iter()
                .map(|c| (c.create_time, c.status))
                .collect::<Vec<_>>(),
            "times and statuses stay"
        );
        assert_eq!(
            RecentEntry::restatus(&recent, CommentId::generate(), CommentStatus::Approved),
            None,
            "a comment that is not among the latest"
        );
    }

    #[test]
    fn damaged_facts_are_errors() {
        let entry =
            RecentEntry::of(CommentId::generate(), 1, 2, at(0), CommentStatus::Approved).encode();
        assert!(
            RecentEntry::decode_all(&entry[..32]).is_err(),
            "a cut entry"
        );
        let mut bad_status = entry.clone();
        bad_status[32] = b'x';
        assert!(RecentEntry::decode_all(&bad_status).is_err());
        assert_eq!(RecentEntry::decode_all(&[]).unwrap(), []);
    }
}
