//! A tenant's rules compiled for matching.
//!
//! Compilation does every expensive step once, when rules change: all word
//! lists of a tenant become one trie over normalised text (see `words.rs`),
//! all regexes become two `RegexSet`s (original and normalised text). Matching
//! a comment then costs time proportional to the comment, not to the number of
//! rules or words. A rule that does not compile never reaches a live set:
//! [`CompiledRules::compile`] fails as a whole and names the rule.

pub(crate) mod links;
pub(crate) mod structure;
pub(crate) mod words;

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use super::normalize::{Normalized, normalize};
use super::{Action, Findings};
use crate::domain::{FieldViolation, Reason, Rule, RuleAction, RuleKind, Span};

/// The rule pack every new tenant starts from (`rules/default.toml`).
pub const DEFAULT_PACK: &str = include_str!("../../../rules/default.toml");

/// Compiled size limit per regex (and per set): bounds memory and build time.
const REGEX_SIZE_LIMIT: usize = 2 * 1024 * 1024;
/// Reasons reported per rule; further matches still count (and are masked).
const MAX_REASONS_PER_RULE: usize = 5;

/// The identity and action of a compiled rule.
#[derive(Debug, Clone)]
struct RuleMeta {
    id: String,
    name: String,
    action: RuleAction,
    kind: &'static str,
}

struct RegexGroup {
    set: RegexSet,
    /// (index into `rules`, the same regex alone, for spans).
    members: Vec<(usize, Regex)>,
}

/// Rules ready to match; cheap to share (`Arc`) and immutable.
pub struct CompiledRules {
    rules: Vec<RuleMeta>,
    words: Option<words::WordMatcher>,
    regex_original: Option<RegexGroup>,
    regex_normalized: Option<RegexGroup>,
    links: Vec<(usize, links::LinksCheck)>,
    structure: Vec<(usize, structure::StructureCheck)>,
    rule_count: usize,
}

impl std::fmt::Debug for CompiledRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledRules")
            .field("rules", &self.rule_count)
            .finish()
    }
}

/// One match, before it is turned into a reason.
struct Hit<'a> {
    rule: usize,
    span: Option<Span>,
    detail: Detail<'a>,
}

/// What matched; formatted only for the hits that become reasons.
#[derive(PartialEq)]
enum Detail<'a> {
    Word(&'a str),
    Pattern,
    NormalizedPattern,
    Text(String),
}

impl std::fmt::Display for Detail<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Detail::Word(entry) => write!(f, "matched the word list entry {entry:?}"),
            Detail::Pattern => f.write_str("matched the pattern"),
            Detail::NormalizedPattern => f.write_str("matched the pattern on the normalised text"),
            Detail::Text(text) => f.write_str(text),
        }
    }
}

impl CompiledRules {
    pub fn empty() -> Self {
        CompiledRules {
            rules: Vec::new(),
            words: None,
            regex_original: None,
            regex_normalized: None,
            links: Vec::new(),
            structure: Vec::new(),
            rule_count: 0,
        }
    }

    /// Compiles the enabled rules; any invalid rule fails the whole set.
    pub fn compile(rules: &[Rule]) -> Result<Self, FieldViolation> {
        let mut compiled = CompiledRules::empty();
        let mut word_lists = Vec::new();
        let mut original = Vec::new();
        let mut normalized = Vec::new();
        for rule in rules {
            rule.validate()?;
            if !rule.enabled {
                continue;
            }
            let index = compiled.rules.len();
            compiled.rules.push(RuleMeta {
                id: rule.id.clone(),
                name: rule.name.clone(),
                action: rule.action.clone(),
                kind: rule.kind.name(),
            });
            match &rule.kind {
                RuleKind::Words { words } => word_lists.push((index, words.as_slice())),
                RuleKind::Regex {
                    pattern,
                    normalized: on_normalized,
                } => {
                    let regex = RegexBuilder::new(pattern)
                        .size_limit(REGEX_SIZE_LIMIT)
                        .dfa_size_limit(REGEX_SIZE_LIMIT)
                        .build()
                        .map_err(|e| {
                            FieldViolation::new(format!("rule {}: pattern", rule.id), e.to_string())
                        })?;
                    if *on_normalized {
                        normalized.push((index, regex));
                    } else {
                        original.push((index, regex));
                    }
                }
                RuleKind::Links { .. } => compiled
                    .links
                    .push((index, links::LinksCheck::new(&rule.kind))),
                RuleKind::Structure { .. } => compiled
                    .structure
                    .push((index, structure::StructureCheck::new(&rule.kind))),
            }
        }
        compiled.rule_count = compiled.rules.len();
        compiled.words = words::WordMatcher::build(&word_lists)?;
        compiled.regex_original = regex_group(original)?;
        compiled.regex_normalized = regex_group(normalized)?;
        Ok(compiled)
    }

    pub fn len(&self) -> usize {
        self.rule_count
    }

    pub fn is_empty(&self) -> bool {
        self.rule_count == 0
    }

