//! What the classifier sees: hashed text features computed on the rule
//! engine's normalised text, and behaviour signals read from the original.
//!
//! Text features are word unigrams and bigrams and character 3- to 5-grams
//! inside words (robust to French morphology and to obfuscation the
//! normaliser does not undo). Because they are hashed after normalisation,
//! `SUBSCR1BE to my ch4nnel` has exactly the features of `subscribe to my
//! channel`. Signals (links, contact baits, shouting) get their own weights,
//! outside the hash space, so each one can be named in an explanation.

use std::sync::{Arc, LazyLock};

use regex::Regex;

use crate::domain::Span;

use crate::pipeline::normalize::{Normalized, normalize};
use crate::pipeline::rules::links::{find_links, is_shortener};
use crate::pipeline::rules::structure::Stats;

/// Number of hash buckets for text features (2^18): small enough to keep a
/// model per tenant in memory (1 MiB), large enough that collisions between
/// useful features are rare.
pub const BUCKETS: u32 = 1 << 18;

/// Length of a model's weight vector: the buckets, then one weight per signal.
pub const DIMENSIONS: usize = BUCKETS as usize + Signal::ALL.len();

/// Evidence about a comment's form rather than its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Link,
    SeveralLinks,
    Shortener,
    Email,
    Phone,
    MessagingHandle,
    Capitals,
    RepeatedCharacters,
    Emoji,
}

impl Signal {
    pub const ALL: [Signal; 9] = [
        Signal::Link,
        Signal::SeveralLinks,
        Signal::Shortener,
        Signal::Email,
        Signal::Phone,
        Signal::MessagingHandle,
        Signal::Capitals,
        Signal::RepeatedCharacters,
        Signal::Emoji,
    ];

    /// The signal's weight index in a model.
    pub fn index(self) -> u32 {
        BUCKETS + self as u32
    }

    /// The `Reason` code that reports it.
    pub fn code(self) -> &'static str {
        match self {
            Signal::Link => "spam.link",
            Signal::SeveralLinks => "spam.links",
            Signal::Shortener => "spam.shortener",
            Signal::Email => "spam.email",
            Signal::Phone => "spam.phone",
            Signal::MessagingHandle => "spam.handle",
            Signal::Capitals => "spam.capitals",
            Signal::RepeatedCharacters => "spam.repeated_characters",
            Signal::Emoji => "spam.emoji",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Signal::Link => "contains a link",
            Signal::SeveralLinks => "contains several links",
            Signal::Shortener => "links through a URL shortener",
            Signal::Email => "gives an e-mail address",
            Signal::Phone => "gives a phone number",
            Signal::MessagingHandle => "gives a messaging handle",
            Signal::Capitals => "mostly capital letters",
            Signal::RepeatedCharacters => "a character repeated four times or more",
            Signal::Emoji => "three emoji or more",
        }
    }
}

/// The features of one text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features {
    /// Hashed text features, with repetitions, each with the index of the
    /// word it came from (for explanations).
    pub(crate) text: Vec<(u32, u16)>,
    /// Per word: where it is in the original text.
    pub(crate) words: Vec<Span>,
    /// Signals present, each once, with a span when it has one.
    pub(crate) signals: Vec<(Signal, Option<Span>)>,
    /// Buckets of evidence another stage adds (the toxicity lexicons'
    /// cues), valued like text features but tied to no word. Empty for
    /// the spam score.
    pub(crate) extra: Vec<u32>,
    /// Fingerprints for duplicate detection.
    pub fingerprint: Fingerprint,
    /// The text as the rules and the toxicity lexicons read it too: folded
    /// once per comment and shared (the features of the comment's body).
    pub(crate) normalized: Arc<Normalized>,
    /// The original text's shape, read by the spam signals and the
    /// structure rules alike (counted once).
    pub(crate) stats: Stats,
}

/// Fingerprints of a text's normalised words: `exact` is equal for texts that
/// normalise the same (so obfuscated copies match), `simhash` differs in few
/// bits for texts that share most words and word pairs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fingerprint {
    pub exact: i64,
    pub simhash: i64,
    /// Number of words: duplicate signals ignore very short texts
    /// ("Merci !", "Bravo") that many readers write independently.
    pub words: u32,
}

