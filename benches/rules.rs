//! Rule matching cost per comment as the rule set grows.
//!
//! A 300-byte French comment against 100, 10,000 and 100,000 words plus 100
//! regexes, normalisation included; the target (issue #3) is ≤ 10 µs per
//! comment at 100,000 words and ≤ 2× the 100-word time. Run with
//! `cargo bench --bench rules`; results are recorded in BENCHMARKS.md.

use std::hint::black_box;

// The allocator the `moderato` binary runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use moderato::domain::{Rule, RuleAction, RuleFile, RuleKind};
use moderato::pipeline::normalize::normalize;
use moderato::pipeline::rules::DEFAULT_PACK;
use moderato::pipeline::{CompiledRules, Findings};

/// 300 bytes of an ordinary comment on an economics article, with one insult.
const COMMENT: &str = "Franchement, le gouvernement nous prend pour des idiots : la coopération \
    régionale avance, mais le prix du riz a encore augmenté de 12,5 % à Abidjan et Bouaké. \
    Les députés votent des budgets sans consulter personne et on nous parle de \
    convergence monétaire. Ça suffit, il faut des comptes !!";

/// Deterministic pseudo-words (xorshift), 4 to 11 letters, French-ish alphabet.
fn words(n: usize) -> Vec<String> {
    const LETTERS: &[u8] = b"abcdeefghiijklmnnoopqrrssttuuvwxyz";
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|_| {
            let len = 4 + (next() % 8) as usize;
            (0..len)
                .map(|_| LETTERS[(next() % LETTERS.len() as u64) as usize] as char)
                .collect()
        })
        .collect()
}

fn regexes(n: usize) -> Vec<Rule> {
    (0..n)
        .map(|i| Rule {
            id: format!("re-{i}"),
            name: format!("regex {i}"),
            description: String::new(),
            enabled: true,
            action: RuleAction::Score { weight: 0.1 },
            kind: RuleKind::Regex {
                pattern: format!(
                    r"(?i)\b(?:offre|promo|code)\s*n°?\s*{i}\d{{2,4}}\b|\bmot{i}[a-z]+\b"
                ),
                normalized: i % 2 == 0,
            },
        })
        .collect()
}

fn rule_set(word_count: usize) -> CompiledRules {
    rule_set_with(word_count, 100)
}

fn rule_set_with(word_count: usize, regex_count: usize) -> CompiledRules {
    let mut list = words(word_count);
    list.push("idiots".into());
    let mut rules = vec![Rule {
        id: "words".into(),
        name: "words".into(),
        description: String::new(),
        enabled: true,
        action: RuleAction::Review,
        kind: RuleKind::Words { words: list },
    }];
    rules.extend(regexes(regex_count));
    CompiledRules::compile(&rules).expect("benchmark rules compile")
}

fn bench_rules(c: &mut Criterion) {
    assert_eq!(COMMENT.len(), 300, "the benchmark comment is 300 bytes");
    let mut group = c.benchmark_group("rules_per_comment");
    group.throughput(Throughput::Bytes(COMMENT.len() as u64));
    for count in [100, 10_000, 100_000] {
        let rules = rule_set(count);
        let mut probe = Findings::default();
        rules.inspect(COMMENT, &mut probe);
        assert!(
            probe.reasons.iter().any(|r| r.rule_id == "words"),
            "the insult is found"
        );
        group.bench_function(format!("{count}_words_100_regexes"), |b| {
            b.iter(|| {
                let mut findings = Findings::default();
                rules.inspect(black_box(COMMENT), &mut findings);
                findings
            })
        });
    }
    let pack = RuleFile::from_toml(DEFAULT_PACK).unwrap();
    let default_rules = CompiledRules::compile(&pack.rules).unwrap();
    group.bench_function("default_pack", |b| {
        b.iter(|| {
            let mut findings = Findings::default();
            default_rules.inspect(black_box(COMMENT), &mut findings);
            findings
        })
    });
    group.finish();

    let mut group = c.benchmark_group("words_only_per_comment");
    for count in [100, 100_000] {
        let rules = rule_set_with(count, 0);
        group.bench_function(format!("{count}_words"), |b| {
            b.iter(|| {
                let mut findings = Findings::default();
                rules.inspect(black_box(COMMENT), &mut findings);
                findings
            })
        });
    }
    group.finish();

    c.bench_function("normalize_300_bytes", |b| {
        b.iter(|| normalize(black_box(COMMENT)))
    });
    c.bench_function("compile_100000_words", |b| {
        let list = words(100_000);
        let rule = Rule {
            id: "w".into(),
            name: "w".into(),
            description: String::new(),
            enabled: true,
            action: RuleAction::Reject,
            kind: RuleKind::Words { words: list },
        };
        b.iter(|| CompiledRules::compile(std::slice::from_ref(&rule)).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench_rules
}
criterion_main!(benches);
