//! Hate by structure: constructions over a protected group, inside a clause.
//!
//! A word list cannot tell "les X sont des rats" from "les X fuient la
//! guerre et la maladie", nor "je hais les X" from "je ne hais pas les X".
//! What tells them apart is how the words are put together, and hateful
//! sentences are built from few constructions (the HateCheck taxonomy):
//! derogation and dehumanisation (a group, a copula or a tight link, a
//! negative word), expressed contempt (a hate verb near a group), threats and
//! calls to exclusion (an intent or normative word, a violence or exclusion
//! word, a group), negated positive statements ("ne sont pas des êtres
//! humains"), slurs. Each is looked for per clause, with the group named in
//! it or, through a pronoun (`ils`, `they`, `les` before a verb), in an
//! earlier clause. Negation voids a construction, except in a rhetorical
//! question ("ne sont-ils pas des animaux ?"); counter-speech (the comment
//! denounces what it quotes: "dire que … c'est du racisme") keeps it as an
//! explanation without flagging it.

use super::lexicon::{Abuse, AbuseCategory, Class, Strength, Tag, Tagged};
use crate::domain::Span;

/// The hateful constructions, each a reason code `hate.<kind>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HateKind {
    Slur,
    Derogation,
    Dehumanisation,
    Contempt,
    NegatedPositive,
    Threat,
    Exclusion,
}

impl HateKind {
    pub fn code(self) -> &'static str {
        match self {
            HateKind::Slur => "hate.slur",
            HateKind::Derogation => "hate.derogation",
            HateKind::Dehumanisation => "hate.dehumanisation",
            HateKind::Contempt => "hate.contempt",
            HateKind::NegatedPositive => "hate.negated_positive",
            HateKind::Threat => "hate.threat",
            HateKind::Exclusion => "hate.exclusion",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            HateKind::Slur => "a slur for",
            HateKind::Derogation => "negative attributes ascribed to",
            HateKind::Dehumanisation => "a dehumanising comparison of",
            HateKind::Contempt => "hatred or contempt expressed for",
            HateKind::NegatedPositive => "humanity or worth denied to",
            HateKind::Threat => "a threat or a call to violence against",
            HateKind::Exclusion => "a call to expel or exclude",
        }
    }
}

/// One construction found.
#[derive(Debug, Clone, PartialEq)]
pub struct Hate {
    pub kind: HateKind,
    /// Index into `Lexicon::groups`.
    pub group: u16,
    /// Where the group is named.
    pub target: Span,
    /// The attacking words.
    pub attack: Span,
    /// The comment denounces what it quotes: explained, not flagged.
    pub counter_speech: bool,
    /// The clause denies it ("je ne déteste pas les X"): explained, not flagged.
    pub negated: bool,
    /// The group or the attacking word was found misspelled.
    pub variant: bool,
}

impl Hate {
    /// Asserted by the comment: neither quoted to denounce it nor denied.
    pub fn live(&self) -> bool {
        !self.counter_speech && !self.negated
    }
}

/// A group named at words `first..=last`.
#[derive(Debug, Clone, Copy)]
struct Target {
    group: u16,
    first: usize,
    last: usize,
    span: Span,
    slur: bool,
    variant: bool,
}

/// Determiners that make a weak group name a group (`les noirs`, not `des nuages noirs`).
#[rustfmt::skip]
const DETERMINERS: [&str; 35] = [
    "les", "des", "ces", "aux", "mes", "nos", "vos", "leurs", "tous", "toutes", "sales", "sale",
    "un", "une", "aucun", "aucune", "chaque", "ce", "cet", "cette", "le", "la", "l", "the",
    "these", "those", "all", "no", "every", "deux", "trois", "quelques", "plusieurs", "certains",
    "certaines",
];

/// Adjectives that may sit between a determiner and a weak group name
/// (`le prochain Arabe`, `le moindre Noir`).
const BEFORE_WEAK_GROUP: [&str; 12] = [
    "prochain",
    "prochaine",
    "premier",
    "premiere",
    "dernier",
    "derniere",
    "seul",
    "seule",
    "moindre",
    "autre",
    "next",
    "only",
];

