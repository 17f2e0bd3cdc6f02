//! The shape of a text: length, capitals, repeated characters, emoji, lines.

use crate::domain::RuleKind;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Stats {
    pub chars: u32,
    pub letters: u32,
    pub upper: u32,
    pub longest_run: u32,
    pub emoji: u32,
    pub lines: u32,
}

/// Pictographic emoji blocks; enough for counting, not a full UTS #51 parser.
fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F300..=0x1F5FF | 0x1F600..=0x1F64F | 0x1F680..=0x1F6FF | 0x1F700..=0x1F77F
        | 0x1F900..=0x1F9FF | 0x1FA70..=0x1FAFF | 0x2600..=0x26FF | 0x2700..=0x27BF
        | 0x1F1E6..=0x1F1FF | 0x1F000..=0x1F02F | 0x1F0A0..=0x1F0FF)
}

impl Stats {
    pub(crate) fn of(text: &str) -> Self {
        let mut stats = Stats {
            chars: 0,
            letters: 0,
            upper: 0,
            longest_run: 0,
            emoji: 0,
            lines: 1,
        };
        let mut previous = None;
        let mut run = 0;
        for c in text.chars() {
            stats.chars += 1;
            if c.is_ascii() {
                // Most text is ASCII: skip the Unicode tables.
                if c.is_ascii_alphabetic() {
                    stats.letters += 1;
                    stats.upper += u32::from(c.is_ascii_uppercase());
                }
            } else {
                if c.is_alphabetic() {
                    stats.letters += 1;
                    if c.is_uppercase() {
                        stats.upper += 1;
                    }
                }
                if is_emoji(c) {
                    stats.emoji += 1;
                }
            }
            if c == '\n' {
                stats.lines += 1;
            }
            if Some(c) == previous && !c.is_whitespace() {
                run += 1;
            } else {
                run = 1;
            }
            stats.longest_run = stats.longest_run.max(run);
            previous = Some(c);
        }
        stats
    }
}

pub(super) struct StructureCheck {
    max_chars: Option<u32>,
    max_caps_ratio: Option<f64>,
    min_letters: u32,
    max_repeated_chars: Option<u32>,
    max_emoji: Option<u32>,
    max_lines: Option<u32>,
}

impl StructureCheck {
    pub(super) fn new(kind: &RuleKind) -> Self {
        let RuleKind::Structure {
            max_chars,
            max_caps_ratio,
            min_letters,
            max_repeated_chars,
            max_emoji,
            max_lines,
        } = kind
        else {
            unreachable!("StructureCheck built from a structure rule");
        };
        StructureCheck {
            max_chars: *max_chars,
            max_caps_ratio: *max_caps_ratio,
            min_letters: *min_letters,
            max_repeated_chars: *max_repeated_chars,
            max_emoji: *max_emoji,
            max_lines: *max_lines,
        }
    }

    pub(super) fn check(&self, s: &Stats, hit: &mut dyn FnMut(String)) {
        if let Some(max) = self.max_chars
            && s.chars > max
        {
            hit(format!("{} characters, more than {max}", s.chars));
        }
        if let Some(max) = self.max_caps_ratio
            && s.letters >= self.min_letters
        {
            let ratio = f64::from(s.upper) / f64::from(s.letters);
            if ratio > max {
                hit(format!(
                    "{:.0}% capital letters, more than {:.0}%",
                    ratio * 100.0,
                    max * 100.0
                ));
            }
        }
        if let Some(max) = self.max_repeated_chars
            && s.longest_run > max
        {
            hit(format!(
                "a character repeated {} times, more than {max}",
                s.longest_run
            ));
        }
        if let Some(max) = self.max_emoji
            && s.emoji > max
        {
            hit(format!("{} emoji, more than {max}", s.emoji));
        }
        if let Some(max) = self.max_lines
            && s.lines > max
        {
            hit(format!("{} lines, more than {max}", s.lines));
        }
    }
}
