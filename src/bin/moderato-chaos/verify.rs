//! The ledger against the database, after the run: every promise of the
//! issue is one counter here, and a run passes only with each at zero.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use sqlx::Row as _;

use crate::ledger::{Ledger, norm};

/// What the database holds, read once the load has stopped.
pub struct Stored {
    /// client_comment_id → (comment id, status), one entry per row.
    pub comments: Vec<(String, String, i32)>,
    /// The event log as the stream numbers it: (sequence, comment, status, version).
    pub events: Vec<(i64, String, i32, i64)>,
    pub reviews: Vec<ReviewRow>,
    /// SQLite's `PRAGMA integrity_check`, or `None` on Postgres.
    pub integrity: Option<String>,
}

/// A row of `review_items`, ids without dashes.
pub struct ReviewRow {
    pub review_id: String,
    pub comment_id: String,
    /// `open` or `decided`.
    pub state: String,
    pub decision: Option<String>,
    pub decided_by: Option<String>,
}

fn status_code(status: &str) -> i32 {
    match status {
        "approved" => 1,
        "pending_review" => 2,
        "rejected" => 3,
        _ => 0,
    }
}

/// The three reads, alike on both backends but for how an id becomes text
/// (the expressions given, as literals).
macro_rules! read_stored {
    ($pool:expr, $comment_id:literal, $review_id:literal, $review_comment_id:literal) => {{
        let comments: Vec<(String, String, i32)> = sqlx::query(concat!(
            "SELECT client_comment_id, ",
            $comment_id,
            ", status FROM comments WHERE client_comment_id IS NOT NULL"
        ))
        .fetch_all($pool)
        .await?
        .into_iter()
        .map(|r| {
            (
                r.get::<String, _>(0),
                norm(&r.get::<String, _>(1)),
                status_code(&r.get::<String, _>(2)),
            )
        })
        .collect();
        let events: Vec<(i64, String, i32, i64)> = sqlx::query(
            "SELECT s.sequence, a.subject_id, a.to_state, a.version FROM decision_sequence s \
             JOIN audit_events a ON a.event_id = s.event_id ORDER BY s.sequence",
        )
        .fetch_all($pool)
        .await?
        .into_iter()
        .map(|r| {
            (
                r.get::<i64, _>(0),
                norm(&r.get::<String, _>(1)),
                status_code(&r.get::<Option<String>, _>(2).unwrap_or_default()),
                r.get::<Option<i64>, _>(3).unwrap_or(0),
            )
        })
        .collect();
        let reviews: Vec<ReviewRow> = sqlx::query(concat!(
            "SELECT ",
            $review_id,
            ", ",
            $review_comment_id,
            ", state, decision, decided_by FROM review_items"
        ))
        .fetch_all($pool)
        .await?
        .into_iter()
        .map(|r| ReviewRow {
            review_id: norm(&r.get::<String, _>(0)),
            comment_id: norm(&r.get::<String, _>(1)),
            state: r.get(2),
            decision: r.get(3),
            decided_by: r.get(4),
        })
        .collect();
        (comments, events, reviews)
    }};
}

pub async fn read_postgres(url: &str) -> anyhow::Result<Stored> {
    let pool = sqlx::PgPool::connect(url).await?;
    let (comments, events, reviews) = read_stored!(
        &pool,
        "comment_id::text",
        "review_id::text",
        "comment_id::text"
    );
    pool.close().await;
    Ok(Stored {
        comments,
        events,
        reviews,
        integrity: None,
    })
}

pub async fn read_sqlite(path: &std::path::Path) -> anyhow::Result<Stored> {
    use sqlx::sqlite::SqliteConnectOptions;
    let options = SqliteConnectOptions::new().filename(path).read_only(true);
    let pool = sqlx::SqlitePool::connect_with(options).await?;
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await?;
    let (comments, events, reviews) = read_stored!(
        &pool,
        "lower(hex(comment_id))",
        "lower(hex(review_id))",
        "lower(hex(comment_id))"
    );
    pool.close().await;
    Ok(Stored {
        comments,
        events,
        reviews,
        integrity: Some(integrity),
    })
}