/// Whether the weak group name at word `at` follows a determiner (perhaps
/// through one of [`BEFORE_WEAK_GROUP`]): `les noirs`, not `des nuages noirs`.
fn determined(t: &Tagged, at: usize) -> bool {
    let before = |k: usize| at.checked_sub(k).map(|i| t.word(i));
    before(1).is_some_and(|w| DETERMINERS.contains(&w))
        || (before(1).is_some_and(|w| BEFORE_WEAK_GROUP.contains(&w))
            && before(2).is_some_and(|w| DETERMINERS.contains(&w)))
}

/// How far (in words) a hate verb or a death wish reaches its group.
const VERB_REACH: usize = 4;

pub fn find(t: &Tagged) -> Vec<Hate> {
    let mut out = Vec::new();
    if t.words.is_empty() {
        return out;
    }
    // A denouncing word that is part of the attack itself ("une honte pour
    // l'humanité" said of the group) denounces nothing.
    let counter = t.tags.iter().any(|tag| {
        tag.class == Class::Counter
            && !negated_within(t, tag.first, 3)
            && !t.tags.iter().any(|other| {
                matches!(
                    other.class,
                    Class::NegativeAttribute | Class::Dehumanising | Class::Violence
                ) && other.first <= tag.first
                    && tag.last <= other.last
            })
    });
    let clauses = *t.clause.last().unwrap_or(&0) as usize + 1;
    let mut recent: Vec<(u16, Target)> = Vec::new(); // (sentence, target)
    // The groups a conditional clause ("si …", "quand …") names, and its sentence.
    let mut condition: Option<(u16, Vec<Target>)> = None;
    let mut start = 0;
    for clause in 0..clauses {
        let end = t.clause[start..]
            .iter()
            .position(|&c| c as usize != clause)
            .map_or(t.words.len(), |p| start + p);
        if start == end {
            continue;
        }
        let range = start..end;
        let sentence = t.sentence[start];
        let tags: Vec<&Tag> = t
            .tags
            .iter()
            .filter(|tag| range.contains(&tag.first))
            .collect();
        let mut targets: Vec<Target> = tags
            .iter()
            .filter_map(|tag| match tag.class {
                Class::Group(g) => Some(target(t, tag, g, false)),
                Class::Slur(g) => Some(target(t, tag, g, true)),
                Class::WeakGroup(g) if determined(t, tag.first) => Some(target(t, tag, g, false)),
                _ => None,
            })
            .collect();
        for slur in targets.iter().filter(|x| x.slur) {
            out.push(Hate {
                kind: HateKind::Slur,
                group: slur.group,
                target: slur.span,
                attack: slur.span,
                counter_speech: false,
                negated: false,
                variant: slur.variant,
            });
        }
        if targets.is_empty() {
            // The group named right after, in a short clause of its own
            // ("qu'ils aillent au diable, ces X").
            let next_start = end;
            let next_end = t.clause[next_start..]
                .iter()
                .position(|&c| c as usize != clause + 1)
                .map_or(t.words.len(), |p| next_start + p);
            if next_start < next_end
                && next_end - next_start <= 4
                && t.sentence[next_start] == sentence
                && let Some(tag) = t.tags.iter().find(|tag| {
                    (next_start..next_end).contains(&tag.first)
                        && matches!(tag.class, Class::Group(_))
                })
                && let Class::Group(g) = tag.class
            {
                targets.push(target(t, tag, g, false));
            }
        }
        let speaker = tags.iter().any(|tag| tag.class == Class::FirstPerson);
        // Targets that stand for a group named earlier are not remembered
        // as named here.
        let mut referred = false;
        if targets.is_empty()
            && let Some((_, named)) = recent.last()
            && named.last + 1 == start
            && t.sentence[named.last] == sentence
            && matches!(
                t.word(start),
                "ces" | "ce" | "cette" | "tous" | "toutes" | "bande" | "these" | "those"
            )
        {
            // In apposition, right after the group: "à côté des X, ces
            // parasites".
            targets.push(*named);
            referred = true;
        }
        if targets.is_empty() {
            // A pronoun standing for a group named shortly before.
            if let Some(pronoun) = tags.iter().find(|tag| is_pronoun(t, tag))
                && let Some((_, referent)) = recent
                    .iter()
                    .rev()
                    .find(|(s, _)| sentence.saturating_sub(*s) <= 2)
            {
                targets.push(Target {
                    first: pronoun.first,
                    last: pronoun.last,
                    ..*referent
                });
                referred = true;
            }
        }
        if targets.is_empty()
            && speaker
            && let Some((s, conditional)) = &condition
            && *s == sentence
        {
            // "Si je croise des X, je sors le fusil": what the speaker's
            // condition names, the speaker's consequence is about ("quand
            // les X sont attaqués, il faut punir les agresseurs" is not).
            targets.extend(conditional.iter().copied());
        }
        if !referred {
            recent.extend(targets.iter().map(|x| (sentence, *x)));
        }
        condition = (speaker
            && matches!(
                t.word(start),
                "si" | "s" | "quand" | "lorsque" | "if" | "when"
            ))
        .then(|| (sentence, targets.clone()))
        .filter(|(_, targets)| !targets.is_empty());
        let question = t.questions.contains(&(clause as u16));
        let clause = Clause::new(t, range.clone(), &tags, question);
        for target in &targets {
            for (kind, attack, negated) in clause.constructions(target) {
                // Quoted or reported words are somebody else's.
                let quoted =
                    t.quoted[attack.first] || t.quoted[target.first.min(t.words.len() - 1)];
                out.push(Hate {
                    kind,
                    group: target.group,
                    target: target.span,
                    attack: t.span(attack.first, attack.last),
                    counter_speech: counter || quoted,
                    negated,
                    variant: target.variant || attack.variant,
                });
            }
        }
        start = end;
    }
    out.sort_by_key(|h| (h.target.start, h.kind as u8));
    out.dedup_by(|a, b| a.kind == b.kind && a.group == b.group && a.attack == b.attack);
    out
}

