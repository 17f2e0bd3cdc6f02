//! Wire ↔ domain, by hand. Parsing returns the first offending field.

use chrono::{DateTime, Utc};

use super::pb;
use crate::domain::{
    Actor, ApiKeyInfo, ArticleId, AuthorId, AuthorStanding, CategoryThresholds, ClassifierKind,
    ClassifierSpec, ClientCommentId, Comment, CommentBody, CommentId, CommentStatus, DeliveryState,
    DisplayName, ExternalClassifier, FieldViolation, KeySpec, LanguageTag, ModerationMode,
    ModeratorId, NewComment, Reason, ReportReason, ReviewDecision, ReviewId, ReviewItem, Role,
    SpamLabel, StandingTerm, TenantSettings, TenantSettingsPatch, ToxicityCategory, Webhook,
    WebhookChange, WebhookDelivery, WebhookEventType, WebhookId, WebhookSpec, WebhookUrl,
    webhook_description,
};
pub use crate::moderation::parse::{
    claim_limits, expected_version, note, optional_article_id, optional_filter, queue_filter,
    reason_code, standing_reason,
};
use crate::moderation::{
    AuditFilter, AuthorView, BulkOutcome, DecideError, DecideRequest, MAX_BULK_DECISIONS,
};
use crate::storage::{AuditRecord, DecisionEvent, QueueOrder};

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

// ---- requests -> domain -------------------------------------------------------

