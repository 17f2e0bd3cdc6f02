use super::FieldViolation;

/// A tenant's unique name, chosen by the operator (`moderato keys create --tenant NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantName(String);

impl TenantName {
    pub fn parse(value: &str) -> Result<Self, FieldViolation> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            return Err(FieldViolation::new(
                "tenant",
                "must be 1 to 64 characters of a-z, 0-9, '-' or '_'",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModerationMode {
    /// Publish unless a filter objects.
    Post,
    /// Every comment waits for a moderator.
    Pre,
}

impl ModerationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ModerationMode::Post => "post",
            ModerationMode::Pre => "pre",
        }
    }

    pub fn from_db(value: &str) -> Option<Self> {
        match value {
            "post" => Some(ModerationMode::Post),
            "pre" => Some(ModerationMode::Pre),
            _ => None,
        }
    }
}

/// A tenant's moderation policy. Always consistent: thresholds in [0, 1] with
/// `review_threshold <= reject_threshold`, a positive body limit.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSettings {
    pub tenant_name: String,
    pub moderation_mode: ModerationMode,
    pub review_threshold: f64,
    pub reject_threshold: f64,
    pub max_body_chars: u32,
    /// Reader reports that send an approved comment back to the queue.
    pub report_threshold: u32,
    /// Whether a comment sent back by reports is withdrawn from publication
    /// until decided (always, for a report of illegal content).
    pub hide_reported: bool,
    /// Review and reject thresholds per toxicity category.
    pub toxicity: super::ToxicityThresholds,
    /// Comments one author may submit in a minute; 0: no limit.
    pub max_comments_per_author_per_minute: u32,
    /// Comments one IP address may submit in a minute; 0: no limit.
    pub max_comments_per_ip_per_minute: u32,
    /// Days after which a rejected comment's text is removed; 0: kept.
    pub retain_rejected_bodies_days: u32,
    /// Days after which any comment's text is removed; 0: kept.
    pub retain_bodies_days: u32,
    /// A hosted classifier asked for its opinion on every comment.
    pub external_classifier: Option<super::ExternalClassifier>,
}

impl TenantSettings {
    pub const MAX_BODY_CHARS_LIMIT: u32 = super::comment::MAX_BODY_CHARS_CEILING as u32;
    pub const MAX_REPORT_THRESHOLD: u32 = 1_000;
    /// The author limit is counted from the author's latest comments, of
    /// which the store keeps this many.
    pub const MAX_COMMENTS_PER_AUTHOR_PER_MINUTE: u32 =
        crate::pipeline::spam::history::RECENT_LIMIT;
    pub const MAX_COMMENTS_PER_IP_PER_MINUTE: u32 = 100_000;
    pub const MAX_RETENTION_DAYS: u32 = 36_500;

    /// What a new tenant starts with.
    pub fn defaults(tenant_name: &TenantName) -> Self {
        TenantSettings {
            tenant_name: tenant_name.as_str().to_owned(),
            moderation_mode: ModerationMode::Post,
            review_threshold: 0.5,
            reject_threshold: 0.9,
            max_body_chars: 5_000,
            report_threshold: 3,
            hide_reported: false,
            toxicity: super::ToxicityThresholds::default(),
            max_comments_per_author_per_minute: 0,
            max_comments_per_ip_per_minute: 0,
            retain_rejected_bodies_days: 0,
            retain_bodies_days: 0,
            external_classifier: None,
        }
    }

