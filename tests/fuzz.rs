//! Fuzzing on stable Rust: proptest-generated inputs for every parser and
//! matcher that reads what users send, checking that none panics and that
//! what they return is well formed.
//!
//! `./scripts/test` runs a bounded smoke pass (`MODERATO_FUZZ_CASES`,
//! default 256 per target); the long run (BENCHMARKS.md) is
//! `MODERATO_FUZZ_CASES=100000 cargo test --release --test fuzz`. Inputs mix
//! arbitrary Unicode with the characters that break text handling:
//! combining marks, zero-width and bidi controls, homoglyphs, emoji, NUL,
//! lone quotes and brackets.

use moderato::domain::{PageToken, RuleFile};
use moderato::pipeline::normalize::normalize;
use moderato::pipeline::{CompiledRules, Findings};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("MODERATO_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        // Regressions become unit tests, not files in the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Characters that stress folding, word boundaries and span mapping.
const TRICKY: &[&str] = &[
    "\u{301}",
    "\u{308}",
    "\u{327}",
    "\u{200b}",
    "\u{200d}",
    "\u{feff}",
    "\u{202e}",
    "\u{2066}",
    "\u{0}",
    "é",
    "É",
    "ß",
    "ﬁ",
    "œ",
    "Æ",
    "İ",
    "ı",
    "а",
    "о",
    "ѕ",
    "𝐜𝐨𝐧",
    "ｃｏｎ",
    "😀",
    "👍🏽",
    "c0n",
    "c.o.n",
    "C O N",
    "connard",
    "coopération",
    "convergence",
    "\"",
    "'",
    "[",
    "]",
    "{",
    "}",
    "\\",
    "\n",
    "\r\n",
    "\t",
    " ",
    "*",
    "http://",
    "https://bit.ly/x",
    "www.",
    "@",
    "#",
    "=",
    ",",
    "\"\"",
    "label",
    "text",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(TRICKY).prop_map(str::to_owned),
                "[a-zA-Zàâçéèêëîïôûùüÿ0-9 .,;:!?'-]{1,12}",
                any::<char>().prop_map(String::from),
            ],
            0..40
        )
        .prop_map(|parts| parts.concat()),
    ]
}

/// The shipped default pack plus rules of every other kind.
fn rules() -> CompiledRules {
    let mut pack = RuleFile::from_toml(include_str!("../rules/default.toml"))
        .expect("the default pack parses")
        .rules;
    let file = RuleFile::from_toml(
        r#"
[[rule]]
id = "fuzz-insults"
name = "insults"
action = "review"
kind = "words"
words = ["con", "connard*", "*fasciste", "sale type", "c o n"]

[[rule]]
id = "fuzz-phone"
name = "phone"
action = "mask"
kind = "regex"
pattern = '\b0\d(?:[ .]?\d{2}){4}\b'

[[rule]]
id = "fuzz-folded"
name = "folded"
action = "tag"
label = "arnaque"
kind = "regex"
pattern = 'arnaque'
normalized = true

[[rule]]
id = "fuzz-links"
name = "links"
action = "review"
kind = "links"
max_links = 1
deny_domains = ["bit.ly"]
shorteners = true
"#,
    )
    .expect("the fuzz rule file parses");
    pack.extend(file.rules);
    CompiledRules::compile(&pack).expect("the fuzz rules compile")
}

static RULES: std::sync::OnceLock<CompiledRules> = std::sync::OnceLock::new();

fn check_span(body: &str, start: u32, end: u32, what: &str) {
    let (start, end) = (start as usize, end as usize);
    assert!(
        start <= end && end <= body.len(),
        "{what} {start}..{end} outside {}",
        body.len()
    );
    assert!(
        body.is_char_boundary(start) && body.is_char_boundary(end),
        "{what} {start}..{end} splits a character"
    );
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_normaliser_maps_every_folded_byte_back_into_the_text(body in text()) {
        let folded = normalize(&body);
        prop_assert!(!folded.text.starts_with(' ') && !folded.text.ends_with(' '));
        prop_assert!(!folded.text.contains("  "));
        let bytes = folded.text.len();
        let mut start = 0;
        for (i, c) in folded.text.char_indices() {
            if c == ' ' {
                if i > start {
                    let (s, e) = folded.original_span(start, i);
                    check_span(&body, s, e, "word");
                }
                start = i + 1;
            }
        }
        if bytes > start {
            let (s, e) = folded.original_span(start, bytes);
            check_span(&body, s, e, "last word");
        }
        // Folded text folds again without surprises (it is not idempotent
        // by design: letters spaced out, `c o n`, are joined).
        let again = normalize(&folded.text);
        prop_assert!(again.text.len() <= folded.text.len());
    }

    #[test]
    fn the_matcher_reports_spans_inside_the_comment(body in text()) {
        let compiled = RULES.get_or_init(rules);
        let mut findings = Findings::default();
        compiled.inspect(&body, &mut findings);
        for reason in findings.reasons.iter() {
            for span in reason.span.iter().chain(reason.target.iter()) {
                check_span(&body, span.start, span.end, &reason.code);
            }
        }
        for mask in &findings.masks {
            check_span(&body, mask.start, mask.end, "mask");
        }
    }

    #[test]
    fn the_rule_compiler_refuses_or_compiles_any_words_and_patterns(
        words in proptest::collection::vec(text(), 0..8),
        pattern in text(),
        normalized in any::<bool>(),
    ) {
        let toml = format!(
            "[[rule]]\nid = \"w\"\nname = \"w\"\naction = \"review\"\nkind = \"words\"\nwords = {}\n\n\
             [[rule]]\nid = \"r\"\nname = \"r\"\naction = \"tag\"\nlabel = \"x\"\nkind = \"regex\"\npattern = {}\nnormalized = {normalized}\n",
            toml_array(&words),
            toml_string(&pattern),
        );
        if let Ok(file) = RuleFile::from_toml(&toml) {
            // Refusals are errors naming a field, never panics.
            if let Ok(compiled) = CompiledRules::compile(&file.rules) {
                let mut findings = Findings::default();
                compiled.inspect(&pattern, &mut findings);
            }
        }
    }

    #[test]
    fn the_toml_rule_import_never_panics(file in text()) {
        let _ = RuleFile::from_toml(&file);
    }

    #[test]
    fn page_tokens_decode_anything_without_panicking(token in text(), scope in text()) {
        let _ = PageToken::decode::<(i64, String)>("page_token", &token, &scope);
        let cursor = (42_i64, token.clone());
        let encoded = PageToken::encode(&scope, &cursor);
        let decoded = PageToken::decode::<(i64, String)>("page_token", &encoded, &scope).unwrap();
        prop_assert_eq!(decoded, Some(cursor));
    }

    #[test]
    fn the_csv_training_import_never_panics(
        content in proptest::collection::vec(text(), 0..10),
        delimiter in proptest::sample::select(vec![",", ";", "\\t", "|"]),
        no_header in any::<bool>(),
    ) {
        let joined = content.join("\n");
        let file = moderato::cli::LabelledFile {
            tenant: "t".into(),
            csv: "-".into(),
            text_column: if no_header { "1".into() } else { "text".into() },
            label_column: if no_header { "2".into() } else { "label".into() },
            delimiter: delimiter.into(),
            no_header,
        };
        for kind in [moderato::domain::ModelKind::Spam, moderato::domain::ModelKind::Toxicity] {
            let _ = file.read_from(Box::new(std::io::Cursor::new(joined.clone().into_bytes())), kind);
        }
    }
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_array(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|i| toml_string(i))
            .collect::<Vec<_>>()
            .join(", ")
    )
}