/// The verdict of a run. Every field but the totals must be zero (or `ok`).
#[derive(Debug, Default, Serialize)]
pub struct Findings {
    pub submissions: usize,
    pub attempts: u64,
    /// Submissions sent more than once (the same `client_comment_id`).
    pub retried: usize,
    pub acknowledged: usize,
    pub acknowledged_after_settling: usize,
    pub never_acknowledged: usize,
    /// Acknowledged but not stored, or stored under another id.
    pub lost: usize,
    /// Stored more than once, acknowledged with two ids, or stored without
    /// ever having been sent.
    pub duplicated: usize,
    /// Acknowledged with a status and version the event log never had.
    pub verdict_mismatch: usize,
    pub claims: usize,
    pub decisions_acknowledged: usize,
    pub decisions_unconfirmed: usize,
    /// Of those, applied all the same (the answer was lost on the way).
    pub decisions_applied_unconfirmed: usize,
    /// Acknowledged decisions the review item does not show.
    pub decisions_not_applied: usize,
    /// Comments with two decided review items, or two events of one version.
    pub decided_twice: usize,
    /// Held comments with no open review item.
    pub review_items_lost: usize,
    /// A claim granted while another moderator's lease on the item ran, or
    /// after the item was decided.
    pub lease_violations: usize,
    pub stream_events_expected: usize,
    pub stream_events_seen: usize,
    pub stream_gaps: usize,
    pub stream_duplicates: usize,
    pub stream_out_of_order: usize,
    /// Events whose comment, status or version differ from the event log.
    pub stream_mismatch: usize,
    pub stream_connects: u32,
    pub unexpected_answers: usize,
    pub integrity_check: String,
    /// The first few findings in words, to start debugging from.
    pub examples: Vec<String>,
}

impl Findings {
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.verdict_mismatch == 0
            && self.never_acknowledged == 0
            && self.decisions_not_applied == 0
            && self.decided_twice == 0
            && self.review_items_lost == 0
            && self.lease_violations == 0
            && self.stream_gaps == 0
            && self.stream_duplicates == 0
            && self.stream_out_of_order == 0
            && self.stream_mismatch == 0
            && self.stream_events_seen == self.stream_events_expected
            && self.unexpected_answers == 0
            && self.integrity_check == "ok"
    }

    fn note(&mut self, what: String) {
        if self.examples.len() < 20 {
            self.examples.push(what);
        }
    }
}