    /// The settings after `patch`, or the field that would make them inconsistent.
    pub fn apply(&self, patch: &TenantSettingsPatch) -> Result<TenantSettings, FieldViolation> {
        let mut next = self.clone();
        if let Some(mode) = patch.moderation_mode {
            next.moderation_mode = mode;
        }
        if let Some(t) = patch.review_threshold {
            next.review_threshold = check_threshold("review_threshold", t)?;
        }
        if let Some(t) = patch.reject_threshold {
            next.reject_threshold = check_threshold("reject_threshold", t)?;
        }
        if let Some(max) = patch.max_body_chars {
            if max == 0 || max > Self::MAX_BODY_CHARS_LIMIT {
                return Err(FieldViolation::new(
                    "max_body_chars",
                    format!("must be between 1 and {}", Self::MAX_BODY_CHARS_LIMIT),
                ));
            }
            next.max_body_chars = max;
        }
        if let Some(threshold) = patch.report_threshold {
            if threshold == 0 || threshold > Self::MAX_REPORT_THRESHOLD {
                return Err(FieldViolation::new(
                    "report_threshold",
                    format!("must be between 1 and {}", Self::MAX_REPORT_THRESHOLD),
                ));
            }
            next.report_threshold = threshold;
        }
        if let Some(hide) = patch.hide_reported {
            next.hide_reported = hide;
        }
        if let Some(limit) = patch.max_comments_per_author_per_minute {
            if limit > Self::MAX_COMMENTS_PER_AUTHOR_PER_MINUTE {
                return Err(FieldViolation::new(
                    "max_comments_per_author_per_minute",
                    format!(
                        "must be between 0 (no limit) and {}",
                        Self::MAX_COMMENTS_PER_AUTHOR_PER_MINUTE
                    ),
                ));
            }
            next.max_comments_per_author_per_minute = limit;
        }
        if let Some(limit) = patch.max_comments_per_ip_per_minute {
            if limit > Self::MAX_COMMENTS_PER_IP_PER_MINUTE {
                return Err(FieldViolation::new(
                    "max_comments_per_ip_per_minute",
                    format!(
                        "must be between 0 (no limit) and {}",
                        Self::MAX_COMMENTS_PER_IP_PER_MINUTE
                    ),
                ));
            }
            next.max_comments_per_ip_per_minute = limit;
        }
        for (field, value, target) in [
            (
                "retain_rejected_bodies_days",
                patch.retain_rejected_bodies_days,
                &mut next.retain_rejected_bodies_days,
            ),
            (
                "retain_bodies_days",
                patch.retain_bodies_days,
                &mut next.retain_bodies_days,
            ),
        ] {
            if let Some(days) = value {
                if days > Self::MAX_RETENTION_DAYS {
                    return Err(FieldViolation::new(
                        field,
                        format!("must be between 0 (keep) and {}", Self::MAX_RETENTION_DAYS),
                    ));
                }
                *target = days;
            }
        }
        match &patch.external_classifier {
            None => {}
            Some(None) => next.external_classifier = None,
            Some(Some(change)) => {
                next.external_classifier = Some(change.apply(self.external_classifier.as_ref()));
            }
        }
        let mut seen = Vec::new();
        for (i, t) in patch.toxicity.iter().enumerate() {
            let field = |name: &str| format!("toxicity_thresholds[{i}].{name}");
            if seen.contains(&t.category) {
                return Err(FieldViolation::new(
                    field("category"),
                    format!("names {} a second time", t.category.name()),
                ));
            }
            seen.push(t.category);
            let review = check_threshold(&field("review_threshold"), t.review)?;
            let reject = check_threshold(&field("reject_threshold"), t.reject)?;
            if review > reject {
                return Err(FieldViolation::new(
                    field("review_threshold"),
                    "review_threshold must not exceed reject_threshold",
                ));
            }
            next.toxicity.review[t.category.index()] = review;
            next.toxicity.reject[t.category.index()] = reject;
        }
        if next.review_threshold > next.reject_threshold {
            let field = if patch.review_threshold.is_some() {
                "review_threshold"
            } else {
                "reject_threshold"
            };
            return Err(FieldViolation::new(
                field,
                "review_threshold must not exceed reject_threshold",
            ));
        }
        Ok(next)
    }
}

fn check_threshold(field: &str, value: f64) -> Result<f64, FieldViolation> {
    // NaN is outside every range.
    if !(0.0..=1.0).contains(&value) {
        return Err(FieldViolation::new(field, "must be between 0 and 1"));
    }
    Ok(value)
}

