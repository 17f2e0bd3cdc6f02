//! The spam score: a text classifier, behaviour signals and author history,
//! summed in log-odds and turned into one probability.
//!
//! Pure like the rest of the pipeline: the tenant's model, the author's
//! history (fetched by the caller in one round trip) and the clock are
//! arguments. Every contribution is reported as a `Reason` whose `score` is
//! what it changed in the final probability, so a moderator can see that
//! "a link through a URL shortener" added 0.21 and "the author's record"
//! took 0.15 off.

pub mod features;
pub mod history;
pub mod model;
mod seed;

use chrono::{DateTime, Utc};

pub use features::{Features, Fingerprint, Signal};
pub use history::{AuthorHistory, RecentComment};
pub use model::{Model, Scored, Update, sigmoid};
pub use seed::{SEED_CSV, parse_label, seed_model};

use super::Findings;
use crate::domain::Reason;

/// Words reported as explanation: at most this many…
const EXPLAINED_WORDS: usize = 3;
/// …each pushing the log-odds up by at least this much.
const EXPLAINED_WORD_LOGIT: f64 = 0.3;

/// What the spam stage reads besides the comment's features.
#[derive(Clone, Copy)]
pub struct SpamInput<'a> {
    pub features: &'a Features,
    pub model: &'a Model,
    pub history: &'a AuthorHistory,
    pub now: DateTime<Utc>,
}

/// Scores the comment and reports every contribution.
pub fn inspect(input: SpamInput<'_>, findings: &mut Findings) {
    let scored = input.model.score(input.features);
    let history = input.history.signals(input.features.fingerprint, input.now);
    let history_logit: f64 = history.iter().map(|h| h.logit).sum();
    let logit = scored.logit + history_logit;
    let probability = sigmoid(logit);
    // What removing one contribution would change in the probability.
    let marginal = |contribution: f64| probability - sigmoid(logit - contribution);

    let signals_logit: f64 = scored.signals.iter().map(|s| s.1).sum::<f64>() + 0.0;
    findings.note(Reason {
        score: Some(probability),
        ..Reason::new(
            "spam.classifier",
            format!(
                "spam probability {probability:.2}: words {:+.2}, signals {signals_logit:+.2}, \
                 author history {history_logit:+.2} (log-odds, with bias {:+.2})",
                // `+ 0.0` turns −0.0 into 0.0 for display.
                scored.logit - signals_logit - input.model.bias() + 0.0,
                input.model.bias()
            ),
        )
    });

    let mut words: Vec<(usize, f64)> = scored
        .words
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, c)| *c >= EXPLAINED_WORD_LOGIT)
        .collect();
    words.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (index, contribution) in words.into_iter().take(EXPLAINED_WORDS) {
        findings.note(Reason {
            span: Some(input.features.words[index]),
            score: Some(marginal(contribution)),
            ..Reason::new(
                "spam.word",
                format!("this word points to spam ({contribution:+.2} log-odds)"),
            )
        });
    }
    for (signal, contribution) in &scored.signals {
        let span = input
            .features
            .signals
            .iter()
            .find(|(s, _)| s == signal)
            .and_then(|(_, span)| *span);
        findings.note(Reason {
            span,
            score: Some(marginal(*contribution)),
            ..Reason::new(
                signal.code(),
                format!("{} ({contribution:+.2} log-odds)", signal.describe()),
            )
        });
    }
    for h in history {
        findings.note(Reason {
            score: Some(marginal(h.logit)),
            ..Reason::new(h.code, format!("{} ({:+.2} log-odds)", h.message, h.logit))
        });
    }
    findings.add_score(probability);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contribution_is_explained_and_the_probability_is_the_score() {
        let text = "Subscribe to my channel!!!! https://bit.ly/abc";
        let features = Features::extract(text);
        let history = AuthorHistory {
            known: true,
            ..AuthorHistory::default()
        };
        let mut findings = Findings::default();
        inspect(
            SpamInput {
                features: &features,
                model: seed_model(),
                history: &history,
                now: Utc::now(),
            },
            &mut findings,
        );
        let codes: Vec<&str> = findings.reasons.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(codes[0], "spam.classifier");
        for expected in [
            "spam.word",
            "spam.link",
            "spam.shortener",
            "spam.repeated_characters",
            "spam.first_comment",
        ] {
            assert!(codes.contains(&expected), "{expected} in {codes:?}");
        }
        assert_eq!(findings.reasons[0].score, Some(findings.spam_score));
        assert!(findings.spam_score > 0.9, "{}", findings.spam_score);
        let link = findings
            .reasons
            .iter()
            .find(|r| r.code == "spam.link")
            .unwrap();
        let span = link.span.unwrap();
        assert_eq!(
            &text[span.start as usize..span.end as usize],
            "https://bit.ly/abc"
        );
        let word = findings
            .reasons
            .iter()
            .find(|r| r.code == "spam.word")
            .unwrap();
        assert!(word.score.unwrap() > 0.0);
    }
}
