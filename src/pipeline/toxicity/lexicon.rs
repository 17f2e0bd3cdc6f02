//! The shipped lexicons, compiled once per process, and the tagging of a
//! comment's words with them.
//!
//! Three data files written by the team (`rules/toxicity/`): `groups.toml`
//! (protected groups, their names and slurs), `hate.toml` (the words hateful
//! constructions are made of) and `abuse.toml` (insults, obscenity, sexual
//! harassment and threats by category). They are compiled into the binary and
//! matched with the rule engine's word matcher, so "the same word" means the
//! same thing here as in a tenant's word lists (case, accents, leetspeak,
//! invisible characters, spacing tricks).
//!
//! On top of that, long lexicon words survive the misspellings readers use
//! to slip past filters: one letter dropped, added, changed or two swapped
//! (edit distance 1, for words of six letters or more), a space added inside
//! the word (`mu sulmans`) or missing after an article (`lesmusulmans`).

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::sync::{Arc, LazyLock};

use serde::Deserialize;

use crate::pipeline::normalize::{Normalized, normalize};
use crate::pipeline::rules::words::WordMatcher;

pub const GROUPS_TOML: &str = include_str!("../../../rules/toxicity/groups.toml");
pub const HATE_TOML: &str = include_str!("../../../rules/toxicity/hate.toml");
pub const ABUSE_TOML: &str = include_str!("../../../rules/toxicity/abuse.toml");

/// Shortest lexicon word that matches with one edit.
const FUZZY_MIN_LEN: usize = 6;

/// What a word (or a run of words) of a comment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Names a protected group (the index into `Lexicon::groups`).
    Group(u16),
    /// A group name that counts only after a determiner (`les noirs`).
    WeakGroup(u16),
    Slur(u16),
    NegativeAttribute,
    Dehumanising,
    HateVerb,
    Violence,
    Exclusion,
    ExclusionStatement,
    DeathWish,
    Normative,
    Intent,
    Negation,
    Stop,
    Positive,
    Counter,
    QuoteFrame,
    Pronoun,
    FirstPerson,
    Copula,
    Abuse(Abuse),
}

/// An entry of `abuse.toml`: its category and strength.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Abuse {
    pub category: AbuseCategory,
    pub strength: Strength,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AbuseCategory {
    Insult,
    Obscene,
    Sexual,
    Threat,
    SelfHarm,
}

/// `strong`: abusive in almost any context; `mild`: often rude without
/// insulting anyone; `weak`: abusive only when aimed at someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Strength {
    Weak,
    Mild,
    Strong,
}

/// A protected group as the lexicon describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Group {
    pub id: String,
    pub category: String,
    pub name_fr: String,
    pub name_en: String,
    #[serde(default)]
    pub terms: Vec<String>,
    #[serde(default)]
    pub weak_terms: Vec<String>,
    #[serde(default)]
    pub slurs: Vec<String>,
}

#[derive(Deserialize)]
struct GroupsFile {
    group: Vec<Group>,
}

#[derive(Deserialize, Default)]
struct Strengths {
    #[serde(default)]
    strong: Vec<String>,
    #[serde(default)]
    mild: Vec<String>,
    #[serde(default)]
    weak: Vec<String>,
    #[serde(default)]
    verbs: Vec<String>,
    #[serde(default)]
    phrases: Vec<String>,
}

#[derive(Deserialize)]
struct AbuseFile {
    #[serde(default)]
    insult: Strengths,
    #[serde(default)]
    obscene: Strengths,
    #[serde(default)]
    sexual: Strengths,
    #[serde(default)]
    threat: Strengths,
    #[serde(default)]
    self_harm_incitement: Strengths,
}

/// One tag on a comment: `class` covers words `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    pub class: Class,
    pub first: usize,
    pub last: usize,
    /// Found through a misspelling rather than exactly.
    pub variant: bool,
}

