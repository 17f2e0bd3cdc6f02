//! Text normalisation for matching: the one place that decides when two
//! spellings are "the same word".
//!
//! Word lists are matched on a folded form of the body, while every span we
//! report points into the original bytes. Folding, in order, per character:
//!
//! 1. invisible characters (zero-width space/joiner/non-joiner, U+FEFF, U+2060–U+2064,
//!    soft hyphen, bidi controls, combining grapheme joiner) are dropped; they
//!    never split a word, so `con\u{200B}nard` is `connard`;
//! 2. Unicode NFKD compatibility decomposition (full-width forms, ligatures,
//!    superscripts), then combining marks are dropped: accent folding, so
//!    `débile` and `debile` are one word;
//! 3. lower-casing (with `ß` → `ss`);
//! 4. Cyrillic and Greek look-alikes of Latin letters become those letters;
//! 5. in a token that holds at least one letter, leetspeak digits and symbols
//!    become letters (`0→o 1→i 3→e 4→a 5→s 7→t 8→b 9→g @→a $→s`, and `!`/`|`
//!    → `i` between two letters); a token of digits alone stays a number;
//! 6. three or more one-letter tokens in a row are joined (`c.o.n`, `c o n`,
//!    `c-o-n` → `con`), which undoes spacing tricks without joining ordinary
//!    words;
//! 7. runs of one letter are collapsed to a single letter; the run length is
//!    kept, so matching can tell stretching (`connnnard`, three or more) from
//!    a different word (`salle` is not `sale`).
//!
//! Everything that is not a letter or digit is a separator; separators become
//! one ASCII space. Word boundaries are therefore Unicode-aware: accented
//! letters, and letters of any script, are letters.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// A folded text with, for every byte of `text`, where it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Normalized {
    /// Folded words separated by single spaces, no leading or trailing space.
    pub text: String,
    /// Per byte of `text`: where it came from and how often it was repeated.
    bytes: Vec<Origin>,
}

/// The original byte range of the character a folded byte came from, and how
/// many times that letter was repeated there (1 for spaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Origin {
    start: u32,
    end: u32,
    run: u16,
}

impl Normalized {
    /// The span in the original text covered by `text[start..end]`.
    pub fn original_span(&self, start: usize, end: usize) -> (u32, u32) {
        debug_assert!(start < end && end <= self.text.len());
        (self.bytes[start].start, self.bytes[end - 1].end)
    }

    /// Run length of the character starting at byte `at`.
    pub fn run(&self, at: usize) -> u16 {
        self.bytes[at].run
    }

    /// This text with a space inserted before each byte position of `at`
    /// (ascending, inside words): two words written glued together read as
    /// two. The inserted spaces cover no original text.
    pub fn with_spaces_at(&self, at: &[usize]) -> Normalized {
        let mut text = String::with_capacity(self.text.len() + at.len());
        let mut bytes = Vec::with_capacity(self.bytes.len() + at.len());
        let mut from = 0;
        for &split in at {
            text.push_str(&self.text[from..split]);
            bytes.extend_from_slice(&self.bytes[from..split]);
            let next = self.bytes[split];
            text.push(' ');
            bytes.push(Origin {
                start: next.start,
                end: next.start,
                run: 1,
            });
            from = split;
        }
        text.push_str(&self.text[from..]);
        bytes.extend_from_slice(&self.bytes[from..]);
        Normalized { text, bytes }
    }

    pub fn is_word_start(&self, at: usize) -> bool {
        at == 0 || self.text.as_bytes()[at - 1] == b' '
    }

