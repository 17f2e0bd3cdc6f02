//! Logistic regression over hashed features, trained by stochastic gradient
//! descent.
//!
//! Chosen by measurement over multinomial naive Bayes on the same features:
//! leave-one-video-out on the YouTube spam collection gives a mean MCC of
//! 0.886 against 0.797, and scores 1.4 % of ham at 0.9 or more against
//! 15.7 % (`examples/spam_models.rs`, BENCHMARKS.md). Naive Bayes counts the dozens of
//! overlapping n-grams of one word as independent evidence and becomes
//! overconfident; logistic regression learns how much they overlap.
//!
//! Learning stays incremental: one labelled comment is one gradient step, an
//! [`Update`] of a few hundred weights. Updates are additive, so replicas can
//! apply them to the stored weights in any order (`weight = weight + delta`)
//! without a lost update.

use super::features::{DIMENSIONS, Features, Signal};

/// Step size of the first training epoch; later epochs take smaller steps.
const LEARNING_RATE: f64 = 1.0;
/// L2 regularisation per step: keeps rare features from dominating. 1e-3
/// measured best of 1e-5…3e-3 leave-one-video-out (BENCHMARKS.md).
pub const L2: f64 = 1e-3;
/// Passes over an imported training set.
pub const EPOCHS: usize = 10;

/// How [`Model::fit_with`] trains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    pub epochs: usize,
    pub l2: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: EPOCHS,
            l2: L2,
        }
    }
}
/// Step size for one label learned online (a moderator's decision, a
/// `MarkSpam`): as much as one training epoch gives an example.
pub const ONLINE_RATE: f64 = 1.0;

/// Weights of a logistic model.
#[derive(Clone, PartialEq)]
pub struct Model {
    weights: Vec<f32>,
    bias: f64,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nonzero = self.weights.iter().filter(|w| **w != 0.0).count();
        f.debug_struct("Model")
            .field("bias", &self.bias)
            .field("nonzero_weights", &nonzero)
            .finish()
    }
}

impl Default for Model {
    fn default() -> Self {
        Model {
            weights: vec![0.0; DIMENSIONS],
            bias: 0.0,
        }
    }
}

/// A change to a model: sparse weight deltas (sorted by index, each index
/// once) and a bias delta.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    pub weights: Vec<(u32, f64)>,
    pub bias: f64,
}

impl Update {
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty() && self.bias == 0.0
    }
}

/// How a score came about, in log-odds.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Bias + words + signals.
    pub logit: f64,
    /// Contribution of each word (its unigram, the bigram it ends and its
    /// character n-grams), indexed like `Features::words`.
    pub words: Vec<f64>,
    /// Contribution of each signal present.
    pub signals: Vec<(Signal, f64)>,
    /// Contribution of the extra evidence, together.
    pub extra: f64,
}

pub fn sigmoid(logit: f64) -> f64 {
    1.0 / (1.0 + (-logit).exp())
}

impl Model {
    pub fn bias(&self) -> f64 {
        self.bias
    }

    /// Log-odds that the text is spam.
    pub fn logit(&self, features: &Features) -> f64 {
        let value = features.text_value();
        let text: f64 = features
            .text
            .iter()
            .map(|&(b, _)| b)
            .chain(features.extra.iter().copied())
            .map(|b| f64::from(self.weights[b as usize]))
            .sum();
        let signals: f64 = features
            .signals()
            .map(|s| f64::from(self.weights[s.index() as usize]))
            .sum();
        self.bias + text * value + signals
    }

    /// The score with its breakdown, for explanations.
    pub fn score(&self, features: &Features) -> Scored {
        self.score_masked(features, &[], &features.extra)
    }