/// A comment's words, where each sits in the original text, where clauses
/// and sentences end, and every tag the lexicons put on them.
#[derive(Debug, Default)]
pub struct Tagged {
    pub original: String,
    /// Shared with the comment's spam features: folded once.
    pub folded: Arc<Normalized>,
    /// Per word: byte range in `folded.text`.
    pub words: Vec<(usize, usize)>,
    /// Per word: the word of the text as folded for the other stages (its
    /// index in the spam features) when glued words were spaced; empty when
    /// none were (the same words).
    unspaced: Vec<usize>,
    /// Per word: the clause it belongs to (a new clause after `,` `;` `:`
    /// or a sentence end, and before `mais`, `et`, `but`, `and`).
    pub clause: Vec<u16>,
    /// Per word: the sentence it belongs to (after `.` `!` `?` or a line break).
    pub sentence: Vec<u16>,
    /// Clauses that end with a question mark.
    pub questions: Vec<u16>,
    /// Per word: inside quotation marks, or after a word that reports
    /// speech ("dire que", "ceux qui écrivent") in its sentence.
    pub quoted: Vec<bool>,
    /// Tags in order of their first word.
    pub tags: Vec<Tag>,
}

impl Tagged {
    /// The index of word `i` in the comment's spam features (they are the
    /// same words unless glued ones were spaced for the lexicons).
    pub fn feature_word(&self, i: usize) -> usize {
        self.unspaced.get(i).copied().unwrap_or(i)
    }

    pub fn word(&self, i: usize) -> &str {
        let (s, e) = self.words[i];
        &self.folded.text[s..e]
    }

    /// The original span of words `first..=last`.
    pub fn span(&self, first: usize, last: usize) -> crate::domain::Span {
        let (s, e) = self
            .folded
            .original_span(self.words[first].0, self.words[last].1);
        crate::domain::Span { start: s, end: e }
    }

    /// Written with a capital inside a sentence: a name, not a word.
    pub fn proper_noun(&self, i: usize) -> bool {
        if i == 0 || self.sentence[i - 1] != self.sentence[i] {
            return false;
        }
        let span = self.span(i, i);
        self.original[span.start as usize..]
            .chars()
            .next()
            .is_some_and(char::is_uppercase)
    }

    pub fn has(&self, i: usize, class: Class) -> bool {
        self.tags
            .iter()
            .any(|t| t.class == class && t.first <= i && i <= t.last)
    }
}

pub struct Lexicon {
    pub groups: Vec<Group>,
    matcher: WordMatcher,
    /// The class of each matcher list.
    classes: Vec<Class>,
    /// Single-word forms (folded) of long entries, for misspellings: the
    /// hash of every form with one letter deleted, and of the form itself.
    deletions: HashMap<u64, Vec<(u32, Class)>, BuildHasherDefault<Prehashed>>,
    /// The folded forms behind `deletions`.
    forms: Vec<String>,
    /// Exact single-word forms of group names and slurs (for split and glued words).
    exact: HashMap<String, Class, BuildHasherDefault<Prehashed>>,
    /// Every single-word form of the groups, slurs and hate constructions'
    /// words (not the abusive words): a word
    /// glued to a function word (`sontdes`, `exterminerles`) is split when
    /// the rest is one.
    known: HashSet<String, BuildHasherDefault<Prehashed>>,
}

/// Short words written glued to the next one (`sontdes`, `auxjuifs`,
/// `nesont`) to slip past filters: those that `word` may start with, chosen
/// by its first two letters (most words start with none, and pay one match).
fn glue_before(word: &str) -> &'static [&'static str] {
    match word.as_bytes().get(..2) {
        Some(b"le") => &["les", "le"],
        Some(b"de") => &["des", "de"],
        Some(b"la") => &["la"],
        Some(b"du") => &["du"],
        Some(b"au") => &["aux"],
        Some(b"ce") => &["ces"],
        Some(b"so") => &["sont"],
        Some(b"ne") => &["ne"],
        Some(b"es") => &["est"],
        Some(b"to") => &["toutes", "tous", "to"],
        Some(b"al") => &["all"],
        Some(b"ar") => &["are"],
        _ => &[],
    }
}

