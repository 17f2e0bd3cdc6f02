//! The console's JSON calls: each authenticates the `Authorization: Bearer`
//! header like the gRPC services (same keys, same roles, same cache),
//! parses its input into domain values at once, and calls the same
//! `moderation` use case the gRPC service does.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde::Deserialize;
use tokio_stream::Stream;

use super::error::ConsoleError;
use super::view::{
    AuthorPanel, DecidedView, ItemsView, QueuePage, RulesView, SessionView, SettingsView, TestView,
    TrailView,
};
use crate::domain::{
    AuthorId, AuthorStanding, CategoryThresholds, CommentBody, CommentId, FieldViolation, KeyHash,
    ModerationMode, ModeratorId, PageSize, Permission, Principal, ReviewDecision, ReviewId,
    SpamLabel, StandingTerm, TenantSettingsPatch, ToxicityCategory,
};
use crate::moderation::{
    AuditFilter, ClaimRequest, Credentials, DecideRequest, Moderation, QueueMove, ReviewActor,
    parse,
};
use crate::storage::QueueOrder;

/// Reads `Authorization: Bearer <key>`; the key is hashed at once and never
/// kept or logged in clear.
fn credentials(headers: &HeaderMap) -> Credentials {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Credentials::Missing;
    };
    let Ok(value) = value.to_str() else {
        return Credentials::Malformed;
    };
    match value.trim().split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty() => {
            Credentials::Bearer(KeyHash::of(key.trim()))
        }
        _ => Credentials::Malformed,
    }
}

async fn reviewer(moderation: &Moderation, headers: &HeaderMap) -> Result<Principal, ConsoleError> {
    Ok(moderation
        .authorize(credentials(headers), Permission::Review)
        .await?)
}

pub async fn session(
    State(moderation): State<Moderation>,
    headers: HeaderMap,
) -> Result<Json<SessionView>, ConsoleError> {
    let principal = reviewer(&moderation, &headers).await?;
    Ok(Json(SessionView {
        tenant_id: principal.tenant_id.to_string(),
        role: principal.role.as_str(),
        actor: principal.actor().as_str().to_owned(),
    }))
}