/// An optional time; `None` when the field is not set.
fn optional_time(
    field: &str,
    value: Option<prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, FieldViolation> {
    value
        .map(|t| {
            u32::try_from(t.nanos)
                .ok()
                .filter(|nanos| *nanos < 1_000_000_000)
                .and_then(|nanos| DateTime::from_timestamp(t.seconds, nanos))
                .ok_or_else(|| FieldViolation::new(field, "is not a valid timestamp"))
        })
        .transpose()
}

/// One decision; `prefix` names the request it sits in (`decisions[3].`)
/// in field violations.
#[allow(clippy::too_many_arguments)]
pub fn decide_request(
    prefix: &str,
    review_id: String,
    decision: i32,
    spam_label: i32,
    note: String,
    reason_code: String,
    expected_version: i64,
    actor: Actor,
) -> Result<DecideRequest, FieldViolation> {
    let field = |name: &str| format!("{prefix}{name}");
    let within =
        |violation: FieldViolation| FieldViolation::new(field(&violation.field), violation.reason);
    let reason_code = self::reason_code(&field("reason_code"), reason_code)?;
    let expected_version = self::expected_version(expected_version).map_err(within)?;
    Ok(DecideRequest {
        review_id: ReviewId::parse(&field("review_id"), &review_id)?,
        decision: self::decision(decision).map_err(within)?,
        label: self::spam_label(spam_label).map_err(within)?,
        note: self::note(note).map_err(within)?,
        reason_code,
        expected_version,
        actor,
    })
}

/// A stream cursor: the last sequence received, 0 for everything.
pub fn after_sequence(value: i64) -> Result<i64, FieldViolation> {
    if value < 0 {
        return Err(FieldViolation::new(
            "after_sequence",
            "must not be negative",
        ));
    }
    Ok(value)
}

/// The decisions of a `DecideReviews` call: 1 to 500, each review item once.
pub fn bulk_decisions(
    decisions: Vec<pb::BulkDecision>,
    actor: Actor,
) -> Result<Vec<DecideRequest>, FieldViolation> {
    if decisions.is_empty() || decisions.len() > MAX_BULK_DECISIONS {
        return Err(FieldViolation::new(
            "decisions",
            format!("must hold 1 to {MAX_BULK_DECISIONS} decisions"),
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(decisions.len());
    decisions
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let parsed = decide_request(
                &format!("decisions[{i}]."),
                d.review_id,
                d.decision,
                d.spam_label,
                d.note,
                d.reason_code,
                d.expected_version,
                actor.clone(),
            )?;
            if !seen.insert(parsed.review_id) {
                return Err(FieldViolation::new(
                    format!("decisions[{i}].review_id"),
                    "appears more than once in this call",
                ));
            }
            Ok(parsed)
        })
        .collect()
}

pub fn queue_order(value: i32) -> Result<QueueOrder, FieldViolation> {
    match pb::QueueOrder::try_from(value) {
        Ok(pb::QueueOrder::Unspecified | pb::QueueOrder::Priority) => Ok(QueueOrder::Priority),
        Ok(pb::QueueOrder::OldestFirst) => Ok(QueueOrder::OldestFirst),
        Ok(pb::QueueOrder::NewestFirst) => Ok(QueueOrder::NewestFirst),
        Err(_) => Err(FieldViolation::new(
            "order",
            "must be PRIORITY, OLDEST_FIRST or NEWEST_FIRST",
        )),
    }
}

pub fn toxicity_category(field: &str, value: i32) -> Result<ToxicityCategory, FieldViolation> {
    Ok(match pb::ToxicityCategory::try_from(value) {
        Ok(pb::ToxicityCategory::Insult) => ToxicityCategory::Insult,
        Ok(pb::ToxicityCategory::IdentityAttack) => ToxicityCategory::IdentityAttack,
        Ok(pb::ToxicityCategory::Threat) => ToxicityCategory::Threat,
        Ok(pb::ToxicityCategory::Obscene) => ToxicityCategory::Obscene,
        Ok(pb::ToxicityCategory::SexualHarassment) => ToxicityCategory::SexualHarassment,
        Ok(pb::ToxicityCategory::Unspecified) | Err(_) => {
            return Err(FieldViolation::new(
                field,
                "must be INSULT, IDENTITY_ATTACK, THREAT, OBSCENE or SEXUAL_HARASSMENT",
            ));
        }
    })
}

pub fn report_reason(value: i32) -> Result<ReportReason, FieldViolation> {
    Ok(match pb::ReportReason::try_from(value) {
        Ok(pb::ReportReason::Offensive) => ReportReason::Offensive,
        Ok(pb::ReportReason::Spam) => ReportReason::Spam,
        Ok(pb::ReportReason::Harassment) => ReportReason::Harassment,
        Ok(pb::ReportReason::Illegal) => ReportReason::Illegal,
        Ok(pb::ReportReason::Other) => ReportReason::Other,
        Ok(pb::ReportReason::Unspecified) | Err(_) => {
            return Err(FieldViolation::new(
                "reason",
                "must be OFFENSIVE, SPAM, HARASSMENT, ILLEGAL or OTHER",
            ));
        }
    })
}

fn report_reason_to_pb(value: ReportReason) -> pb::ReportReason {
    match value {
        ReportReason::Offensive => pb::ReportReason::Offensive,
        ReportReason::Spam => pb::ReportReason::Spam,
        ReportReason::Harassment => pb::ReportReason::Harassment,
        ReportReason::Illegal => pb::ReportReason::Illegal,
        ReportReason::Other => pb::ReportReason::Other,
    }
}

pub fn author_export(value: crate::moderation::privacy::AuthorExport) -> pb::ExportAuthorResponse {
    pb::ExportAuthorResponse {
        author: Some(author(&value.author)),
        comments: value.author.recent.into_iter().map(comment).collect(),
        reports: value
            .reports
            .into_iter()
            .map(|r| pb::ExportedReport {
                comment_id: r.comment_id.to_string(),
                reason: report_reason_to_pb(r.reason).into(),
                detail: r.detail,
                create_time: Some(timestamp(r.create_time)),
            })
            .collect(),
        audit_events: value.audit_events.into_iter().map(audit_event).collect(),
    }
}

pub fn standing_term(
    standing: i32,
    until: Option<prost_types::Timestamp>,
) -> Result<StandingTerm, FieldViolation> {
    let standing = match pb::AuthorStanding::try_from(standing) {
        Ok(pb::AuthorStanding::Trusted) => AuthorStanding::Trusted,
        Ok(pb::AuthorStanding::Normal) => AuthorStanding::Normal,
        Ok(pb::AuthorStanding::Premoderated) => AuthorStanding::Premoderated,
        Ok(pb::AuthorStanding::Suspended) => AuthorStanding::Suspended,
        Ok(pb::AuthorStanding::Banned) => AuthorStanding::Banned,
        Ok(pb::AuthorStanding::Unspecified) | Err(_) => {
            return Err(FieldViolation::new(
                "standing",
                "must be TRUSTED, NORMAL, PREMODERATED, SUSPENDED or BANNED",
            ));
        }
    };
    Ok(StandingTerm {
        standing,
        until: optional_time("until", until)?,
    })
}

pub fn audit_filter(request: pb::ListAuditEventsRequest) -> Result<AuditFilter, FieldViolation> {
    let comment_id = (!request.comment_id.is_empty())
        .then(|| CommentId::parse("comment_id", &request.comment_id))
        .transpose()?;
    let author_id = (!request.author_id.is_empty())
        .then(|| AuthorId::parse("author_id", request.author_id))
        .transpose()?;
    let start_time = optional_time("start_time", request.start_time)?;
    let end_time = optional_time("end_time", request.end_time)?;
    if let (Some(start), Some(end)) = (start_time, end_time)
        && end <= start
    {
        return Err(FieldViolation::new("end_time", "must be after start_time"));
    }
    Ok(AuditFilter {
        comment_id,
        author_id,
        actor: optional_filter("actor", request.actor)?,
        action: optional_filter("action", request.action)?,
        start_time,
        end_time,
        oldest_first: request.oldest_first,
    })
}

pub fn new_comment(request: pb::SubmitCommentRequest) -> Result<NewComment, FieldViolation> {
    let author_ip = if request.author_ip.is_empty() {
        None
    } else {
        Some(
            request
                .author_ip
                .parse()
                .map_err(|_| FieldViolation::new("author_ip", "must be an IPv4 or IPv6 address"))?,
        )
    };
    let client_comment_id = if request.client_comment_id.is_empty() {
        None
    } else {
        Some(ClientCommentId::parse(
            "client_comment_id",
            request.client_comment_id,
        )?)
    };
    let parent_comment_id = if request.parent_comment_id.is_empty() {
        None
    } else {
        Some(CommentId::parse(
            "parent_comment_id",
            &request.parent_comment_id,
        )?)
    };
    Ok(NewComment {
        article_id: ArticleId::parse("article_id", request.article_id)?,
        author_id: AuthorId::parse("author_id", request.author_id)?,
        body: CommentBody::parse("body", request.body)?,
        client_comment_id,
        author_display_name: DisplayName::parse(
            "author_display_name",
            request.author_display_name,
        )?,
        author_ip,
        parent_comment_id,
        language: LanguageTag::parse("language", request.language)?,
    })
}

/// `None` for UNSPECIFIED: the call's default applies.
pub fn status_filter(value: i32) -> Result<Option<CommentStatus>, FieldViolation> {
    match pb::CommentStatus::try_from(value) {
        Ok(pb::CommentStatus::Unspecified) => Ok(None),
        Ok(pb::CommentStatus::Approved) => Ok(Some(CommentStatus::Approved)),
        Ok(pb::CommentStatus::PendingReview) => Ok(Some(CommentStatus::PendingReview)),
        Ok(pb::CommentStatus::Rejected) => Ok(Some(CommentStatus::Rejected)),
        Err(_) => Err(FieldViolation::new(
            "status",
            format!("unknown value {value}"),
        )),
    }
}

pub fn decision(value: i32) -> Result<ReviewDecision, FieldViolation> {
    match pb::ReviewDecision::try_from(value) {
        Ok(pb::ReviewDecision::Approve) => Ok(ReviewDecision::Approve),
        Ok(pb::ReviewDecision::Reject) => Ok(ReviewDecision::Reject),
        Ok(pb::ReviewDecision::Unspecified) => Err(FieldViolation::new(
            "decision",
            "is required: REVIEW_DECISION_APPROVE or REVIEW_DECISION_REJECT",
        )),
        Err(_) => Err(FieldViolation::new(
            "decision",
            format!("unknown value {value}"),
        )),
    }
}

pub fn spam_label(value: i32) -> Result<SpamLabel, FieldViolation> {
    match pb::SpamLabel::try_from(value) {
        Ok(pb::SpamLabel::Unspecified) => Ok(SpamLabel::FromDecision),
        Ok(pb::SpamLabel::Spam) => Ok(SpamLabel::Spam),
        Ok(pb::SpamLabel::Ham) => Ok(SpamLabel::Ham),
        Ok(pb::SpamLabel::Skip) => Ok(SpamLabel::Skip),
        Err(_) => Err(FieldViolation::new(
            "spam_label",
            format!("unknown value {value}"),
        )),
    }
}

pub fn role(value: i32) -> Result<Role, FieldViolation> {
    match pb::ApiKeyRole::try_from(value) {
        Ok(pb::ApiKeyRole::Publisher) => Ok(Role::Publisher),
        Ok(pb::ApiKeyRole::Moderator) => Ok(Role::Moderator),
        Ok(pb::ApiKeyRole::Admin) => Ok(Role::Admin),
        Ok(pb::ApiKeyRole::Unspecified) => Err(FieldViolation::new("role", "is required")),
        Err(_) => Err(FieldViolation::new(
            "role",
            format!("unknown value {value}"),
        )),
    }
}

pub fn moderator_id(value: String) -> Result<Option<ModeratorId>, FieldViolation> {
    ModeratorId::parse("moderator_id", value)
}

pub fn review_ids(values: Vec<String>) -> Result<Vec<ReviewId>, FieldViolation> {
    if values.is_empty() {
        return Err(FieldViolation::new("review_ids", "is required"));
    }
    if values.len() > 500 {
        return Err(FieldViolation::new("review_ids", "holds more than 500 ids"));
    }
    values
        .iter()
        .map(|v| ReviewId::parse("review_ids", v))
        .collect()
}

/// A settings update: the patch, and the classifier change (`Some(None)`
/// removes it), whose key the use case seals.
pub fn settings_patch(
    request: pb::UpdateTenantSettingsRequest,
) -> Result<(TenantSettingsPatch, Option<Option<ClassifierSpec>>), FieldViolation> {
    let classifier = match (
        request.external_classifier.clone(),
        request.remove_external_classifier,
    ) {
        (Some(_), true) => {
            return Err(FieldViolation::new(
                "remove_external_classifier",
                "cannot be set with external_classifier",
            ));
        }
        (Some(c), false) => Some(Some(classifier_spec(c)?)),
        (None, true) => Some(None),
        (None, false) => None,
    };
    let moderation_mode = match request.moderation_mode {
        None => None,
        Some(value) => match pb::ModerationMode::try_from(value) {
            Ok(pb::ModerationMode::Post) => Some(ModerationMode::Post),
            Ok(pb::ModerationMode::Pre) => Some(ModerationMode::Pre),
            Ok(pb::ModerationMode::Unspecified) => {
                return Err(FieldViolation::new(
                    "moderation_mode",
                    "must be POST or PRE when set",
                ));
            }
            Err(_) => {
                return Err(FieldViolation::new(
                    "moderation_mode",
                    format!("unknown value {value}"),
                ));
            }
        },
    };
    let patch = TenantSettingsPatch {
        moderation_mode,
        review_threshold: request.review_threshold,
        reject_threshold: request.reject_threshold,
        max_body_chars: request.max_body_chars,
        report_threshold: request.report_threshold,
        hide_reported: request.hide_reported,
        max_comments_per_author_per_minute: request.max_comments_per_author_per_minute,
        max_comments_per_ip_per_minute: request.max_comments_per_ip_per_minute,
        retain_rejected_bodies_days: request.retain_rejected_bodies_days,
        retain_bodies_days: request.retain_bodies_days,
        toxicity: request
            .toxicity_thresholds
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                Ok(CategoryThresholds {
                    category: toxicity_category(
                        &format!("toxicity_thresholds[{i}].category"),
                        t.category,
                    )?,
                    review: t.review_threshold,
                    reject: t.reject_threshold,
                })
            })
            .collect::<Result<_, FieldViolation>>()?,
        external_classifier: None,
    };
    Ok((patch, classifier))
}