impl Fingerprint {
    /// Bits that differ between the two simhashes.
    pub fn distance(self, other: Fingerprint) -> u32 {
        (self.simhash ^ other.simhash).count_ones()
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, seeded per feature family so a word and a trigram never share a
/// bucket by construction. Stable across versions and platforms: stored
/// models and fingerprints depend on it.
fn hash64(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h = FNV_OFFSET ^ seed;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0xff;
            h = h.wrapping_mul(FNV_PRIME);
        }
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(FNV_PRIME);
        }
    }
    // FNV's low bits mix poorly for short inputs; fold the high half in.
    h ^ (h >> 29)
}

/// For every byte value, ±1 per bit (+1 when set), for the simhash.
static SIGNS: [[i32; 8]; 256] = {
    let mut table = [[0i32; 8]; 256];
    let mut value = 0;
    while value < 256 {
        let mut bit = 0;
        while bit < 8 {
            table[value][bit] = if value >> bit & 1 == 1 { 1 } else { -1 };
            bit += 1;
        }
        value += 1;
    }
    table
};

/// The 3-, 4- and 5-grams of `<word>`: one FNV pass per start position,
/// emitting the running hash after 3, 4 and 5 bytes (the length is mixed in
/// so `abc` and `abcd` never share a prefix hash).
fn char_ngrams(word: &[u8], mut emit: impl FnMut(u64)) {
    let byte_at = |i: usize| -> u8 {
        if i == 0 {
            b'<'
        } else if i <= word.len() {
            word[i - 1]
        } else {
            b'>'
        }
    };
    let padded = word.len() + 2;
    for start in 0..padded.saturating_sub(2) {
        let mut h = FNV_OFFSET ^ 13;
        for n in 0..5.min(padded - start) {
            h ^= u64::from(byte_at(start + n));
            h = h.wrapping_mul(FNV_PRIME);
            if n >= 2 {
                let g = h ^ (n as u64) << 56;
                emit(g ^ (g >> 29));
            }
        }
    }
}

/// The bucket of a named piece of extra evidence (its own hash family).
pub fn extra_bucket(name: &str) -> u32 {
    bucket(hash64(7, &[name.as_bytes()]))
}

fn bucket(h: u64) -> u32 {
    (h % u64::from(BUCKETS)) as u32
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}").expect("compiles")
});

/// International numbers (`+225 07 12 34 56 78`, `00221…`), numbers written
/// in pairs (`07 12 34 56 78`), and long digit runs. ASCII digits and word
/// boundaries (`(?-u:…)`) keep the regex on its fast DFA path.
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x-u)
          (?:\+|\b00)[0-9]{1,3}[\ .-]?(?:\(?[0-9]\)?[\ .-]?){6,12}[0-9]\b
        | \b[0-9]{2}(?:[\ .-][0-9]{2}){3,5}\b
        | \b[0-9]{9,13}\b",
    )
    .expect("compiles")
});

/// `@handle` (not inside an e-mail address), or a messaging link.
static HANDLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:^|[\s(:])@[a-z0-9_.]{3,}|(?-u:\b)(?:wa\.me|t\.me|telegram\.me)/\S+")
        .expect("compiles")
});

impl Features {
    /// Extracts features from a comment as submitted.
    pub fn extract(original: &str) -> Self {
        let folded = Arc::new(normalize(original));
        let text = folded.text.as_str();
        let mut features = Features {
            text: Vec::with_capacity(text.len() * 4),
            ..Features::default()
        };
        // Simhash over word unigrams and bigrams: per bit, +1 when a
        // feature's hash has it set and −1 otherwise, a byte at a time.
        let mut simhash = [0i32; 64];
        let mut add_to_simhash = |h: u64| {
            for (byte, counts) in simhash.chunks_exact_mut(8).enumerate() {
                let signs = &SIGNS[((h >> (8 * byte)) & 0xff) as usize];
                for (count, sign) in counts.iter_mut().zip(signs) {
                    *count += sign;
                }
            }
        };
        let mut previous: Option<&str> = None;
        let mut offset = 0;
        for word in text.split(' ') {
            let start = offset;
            offset += word.len() + 1;
            if word.is_empty() {
                continue;
            }
            let index = features.words.len().min(usize::from(u16::MAX)) as u16;
            let (s, e) = folded.original_span(start, start + word.len());
            features.words.push(Span { start: s, end: e });

            let unigram = hash64(1, &[word.as_bytes()]);
            features.text.push((bucket(unigram), index));
            add_to_simhash(unigram);
            if let Some(previous) = previous {
                let bigram = hash64(2, &[previous.as_bytes(), word.as_bytes()]);
                // A bigram explains the word that completes it.
                features.text.push((bucket(bigram), index));
                add_to_simhash(bigram);
            }
            previous = Some(word);
            char_ngrams(word.as_bytes(), |h| features.text.push((bucket(h), index)));
        }
        let simhash = simhash.iter().enumerate().fold(0u64, |acc, (bit, &count)| {
            acc | (u64::from(count > 0) << bit)
        });
        features.fingerprint = Fingerprint {
            exact: hash64(3, &[text.as_bytes()]) as i64,
            simhash: simhash as i64,
            words: features.words.len() as u32,
        };
        features.stats = Stats::of(original);
        features.signals = signals(original, &features.stats);
        features.normalized = folded;
        features
    }