pub fn check(ledger: &Ledger, stored: &Stored, acknowledged_before_settling: usize) -> Findings {
    let mut f = Findings {
        submissions: ledger.submissions.len(),
        attempts: ledger
            .submissions
            .values()
            .map(|s| u64::from(s.attempts))
            .sum(),
        retried: ledger
            .submissions
            .values()
            .filter(|s| s.attempts > 1)
            .count(),
        acknowledged: acknowledged_before_settling,
        claims: ledger.claims.len(),
        decisions_acknowledged: ledger.decisions.len(),
        decisions_unconfirmed: ledger.unconfirmed.len(),
        stream_connects: ledger.stream_connects,
        unexpected_answers: ledger.unexpected.len(),
        integrity_check: stored.integrity.clone().unwrap_or_else(|| "ok".to_owned()),
        ..Findings::default()
    };
    for what in &ledger.unexpected {
        f.note(format!("unexpected answer: {what}"));
    }

    // Comments: stored exactly once, under the acknowledged id.
    let mut stored_by_client: HashMap<&str, Vec<&(String, String, i32)>> = HashMap::new();
    for row in &stored.comments {
        stored_by_client
            .entry(row.0.as_str())
            .or_default()
            .push(row);
    }
    for (client_id, rows) in &stored_by_client {
        if !ledger.submissions.contains_key(*client_id) {
            f.duplicated += 1;
            f.note(format!("{client_id}: stored, never sent"));
        } else if rows.len() > 1 {
            f.duplicated += rows.len() - 1;
            f.note(format!("{client_id}: stored {} times", rows.len()));
        }
    }
    let versions: HashSet<(&str, i64, i32)> = stored
        .events
        .iter()
        .map(|(_, comment, status, version)| (comment.as_str(), *version, *status))
        .collect();
    for (client_id, submission) in &ledger.submissions {
        if submission.acks.is_empty() {
            f.never_acknowledged += 1;
            f.note(format!("{client_id}: never acknowledged"));
            continue;
        }
        f.acknowledged_after_settling += 1;
        let ids: HashSet<String> = submission
            .acks
            .iter()
            .map(|a| norm(&a.comment_id))
            .collect();
        if ids.len() > 1 {
            f.duplicated += ids.len() - 1;
            f.note(format!("{client_id}: acknowledged as {ids:?}"));
        }
        let rows = stored_by_client.get(client_id.as_str());
        let stored_ids: HashSet<&str> = rows
            .into_iter()
            .flatten()
            .map(|row| row.1.as_str())
            .collect();
        for id in &ids {
            if !stored_ids.contains(id.as_str()) {
                f.lost += 1;
                f.note(format!("{client_id}: acknowledged as {id}, not stored"));
            }
        }
        for ack in &submission.acks {
            if !versions.contains(&(norm(&ack.comment_id).as_str(), ack.version, ack.status)) {
                f.verdict_mismatch += 1;
                f.note(format!(
                    "{client_id}: acknowledged status {} at version {}, not in the event log",
                    ack.status, ack.version
                ));
            }
        }
    }

    // Decisions.
    let reviews: HashMap<&str, &ReviewRow> = stored
        .reviews
        .iter()
        .map(|r| (r.review_id.as_str(), r))
        .collect();
    let mut acked_at: HashMap<String, i64> = HashMap::new();
    for decision in &ledger.decisions {
        let review_id = norm(&decision.review_id);
        acked_at.insert(review_id.clone(), decision.at_ms);
        let want = if decision.approve {
            "approve"
        } else {
            "reject"
        };
        let applied = reviews.get(review_id.as_str()).is_some_and(|r| {
            r.state == "decided"
                && r.decision.as_deref() == Some(want)
                && r.decided_by.as_deref() == Some(decision.moderator.as_str())
        });
        let logged = versions.contains(&(
            norm(&decision.comment_id).as_str(),
            decision.version,
            decision.status,
        ));
        if !applied || !logged {
            f.decisions_not_applied += 1;
            f.note(format!(
                "decision on {review_id} by {} (applied {applied}, in the log {logged})",
                decision.moderator
            ));
        }
    }
    // Unconfirmed decisions: applied (the answer was lost) or not; either
    // is allowed, and the count of the first is reported.
    for maybe in &ledger.unconfirmed {
        let want = if maybe.approve { "approve" } else { "reject" };
        if reviews
            .get(norm(&maybe.review_id).as_str())
            .is_some_and(|r| {
                r.decision.as_deref() == Some(want)
                    && r.decided_by.as_deref() == Some(maybe.moderator.as_str())
            })
        {
            f.decisions_applied_unconfirmed += 1;
        }
    }
    let mut decided_per_comment: HashMap<&str, usize> = HashMap::new();
    let mut open_per_comment: HashSet<&str> = HashSet::new();
    for r in &stored.reviews {
        if r.state == "decided" {
            *decided_per_comment
                .entry(r.comment_id.as_str())
                .or_default() += 1;
        } else {
            open_per_comment.insert(r.comment_id.as_str());
        }
    }
    for (comment, n) in decided_per_comment {
        if n > 1 {
            f.decided_twice += n - 1;
            f.note(format!("comment {comment}: {n} decided review items"));
        }
    }
    let mut per_version: HashMap<(&str, i64), usize> = HashMap::new();
    for (_, comment, _, version) in &stored.events {
        *per_version.entry((comment.as_str(), *version)).or_default() += 1;
    }
    for ((comment, version), n) in per_version {
        if n > 1 {
            f.decided_twice += n - 1;
            f.note(format!(
                "comment {comment}: {n} events at version {version}"
            ));
        }
    }
    for (_, id, status) in &stored.comments {
        if *status == 2 && !open_per_comment.contains(id.as_str()) {
            f.review_items_lost += 1;
            f.note(format!("comment {id}: held with no open review item"));
        }
    }

    // Leases: a claim is granted at its expiry minus its length (the
    // server's clock); it must not start before the previous holder's
    // lease ended, unless that holder decided or the item was free.
    let mut claims_by_item: BTreeMap<String, Vec<&crate::ledger::Claim>> = BTreeMap::new();
    for claim in &ledger.claims {
        claims_by_item
            .entry(norm(&claim.review_id))
            .or_default()
            .push(claim);
    }
    for (item, mut claims) in claims_by_item {
        claims.sort_by_key(|c| c.lease_expire_ms - c.lease_seconds * 1000);
        for pair in claims.windows(2) {
            let granted = pair[1].lease_expire_ms - pair[1].lease_seconds * 1000;
            if granted + 5 < pair[0].lease_expire_ms {
                f.lease_violations += 1;
                f.note(format!(
                    "item {item}: claimed by {} while {}'s lease ran ({} ms left)",
                    pair[1].moderator,
                    pair[0].moderator,
                    pair[0].lease_expire_ms - granted
                ));
            }
        }
        if let (Some(decided), Some(last)) = (acked_at.get(&item), claims.last()) {
            let granted = last.lease_expire_ms - last.lease_seconds * 1000;
            if granted > *decided {
                f.lease_violations += 1;
                f.note(format!("item {item}: claimed after its decision"));
            }
        }
    }

    // The stream: 1..=N, each once, in order, as the log has them.
    f.stream_events_expected = stored.events.len();
    f.stream_events_seen = ledger.events.len();
    let log: HashMap<i64, &(i64, String, i32, i64)> =
        stored.events.iter().map(|e| (e.0, e)).collect();
    let mut seen = HashSet::new();
    let mut previous = 0i64;
    for event in &ledger.events {
        if !seen.insert(event.sequence) {
            f.stream_duplicates += 1;
            f.note(format!("sequence {} received twice", event.sequence));
        } else if event.sequence < previous {
            f.stream_out_of_order += 1;
        }
        previous = previous.max(event.sequence);
        match log.get(&event.sequence) {
            Some((_, comment, status, version))
                if *comment == norm(&event.comment_id)
                    && *status == event.status
                    && *version == event.version => {}
            _ => {
                f.stream_mismatch += 1;
                f.note(format!("sequence {} differs from the log", event.sequence));
            }
        }
    }
    for (sequence, ..) in &stored.events {
        if !seen.contains(sequence) {
            f.stream_gaps += 1;
            f.note(format!("sequence {sequence} never received"));
        }
    }
    for (i, (sequence, ..)) in stored.events.iter().enumerate() {
        if *sequence != i as i64 + 1 {
            f.stream_gaps += 1;
            f.note(format!("the log numbers {sequence} at position {}", i + 1));
            break;
        }
    }
    f
}

