//! How a comment's reasons are stored: codes, spans, scores and the numbers
//! their messages print, not the rendered English sentences.
//!
//! Why: the sentences were two thirds of a comment's row (953 of 1,248
//! bytes on Postgres, BENCHMARKS.md), written and compressed on every
//! submission and read back rarely. A message is split into a template,
//! the sentence with each number replaced by `{}`, and the numbers as
//! printed; a template in [`TEMPLATES`] is stored as its index, so the
//! message is rendered again, byte for byte, when the comment is read.
//! Anything else (a moderator's note, a rule's matched text, a template a
//! newer release added) is stored as written. The element keeps its
//! `code` key under that name, so the queue's filter by reason code reads
//! old and new rows alike; rows written before this format (an object with
//! a `message`) are read as they are.
//!
//! `TEMPLATES` only grows: stored rows refer to its indexes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::domain::{Reason, Span};

use super::StoreError;

/// Message templates, one per line; the line number (from 0) is what rows
/// store. Append only.
const TEMPLATES: &str = include_str!("reason_templates.txt");

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| Catalog::new(TEMPLATES));

struct Catalog {
    templates: Vec<&'static str>,
    index: HashMap<&'static str, u32>,
}

impl Catalog {
    fn new(text: &'static str) -> Self {
        let templates: Vec<&'static str> = text.lines().collect();
        let index = templates
            .iter()
            .enumerate()
            .map(|(i, t)| (*t, i as u32))
            .collect();
        Catalog { templates, index }
    }
}

/// One stored reason.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    code: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<[u32; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<[u32; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<f64>,
    #[serde(default, skip_serializing_if = "str::is_empty")]
    a: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "str::is_empty")]
    r: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "str::is_empty")]
    n: Cow<'a, str>,
    /// The message begins with the rule's name and `": "` (rules' reasons).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    h: bool,
    /// A template's index followed by its numbers, as printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    g: Option<(u32, Vec<Cow<'a, str>>)>,
    /// The message, when it has no template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<Cow<'a, str>>,
}

/// An element as stored before this format, or as it is now.
#[derive(Deserialize)]
#[serde(untagged)]
enum Element<'a> {
    Rendered(Reason),
    #[serde(borrow)]
    Compact(Stored<'a>),
}

/// The reasons as stored (a JSON array).
pub fn encode(reasons: &[Reason]) -> String {
    let stored: Vec<Stored<'_>> = reasons.iter().map(compact).collect();
    serde_json::to_string(&stored).expect("reasons serialise")
}

/// The reasons of a stored array, of either format.
pub fn decode(json: &str) -> Result<Vec<Reason>, StoreError> {
    let elements: Vec<Element<'_>> = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("stored reasons: {e}")))?;
    elements
        .into_iter()
        .map(|element| match element {
            Element::Rendered(reason) => Ok(reason),
            Element::Compact(stored) => expand(stored),
        })
        .collect()
}

fn compact(reason: &Reason) -> Stored<'_> {
    // Rules' messages begin with the rule's name, stored beside them.
    let after_name = (!reason.rule_name.is_empty())
        .then(|| reason.message.strip_prefix(reason.rule_name.as_str()))
        .flatten()
        .and_then(|rest| rest.strip_prefix(": "));
    let h = after_name.is_some();
    let message = after_name.unwrap_or(&reason.message);
    let (g, m) = match template_of(message) {
        Some((index, numbers)) => (
            Some((index, numbers.into_iter().map(Into::into).collect())),
            None,
        ),
        None => (None, Some(message.into())),
    };
    Stored {
        code: reason.code.as_str().into(),
        s: reason.span.map(|s| [s.start, s.end]),
        t: reason.target.map(|s| [s.start, s.end]),
        p: reason.score,
        a: reason.action.as_str().into(),
        r: reason.rule_id.as_str().into(),
        n: reason.rule_name.as_str().into(),
        h,
        g,
        m,
    }
}