/// Whether `word` is one of the short words of [`glue_before`].
fn is_glue(word: &str) -> bool {
    matches!(
        word,
        "les"
            | "des"
            | "aux"
            | "ces"
            | "sont"
            | "ne"
            | "de"
            | "la"
            | "le"
            | "du"
            | "est"
            | "tous"
            | "toutes"
            | "all"
            | "are"
            | "to"
    )
}

/// "nothing but", "all but": `but` restricts what comes before it here, it
/// does not open a clause.
fn restrictive_but(previous: &str, word: &str) -> bool {
    word == "but" && matches!(previous, "nothing" | "anything" | "all")
}

/// Short words glued to the one before (`exterminerles`).
const GLUE_AFTER: [&str; 4] = ["les", "des", "aux", "ces"];

/// The lexicons, compiled at first use (a few milliseconds).
pub static LEXICON: LazyLock<Lexicon> = LazyLock::new(|| {
    Lexicon::compile(GROUPS_TOML, HATE_TOML, ABUSE_TOML)
        .expect("the shipped lexicons compile (tested)")
});

/// Articles and determiners a glued group name may follow (`lesmusulmans`).
const GLUED_PREFIXES: [&str; 9] = [
    "les", "des", "ces", "aux", "sales", "sale", "the", "tous", "mes",
];

/// `word` with each letter repeated as often as it was (at most twice; three
/// or more is stretching, read as one).
fn expand_runs(word: &str, run: impl Fn(usize) -> u16) -> String {
    let mut out = String::with_capacity(word.len() + 4);
    expand_runs_into(word, run, &mut out);
    out
}

/// [`expand_runs`] into a buffer the caller reuses.
fn expand_runs_into(word: &str, run: impl Fn(usize) -> u16, out: &mut String) {
    out.clear();
    for (i, c) in word.char_indices() {
        out.push(c);
        if run(i) == 2 {
            out.push(c);
        }
    }
}

/// The hasher of a map whose keys are hashes already (`deletion_hashes`): one
/// multiplication spreads them over the table instead of SipHash's rounds,
/// which were a tenth of the toxicity stage (every word of six letters or
/// more is looked up once per letter). Other keys (the short words of
/// `known`, the forms of `exact`) are hashed with FNV-1a.
#[derive(Default)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; any other key still hashes.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Polynomial hashes (base `HASH_BASE`, wrapping) of `word` and of `word`
/// with each byte left out in turn: the whole word first, then byte 0
/// left out, byte 1, and so on. With prefix and suffix sums each costs a
/// multiplication and an addition, not a pass over the word (a pass per
/// byte made the misspelling lookup quadratic in the word's length).
fn deletion_hashes(word: &[u8], out: &mut Vec<u64>) {
    // hash(a ++ b) = hash(a) * B^len(b) + hash(b). `out[k]` first holds the
    // hash of `word[..k]`; walking back from the end, the hash without byte
    // k is that prefix times B^(n-k-1) plus the hash of what follows it.
    out.clear();
    out.push(0);
    for &b in word {
        let last = out[out.len() - 1];
        out.push(last.wrapping_mul(HASH_BASE).wrapping_add(u64::from(b) + 1));
    }
    let whole = out[word.len()];
    let (mut after, mut power) = (0u64, 1u64);
    for k in (0..word.len()).rev() {
        out[k + 1] = out[k].wrapping_mul(power).wrapping_add(after);
        after = (u64::from(word[k]) + 1)
            .wrapping_mul(power)
            .wrapping_add(after);
        power = power.wrapping_mul(HASH_BASE);
    }
    out[0] = whole;
}

/// An odd 64-bit constant: the hash is a polynomial in it modulo 2^64.
const HASH_BASE: u64 = 0x0000_0100_0000_01b3;