fn target(t: &Tagged, tag: &Tag, group: u16, slur: bool) -> Target {
    Target {
        group,
        first: tag.first,
        last: tag.last,
        span: t.span(tag.first, tag.last),
        slur,
        variant: tag.variant,
    }
}

/// `les`, `leur` and `leurs` are articles too: they stand for a group only
/// right before a violence or exclusion word (`il faut les expulser`).
fn is_pronoun(t: &Tagged, tag: &Tag) -> bool {
    if tag.class != Class::Pronoun {
        return false;
    }
    match t.word(tag.first) {
        "les" | "leur" | "leurs" => {
            let next = tag.last + 1;
            next < t.words.len()
                && (t.has(next, Class::Violence)
                    || t.has(next, Class::Exclusion)
                    || t.has(next, Class::ExclusionStatement)
                    || t.has(next, Class::HateVerb))
        }
        _ => true,
    }
}

/// A negation word in the `reach` words before `at`.
fn negated_within(t: &Tagged, at: usize, reach: usize) -> bool {
    t.tags
        .iter()
        .any(|tag| tag.class == Class::Negation && tag.last < at && at - tag.last <= reach)
}

struct Clause<'a> {
    t: &'a Tagged,
    range: std::ops::Range<usize>,
    tags: &'a [&'a Tag],
    question: bool,
    /// The clause's own negations (see `own_negations`), found once.
    negations: Vec<Tag>,
    /// Negated (and not rhetorically), or stopped ("arrêtez de …").
    negated: bool,
}

