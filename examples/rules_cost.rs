//! Instruction counts for rule matching, steadier than wall-clock time on a
//! shared machine: `valgrind --tool=callgrind --toggle-collect='*inspect*'
//! target/release/examples/rules_cost 100000 1000` and divide by 1000.

use moderato::domain::{Rule, RuleAction, RuleKind};
use moderato::pipeline::{CompiledRules, Findings};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const COMMENT: &str = "Franchement, le gouvernement nous prend pour des idiots : la coopération \
    régionale avance, mais le prix du riz a encore augmenté de 12,5 % à Abidjan et Bouaké. \
    Les députés votent des budgets sans consulter personne et on nous parle de \
    convergence monétaire. Ça suffit, il faut des comptes !!";

fn main() {
    let mut args = std::env::args().skip(1);
    let words: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let iterations: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const LETTERS: &[u8] = b"abcdeefghiijklmnnoopqrrssttuuvwxyz";
    let mut list: Vec<String> = (0..words)
        .map(|_| {
            let len = 4 + (next() % 8) as usize;
            (0..len)
                .map(|_| LETTERS[(next() % LETTERS.len() as u64) as usize] as char)
                .collect()
        })
        .collect();
    list.push("idiots".into());
    let rules = CompiledRules::compile(&[Rule {
        id: "words".into(),
        name: "words".into(),
        description: String::new(),
        enabled: true,
        action: RuleAction::Review,
        kind: RuleKind::Words { words: list },
    }])
    .unwrap();
    let mut found = 0;
    for _ in 0..iterations {
        let mut findings = Findings::default();
        rules.inspect(std::hint::black_box(COMMENT), &mut findings);
        found += findings.reasons.len();
    }
    println!("{found}");
}
