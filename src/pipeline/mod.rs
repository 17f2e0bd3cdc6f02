//! The filter pipeline: comment and tenant policy in, verdict out.
//!
//! **Invariant:** this module does no I/O and reads no clock. Everything a
//! decision depends on is an argument, so a verdict can be reproduced, unit-tested
//! and benchmarked without a database or a runtime. Filters only *report*
//! findings; [`verdict::decide`] alone turns findings and policy into a status, so
//! the order of precedence lives in one place.

mod verdict;

pub use verdict::{Verdict, decide};

use crate::domain::{NewComment, Reason, TenantSettings};

/// What a filter can ask for. Stronger actions win: `Reject` > `Review` > none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Review,
    Reject,
}

/// What the filters found in one comment.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Findings {
    /// The strongest action any filter asked for.
    pub action: Option<Action>,
    /// Spam score in [0, 1].
    pub spam_score: f64,
    /// Every finding, in the order filters reported them.
    pub reasons: Vec<Reason>,
}

impl Findings {
    /// Records a finding that asks for `action`.
    pub fn require(&mut self, action: Action, reason: Reason) {
        self.action = self.action.max(Some(action));
        self.reasons.push(reason);
    }

    /// Records a finding that only explains (a tag or a score contribution).
    pub fn note(&mut self, reason: Reason) {
        self.reasons.push(reason);
    }

    /// Raises the spam score to at least `score`, clamped to [0, 1].
    pub fn raise_score(&mut self, score: f64) {
        let score = if score.is_nan() {
            0.0
        } else {
            score.clamp(0.0, 1.0)
        };
        self.spam_score = self.spam_score.max(score);
    }
}

/// One stage of the pipeline. Implementations are pure and cheap to share
/// between threads; compiled state (automata, models) is built before they get
/// here.
pub trait Filter: Send + Sync {
    fn inspect(&self, comment: &NewComment, settings: &TenantSettings, findings: &mut Findings);
}

/// The filters a tenant's comments pass through, in order.
#[derive(Default)]
pub struct Pipeline {
    filters: Vec<Box<dyn Filter>>,
}

impl Pipeline {
    pub fn new(filters: Vec<Box<dyn Filter>>) -> Self {
        Pipeline { filters }
    }

    pub fn evaluate(&self, comment: &NewComment, settings: &TenantSettings) -> Verdict {
        let mut findings = Findings::default();
        for filter in &self.filters {
            filter.inspect(comment, settings, &mut findings);
        }
        decide(findings, settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        ArticleId, AuthorId, CommentBody, CommentStatus, DisplayName, ModerationMode, TenantName,
    };

    struct FixedScore(f64);
    impl Filter for FixedScore {
        fn inspect(&self, _: &NewComment, _: &TenantSettings, findings: &mut Findings) {
            findings.raise_score(self.0);
        }
    }

    struct Asks(Action);
    impl Filter for Asks {
        fn inspect(&self, _: &NewComment, _: &TenantSettings, findings: &mut Findings) {
            findings.require(self.0, Reason::new("test.asks", "asked"));
        }
    }

    fn comment() -> NewComment {
        NewComment {
            article_id: ArticleId::parse("a", "art-1".into()).unwrap(),
            author_id: AuthorId::parse("a", "reader-1".into()).unwrap(),
            body: CommentBody::parse("b", "Bonne analyse.".into()).unwrap(),
            client_comment_id: None,
            author_display_name: DisplayName::parse("d", String::new()).unwrap(),
            author_ip: None,
            parent_comment_id: None,
            language: None,
        }
    }

    fn settings() -> TenantSettings {
        TenantSettings::defaults(&TenantName::parse("t").unwrap())
    }

    #[test]
    fn the_strongest_action_wins_whatever_the_order() {
        let a = Pipeline::new(vec![
            Box::new(Asks(Action::Reject)),
            Box::new(Asks(Action::Review)),
        ]);
        let b = Pipeline::new(vec![
            Box::new(Asks(Action::Review)),
            Box::new(Asks(Action::Reject)),
        ]);
        assert_eq!(
            a.evaluate(&comment(), &settings()).status,
            CommentStatus::Rejected
        );
        assert_eq!(
            b.evaluate(&comment(), &settings()).status,
            CommentStatus::Rejected
        );
    }

    #[test]
    fn scores_are_clamped() {
        let p = Pipeline::new(vec![Box::new(FixedScore(7.0))]);
        assert_eq!(p.evaluate(&comment(), &settings()).spam_score, 1.0);
        let p = Pipeline::new(vec![Box::new(FixedScore(f64::NAN))]);
        assert_eq!(p.evaluate(&comment(), &settings()).spam_score, 0.0);
    }

    #[test]
    fn an_empty_pipeline_follows_the_moderation_mode() {
        let p = Pipeline::default();
        assert_eq!(
            p.evaluate(&comment(), &settings()).status,
            CommentStatus::Approved
        );
        let pre = TenantSettings {
            moderation_mode: ModerationMode::Pre,
            ..settings()
        };
        assert_eq!(
            p.evaluate(&comment(), &pre).status,
            CommentStatus::PendingReview
        );
    }
}
