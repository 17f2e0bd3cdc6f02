//! The model every tenant starts from, trained at first use on examples this
//! team wrote (`seed/comments.csv`: French and English comment spam and
//! ordinary comments on news). A tenant's stored weights are offsets from
//! this model, so the seed never has to be copied into the database.

use std::sync::{Arc, LazyLock};

use super::features::Features;
use super::model::Model;

/// The seed examples, `label,text` with labels `spam` and `ham`.
pub const SEED_CSV: &str = include_str!("../../../seed/comments.csv");

/// The share of spam the seed model assumes among a new tenant's comments.
/// The seed file is balanced, so its learned bias says one in two; real
/// comment sections see far less, and a text with no evidence either way
/// must land well below the review threshold. Training on the tenant's own
/// labels moves the bias to what the tenant's data says.
pub const SEED_SPAM_SHARE: f64 = 0.25;

static SEED: LazyLock<Arc<Model>> = LazyLock::new(|| {
    let examples = parse_seed(SEED_CSV).expect("the seed file parses (tested)");
    let mut model = Model::default();
    model.fit(&examples);
    let spam = examples.iter().filter(|e| e.1).count() as f64;
    let ham = examples.len() as f64 - spam;
    let shift = (SEED_SPAM_SHARE / (1.0 - SEED_SPAM_SHARE)).ln() - (spam / ham).ln();
    model.set_bias(model.bias() + shift);
    Arc::new(model)
});

/// The trained seed model (trained once per process, in a few milliseconds),
/// shared by every tenant that has learned nothing yet.
pub fn seed_model() -> &'static Arc<Model> {
    &SEED
}

/// Reads a label as written in common datasets: `1`/`spam`/`true`/`yes` and
/// `0`/`ham`/`false`/`no`, case-insensitive.
pub fn parse_label(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "spam" | "true" | "yes" => Some(true),
        "0" | "ham" | "false" | "no" => Some(false),
        _ => None,
    }
}

fn parse_seed(csv_text: &str) -> Result<Vec<(Features, bool)>, String> {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    reader
        .records()
        .enumerate()
        .map(|(i, record)| {
            let record = record.map_err(|e| e.to_string())?;
            let label = parse_label(&record[0]).ok_or(format!("line {}: bad label", i + 2))?;
            Ok((Features::extract(&record[1]), label))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::spam::sigmoid;

    #[test]
    fn the_seed_file_parses_and_is_balanced() {
        let examples = parse_seed(SEED_CSV).unwrap();
        let spam = examples.iter().filter(|e| e.1).count();
        let ham = examples.len() - spam;
        assert!(spam >= 300 && ham >= 300, "{spam} spam, {ham} ham");
    }

    #[test]
    fn the_seed_model_separates_obvious_cases_it_was_not_trained_on() {
        let p = |t: &str| sigmoid(seed_model().logit(&Features::extract(t)));
        for spam in [
            "Abonnez-vous à ma chaîne YouTube pour des vidéos de qualité !!!",
            "Earn $500 a day from home, message me on WhatsApp +225 07 00 11 22 33",
        ] {
            assert!(p(spam) > 0.5, "{spam}: {}", p(spam));
        }
        for ham in [
            "Le gouvernement doit expliquer pourquoi le prix du carburant augmente encore.",
            "Good article, but the inflation figures for last year seem wrong to me.",
        ] {
            assert!(p(ham) < 0.5, "{ham}: {}", p(ham));
        }
    }

    #[test]
    fn labels_in_common_spellings() {
        assert_eq!(parse_label(" SPAM "), Some(true));
        assert_eq!(parse_label("0"), Some(false));
        assert_eq!(parse_label("maybe"), None);
    }
}
