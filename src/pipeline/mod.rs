//! The filter pipeline: comment and tenant policy in, verdict out.
//!
//! **Invariant:** this module does no I/O and reads no clock. Everything a
//! decision depends on is an argument, so a verdict can be reproduced, unit-tested
//! and benchmarked without a database or a runtime. Filters only *report*
//! findings; [`verdict::decide`] alone turns findings and policy into a status, so
//! the order of precedence lives in one place.

pub mod normalize;
pub mod rules;
pub mod spam;
pub mod toxicity;
mod verdict;

pub use rules::CompiledRules;
pub use verdict::{Verdict, decide, mask};

use crate::domain::{AuthorStanding, NewComment, Reason, Span, StandingTerm, TenantSettings};

/// `fr` or `en` when the text is clearly one of them, from the share of
/// each language's most frequent short words ("les", "est", "pas" / "the",
/// "is", "not"). A trigram detector (the `whatlang` crate) was tried first
/// and doubled the pipeline's cost per comment (38 → 81 µs, BENCHMARKS.md);
/// this costs about a microsecond and only has to tell two languages apart.
/// Short, mixed or other-language texts give `None`.
pub fn detect_language(text: &str) -> Option<&'static str> {
    let (mut fr, mut en) = (0u32, 0u32);
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && w.len() <= 5)
    {
        let mut buf = [0u8; 5];
        let Some(word) = ascii_lower(word, &mut buf) else {
            continue;
        };
        match word {
            "le" | "la" | "les" | "des" | "du" | "un" | "une" | "et" | "est" | "sont" | "que"
            | "qui" | "pas" | "ne" | "je" | "tu" | "il" | "elle" | "nous" | "vous" | "ils"
            | "ce" | "cette" | "pour" | "dans" | "avec" | "sur" | "mais" | "au" | "aux" | "qu"
            | "plus" | "c" | "j" | "l" | "d" | "n" | "leur" | "mon" | "ma" | "mes" => fr += 1,
            "the" | "and" | "is" | "are" | "was" | "were" | "of" | "to" | "in" | "that" | "it"
            | "you" | "he" | "she" | "we" | "they" | "this" | "for" | "with" | "but" | "not"
            | "be" | "have" | "has" | "do" | "at" | "by" | "from" | "what" | "my" | "your"
            | "i" | "an" | "so" | "will" | "its" | "our" => en += 1,
            _ => {}
        }
    }
    if fr >= 2 && fr >= 2 * en {
        Some("fr")
    } else if en >= 2 && en >= 2 * fr {
        Some("en")
    } else {
        None
    }
}

/// `word` lower-cased into `buf` when it is ASCII and fits.
fn ascii_lower<'a>(word: &str, buf: &'a mut [u8; 5]) -> Option<&'a str> {
    if !word.is_ascii() || word.len() > buf.len() {
        return None;
    }
    let out = &mut buf[..word.len()];
    out.copy_from_slice(word.as_bytes());
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

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
    /// Toxicity score per category, each in [0, 1].
    pub toxicity: toxicity::Scores,
    /// Every finding, in the order filters reported them.
    pub reasons: Vec<Reason>,
    /// Spans of the original body to publish as `***`.
    pub masks: Vec<Span>,
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

    /// Records the toxicity scores and explains each category that scored:
    /// at or above its reject threshold the comment is rejected, at or above
    /// its review threshold held (a threshold of 1 never applies).
    pub fn record_toxicity(&mut self, scores: toxicity::Scores, thresholds: &toxicity::Thresholds) {
        self.toxicity = scores;
        for category in toxicity::Category::ALL {
            let score = scores.get(category);
            let (review, reject) = thresholds.get(category);
            let reason = |message: String| Reason {
                score: Some(score),
                ..Reason::new(category.code(), message)
            };
            if toxicity::Thresholds::reaches(score, reject) {
                self.require(
                    Action::Reject,
                    reason(format!(
                        "{} score {score:.2} is at or above the reject threshold {reject:.2}",
                        category.name()
                    )),
                );
            } else if toxicity::Thresholds::reaches(score, review) {
                self.require(
                    Action::Review,
                    reason(format!(
                        "{} score {score:.2} is at or above the review threshold {review:.2}",
                        category.name()
                    )),
                );
            }
        }
    }

    /// Adds independent evidence of spam: scores combine as a noisy OR,
    /// `1 − (1 − s)(1 − w)`, so the result stays in [0, 1] and grows with every
    /// contribution.
    pub fn add_score(&mut self, weight: f64) {
        let weight = if weight.is_nan() {
            0.0
        } else {
            weight.clamp(0.0, 1.0)
        };
        self.spam_score = 1.0 - (1.0 - self.spam_score) * (1.0 - weight);
    }
}

