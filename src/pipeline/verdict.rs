use super::{Action, Findings};
use crate::domain::{CommentStatus, ModerationMode, Reason, TenantSettings};

/// The pipeline's decision for one comment.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub status: CommentStatus,
    pub spam_score: f64,
    /// The highest toxicity category's score, in [0, 1].
    pub toxicity_score: f64,
    /// Never empty: every decision is explained.
    pub reasons: Vec<Reason>,
    /// Queue priority when held for review: higher is reviewed first.
    pub review_priority: i32,
    /// The body to publish when a mask rule matched.
    pub masked_body: Option<String>,
    /// French or English, detected when the comment came without a
    /// language and the text says so clearly.
    pub detected_language: Option<&'static str>,
}

/// Precedence, strongest first: a filter's `Reject`; a score at or above
/// `reject_threshold`; a filter's `Review`; a score at or above
/// `review_threshold`; pre-moderation; otherwise approved.
pub fn decide(mut findings: Findings, settings: &TenantSettings) -> Verdict {
    let score = findings.spam_score;
    let status = if findings.action == Some(Action::Reject) {
        CommentStatus::Rejected
    } else if score >= settings.reject_threshold {
        findings.reasons.push(Reason::new(
            "spam.score",
            format!(
                "spam score {score:.2} is at or above the reject threshold {:.2}",
                settings.reject_threshold
            ),
        ));
        CommentStatus::Rejected
    } else if findings.action == Some(Action::Review) {
        CommentStatus::PendingReview
    } else if score >= settings.review_threshold {
        findings.reasons.push(Reason::new(
            "spam.score",
            format!(
                "spam score {score:.2} is at or above the review threshold {:.2}",
                settings.review_threshold
            ),
        ));
        CommentStatus::PendingReview
    } else if settings.moderation_mode == ModerationMode::Pre {
        CommentStatus::PendingReview
    } else {
        CommentStatus::Approved
    };

    if status == CommentStatus::PendingReview && settings.moderation_mode == ModerationMode::Pre {
        findings.reasons.push(Reason::new(
            "tenant.premoderation",
            "the publisher reviews every comment before it is published",
        ));
    }
    if findings.reasons.is_empty() {
        findings.reasons.push(Reason::new(
            "pipeline.clean",
            "no filter objected; published under post-moderation",
        ));
    }

    Verdict {
        status,
        spam_score: score,
        toxicity_score: findings.toxicity.highest().1,
        review_priority: review_priority(&findings, score.max(findings.toxicity.highest().1)),
        reasons: findings.reasons,
        masked_body: None,
        detected_language: None,
    }
}

/// `body` with every span replaced by `***` (overlapping spans merged), or
/// `None` when there is nothing to mask.
pub fn mask(body: &str, spans: &[crate::domain::Span]) -> Option<String> {
    if spans.is_empty() {
        return None;
    }
    let mut spans: Vec<(usize, usize)> = spans
        .iter()
        .map(|s| (s.start as usize, s.end as usize))
        .collect();
    spans.sort_unstable();
    let mut out = String::with_capacity(body.len());
    let mut at = 0;
    for (start, end) in spans {
        if end <= at {
            continue;
        }
        let start = start.max(at);
        out.push_str(&body[at..start]);
        out.push_str("***");
        at = end;
    }
    out.push_str(&body[at..]);
    Some(out)
}

/// Comments a filter flagged come before plain pre-moderation; within each band
/// the spammier first, so the likeliest problems are looked at soonest.
fn review_priority(findings: &Findings, score: f64) -> i32 {
    let band = if findings.action.is_some() { 100 } else { 0 };
    band + (score * 100.0).round() as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TenantName;

    fn settings(mode: ModerationMode) -> TenantSettings {
        TenantSettings {
            moderation_mode: mode,
            ..TenantSettings::defaults(&TenantName::parse("t").unwrap())
        }
    }

    fn scored(score: f64) -> Findings {
        let mut f = Findings::default();
        f.add_score(score);
        f
    }

    #[test]
    fn thresholds_map_the_score_to_three_outcomes() {
        let s = settings(ModerationMode::Post);
        assert_eq!(decide(scored(0.49), &s).status, CommentStatus::Approved);
        assert_eq!(decide(scored(0.5), &s).status, CommentStatus::PendingReview);
        assert_eq!(
            decide(scored(0.89), &s).status,
            CommentStatus::PendingReview
        );
        assert_eq!(decide(scored(0.9), &s).status, CommentStatus::Rejected);
        let held = decide(scored(0.7), &s);
        assert_eq!(held.reasons[0].code, "spam.score");
    }

    #[test]
    fn masks_merge_overlapping_spans() {
        use crate::domain::Span;
        let body = "tu es un gros connard de raciste";
        let spans = [
            Span { start: 14, end: 21 },
            Span { start: 9, end: 13 },
            Span { start: 17, end: 21 },
        ];
        assert_eq!(mask(body, &spans).unwrap(), "tu es un *** *** de raciste");
        assert_eq!(mask(body, &[]), None);
    }

    #[test]
    fn every_decision_has_a_reason() {
        let approved = decide(Findings::default(), &settings(ModerationMode::Post));
        assert_eq!(approved.status, CommentStatus::Approved);
        assert_eq!(approved.reasons[0].code, "pipeline.clean");

        let held = decide(Findings::default(), &settings(ModerationMode::Pre));
        assert_eq!(held.status, CommentStatus::PendingReview);
        assert_eq!(held.reasons[0].code, "tenant.premoderation");
    }

    #[test]
    fn premoderation_does_not_soften_a_rejection() {
        let mut f = Findings::default();
        f.require(Action::Reject, Reason::new("rule.words", "slur"));
        let v = decide(f, &settings(ModerationMode::Pre));
        assert_eq!(v.status, CommentStatus::Rejected);
        assert!(v.reasons.iter().all(|r| r.code != "tenant.premoderation"));
    }

    #[test]
    fn flagged_comments_outrank_plain_premoderation() {
        let mut flagged = Findings::default();
        flagged.require(Action::Review, Reason::new("rule.words", "suspect"));
        let flagged = decide(flagged, &settings(ModerationMode::Pre));
        let plain = decide(scored(0.3), &settings(ModerationMode::Pre));
        assert!(flagged.review_priority > plain.review_priority);
    }
}
