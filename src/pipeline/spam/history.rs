//! Author history: what the database knows about the author and the text,
//! turned into log-odds contributions.
//!
//! The store fetches the facts in one indexed round trip
//! (`AuthorStore::author_facts`); this module only interprets them, so the
//! thresholds are unit-tested without a database. Unlike text features these
//! weights are not learned: labelled datasets carry no posting history, so
//! they are set by judgement and documented in the README.

use chrono::{DateTime, Duration, Utc};

use super::features::Fingerprint;
use crate::domain::CommentStatus;

/// How many of the author's latest comments are looked at.
pub const RECENT_LIMIT: u32 = 50;
/// Duplicates count within this window.
pub const DUPLICATE_WINDOW: Duration = Duration::hours(24);
/// Velocity is measured over this window…
pub const VELOCITY_WINDOW: Duration = Duration::minutes(10);
/// …and counts from this many earlier comments in it.
pub const VELOCITY_LIMIT: usize = 5;
/// Only comments at least this old make the author's record: a burst of
/// fresh comments, approved automatically a minute ago, proves nothing.
pub const RECORD_MIN_AGE: Duration = Duration::hours(1);
/// Texts shorter than this many words never count as duplicates ("Bravo !").
pub const DUPLICATE_MIN_WORDS: u32 = 4;
/// Other authors' copies are counted up to this many: enough for the
/// strongest signal, and a text pasted thousands of times costs no more to
/// look up than one pasted three times.
pub const SAME_TEXT_CAP: u32 = 3;
/// Simhashes at most this many bits apart are near-duplicates.
pub const NEAR_DUPLICATE_BITS: u32 = 6;

/// One of the author's recent comments, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentComment {
    pub exact: i64,
    pub simhash: i64,
    pub create_time: DateTime<Utc>,
    pub status: CommentStatus,
}

/// What the store knows before a comment is inserted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthorHistory {
    /// Set when the history was looked up; `None` (evaluation, dry runs)
    /// contributes nothing.
    pub known: bool,
    /// The author's latest comments, newest first, at most [`RECENT_LIMIT`].
    pub recent: Vec<RecentComment>,
    /// Comments by other authors with the same normalised text within
    /// [`DUPLICATE_WINDOW`], counted up to [`SAME_TEXT_CAP`].
    pub same_text_by_others: u32,
}

/// One history finding: a `Reason` code, its message and its log-odds.
#[derive(Debug, Clone, PartialEq)]
pub struct HistorySignal {
    pub code: &'static str,
    pub message: String,
    pub logit: f64,
}

impl AuthorHistory {
    /// No lookup was made.
    pub fn unknown() -> Self {
        AuthorHistory::default()
    }

