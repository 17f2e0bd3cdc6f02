use proptest::prelude::*;

use super::*;
use crate::domain::RuleFile;

fn words(id: &str, action: RuleAction, list: &[&str]) -> Rule {
    Rule {
        id: id.into(),
        name: id.into(),
        description: String::new(),
        enabled: true,
        action,
        kind: RuleKind::Words {
            words: list.iter().map(|w| w.to_string()).collect(),
        },
    }
}

fn hits(rules: &CompiledRules, text: &str) -> Vec<String> {
    let mut findings = Findings::default();
    rules.inspect(text, &mut findings);
    findings.reasons.into_iter().map(|r| r.rule_id).collect()
}

fn spans(rules: &CompiledRules, text: &str) -> Vec<String> {
    let mut findings = Findings::default();
    rules.inspect(text, &mut findings);
    findings
        .reasons
        .iter()
        .filter_map(|r| r.span)
        .map(|s| text[s.start as usize..s.end as usize].to_owned())
        .collect()
}

fn insults() -> CompiledRules {
    CompiledRules::compile(&[
        words(
            "fr",
            RuleAction::Reject,
            &[
                "con",
                "cul",
                "connard",
                "débile",
                "fils de pute",
                "salaud",
                "pd",
            ],
        ),
        words("en", RuleAction::Reject, &["ass", "idiot", "shit*"]),
    ])
    .unwrap()
}

#[test]
fn true_positives_in_french_and_english() {
    let rules = insults();
    let cases = [
        ("Quel con !", "con"),
        ("T'es qu'un CON.", "CON"),
        ("espèce de connard", "connard"),
        ("c'est débile", "débile"),
        ("c'est debile", "debile"),
        ("C'EST DÉBILE", "DÉBILE"),
        ("sale fils de pute", "fils de pute"),
        ("fils-de-pute", "fils-de-pute"),
        ("quel connnnnard", "connnnnard"),
        ("c.o.n.n.a.r.d", "c.o.n.n.a.r.d"),
        ("c o n n a r d", "c o n n a r d"),
        ("c-o-n", "c-o-n"),
        ("c0nn4rd", "c0nn4rd"),
        ("sa1aud", "sa1aud"),
        ("соnnаrd", "соnnаrd"),
        ("ｃｏｎｎａｒｄ", "ｃｏｎｎａｒｄ"),
        ("con\u{200B}nard", "con\u{200B}nard"),
        ("you ass", "ass"),
        ("what an idiot!", "idiot"),
        ("this is shitty", "shitty"),
        ("l'idiot du village", "idiot"),
    ];
    for (text, matched) in cases {
        assert_eq!(spans(&rules, text), [matched], "{text:?}");
    }
}

#[test]
fn no_scunthorpe_false_positives() {
    let rules = insults();
    let clean = [
        "La coopération régionale avance",
        "une convergence des politiques",
        "la convention de Lomé",
        "il faut raconter la suite",
        "en second lieu",
        "le calcul est faux",
        "un cas particulier",
        "a class of its own",
        "with passion",
        "tu as raison",
        "une salle comble",
        "Les cons-ommateurs", // "cons" is not "con"
        "biólogos y biología",
        "Constitution, concertation, consensus",
        "5 000 francs CFA",
        "PDCI-RDA et le RHDP",
        "L'ASSEMBLÉE nationale",
        "shiitake",
    ];
    for text in clean {
        assert!(
            hits(&rules, text).is_empty(),
            "{text:?} matched {:?}",
            hits(&rules, text)
        );
    }
}

#[test]
fn spans_point_into_the_original_body() {
    let rules = insults();
    let text = "Franchement, c’est un vrai c.o.n, vraiment débile.";
    let found = spans(&rules, text);
    assert_eq!(found, ["c.o.n", "débile"]);
}