    /// Each text feature's value: 1/√n, so long comments do not get extreme
    /// scores just by being long.
    pub(crate) fn text_value(&self) -> f64 {
        1.0 / ((self.text.len() + self.extra.len()).max(1) as f64).sqrt()
    }

    /// These features with `buckets` of extra evidence (hashed by
    /// [`extra_bucket`]).
    pub fn with_extra(&self, buckets: Vec<u32>) -> Features {
        Features {
            extra: buckets,
            ..self.clone()
        }
    }

    /// As [`with_extra`](Self::with_extra), without the text features of
    /// the words in `masked` (indices into the words, sorted).
    pub fn masked(&self, masked: &[usize], buckets: Vec<u32>) -> Features {
        if masked.is_empty() {
            return self.with_extra(buckets);
        }
        Features {
            text: self
                .text
                .iter()
                .copied()
                .filter(|&(_, w)| masked.binary_search(&usize::from(w)).is_err())
                .collect(),
            words: self.words.clone(),
            signals: self.signals.clone(),
            extra: buckets,
            fingerprint: self.fingerprint,
            normalized: self.normalized.clone(),
            stats: self.stats,
        }
    }

    /// The folded text the features came from.
    pub fn normalized(&self) -> &Arc<Normalized> {
        &self.normalized
    }

    pub fn signals(&self) -> impl Iterator<Item = Signal> + '_ {
        self.signals.iter().map(|(s, _)| *s)
    }

    /// Every feature's weight index, with repetitions: text buckets, then
    /// signals (for other learners over the same features).
    pub fn indices(&self) -> impl Iterator<Item = u32> + '_ {
        self.text
            .iter()
            .map(|&(b, _)| b)
            .chain(self.extra.iter().copied())
            .chain(self.signals().map(Signal::index))
    }

    /// The indices of every feature with its value (for training).
    pub(crate) fn values(&self) -> impl Iterator<Item = (u32, f64)> + '_ {
        let value = self.text_value();
        self.text
            .iter()
            .map(move |&(b, _)| (b, value))
            .chain(self.extra.iter().map(move |&b| (b, value)))
            .chain(self.signals().map(|s| (s.index(), 1.0)))
    }
}

fn span(m: regex::Match<'_>) -> Option<Span> {
    Some(Span {
        start: m.start() as u32,
        end: m.end() as u32,
    })
}