fn classifier_spec(value: pb::ExternalClassifier) -> Result<ClassifierSpec, FieldViolation> {
    let kind = match pb::ExternalClassifierKind::try_from(value.kind) {
        Ok(pb::ExternalClassifierKind::Perspective) => ClassifierKind::Perspective,
        Ok(pb::ExternalClassifierKind::OpenaiModeration) => ClassifierKind::OpenAiModeration,
        Ok(pb::ExternalClassifierKind::Unspecified) => {
            return Err(FieldViolation::new(
                "external_classifier.kind",
                "is required: PERSPECTIVE or OPENAI_MODERATION",
            ));
        }
        Err(_) => {
            return Err(FieldViolation::new(
                "external_classifier.kind",
                format!("unknown value {}", value.kind),
            ));
        }
    };
    if value.api_key.chars().count() > ExternalClassifier::MAX_API_KEY_CHARS
        || value.api_key.chars().any(|c| c.is_control())
    {
        return Err(FieldViolation::new(
            "external_classifier.api_key",
            format!(
                "must be at most {} characters, without control characters",
                ExternalClassifier::MAX_API_KEY_CHARS
            ),
        ));
    }
    Ok(ClassifierSpec {
        kind,
        url: WebhookUrl::parse("external_classifier.url", value.url)?,
        timeout_ms: ClassifierSpec::parse_timeout(
            "external_classifier.timeout_ms",
            value.timeout_ms,
        )?,
        api_key: (!value.api_key.is_empty()).then_some(value.api_key),
    })
}

