//! Publisher rules: what a tenant asks the pipeline to look for, and what to do
//! when it is found. This is the stored and exchanged form (TOML files, the
//! API, the database); `pipeline::rules` compiles it for matching.
//! [`plan_rule_change`] decides which revision each write of a change gets,
//! or why the change cannot apply; the backends only run the writes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::FieldViolation;

/// Longest accepted regex pattern, in bytes, before compilation limits apply.
pub const MAX_PATTERN_BYTES: usize = 4_096;
/// Most entries in one word list.
pub const MAX_WORDS: usize = 200_000;
/// Longest word-list entry (a word or a phrase), in characters.
pub const MAX_WORD_CHARS: usize = 200;
/// Longest rule description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1_000;
/// Most domains in one links rule's deny or allow list.
pub const MAX_DOMAINS: usize = 10_000;
/// Most rules one tenant may have: each is matched against every comment.
pub const MAX_RULES_PER_TENANT: usize = 500;
/// Most word-list entries over all of one tenant's rules: they are compiled
/// into the tenant's matchers, which every replica holds in memory.
pub const MAX_TENANT_WORDS: usize = 1_000_000;

/// Refuses a tenant's rule set (as it would be after a change) that is
/// larger than a tenant may have; the change that would make it so is
/// refused, the rules already stored stay.
pub fn check_rule_set(rules: &[Rule]) -> Result<(), FieldViolation> {
    if rules.len() > MAX_RULES_PER_TENANT {
        return Err(FieldViolation::new(
            "rule",
            format!(
                "a tenant has at most {MAX_RULES_PER_TENANT} rules; this change would make {}",
                rules.len()
            ),
        ));
    }
    let words: usize = rules
        .iter()
        .map(|r| match &r.kind {
            RuleKind::Words { words } => words.len(),
            _ => 0,
        })
        .sum();
    if words > MAX_TENANT_WORDS {
        return Err(FieldViolation::new(
            "rule.words",
            format!(
                "a tenant's word lists hold at most {MAX_TENANT_WORDS} entries in all; this change would make {words}"
            ),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Stable id chosen by the publisher: `a-z 0-9 . _ -`, at most 64 characters.
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    #[serde(flatten)]
    pub action: RuleAction,
    #[serde(flatten)]
    pub kind: RuleKind,
}

fn enabled_by_default() -> bool {
    true
}

/// What happens when a rule matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RuleAction {
    /// Refuse the comment.
    Reject,
    /// Hold it for a moderator.
    Review,
    /// Add `weight` (0–1] to the spam score.
    Score { weight: f64 },
    /// Attach `label` to the reasons only.
    Tag { label: String },
    /// Publish the body with each match replaced by `***`.
    Mask,
}

impl RuleAction {
    pub fn name(&self) -> &'static str {
        match self {
            RuleAction::Reject => "reject",
            RuleAction::Review => "review",
            RuleAction::Score { .. } => "score",
            RuleAction::Tag { .. } => "tag",
            RuleAction::Mask => "mask",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleKind {
    /// Whole words or phrases, matched on the normalised text. A leading or
    /// trailing `*` makes an entry a suffix or prefix (`connard*`).
    Words { words: Vec<String> },
    /// A Rust `regex` pattern, on the original text or on the normalised one.
    Regex {
        pattern: String,
        #[serde(default)]
        normalized: bool,
    },
    /// Links: how many, to which domains (subdomains included), shorteners.
    Links {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_links: Option<u32>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        deny_domains: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        allow_domains: Vec<String>,
        #[serde(default)]
        shorteners: bool,
    },
    /// Shape of the text.
    Structure {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_chars: Option<u32>,
        /// Share of upper-case letters, checked once the text has `min_letters` letters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_caps_ratio: Option<f64>,
        #[serde(default = "default_min_letters")]
        min_letters: u32,
        /// Longest run of one repeated character.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_repeated_chars: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_emoji: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_lines: Option<u32>,
    },
}

fn default_min_letters() -> u32 {
    12
}

impl RuleKind {
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::Words { .. } => "words",
            RuleKind::Regex { .. } => "regex",
            RuleKind::Links { .. } => "links",
            RuleKind::Structure { .. } => "structure",
        }
    }
}

impl Rule {
    /// Checks what can be checked without compiling: ids, names, weights,
    /// non-empty lists, limits that make sense. Regexes are checked when compiled.
    pub fn validate(&self) -> Result<(), FieldViolation> {
        let field = |f: &str| format!("rule {}: {f}", self.id);
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self.id.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if !id_ok {
            return Err(FieldViolation::new(
                "rule.id",
                format!(
                    "{:?} must be 1 to 64 characters of a-z, 0-9, '.', '_' or '-'",
                    self.id
                ),
            ));
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err(FieldViolation::new(
                field("name"),
                "is required (at most 200 characters)",
            ));
        }
        if self.description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(FieldViolation::new(
                field("description"),
                format!("is longer than {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        match &self.action {
            RuleAction::Score { weight } if !(*weight > 0.0 && *weight <= 1.0) => {
                return Err(FieldViolation::new(
                    field("weight"),
                    "must be in (0, 1] for a score rule",
                ));
            }
            RuleAction::Tag { label } if label.trim().is_empty() || label.len() > 64 => {
                return Err(FieldViolation::new(
                    field("label"),
                    "is required for a tag rule (at most 64 bytes)",
                ));
            }
            RuleAction::Mask if matches!(self.kind, RuleKind::Structure { .. }) => {
                return Err(FieldViolation::new(
                    field("action"),
                    "mask needs a rule that matches text (words, regex, links)",
                ));
            }
            _ => {}
        }
        match &self.kind {
            RuleKind::Words { words } => {
                if words.iter().all(|w| w.trim_matches(['*', ' ']).is_empty()) {
                    return Err(FieldViolation::new(
                        field("words"),
                        "must hold at least one word",
                    ));
                }
                if words.len() > MAX_WORDS {
                    return Err(FieldViolation::new(
                        field("words"),
                        format!("holds more than {MAX_WORDS} entries"),
                    ));
                }
                if let Some(long) = words.iter().find(|w| w.chars().count() > MAX_WORD_CHARS) {
                    return Err(FieldViolation::new(
                        field("words"),
                        format!(
                            "an entry is longer than {MAX_WORD_CHARS} characters ({}…)",
                            long.chars().take(20).collect::<String>()
                        ),
                    ));
                }
            }
            RuleKind::Regex { pattern, .. } => {
                if pattern.is_empty() {
                    return Err(FieldViolation::new(field("pattern"), "is required"));
                }
                if pattern.len() > MAX_PATTERN_BYTES {
                    return Err(FieldViolation::new(
                        field("pattern"),
                        format!("is longer than {MAX_PATTERN_BYTES} bytes"),
                    ));
                }
            }
            RuleKind::Links {
                max_links,
                deny_domains,
                allow_domains,
                shorteners,
            } => {
                if max_links.is_none()
                    && deny_domains.is_empty()
                    && allow_domains.is_empty()
                    && !shorteners
                {
                    return Err(FieldViolation::new(
                        field("links"),
                        "needs max_links, deny_domains, allow_domains or shorteners",
                    ));
                }
                if deny_domains.len().max(allow_domains.len()) > MAX_DOMAINS {
                    return Err(FieldViolation::new(
                        field("domains"),
                        format!("a list holds more than {MAX_DOMAINS} domains"),
                    ));
                }
                for domain in deny_domains.iter().chain(allow_domains) {
                    let ok = !domain.is_empty()
                        && domain.len() <= 253
                        && domain.contains('.')
                        && domain
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
                    if !ok {
                        return Err(FieldViolation::new(
                            field("domains"),
                            format!("{domain:?} is not a domain name"),
                        ));
                    }
                }
            }
            RuleKind::Structure {
                max_chars,
                max_caps_ratio,
                max_repeated_chars,
                max_emoji,
                max_lines,
                ..
            } => {
                if max_chars.is_none()
                    && max_caps_ratio.is_none()
                    && max_repeated_chars.is_none()
                    && max_emoji.is_none()
                    && max_lines.is_none()
                {
                    return Err(FieldViolation::new(
                        field("structure"),
                        "needs at least one limit",
                    ));
                }
                if let Some(r) = max_caps_ratio
                    && !(0.0..=1.0).contains(r)
                {
                    return Err(FieldViolation::new(
                        field("max_caps_ratio"),
                        "must be between 0 and 1",
                    ));
                }
                if max_repeated_chars == &Some(0) {
                    return Err(FieldViolation::new(
                        field("max_repeated_chars"),
                        "must be at least 1",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A rule file: `[[rule]]` tables, as read by `moderato rules import`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleFile {
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
}

impl RuleFile {
    pub fn from_toml(text: &str) -> Result<Self, FieldViolation> {
        toml::from_str(text).map_err(|e| FieldViolation::new("file", e.to_string()))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("rules serialise to TOML")
    }
}

/// A change to a tenant's rules, applied atomically with its history rows,
/// its audit rows and a bump of the tenant's rules version.
#[derive(Debug, Clone)]
pub enum RuleChange {
    Create(Rule),
    /// `expected_revision`: refuse the update unless the rule is at it.
    Update {
        rule: Rule,
        expected_revision: Option<i64>,
    },
    Delete {
        rule_id: String,
    },
    /// Upserts every rule; with `replace`, also deletes the rules not listed.
    Import {
        rules: Vec<Rule>,
        replace: bool,
    },
}

/// Why a rule change was not applied (nothing was).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleRejection {
    AlreadyExists(String),
    NotFound(String),
    RevisionMismatch { rule_id: String, current: i64 },
}

/// One write a rule change makes.
pub(crate) enum RuleStep<'a> {
    Put {
        rule: &'a Rule,
        revision: i64,
        /// `None` for a new rule.
        create_time: Option<DateTime<Utc>>,
    },
    Delete {
        rule_id: String,
        revision: i64,
    },
}

impl RuleStep<'_> {
    /// The `rule_revisions` row: id, revision, definition (`None` = deleted).
    pub(crate) fn history(&self) -> (&str, i64, Option<&Rule>) {
        match self {
            RuleStep::Put { rule, revision, .. } => (&rule.id, *revision, Some(rule)),
            RuleStep::Delete { rule_id, revision } => (rule_id, *revision, None),
        }
    }
}

/// Decides the writes of `change` given the stored `(revision, create_time)`
/// of each rule id, or why it cannot apply. Shared by both backends.
pub(crate) fn plan_rule_change<'a>(
    change: &'a RuleChange,
    existing: &std::collections::HashMap<String, (i64, DateTime<Utc>)>,
) -> Result<Vec<RuleStep<'a>>, RuleRejection> {
    match change {
        RuleChange::Create(rule) => {
            if existing.contains_key(&rule.id) {
                return Err(RuleRejection::AlreadyExists(rule.id.clone()));
            }
            Ok(vec![RuleStep::Put {
                rule,
                revision: 1,
                create_time: None,
            }])
        }
        RuleChange::Update {
            rule,
            expected_revision,
        } => {
            let Some(&(current, created)) = existing.get(&rule.id) else {
                return Err(RuleRejection::NotFound(rule.id.clone()));
            };
            if expected_revision.is_some_and(|expected| expected != current) {
                return Err(RuleRejection::RevisionMismatch {
                    rule_id: rule.id.clone(),
                    current,
                });
            }
            Ok(vec![RuleStep::Put {
                rule,
                revision: current + 1,
                create_time: Some(created),
            }])
        }
        RuleChange::Delete { rule_id } => {
            let Some(&(current, _)) = existing.get(rule_id) else {
                return Err(RuleRejection::NotFound(rule_id.clone()));
            };
            Ok(vec![RuleStep::Delete {
                rule_id: rule_id.clone(),
                revision: current + 1,
            }])
        }
        RuleChange::Import { rules, replace } => {
            let mut steps: Vec<RuleStep<'a>> = rules
                .iter()
                .map(|rule| match existing.get(&rule.id) {
                    Some(&(current, created)) => RuleStep::Put {
                        rule,
                        revision: current + 1,
                        create_time: Some(created),
                    },
                    None => RuleStep::Put {
                        rule,
                        revision: 1,
                        create_time: None,
                    },
                })
                .collect();
            if *replace {
                let listed: std::collections::HashSet<&str> =
                    rules.iter().map(|r| r.id.as_str()).collect();
                let mut doomed: Vec<_> = existing
                    .iter()
                    .filter(|(id, _)| !listed.contains(id.as_str()))
                    .map(|(id, (current, _))| RuleStep::Delete {
                        rule_id: id.clone(),
                        revision: current + 1,
                    })
                    .collect();
                doomed.sort_by(|a, b| a.history().0.cmp(b.history().0));
                steps.extend(doomed);
            }
            Ok(steps)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_files_round_trip() {
        let text = r#"
[[rule]]
id = "fr-insults"
name = "Insultes"
action = "reject"
kind = "words"
words = ["connard", "salope"]

[[rule]]
id = "spam-phrases"
name = "Phrases de spam"
action = "score"
weight = 0.4
kind = "regex"
pattern = "(?i)gagne[rz] de l'argent"

[[rule]]
id = "links"
name = "Raccourcisseurs"
action = "tag"
label = "shortener"
kind = "links"
shorteners = true
"#;
        let file = RuleFile::from_toml(text).unwrap();
        assert_eq!(file.rules.len(), 3);
        assert_eq!(file.rules[1].action, RuleAction::Score { weight: 0.4 });
        assert!(file.rules.iter().all(|r| r.enabled && r.validate().is_ok()));
        let again = RuleFile::from_toml(&file.to_toml()).unwrap();
        assert_eq!(again, file);
        let json = serde_json::to_string(&file.rules[0]).unwrap();
        assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), file.rules[0]);
    }

    fn words_rule(id: usize, words: usize) -> Rule {
        Rule {
            id: format!("r{id}"),
            name: format!("Règle {id}"),
            description: String::new(),
            enabled: true,
            action: RuleAction::Review,
            kind: RuleKind::Words {
                words: (0..words).map(|w| format!("mot{w}")).collect(),
            },
        }
    }

    #[test]
    fn every_part_of_a_rule_is_bounded() {
        let mut rule = words_rule(1, 1);
        rule.description = "d".repeat(MAX_DESCRIPTION_CHARS + 1);
        assert!(rule.validate().unwrap_err().field.ends_with("description"));

        let mut rule = words_rule(1, 1);
        rule.kind = RuleKind::Words {
            words: vec!["mot".into(), "é".repeat(MAX_WORD_CHARS + 1)],
        };
        assert!(rule.validate().unwrap_err().field.ends_with("words"));
        rule.kind = RuleKind::Words {
            words: vec!["é".repeat(MAX_WORD_CHARS)],
        };
        assert_eq!(rule.validate(), Ok(()), "accented characters count once");

        let links = |n: usize| RuleKind::Links {
            max_links: None,
            deny_domains: (0..n).map(|i| format!("d{i}.example")).collect(),
            allow_domains: Vec::new(),
            shorteners: false,
        };
        let mut rule = words_rule(1, 1);
        rule.kind = links(MAX_DOMAINS);
        assert_eq!(rule.validate(), Ok(()));
        rule.kind = links(MAX_DOMAINS + 1);
        assert!(rule.validate().unwrap_err().field.ends_with("domains"));
    }

    #[test]
    fn a_tenant_has_a_bounded_number_of_rules_and_words() {
        let most: Vec<Rule> = (0..MAX_RULES_PER_TENANT)
            .map(|i| words_rule(i, 1))
            .collect();
        assert_eq!(check_rule_set(&most), Ok(()));
        let mut one_more = most;
        one_more.push(words_rule(MAX_RULES_PER_TENANT, 1));
        assert_eq!(check_rule_set(&one_more).unwrap_err().field, "rule");

        let per_rule = MAX_TENANT_WORDS / 5;
        let full: Vec<Rule> = (0..5).map(|i| words_rule(i, per_rule)).collect();
        assert_eq!(check_rule_set(&full), Ok(()));
        let mut over = full;
        over.push(words_rule(5, 1));
        assert_eq!(check_rule_set(&over).unwrap_err().field, "rule.words");
    }

    #[test]
    fn invalid_rules_name_the_problem() {
        let mut rule = Rule {
            id: "empty".into(),
            name: "Vide".into(),
            description: String::new(),
            enabled: true,
            action: RuleAction::Reject,
            kind: RuleKind::Words {
                words: vec![" ".into()],
            },
        };
        assert!(rule.validate().unwrap_err().field.contains("words"));
        rule.kind = RuleKind::Words {
            words: vec!["ok".into()],
        };
        rule.action = RuleAction::Score { weight: 2.0 };
        assert!(rule.validate().unwrap_err().field.contains("weight"));
        rule.id = "Bad Id".into();
        assert_eq!(rule.validate().unwrap_err().field, "rule.id");
    }
}