/// Damerau-Levenshtein distance at most 1 (one insertion, deletion,
/// substitution or swap of neighbours).
fn within_one_edit(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    match long.len() - short.len() {
        0 => {
            let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
            diff.len() == 1
                || (diff.len() == 2
                    && diff[1] == diff[0] + 1
                    && a[diff[0]] == b[diff[1]]
                    && a[diff[1]] == b[diff[0]])
        }
        1 => {
            let first = (0..short.len())
                .find(|&i| short[i] != long[i])
                .unwrap_or(short.len());
            short[first..] == long[first + 1..]
        }
        _ => false,
    }
}

/// Classes whose long words are also found misspelled.
fn fuzzy_class(class: Class) -> bool {
    matches!(
        class,
        Class::Group(_)
            | Class::Slur(_)
            | Class::Dehumanising
            | Class::NegativeAttribute
            | Class::HateVerb
            | Class::Violence
            | Class::Abuse(Abuse {
                strength: Strength::Strong,
                ..
            })
    )
}

impl Lexicon {
    pub fn compile(groups: &str, hate: &str, abuse: &str) -> Result<Lexicon, String> {
        let groups: GroupsFile = toml::from_str(groups).map_err(|e| format!("groups.toml: {e}"))?;
        let hate: HashMap<String, Vec<String>> =
            toml::from_str(hate).map_err(|e| format!("hate.toml: {e}"))?;
        let abuse: AbuseFile = toml::from_str(abuse).map_err(|e| format!("abuse.toml: {e}"))?;

        let mut lists: Vec<(Class, Vec<String>)> = Vec::new();
        for (i, g) in groups.group.iter().enumerate() {
            let i = i as u16;
            lists.push((Class::Group(i), g.terms.clone()));
            lists.push((Class::WeakGroup(i), g.weak_terms.clone()));
            lists.push((Class::Slur(i), g.slurs.clone()));
        }
        for (name, words) in hate {
            let class = match name.as_str() {
                "negative_attribute" => Class::NegativeAttribute,
                "dehumanising" => Class::Dehumanising,
                "hate_verb" => Class::HateVerb,
                "violence" => Class::Violence,
                "exclusion" => Class::Exclusion,
                "exclusion_statement" => Class::ExclusionStatement,
                "death_wish" => Class::DeathWish,
                "normative" => Class::Normative,
                "intent" => Class::Intent,
                "negation" => Class::Negation,
                "stop" => Class::Stop,
                "positive" => Class::Positive,
                "counter" => Class::Counter,
                "quote_frame" => Class::QuoteFrame,
                "pronoun" => Class::Pronoun,
                "first_person" => Class::FirstPerson,
                "copula" => Class::Copula,
                other => return Err(format!("hate.toml: unknown class {other:?}")),
            };
            lists.push((class, words));
        }
        let sections = [
            (AbuseCategory::Insult, abuse.insult),
            (AbuseCategory::Obscene, abuse.obscene),
            (AbuseCategory::Sexual, abuse.sexual),
            (AbuseCategory::Threat, abuse.threat),
            (AbuseCategory::SelfHarm, abuse.self_harm_incitement),
        ];
        for (category, s) in sections {
            let strong: Vec<String> = s.strong.into_iter().chain(s.phrases).collect();
            for (strength, words) in [
                (Strength::Strong, strong),
                (Strength::Mild, s.mild.into_iter().chain(s.verbs).collect()),
                (Strength::Weak, s.weak),
            ] {
                lists.push((Class::Abuse(Abuse { category, strength }), words));
            }
        }

        let classes: Vec<Class> = lists.iter().map(|(c, _)| *c).collect();
        let borrowed: Vec<(usize, &[String])> = lists
            .iter()
            .enumerate()
            .map(|(i, (_, w))| (i, w.as_slice()))
            .collect();
        let matcher = WordMatcher::build(&borrowed)
            .map_err(|v| v.reason)?
            .ok_or("the lexicons are empty")?;

        let mut deletions: HashMap<u64, Vec<(u32, Class)>, BuildHasherDefault<Prehashed>> =
            HashMap::default();
        let mut forms = Vec::new();
        let mut exact = HashMap::default();
        let mut known = HashSet::default();
        let mut hashes = Vec::new();
        for (class, words) in &lists {
            for word in words {
                let open = word.ends_with('*');
                let normalized = normalize(word.trim_end_matches('*'));
                let folded = normalized.text.clone();
                if folded.is_empty() || folded.contains(' ') {
                    continue;
                }
                let mut variants = vec![folded.clone()];
                if open {
                    variants.extend(["s", "e", "es"].iter().map(|end| format!("{folded}{end}")));
                }
                for form in variants {
                    // Not the abusive words nor the ambiguous group names:
                    // a split must not make abuse out of an ordinary word.
                    if form.len() >= 3 && !matches!(class, Class::Abuse(_) | Class::WeakGroup(_)) {
                        known.insert(form.clone());
                    }
                    if matches!(class, Class::Group(_) | Class::Slur(_)) && form.len() >= 4 {
                        exact.entry(form.clone()).or_insert(*class);
                    }
                    // Misspellings are compared with doubled letters kept:
                    // `niger` is not one edit from `nigger` collapsed.
                    let form = expand_runs(&form, |i| {
                        if i < normalized.text.len() {
                            normalized.run(i)
                        } else {
                            1
                        }
                    });
                    if !fuzzy_class(*class) || form.len() < FUZZY_MIN_LEN {
                        continue;
                    }
                    let id = forms.len() as u32;
                    deletion_hashes(form.as_bytes(), &mut hashes);
                    for &hash in &hashes {
                        let candidates = deletions.entry(hash).or_default();
                        // A word with a doubled letter gives one hash twice.
                        if candidates.last() != Some(&(id, *class)) {
                            candidates.push((id, *class));
                        }
                    }
                    forms.push(form);
                }
            }
        }
        Ok(Lexicon {
            groups: groups.group,
            matcher,
            classes,
            deletions,
            forms,
            exact,
            known,
        })
    }