impl<'a> Clause<'a> {
    fn new(
        t: &'a Tagged,
        range: std::ops::Range<usize>,
        tags: &'a [&'a Tag],
        question: bool,
    ) -> Self {
        let mut clause = Clause {
            t,
            range,
            tags,
            question,
            negations: Vec::new(),
            negated: false,
        };
        clause.negations = clause.own_negations();
        clause.negated =
            (!clause.negations.is_empty() && !clause.rhetorical()) || clause.any(Class::Stop);
        clause
    }

    fn of<'s>(&'s self, class: impl Fn(Class) -> bool + 's) -> impl Iterator<Item = &'s Tag> + 's {
        self.tags
            .iter()
            .copied()
            .filter(move |tag| class(tag.class))
    }

    fn any(&self, class: Class) -> bool {
        self.tags.iter().any(|tag| tag.class == class)
    }

    /// Negations of their own, not part of another entry ("pas les
    /// bienvenus", "supporte pas" carry theirs).
    fn own_negations(&self) -> Vec<Tag> {
        let t = self.t;
        let words: Vec<&str> = self.range.clone().map(|i| t.word(i)).collect();
        let comparative = words.windows(2).any(|w| {
            matches!(
                w,
                ["plus" | "autant" | "pire" | "more", "que" | "qu" | "than"]
            ) || (w[0].len() > 4 && w[0].ends_with("er") && w[1] == "than")
        });
        self.of(|c| c == Class::Negation)
            .filter(|n| {
                // "rien ne me répugne plus que …" affirms.
                !(comparative && matches!(t.word(n.first), "rien" | "nothing"))
            })
            .filter(|n| {
                // "vous ne trouvez pas que les X …": the negation is the
                // main clause's; what follows `que` is asserted. (Only a
                // `que` within two words of it: in "pas les mêmes droits
                // que nous" the negation is the predicate's.)
                !(n.last + 1..(n.last + 3).min(self.range.end))
                    .any(|i| matches!(t.word(i), "que" | "qu" | "that"))
            })
            .filter(|n| {
                !self.tags.iter().any(|other| {
                    // A restrictive copula affirms: "are nothing but", "is
                    // nothing more than".
                    let restrictive = other.class == Class::Copula
                        && matches!(t.word(other.last), "but" | "than" | "que" | "qu");
                    other.class != Class::Negation
                        && (restrictive || !matches!(other.class, Class::Pronoun | Class::Copula))
                        && other.first <= n.first
                        && n.last <= other.last
                        && (other.first, other.last) != (n.first, n.last)
                })
            })
            .copied()
            .collect()
    }

    /// A negated question asks for agreement ("ne sont-ils pas des
    /// animaux ?", "aren't they all rats?"): it affirms.
    fn rhetorical(&self) -> bool {
        if !self.question {
            return false;
        }
        let t = self.t;
        let first = self.range.start;
        if matches!(t.word(first), "pourquoi" | "why") {
            return true;
        }
        self.range.clone().any(|i| {
            matches!(t.word(i), "ils" | "elles" | "they" | "t")
                && i + 1 < t.words.len()
                && matches!(t.word(i + 1), "pas" | "jamais" | "plus" | "all" | "just")
        }) || self
            .negations
            .iter()
            .any(|n| n.first == first && t.word(n.last) == "t")
    }

    /// Are the target and the tag linked as subject and predicate: a copula
    /// or comparison between them, next to each other, or joined by `de`
    /// ("ces rats de X", "X de merde")?
    fn linked(&self, target: &Target, tag: &Tag) -> bool {
        let (a, b) = if tag.first > target.last {
            (target.last + 1, tag.first)
        } else if target.first > tag.last {
            (tag.last + 1, target.first)
        } else {
            return false;
        };
        if b - a > 8 {
            return false;
        }
        let between = a..b;
        // "Ces X, c'est du bétail": the pronoun standing for the group is
        // its own copula.
        let copula_target = tag.first > target.last
            && self
                .of(|c| c == Class::Copula)
                .any(|c| c.first == target.first && c.last == target.last);
        between.is_empty()
            || (copula_target
                && b - a <= 2
                && (a..b).all(|i| {
                    matches!(
                        self.t.word(i),
                        "du" | "de" | "la" | "l" | "des" | "un" | "une" | "que" | "qu" | "juste"
                    )
                }))
            || (b - a == 1 && matches!(self.t.word(a), "de" | "d" | "of" | "egal"))
            || self
                .of(|c| c == Class::Copula)
                .any(|c| between.contains(&c.first))
            || (b - a <= 3
                && (a..b).all(|i| {
                    matches!(
                        self.t.word(i),
                        "tous"
                            | "toutes"
                            | "que"
                            | "des"
                            | "de"
                            | "d"
                            | "les"
                            | "vraiment"
                            | "all"
                            | "just"
                            | "only"
                            | "really"
                            | "such"
                            | "ces"
                            | "ce"
                            | "bande"
                            | "espece"
                            | "tas"
                            | "chez"
                            | "ne"
                            | "n"
                            | "absolument"
                            | "so"
                            | "too"
                            | "very"
                            | "totally"
                            | "completely"
                            | "si"
                            | "tellement"
                            | "trop"
                            | "tres"
                            | "totalement"
                            | "completement"
                    )
                }))
    }

    /// The constructions over `target`, each with whether the clause negates it.
    fn constructions(&self, target: &Target) -> Vec<(HateKind, Tag, bool)> {
        let mut found = Vec::new();
        let negated = self.negated;
        let near = |tag: &Tag, reach: usize| {
            let gap = if tag.first > target.last {
                tag.first - target.last
            } else {
                target.first.saturating_sub(tag.last)
            };
            gap <= reach
        };
        let attribute = |c: Class| {
            matches!(
                c,
                Class::NegativeAttribute
                    | Class::Abuse(Abuse {
                        category: AbuseCategory::Insult,
                        strength: Strength::Strong | Strength::Mild,
                    })
            )
        };
        let obscene = |c: Class| {
            matches!(
                c,
                Class::Abuse(Abuse {
                    category: AbuseCategory::Obscene,
                    ..
                })
            )
        };
        {
            if let Some(tag) = self
                .of(|c| c == Class::Dehumanising)
                .find(|tag| self.linked(target, tag))
            {
                found.push((HateKind::Dehumanisation, *tag, negated));
            } else if let Some(tag) = self
                .of(attribute)
                .find(|tag| self.linked(target, tag))
                .or_else(|| {
                    // "putain de X", "X de merde": profanity fused to the group.
                    self.of(obscene)
                        .find(|tag| near(tag, 2) && self.linked(target, tag))
                })
            {
                found.push((HateKind::Derogation, *tag, negated));
            }
            if let Some(tag) = self
                .of(|c| c == Class::HateVerb)
                .find(|tag| near(tag, VERB_REACH))
            {
                found.push((HateKind::Contempt, *tag, negated));
            }
        }
        let calls = self.any(Class::Normative) || self.first_person_intent();
        let violent_intent = calls || self.any(Class::Intent);
        // A negation inside a statement of exclusion ("n'ont pas leur
        // place") is part of it, not of the clause (see `negations`).
        if !negated {
            // "Expulsez les X", "tuons-les"; in English a verb opening
            // the clause ("Ban X from voting", "Kill them all").
            let imperative = |tag: &&Tag| {
                let w = self.t.word(tag.last);
                let opens = tag.first == self.range.start
                    && !(tag.last + 1 < self.t.words.len()
                        && matches!(self.t.word(tag.last + 1), "on" | "of" | "against"));
                w.ends_with("ez") || w.ends_with("ons") || opens
            };
            if let Some(tag) = self
                .of(|c| c == Class::Violence)
                .find(|tag| violent_intent || imperative(tag) || self.first_person_before(tag))
                .or_else(|| {
                    self.of(|c| c == Class::DeathWish)
                        .find(|tag| near(tag, VERB_REACH))
                })
            {
                found.push((HateKind::Threat, *tag, false));
            } else if let Some(tag) = self
                .of(|c| c == Class::Exclusion)
                .find(|tag| calls || imperative(tag))
                .or_else(|| self.of(|c| c == Class::ExclusionStatement).next())
            {
                found.push((HateKind::Exclusion, *tag, false));
            }
        }
        // "Les X ne sont pas des êtres humains", "aucun X n'est digne de confiance".
        if !self.any(Class::Stop) {
            let negations = &self.negations;
            if let Some(tag) = self.of(|c| c == Class::Positive).find(|p| {
                negations
                    .iter()
                    .any(|n| n.last < p.first && p.first - n.last <= 6)
                    && near(p, 8)
                    && (p.last < target.first || p.first > target.last)
                    // "gay people", "black persons": the noun of the group's
                    // own phrase, not a predicate.
                    && !(p.first == target.last + 1
                        && matches!(
                            self.t.word(p.first),
                            "people" | "persons" | "person" | "personnes" | "gens"
                        ))
            }) {
                found.push((HateKind::NegatedPositive, *tag, false));
            }
        }
        found
    }

    /// "je bute", "on tue", "j'les crève".
    fn first_person_before(&self, tag: &Tag) -> bool {
        self.of(|c| c == Class::FirstPerson)
            .any(|p| p.last < tag.first && tag.first - p.last <= 3)
    }

    /// "je vais", "on va", "nous allons", "I will", "we're going to".
    fn first_person_intent(&self) -> bool {
        self.of(|c| c == Class::Intent).any(|intent| {
            self.of(|c| c == Class::FirstPerson)
                .any(|p| p.last < intent.first && intent.first - p.last <= 3)
        })
    }
}
