//! Toxicity: hate caught by its structure, insults, obscenity, sexual
//! harassment and threats scored per category.
//!
//! Two kinds of evidence. The team's lexicons (`lexicon.rs`, data in
//! `rules/toxicity/`) and the hateful constructions built on them
//! (`hate.rs`) give findings that can be named and pointed at: "a
//! dehumanising comparison of Muslims", with the span of the group and of the
//! attacking words. Each finding sets a floor under its category's score.
//! A trained classifier over the same features as the spam score
//! (`model.rs`: one "toxic or not" head, each tenant's own copy taught by
//! its moderators) scores what no list names. A category's score is the larger
//! of the two; the comment's toxicity score is its highest category.
//!
//! Pure, like the rest of the pipeline: the lexicons are compiled once per
//! process; models and thresholds are arguments.

pub mod hate;
pub mod lexicon;
pub mod model;

use hate::{Hate, HateKind};
use lexicon::{Abuse, AbuseCategory, Class, LEXICON, Strength, Tagged};

use super::spam::{Features, Model, sigmoid};
use super::{Action, Findings};
use crate::domain::{ExternalOpinion, Reason, Span, external_reason_code};
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
    /// The classifier's probability and the category it went to.
    pub classifier: (f64, Category),
    /// The words that raised the classifier most: span, log-odds.
    pub words: Vec<(Span, f64)>,
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

/// Words reported as explanation: at most this many, each raising the
/// log-odds by at least `EXPLAINED_WORD_LOGIT`.
const EXPLAINED_WORDS: usize = 3;
const EXPLAINED_WORD_LOGIT: f64 = 0.3;
/// The highest classifier probability of a comment whose hateful words are
/// all quoted or denied: below every default review threshold.
const DISOWNED_CEILING: f64 = 0.5;

/// Scores a comment: the lexicons and constructions, then the classifier
/// over `features` (the features of `body`, shared with the spam score,
/// whose folded text the lexicons read).
pub fn assess(body: &str, features: &Features, model: &Model) -> Assessment {
    let t = LEXICON.tag_folded(body, features.normalized().clone());
    let hate = hate::find(&t);
    let (masked, cue_buckets) = (group_words(&t), cues(&t, &hate));
    let mut scores = Scores::default();
    for h in hate.iter().filter(|h| h.live()) {
        let (category, confidence) = hate_confidence(h.kind);
        scores.raise(category, confidence);
    }
    let mut abuse = Vec::new();
    // Abusive words quoted by a comment that denounces them ("when I hear
    // people shout 'death to X', it chills me") are not the writer's.
    let denounced = hate.iter().any(|h| h.counter_speech);
    for tag in &t.tags {
        let Class::Abuse(Abuse { category, strength }) = tag.class else {
            continue;
        };
        if denounced && t.quoted[tag.first] {
            continue;
        }
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
    let scored = model.score_masked(features, &masked, &cue_buckets);
    let probability = sigmoid(scored.logit);
    // The classifier says "toxic"; the lexicons say which way.
    let category = abuse
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|a| a.0)
        .or_else(|| {
            hate.iter()
                .find(|h| h.live())
                .map(|h| hate_confidence(h.kind).0)
        })
        .unwrap_or(Category::Insult);
    // The classifier reads words, not who says them: when the only hateful
    // words are quoted to be denounced or denied, it is not believed past
    // doubt (the lexicons still flag what is aimed at someone).
    let disowned = !hate.is_empty() && hate.iter().all(|h| !h.live());
    let probability = if disowned {
        probability.min(DISOWNED_CEILING)
    } else {
        probability
    };
    scores.raise(category, probability);
    let mut words: Vec<(Span, f64)> = scored
        .words
        .iter()
        .enumerate()
        .filter(|(_, c)| **c >= EXPLAINED_WORD_LOGIT)
        .map(|(i, c)| (features.words[i], *c))
        .collect();
    words.sort_by(|a, b| b.1.total_cmp(&a.1));
    words.truncate(EXPLAINED_WORDS);
    Assessment {
        scores,
        classifier: (probability, category),
        words,
        hate,
        abuse,
    }
}

/// The lexicons' evidence as classifier features: which kinds of abusive
/// words (and whether aimed at someone), which hateful constructions, a
/// group named, counter-speech. The classifier learns from data how much
/// each is worth, next to the words themselves. Naming a group is not a
/// cue: in hateful tweets nearly every group mention is hostile, and a
/// model that learnt so would hold every neutral mention.
fn cues(t: &Tagged, hate: &[Hate]) -> Vec<u32> {
    let cue = &*CUES;
    let mut buckets: Vec<u32> = Vec::new();
    for tag in &t.tags {
        match tag.class {
            Class::Abuse(Abuse { category, strength }) => {
                let [plain, aimed] = cue.abuse[category as usize][strength as usize];
                if addressed(t, tag.first) {
                    buckets.push(aimed);
                }
                buckets.push(plain);
            }
            Class::Slur(_) => buckets.push(cue.slur),
            Class::Dehumanising => buckets.push(cue.dehumanising),
            Class::NegativeAttribute => buckets.push(cue.negative_attribute),
            Class::Violence => buckets.push(cue.violence),
            _ => {}
        }
    }
    for h in hate {
        buckets.push(if h.counter_speech {
            cue.counter
        } else {
            cue.hate[h.kind as usize]
        });
    }
    buckets.sort_unstable();
    buckets.dedup();
    buckets
}

