//! Logistic regression against multinomial naive Bayes on the spam
//! classifier's own features, leave-one-video-out on the YouTube spam
//! collection.
//!
//! Why it exists: the spam score (issue #4) had to pick a learner, and the
//! choice was made by measurement rather than by habit. Both models here see
//! exactly the same input, `Features::extract` (hashed word unigrams and
//! bigrams, character 3- to 5-grams, behaviour signals), so the comparison is
//! of the learners alone:
//!
//! 1. logistic regression: the library's [`Model`], fresh (no seed model),
//!    trained with [`Model::fit`] and scored with `sigmoid(logit)`;
//! 2. multinomial naive Bayes with Laplace smoothing (α = 1), implemented
//!    below over [`Features::indices`] (text buckets with repetitions, each
//!    signal present once). The vocabulary size V is the number of distinct
//!    indices seen in training, and indices never seen in training are
//!    ignored at scoring time, as with a fitted vocabulary. The score is the
//!    posterior probability from the log-prior plus the sum of the
//!    log-likelihood ratios.
//!
//! For each of the four videos, both models are trained on the other three
//! and tested on it; the table gives MCC, accuracy, precision and recall at
//! threshold 0.5, the share of ham scored ≥ 0.9 (confident false alarms) and
//! the share of spam scored < 0.5 (missed spam), then the mean of the four
//! folds. BENCHMARKS.md reports these numbers.
//!
//! Run from the crate root:
//!
//! ```text
//! cargo run --release --example spam_models [DATASETS_DIR]
//! ```
//!
//! `DATASETS_DIR` defaults to `../shared/datasets` relative to the crate
//! root and must contain `youtube-spam/Youtube0{1..4}-*.csv` (columns
//! `COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS`, `CLASS` 1 for spam). The data is
//! read in place, never copied into the repository. Training is
//! deterministic, so two runs print the same table.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use moderato::evaluation::Confusion;
use moderato::pipeline::spam::features::DIMENSIONS;
use moderato::pipeline::spam::{Features, Model, sigmoid};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The four videos, in the collection's order: (short name, file name).
const VIDEOS: [(&str, &str); 4] = [
    ("Psy", "Youtube01-Psy.csv"),
    ("KatyPerry", "Youtube02-KatyPerry.csv"),
    ("LMFAO", "Youtube03-LMFAO.csv"),
    ("Eminem", "Youtube04-Eminem.csv"),
];

/// Decision threshold for MCC, accuracy, precision and recall.
const THRESHOLD: f64 = 0.5;
/// Ham scored at least this high is a confident false alarm.
const CONFIDENT: f64 = 0.9;
/// Laplace smoothing for naive Bayes.
const ALPHA: f64 = 1.0;

type Example = (Features, bool);

/// Reads one video's comments: CONTENT without U+FEFF, CLASS 1 = spam.
fn read_video(path: &Path) -> Result<Vec<Example>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    let headers = reader.headers()?.clone();
    let column = |name: &str| -> Result<usize> {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').trim() == name)
            .with_context(|| format!("no {name} column in {}", path.display()))
    };
    let (content, class) = (column("CONTENT")?, column("CLASS")?);
    let mut examples = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("reading {}", path.display()))?;
        let text: String = record
            .get(content)
            .unwrap_or_default()
            .chars()
            .filter(|&c| c != '\u{feff}')
            .collect();
        let spam = match record.get(class).map(str::trim) {
            Some("1") => true,
            Some("0") => false,
            other => bail!(
                "{}: record {}: CLASS {other:?}, expected 0 or 1",
                path.display(),
                line + 1
            ),
        };
        examples.push((Features::extract(&text), spam));
    }
    if examples.is_empty() {
        bail!("{}: no comments", path.display());
    }
    Ok(examples)
}

/// Multinomial naive Bayes over `Features::indices`, as log-likelihood
/// ratios (spam over ham) per index.
struct NaiveBayes {
    log_prior_ratio: f64,
    /// `log P(i | spam) − log P(i | ham)`, `None` for indices never seen in
    /// training (outside the vocabulary, ignored).
    ratios: Vec<Option<f64>>,
}

impl NaiveBayes {
    fn fit(examples: &[Example]) -> Self {
        let mut counts = [vec![0u32; DIMENSIONS], vec![0u32; DIMENSIONS]];
        let mut documents = [0usize; 2];
        for (features, spam) in examples {
            let class = usize::from(*spam);
            documents[class] += 1;
            for i in features.indices() {
                counts[class][i as usize] += 1;
            }
        }
        let totals = counts
            .each_ref()
            .map(|c| c.iter().map(|&n| f64::from(n)).sum::<f64>());
        let vocabulary = (0..DIMENSIONS)
            .filter(|&i| counts[0][i] + counts[1][i] > 0)
            .count() as f64;
        let denominators = totals.map(|t| t + ALPHA * vocabulary);
        let ratios = (0..DIMENSIONS)
            .map(|i| {
                (counts[0][i] + counts[1][i] > 0).then(|| {
                    let spam = (f64::from(counts[1][i]) + ALPHA) / denominators[1];
                    let ham = (f64::from(counts[0][i]) + ALPHA) / denominators[0];
                    spam.ln() - ham.ln()
                })
            })
            .collect();
        NaiveBayes {
            log_prior_ratio: (documents[1] as f64 / documents[0] as f64).ln(),
            ratios,
        }
    }