    pub fn is_word_end(&self, at: usize) -> bool {
        at >= self.text.len() || self.text.as_bytes()[at] == b' '
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Digit,
    /// `@ $ ! |`: a letter in disguise or punctuation, decided by context.
    Symbol,
    Separator,
}

#[derive(Debug, Clone, Copy)]
struct Atom {
    ch: char,
    class: Class,
    start: u32,
    end: u32,
}

/// Folds `original` as described in the module documentation.
pub fn normalize(original: &str) -> Normalized {
    let mut builder = Builder::with_capacity(original.len());
    fold(original, |atom| builder.push(atom));
    builder.finish()
}

fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}' | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FE00}'..='\u{FE0F}'
    )
}

/// Cyrillic and Greek letters that look like Latin ones, lower-cased first.
fn homoglyph(c: char) -> char {
    match c {
        'а' => 'a',
        'в' => 'b',
        'е' | 'ё' | 'є' => 'e',
        'з' => '3',
        'і' | 'ї' => 'i',
        'ј' => 'j',
        'к' => 'k',
        'м' => 'm',
        'н' => 'h',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'т' => 't',
        'у' => 'y',
        'х' => 'x',
        'ѕ' => 's',
        'ԁ' => 'd',
        'ӏ' => 'l',
        'ԛ' => 'q',
        'ԝ' => 'w',
        'ь' => 'b',
        'α' => 'a',
        'β' => 'b',
        'γ' => 'y',
        'ε' => 'e',
        'ζ' => 'z',
        'η' => 'n',
        'ι' => 'i',
        'κ' => 'k',
        'μ' => 'u',
        'ν' => 'v',
        'ο' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'υ' => 'u',
        'χ' => 'x',
        'ω' => 'w',
        'ς' => 's',
        'ı' => 'i',
        'ɡ' => 'g',
        'ɑ' => 'a',
        'ℓ' => 'l',
        other => other,
    }
}

fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' | '!' | '|' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        '8' => 'b',
        '9' => 'g',
        _ => return None,
    })
}

/// Classes of the ASCII characters, looked up instead of computed.
const ASCII_CLASS: [Class; 128] = {
    let mut table = [Class::Separator; 128];
    let mut b = 0;
    while b < 128 {
        table[b] = match b as u8 {
            b'a'..=b'z' | b'A'..=b'Z' => Class::Letter,
            b'0'..=b'9' => Class::Digit,
            b'@' | b'$' | b'!' | b'|' => Class::Symbol,
            _ => Class::Separator,
        };
        b += 1;
    }
    table
};

fn classify(c: char) -> Class {
    if c.is_ascii() {
        return ASCII_CLASS[c as usize];
    }
    if c.is_alphabetic() {
        Class::Letter
    } else if c.is_numeric() {
        Class::Digit
    } else if matches!(c, '@' | '$' | '!' | '|') {
        Class::Symbol
    } else {
        Class::Separator
    }
}

/// Steps 1–4: one atom per folded character, each knowing its source span.
fn fold(original: &str, mut push: impl FnMut(Atom)) {
    let bytes = original.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        let start = at as u32;
        if byte.is_ascii() {
            let ch = byte.to_ascii_lowercase();
            push(Atom {
                ch: ch as char,
                class: ASCII_CLASS[ch as usize],
                start,
                end: start + 1,
            });
            at += 1;
            continue;
        }
        let c = original[at..].chars().next().expect("a char starts here");
        at += c.len_utf8();
        let end = at as u32;
        if is_invisible(c) {
            continue;
        }
        decompose_compatible(c, |d| {
            if is_combining_mark(d) || is_invisible(d) {
                return;
            }
            for lower in d.to_lowercase() {
                if lower == 'ß' {
                    push(Atom {
                        ch: 's',
                        class: Class::Letter,
                        start,
                        end,
                    });
                    push(Atom {
                        ch: 's',
                        class: Class::Letter,
                        start,
                        end,
                    });
                    continue;
                }
                let ch = homoglyph(lower);
                push(Atom {
                    ch,
                    class: classify(ch),
                    start,
                    end,
                });
            }
        });
    }
}

