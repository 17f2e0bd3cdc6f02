//! Request fields every edge parses the same way (the gRPC services and the
//! console's JSON adapter): limits, filters and free text, turned into
//! domain values or a `FieldViolation` naming the field. Protocol encodings
//! (protobuf enums, JSON shapes) stay in each edge.

use std::time::Duration;

use crate::domain::{ArticleId, FieldViolation};
use crate::storage::QueueFilter;

/// A decision's reason code: empty for none, else at most 64 characters of
/// a-z, 0-9, `.`, `_` or `-` (`toxicity.threat`, `off_topic`).
pub fn reason_code(field: &str, value: String) -> Result<Option<String>, FieldViolation> {
    if value.is_empty() {
        return Ok(None);
    }
    let ok = value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(Some(value))
    } else {
        Err(FieldViolation::new(
            field,
            "must be at most 64 characters of a-z, 0-9, '.', '_' or '-'",
        ))
    }
}

/// A filter text that is compared as is: empty means no filter.
pub fn optional_filter(field: &str, value: String) -> Result<Option<String>, FieldViolation> {
    if value.chars().count() > 200 {
        return Err(FieldViolation::new(field, "is longer than 200 characters"));
    }
    Ok((!value.is_empty()).then_some(value))
}

pub fn queue_filter(
    article_id: String,
    reason_code: String,
    min_spam_score: f64,
    reported_only: bool,
) -> Result<QueueFilter, FieldViolation> {
    if !(0.0..=1.0).contains(&min_spam_score) {
        return Err(FieldViolation::new(
            "min_spam_score",
            "must be between 0 and 1",
        ));
    }
    Ok(QueueFilter {
        article_id: optional_article_id(article_id)?.map(ArticleId::into_inner),
        reason_code: optional_filter("reason_code", reason_code)?,
        min_spam_score: (min_spam_score > 0.0).then_some(min_spam_score),
        reported_only,
    })
}

/// An optional `expected_version`: 0 means unset.
pub fn expected_version(value: i64) -> Result<Option<i64>, FieldViolation> {
    if value < 0 {
        return Err(FieldViolation::new(
            "expected_version",
            "must not be negative",
        ));
    }
    Ok((value > 0).then_some(value))
}

pub fn optional_article_id(value: String) -> Result<Option<ArticleId>, FieldViolation> {
    if value.is_empty() {
        Ok(None)
    } else {
        ArticleId::parse("article_id", value).map(Some)
    }
}

pub fn note(value: String) -> Result<String, FieldViolation> {
    if value.chars().count() > 2000 {
        return Err(FieldViolation::new(
            "note",
            "is longer than 2000 characters",
        ));
    }
    Ok(value)
}

pub fn claim_limits(max_items: i32, lease_seconds: i32) -> Result<(u32, Duration), FieldViolation> {
    let max_items = match max_items {
        0 => 10,
        1..=100 => max_items as u32,
        _ => {
            return Err(FieldViolation::new(
                "max_items",
                "must be between 1 and 100",
            ));
        }
    };
    let lease_seconds = match lease_seconds {
        0 => 300,
        1..=3600 => lease_seconds as u64,
        _ => {
            return Err(FieldViolation::new(
                "lease_seconds",
                "must be between 1 and 3600",
            ));
        }
    };
    Ok((max_items, Duration::from_secs(lease_seconds)))
}

/// Why a standing is set: required, at most 500 characters.
pub fn standing_reason(value: String) -> Result<String, FieldViolation> {
    if value.trim().is_empty() {
        return Err(FieldViolation::new("reason", "is required"));
    }
    if value.chars().count() > 500 {
        return Err(FieldViolation::new(
            "reason",
            "is longer than 500 characters",
        ));
    }
    Ok(value)
}
