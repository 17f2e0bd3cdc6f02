//! Spam scoring cost per comment: feature extraction (normalisation
//! included), the classifier, behaviour signals and author-history
//! interpretation, with every explanation built. The target (issue #4) is
//! ≤ 20 µs per 300-byte comment on one core. Run with
//! `cargo bench --bench spam`; results are recorded in BENCHMARKS.md.

use std::hint::black_box;

// The allocator the `moderato` binary runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use chrono::{Duration, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use moderato::domain::CommentStatus;
use moderato::pipeline::Findings;
use moderato::pipeline::spam::{
    self, AuthorHistory, Features, RecentComment, SpamInput, seed_model,
};

/// 300 bytes of an ordinary comment on an economics article.
const HAM: &str = "Franchement, le gouvernement nous prend pour des idiots : la coopération \
    régionale avance, mais le prix du riz a encore augmenté de 12,5 % à Abidjan et Bouaké. \
    Les députés votent des budgets sans consulter personne et on nous parle de \
    convergence monétaire. Ça suffit, il faut des comptes !!";

/// About 300 bytes of spam with a link, a phone number and emoji.
const SPAM: &str = "🔥🔥 Gagnez 300 000 FCFA par semaine depuis chez vous !!! J'ai commencé le \
    mois dernier avec M. Koné, un vrai expert en trading, et j'ai déjà remboursé mes dettes. \
    Écrivez-lui vite sur WhatsApp au +225 07 00 11 22 33 ou visitez https://bit.ly/gains-rapides \
    avant qu'il ne soit trop tard 💰💰";

fn history() -> AuthorHistory {
    let now = Utc::now();
    AuthorHistory {
        known: true,
        recent: (0..50)
            .map(|i| {
                let f =
                    Features::extract(&format!("commentaire numéro {i} sur le budget")).fingerprint;
                RecentComment {
                    exact: f.exact,
                    simhash: f.simhash,
                    create_time: now - Duration::minutes(i * 7),
                    status: CommentStatus::Approved,
                }
            })
            .collect(),
        same_text_by_others: 1,
    }
}

fn bench(c: &mut Criterion) {
    let model = seed_model();
    let history = history();
    let mut group = c.benchmark_group("spam_score");
    for (name, text) in [("ham_300B", HAM), ("spam_300B", SPAM)] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let features = Features::extract(black_box(text));
                let mut findings = Findings::default();
                spam::inspect(
                    SpamInput {
                        features: &features,
                        model,
                        history: &history,
                        now: Utc::now(),
                    },
                    &mut findings,
                );
                black_box(findings.spam_score)
            })
        });
    }
    group.bench_function("features_only_ham_300B", |b| {
        b.iter(|| black_box(Features::extract(black_box(HAM))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
