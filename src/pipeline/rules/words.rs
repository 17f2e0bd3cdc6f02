//! Word lists: one Aho-Corasick automaton over the normalised forms of every
//! entry of every word rule of a tenant.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::domain::FieldViolation;
use crate::pipeline::normalize::{Normalized, normalize};

/// One list entry behind an automaton pattern.
struct Entry {
    rule: usize,
    /// The entry as the publisher wrote it, for explanations.
    original: String,
    /// Run length of each byte of the pattern (see `normalize`).
    runs: Box<[u16]>,
    /// `word*`: the match may continue into a longer word.
    prefix: bool,
    /// `*word`: the match may start inside a longer word.
    suffix: bool,
}

pub(super) struct WordMatcher {
    automaton: AhoCorasick,
    /// Per automaton pattern, every entry that normalises to it.
    entries: Vec<Vec<Entry>>,
}

impl WordMatcher {
    pub(super) fn build(lists: &[(usize, &[String])]) -> Result<Option<Self>, FieldViolation> {
        let mut patterns: Vec<String> = Vec::new();
        let mut entries: Vec<Vec<Entry>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (rule, words) in lists {
            for word in words.iter() {
                let prefix = word.trim_end().ends_with('*');
                let suffix = word.trim_start().starts_with('*');
                let core = word.trim().trim_matches('*');
                let folded = normalize(core);
                if folded.text.is_empty() {
                    continue;
                }
                let runs: Box<[u16]> = (0..folded.text.len()).map(|i| folded.run(i)).collect();
                // Leetspeak `1` reads as `i` in the text, but it often stands for
                // `l`: an entry with an `l` also matches with every `l` as `i`.
                let mut forms = vec![folded.text.clone()];
                if folded.text.contains('l') {
                    forms.push(folded.text.replace('l', "i"));
                }
                for form in forms {
                    let slot = *index.entry(form.clone()).or_insert_with(|| {
                        patterns.push(form);
                        entries.push(Vec::new());
                        entries.len() - 1
                    });
                    entries[slot].push(Entry {
                        rule: *rule,
                        original: core.to_owned(),
                        runs: runs.clone(),
                        prefix,
                        suffix,
                    });
                }
            }
        }
        if patterns.is_empty() {
            return Ok(None);
        }
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .map_err(|e| FieldViolation::new("rules", format!("word lists too large: {e}")))?;
        Ok(Some(WordMatcher { automaton, entries }))
    }

    /// Calls `hit(rule, start, end, entry)` for each whole-word match, with
    /// `start..end` a byte range of `text.text`.
    pub(super) fn find(&self, text: &Normalized, hit: &mut dyn FnMut(usize, usize, usize, &str)) {
        for m in self.automaton.find_overlapping_iter(&text.text) {
            let (start, end) = (m.start(), m.end());
            for entry in &self.entries[m.pattern().as_usize()] {
                if (entry.suffix || text.is_word_start(start))
                    && (entry.prefix || text.is_word_end(end))
                    && runs_agree(text, start, entry)
                {
                    // An open entry reports (and masks) the whole word.
                    let bytes = text.text.as_bytes();
                    let mut word_start = start;
                    if entry.suffix {
                        while word_start > 0 && bytes[word_start - 1] != b' ' {
                            word_start -= 1;
                        }
                    }
                    let mut word_end = end;
                    if entry.prefix {
                        while word_end < bytes.len() && bytes[word_end] != b' ' {
                            word_end += 1;
                        }
                    }
                    hit(entry.rule, word_start, word_end, &entry.original);
                }
            }
        }
    }
}

/// A letter repeated in the text matches the entry when the counts agree, or
/// when the text stretches it to three or more (`connnnard`); `salle` (two) is
/// not `sale` (one), and `as` is not `ass`. Where an entry is open (`shit*`),
/// its open end may be doubled by the longer word (`shitty`).
fn runs_agree(text: &Normalized, start: usize, entry: &Entry) -> bool {
    let last = entry.runs.len().saturating_sub(1);
    entry.runs.iter().enumerate().all(|(i, &expected)| {
        let actual = text.run(start + i);
        let open_end = (entry.prefix && i == last) || (entry.suffix && i == 0);
        actual == expected || actual >= 3 || (open_end && actual > expected)
    })
}
