//! Functional test suites for hate speech (`tests/functional/hate.toml`):
//! templates crossed with protected groups, grouped by *functionality* as in
//! HateCheck, so a result says which constructions a detector handles
//! ("negated hate: 95 % right") rather than one number.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The cases decided wrongly (held when not hateful, published when
/// hateful), one line each: functionality, language, status, reason codes,
/// text. `verdicts` are the cases' own, in order.
pub fn wrong_cases<'a>(
    cases: &'a [Case],
    verdicts: &'a [crate::pipeline::Verdict],
) -> impl Iterator<Item = String> + 'a {
    cases.iter().zip(verdicts).filter_map(|(case, verdict)| {
        let flagged = verdict.status != crate::domain::CommentStatus::Approved;
        (flagged != case.hateful).then(|| {
            let codes: Vec<&str> = verdict.reasons.iter().map(|r| r.code.as_str()).collect();
            format!(
                "{} {} -> {} [{}] {}",
                case.functionality,
                case.lang,
                verdict.status.as_str(),
                codes.join(","),
                case.text
            )
        })
    })
}

/// One expanded case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub functionality: String,
    pub lang: String,
    pub hateful: bool,
    pub text: String,
}

#[derive(Deserialize)]
struct GroupForms {
    gender: String,
    plural: String,
    singular: String,
    #[serde(default)]
    slurs: Vec<String>,
}

#[derive(Deserialize)]
struct Functionality {
    id: String,
    lang: String,
    hateful: bool,
    #[serde(default)]
    templates: Vec<String>,
    #[serde(default)]
    cases: Vec<String>,
}

#[derive(Deserialize)]
struct SuiteFile {
    groups: BTreeMap<String, BTreeMap<String, GroupForms>>,
    functionality: Vec<Functionality>,
}

/// Parses a suite and expands every template for every group of its language.
pub fn expand(toml_text: &str) -> Result<Vec<Case>, String> {
    let file: SuiteFile = toml::from_str(toml_text).map_err(|e| e.to_string())?;
    let mut cases = Vec::new();
    for f in &file.functionality {
        let case = |text: String| Case {
            functionality: f.id.clone(),
            lang: f.lang.clone(),
            hateful: f.hateful,
            text,
        };
        cases.extend(f.cases.iter().cloned().map(case));
        if f.templates.is_empty() {
            continue;
        }
        let groups = file
            .groups
            .get(&f.lang)
            .ok_or_else(|| format!("{}: no groups for language {:?}", f.id, f.lang))?;
        for template in &f.templates {
            for g in groups.values() {
                let feminine = g.gender == "f";
                let pick = |m: &str, fem: &str| if feminine { fem } else { m }.to_owned();
                let fill = |slur: &str| {
                    template
                        .replace("{P}", &g.plural)
                        .replace("{S}", &g.singular)
                        .replace("{SLUR}", slur)
                        .replace("{tous}", &pick("tous", "toutes"))
                        .replace("{ils}", &pick("ils", "elles"))
                        .replace("{Ils}", &pick("Ils", "Elles"))
                        .replace("{un}", &pick("un", "une"))
                        .replace("{Un}", &pick("Un", "Une"))
                        .replace("{e}", &pick("", "e"))
                        .replace("{ce}", &pick("ce", "cette"))
                        .replace("{le}", &pick("le", "la"))
                };
                if template.contains("{SLUR}") {
                    cases.extend(g.slurs.iter().map(|s| case(fill(s))));
                } else {
                    cases.push(case(fill("")));
                }
            }
        }
    }
    if let Some(c) = cases.iter().find(|c| c.text.contains('{')) {
        return Err(format!(
            "{}: placeholder left in {:?}",
            c.functionality, c.text
        ));
    }
    Ok(cases)
}