/// One stage of the pipeline. Implementations are pure and cheap to share
/// between threads; compiled state (automata, models) is built before they get
/// here.
pub trait Filter: Send + Sync {
    fn inspect(&self, comment: &NewComment, settings: &TenantSettings, findings: &mut Findings);
}

/// The filters every comment passes through after its tenant's rules.
#[derive(Default)]
pub struct Pipeline {
    filters: Vec<Box<dyn Filter>>,
}

impl Pipeline {
    pub fn new(filters: Vec<Box<dyn Filter>>) -> Self {
        Pipeline { filters }
    }

    /// The author's standing, the tenant's rules, then the spam score (not
    /// for trusted, suspended or banned authors), the toxicity stage (with
    /// the tenant's toxicity model), then the shared filters, then
    /// [`decide`]. The standing is taken at `spam.now`.
    pub fn evaluate(
        &self,
        comment: &NewComment,
        settings: &TenantSettings,
        rules: &CompiledRules,
        spam: spam::SpamInput<'_>,
        toxicity_model: &spam::Model,
        author: StandingTerm,
    ) -> Verdict {
        self.evaluate_with(comment, settings, rules, spam, toxicity_model, author, None)
    }

    /// [`Pipeline::evaluate`] with a hosted classifier's opinion (or the
    /// news that there is none), fetched before: the pipeline does no I/O.
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate_with(
        &self,
        comment: &NewComment,
        settings: &TenantSettings,
        rules: &CompiledRules,
        spam: spam::SpamInput<'_>,
        toxicity_model: &spam::Model,
        author: StandingTerm,
        external: Option<&crate::domain::ExternalOpinion>,
    ) -> Verdict {
        let mut findings = Findings::default();
        let standing = author.at(spam.now);
        match standing {
            AuthorStanding::Banned => findings.require(
                Action::Reject,
                Reason::new("author.banned", "the author is banned from commenting"),
            ),
            AuthorStanding::Suspended => findings.require(
                Action::Reject,
                Reason::new(
                    "author.suspended",
                    match author.until {
                        Some(until) => format!(
                            "the author is suspended until {}",
                            until.format("%Y-%m-%d %H:%M UTC")
                        ),
                        None => "the author is suspended".to_owned(),
                    },
                ),
            ),
            AuthorStanding::Premoderated => findings.require(
                Action::Review,
                Reason::new(
                    "author.premoderated",
                    "every comment by this author is reviewed before it is published",
                ),
            ),
            AuthorStanding::Trusted => findings.note(Reason::new(
                "author.trusted",
                "the author is trusted: no spam score; the rules still apply",
            )),
            AuthorStanding::Normal => {}
        }
        // One folding of the body for the rules, the spam features and the
        // toxicity lexicons: `spam.features` are the body's.
        rules.inspect_folded(
            comment.body.as_str(),
            spam.features.normalized(),
            &spam.features.stats,
            &mut findings,
        );
        if standing == AuthorStanding::Normal || standing == AuthorStanding::Premoderated {
            spam::inspect(spam, &mut findings);
        }
        // Toxicity for every author: trust exempts from the spam score, not
        // from the rules against abuse.
        toxicity::inspect(
            comment.body.as_str(),
            spam.features,
            toxicity_model,
            &settings.toxicity,
            external,
            &mut findings,
        );
        for filter in &self.filters {
            filter.inspect(comment, settings, &mut findings);
        }
        let masks = std::mem::take(&mut findings.masks);
        let mut verdict = decide(findings, settings);
        verdict.masked_body = mask(comment.body.as_str(), &masks);
        if comment.language.is_none() {
            verdict.detected_language = detect_language(comment.body.as_str());
        }
        verdict
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
            findings.add_score(self.0);
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

    /// Runs the pipeline with a spam model that is sure nothing is spam, so
    /// only the test filters move the score.
    fn run(p: &Pipeline, settings: &TenantSettings, rules: &CompiledRules) -> Verdict {
        run_as(p, settings, rules, -60.0, StandingTerm::default())
    }

    /// As `run`, with the model's bias and the author's standing given.
    fn run_as(
        p: &Pipeline,
        settings: &TenantSettings,
        rules: &CompiledRules,
        bias: f64,
        author: StandingTerm,
    ) -> Verdict {
        let mut model = spam::Model::default();
        model.set_bias(bias);
        let comment = comment();
        let features = spam::Features::extract(comment.body.as_str());
        let history = spam::AuthorHistory::unknown();
        p.evaluate(
            &comment,
            settings,
            rules,
            spam::SpamInput {
                features: &features,
                model: &model,
                history: &history,
                now: chrono::Utc::now(),
            },
            toxicity::model::seed_model(),
            author,
        )
    }

    fn term(standing: AuthorStanding, hours: Option<i64>) -> StandingTerm {
        StandingTerm {
            standing,
            until: hours.map(|h| chrono::Utc::now() + chrono::Duration::hours(h)),
        }
    }

    #[test]
    fn banned_and_suspended_authors_are_rejected_with_the_reason() {
        let (p, none) = (Pipeline::default(), CompiledRules::empty());
        for (standing, code) in [
            (AuthorStanding::Banned, "author.banned"),
            (AuthorStanding::Suspended, "author.suspended"),
        ] {
            let verdict = run_as(&p, &settings(), &none, -60.0, term(standing, Some(24)));
            assert_eq!(verdict.status, CommentStatus::Rejected);
            assert_eq!(verdict.reasons[0].code, code);
        }
        let suspended = run_as(
            &p,
            &settings(),
            &none,
            -60.0,
            term(AuthorStanding::Suspended, Some(24)),
        );
        assert!(
            suspended.reasons[0].message.contains("until"),
            "{suspended:?}"
        );
    }

    #[test]
    fn a_suspension_that_ended_is_normal_again() {
        let (p, none) = (Pipeline::default(), CompiledRules::empty());
        let verdict = run_as(
            &p,
            &settings(),
            &none,
            -60.0,
            term(AuthorStanding::Suspended, Some(-1)),
        );
        assert_eq!(verdict.status, CommentStatus::Approved);
        assert!(
            verdict
                .reasons
                .iter()
                .all(|r| !r.code.starts_with("author."))
        );
    }

    #[test]
    fn premoderated_authors_are_held_unless_something_rejects() {
        let none = CompiledRules::empty();
        let held = run_as(
            &Pipeline::default(),
            &settings(),
            &none,
            -60.0,
            term(AuthorStanding::Premoderated, None),
        );
        assert_eq!(held.status, CommentStatus::PendingReview);
        assert!(held.reasons.iter().any(|r| r.code == "author.premoderated"));
        let rejected = run_as(
            &Pipeline::new(vec![Box::new(Asks(Action::Reject))]),
            &settings(),
            &none,
            -60.0,
            term(AuthorStanding::Premoderated, None),
        );
        assert_eq!(rejected.status, CommentStatus::Rejected);
    }

    #[test]
    fn trusted_authors_skip_the_spam_score_but_not_the_rules() {
        let none = CompiledRules::empty();
        let (p, certain_spam) = (Pipeline::default(), 60.0);
        let normal = run_as(
            &p,
            &settings(),
            &none,
            certain_spam,
            StandingTerm::default(),
        );
        assert_eq!(normal.status, CommentStatus::Rejected);
        let trusted = run_as(
            &p,
            &settings(),
            &none,
            certain_spam,
            term(AuthorStanding::Trusted, None),
        );
        assert_eq!(trusted.status, CommentStatus::Approved);
        assert_eq!(trusted.spam_score, 0.0);
        assert!(trusted.reasons.iter().any(|r| r.code == "author.trusted"));
        let rejected = run_as(
            &Pipeline::new(vec![Box::new(Asks(Action::Reject))]),
            &settings(),
            &none,
            -60.0,
            term(AuthorStanding::Trusted, None),
        );
        assert_eq!(rejected.status, CommentStatus::Rejected);
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
            run(&a, &settings(), &CompiledRules::empty()).status,
            CommentStatus::Rejected
        );
        assert_eq!(
            run(&b, &settings(), &CompiledRules::empty()).status,
            CommentStatus::Rejected
        );
    }