    /// [`score`](Self::score) of `features.masked(masked, extra.to_vec())`
    /// without building it: the toxicity stage scores every comment so,
    /// and copying its features was a tenth of the stage's cost. The
    /// features' own `extra` are replaced by `extra`, as `masked` does.
    pub fn score_masked(&self, features: &Features, masked: &[usize], extra: &[u32]) -> Scored {
        let kept = |w: u16| masked.binary_search(&usize::from(w)).is_err();
        let n = features.text.iter().filter(|&&(_, w)| kept(w)).count() + extra.len();
        let value = 1.0 / (n.max(1) as f64).sqrt();
        let mut words = vec![0.0; features.words.len()];
        for &(b, w) in &features.text {
            if kept(w) {
                words[w as usize] += f64::from(self.weights[b as usize]) * value;
            }
        }
        let signals: Vec<(Signal, f64)> = features
            .signals()
            .map(|s| (s, f64::from(self.weights[s.index() as usize])))
            .collect();
        let extra: f64 = extra
            .iter()
            .map(|&b| f64::from(self.weights[b as usize]) * value)
            .sum();
        let logit = self.bias
            + words.iter().sum::<f64>()
            + signals.iter().map(|s| s.1).sum::<f64>()
            + extra;
        Scored {
            logit,
            words,
            signals,
            extra,
        }
    }

    /// One gradient step towards `spam` for this example, not applied.
    pub fn step(&self, features: &Features, spam: bool, rate: f64) -> Update {
        self.step_with_bias_rate(features, spam, rate, rate)
    }

    /// [`Model::step`] with its own step size for the bias.
    pub fn step_with_bias_rate(
        &self,
        features: &Features,
        spam: bool,
        rate: f64,
        bias_rate: f64,
    ) -> Update {
        self.step_regularised(features, spam, rate, bias_rate, L2)
    }

    fn step_regularised(
        &self,
        features: &Features,
        spam: bool,
        rate: f64,
        bias_rate: f64,
        l2: f64,
    ) -> Update {
        let gradient = sigmoid(self.logit(features)) - if spam { 1.0 } else { 0.0 };
        let mut deltas: Vec<(u32, f64)> = features
            .values()
            .map(|(i, x)| {
                let w = f64::from(self.weights[i as usize]);
                (i, -rate * (gradient * x + l2 * w))
            })
            .collect();
        deltas.sort_unstable_by_key(|d| d.0);
        deltas.dedup_by(|later, first| {
            if later.0 == first.0 {
                first.1 += later.1;
                true
            } else {
                false
            }
        });
        Update {
            weights: deltas,
            bias: -bias_rate * gradient,
        }
    }

    pub fn apply(&mut self, update: &Update) {
        for &(i, delta) in &update.weights {
            let w = &mut self.weights[i as usize];
            *w = (f64::from(*w) + delta) as f32;
        }
        self.bias += update.bias;
    }

    /// Sets weights to stored values (used when loading a tenant's model).
    pub fn set(&mut self, index: u32, weight: f64) {
        self.weights[index as usize] = weight as f32;
    }

    pub fn weight(&self, index: u32) -> f64 {
        f64::from(self.weights[index as usize])
    }

    pub fn set_bias(&mut self, bias: f64) {
        self.bias = bias;
    }

    /// Trains on `examples` for [`EPOCHS`] passes in a fixed pseudo-random
    /// order (so training is reproducible) and returns what changed.
    pub fn fit(&mut self, examples: &[(Features, bool)]) -> Update {
        self.fit_with(examples, &FitOptions::default())
    }