// ---- domain -> responses ------------------------------------------------------

fn status(value: CommentStatus) -> pb::CommentStatus {
    match value {
        CommentStatus::Approved => pb::CommentStatus::Approved,
        CommentStatus::PendingReview => pb::CommentStatus::PendingReview,
        CommentStatus::Rejected => pb::CommentStatus::Rejected,
    }
}

fn reason(value: Reason) -> pb::Reason {
    pb::Reason {
        code: value.code,
        rule_id: value.rule_id,
        message: value.message,
        start: value.span.map(|s| s.start),
        end: value.span.map(|s| s.end),
        rule_name: value.rule_name,
        action: value.action,
        score: value.score,
        target_start: value.target.map(|s| s.start),
        target_end: value.target.map(|s| s.end),
    }
}

pub fn comment(value: Comment) -> pb::Comment {
    pb::Comment {
        comment_id: value.comment_id.to_string(),
        article_id: value.article_id,
        author_id: value.author_id,
        body: value.body,
        status: status(value.status) as i32,
        spam_score: value.spam_score,
        toxicity_score: value.toxicity_score,
        reasons: value.reasons.into_iter().map(reason).collect(),
        create_time: Some(timestamp(value.create_time)),
        update_time: Some(timestamp(value.update_time)),
        client_comment_id: value.client_comment_id.unwrap_or_default(),
        author_display_name: value.author_display_name,
        parent_comment_id: value
            .parent_comment_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        language: value.language,
        original_body: value.original_body.unwrap_or_default(),
        version: value.version,
    }
}

pub fn review_item(value: ReviewItem) -> pb::ReviewItem {
    pb::ReviewItem {
        review_id: value.review_id.to_string(),
        comment: Some(comment(value.comment)),
        priority: value.priority,
        enqueue_time: Some(timestamp(value.enqueue_time)),
        lease_expire_time: value.lease_expire_time.map(timestamp),
        claimed_by: value.claimed_by.unwrap_or_default(),
        author_standing: author_standing(value.author_standing.standing) as i32,
        author_standing_until: value.author_standing.until.map(timestamp),
    }
}

pub fn api_key(value: ApiKeyInfo) -> pb::ApiKey {
    let role = match value.role {
        Role::Publisher => pb::ApiKeyRole::Publisher,
        Role::Moderator => pb::ApiKeyRole::Moderator,
        Role::Admin => pb::ApiKeyRole::Admin,
    };
    pb::ApiKey {
        key_id: value.key_id.to_string(),
        role: role as i32,
        key_prefix: value.key_prefix,
        create_time: Some(timestamp(value.create_time)),
        revoke_time: value.revoke_time.map(timestamp),
        name: value.name,
        expire_time: value.expire_time.map(timestamp),
        last_use_time: value.last_use_time.map(timestamp),
        requests_per_second: value.requests_per_second,
    }
}