#[test]
fn actions_map_to_findings() {
    let rules = CompiledRules::compile(&[
        words("review", RuleAction::Review, &["idiot"]),
        words("score", RuleAction::Score { weight: 0.4 }, &["gratuit"]),
        words(
            "tag",
            RuleAction::Tag {
                label: "politique".into(),
            },
            &["élection"],
        ),
        words("mask", RuleAction::Mask, &["merde"]),
    ])
    .unwrap();
    let mut f = Findings::default();
    rules.inspect(
        "idiot, c'est gratuit gratuit, merde à l'élection, merde",
        &mut f,
    );
    assert_eq!(f.action, Some(Action::Review));
    assert!(
        (f.spam_score - 0.4).abs() < 1e-9,
        "one contribution per rule: {}",
        f.spam_score
    );
    assert_eq!(f.masks.len(), 2);
    let tag = f.reasons.iter().find(|r| r.rule_id == "tag").unwrap();
    assert!(tag.message.contains("[politique]"));
    assert_eq!(tag.action, "tag");
    assert_eq!(tag.code, "rule.words");
}

#[test]
fn regexes_match_original_or_normalised_text() {
    let rules = CompiledRules::compile(&[
        Rule {
            kind: RuleKind::Regex {
                pattern: r"(?i)\+?225\s?\d{2}(\s?\d{2}){4}".into(),
                normalized: false,
            },
            ..words("phone", RuleAction::Score { weight: 0.3 }, &["x"])
        },
        Rule {
            kind: RuleKind::Regex {
                pattern: r"\bgagne[rz]? de l argent\b".into(),
                normalized: true,
            },
            ..words("money", RuleAction::Review, &["x"])
        },
    ])
    .unwrap();
    assert_eq!(
        spans(&rules, "Appelez le +225 07 08 09 10 11"),
        ["+225 07 08 09 10 11"]
    );
    assert_eq!(
        spans(&rules, "GAGNEZ DE L'ARGENT vite"),
        ["GAGNEZ DE L'ARGENT"]
    );
}

#[test]
fn links_and_structure() {
    let rules = CompiledRules::compile(&[
        Rule {
            kind: RuleKind::Links {
                max_links: Some(1),
                deny_domains: vec!["casino.example".into()],
                allow_domains: vec![],
                shorteners: true,
            },
            ..words("links", RuleAction::Review, &["x"])
        },
        Rule {
            kind: RuleKind::Structure {
                max_chars: None,
                max_caps_ratio: Some(0.7),
                min_letters: 12,
                max_repeated_chars: Some(6),
                max_emoji: Some(3),
                max_lines: None,
            },
            ..words("shape", RuleAction::Score { weight: 0.2 }, &["x"])
        },
    ])
    .unwrap();
    let mut f = Findings::default();
    rules.inspect(
        "Jouez sur https://www.casino.example/bonus et bit.ly/abc",
        &mut f,
    );
    let messages: Vec<_> = f.reasons.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(hits(&rules, "Voir https://www.abidjan.net/article").is_empty());
    assert_eq!(hits(&rules, "ARRÊTEZ DE NOUS MENTIR MAINTENANT"), ["shape"]);
    assert_eq!(hits(&rules, "noooooooon 😀😀😀😀"), ["shape", "shape"]);
    assert!(hits(&rules, "Le FMI et la BCEAO ont parlé de l'UEMOA.").is_empty());
}

#[test]
fn invalid_rules_never_compile() {
    let bad_regex = Rule {
        kind: RuleKind::Regex {
            pattern: "(unclosed".into(),
            normalized: false,
        },
        ..words("broken", RuleAction::Reject, &["x"])
    };
    let err =
        CompiledRules::compile(&[words("ok", RuleAction::Reject, &["a"]), bad_regex]).unwrap_err();
    assert_eq!(err.field, "rule broken: pattern");
    assert!(err.reason.contains("unclosed group"), "{}", err.reason);
    let huge = Rule {
        kind: RuleKind::Regex {
            pattern: r"\w{1000}\w{1000}\w{1000}".into(),
            normalized: false,
        },
        ..words("huge", RuleAction::Reject, &["x"])
    };
    assert!(
        CompiledRules::compile(&[huge])
            .unwrap_err()
            .reason
            .contains("size limit")
    );
    let empty = words("empty", RuleAction::Reject, &[]);
    assert!(CompiledRules::compile(&[empty]).is_err());
}