fn expand(stored: Stored<'_>) -> Result<Reason, StoreError> {
    let body = match (stored.g, stored.m) {
        (Some((index, numbers)), None) => render(index, &numbers)?,
        (None, Some(message)) => message.into_owned(),
        _ => {
            return Err(StoreError::Corrupt(
                "a stored reason without its message".into(),
            ));
        }
    };
    let message = if stored.h {
        format!("{}: {body}", stored.n)
    } else {
        body
    };
    let span = |s: Option<[u32; 2]>| s.map(|[start, end]| Span { start, end });
    Ok(Reason {
        code: stored.code.into_owned(),
        rule_id: stored.r.into_owned(),
        rule_name: stored.n.into_owned(),
        action: stored.a.into_owned(),
        message,
        span: span(stored.s),
        target: span(stored.t),
        score: stored.p,
    })
}

/// The catalog index of `message`'s template and its numbers, when the
/// template is in the catalog.
fn template_of(message: &str) -> Option<(u32, Vec<&str>)> {
    let (template, numbers) = split(message)?;
    let index = *CATALOG.index.get(template.as_str())?;
    Some((index, numbers))
}

/// `message` with each number and each quoted text replaced by `{}`, and
/// those parameters; `None` when the message itself holds a brace (it could
/// not be told apart) or a backslash (an escaped quote).
fn split(message: &str) -> Option<(String, Vec<&str>)> {
    if message.contains(['{', '}', '\\']) {
        return None;
    }
    let bytes = message.as_bytes();
    let (mut template, mut numbers) = (String::with_capacity(message.len()), Vec::new());
    let (mut i, mut copied) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b'"' {
            // A quoted entry (`{:?}` of a word-list entry): its text is a
            // parameter.
            if let Some(len) = message[i + 1..].find('"') {
                template.push_str(&message[copied..=i]);
                template.push_str("{}\"");
                numbers.push(&message[i + 1..i + 1 + len]);
                i += len + 2;
                copied = i;
                continue;
            }
        }
        let signed = matches!(bytes[i], b'+' | b'-')
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
            && (i == 0 || matches!(bytes[i - 1], b' ' | b'('));
        if !(signed || bytes[i].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let start = i;
        i += usize::from(signed);
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
        template.push_str(&message[copied..start]);
        template.push_str("{}");
        numbers.push(&message[start..i]);
        copied = i;
    }
    template.push_str(&message[copied..]);
    Some((template, numbers))
}

