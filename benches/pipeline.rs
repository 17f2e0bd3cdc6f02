//! The whole pipeline per 300-byte comment, as a new tenant runs it: the
//! default rule pack, spam features and score, the toxicity stage (lexicons,
//! hateful constructions, classifier) and the verdict with every
//! explanation. Target (issue #11): ≤ 35 µs on one core. Also the toxicity
//! stage alone. Run with `cargo bench --bench pipeline`; results are
//! recorded in BENCHMARKS.md.

use std::hint::black_box;

// The allocator the `moderato` binary runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use moderato::domain::{
    ArticleId, AuthorId, CommentBody, DisplayName, NewComment, RuleFile, StandingTerm, TenantName,
    TenantSettings,
};
use moderato::pipeline::{CompiledRules, Findings, Pipeline, rules, spam, toxicity};

/// 300 bytes of an ordinary comment on an economics article.
const CLEAN: &str = "Franchement, le gouvernement nous prend pour des idiots : la coopération \
    régionale avance, mais le prix du riz a encore augmenté de 12,5 % à Abidjan et Bouaké. \
    Les députés votent des budgets sans consulter personne et on nous parle de \
    convergence monétaire. Ça suffit, il faut des comptes !!";

/// About 300 bytes of hate with a pronoun reference and an insult.
const HATEFUL: &str = "Encore un article sur les migrants qui arrivent à la frontière. Ils ne \
    sont que des parasites qui vivent de nos impôts, il faut les renvoyer chez eux tout de \
    suite. Et toi, espèce de bouffon qui les défends dans les commentaires, ferme-la. Les \
    Peuls du centre, c'est pareil, tous des voleurs !";

fn comment(text: &str) -> NewComment {
    NewComment {
        article_id: ArticleId::parse("a", "budget-2027".into()).unwrap(),
        author_id: AuthorId::parse("a", "reader-1".into()).unwrap(),
        body: CommentBody::parse("b", text.into()).unwrap(),
        client_comment_id: None,
        author_display_name: DisplayName::parse("d", String::new()).unwrap(),
        author_ip: None,
        parent_comment_id: None,
        language: None,
    }
}

fn bench(c: &mut Criterion) {
    toxicity::model::init().unwrap();
    let pack = RuleFile::from_toml(rules::DEFAULT_PACK).unwrap();
    let compiled = CompiledRules::compile(&pack.rules).unwrap();
    let settings = TenantSettings::defaults(&TenantName::parse("t").unwrap());
    let history = spam::AuthorHistory::unknown();
    let now = chrono::Utc::now();
    let pipeline = Pipeline::default();
    let mut group = c.benchmark_group("pipeline");
    for (name, text) in [("clean_300B", CLEAN), ("hateful_300B", HATEFUL)] {
        let comment = comment(text);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let features = spam::Features::extract(comment.body.as_str());
                black_box(pipeline.evaluate(
                    black_box(&comment),
                    &settings,
                    &compiled,
                    spam::SpamInput {
                        features: &features,
                        model: spam::seed_model(),
                        history: &history,
                        now,
                    },
                    toxicity::model::seed_model(),
                    StandingTerm::default(),
                ))
            })
        });
        let features = spam::Features::extract(text);
        group.bench_function(format!("toxicity_stage_{name}"), |b| {
            b.iter(|| {
                let mut findings = Findings::default();
                toxicity::inspect(
                    black_box(text),
                    &features,
                    toxicity::model::seed_model(),
                    &settings.toxicity,
                    None,
                    &mut findings,
                );
                black_box(findings)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
