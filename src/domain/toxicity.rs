//! Toxicity categories, scores and a tenant's thresholds for them.

/// The categories a comment is scored on; a comment may be in several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ToxicityCategory {
    Insult,
    IdentityAttack,
    Threat,
    Obscene,
    SexualHarassment,
}

impl ToxicityCategory {
    pub const ALL: [ToxicityCategory; 5] = [
        ToxicityCategory::Insult,
        ToxicityCategory::IdentityAttack,
        ToxicityCategory::Threat,
        ToxicityCategory::Obscene,
        ToxicityCategory::SexualHarassment,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ToxicityCategory::Insult => "insult",
            ToxicityCategory::IdentityAttack => "identity_attack",
            ToxicityCategory::Threat => "threat",
            ToxicityCategory::Obscene => "obscene",
            ToxicityCategory::SexualHarassment => "sexual_harassment",
        }
    }

    /// The reason code of its score, also the reason code a moderator gives
    /// to teach it (`toxicity.insult`).
    pub fn code(self) -> &'static str {
        match self {
            ToxicityCategory::Insult => "toxicity.insult",
            ToxicityCategory::IdentityAttack => "toxicity.identity_attack",
            ToxicityCategory::Threat => "toxicity.threat",
            ToxicityCategory::Obscene => "toxicity.obscene",
            ToxicityCategory::SexualHarassment => "toxicity.sexual_harassment",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn parse(name: &str) -> Option<ToxicityCategory> {
        ToxicityCategory::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The category a rejection with this reason code teaches:
    /// `toxicity.<category>`, or a hate construction (`hate.threat` a
    /// threat, any other `hate.*` an identity attack).
    pub fn from_reason_code(code: &str) -> Option<ToxicityCategory> {
        if let Some(name) = code.strip_prefix("toxicity.") {
            return ToxicityCategory::parse(name);
        }
        match code.strip_prefix("hate.")? {
            "threat" => Some(ToxicityCategory::Threat),
            "" => None,
            _ => Some(ToxicityCategory::IdentityAttack),
        }
    }
}

/// A score in [0, 1] per category.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ToxicityScores(pub [f64; 5]);

impl ToxicityScores {
    pub fn get(&self, c: ToxicityCategory) -> f64 {
        self.0[c.index()]
    }

    pub fn raise(&mut self, c: ToxicityCategory, score: f64) {
        let s = &mut self.0[c.index()];
        *s = s.max(score);
    }

    /// The highest category and its score.
    pub fn highest(&self) -> (ToxicityCategory, f64) {
        ToxicityCategory::ALL
            .into_iter()
            .map(|c| (c, self.get(c)))
            .fold((ToxicityCategory::Insult, 0.0), |best, next| {
                if next.1 > best.1 { next } else { best }
            })
    }
}

/// Review and reject thresholds per category.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToxicityThresholds {
    pub review: [f64; 5],
    pub reject: [f64; 5],
}

impl ToxicityThresholds {
    /// Whether `score` reaches `threshold`. A threshold of 1 never does:
    /// it turns the action off for the category.
    pub fn reaches(score: f64, threshold: f64) -> bool {
        threshold < 1.0 && score >= threshold
    }

    /// The category's (review, reject) thresholds.
    pub fn get(&self, category: ToxicityCategory) -> (f64, f64) {
        (self.review[category.index()], self.reject[category.index()])
    }
}

/// New thresholds for one category (`UpdateTenantSettings`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CategoryThresholds {
    pub category: ToxicityCategory,
    pub review: f64,
    pub reject: f64,
}

impl Default for ToxicityThresholds {
    /// Chosen by measurement (BENCHMARKS.md, "Toxicity"): review at the
    /// score that flags about 5 % of clean comments out of the box; nothing
    /// is rejected on a score alone but near-certain threats, hate and
    /// harassment, so a human reads what the model is unsure of (obscenity
    /// never: 1 turns the action off).
    fn default() -> Self {
        ToxicityThresholds {
            review: [0.7, 0.7, 0.7, 0.85, 0.7],
            reject: [0.97, 0.97, 0.97, 1.0, 0.97],
        }
    }
}