    #[test]
    fn scores_combine_and_stay_in_range() {
        let none = CompiledRules::empty();
        let p = Pipeline::new(vec![Box::new(FixedScore(7.0))]);
        assert_eq!(run(&p, &settings(), &none).spam_score, 1.0);
        let p = Pipeline::new(vec![Box::new(FixedScore(f64::NAN))]);
        assert!(run(&p, &settings(), &none).spam_score < 1e-9);
        let p = Pipeline::new(vec![Box::new(FixedScore(0.3)), Box::new(FixedScore(0.3))]);
        let score = run(&p, &settings(), &none).spam_score;
        assert!((score - 0.51).abs() < 1e-9, "{score}");
    }

    #[test]
    fn french_and_english_are_detected_when_clear() {
        assert_eq!(
            detect_language(
                "Le gouvernement doit expliquer pourquoi le prix du carburant augmente encore."
            ),
            Some("fr")
        );
        assert_eq!(
            detect_language("The government has to explain why fuel prices keep rising."),
            Some("en")
        );
        assert_eq!(detect_language("ok"), None, "too short to tell");
    }

    #[test]
    fn an_empty_pipeline_follows_the_moderation_mode() {
        let p = Pipeline::default();
        assert_eq!(
            run(&p, &settings(), &CompiledRules::empty()).status,
            CommentStatus::Approved
        );
        let pre = TenantSettings {
            moderation_mode: ModerationMode::Pre,
            ..settings()
        };
        assert_eq!(
            run(&p, &pre, &CompiledRules::empty()).status,
            CommentStatus::PendingReview
        );
    }
}