/// The feature buckets of the cues, hashed once from their names (the
/// names are what the shipped model was trained on: `abuse:Insult:Mild`,
/// `abuse:Insult:Mild:aimed`, `hate:Threat`…).
struct Cues {
    /// By category and strength: plain, aimed at someone.
    abuse: [[[u32; 2]; 3]; 5],
    slur: u32,
    dehumanising: u32,
    negative_attribute: u32,
    violence: u32,
    counter: u32,
    hate: [u32; 7],
}

static CUES: std::sync::LazyLock<Cues> = std::sync::LazyLock::new(|| {
    use super::spam::features::extra_bucket;
    use AbuseCategory::*;
    let categories = [Insult, Obscene, Sexual, Threat, SelfHarm];
    let strengths = [Strength::Weak, Strength::Mild, Strength::Strong];
    let kinds = [
        HateKind::Slur,
        HateKind::Derogation,
        HateKind::Dehumanisation,
        HateKind::Contempt,
        HateKind::NegatedPositive,
        HateKind::Threat,
        HateKind::Exclusion,
    ];
    let mut abuse = [[[0; 2]; 3]; 5];
    for category in categories {
        for strength in strengths {
            let base = format!("abuse:{category:?}:{strength:?}");
            abuse[category as usize][strength as usize] =
                [extra_bucket(&base), extra_bucket(&format!("{base}:aimed"))];
        }
    }
    Cues {
        abuse,
        slur: extra_bucket("slur"),
        dehumanising: extra_bucket("dehumanising"),
        negative_attribute: extra_bucket("negative_attribute"),
        violence: extra_bucket("violence"),
        counter: extra_bucket("hate:counter"),
        hate: kinds.map(|k| extra_bucket(&format!("hate:{k:?}"))),
    }
});

/// The classifier's input for `body`: its features and the lexicons' cues
/// (for training the model on labelled text).
pub fn training_features(body: &str) -> Features {
    let features = Features::extract(body);
    let t = LEXICON.tag_folded(body, features.normalized().clone());
    let hate = hate::find(&t);
    features.masked(&group_words(&t), cues(&t, &hate))
}

/// The words that name a protected group. Their own features are left out
/// of the classifier: a model trained on hateful
/// tweets learns that "musulmans" is toxic, and would then hold every
/// neutral mention of Muslims. What is said of the group carries the signal.
fn group_words(t: &Tagged) -> Vec<usize> {
    let mut words: Vec<usize> = t
        .tags
        .iter()
        .filter(|tag| matches!(tag.class, Class::Group(_) | Class::WeakGroup(_)))
        .flat_map(|tag| tag.first..=tag.last)
        .map(|i| t.feature_word(i))
        .collect();
    words.sort_unstable();
    words.dedup();
    words
}

/// Runs the toxicity stage and records its findings: every hateful
/// construction holds the comment for review; each category's score is
/// compared with the tenant's thresholds.
pub fn inspect(
    body: &str,
    features: &Features,
    model: &Model,
    thresholds: &Thresholds,
    external: Option<&ExternalOpinion>,
    findings: &mut Findings,
) {
    let mut assessment = assess(body, features, model);
    let (probability, category) = assessment.classifier;
    findings.note(Reason {
        score: Some(probability),
        ..Reason::new(
            "toxicity.classifier",
            format!(
                "toxicity probability {probability:.2}, counted as {}",
                category.name()
            ),
        )
    });
    for &(span, logit) in &assessment.words {
        findings.note(Reason {
            span: Some(span),
            ..Reason::new(
                "toxicity.word",
                format!("this word points to toxicity ({logit:+.2} log-odds)"),
            )
        });
    }
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
        // Quoted to be denounced, or denied: explained, not held.
        let disowned = if h.counter_speech {
            Some(("hate.counter_speech", "quotes or denounces"))
        } else if h.negated {
            Some(("hate.negated", "denies"))
        } else {
            None
        };
        match disowned {
            Some((code, verb)) => {
                reason.code = code.into();
                reason.message = format!(
                    "{verb} {} {}: not held for it",
                    h.kind.describe(),
                    group.name_en
                );
                reason.score = None;
                findings.note(reason);
            }
            None => findings.require(Action::Review, reason),
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
    if let Some(opinion) = external {
        external_opinion(opinion, &mut assessment.scores, findings);
    }
    findings.record_toxicity(assessment.scores, thresholds);
}

/// A hosted classifier's opinion: each attribute's score explained as
/// `external.<attribute>`, and counted in the category it maps to (the
/// larger of the two scores), which the tenant's thresholds then judge;
/// an opinion that could not be had is said so, and changes nothing.
fn external_opinion(opinion: &ExternalOpinion, scores: &mut Scores, findings: &mut Findings) {
    match opinion {
        ExternalOpinion::Scores {
            kind,
            scores: given,
        } => {
            let mut given: Vec<&(String, f64)> = given.iter().collect();
            given.sort_by(|a, b| a.0.cmp(&b.0));
            for (attribute, score) in given {
                let category = kind.category(attribute);
                if let Some(category) = category {
                    scores.raise(category, *score);
                }
                findings.note(Reason {
                    score: Some(*score),
                    ..Reason::new(
                        external_reason_code(attribute),
                        match category {
                            Some(category) => format!(
                                "the external classifier scores {attribute} {score:.2}, counted as {}",
                                category.name()
                            ),
                            None => format!("the external classifier scores {attribute} {score:.2}"),
                        },
                    )
                });
            }
        }
        ExternalOpinion::Unavailable { why } => findings.note(Reason::new(
            "external.unavailable",
            format!("no opinion from the external classifier ({why}): decided without it"),
        )),
    }
}

#[cfg(test)]
mod tests;