pub fn key_spec(request: pb::CreateApiKeyRequest) -> Result<KeySpec, FieldViolation> {
    KeySpec::parse(
        role(request.role)?,
        &request.name,
        optional_time("expire_time", request.expire_time)?,
        request.requests_per_second,
        Utc::now(),
    )
}

pub fn settings(value: TenantSettings) -> pb::TenantSettings {
    let mode = match value.moderation_mode {
        ModerationMode::Post => pb::ModerationMode::Post,
        ModerationMode::Pre => pb::ModerationMode::Pre,
    };
    pb::TenantSettings {
        tenant_name: value.tenant_name,
        moderation_mode: mode as i32,
        review_threshold: value.review_threshold,
        reject_threshold: value.reject_threshold,
        max_body_chars: value.max_body_chars,
        report_threshold: value.report_threshold,
        hide_reported: value.hide_reported,
        max_comments_per_author_per_minute: value.max_comments_per_author_per_minute,
        max_comments_per_ip_per_minute: value.max_comments_per_ip_per_minute,
        retain_rejected_bodies_days: value.retain_rejected_bodies_days,
        retain_bodies_days: value.retain_bodies_days,
        external_classifier: value.external_classifier.map(|c| pb::ExternalClassifier {
            kind: match c.kind {
                ClassifierKind::Perspective => pb::ExternalClassifierKind::Perspective,
                ClassifierKind::OpenAiModeration => pb::ExternalClassifierKind::OpenaiModeration,
            } as i32,
            url: c.url,
            api_key: String::new(),
            timeout_ms: c.timeout_ms,
            api_key_set: !c.sealed_api_key.is_empty(),
        }),
        toxicity_thresholds: ToxicityCategory::ALL
            .into_iter()
            .map(|c| {
                let (review, reject) = value.toxicity.get(c);
                pb::ToxicityThreshold {
                    category: toxicity_category_to_pb(c) as i32,
                    review_threshold: review,
                    reject_threshold: reject,
                }
            })
            .collect(),
    }
}

fn toxicity_category_to_pb(value: ToxicityCategory) -> pb::ToxicityCategory {
    match value {
        ToxicityCategory::Insult => pb::ToxicityCategory::Insult,
        ToxicityCategory::IdentityAttack => pb::ToxicityCategory::IdentityAttack,
        ToxicityCategory::Threat => pb::ToxicityCategory::Threat,
        ToxicityCategory::Obscene => pb::ToxicityCategory::Obscene,
        ToxicityCategory::SexualHarassment => pb::ToxicityCategory::SexualHarassment,
    }
}

// ---- rules ----------------------------------------------------------------------

pub fn rule(value: Option<pb::Rule>) -> Result<crate::domain::Rule, FieldViolation> {
    use crate::domain::{RuleAction, RuleKind};
    let value = value.ok_or_else(|| FieldViolation::new("rule", "is required"))?;
    let action = match pb::RuleAction::try_from(value.action) {
        Ok(pb::RuleAction::Reject) => RuleAction::Reject,
        Ok(pb::RuleAction::Review) => RuleAction::Review,
        Ok(pb::RuleAction::Score) => RuleAction::Score {
            weight: value.weight,
        },
        Ok(pb::RuleAction::Tag) => RuleAction::Tag { label: value.label },
        Ok(pb::RuleAction::Mask) => RuleAction::Mask,
        Ok(pb::RuleAction::Unspecified) => {
            return Err(FieldViolation::new("rule.action", "is required"));
        }
        Err(_) => {
            return Err(FieldViolation::new(
                "rule.action",
                format!("unknown value {}", value.action),
            ));
        }
    };
    let kind = match value.kind {
        Some(pb::rule::Kind::Words(w)) => RuleKind::Words { words: w.words },
        Some(pb::rule::Kind::Regex(r)) => RuleKind::Regex {
            pattern: r.pattern,
            normalized: r.normalized,
        },
        Some(pb::rule::Kind::Links(l)) => RuleKind::Links {
            max_links: l.max_links,
            deny_domains: l.deny_domains,
            allow_domains: l.allow_domains,
            shorteners: l.shorteners,
        },
        Some(pb::rule::Kind::Structure(s)) => RuleKind::Structure {
            max_chars: s.max_chars,
            max_caps_ratio: s.max_caps_ratio,
            min_letters: s.min_letters.unwrap_or(12),
            max_repeated_chars: s.max_repeated_chars,
            max_emoji: s.max_emoji,
            max_lines: s.max_lines,
        },
        None => {
            return Err(FieldViolation::new(
                "rule.kind",
                "is required: words, regex, links or structure",
            ));
        }
    };
    let rule = crate::domain::Rule {
        id: value.rule_id,
        name: value.name,
        description: value.description,
        enabled: value.enabled,
        action,
        kind,
    };
    rule.validate()?;
    Ok(rule)
}

