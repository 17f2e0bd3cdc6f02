//! Instruction counts for the whole pipeline per 300-byte comment (the
//! criterion bench `benches/pipeline.rs` on the same texts), steadier than
//! wall-clock time on a shared machine:
//! `valgrind --tool=callgrind --toggle-collect='*evaluate_once*'
//! target/release/examples/pipeline_cost clean 1000` (or `hateful`) and
//! divide by 1001.

use moderato::domain::{
    ArticleId, AuthorId, CommentBody, DisplayName, NewComment, RuleFile, StandingTerm, TenantName,
    TenantSettings,
};
use moderato::pipeline::{CompiledRules, Pipeline, rules, spam, toxicity};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CLEAN: &str = "Franchement, le gouvernement nous prend pour des idiots : la coopération \
    régionale avance, mais le prix du riz a encore augmenté de 12,5 % à Abidjan et Bouaké. \
    Les députés votent des budgets sans consulter personne et on nous parle de \
    convergence monétaire. Ça suffit, il faut des comptes !!";

const HATEFUL: &str = "Encore un article sur les migrants qui arrivent à la frontière. Ils ne \
    sont que des parasites qui vivent de nos impôts, il faut les renvoyer chez eux tout de \
    suite. Et toi, espèce de bouffon qui les défends dans les commentaires, ferme-la. Les \
    Peuls du centre, c'est pareil, tous des voleurs !";

struct Setup {
    pipeline: Pipeline,
    rules: CompiledRules,
    settings: TenantSettings,
    history: spam::AuthorHistory,
    now: chrono::DateTime<chrono::Utc>,
}

#[inline(never)]
fn evaluate_once(setup: &Setup, comment: &NewComment) -> f64 {
    let features = spam::Features::extract(comment.body.as_str());
    let verdict = setup.pipeline.evaluate(
        std::hint::black_box(comment),
        &setup.settings,
        &setup.rules,
        spam::SpamInput {
            features: &features,
            model: spam::seed_model(),
            history: &setup.history,
            now: setup.now,
        },
        toxicity::model::seed_model(),
        StandingTerm::default(),
    );
    verdict.toxicity_score + verdict.spam_score
}

fn main() {
    let mut args = std::env::args().skip(1);
    let text = match args.next().as_deref() {
        Some("hateful") => HATEFUL,
        _ => CLEAN,
    };
    let iterations: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    toxicity::model::init().expect("the toxicity seed loads");
    let pack = RuleFile::from_toml(rules::DEFAULT_PACK).expect("the default pack parses");
    let setup = Setup {
        pipeline: Pipeline::default(),
        rules: CompiledRules::compile(&pack.rules).expect("the default pack compiles"),
        settings: TenantSettings::defaults(&TenantName::parse("t").expect("a valid name")),
        history: spam::AuthorHistory::unknown(),
        now: chrono::Utc::now(),
    };
    let comment = NewComment {
        article_id: ArticleId::parse("a", "budget-2027".into()).expect("valid"),
        author_id: AuthorId::parse("a", "reader-1".into()).expect("valid"),
        body: CommentBody::parse("b", text.into()).expect("valid"),
        client_comment_id: None,
        author_display_name: DisplayName::parse("d", String::new()).expect("valid"),
        author_ip: None,
        parent_comment_id: None,
        language: None,
    };
    let mut total = 0.0;
    for _ in 0..=iterations {
        total += evaluate_once(&setup, &comment);
    }
    println!("{:.3}", total / (iterations + 1) as f64);
}