/// Steps 5–7 in one streaming pass over the atoms, with one atom of
/// lookahead (is a symbol between two letters?) and small reused buffers for
/// the current token and pending one-letter tokens.
struct Builder {
    out: Normalized,
    /// The current token's atoms, whether one of them is a real letter, and
    /// whether one is not (a leetspeak candidate).
    token: Vec<Atom>,
    has_letter: bool,
    has_other: bool,
    /// One-letter tokens in a row, joined when there are three or more.
    singles: Vec<Atom>,
    /// The atom before `pending`, whatever its class.
    previous: Option<Atom>,
    /// The atom waiting for its successor to be known.
    pending: Option<Atom>,
}

impl Builder {
    fn with_capacity(bytes: usize) -> Self {
        Builder {
            out: Normalized {
                text: String::with_capacity(bytes),
                bytes: Vec::with_capacity(bytes),
            },
            token: Vec::with_capacity(32),
            has_letter: false,
            has_other: false,
            singles: Vec::new(),
            previous: None,
            pending: None,
        }
    }

    fn push(&mut self, next: Atom) {
        if let Some(atom) = self.pending.take() {
            self.decide(atom, Some(&next));
        }
        // Only symbols need to see their successor.
        if next.class == Class::Symbol {
            self.pending = Some(next);
        } else {
            self.decide(next, None);
        }
    }

    fn finish(mut self) -> Normalized {
        if let Some(atom) = self.pending.take() {
            self.decide(atom, None);
        }
        self.close_token();
        self.flush_singles();
        self.out
    }

    /// Step 5: letters and digits belong to tokens; `@ $` when next to one;
    /// `! |` only between two; everything else separates.
    fn decide(&mut self, atom: Atom, next: Option<&Atom>) {
        let wordish =
            |a: Option<&Atom>| a.is_some_and(|a| matches!(a.class, Class::Letter | Class::Digit));
        let keep = match atom.class {
            Class::Letter | Class::Digit => true,
            Class::Symbol => {
                let before = wordish(self.previous.as_ref());
                let after = wordish(next);
                match atom.ch {
                    '@' | '$' => before || after,
                    _ => before && after,
                }
            }
            Class::Separator => false,
        };
        self.previous = Some(atom);
        if keep {
            let letter = atom.class == Class::Letter;
            self.has_letter |= letter;
            self.has_other |= !letter;
            self.token.push(atom);
        } else {
            self.close_token();
        }
    }

    fn close_token(&mut self) {
        if self.token.is_empty() {
            return;
        }
        if self.has_letter && self.has_other {
            for atom in &mut self.token {
                if atom.class != Class::Letter
                    && let Some(letter) = leet(atom.ch)
                {
                    atom.ch = letter;
                    atom.class = Class::Letter;
                }
            }
        }
        if self.token.len() == 1 && self.token[0].class == Class::Letter {
            self.singles.push(self.token[0]);
        } else {
            self.flush_singles();
            emit(&mut self.out, &self.token);
        }
        self.token.clear();
        self.has_letter = false;
        self.has_other = false;
    }

    /// Step 6: `c o n n a r d` → `connard` (three or more one-letter tokens).
    fn flush_singles(&mut self) {
        const MIN_LETTERS: usize = 3;
        if self.singles.len() >= MIN_LETTERS {
            emit(&mut self.out, &self.singles);
        } else {
            for i in 0..self.singles.len() {
                emit(&mut self.out, &self.singles[i..=i]);
            }
        }
        self.singles.clear();
    }
}