pub fn rule_record(record: crate::storage::RuleRecord) -> pb::Rule {
    use crate::domain::{RuleAction, RuleKind};
    let rule = record.rule;
    let (action, weight, label) = match rule.action {
        RuleAction::Reject => (pb::RuleAction::Reject, 0.0, String::new()),
        RuleAction::Review => (pb::RuleAction::Review, 0.0, String::new()),
        RuleAction::Score { weight } => (pb::RuleAction::Score, weight, String::new()),
        RuleAction::Tag { label } => (pb::RuleAction::Tag, 0.0, label),
        RuleAction::Mask => (pb::RuleAction::Mask, 0.0, String::new()),
    };
    let kind = match rule.kind {
        RuleKind::Words { words } => pb::rule::Kind::Words(pb::WordsRule { words }),
        RuleKind::Regex {
            pattern,
            normalized,
        } => pb::rule::Kind::Regex(pb::RegexRule {
            pattern,
            normalized,
        }),
        RuleKind::Links {
            max_links,
            deny_domains,
            allow_domains,
            shorteners,
        } => pb::rule::Kind::Links(pb::LinksRule {
            max_links,
            deny_domains,
            allow_domains,
            shorteners,
        }),
        RuleKind::Structure {
            max_chars,
            max_caps_ratio,
            min_letters,
            max_repeated_chars,
            max_emoji,
            max_lines,
        } => pb::rule::Kind::Structure(pb::StructureRule {
            max_chars,
            max_caps_ratio,
            min_letters: Some(min_letters),
            max_repeated_chars,
            max_emoji,
            max_lines,
        }),
    };
    pb::Rule {
        rule_id: rule.id,
        name: rule.name,
        description: rule.description,
        enabled: rule.enabled,
        action: action as i32,
        weight,
        label,
        kind: Some(kind),
        revision: record.revision,
        create_time: Some(timestamp(record.create_time)),
        update_time: Some(timestamp(record.update_time)),
    }
}

pub fn test_result(verdict: crate::pipeline::Verdict, body: &str) -> pb::TestRulesResponse {
    pb::TestRulesResponse {
        status: status(verdict.status) as i32,
        spam_score: verdict.spam_score,
        toxicity_score: verdict.toxicity_score,
        reasons: verdict.reasons.into_iter().map(reason).collect(),
        published_body: verdict.masked_body.unwrap_or_else(|| body.to_owned()),
    }
}

/// JSON as a protobuf `Struct` (objects) or `Value`.
fn json_value(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(json_value).collect(),
        }),
        serde_json::Value::Object(fields) => Kind::StructValue(json_struct(fields)),
    };
    prost_types::Value { kind: Some(kind) }
}

fn json_struct(fields: serde_json::Map<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: fields
            .into_iter()
            .map(|(name, value)| (name, json_value(value)))
            .collect(),
    }
}

pub fn audit_event(value: AuditRecord) -> pb::AuditEvent {
    let detail = match value.detail {
        serde_json::Value::Object(fields) => json_struct(fields),
        other => json_struct(serde_json::Map::from_iter([("value".to_owned(), other)])),
    };
    pb::AuditEvent {
        event_id: value.event_id,
        create_time: Some(timestamp(value.create_time)),
        actor: value.actor,
        action: value.action,
        subject_type: value.subject_type,
        subject_id: value.subject_id,
        from_state: value.from_state.unwrap_or_default(),
        to_state: value.to_state.unwrap_or_default(),
        detail: Some(detail),
        comment_id: value
            .comment_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        author_id: value.author_id.unwrap_or_default(),
    }
}

fn author_standing(value: AuthorStanding) -> pb::AuthorStanding {
    match value {
        AuthorStanding::Trusted => pb::AuthorStanding::Trusted,
        AuthorStanding::Normal => pb::AuthorStanding::Normal,
        AuthorStanding::Premoderated => pb::AuthorStanding::Premoderated,
        AuthorStanding::Suspended => pb::AuthorStanding::Suspended,
        AuthorStanding::Banned => pb::AuthorStanding::Banned,
    }
}

pub fn author(value: &AuthorView) -> pb::Author {
    let last_set = value.last_set.as_ref();
    pb::Author {
        author_id: value.author_id.clone(),
        standing: author_standing(value.in_force.standing) as i32,
        until: value.in_force.until.map(timestamp),
        reason: last_set.map(|s| s.reason.clone()).unwrap_or_default(),
        set_by: last_set.map(|s| s.set_by.clone()).unwrap_or_default(),
        update_time: last_set.map(|s| timestamp(s.update_time)),
        approved_count: value.approved,
        pending_review_count: value.pending_review,
        rejected_count: value.rejected,
    }
}

pub fn bulk_result((review_id, outcome): BulkOutcome) -> pb::BulkDecisionResult {
    use pb::DecisionOutcome as O;
    let (outcome, comment, message) = match outcome {
        Ok(comment) => (O::Decided, Some(self::comment(comment)), String::new()),
        Err(err) => {
            let outcome = match err {
                DecideError::AlreadyDecided => O::AlreadyDecided,
                DecideError::NotClaimed => O::NotClaimed,
                DecideError::NotFound => O::NotFound,
                DecideError::Stale { .. } => O::Stale,
                // `decide_reviews` ends the call on a database failure, so no
                // result carries one.
                DecideError::Store(_) => O::Unspecified,
            };
            (outcome, None, err.to_string())
        }
    };
    pb::BulkDecisionResult {
        review_id: review_id.to_string(),
        outcome: outcome as i32,
        comment,
        message,
    }
}