    /// Where to space words glued to a function word: byte positions in
    /// `text`, ascending. A word the lexicons know is left whole, and a
    /// split needs the other part to be a lexicon word too (or, after a
    /// function word, another one: `sontdes`), so `dessert` or `lesbienne`
    /// stay whole.
    fn glued(&self, text: &str) -> Vec<usize> {
        let mut at = Vec::new();
        let mut offset = 0;
        for word in text.split(' ') {
            if word.len() >= 4 && word.is_ascii() {
                let before = glue_before(word).iter().find(|p| {
                    word.strip_prefix(**p).is_some_and(|rest| {
                        // A two-letter word only before another function
                        // word (`nesont`, `dela`): `députés` is not `de putes`.
                        rest.len() >= 2
                            && (is_glue(rest) || (p.len() >= 3 && self.known.contains(rest)))
                    })
                });
                let after = || {
                    if !(word.ends_with("es") || word.ends_with("ux")) {
                        return None;
                    }
                    GLUE_AFTER.iter().find(|s| {
                        word.strip_suffix(**s)
                            .is_some_and(|head| head.len() >= 4 && self.known.contains(head))
                    })
                };
                let split = match before {
                    Some(p) => Some(p.len()),
                    None => after().map(|s| word.len() - s.len()),
                };
                if let Some(split) = split
                    && !self.known.contains(word)
                {
                    at.push(offset + split);
                }
            }
            offset += word.len() + 1;
        }
        at
    }

    /// Tags every word of `original`.
    pub fn tag(&self, original: &str) -> Tagged {
        self.tag_folded(original, Arc::new(normalize(original)))
    }

