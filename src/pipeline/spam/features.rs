//! Hashed features: word unigrams and bigrams, and character 3- to 5-grams
//! inside words (robust to French morphology and to obfuscation the
//! normaliser does not undo).

use crate::pipeline::normalize::normalize;

/// Number of hash buckets (2^18): small enough to store per tenant, large
/// enough that collisions between useful features are rare.
pub const BUCKETS: u32 = 1 << 18;

/// FNV-1a, seeded per feature family so a word and a trigram never share a
/// bucket by construction.
fn hash(seed: u64, parts: &[&[u8]]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0xff;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    (h % u64::from(BUCKETS)) as u32
}

/// The feature buckets of `text`, with repetitions (a multiset).
pub fn features(text: &str) -> Vec<u32> {
    let folded = normalize(text);
    let words: Vec<&str> = folded.text.split(' ').filter(|w| !w.is_empty()).collect();
    let mut out = Vec::with_capacity(words.len() * 6);
    for (i, word) in words.iter().enumerate() {
        out.push(hash(1, &[word.as_bytes()]));
        if let Some(next) = words.get(i + 1) {
            out.push(hash(2, &[word.as_bytes(), next.as_bytes()]));
        }
        let padded: Vec<u8> = std::iter::once(b'<')
            .chain(word.bytes())
            .chain(std::iter::once(b'>'))
            .collect();
        for n in 3..=5 {
            for gram in padded.windows(n) {
                out.push(hash(10 + n as u64, &[gram]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obfuscated_spellings_share_features() {
        assert_eq!(features("Check my CHANNEL"), features("ch3ck  my  chánnel"));
    }

    #[test]
    fn features_are_in_range_and_ordered_words_matter() {
        let f = features("abonnez vous à ma chaîne");
        assert!(f.iter().all(|&b| b < BUCKETS));
        assert_ne!(features("money free"), features("free money"));
    }
}