#[test]
fn disabled_rules_do_not_match() {
    let mut rule = words("off", RuleAction::Reject, &["idiot"]);
    rule.enabled = false;
    let rules = CompiledRules::compile(&[rule]).unwrap();
    assert!(hits(&rules, "idiot").is_empty());
}

#[test]
fn the_default_pack_compiles_and_behaves() {
    let file = RuleFile::from_toml(crate::pipeline::rules::DEFAULT_PACK).unwrap();
    let rules = CompiledRules::compile(&file.rules).unwrap();
    assert!(rules.len() >= 10);
    let clean = [
        "La coopération entre la Côte d'Ivoire et le Ghana sur le cacao est une bonne nouvelle.",
        "Le budget 2027 prévoit 5 000 milliards de FCFA pour l'éducation, c'est un bon début.",
        "I think the central bank should raise rates, the inflation data is clear.",
        "Consultez le rapport complet sur https://www.bceao.int pour les chiffres.",
        "Il faut raconter toute l'histoire : en second lieu, le calcul des subventions est particulier.",
    ];
    for text in clean {
        let mut f = Findings::default();
        rules.inspect(text, &mut f);
        assert!(
            f.action.is_none() && f.spam_score < 0.5,
            "{text:?}: {:?}",
            f.reasons
        );
    }
    let mut f = Findings::default();
    rules.inspect("Espèce de connard, ferme-la", &mut f);
    assert_eq!(f.action, Some(Action::Reject));
    let mut f = Findings::default();
    rules.inspect(
        "Grand marabout voyant médium, retour de l'être aimé en 72h, appelez vite",
        &mut f,
    );
    assert!(f.action.is_some() || f.spam_score >= 0.5, "{:?}", f.reasons);
}

fn verdict_of(rules: &CompiledRules, text: &str) -> (Option<Action>, Vec<String>) {
    let mut f = Findings::default();
    rules.inspect(text, &mut f);
    let mut ids: Vec<_> = f.reasons.into_iter().map(|r| r.rule_id).collect();
    ids.sort();
    (f.action, ids)
}

const INVISIBLES: &[char] = &[
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{FEFF}', '\u{2060}', '\u{00AD}', '\u{202E}',
];

fn sample_text() -> impl Strategy<Value = String> {
    let vocabulary = prop::sample::select(vec![
        "le",
        "la",
        "coopération",
        "con",
        "connard",
        "débile",
        "idiot",
        "calcul",
        "cul",
        "second",
        "salaud",
        "raconter",
        "élection",
        "budget",
        "ass",
        "class",
        "passion",
        "fils",
        "de",
        "pute",
        "très",
        "Côte",
        "d'Ivoire",
        "ÉCONOMIE",
        "ça",
        "va",
        "!",
        "?",
        ",",
    ]);
    prop::collection::vec(vocabulary, 1..12).prop_map(|w| w.join(" "))
}

proptest! {
    #[test]
    fn invisible_characters_never_change_a_verdict(text in sample_text(), seed in any::<u64>()) {
        let rules = insults();
        let mut noisy = String::new();
        for (i, c) in text.chars().enumerate() {
            noisy.push(c);
            if (seed >> (i % 64)) & 1 == 1 {
                noisy.push(INVISIBLES[i % INVISIBLES.len()]);
            }
        }
        prop_assert_eq!(verdict_of(&rules, &text), verdict_of(&rules, &noisy));
    }

    #[test]
    fn case_never_changes_a_verdict(text in sample_text()) {
        let rules = insults();
        prop_assert_eq!(verdict_of(&rules, &text), verdict_of(&rules, &text.to_uppercase()));
        prop_assert_eq!(verdict_of(&rules, &text), verdict_of(&rules, &text.to_lowercase()));
    }

    #[test]
    fn full_width_forms_never_change_a_verdict(text in sample_text()) {
        let rules = insults();
        let wide: String = text
            .chars()
            .map(|c| match c {
                '!'..='~' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap(),
                other => other,
            })
            .collect();
        prop_assert_eq!(verdict_of(&rules, &text), verdict_of(&rules, &wide));
    }
}