    /// [`tag`](Self::tag) with `original` already folded.
    pub fn tag_folded(&self, original: &str, folded: Arc<Normalized>) -> Tagged {
        let glued = self.glued(&folded.text);
        let folded = if glued.is_empty() {
            folded
        } else {
            Arc::new(folded.with_spaces_at(&glued))
        };
        let mut tagged = Tagged::default();
        let mut offset = 0;
        for word in folded.text.split(' ') {
            if !word.is_empty() {
                tagged.words.push((offset, offset + word.len()));
            }
            offset += word.len() + 1;
        }
        if !glued.is_empty() {
            // The k-th inserted space (at `glued[k] + k`) starts a word
            // that is the second half of the word before it.
            let mut index = 0;
            let mut inserted = 0;
            for &(start, _) in &tagged.words {
                let second_half = inserted < glued.len() && start == glued[inserted] + inserted + 1;
                if second_half {
                    inserted += 1;
                } else if !tagged.unspaced.is_empty() {
                    index += 1;
                }
                tagged.unspaced.push(index);
            }
        }
        // Clauses and sentences from the original text between two words.
        let (mut clause, mut sentence) = (0u16, 0u16);
        let mut previous_end = 0usize;
        let mut in_quotes = false;
        for (i, &(start, end)) in tagged.words.iter().enumerate() {
            let (s, e) = folded.original_span(start, end);
            // Two folded words can come from one character (a compatibility
            // decomposition): then there is no gap between them.
            let gap = original
                .get(previous_end..(s as usize).max(previous_end))
                .unwrap_or("");
            {
                for c in gap.chars() {
                    match c {
                        '«' | '“' => in_quotes = true,
                        '»' | '”' => in_quotes = false,
                        '"' => in_quotes = !in_quotes,
                        _ => {}
                    }
                }
            }
            tagged.quoted.push(in_quotes);
            if i > 0 {
                let word = &folded.text[start..end];
                if gap.contains(['.', '!', '?', '\n', '…']) {
                    if gap.contains('?') {
                        tagged.questions.push(clause);
                    }
                    clause += 1;
                    sentence += 1;
                } else if gap.contains([',', ';', ':', '(', ')', '«', '»', '"', '“', '”'])
                    || (matches!(
                        word,
                        "mais" | "et" | "but" | "and" | "car" | "because" | "parce"
                    ) && !restrictive_but(
                        &folded.text[tagged.words[i - 1].0..tagged.words[i - 1].1],
                        word,
                    ))
                {
                    clause += 1;
                }
            }
            tagged.clause.push(clause);
            tagged.sentence.push(sentence);
            previous_end = previous_end.max(e as usize);
        }
        if original
            .get(previous_end..)
            .is_some_and(|rest| rest.contains('?'))
        {
            tagged.questions.push(clause);
        }

        let starts: Vec<usize> = tagged.words.iter().map(|w| w.0).collect();
        let word_at = |byte: usize| starts.partition_point(|&s| s <= byte).saturating_sub(1);
        let mut tags = Vec::new();
        self.matcher.find(&folded, &mut |list, start, end, _| {
            tags.push(Tag {
                class: self.classes[list],
                first: word_at(start),
                last: word_at(end - 1),
                variant: false,
            });
        });
        tagged.folded = folded;
        tagged.original = original.to_owned();
        self.tag_variants(&tagged, &mut tags);
        tags.sort_by_key(|t| (t.first, t.last));
        tags.dedup();
        // Reported speech: the rest of the sentence after a quoting verb.
        for tag in tags.iter().filter(|t| t.class == Class::QuoteFrame) {
            let sentence = tagged.sentence[tag.first];
            for i in tag.last + 1..tagged.words.len() {
                if tagged.sentence[i] != sentence {
                    break;
                }
                tagged.quoted[i] = true;
            }
        }
        tagged.tags = tags;
        tagged
    }