/// Step 7 and output: one token, its letter runs collapsed, after a space.
fn emit(n: &mut Normalized, token: &[Atom]) {
    // Folded characters are at most 4 bytes; reserving once keeps the pushes
    // below on their no-grow path.
    n.text.reserve(token.len() * 4 + 1);
    n.bytes.reserve(token.len() * 4 + 1);
    if !n.text.is_empty() {
        let at = n.bytes.last().map(|o| o.end).unwrap_or(0);
        n.text.push(' ');
        n.bytes.push(Origin {
            start: at,
            end: at,
            run: 1,
        });
    }
    let mut i = 0;
    while i < token.len() {
        let first = token[i];
        let mut j = i + 1;
        if first.class == Class::Letter {
            while j < token.len() && token[j].ch == first.ch {
                j += 1;
            }
        }
        let origin = Origin {
            start: first.start,
            end: token[j - 1].end,
            run: u16::try_from(j - i).unwrap_or(u16::MAX),
        };
        n.text.push(first.ch);
        if first.ch.is_ascii() {
            n.bytes.push(origin);
        } else {
            for _ in 0..first.ch.len_utf8() {
                n.bytes.push(origin);
            }
        }
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(s: &str) -> String {
        normalize(s).text
    }

    #[test]
    fn glued_words_are_spaced_with_their_origins() {
        let n = normalize("Les Arabes sontdes rats");
        let at = n.text.find("des").unwrap();
        let spaced = n.with_spaces_at(&[at]);
        assert_eq!(spaced.text, "les arabes sont des rats");
        let start = spaced.text.find("des").unwrap();
        let (s, e) = spaced.original_span(start, start + 3);
        assert_eq!(&"Les Arabes sontdes rats"[s as usize..e as usize], "des");
        let (s, e) = spaced.original_span(start - 5, start - 1);
        assert_eq!(&"Les Arabes sontdes rats"[s as usize..e as usize], "sont");
    }

    #[test]
    fn folds_case_accents_and_compatibility_forms() {
        assert_eq!(folded("Débile"), "debile");
        assert_eq!(folded("ÉLÈVE"), "eleve");
        assert_eq!(folded("ＣＯＮＮＡＲＤ"), "conard");
        assert_eq!(folded("ﬁlle"), "file");
        assert_eq!(folded("Straße"), "strase");
        assert_eq!(folded("İdiot"), "idiot");
    }

    #[test]
    fn drops_invisible_characters_without_splitting_words() {
        assert_eq!(folded("con\u{200B}na\u{00AD}rd"), "conard");
        assert_eq!(folded("\u{FEFF}idiot\u{2060}"), "idiot");
        assert_eq!(folded("sa\u{202E}lope"), "salope");
    }

    #[test]
    fn maps_homoglyphs_and_leetspeak() {
        assert_eq!(folded("соnnаrd"), "conard"); // Cyrillic с, о, а
        assert_eq!(folded("ΙDΙΟΤ"), "idiot"); // Greek capitals
        assert_eq!(folded("c0nn4rd"), "conard");
        assert_eq!(folded("$alope"), "salope");
        assert_eq!(folded("id!ot"), "idiot");
        assert_eq!(folded("5 000 francs en 2026"), "5 000 francs en 2026");
        assert_eq!(folded("idiot!"), "idiot");
        assert_eq!(folded("a@b.example"), "ab example");
    }

    #[test]
    fn joins_spelled_out_words_but_not_ordinary_ones() {
        assert_eq!(folded("c.o.n.n.a.r.d"), "conard");
        assert_eq!(folded("c o n n a r d !"), "conard");
        assert_eq!(folded("c-o-n"), "con");
        assert_eq!(folded("il y a du monde"), "il y a du monde");
    }

    #[test]
    fn keeps_run_lengths_and_original_spans() {
        let n = normalize("Quel connnnard !");
        assert_eq!(n.text, "quel conard");
        let at = n.text.find("conard").unwrap();
        assert_eq!(n.run(at + 2), 4);
        assert_eq!(n.original_span(at, at + 6), (5, 14));
        let n = normalize("Très  débile");
        let at = n.text.find("debile").unwrap();
        let (s, e) = n.original_span(at, at + 6);
        assert_eq!(&"Très  débile"[s as usize..e as usize], "débile");
    }
}
