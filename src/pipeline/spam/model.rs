//! Multinomial naive Bayes over hashed features, with Laplace smoothing.
//!
//! Chosen to start because its statistics are plain counts: they can be
//! stored per tenant, added to by every moderator decision (no retraining
//! pass), and merged across replicas. Whether logistic regression does better
//! on held-out data is for the evaluation command to decide.

use std::collections::HashMap;

use super::features::{BUCKETS, features};

/// Counts learned from labelled comments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NaiveBayes {
    /// Per feature bucket: occurrences in (ham, spam) comments.
    counts: HashMap<u32, [u32; 2]>,
    /// Total feature occurrences in (ham, spam) comments.
    totals: [u64; 2],
    /// Labelled comments seen: (ham, spam).
    documents: [u64; 2],
}

const HAM: usize = 0;
const SPAM: usize = 1;

impl NaiveBayes {
    /// Adds one labelled comment to the statistics.
    pub fn learn(&mut self, text: &str, spam: bool) {
        let class = if spam { SPAM } else { HAM };
        for bucket in features(text) {
            self.counts.entry(bucket).or_default()[class] += 1;
            self.totals[class] += 1;
        }
        self.documents[class] += 1;
    }

    pub fn documents(&self) -> (u64, u64) {
        (self.documents[HAM], self.documents[SPAM])
    }

    /// The probability that `text` is spam, in [0, 1]; 0.5 with no data.
    pub fn score(&self, text: &str) -> f64 {
        if self.documents[HAM] == 0 || self.documents[SPAM] == 0 {
            return 0.5;
        }
        let vocabulary = (self.counts.len() as f64).min(f64::from(BUCKETS));
        let prior = ((self.documents[SPAM] as f64) / (self.documents[HAM] as f64)).ln();
        let log_odds = features(text).into_iter().fold(prior, |acc, bucket| {
            let [ham, spam] = self.counts.get(&bucket).copied().unwrap_or_default();
            let p_spam = (f64::from(spam) + 1.0) / (self.totals[SPAM] as f64 + vocabulary);
            let p_ham = (f64::from(ham) + 1.0) / (self.totals[HAM] as f64 + vocabulary);
            acc + (p_spam / p_ham).ln()
        });
        1.0 / (1.0 + (-log_odds).exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trained() -> NaiveBayes {
        let mut model = NaiveBayes::default();
        for spam in [
            "check out my channel and subscribe",
            "subscribe to my channel for free gift cards",
            "abonnez-vous à ma chaîne, cliquez ici",
            "gagnez de l'argent facilement, contactez-moi sur whatsapp",
        ] {
            model.learn(spam, true);
        }
        for ham in [
            "the budget vote was postponed again",
            "le budget a encore été reporté par l'assemblée",
            "bonne analyse de la situation économique",
            "I disagree with the minister on inflation",
        ] {
            model.learn(ham, false);
        }
        model
    }

    #[test]
    fn an_untrained_model_is_undecided() {
        assert_eq!(NaiveBayes::default().score("anything"), 0.5);
    }

    #[test]
    fn a_tiny_model_orders_spam_above_ham() {
        let model = trained();
        assert_eq!(model.documents(), (4, 4));
        let spammy = model.score("subscribe to my channel");
        let obfuscated = model.score("SUBSCR1BE to my ch4nnel");
        let hammy = model.score("the assemblée postponed the budget");
        assert!(spammy > 0.9, "{spammy}");
        assert!(hammy < 0.1, "{hammy}");
        assert!(
            (spammy - obfuscated).abs() < 1e-12,
            "obfuscation does not lower the score"
        );
    }

    #[test]
    fn learning_a_label_moves_the_score_towards_it() {
        let mut model = trained();
        let before = model.score("promo code casino bonus");
        model.learn("promo code casino bonus", true);
        assert!(model.score("promo code casino bonus") > before);
    }
}