    /// Matches `body` and records every finding.
    pub fn inspect(&self, body: &str, findings: &mut Findings) {
        if self.rules.is_empty() {
            return;
        }
        let needs_normalized = self.words.is_some() || self.regex_normalized.is_some();
        let folded = if needs_normalized {
            normalize(body)
        } else {
            Normalized::default()
        };
        let stats = if self.structure.is_empty() {
            structure::Stats::default()
        } else {
            structure::Stats::of(body)
        };
        self.inspect_folded(body, &folded, &stats, findings);
    }

    /// [`inspect`](Self::inspect) with `body` already folded and measured
    /// (`folded` must be `normalize(body)` and `stats` `Stats::of(body)`: the
    /// pipeline shares the spam features' copies).
    pub(crate) fn inspect_folded(
        &self,
        body: &str,
        folded: &Normalized,
        stats: &structure::Stats,
        findings: &mut Findings,
    ) {
        if self.rules.is_empty() {
            return;
        }
        let mut hits = Vec::new();
        if let Some(words) = &self.words {
            words.find(folded, &mut |rule, start, end, entry| {
                let (s, e) = folded.original_span(start, end);
                hits.push(Hit {
                    rule,
                    span: Some(Span { start: s, end: e }),
                    detail: Detail::Word(entry),
                });
            });
        }
        if let Some(group) = &self.regex_original {
            regex_hits(group, body, &mut |rule, s, e| {
                hits.push(Hit {
                    rule,
                    span: Some(Span {
                        start: s as u32,
                        end: e as u32,
                    }),
                    detail: Detail::Pattern,
                })
            });
        }
        if let Some(group) = &self.regex_normalized {
            regex_hits(group, &folded.text, &mut |rule, s, e| {
                let (s, e) = folded.original_span(s, e);
                hits.push(Hit {
                    rule,
                    span: Some(Span { start: s, end: e }),
                    detail: Detail::NormalizedPattern,
                })
            });
        }
        if !self.links.is_empty() {
            let found = links::find_links(body);
            for (rule, check) in &self.links {
                check.check(&found, &mut |span, detail| {
                    hits.push(Hit {
                        rule: *rule,
                        span,
                        detail: Detail::Text(detail),
                    })
                });
            }
        }
        if !self.structure.is_empty() {
            for (rule, check) in &self.structure {
                check.check(stats, &mut |detail| {
                    hits.push(Hit {
                        rule: *rule,
                        span: None,
                        detail: Detail::Text(detail),
                    })
                });
            }
        }
        self.record(hits, findings);
    }

    /// Turns hits into reasons and actions: one score contribution per rule,
    /// at most a few reasons per rule, every masked span.
    fn record(&self, mut hits: Vec<Hit<'_>>, findings: &mut Findings) {
        hits.sort_by_key(|h| (h.rule, h.span.map(|s| (s.start, s.end))));
        // The same match found twice (an entry and its leetspeak variant).
        hits.dedup_by(|a, b| a.rule == b.rule && a.span == b.span && a.detail == b.detail);
        let mut last_rule = usize::MAX;
        let mut reported = 0;
        for hit in hits {
            let meta = &self.rules[hit.rule];
            let first_of_rule = hit.rule != last_rule;
            if first_of_rule {
                last_rule = hit.rule;
                reported = 0;
            }
            if let (RuleAction::Mask, Some(span)) = (&meta.action, hit.span) {
                findings.masks.push(span);
            }
            if reported == MAX_REASONS_PER_RULE {
                continue;
            }
            reported += 1;
            let mut reason = Reason::new(
                format!("rule.{}", meta.kind),
                format!("{}: {}", meta.name, hit.detail),
            );
            reason.rule_id = meta.id.clone();
            reason.rule_name = meta.name.clone();
            reason.action = meta.action.name().to_owned();
            reason.span = hit.span;
            match &meta.action {
                RuleAction::Reject => findings.require(Action::Reject, reason),
                RuleAction::Review => findings.require(Action::Review, reason),
                RuleAction::Score { weight } => {
                    if first_of_rule {
                        reason.score = Some(*weight);
                        findings.add_score(*weight);
                    }
                    findings.note(reason);
                }
                RuleAction::Tag { label } => {
                    reason.message = format!("[{label}] {}", reason.message);
                    findings.note(reason);
                }
                RuleAction::Mask => findings.note(reason),
            }
        }
    }
}

fn regex_group(members: Vec<(usize, Regex)>) -> Result<Option<RegexGroup>, FieldViolation> {
    if members.is_empty() {
        return Ok(None);
    }
    let set = RegexSetBuilder::new(members.iter().map(|(_, r)| r.as_str()))
        .size_limit(REGEX_SIZE_LIMIT * 8)
        .dfa_size_limit(REGEX_SIZE_LIMIT * 8)
        .build()
        .map_err(|e| {
            FieldViolation::new(
                "rules",
                format!("the regex rules together are too large: {e}"),
            )
        })?;
    Ok(Some(RegexGroup { set, members }))
}

fn regex_hits(group: &RegexGroup, text: &str, hit: &mut dyn FnMut(usize, usize, usize)) {
    for index in group.set.matches(text).iter() {
        let (rule, regex) = &group.members[index];
        for m in regex.find_iter(text).take(MAX_REASONS_PER_RULE * 4) {
            if m.start() < m.end() {
                hit(*rule, m.start(), m.end());
            }
        }
    }
}

#[cfg(test)]
mod tests;
