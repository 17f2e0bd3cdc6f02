//! Instruction counts for spam scoring (feature extraction, classifier,
//! signals, explanations), steadier than wall-clock time on a shared machine:
//! `valgrind --tool=callgrind --toggle-collect='*score_once*'
//! target/release/examples/spam_cost 1000` and divide by 1000.

use moderato::pipeline::Findings;
use moderato::pipeline::spam::{self, AuthorHistory, Features, SpamInput, seed_model};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const COMMENT: &str = "Franchement, le gouvernement nous prend pour des idiots : la coopération \
    régionale avance, mais le prix du riz a encore augmenté de 12,5 % à Abidjan et Bouaké. \
    Les députés votent des budgets sans consulter personne et on nous parle de \
    convergence monétaire. Ça suffit, il faut des comptes !!";

#[inline(never)]
fn score_once(history: &AuthorHistory) -> f64 {
    let features = Features::extract(std::hint::black_box(COMMENT));
    let mut findings = Findings::default();
    spam::inspect(
        SpamInput {
            features: &features,
            model: seed_model(),
            history,
            now: chrono::Utc::now(),
        },
        &mut findings,
    );
    findings.spam_score
}

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000);
    let history = AuthorHistory::unknown();
    // Train the seed model outside the measurement; the first call compiles
    // the regexes.
    std::hint::black_box(seed_model());
    let mut total = score_once(&history);
    for _ in 0..iterations {
        total += score_once(&history);
    }
    println!("{:.3}", total / (iterations + 1) as f64);
}
