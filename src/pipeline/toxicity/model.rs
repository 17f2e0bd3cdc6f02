//! The trained toxicity classifier: the spam score's logistic regression
//! (`spam::Model`, the one classifier of the pipeline) over the same hashed
//! features, trained on toxic and clean comments instead of spam and ham.
//!
//! One head, "toxic or not", because that is what the labelled data says:
//! none of the shared French sets labels insults apart from obscenity or
//! threats. The head's probability goes to the category the lexicons point
//! at (an obscene word makes it `obscene`, a threat phrase `threat`), and to
//! `insult` when nothing does.
//!
//! The shipped weights (`seed/toxicity.model`) are trained by
//! `moderato toxicity-seed` on the French sets of `../shared/datasets/`
//! (never committed; see BENCHMARKS.md for how it was built and measured)
//! and stored quantised to 8 bits per weight: 256 KiB in the binary, scores
//! within 0.01 of the full-precision model.

use std::sync::{Arc, OnceLock};

use crate::pipeline::spam::Model;
use crate::pipeline::spam::features::DIMENSIONS;

const MAGIC: &[u8; 8] = b"MTOX0001";

/// Team-written neutral, positive and counter-speech sentences about groups
/// (and profanity that insults no one), added to every training of the
/// seed so the words around a group name are learnt as clean.
pub const NEUTRAL_CSV: &str = include_str!("../../../seed/toxicity-neutral.csv");

/// The shipped toxicity model.
pub const SEED_MODEL: &[u8] = include_bytes!("../../../seed/toxicity.model");

/// Names a model file to use instead of the shipped one (written by
/// `moderato toxicity-seed`): for evaluations that must not have seen a
/// data set, and for operators who train their own.
pub const SEED_ENV: &str = "MODERATO_TOXICITY_SEED";

/// Step size of the bias for one label learned online: none. Moderators
/// label what the queue shows them, mostly abuse, so the share of toxic
/// labels says nothing of the share of toxic readers; learnt, it shifted
/// every score. Measured on `forum_fr.csv` halves through the API
/// (`examples/toxicity_labels.rs`, BENCHMARKS.md): with the bias learnt
/// at the weights' rate, clean comments held swung between 8 % and 39 %
/// across 50–250 labels; with it fixed, between 6 % and 12 %, with a
/// higher AUC at every count. `moderato train` still fits the bias: an
/// imported file is the tenant's readers as they are.
pub const ONLINE_BIAS_RATE: f64 = 0.0;

static SEED: OnceLock<Arc<Model>> = OnceLock::new();

fn read_seed() -> Result<Model, String> {
    match std::env::var_os(SEED_ENV) {
        Some(path) => {
            let name = path.to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).map_err(|e| format!("{SEED_ENV}={name}: {e}"))?;
            decode(&bytes).map_err(|e| format!("{SEED_ENV}={name}: {e}"))
        }
        None => decode(SEED_MODEL),
    }
}

/// Loads the seed model (from `MODERATO_TOXICITY_SEED` when set) and the
/// lexicons now, so a bad file stops the process at start rather than
/// failing a request.
pub fn init() -> Result<(), String> {
    if SEED.get().is_none() {
        let _ = SEED.set(Arc::new(read_seed()?));
    }
    std::sync::LazyLock::force(&super::lexicon::LEXICON);
    Ok(())
}

/// The model every tenant starts from.
pub fn seed_model() -> &'static Arc<Model> {
    SEED.get_or_init(|| {
        Arc::new(read_seed().expect("the toxicity seed model loads (checked by init)"))
    })
}

/// Reads a toxicity label as written in labelled files: `1`/`toxic`/`true`/
/// `yes` or a category name (`insult`, `threat`…) for toxic, `0`/`not_toxic`/
/// `clean`/`false`/`no` for not, case-insensitive.
pub fn parse_label(value: &str) -> Option<bool> {
    let value = value.trim().to_ascii_lowercase();
    match value.as_str() {
        "1" | "toxic" | "true" | "yes" => Some(true),
        "0" | "not_toxic" | "clean" | "false" | "no" => Some(false),
        other => crate::domain::ToxicityCategory::parse(other).map(|_| true),
    }
}

/// Writes `model` as: magic, bias (f64), scale (f32), one i8 per weight
/// (`weight = q * scale`), little-endian.
pub fn encode(model: &Model) -> Vec<u8> {
    let largest = (0..DIMENSIONS as u32)
        .map(|i| model.weight(i).abs())
        .fold(0.0f64, f64::max);
    let scale = if largest == 0.0 { 1.0 } else { largest / 127.0 };
    let mut out = Vec::with_capacity(MAGIC.len() + 12 + DIMENSIONS);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&model.bias().to_le_bytes());
    out.extend_from_slice(&(scale as f32).to_le_bytes());
    for i in 0..DIMENSIONS as u32 {
        let q = (model.weight(i) / scale).round().clamp(-127.0, 127.0) as i8;
        out.push(q as u8);
    }
    out
}

pub fn decode(bytes: &[u8]) -> Result<Model, String> {
    let rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or("not a moderato toxicity model (bad magic)")?;
    if rest.len() != 12 + DIMENSIONS {
        return Err(format!(
            "a toxicity model holds {} weights, this file {}",
            DIMENSIONS,
            rest.len().saturating_sub(12)
        ));
    }
    let bias = f64::from_le_bytes(rest[..8].try_into().expect("8 bytes"));
    let scale = f64::from(f32::from_le_bytes(rest[8..12].try_into().expect("4 bytes")));
    let mut model = Model::default();
    model.set_bias(bias);
    for (i, &q) in rest[12..].iter().enumerate() {
        if q != 0 {
            model.set(i as u32, f64::from(q as i8) * scale);
        }
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::spam::{Features, sigmoid};

    #[test]
    fn the_shipped_model_decodes_and_round_trips() {
        let model = seed_model();
        let again = decode(&encode(model)).unwrap();
        let probe = Features::extract("espèce de sale con, ferme ta gueule");
        assert!((model.logit(&probe) - again.logit(&probe)).abs() < 0.05);
        assert!(decode(b"nonsense").is_err());
    }

    #[test]
    fn labels_are_read_as_files_write_them() {
        for toxic in [
            "1",
            "toxic",
            "TRUE",
            "yes",
            "insult",
            "sexual_harassment",
            " threat ",
        ] {
            assert_eq!(parse_label(toxic), Some(true), "{toxic}");
        }
        for clean in ["0", "not_toxic", "clean", "False", "no"] {
            assert_eq!(parse_label(clean), Some(false), "{clean}");
        }
        for bad in ["", "spam", "2", "insults"] {
            assert_eq!(parse_label(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_neutral_sentences_parse() {
        let mut reader = csv::Reader::from_reader(NEUTRAL_CSV.as_bytes());
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert!(rows.len() >= 50);
        assert!(rows.iter().all(|r| r.len() == 2 && &r[1] == "0"));
    }

    #[test]
    fn the_shipped_model_orders_abuse_above_news() {
        let p = |t: &str| sigmoid(seed_model().logit(&Features::extract(t)));
        let abuse = p("ferme ta gueule sale connard, t'es qu'une merde");
        let news = p("Le conseil des ministres a adopté le projet de loi de finances.");
        assert!(abuse > news + 0.3, "{abuse} vs {news}");
    }
}