/// `order`: `priority` (default), `oldest`, `newest`.
fn queue_order(value: &str) -> Result<QueueOrder, FieldViolation> {
    match value {
        "" | "priority" => Ok(QueueOrder::Priority),
        "oldest" => Ok(QueueOrder::OldestFirst),
        "newest" => Ok(QueueOrder::NewestFirst),
        _ => Err(FieldViolation::new(
            "order",
            "must be priority, oldest or newest",
        )),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct QueueParams {
    order: String,
    article_id: String,
    reason_code: String,
    min_spam_score: f64,
    reported_only: bool,
    page_size: i32,
    page_token: String,
}

pub async fn queue(
    State(moderation): State<Moderation>,
    headers: HeaderMap,
    params: Result<Query<QueueParams>, QueryRejection>,
) -> Result<Json<QueuePage>, ConsoleError> {
    let principal = reviewer(&moderation, &headers).await?;
    let Query(params) = params.map_err(|e| ConsoleError::Malformed(e.body_text()))?;
    let filter = parse::queue_filter(
        params.article_id,
        params.reason_code,
        params.min_spam_score,
        params.reported_only,
    )?;
    let order = queue_order(&params.order)?;
    let page_size = PageSize::parse("page_size", params.page_size, 50, 500)?;
    let (total, total_capped) = moderation.count_review_queue(&principal, &filter).await?;
    let page = moderation
        .list_review_queue(&principal, filter, order, page_size, &params.page_token)
        .await?;
    Ok(Json(QueuePage {
        items: page.items.into_iter().map(Into::into).collect(),
        next_page_token: page.next_page_token,
        total,
        total_capped,
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ClaimBody {
    max_items: i32,
    lease_seconds: i32,
    /// The moderator's name, signed on decisions; empty: the key.
    moderator_id: String,
    order: String,
    article_id: String,
    reason_code: String,
    min_spam_score: f64,
    reported_only: bool,
}

pub async fn claim(
    State(moderation): State<Moderation>,
    headers: HeaderMap,
    body: Result<Json<ClaimBody>, JsonRejection>,
) -> Result<Json<ItemsView>, ConsoleError> {
    let principal = reviewer(&moderation, &headers).await?;
    let Json(body) = body.map_err(|e| ConsoleError::Malformed(e.body_text()))?;
    let (max_items, lease) = parse::claim_limits(body.max_items, body.lease_seconds)?;
    let moderator = ModeratorId::parse("moderator_id", body.moderator_id)?;
    let filter = parse::queue_filter(
        body.article_id,
        body.reason_code,
        body.min_spam_score,
        body.reported_only,
    )?;
    let items = moderation
        .claim_reviews(
            &principal,
            ClaimRequest {
                max_items,
                lease,
                actor: ReviewActor::of(&principal, moderator),
                filter,
                order: queue_order(&body.order)?,
            },
        )
        .await?;
    Ok(Json(ItemsView {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DecideBody {
    review_id: String,
    /// `approve` or `reject`.
    decision: String,
    /// `spam`, `ham`, `skip`, or empty: taught from the decision.
    spam_label: String,
    reason_code: String,
    note: String,
    /// The comment version the moderator saw; 0: no check.
    expected_version: i64,
    moderator_id: String,
}

fn decide_request(
    body: DecideBody,
    principal: &Principal,
) -> Result<DecideRequest, FieldViolation> {
    let decision = match body.decision.as_str() {
        "approve" => ReviewDecision::Approve,
        "reject" => ReviewDecision::Reject,
        "" => {
            return Err(FieldViolation::new(
                "decision",
                "is required: approve or reject",
            ));
        }
        _ => return Err(FieldViolation::new("decision", "must be approve or reject")),
    };
    let label = match body.spam_label.as_str() {
        "" => SpamLabel::FromDecision,
        "spam" => SpamLabel::Spam,
        "ham" => SpamLabel::Ham,
        "skip" => SpamLabel::Skip,
        _ => {
            return Err(FieldViolation::new(
                "spam_label",
                "must be spam, ham or skip",
            ));
        }
    };
    let moderator = ModeratorId::parse("moderator_id", body.moderator_id)?;
    Ok(DecideRequest {
        review_id: ReviewId::parse("review_id", &body.review_id)?,
        decision,
        label,
        note: parse::note(body.note)?,
        reason_code: parse::reason_code("reason_code", body.reason_code)?,
        expected_version: parse::expected_version(body.expected_version)?,
        actor: ReviewActor::of(principal, moderator),
    })
}

pub async fn decide(
    State(moderation): State<Moderation>,
    headers: HeaderMap,
    body: Result<Json<DecideBody>, JsonRejection>,
) -> Result<Json<DecidedView>, ConsoleError> {
    let principal = reviewer(&moderation, &headers).await?;
    let Json(body) = body.map_err(|e| ConsoleError::Malformed(e.body_text()))?;
    let request = decide_request(body, &principal)?;
    let comment = moderation.decide_review(&principal, request).await?;
    Ok(Json(DecidedView {
        comment: comment.into(),
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EventParams {
    /// The last sequence the page saw; absent: from now on.
    after_sequence: Option<i64>,
}

/// The queue's moves as server-sent events (`data:` one JSON object each,
/// `id:` its sequence), from the decision stream: an item that entered or
/// left the queue, whoever moved it, on any replica. The page reads it with
/// `fetch` (an `EventSource` cannot send the key) and reconnects with the
/// last sequence it saw, so it misses nothing in between.
pub async fn queue_events(
    State(moderation): State<Moderation>,
    headers: HeaderMap,
    params: Result<Query<EventParams>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, ConsoleError> {
    let principal = reviewer(&moderation, &headers).await?;
    let Query(params) = params.map_err(|e| ConsoleError::Malformed(e.body_text()))?;
    let after = match params.after_sequence {
        Some(after) if after < 0 => {
            return Err(FieldViolation::new("after_sequence", "must not be negative").into());
        }
        Some(after) => after,
        None => moderation.last_decision_sequence(&principal).await?,
    };
    let events = moderation.watch_decisions(&principal, after);
    let stream = tokio_stream::StreamExt::filter_map(
        tokio_stream::wrappers::ReceiverStream::new(events),
        |event| match event {
            Ok(event) => {
                let moved = QueueMove::of(&event)?;
                let data = serde_json::json!({
                    "sequence": event.sequence,
                    "move": match moved {
                        QueueMove::Entered => "entered",
                        QueueMove::Left => "left",
                    },
                    "comment_id": event.comment_id.to_string(),
                    "article_id": event.article_id,
                    "status": event.to_status.as_str(),
                    "version": event.version,
                });
                Some(Ok(Event::default()
                    .id(event.sequence.to_string())
                    .data(data.to_string())))
            }
            Err(err) => {
                tracing::warn!(error = %err, "console queue events ended");
                Some(Ok(Event::default()
                    .event("error")
                    .data("the stream ended; reconnect")))
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// An author's standing, counts and latest comments (`GetAuthor`).
pub async fn author(
    State(moderation): State<Moderation>,
    headers: HeaderMap,
    Path(author_id): Path<String>,
) -> Result<Json<AuthorPanel>, ConsoleError> {
    let principal = reviewer(&moderation, &headers).await?;
    let author = AuthorId::parse("author_id", author_id)?;
    let view = moderation.get_author(&principal, author, 20).await?;
    Ok(Json(view.into()))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct StandingBody {
    /// `trusted`, `normal`, `premoderated`, `suspended` or `banned`.
    standing: String,
    /// RFC 3339; absent or empty: no end.
    until: Option<String>,
    reason: String,
    moderator_id: String,
}

fn standing_term(body: &StandingBody) -> Result<StandingTerm, FieldViolation> {
    let standing = AuthorStanding::from_db(&body.standing).ok_or_else(|| {
        FieldViolation::new(
            "standing",
            "must be trusted, normal, premoderated, suspended or banned",
        )
    })?;
    let until = match body.until.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|_| FieldViolation::new("until", "must be an RFC 3339 time"))?
                .with_timezone(&chrono::Utc),
        ),
    };
    Ok(StandingTerm { standing, until })
}

/// Sets an author's standing with an optional end (`SetAuthorStanding`).
pub async fn set_standing(
    State(moderation): State<Moderation>,
    headers: HeaderMap,
    Path(author_id): Path<String>,
    body: Result<Json<StandingBody>, JsonRejection>,
) -> Result<Json<AuthorPanel>, ConsoleError> {
    let principal = reviewer(&moderation, &headers).await?;
    let Json(body) = body.map_err(|e| ConsoleError::Malformed(e.body_text()))?;
    let author = AuthorId::parse("author_id", author_id)?;
    let term = standing_term(&body)?;
    let reason = parse::standing_reason(body.reason)?;
    let moderator = ModeratorId::parse("moderator_id", body.moderator_id)?;
    let view = moderation
        .set_author_standing(
            &principal,
            ReviewActor::of(&principal, moderator),
            author,
            term,
            &reason,
        )
        .await?;
    Ok(Json(view.into()))
}

/// A comment's audit trail, oldest first (`ListAuditEvents`).
pub async fn trail(
    State(moderation): State<Moderation>,
    headers: HeaderMap,
    Path(comment_id): Path<String>,
) -> Result<Json<TrailView>, ConsoleError> {
    let principal = moderation
        .authorize(credentials(&headers), Permission::ReadAudit)
        .await?;
    let comment_id = CommentId::parse("comment_id", &comment_id)?;
    let page = moderation
        .list_audit_events(
            &principal,
            AuditFilter {
                comment_id: Some(comment_id),
                oldest_first: true,
                ..AuditFilter::default()
            },
            PageSize::parse("page_size", 200, 200, 200)?,
            "",
        )
        .await?;
    Ok(Json(TrailView {
        events: page.items.into_iter().map(Into::into).collect(),
    }))
}

async fn admin(moderation: &Moderation, headers: &HeaderMap) -> Result<Principal, ConsoleError> {
    Ok(moderation
        .authorize(credentials(headers), Permission::Administer)
        .await?)
}

/// The tenant's rules (admins).
pub async fn rules(
    State(moderation): State<Moderation>,
    headers: HeaderMap,
) -> Result<Json<RulesView>, ConsoleError> {
    let principal = admin(&moderation, &headers).await?;
    let (rules_version, rules) = moderation.list_rules(&principal).await?;
    Ok(Json(RulesView {
        rules_version,
        rules: rules.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TestBody {
    body: String,
}

/// What a submission of `body` would get now, nothing stored (admins,
/// `TestRules`).
pub async fn test_rules(
    State(moderation): State<Moderation>,
    headers: HeaderMap,
    body: Result<Json<TestBody>, JsonRejection>,
) -> Result<Json<TestView>, ConsoleError> {
    let principal = admin(&moderation, &headers).await?;
    let Json(body) = body.map_err(|e| ConsoleError::Malformed(e.body_text()))?;
    let body = CommentBody::parse("body", body.body)?;
    let text = body.as_str().to_owned();
    let verdict = moderation.test_rules(&principal, body).await?;
    Ok(Json(TestView::new(verdict, text)))
}

/// The tenant's settings (admins).
pub async fn settings(
    State(moderation): State<Moderation>,
    headers: HeaderMap,
) -> Result<Json<SettingsView>, ConsoleError> {
    let principal = admin(&moderation, &headers).await?;
    Ok(Json(
        moderation.get_tenant_settings(&principal).await?.into(),
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SettingsBody {
    /// `pre` or `post`; absent: unchanged.
    moderation_mode: Option<String>,
    review_threshold: Option<f64>,
    reject_threshold: Option<f64>,
    /// Categories given new thresholds; the others keep theirs.
    toxicity: Vec<CategoryBody>,
    max_comments_per_author_per_minute: Option<u32>,
    max_comments_per_ip_per_minute: Option<u32>,
    retain_rejected_bodies_days: Option<u32>,
    retain_bodies_days: Option<u32>,
}

#[derive(Deserialize)]
pub struct CategoryBody {
    category: String,
    review: f64,
    reject: f64,
}

/// Changes the mode, thresholds, submission rates and retention (admins);
/// the store validates them together, as `UpdateTenantSettings` does.
pub async fn update_settings(
    State(moderation): State<Moderation>,
    headers: HeaderMap,
    body: Result<Json<SettingsBody>, JsonRejection>,
) -> Result<Json<SettingsView>, ConsoleError> {
    let principal = admin(&moderation, &headers).await?;
    let Json(body) = body.map_err(|e| ConsoleError::Malformed(e.body_text()))?;
    let moderation_mode = body
        .moderation_mode
        .map(|mode| {
            ModerationMode::from_db(&mode)
                .ok_or_else(|| FieldViolation::new("moderation_mode", "must be pre or post"))
        })
        .transpose()?;
    let toxicity = body
        .toxicity
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let category = ToxicityCategory::parse(&c.category).ok_or_else(|| {
                FieldViolation::new(
                    format!("toxicity[{i}].category"),
                    "must be insult, identity_attack, threat, obscene or sexual_harassment",
                )
            })?;
            Ok(CategoryThresholds {
                category,
                review: c.review,
                reject: c.reject,
            })
        })
        .collect::<Result<Vec<_>, FieldViolation>>()?;
    let patch = TenantSettingsPatch {
        moderation_mode,
        review_threshold: body.review_threshold,
        reject_threshold: body.reject_threshold,
        toxicity,
        max_comments_per_author_per_minute: body.max_comments_per_author_per_minute,
        max_comments_per_ip_per_minute: body.max_comments_per_ip_per_minute,
        retain_rejected_bodies_days: body.retain_rejected_bodies_days,
        retain_bodies_days: body.retain_bodies_days,
        ..TenantSettingsPatch::default()
    };
    Ok(Json(
        moderation
            .update_tenant_settings(&principal, patch, None)
            .await?
            .into(),
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReopenBody {
    note: String,
    /// The comment version the moderator saw; 0: no check.
    expected_version: i64,
    moderator_id: String,
}

/// Sends a decided comment back to the queue (`ReopenComment`).
pub async fn reopen(
    State(moderation): State<Moderation>,
    headers: HeaderMap,
    Path(comment_id): Path<String>,
    body: Result<Json<ReopenBody>, JsonRejection>,
) -> Result<Json<DecidedView>, ConsoleError> {
    let principal = reviewer(&moderation, &headers).await?;
    let Json(body) = body.map_err(|e| ConsoleError::Malformed(e.body_text()))?;
    let comment_id = CommentId::parse("comment_id", &comment_id)?;
    let note = parse::note(body.note)?;
    let expected_version = parse::expected_version(body.expected_version)?;
    let moderator = ModeratorId::parse("moderator_id", body.moderator_id)?;
    let comment = moderation
        .reopen_comment(
            &principal,
            comment_id,
            expected_version,
            &note,
            ReviewActor::of(&principal, moderator),
        )
        .await?;
    Ok(Json(DecidedView {
        comment: comment.into(),
    }))
}