pub fn decision_event(value: DecisionEvent) -> pb::WatchDecisionsResponse {
    pb::WatchDecisionsResponse {
        sequence: value.sequence,
        comment_id: value.comment_id.to_string(),
        article_id: value.article_id,
        author_id: value.author_id,
        previous_status: value
            .from_status
            .map_or(pb::CommentStatus::Unspecified, status) as i32,
        status: status(value.to_status) as i32,
        queued: value.queued,
        version: value.version,
        create_time: Some(timestamp(value.create_time)),
    }
}

/// The queue side of a decision event (`QueueMove::of`).
pub fn queue_move(value: DecisionEvent) -> Option<pb::WatchQueueResponse> {
    let moved = match crate::moderation::QueueMove::of(&value)? {
        crate::moderation::QueueMove::Entered => pb::QueueMove::Entered,
        crate::moderation::QueueMove::Left => pb::QueueMove::Left,
    };
    Some(pb::WatchQueueResponse {
        sequence: value.sequence,
        r#move: moved as i32,
        comment_id: value.comment_id.to_string(),
        article_id: value.article_id,
        status: status(value.to_status) as i32,
        version: value.version,
        create_time: Some(timestamp(value.create_time)),
    })
}

fn webhook_event_type(value: i32) -> Result<WebhookEventType, FieldViolation> {
    use pb::WebhookEventType as Pb;
    Ok(match Pb::try_from(value) {
        Ok(Pb::CommentApproved) => WebhookEventType::CommentApproved,
        Ok(Pb::CommentRejected) => WebhookEventType::CommentRejected,
        Ok(Pb::CommentHeld) => WebhookEventType::CommentHeld,
        Ok(Pb::CommentDecided) => WebhookEventType::CommentDecided,
        Ok(Pb::CommentReopened) => WebhookEventType::CommentReopened,
        Ok(Pb::CommentReported) => WebhookEventType::CommentReported,
        Ok(Pb::AuthorStandingChanged) => WebhookEventType::AuthorStandingChanged,
        Ok(Pb::Unspecified) | Err(_) => {
            return Err(FieldViolation::new(
                "event_types",
                "holds an unknown or unspecified event type",
            ));
        }
    })
}

fn webhook_event_types(values: Vec<i32>) -> Result<Vec<WebhookEventType>, FieldViolation> {
    if values.len() > WebhookEventType::ALL.len() * 4 {
        return Err(FieldViolation::new(
            "event_types",
            "lists too many event types",
        ));
    }
    let mut types = values
        .into_iter()
        .map(webhook_event_type)
        .collect::<Result<Vec<_>, _>>()?;
    types.sort();
    types.dedup();
    Ok(types)
}

fn webhook_event_type_to_pb(value: WebhookEventType) -> pb::WebhookEventType {
    use pb::WebhookEventType as Pb;
    match value {
        WebhookEventType::CommentApproved => Pb::CommentApproved,
        WebhookEventType::CommentRejected => Pb::CommentRejected,
        WebhookEventType::CommentHeld => Pb::CommentHeld,
        WebhookEventType::CommentDecided => Pb::CommentDecided,
        WebhookEventType::CommentReopened => Pb::CommentReopened,
        WebhookEventType::CommentReported => Pb::CommentReported,
        WebhookEventType::AuthorStandingChanged => Pb::AuthorStandingChanged,
    }
}

pub fn webhook_spec(request: pb::CreateWebhookRequest) -> Result<WebhookSpec, FieldViolation> {
    Ok(WebhookSpec {
        url: WebhookUrl::parse("url", request.url)?,
        event_types: webhook_event_types(request.event_types)?,
        description: webhook_description("description", request.description)?,
    })
}

pub fn webhook_change(
    request: pb::UpdateWebhookRequest,
) -> Result<(WebhookId, WebhookChange), FieldViolation> {
    Ok((
        WebhookId::parse("webhook_id", &request.webhook_id)?,
        WebhookChange {
            url: request
                .url
                .map(|u| WebhookUrl::parse("url", u))
                .transpose()?,
            event_types: request
                .event_types
                .map(|t| webhook_event_types(t.values))
                .transpose()?,
            description: request
                .description
                .map(|d| webhook_description("description", d))
                .transpose()?,
            enabled: request.enabled,
        },
    ))
}

pub fn webhook(value: Webhook) -> pb::Webhook {
    pb::Webhook {
        webhook_id: value.webhook_id.to_string(),
        url: value.url,
        description: value.description,
        event_types: value
            .event_types
            .into_iter()
            .map(|t| webhook_event_type_to_pb(t).into())
            .collect(),
        enabled: value.enabled,
        disabled_reason: value.disabled_reason,
        previous_secret_expire_time: value.previous_secret_expire_time.map(timestamp),
        create_time: Some(timestamp(value.create_time)),
        update_time: Some(timestamp(value.update_time)),
    }
}

/// A delivery's `message_id` as the service makes them (`webhook_message_id`).
pub fn webhook_message_id(value: String) -> Result<String, FieldViolation> {
    let number = value
        .strip_prefix("msg_seq_")
        .or_else(|| value.strip_prefix("msg_evt_"));
    match number.map(str::parse::<u64>) {
        Some(Ok(_)) => Ok(value),
        _ if value.is_empty() => Err(FieldViolation::new("message_id", "is required")),
        _ => Err(FieldViolation::new(
            "message_id",
            "must be a delivery's message_id (msg_seq_<n> or msg_evt_<n>)",
        )),
    }
}