    /// Posterior probability of spam.
    fn probability(&self, features: &Features) -> f64 {
        let logit = self.log_prior_ratio
            + features
                .indices()
                .filter_map(|i| self.ratios[i as usize])
                .sum::<f64>();
        sigmoid(logit)
    }
}

/// Metrics of one held-out video.
#[derive(Clone, Copy, Default)]
struct Row {
    comments: usize,
    mcc: f64,
    accuracy: f64,
    precision: f64,
    recall: f64,
    ham_confident: f64,
    spam_missed: f64,
}

impl Row {
    fn of(test: &[Example], score: impl Fn(&Features) -> f64) -> Self {
        let mut confusion = Confusion::default();
        let (mut ham, mut ham_confident, mut spam, mut spam_missed) = (0usize, 0usize, 0usize, 0);
        for (features, is_spam) in test {
            let p = score(features);
            let flagged = p >= THRESHOLD;
            match (flagged, *is_spam) {
                (true, true) => confusion.true_positives += 1,
                (true, false) => confusion.false_positives += 1,
                (false, false) => confusion.true_negatives += 1,
                (false, true) => confusion.false_negatives += 1,
            }
            if *is_spam {
                spam += 1;
                spam_missed += usize::from(p < THRESHOLD);
            } else {
                ham += 1;
                ham_confident += usize::from(p >= CONFIDENT);
            }
        }
        let share = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Row {
            comments: test.len(),
            mcc: confusion.mcc(),
            accuracy: confusion.accuracy(),
            precision: confusion.precision(),
            recall: confusion.recall(),
            ham_confident: share(ham_confident, ham),
            spam_missed: share(spam_missed, spam),
        }
    }

    fn mean(rows: &[Row]) -> Self {
        let n = rows.len() as f64;
        let mean = |f: fn(&Row) -> f64| rows.iter().map(f).sum::<f64>() / n;
        Row {
            comments: rows.iter().map(|r| r.comments).sum(),
            mcc: mean(|r| r.mcc),
            accuracy: mean(|r| r.accuracy),
            precision: mean(|r| r.precision),
            recall: mean(|r| r.recall),
            ham_confident: mean(|r| r.ham_confident),
            spam_missed: mean(|r| r.spam_missed),
        }
    }
}

fn print_table(model: &str, rows: &[(&str, Row)]) {
    println!("{model}");
    println!(
        "{:<10} {:>8} {:>6} {:>8} {:>9} {:>6} {:>10} {:>10}",
        "held out",
        "comments",
        "MCC",
        "accuracy",
        "precision",
        "recall",
        "ham >= 0.9",
        "spam < 0.5"
    );
    for (name, r) in rows {
        println!(
            "{:<10} {:>8} {:>6.3} {:>8.3} {:>9.3} {:>6.3} {:>10.3} {:>10.3}",
            name,
            r.comments,
            r.mcc,
            r.accuracy,
            r.precision,
            r.recall,
            r.ham_confident,
            r.spam_missed
        );
    }
    println!();
}

fn main() -> Result<()> {
    let datasets = std::env::args_os().nth(1).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets"),
        PathBuf::from,
    );
    let directory = datasets.join("youtube-spam");
    let videos: Vec<Vec<Example>> = VIDEOS
        .iter()
        .map(|(_, file)| read_video(&directory.join(file)))
        .collect::<Result<_>>()?;

    println!(
        "Leave-one-video-out on {} ({} comments, {} spam); \
         metrics at threshold {THRESHOLD}, mean = unweighted mean of the folds.\n",
        directory.display(),
        videos.iter().map(Vec::len).sum::<usize>(),
        videos.iter().flatten().filter(|(_, spam)| *spam).count(),
    );

    let mut logistic = Vec::new();
    let mut bayes = Vec::new();
    for (held_out, (name, _)) in VIDEOS.iter().enumerate() {
        let train: Vec<Example> = videos
            .iter()
            .enumerate()
            .filter(|&(v, _)| v != held_out)
            .flat_map(|(_, examples)| examples.iter().cloned())
            .collect();
        let test = &videos[held_out];

        let mut model = Model::default();
        model.fit(&train);
        logistic.push((*name, Row::of(test, |f| sigmoid(model.logit(f)))));

        let nb = NaiveBayes::fit(&train);
        bayes.push((*name, Row::of(test, |f| nb.probability(f))));
    }
    for rows in [&mut logistic, &mut bayes] {
        let folds: Vec<Row> = rows.iter().map(|(_, r)| *r).collect();
        rows.push(("mean", Row::mean(&folds)));
    }

    print_table(
        "Logistic regression (moderato::pipeline::spam::Model, fresh)",
        &logistic,
    );
    print_table(
        &format!("Multinomial naive Bayes (Laplace, alpha = {ALPHA})"),
        &bayes,
    );
    Ok(())
}