fn render(index: u32, numbers: &[Cow<'_, str>]) -> Result<String, StoreError> {
    let Some(template) = CATALOG.templates.get(index as usize) else {
        // Written by a newer release: its numbers are all this one knows.
        return Ok(format!(
            "(message {index} of a newer release: {})",
            numbers.join(", ")
        ));
    };
    let mut parts = template.split("{}");
    let mut out = String::with_capacity(template.len() + 8 * numbers.len());
    out.push_str(parts.next().unwrap_or_default());
    let mut numbers = numbers.iter();
    for part in parts {
        let number = numbers
            .next()
            .ok_or_else(|| StoreError::Corrupt(format!("template {index}: too few numbers")))?;
        out.push_str(number);
        out.push_str(part);
    }
    if numbers.next().is_some() {
        return Err(StoreError::Corrupt(format!(
            "template {index}: too many numbers"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(code: &str, message: &str) -> Reason {
        Reason::new(code, message)
    }

    #[test]
    fn numbers_are_split_out_exactly() {
        let (template, numbers) =
            split("spam probability 0.03: words -2.58, signals +0.00 (bias -1.36)").unwrap();
        assert_eq!(
            template,
            "spam probability {}: words {}, signals {} (bias {})"
        );
        assert_eq!(numbers, ["0.03", "-2.58", "+0.00", "-1.36"]);
        // A hyphen inside a word is not a sign; a trailing dot is not a decimal point.
        let (template, numbers) = split("an e-mail to reader-12 at 3.").unwrap();
        assert_eq!(template, "an e-mail to reader-{} at {}.");
        assert_eq!(numbers, ["12", "3"]);
        let (template, numbers) = split(r#"matched the word list entry "sale 2 x""#).unwrap();
        assert_eq!(template, r#"matched the word list entry "{}""#);
        assert_eq!(numbers, ["sale 2 x"]);
        assert_eq!(split(r#"entry "a\"b""#), None, "escaped: as written");
        let (template, numbers) = split(r#"an "unclosed quote 1"#).unwrap();
        assert_eq!(template, r#"an "unclosed quote {}"#);
        assert_eq!(numbers, ["1"]);
        assert_eq!(split("a {brace}"), None);
    }

    #[test]
    fn every_reason_reads_back_as_written() {
        let mut rule = reason("rule.words", "Insultes: matched \u{ab}con\u{bb} 3 times");
        rule.rule_id = "insults".into();
        rule.rule_name = "Insultes".into();
        rule.action = "reject".into();
        rule.span = Some(Span { start: 4, end: 7 });
        rule.score = Some(0.35);
        let mut hate = reason("hate.dehumanisation", "not in any catalog (+1.00)");
        hate.target = Some(Span { start: 0, end: 3 });
        let reasons = vec![
            Reason {
                score: Some(0.025373941527481),
                ..reason(
                    "spam.classifier",
                    "spam probability 0.03: words -2.58, signals +0.00, author history +0.30 \
                     (log-odds, with bias -1.36)",
                )
            },
            reason("spam.word", "this word points to spam (+0.80 log-odds)"),
            reason("review.decision", "rejected by key:ab12 (off_topic)"),
            reason(
                "pipeline.clean",
                "no filter objected; published under post-moderation",
            ),
            reason("x", ""),
            reason("x", "{}"),
            rule,
            hate,
        ];
        let stored = encode(&reasons);
        assert_eq!(decode(&stored).unwrap(), reasons);
        assert!(
            !stored.contains("this word points"),
            "a known template is stored by index: {stored}"
        );
    }

    #[test]
    fn rows_written_before_the_compact_format_read_as_before() {
        let old = r#"[{"code": "spam.word", "span": {"end": 6, "start": 0}, "score": 0.5,
            "message": "this word points to spam (+0.80 log-odds)"},
            {"code": "rule.regex", "action": "score", "message": "Liens: matched the pattern",
             "rule_id": "links", "rule_name": "Liens"}]"#;
        let reasons = decode(old).unwrap();
        assert_eq!(
            reasons[0].message,
            "this word points to spam (+0.80 log-odds)"
        );
        assert_eq!(reasons[0].span, Some(Span { start: 0, end: 6 }));
        assert_eq!(reasons[1].rule_name, "Liens");
        assert_eq!(decode(&encode(&reasons)).unwrap(), reasons);
    }

    #[test]
    fn a_damaged_row_is_an_error_not_a_guess() {
        assert!(decode(r#"[{"code": "x"}]"#).is_err(), "no message");
        let with_numbers = CATALOG
            .templates
            .iter()
            .position(|t| t.contains("{}"))
            .expect("templates print numbers");
        let short = format!(r#"[{{"code": "x", "g": [{with_numbers}, []]}}]"#);
        assert!(decode(&short).is_err(), "too few numbers");
        let long = format!(
            r#"[{{"code": "x", "g": [{with_numbers}, ["1", "2", "3", "4", "5", "6", "7"]]}}]"#
        );
        assert!(decode(&long).is_err(), "too many numbers");
        assert!(decode("not json").is_err());
    }

    #[test]
    fn the_catalog_has_no_duplicates_and_no_blank_lines() {
        assert_eq!(CATALOG.index.len(), CATALOG.templates.len());
        assert!(CATALOG.templates.iter().all(|t| !t.trim().is_empty()));
    }

    /// Every message the pipeline writes for the functional suite, the
    /// fixtures and the benchmark mix, under each standing and both modes,
    /// is stored by template (but hate findings, which name a group): a
    /// message reworded without its template would silently go back to full
    /// sentences.
    #[test]
    fn every_pipeline_message_has_a_template() {
        use crate::domain::{
            ArticleId, AuthorId, AuthorStanding, CommentBody, DisplayName, ModerationMode,
            NewComment, RuleFile, StandingTerm, TenantName, TenantSettings,
        };
        use crate::pipeline::{CompiledRules, Pipeline, rules, spam, toxicity};

        toxicity::model::init().expect("the toxicity seed loads");
        let pack = RuleFile::from_toml(rules::DEFAULT_PACK).expect("the default pack parses");
        let compiled = CompiledRules::compile(&pack.rules).expect("the default pack compiles");
        let mut texts: Vec<String> =
            crate::evaluation::suite::expand(include_str!("../../tests/functional/hate.toml"))
                .expect("the suite expands")
                .into_iter()
                .map(|case| case.text)
                .collect();
        for csv in [
            include_str!("../../tests/fixtures/labelled.csv"),
            include_str!("../../tests/fixtures/toxic.csv"),
        ] {
            texts.extend(csv.lines().skip(1).map(str::to_owned));
        }
        let mix: serde_json::Value =
            serde_json::from_str(include_str!("../../bench/ghz/submit_comment.json"))
                .expect("the mix parses");
        for d in mix["d"].as_array().expect("a list of requests") {
            texts.push(
                d["body"]
                    .as_str()
                    .expect("a body")
                    .replace("{{randomString 6}}", "x7Yb2Q"),
            );
        }
        let now = chrono::Utc::now();
        let mut history = spam::AuthorHistory {
            known: true,
            ..spam::AuthorHistory::default()
        };
        history.same_text_by_others = 3;
        let histories = [
            spam::AuthorHistory::unknown(),
            spam::AuthorHistory {
                known: true,
                ..Default::default()
            },
            history,
        ];
        let mut missing = std::collections::BTreeSet::new();
        let settings = TenantSettings::defaults(&TenantName::parse("t").expect("a valid name"));
        for (i, text) in texts.iter().enumerate() {
            let Ok(body) = CommentBody::parse("b", text.clone()) else {
                continue;
            };
            let comment = NewComment {
                article_id: ArticleId::parse("a", "budget-2027".into()).expect("valid"),
                author_id: AuthorId::parse("a", "reader-1".into()).expect("valid"),
                body,
                client_comment_id: None,
                author_display_name: DisplayName::parse("d", String::new()).expect("valid"),
                author_ip: None,
                parent_comment_id: None,
                language: None,
            };
            let standing = [
                AuthorStanding::Normal,
                AuthorStanding::Trusted,
                AuthorStanding::Premoderated,
                AuthorStanding::Suspended,
                AuthorStanding::Banned,
            ][i % 5];
            let until = (i % 2 == 0).then(|| now + chrono::Duration::days(3));
            let mut settings = settings.clone();
            if i % 3 == 0 {
                settings.moderation_mode = ModerationMode::Pre;
            }
            let features = spam::Features::extract(comment.body.as_str());
            let verdict = Pipeline::default().evaluate(
                &comment,
                &settings,
                &compiled,
                spam::SpamInput {
                    features: &features,
                    model: spam::seed_model(),
                    history: &histories[i % 3],
                    now,
                },
                toxicity::model::seed_model(),
                StandingTerm { standing, until },
            );
            // Hate findings name the group: stored as written (they are
            // only on the comments held for them).
            for reason in verdict
                .reasons
                .iter()
                .filter(|r| !r.code.starts_with("hate."))
            {
                let stored = compact(reason);
                if let Some(message) = stored.m {
                    missing.insert(split(&message).map_or_else(|| message.to_string(), |(t, _)| t));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "messages without a template (add them to reason_templates.txt if they \
             are fixed sentences):\n{}",
            missing.into_iter().collect::<Vec<_>>().join("\n")
        );
    }
}