    pub fn signals(&self, text: Fingerprint, now: DateTime<Utc>) -> Vec<HistorySignal> {
        let mut out = Vec::new();
        if !self.known {
            return out;
        }
        if self.recent.is_empty() {
            out.push(HistorySignal {
                code: "spam.first_comment",
                message: "first comment by this author".into(),
                logit: 0.3,
            });
        }
        let within = |c: &&RecentComment, window: Duration| now - c.create_time <= window;
        if text.words >= DUPLICATE_MIN_WORDS {
            let repeats = self
                .recent
                .iter()
                .filter(|c| within(c, DUPLICATE_WINDOW) && c.exact == text.exact)
                .count();
            let near = self
                .recent
                .iter()
                .filter(|c| {
                    within(c, DUPLICATE_WINDOW)
                        && c.exact != text.exact
                        && (c.simhash ^ text.simhash).count_ones() <= NEAR_DUPLICATE_BITS
                })
                .count();
            if repeats > 0 {
                out.push(HistorySignal {
                    code: "spam.repeated_text",
                    message: format!(
                        "the author posted this text {repeats} time(s) in the last 24 hours"
                    ),
                    logit: 2.5,
                });
            } else if near > 0 {
                out.push(HistorySignal {
                    code: "spam.near_duplicate",
                    message: format!(
                        "nearly the same text as {near} of the author's comments in the last 24 hours"
                    ),
                    logit: 1.5,
                });
            }
            if self.same_text_by_others > 0 {
                out.push(HistorySignal {
                    code: "spam.text_elsewhere",
                    message: if self.same_text_by_others >= SAME_TEXT_CAP {
                        format!(
                            "{SAME_TEXT_CAP} or more comments by other authors had this text in the last 24 hours"
                        )
                    } else {
                        format!(
                            "{} comment(s) by other authors had this text in the last 24 hours",
                            self.same_text_by_others
                        )
                    },
                    logit: if self.same_text_by_others >= 3 {
                        2.5
                    } else {
                        1.5
                    },
                });
            }
        }
        let burst = self
            .recent
            .iter()
            .filter(|c| within(c, VELOCITY_WINDOW))
            .count();
        if burst >= VELOCITY_LIMIT {
            out.push(HistorySignal {
                code: "spam.velocity",
                message: format!("{burst} comments by this author in the last 10 minutes"),
                logit: if burst >= 2 * VELOCITY_LIMIT {
                    2.5
                } else {
                    1.5
                },
            });
        }
        let settled = |c: &&RecentComment| now - c.create_time >= RECORD_MIN_AGE;
        let approved = self
            .recent
            .iter()
            .filter(settled)
            .filter(|c| c.status == CommentStatus::Approved)
            .count();
        let rejected = self
            .recent
            .iter()
            .filter(settled)
            .filter(|c| c.status == CommentStatus::Rejected)
            .count();
        let decided = approved + rejected;
        if decided >= 3 {
            let rejected_share = rejected as f64 / decided as f64;
            out.push(HistorySignal {
                code: "spam.author_record",
                message: format!(
                    "{approved} of the author's last {decided} decided comments were approved"
                ),
                // From −1.5 (all approved) to +1.5 (all rejected).
                logit: 3.0 * (rejected_share - 0.5),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::spam::features::Features;

    fn now() -> DateTime<Utc> {
        "2026-11-29T12:00:00Z".parse().unwrap()
    }

    fn posted(text: &str, minutes_ago: i64, status: CommentStatus) -> RecentComment {
        let f = Features::extract(text).fingerprint;
        RecentComment {
            exact: f.exact,
            simhash: f.simhash,
            create_time: now() - Duration::minutes(minutes_ago),
            status,
        }
    }

    fn codes(history: &AuthorHistory, text: &str) -> Vec<&'static str> {
        history
            .signals(Features::extract(text).fingerprint, now())
            .into_iter()
            .map(|s| s.code)
            .collect()
    }

    const OFFER: &str = "Gagnez 500 euros par jour depuis chez vous, écrivez-moi vite";

    #[test]
    fn unknown_history_says_nothing_and_a_new_author_is_noted() {
        assert_eq!(codes(&AuthorHistory::unknown(), OFFER), Vec::<&str>::new());
        let new = AuthorHistory {
            known: true,
            ..AuthorHistory::default()
        };
        assert_eq!(codes(&new, OFFER), ["spam.first_comment"]);
    }

    #[test]
    fn repeated_and_nearly_repeated_texts_within_a_day() {
        let history = AuthorHistory {
            known: true,
            recent: vec![posted(OFFER, 30, CommentStatus::Approved)],
            same_text_by_others: 0,
        };
        assert_eq!(
            codes(
                &history,
                "GAGNEZ 500 euros par jour depuis chez vous ! Écrivez-moi vite"
            ),
            ["spam.repeated_text"]
        );
        assert_eq!(
            codes(
                &history,
                "Gagnez 500 euros par jour depuis chez vous, écrivez-moi vite svp"
            ),
            ["spam.near_duplicate"]
        );
        assert_eq!(
            codes(
                &history,
                "Je ne suis pas d'accord avec le ministre sur ce point"
            ),
            Vec::<&str>::new()
        );
        let old = AuthorHistory {
            known: true,
            recent: vec![posted(OFFER, 25 * 60, CommentStatus::Approved)],
            same_text_by_others: 0,
        };
        assert_eq!(codes(&old, OFFER), Vec::<&str>::new());
    }

    #[test]
    fn short_texts_are_never_duplicates() {
        let history = AuthorHistory {
            known: true,
            recent: vec![posted("Bravo !", 1, CommentStatus::Approved)],
            same_text_by_others: 12,
        };
        assert_eq!(codes(&history, "Bravo !"), Vec::<&str>::new());
    }

    #[test]
    fn the_same_text_by_other_authors() {
        let history = AuthorHistory {
            known: true,
            recent: vec![posted(
                "autre chose sans rapport aucun",
                300,
                CommentStatus::Approved,
            )],
            same_text_by_others: 3,
        };
        let signals = history.signals(Features::extract(OFFER).fingerprint, now());
        assert_eq!(signals[0].code, "spam.text_elsewhere");
        assert_eq!(signals[0].logit, 2.5);
    }

    #[test]
    fn velocity_counts_comments_in_the_last_ten_minutes() {
        let burst = |n: usize, minutes_apart: i64| AuthorHistory {
            known: true,
            recent: (0..n)
                .map(|i| {
                    posted(
                        &format!("commentaire numéro {i} sur le sujet du jour"),
                        i as i64 * minutes_apart,
                        CommentStatus::PendingReview,
                    )
                })
                .collect(),
            same_text_by_others: 0,
        };
        assert_eq!(
            codes(&burst(5, 1), "encore un autre commentaire"),
            ["spam.velocity"]
        );
        assert_eq!(
            codes(&burst(4, 1), "encore un autre commentaire"),
            Vec::<&str>::new()
        );
        assert_eq!(
            codes(&burst(5, 3), "encore un autre commentaire"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn the_author_record_lowers_or_raises_the_score() {
        let record = |approved: usize, rejected: usize| AuthorHistory {
            known: true,
            recent: (0..approved)
                .map(|i| {
                    posted(
                        &format!("avis numéro {i} sur la politique"),
                        600 + i as i64 * 60,
                        CommentStatus::Approved,
                    )
                })
                .chain((0..rejected).map(|i| {
                    posted(
                        &format!("offre {i}"),
                        700 + i as i64 * 60,
                        CommentStatus::Rejected,
                    )
                }))
                .collect(),
            same_text_by_others: 0,
        };
        let logit = |h: AuthorHistory| {
            h.signals(Features::extract("un nouvel avis").fingerprint, now())[0].logit
        };
        assert_eq!(logit(record(6, 0)), -1.5);
        assert_eq!(logit(record(0, 4)), 1.5);
        assert!(
            record(2, 0)
                .signals(Features::extract("x").fingerprint, now())
                .is_empty()
        );
        let fresh = AuthorHistory {
            known: true,
            recent: (0..4)
                .map(|i| posted(&format!("avis {i}"), 20 + i, CommentStatus::Approved))
                .collect(),
            same_text_by_others: 0,
        };
        assert!(
            fresh
                .signals(Features::extract("x").fingerprint, now())
                .is_empty(),
            "comments approved minutes ago make no record"
        );
    }
}