/// A partial update of [`TenantSettings`]; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantSettingsPatch {
    pub moderation_mode: Option<ModerationMode>,
    pub review_threshold: Option<f64>,
    pub reject_threshold: Option<f64>,
    pub max_body_chars: Option<u32>,
    pub report_threshold: Option<u32>,
    pub hide_reported: Option<bool>,
    pub max_comments_per_author_per_minute: Option<u32>,
    pub max_comments_per_ip_per_minute: Option<u32>,
    pub retain_rejected_bodies_days: Option<u32>,
    pub retain_bodies_days: Option<u32>,
    /// Categories given new thresholds; the others keep theirs.
    pub toxicity: Vec<super::CategoryThresholds>,
    /// `Some(None)` removes the classifier.
    pub external_classifier: Option<Option<super::ClassifierChange>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TenantSettings {
        TenantSettings::defaults(&TenantName::parse("t").unwrap())
    }

    #[test]
    fn patch_keeps_unset_fields() {
        let next = settings()
            .apply(&TenantSettingsPatch {
                moderation_mode: Some(ModerationMode::Pre),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(next.moderation_mode, ModerationMode::Pre);
        assert_eq!(next.review_threshold, 0.5);
        assert_eq!(next.max_body_chars, 5_000);
    }

    #[test]
    fn toxicity_thresholds_change_per_category_and_are_checked() {
        use crate::domain::{CategoryThresholds, ToxicityCategory::*};
        let patch = |toxicity: Vec<CategoryThresholds>| TenantSettingsPatch {
            toxicity,
            ..Default::default()
        };
        let t = |category, review, reject| CategoryThresholds {
            category,
            review,
            reject,
        };
        let next = settings()
            .apply(&patch(vec![t(Threat, 0.4, 0.9), t(Obscene, 1.0, 1.0)]))
            .unwrap();
        assert_eq!(next.toxicity.get(Threat), (0.4, 0.9));
        assert_eq!(next.toxicity.get(Obscene), (1.0, 1.0));
        assert_eq!(
            next.toxicity.get(Insult),
            settings().toxicity.get(Insult),
            "categories not named keep theirs"
        );
        for (bad, field) in [
            (
                vec![t(Insult, 0.8, 0.5)],
                "toxicity_thresholds[0].review_threshold",
            ),
            (
                vec![t(Insult, -0.1, 0.5)],
                "toxicity_thresholds[0].review_threshold",
            ),
            (
                vec![t(Insult, 0.5, f64::NAN)],
                "toxicity_thresholds[0].reject_threshold",
            ),
            (
                vec![t(Insult, 0.5, 0.9), t(Insult, 0.6, 0.9)],
                "toxicity_thresholds[1].category",
            ),
        ] {
            assert_eq!(settings().apply(&patch(bad)).unwrap_err().field, field);
        }
    }

    #[test]
    fn patch_refuses_inconsistent_thresholds() {
        let err = settings()
            .apply(&TenantSettingsPatch {
                review_threshold: Some(0.95),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(err.field, "review_threshold");
        let err = settings()
            .apply(&TenantSettingsPatch {
                reject_threshold: Some(1.5),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(err.field, "reject_threshold");
        assert!(
            settings()
                .apply(&TenantSettingsPatch {
                    review_threshold: Some(0.95),
                    reject_threshold: Some(0.99),
                    ..Default::default()
                })
                .is_ok()
        );
        assert!(
            settings()
                .apply(&TenantSettingsPatch {
                    max_body_chars: Some(0),
                    ..Default::default()
                })
                .is_err()
        );
    }

    #[test]
    fn tenant_names() {
        assert!(TenantName::parse("lejournal-ci").is_ok());
        assert!(TenantName::parse("").is_err());
        assert!(TenantName::parse("Le Journal").is_err());
    }
}