fn signals(original: &str, stats: &Stats) -> Vec<(Signal, Option<Span>)> {
    let mut out = Vec::new();
    let links = find_links(original);
    let email = EMAIL.find(original);
    // An e-mail address is not also a link to its domain.
    let links: Vec<_> = links
        .into_iter()
        .filter(|l| {
            email.is_none_or(|e| {
                (l.span.end as usize) <= e.start() || l.span.start as usize >= e.end()
            })
        })
        .collect();
    if let Some(first) = links.first() {
        out.push((Signal::Link, Some(first.span)));
    }
    if links.len() >= 2 {
        out.push((Signal::SeveralLinks, Some(links[1].span)));
    }
    if let Some(short) = links.iter().find(|l| is_shortener(&l.host)) {
        out.push((Signal::Shortener, Some(short.span)));
    }
    if let Some(m) = email {
        out.push((Signal::Email, span(m)));
    }
    if let Some(m) = PHONE.find(original) {
        out.push((Signal::Phone, span(m)));
    }
    if let Some(m) = HANDLE.find(original) {
        out.push((Signal::MessagingHandle, span(m)));
    }
    if stats.letters >= 12 && f64::from(stats.upper) >= 0.6 * f64::from(stats.letters) {
        out.push((Signal::Capitals, None));
    }
    if stats.longest_run >= 4 {
        out.push((Signal::RepeatedCharacters, None));
    }
    if stats.emoji >= 3 {
        out.push((Signal::Emoji, None));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(text: &str) -> Vec<u32> {
        Features::extract(text)
            .text
            .into_iter()
            .map(|(b, _)| b)
            .collect()
    }

    fn signals_of(text: &str) -> Vec<Signal> {
        Features::extract(text).signals().collect()
    }

    #[test]
    fn obfuscated_spellings_share_text_features_and_fingerprint() {
        assert_eq!(buckets("Check my CHANNEL"), buckets("ch3ck  my  chánnel"));
        assert_eq!(
            Features::extract("Check my CHANNEL").fingerprint,
            Features::extract("ch3ck  my  chánnel").fingerprint
        );
    }

    #[test]
    fn every_character_ngram_is_hashed_once() {
        let mut count = 0;
        char_ngrams(b"abc", |_| count += 1);
        // <abc> has 3 trigrams, 2 four-grams and 1 five-gram.
        assert_eq!(count, 6);
        let mut hashes = Vec::new();
        char_ngrams(b"a", |h| hashes.push(h));
        assert_eq!(hashes.len(), 1, "<a> is one trigram");
        let mut x = Vec::new();
        char_ngrams(b"ab", |h| x.push(h));
        assert_eq!(x.len(), 3, "<ab, ab>, <ab>");
        assert!(x.iter().all(|h| !hashes.contains(h)));
    }

    #[test]
    fn features_are_in_range_and_word_order_matters() {
        let f = buckets("abonnez vous à ma chaîne");
        assert!(f.iter().all(|&b| b < BUCKETS));
        assert_ne!(buckets("money free"), buckets("free money"));
    }

    #[test]
    fn words_point_into_the_original_text() {
        let text = "Abonnez-vous à ma CHAÎNE";
        let features = Features::extract(text);
        let words: Vec<&str> = features
            .words
            .iter()
            .map(|s| &text[s.start as usize..s.end as usize])
            .collect();
        assert_eq!(words, ["Abonnez", "vous", "à", "ma", "CHAÎNE"]);
        assert!(
            features
                .text
                .iter()
                .all(|&(_, w)| (w as usize) < words.len())
        );
    }

    #[test]
    fn near_duplicates_have_close_simhashes_and_different_texts_do_not() {
        let a = Features::extract(
            "Gagnez 500 euros par jour depuis chez vous, écrivez-moi vite pour savoir comment",
        )
        .fingerprint;
        let b = Features::extract(
            "Gagnez 500 euros par jour depuis chez vous !! écrivez-moi vite pour savoir comment faire",
        )
        .fingerprint;
        let c = Features::extract(
            "Le budget de l'État prévoit une baisse des subventions au carburant cette année",
        )
        .fingerprint;
        assert_ne!(a.exact, b.exact);
        assert!(a.distance(b) <= 12, "{}", a.distance(b));
        assert!(a.distance(c) > 16, "{}", a.distance(c));
    }

    #[test]
    fn contact_baits_are_signals() {
        assert_eq!(
            signals_of("écrivez sur WhatsApp au +225 07 12 34 56 78"),
            [Signal::Phone]
        );
        assert_eq!(signals_of("appelez le 07 12 34 56 78"), [Signal::Phone]);
        assert_eq!(
            signals_of("contact: gains.rapides@example.com"),
            [Signal::Email]
        );
        assert_eq!(
            signals_of("follow me @lucky_trader"),
            [Signal::MessagingHandle]
        );
        assert_eq!(
            signals_of("voir https://bit.ly/abc et www.example.com"),
            [Signal::Link, Signal::SeveralLinks, Signal::Shortener]
        );
    }

    #[test]
    fn ordinary_numbers_and_text_are_not_signals() {
        for text in [
            "Le budget 2026 prévoit 1 200 milliards de francs CFA",
            "Inflation at 4.5% in 2025, down from 6.1%",
            "Merci pour cet article très clair.",
            "Le match de la CAN commence à 20h30",
        ] {
            assert_eq!(signals_of(text), [], "{text}");
        }
    }

    #[test]
    fn shouting_repeats_and_emoji_are_signals() {
        assert_eq!(
            signals_of("CLICK HERE NOW FOR FREE MONEY"),
            [Signal::Capitals]
        );
        assert_eq!(
            signals_of("waouh!!!! trop bien"),
            [Signal::RepeatedCharacters]
        );
        assert_eq!(signals_of("🔥🔥 💰 gains"), [Signal::Emoji]);
    }
}