/// Share right per functionality: hateful cases flagged, non-hateful ones
/// let through.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SuiteReport {
    pub functionalities: Vec<FunctionalityResult>,
    /// Per language and overall: hateful cases flagged, non-hateful flagged.
    pub languages: Vec<LanguageResult>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FunctionalityResult {
    pub id: String,
    pub lang: String,
    pub hateful: bool,
    pub cases: usize,
    pub right: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LanguageResult {
    pub lang: String,
    pub hateful_cases: usize,
    pub hateful_flagged: f64,
    pub non_hateful_cases: usize,
    pub non_hateful_flagged: f64,
}

impl SuiteReport {
    /// `flagged[i]`: whether case `i` was held or rejected.
    pub fn compute(cases: &[Case], flagged: &[bool]) -> SuiteReport {
        let mut by_functionality: BTreeMap<(String, String), FunctionalityResult> = BTreeMap::new();
        for (case, &flag) in cases.iter().zip(flagged) {
            let entry = by_functionality
                .entry((case.lang.clone(), case.functionality.clone()))
                .or_insert_with(|| FunctionalityResult {
                    id: case.functionality.clone(),
                    lang: case.lang.clone(),
                    hateful: case.hateful,
                    cases: 0,
                    right: 0,
                });
            entry.cases += 1;
            entry.right += usize::from(flag == case.hateful);
        }
        let mut languages: Vec<String> = cases.iter().map(|c| c.lang.clone()).collect();
        languages.sort();
        languages.dedup();
        languages.push("all".into());
        let languages = languages
            .into_iter()
            .map(|lang| {
                let share = |hateful: bool| {
                    let picked: Vec<bool> = cases
                        .iter()
                        .zip(flagged)
                        .filter(|(c, _)| c.hateful == hateful && (lang == "all" || c.lang == lang))
                        .map(|(_, &f)| f)
                        .collect();
                    let n = picked.len();
                    let share = if n == 0 {
                        0.0
                    } else {
                        picked.iter().filter(|&&f| f).count() as f64 / n as f64
                    };
                    (n, share)
                };
                let (hateful_cases, hateful_flagged) = share(true);
                let (non_hateful_cases, non_hateful_flagged) = share(false);
                LanguageResult {
                    lang,
                    hateful_cases,
                    hateful_flagged,
                    non_hateful_cases,
                    non_hateful_flagged,
                }
            })
            .collect();
        SuiteReport {
            functionalities: by_functionality.into_values().collect(),
            languages,
        }
    }

    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{:<24} {:>4} {:>3} {:>6} {:>7}\n",
            "functionality", "lang", "h", "cases", "right"
        );
        for f in &self.functionalities {
            out += &format!(
                "{:<24} {:>4} {:>3} {:>6} {:>6.1}%\n",
                f.id,
                f.lang,
                if f.hateful { "h" } else { "nh" },
                f.cases,
                100.0 * f.right as f64 / f.cases.max(1) as f64
            );
        }
        out.push('\n');
        for l in &self.languages {
            out += &format!(
                "{:<4} hateful flagged {:>5.1}% of {}, non-hateful flagged {:>5.1}% of {}\n",
                l.lang,
                100.0 * l.hateful_flagged,
                l.hateful_cases,
                100.0 * l.non_hateful_flagged,
                l.non_hateful_cases
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = r#"
[groups.fr.a]
gender = "f"
plural = "femmes"
singular = "femme"
slurs = ["x1", "x2"]

[groups.fr.b]
gender = "m"
plural = "Peuls"
singular = "Peul"

[[functionality]]
id = "t_h"
lang = "fr"
hateful = true
templates = ["Les {P} sont {tous} là.", "Ces {SLUR} !"]
cases = ["littéral"]
"#;

    #[test]
    fn templates_expand_per_group_slur_and_gender() {
        let cases = expand(TINY).unwrap();
        let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "littéral",
                "Les femmes sont toutes là.",
                "Les Peuls sont tous là.",
                "Ces x1 !",
                "Ces x2 !"
            ]
        );
    }

    #[test]
    fn the_report_counts_right_answers_per_functionality() {
        let cases = expand(TINY).unwrap();
        let report = SuiteReport::compute(&cases, &[true, true, false, true, true]);
        assert_eq!(report.functionalities[0].right, 4);
        assert_eq!(report.languages[0].hateful_flagged, 0.8);
    }

    #[test]
    fn the_team_suite_expands() {
        let cases = expand(include_str!("../../tests/functional/hate.toml")).unwrap();
        assert!(cases.len() > 1000, "{}", cases.len());
    }
}