#[cfg(test)]
mod tests {
    //! Each counter fires on the fault it names, and a consistent history
    //! passes: the harness can fail.

    use super::*;
    use crate::ledger::{Ack, Claim, DecisionAck, Event, Submission};

    const C1: &str = "01a2-0001";
    const R1: &str = "0f00-0001";

    /// One comment acknowledged as held, claimed, approved, streamed.
    fn consistent() -> (Ledger, Stored) {
        let mut ledger = Ledger::default();
        ledger.submissions.insert(
            "k-1".into(),
            Submission {
                request: None,
                attempts: 2,
                acks: vec![Ack {
                    comment_id: C1.into(),
                    status: 2,
                    version: 1,
                }],
            },
        );
        ledger.claims.push(Claim {
            review_id: R1.into(),
            moderator: "m-1".into(),
            lease_seconds: 4,
            lease_expire_ms: 10_000,
        });
        ledger.decisions.push(DecisionAck {
            review_id: R1.into(),
            comment_id: C1.into(),
            moderator: "m-1".into(),
            approve: true,
            status: 1,
            version: 2,
            at_ms: 7_000,
        });
        ledger.events = vec![
            Event {
                sequence: 1,
                comment_id: C1.into(),
                status: 2,
                version: 1,
            },
            Event {
                sequence: 2,
                comment_id: C1.into(),
                status: 1,
                version: 2,
            },
        ];
        let stored = Stored {
            comments: vec![("k-1".into(), norm(C1), 1)],
            events: vec![(1, norm(C1), 2, 1), (2, norm(C1), 1, 2)],
            reviews: vec![ReviewRow {
                review_id: norm(R1),
                comment_id: norm(C1),
                state: "decided".into(),
                decision: Some("approve".into()),
                decided_by: Some("m-1".into()),
            }],
            integrity: Some("ok".into()),
        };
        (ledger, stored)
    }