    /// Misspelled long words, words split by a space and group names glued
    /// to their article.
    fn tag_variants(&self, tagged: &Tagged, tags: &mut Vec<Tag>) {
        let n = tagged.words.len();
        // Per word: whether a tag covers it (those found exactly and those
        // added here), so each word is looked at once.
        let mut covered = vec![false; n];
        for t in tags.iter() {
            covered[t.first..=t.last].fill(true);
        }
        let mut variant = |covered: &mut [bool], class, first, last| {
            covered[first..=last].fill(true);
            tags.push(Tag {
                class,
                first,
                last,
                variant: true,
            });
        };
        let (mut joined, mut expanded) = (String::new(), String::new());
        let mut hashes = Vec::new();
        for i in 0..n {
            if covered[i] {
                continue;
            }
            let word = tagged.word(i);
            // A word split in two or three (`mu sulmans`).
            for parts in 2..=3 {
                if i + parts > n || covered[i + 1..i + parts].contains(&true) {
                    break;
                }
                let lengths = (i..i + parts).map(|j| tagged.words[j].1 - tagged.words[j].0);
                let (total, shortest) =
                    lengths.fold((0, usize::MAX), |(t, s), l| (t + l, s.min(l)));
                if total < FUZZY_MIN_LEN || shortest > 5 {
                    continue;
                }
                joined.clear();
                for j in i..i + parts {
                    joined.push_str(tagged.word(j));
                }
                if let Some(&class) = self.exact.get(joined.as_str()) {
                    variant(&mut covered, class, i, i + parts - 1);
                    break;
                }
            }
            if covered[i] {
                continue;
            }
            // A group name glued to its article (`lesmusulmans`).
            if let Some(rest) = GLUED_PREFIXES
                .iter()
                .find_map(|p| word.strip_prefix(p).filter(|r| r.len() >= 4))
                && let Some(&class) = self.exact.get(rest)
            {
                variant(&mut covered, class, i, i);
                continue;
            }
            // One edit away from a long lexicon word; not for names
            // (a capital inside a sentence: `Niger`, `Touba`).
            let (start, _) = tagged.words[i];
            expand_runs_into(word, |j| tagged.folded.run(start + j), &mut expanded);
            if expanded.len() < FUZZY_MIN_LEN
                || word.bytes().any(|b| b.is_ascii_digit())
                || tagged.proper_noun(i)
            {
                continue;
            }
            if let Some(class) = self.misspelled(expanded.as_bytes(), &mut hashes) {
                variant(&mut covered, class, i, i);
            }
        }
    }

    fn misspelled(&self, word: &[u8], hashes: &mut Vec<u64>) -> Option<Class> {
        deletion_hashes(word, hashes);
        for hash in hashes.iter() {
            let Some(candidates) = self.deletions.get(hash) else {
                continue;
            };
            for &(id, class) in candidates {
                let form = self.forms[id as usize].as_bytes();
                // A slur flags on its own: only a swap or a changed letter.
                let same_length = form.len() == word.len();
                if within_one_edit(word, form) && (same_length || !matches!(class, Class::Slur(_)))
                {
                    return Some(class);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_deletion_hash_is_the_hash_of_the_word_without_that_letter() {
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for word in ["musulmans", "aa", "x", "parasites"] {
            deletion_hashes(word.as_bytes(), &mut with);
            assert_eq!(with.len(), word.len() + 1);
            for k in 0..word.len() {
                let mut shorter = word.as_bytes().to_vec();
                shorter.remove(k);
                deletion_hashes(&shorter, &mut without);
                assert_eq!(with[k + 1], without[0], "{word} without byte {k}");
            }
        }
        deletion_hashes(b"ab", &mut with);
        deletion_hashes(b"ba", &mut without);
        assert_ne!(with[0], without[0], "the order of letters counts");
    }

    #[test]
    fn one_edit_is_a_swap_a_drop_an_addition_or_a_change() {
        assert!(within_one_edit(b"musulmans", b"muslumans"));
        assert!(within_one_edit(b"musulmans", b"musulmns"));
        assert!(within_one_edit(b"musulmans", b"musulmanss"));
        assert!(within_one_edit(b"musulmans", b"musulmens"));
        assert!(!within_one_edit(b"musulmans", b"msulmns"));
        assert!(!within_one_edit(b"musulmans", b"umsulmasn"));
    }

    #[test]
    fn the_shipped_lexicons_compile() {
        let lexicon = &*LEXICON;
        assert!(lexicon.groups.len() >= 20, "{}", lexicon.groups.len());
    }
}
