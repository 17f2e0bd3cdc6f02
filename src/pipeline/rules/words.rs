//! Word lists: every entry of every word rule of a tenant in one trie over
//! normalised forms.
//!
//! Whole-word entries can only match where a word starts, so the trie is
//! walked from each word start of the normalised text (a few nodes per word)
//! instead of scanning every byte through a large automaton: the cost per
//! comment stays flat from a hundred entries to hundreds of thousands. The
//! rare `*suffix` entries, which can start inside a word, go to a small
//! Aho-Corasick automaton scanned over the whole text.

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

pub(crate) struct WordMatcher {
    trie: Trie,
    /// Entries that may start inside a word (`*suffix`), and their automaton.
    suffixes: Option<(AhoCorasick, Vec<Vec<Entry>>)>,
    /// Per trie slot, every entry that normalises to it.
    entries: Vec<Vec<Entry>>,
}

const NO_SLOT: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Node {
    edges_start: u32,
    edges_len: u32,
    slot: u32,
    /// Index into `Trie::dense` for nodes with many children, else `NO_SLOT`.
    dense: u32,
}

/// Nodes with more children than this get a direct 256-entry table.
const DENSE_CHILDREN: u32 = 16;

/// A byte trie: the root's and other busy nodes' children in direct tables,
/// the rest as sorted edge lists in one array. Busy nodes sit near the root,
/// where every walk passes, so the tables are few and hot.
struct Trie {
    nodes: Vec<Node>,
    edges: Vec<(u8, u32)>,
    dense: Vec<[u32; 256]>,
}

impl Trie {
    /// Builds from patterns without a per-node allocation: patterns are
    /// visited in sorted order, so each shares a prefix path with the one
    /// before it and new nodes are only ever appended. (Hundreds of thousands
    /// of small temporary vectors would leave the allocator fragmented and
    /// slow down every later request.)
    fn build(patterns: &[String]) -> Trie {
        let mut order: Vec<usize> = (0..patterns.len()).collect();
        order.sort_unstable_by(|&a, &b| patterns[a].as_bytes().cmp(patterns[b].as_bytes()));
        let mut slots: Vec<u32> = vec![NO_SLOT];
        // (parent, byte, child), in creation order.
        let mut links: Vec<(u32, u8, u32)> = Vec::new();
        let mut path: Vec<u32> = vec![0];
        let mut previous: &[u8] = &[];
        for slot in order {
            let pattern = patterns[slot].as_bytes();
            let shared = pattern
                .iter()
                .zip(previous)
                .take_while(|(a, b)| a == b)
                .count();
            path.truncate(shared + 1);
            for &byte in &pattern[shared..] {
                let parent = *path.last().expect("the root stays on the path");
                let child = slots.len() as u32;
                slots.push(NO_SLOT);
                links.push((parent, byte, child));
                path.push(child);
            }
            slots[*path.last().expect("non-empty path") as usize] = slot as u32;
            previous = pattern;
        }
        // Group each node's children: stable by parent keeps them in byte order.
        links.sort_by_key(|&(parent, _, _)| parent);
        let mut nodes: Vec<Node> = slots
            .iter()
            .map(|&slot| Node {
                edges_start: 0,
                edges_len: 0,
                slot,
                dense: NO_SLOT,
            })
            .collect();
        let mut edges = Vec::with_capacity(links.len());
        for &(parent, byte, child) in &links {
            let node = &mut nodes[parent as usize];
            if node.edges_len == 0 {
                node.edges_start = edges.len() as u32;
            }
            node.edges_len += 1;
            edges.push((byte, child));
        }
        let mut dense = Vec::new();
        for (index, node) in nodes.iter_mut().enumerate() {
            if index == 0 || node.edges_len > DENSE_CHILDREN {
                let mut table = [0u32; 256];
                let start = node.edges_start as usize;
                for &(byte, child) in &edges[start..start + node.edges_len as usize] {
                    table[byte as usize] = child;
                }
                node.dense = dense.len() as u32;
                dense.push(table);
            }
        }
        Trie {
            nodes,
            edges,
            dense,
        }
    }

    fn child(&self, node: u32, byte: u8) -> Option<u32> {
        let n = self.nodes[node as usize];
        if n.dense != NO_SLOT {
            return Some(self.dense[n.dense as usize][byte as usize]).filter(|&c| c != 0);
        }
        let edges = &self.edges[n.edges_start as usize..(n.edges_start + n.edges_len) as usize];
        if edges.len() <= 8 {
            edges
                .iter()
                .find(|(b, _)| *b == byte)
                .map(|&(_, next)| next)
        } else {
            edges
                .binary_search_by_key(&byte, |&(b, _)| b)
                .ok()
                .map(|i| edges[i].1)
        }
    }
}

impl WordMatcher {
    pub(crate) fn build(lists: &[(usize, &[String])]) -> Result<Option<Self>, FieldViolation> {
        let mut patterns: Vec<String> = Vec::new();
        let mut entries: Vec<Vec<Entry>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut suffix_patterns: Vec<String> = Vec::new();
        let mut suffix_entries: Vec<Vec<Entry>> = Vec::new();
        let mut suffix_index: HashMap<String, usize> = HashMap::new();
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
                    let (patterns, entries, index) = if suffix {
                        (&mut suffix_patterns, &mut suffix_entries, &mut suffix_index)
                    } else {
                        (&mut patterns, &mut entries, &mut index)
                    };
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
        if patterns.is_empty() && suffix_patterns.is_empty() {
            return Ok(None);
        }
        let suffixes = if suffix_patterns.is_empty() {
            None
        } else {
            let automaton = AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(&suffix_patterns)
                .map_err(|e| FieldViolation::new("rules", format!("word lists too large: {e}")))?;
            Some((automaton, suffix_entries))
        };
        Ok(Some(WordMatcher {
            trie: Trie::build(&patterns),
            suffixes,
            entries,
        }))
    }

    /// Calls `hit(rule, start, end, entry)` for each match on word
    /// boundaries, with `start..end` a byte range of `text.text`.
    pub(crate) fn find<'a>(
        &'a self,
        text: &Normalized,
        hit: &mut dyn FnMut(usize, usize, usize, &'a str),
    ) {
        let bytes = text.text.as_bytes();
        for start in (0..bytes.len()).filter(|&i| text.is_word_start(i) && bytes[i] != b' ') {
            let mut node = 0u32;
            for (i, &byte) in bytes.iter().enumerate().skip(start) {
                let Some(next) = self.trie.child(node, byte) else {
                    break;
                };
                node = next;
                let slot = self.trie.nodes[node as usize].slot;
                if slot != NO_SLOT {
                    self.report(&self.entries[slot as usize], text, start, i + 1, hit);
                }
            }
        }
        if let Some((automaton, entries)) = &self.suffixes {
            for m in automaton.find_overlapping_iter(&text.text) {
                self.report(
                    &entries[m.pattern().as_usize()],
                    text,
                    m.start(),
                    m.end(),
                    hit,
                );
            }
        }
    }

    fn report<'a>(
        &self,
        entries: &'a [Entry],
        text: &Normalized,
        start: usize,
        end: usize,
        hit: &mut dyn FnMut(usize, usize, usize, &'a str),
    ) {
        for entry in entries {
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