    /// [`Model::fit`] with other epochs or regularisation.
    pub fn fit_with(&mut self, examples: &[(Features, bool)], options: &FitOptions) -> Update {
        let before = self.clone();
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for epoch in 0..options.epochs {
            for i in (1..order.len()).rev() {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                order.swap(i, (state >> 33) as usize % (i + 1));
            }
            let rate = LEARNING_RATE / (1.0 + 0.5 * epoch as f64);
            for &i in &order {
                let (features, spam) = &examples[i];
                let update = self.step_regularised(features, *spam, rate, rate, options.l2);
                self.apply(&update);
            }
        }
        let mut touched: Vec<u32> = examples
            .iter()
            .flat_map(|(f, _)| f.values().map(|(i, _)| i))
            .collect();
        touched.sort_unstable();
        touched.dedup();
        Update {
            weights: touched
                .into_iter()
                .map(|i| (i, self.weight(i) - before.weight(i)))
                .filter(|(_, d)| *d != 0.0)
                .collect(),
            bias: self.bias - before.bias,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples() -> Vec<(Features, bool)> {
        let spam = [
            "check out my channel and subscribe",
            "subscribe to my channel for free gift cards",
            "abonnez-vous à ma chaîne, cliquez ici",
            "gagnez de l'argent facilement, contactez-moi sur whatsapp",
        ];
        let ham = [
            "the budget vote was postponed again",
            "le budget a encore été reporté par l'assemblée",
            "bonne analyse de la situation économique",
            "I disagree with the minister on inflation",
        ];
        spam.iter()
            .map(|t| (Features::extract(t), true))
            .chain(ham.iter().map(|t| (Features::extract(t), false)))
            .collect()
    }

    fn trained() -> Model {
        let mut model = Model::default();
        model.fit(&examples());
        model
    }

    fn p(model: &Model, text: &str) -> f64 {
        sigmoid(model.logit(&Features::extract(text)))
    }

    #[test]
    fn an_untrained_model_is_undecided() {
        assert_eq!(p(&Model::default(), "anything"), 0.5);
    }

    #[test]
    fn a_tiny_model_orders_spam_above_ham() {
        let model = trained();
        let spammy = p(&model, "subscribe to my channel");
        let obfuscated = p(&model, "SUBSCR1BE to my ch4nnel");
        let hammy = p(&model, "the assemblée postponed the budget");
        assert!(spammy > 0.8, "{spammy}");
        assert!(hammy < 0.2, "{hammy}");
        assert!(
            (spammy - obfuscated).abs() < 1e-12,
            "obfuscation does not lower the score"
        );
    }

    #[test]
    fn the_breakdown_adds_up_to_the_logit() {
        let model = trained();
        let features = Features::extract("Subscribe to my channel: https://bit.ly/x");
        let scored = model.score(&features);
        let sum = model.bias()
            + scored.words.iter().sum::<f64>()
            + scored.signals.iter().map(|s| s.1).sum::<f64>();
        assert!((scored.logit - sum).abs() < 1e-9);
        assert!((scored.logit - model.logit(&features)).abs() < 1e-9);
        assert_eq!(scored.words.len(), 8, "the link's parts are words too");
    }

    #[test]
    fn scoring_masked_is_scoring_the_masked_copy() {
        let model = trained();
        let features = Features::extract("subscribe to my channel, the budget vote was postponed");
        for (masked, extra) in [
            (vec![], vec![]),
            (vec![1, 3], vec![]),
            (vec![0], vec![7, 262_150]),
            (vec![], vec![9]),
        ] {
            let direct = model.score_masked(&features, &masked, &extra);
            let copied = model.score(&features.masked(&masked, extra.clone()));
            assert!(
                (direct.logit - copied.logit).abs() < 1e-9,
                "{masked:?} {extra:?}"
            );
            assert_eq!(direct.words.len(), copied.words.len());
            for (a, b) in direct.words.iter().zip(&copied.words) {
                assert!((a - b).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn a_step_moves_the_score_towards_the_label_and_fit_returns_the_difference() {
        let mut model = trained();
        let text = Features::extract("promo code casino bonus");
        let before = model.logit(&text);
        let update = model.step(&text, true, ONLINE_RATE);
        assert!(
            update.weights.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, unique"
        );
        model.apply(&update);
        assert!(model.logit(&text) > before);
        let after_spam = model.logit(&text);
        model.apply(&model.step(&text, false, ONLINE_RATE));
        assert!(model.logit(&text) < after_spam);

        let fixed_bias = model.step_with_bias_rate(&text, true, ONLINE_RATE, 0.0);
        assert_eq!(fixed_bias.bias, 0.0);
        assert_eq!(
            fixed_bias.weights,
            model.step(&text, true, ONLINE_RATE).weights,
            "the weights' step does not depend on the bias's"
        );

        let mut fresh = Model::default();
        let update = fresh.fit(&examples());
        let mut replayed = Model::default();
        replayed.apply(&update);
        let probe = Features::extract("subscribe to my channel");
        assert!((fresh.logit(&probe) - replayed.logit(&probe)).abs() < 1e-4);
    }
}