    #[test]
    fn a_consistent_history_passes() {
        let (ledger, stored) = consistent();
        let f = check(&ledger, &stored, 1);
        assert!(f.clean(), "{f:?}");
        assert_eq!((f.retried, f.decisions_acknowledged), (1, 1));
    }

    #[test]
    fn an_acknowledged_comment_missing_is_lost() {
        let (ledger, mut stored) = consistent();
        stored.comments.clear();
        let f = check(&ledger, &stored, 1);
        assert_eq!(f.lost, 1);
        assert!(!f.clean());
    }

    #[test]
    fn a_comment_stored_twice_or_unsent_is_duplicated() {
        let (ledger, mut stored) = consistent();
        stored.comments.push(("k-1".into(), "other".into(), 1));
        stored
            .comments
            .push(("k-never-sent".into(), "third".into(), 1));
        assert_eq!(check(&ledger, &stored, 1).duplicated, 2);
    }

    #[test]
    fn an_acknowledgement_the_log_never_had_is_a_mismatch() {
        let (mut ledger, stored) = consistent();
        ledger.submissions.get_mut("k-1").unwrap().acks[0].status = 3;
        assert_eq!(check(&ledger, &stored, 1).verdict_mismatch, 1);
    }

    #[test]
    fn a_decision_the_item_does_not_show_is_not_applied() {
        let (ledger, mut stored) = consistent();
        stored.reviews[0].decided_by = Some("m-2".into());
        assert_eq!(check(&ledger, &stored, 1).decisions_not_applied, 1);
    }

    #[test]
    fn two_decided_items_or_two_events_at_one_version_are_decided_twice() {
        let (ledger, mut stored) = consistent();
        stored.reviews.push(ReviewRow {
            review_id: "second".into(),
            comment_id: norm(C1),
            state: "decided".into(),
            decision: Some("reject".into()),
            decided_by: Some("m-2".into()),
        });
        stored.events.push((3, norm(C1), 3, 2));
        let f = check(&ledger, &stored, 1);
        assert_eq!(f.decided_twice, 2);
    }

    #[test]
    fn a_held_comment_without_an_open_item_is_a_lost_item() {
        let (ledger, mut stored) = consistent();
        stored.comments[0].2 = 2;
        assert_eq!(check(&ledger, &stored, 1).review_items_lost, 1);
    }

    #[test]
    fn overlapping_leases_and_claims_after_a_decision_are_violations() {
        let (mut ledger, stored) = consistent();
        // Granted at 8,000 (12,000 − 4 s) while m-1's lease ran to 10,000,
        // and after the decision acknowledged at 7,000.
        ledger.claims.push(Claim {
            review_id: R1.into(),
            moderator: "m-2".into(),
            lease_seconds: 4,
            lease_expire_ms: 12_000,
        });
        assert_eq!(check(&ledger, &stored, 1).lease_violations, 2);
        // Granted once m-1's lease had ended, before any decision: fine.
        let (mut ledger, stored) = consistent();
        ledger.decisions.clear();
        ledger.claims.push(Claim {
            review_id: R1.into(),
            moderator: "m-2".into(),
            lease_seconds: 4,
            lease_expire_ms: 14_000,
        });
        assert_eq!(check(&ledger, &stored, 1).lease_violations, 0);
    }

    #[test]
    fn the_stream_must_show_each_event_once_in_order_as_logged() {
        let (mut ledger, stored) = consistent();
        ledger.events.remove(0);
        let f = check(&ledger, &stored, 1);
        assert_eq!((f.stream_gaps, f.clean()), (1, false));

        let (mut ledger, stored) = consistent();
        let again = ledger.events[1].clone();
        ledger.events.push(again);
        assert_eq!(check(&ledger, &stored, 1).stream_duplicates, 1);

        let (mut ledger, stored) = consistent();
        ledger.events.swap(0, 1);
        assert_eq!(check(&ledger, &stored, 1).stream_out_of_order, 1);

        let (mut ledger, stored) = consistent();
        ledger.events[1].status = 3;
        assert_eq!(check(&ledger, &stored, 1).stream_mismatch, 1);
    }

    #[test]
    fn a_damaged_sqlite_file_fails_the_run() {
        let (ledger, mut stored) = consistent();
        stored.integrity = Some("*** in database main ***".into());
        assert!(!check(&ledger, &stored, 1).clean());
    }
}