fn delivery_state(value: DeliveryState) -> pb::WebhookDeliveryState {
    match value {
        DeliveryState::Pending => pb::WebhookDeliveryState::Pending,
        DeliveryState::Delivered => pb::WebhookDeliveryState::Delivered,
        DeliveryState::Failed => pb::WebhookDeliveryState::Failed,
        DeliveryState::Retrying => pb::WebhookDeliveryState::Retrying,
    }
}

pub fn webhook_delivery(value: WebhookDelivery) -> pb::WebhookDelivery {
    pb::WebhookDelivery {
        message_id: value.message_id,
        event_type: webhook_event_type_to_pb(value.event_type) as i32,
        sequence: value.sequence.unwrap_or(0),
        state: delivery_state(value.state) as i32,
        attempts: value.attempts as i32,
        last_status: value.last_status.map_or(0, i32::from),
        last_error: value.last_error,
        event_time: Some(timestamp(value.event_time)),
        first_attempt_time: Some(timestamp(value.first_attempt_time)),
        last_attempt_time: Some(timestamp(value.last_attempt_time)),
        next_attempt_time: value.next_attempt_time.map(timestamp),
    }
}

// ---- webhook payloads -----------------------------------------------------------

/// `message` in proto3 JSON with the proto's field names (snake_case),
/// enums by name, timestamps in RFC 3339, default values left out: the
/// JSON mapping of what the API returns, through the descriptor the
/// server also serves for reflection.
fn proto_json<M: prost::Message>(full_name: &str, message: &M) -> serde_json::Value {
    use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
    static POOL: std::sync::LazyLock<DescriptorPool> = std::sync::LazyLock::new(|| {
        DescriptorPool::decode(pb::FILE_DESCRIPTOR_SET).expect("the built descriptor decodes")
    });
    let descriptor = POOL
        .get_message_by_name(full_name)
        .expect("a message of the API");
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .expect("a message decodes from its own encoding");
    dynamic
        .serialize_with_options(
            serde_json::value::Serializer,
            &SerializeOptions::new().use_proto_field_name(true),
        )
        .expect("a message serialises to JSON")
}

fn status_name(state: Option<&str>) -> serde_json::Value {
    state
        .and_then(CommentStatus::from_db)
        .map_or(serde_json::Value::Null, |s| status(s).as_str_name().into())
}

fn standing_name(state: Option<&str>) -> serde_json::Value {
    state
        .and_then(AuthorStanding::from_db)
        .map_or(serde_json::Value::Null, |s| {
            author_standing(s).as_str_name().into()
        })
}

/// The body of a webhook delivery: `{"type", "timestamp", "data"}`
/// (Standard Webhooks). `timestamp` is when the event happened; `data`
/// says what happened (statuses and standings by their API enum names)
/// and carries the comment as `GetComment` returns it when the delivery
/// is made (`comment`, proto3 JSON), so a receiver needs no call back.
pub fn webhook_payload(
    kind: WebhookEventType,
    event: &crate::storage::LoggedEvent,
    comment: Option<Comment>,
) -> serde_json::Value {
    use serde_json::json;
    let a = &event.audit;
    let detail = |key: &str| {
        a.detail
            .get(key)
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    };
    let mut data = match kind {
        WebhookEventType::CommentReported => json!({
            "comment_id": a.subject_id,
            "reporter_id": detail("reporter_id"),
            "reason": detail("reason"),
            "reports": detail("reports"),
        }),
        WebhookEventType::AuthorStandingChanged => json!({
            "author_id": a.subject_id,
            "from_standing": standing_name(a.from_state.as_deref()),
            "to_standing": standing_name(a.to_state.as_deref()),
            "reason": detail("reason"),
            "until": detail("until"),
            "actor": a.actor,
        }),
        _ => {
            let mut data = json!({
                "sequence": event.sequence,
                "comment_id": a.subject_id,
                "from_status": status_name(a.from_state.as_deref()),
                "to_status": status_name(a.to_state.as_deref()),
                "queued": event.queued,
                "version": event.version,
                "actor": a.actor,
            });
            match kind {
                WebhookEventType::CommentDecided => {
                    data["decision"] = json!({
                        "review_id": detail("review_id"),
                        "decision": detail("decision"),
                        "reason_code": detail("reason_code"),
                        "note": detail("note"),
                        "moderator_id": a.actor,
                    });
                }
                WebhookEventType::CommentReopened => data["note"] = detail("note"),
                WebhookEventType::CommentHeld if a.action == "comment.requeued" => {
                    data["requeued"] = json!({
                        "reason_code": detail("reason"),
                        "reports": detail("reports"),
                        "hidden": detail("hidden"),
                    });
                }
                _ => {}
            }
            data
        }
    };
    if let Some(c) = comment {
        data["comment"] = proto_json("moderato.v1.Comment", &self::comment(c));
    }
    json!({
        "type": kind.as_str(),
        "timestamp": a.create_time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": data,
    })
}
