//! A hosted classifier's opinion on a comment, on top of moderato's own
//! (issue #15): which services a tenant may name, how their attributes map
//! to moderato's toxicity categories, and what the pipeline is told when
//! the opinion could not be had. The call itself is `classifiers`'; what
//! the scores do is the pipeline's (they raise the category scores, which
//! the tenant's thresholds then judge).

use super::{FieldViolation, ToxicityCategory, WebhookUrl};

/// The request and response shape a classifier speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClassifierKind {
    /// Google's Perspective API, `comments:analyze`.
    Perspective,
    /// OpenAI's `/v1/moderations`, also served by other hosted and
    /// self-hosted models.
    OpenAiModeration,
}

impl ClassifierKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClassifierKind::Perspective => "perspective",
            ClassifierKind::OpenAiModeration => "openai_moderation",
        }
    }

    pub fn from_db(value: &str) -> Option<Self> {
        [
            ClassifierKind::Perspective,
            ClassifierKind::OpenAiModeration,
        ]
        .into_iter()
        .find(|k| k.as_str() == value)
    }

    /// The toxicity category an attribute's score counts for; `None` for
    /// attributes that are explained but judged by no threshold.
    pub fn category(self, attribute: &str) -> Option<ToxicityCategory> {
        use ToxicityCategory::*;
        match self {
            // Perspective's production attributes.
            ClassifierKind::Perspective => match attribute {
                "TOXICITY" | "SEVERE_TOXICITY" | "INSULT" => Some(Insult),
                "THREAT" => Some(Threat),
                "IDENTITY_ATTACK" => Some(IdentityAttack),
                "PROFANITY" => Some(Obscene),
                _ => None,
            },
            // OpenAI's moderation categories.
            ClassifierKind::OpenAiModeration => match attribute {
                "harassment" => Some(Insult),
                "harassment/threatening" | "hate/threatening" | "violence" => Some(Threat),
                "hate" => Some(IdentityAttack),
                "sexual" => Some(Obscene),
                "sexual/minors" => Some(SexualHarassment),
                _ => None,
            },
        }
    }
}

/// The attributes moderato asks Perspective for.
pub const PERSPECTIVE_ATTRIBUTES: [&str; 6] = [
    "TOXICITY",
    "SEVERE_TOXICITY",
    "INSULT",
    "THREAT",
    "IDENTITY_ATTACK",
    "PROFANITY",
];

/// A tenant's external classifier. The API key is held sealed (see
/// `Sealer`), never in the clear outside the call that uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalClassifier {
    pub kind: ClassifierKind,
    pub url: String,
    /// How long a submission waits for the opinion, at most.
    pub timeout_ms: u32,
    /// The API key, sealed; empty when the service needs none.
    pub sealed_api_key: String,
}

impl ExternalClassifier {
    pub const DEFAULT_TIMEOUT_MS: u32 = 300;
    pub const MIN_TIMEOUT_MS: u32 = 10;
    pub const MAX_TIMEOUT_MS: u32 = 5_000;
    pub const MAX_API_KEY_CHARS: usize = 500;
}

/// A new or changed classifier as an admin gives it; `api_key` `None`
/// keeps the stored one.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierSpec {
    pub kind: ClassifierKind,
    pub url: WebhookUrl,
    pub timeout_ms: u32,
    pub api_key: Option<String>,
}

impl ClassifierSpec {
    /// `timeout_ms` 0 means the default.
    pub fn parse_timeout(field: &str, value: u32) -> Result<u32, FieldViolation> {
        match value {
            0 => Ok(ExternalClassifier::DEFAULT_TIMEOUT_MS),
            v if (ExternalClassifier::MIN_TIMEOUT_MS..=ExternalClassifier::MAX_TIMEOUT_MS)
                .contains(&v) =>
            {
                Ok(v)
            }
            _ => Err(FieldViolation::new(
                field,
                format!(
                    "must be between {} and {} milliseconds (0: {})",
                    ExternalClassifier::MIN_TIMEOUT_MS,
                    ExternalClassifier::MAX_TIMEOUT_MS,
                    ExternalClassifier::DEFAULT_TIMEOUT_MS
                ),
            )),
        }
    }
}

/// A classifier set through `UpdateTenantSettings`, its key already
/// sealed by the use case: `sealed_api_key` `None` keeps the stored one.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierChange {
    pub kind: ClassifierKind,
    pub url: String,
    pub timeout_ms: u32,
    pub sealed_api_key: Option<String>,
}

impl ClassifierChange {
    /// The classifier after this change of `current`.
    pub fn apply(&self, current: Option<&ExternalClassifier>) -> ExternalClassifier {
        ExternalClassifier {
            kind: self.kind,
            url: self.url.clone(),
            timeout_ms: self.timeout_ms,
            sealed_api_key: match &self.sealed_api_key {
                Some(sealed) => sealed.clone(),
                None => current
                    .map(|c| c.sealed_api_key.clone())
                    .unwrap_or_default(),
            },
        }
    }
}

/// What the pipeline is told about the external opinion.
#[derive(Debug, Clone, PartialEq)]
pub enum ExternalOpinion {
    /// The classifier's scores, attribute by attribute, in [0, 1].
    Scores {
        kind: ClassifierKind,
        scores: Vec<(String, f64)>,
    },
    /// No opinion: the classifier timed out, failed, or is skipped while
    /// its circuit breaker is open; the in-process verdict stands.
    Unavailable { why: String },
}

/// The reason code of an attribute's score: `external.<attribute>`,
/// lower-cased, `/` as `_` (`external.harassment_threatening`).
pub fn external_reason_code(attribute: &str) -> String {
    format!(
        "external.{}",
        attribute.to_ascii_lowercase().replace(['/', '-'], "_")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_map_to_categories_and_name_their_reasons() {
        use ToxicityCategory::*;
        let p = ClassifierKind::Perspective;
        assert_eq!(p.category("THREAT"), Some(Threat));
        assert_eq!(p.category("IDENTITY_ATTACK"), Some(IdentityAttack));
        assert_eq!(p.category("PROFANITY"), Some(Obscene));
        assert_eq!(p.category("FLIRTATION"), None);
        for attribute in PERSPECTIVE_ATTRIBUTES {
            assert!(p.category(attribute).is_some(), "{attribute}");
        }
        let o = ClassifierKind::OpenAiModeration;
        assert_eq!(o.category("harassment/threatening"), Some(Threat));
        assert_eq!(o.category("hate"), Some(IdentityAttack));
        assert_eq!(o.category("self-harm"), None);
        assert_eq!(
            external_reason_code("harassment/threatening"),
            "external.harassment_threatening"
        );
        assert_eq!(
            external_reason_code("SEVERE_TOXICITY"),
            "external.severe_toxicity"
        );
        assert_eq!(
            external_reason_code("self-harm/intent"),
            "external.self_harm_intent"
        );
        for kind in [p, o] {
            assert_eq!(ClassifierKind::from_db(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn timeouts_default_and_are_bounded() {
        assert_eq!(ClassifierSpec::parse_timeout("t", 0), Ok(300));
        assert_eq!(ClassifierSpec::parse_timeout("t", 150), Ok(150));
        assert!(ClassifierSpec::parse_timeout("t", 5).is_err());
        assert!(ClassifierSpec::parse_timeout("t", 60_000).is_err());
    }
}
