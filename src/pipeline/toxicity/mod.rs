//! Toxicity: hate caught by its structure, insults, obscenity, sexual
//! harassment and threats scored per category.
//!
//! Two kinds of evidence. The team's lexicons (`lexicon.rs`, data in
//! `rules/toxicity/`) and the hateful constructions built on them
//! (`hate.rs`) give findings that can be named and pointed at: "a
//! dehumanising comparison of Muslims", with the span of the group and of the
//! attacking words. Each finding sets a floor under its category's score.
//! A trained classifier over the same features as the spam score
//! (`classifier.rs`, one head per category, learned per tenant from
//! moderators) scores what no list names. A category's score is the larger
//! of the two; the comment's toxicity score is its highest category.
//!
//! Pure, like the rest of the pipeline: the lexicons are compiled once per
//! process; models and thresholds are arguments.

pub mod hate;
pub mod lexicon;

use hate::{Hate, HateKind};
use lexicon::{Abuse, AbuseCategory, Class, LEXICON, Strength, Tagged};

use super::{Action, Findings};
use crate::domain::{Reason, Span};
pub use crate::domain::{
    ToxicityCategory as Category, ToxicityScores as Scores, ToxicityThresholds as Thresholds,
};

/// How sure a lexicon finding makes its category.
fn hate_confidence(kind: HateKind) -> (Category, f64) {
    match kind {
        HateKind::Threat => (Category::Threat, 0.95),
        HateKind::Dehumanisation => (Category::IdentityAttack, 0.95),
        HateKind::NegatedPositive => (Category::IdentityAttack, 0.9),
        HateKind::Slur => (Category::IdentityAttack, 0.9),
        HateKind::Derogation | HateKind::Contempt | HateKind::Exclusion => {
            (Category::IdentityAttack, 0.85)
        }
    }
}

/// What the toxicity stage found: per-category scores and the reasons.
pub struct Assessment {
    pub scores: Scores,
    pub hate: Vec<Hate>,
    /// Abusive words aimed at someone: category, confidence, span.
    pub abuse: Vec<(Category, f64, Span)>,
}

/// Words that aim what follows at the reader addressed (`t'es`, `espèce de`).
fn addressed(t: &Tagged, at: usize) -> bool {
    (at.saturating_sub(3)..at).any(|i| {
        matches!(
            t.word(i),
            "tu" | "t"
                | "toi"
                | "te"
                | "vous"
                | "espece"
                | "sale"
                | "sales"
                | "gros"
                | "grosse"
                | "you"
                | "your"
                | "youre"
                | "ur"
                | "u"
                | "re"
                | "ta"
                | "ton"
                | "quel"
                | "quelle"
        )
    })
}

/// Scores a comment with the lexicons alone.
pub fn assess(body: &str) -> Assessment {
    let t = LEXICON.tag(body);
    let hate = hate::find(&t);
    let mut scores = Scores::default();
    for h in hate.iter().filter(|h| !h.counter_speech) {
        let (category, confidence) = hate_confidence(h.kind);
        scores.raise(category, confidence);
    }
    let mut abuse = Vec::new();
    for tag in &t.tags {
        let Class::Abuse(Abuse { category, strength }) = tag.class else {
            continue;
        };
        let aimed = addressed(&t, tag.first);
        let (category, confidence) = match (category, strength) {
            (AbuseCategory::Insult, Strength::Strong) => (Category::Insult, 0.9),
            (AbuseCategory::Insult, Strength::Mild) if aimed => (Category::Insult, 0.75),
            (AbuseCategory::Insult, Strength::Mild) => (Category::Insult, 0.45),
            (AbuseCategory::Insult, Strength::Weak) if aimed => (Category::Insult, 0.6),
            (AbuseCategory::Obscene, Strength::Strong) => (Category::Obscene, 0.8),
            (AbuseCategory::Obscene, Strength::Mild) => (Category::Obscene, 0.3),
            (AbuseCategory::Sexual, Strength::Strong) => (Category::SexualHarassment, 0.85),
            (AbuseCategory::Sexual, Strength::Mild) if aimed => (Category::SexualHarassment, 0.7),
            (AbuseCategory::Sexual, Strength::Mild) => (Category::SexualHarassment, 0.45),
            (AbuseCategory::Sexual, Strength::Weak) if aimed => (Category::SexualHarassment, 0.55),
            (AbuseCategory::Threat | AbuseCategory::SelfHarm, Strength::Strong) => {
                (Category::Threat, 0.95)
            }
            (AbuseCategory::Threat, Strength::Mild) if aimed => (Category::Threat, 0.8),
            _ => continue,
        };
        scores.raise(category, confidence);
        abuse.push((category, confidence, t.span(tag.first, tag.last)));
    }
    Assessment {
        scores,
        hate,
        abuse,
    }
}

/// Runs the toxicity stage and records its findings: every hateful
/// construction holds the comment for review; each category's score is
/// compared with the tenant's thresholds.
pub fn inspect(body: &str, thresholds: &Thresholds, findings: &mut Findings) {
    let assessment = assess(body);
    let groups = &LEXICON.groups;
    for h in &assessment.hate {
        let group = &groups[h.group as usize];
        let (category, confidence) = hate_confidence(h.kind);
        let mut reason = Reason {
            span: Some(h.attack),
            score: Some(confidence),
            ..Reason::new(
                h.kind.code(),
                format!(
                    "{} {} ({}){}",
                    h.kind.describe(),
                    group.name_en,
                    category.name(),
                    if h.variant {
                        ", spelt to avoid filters"
                    } else {
                        ""
                    }
                ),
            )
        };
        reason.target = Some(h.target);
        if h.counter_speech {
            reason.code = "hate.counter_speech".into();
            reason.message = format!(
                "quotes or denounces {} {}: not held for it",
                h.kind.describe(),
                group.name_en
            );
            reason.score = None;
            findings.note(reason);
        } else {
            findings.require(Action::Review, reason);
        }
    }
    for &(category, confidence, span) in &assessment.abuse {
        findings.note(Reason {
            span: Some(span),
            score: Some(confidence),
            ..Reason::new(
                format!("{}.word", category.code()),
                format!("{} word", category.name().replace('_', " ")),
            )
        });
    }
    findings.record_toxicity(assessment.scores, thresholds);
}

#[cfg(test)]
mod tests;
