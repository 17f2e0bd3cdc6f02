//! Domain types: what moderato talks about, parsed once at the edge.
//!
//! Every type here is valid by construction ("parse, don't validate"): the gRPC
//! layer turns wire values into these types and refuses bad input with the field
//! and the reason, so nothing below it re-checks. Nothing here does I/O.

mod auth;
mod author;
mod classifier;
mod comment;
mod error;
mod ids;
mod model;
mod page;
mod report;
mod review;
mod rule;
mod secret;
mod tenant;
mod toxicity;
mod webhook;

pub use auth::{Actor, ApiKeyInfo, ApiKeySecret, KeyHash, KeySpec, Permission, Principal, Role};
pub use author::{AuthorStanding, Standing, StandingTerm};
pub use classifier::{
    ClassifierChange, ClassifierKind, ClassifierSpec, ExternalClassifier, ExternalOpinion,
    PERSPECTIVE_ATTRIBUTES, external_reason_code,
};
pub use comment::{
    ArticleId, AuthorId, ClientCommentId, Comment, CommentBody, CommentStatus, DisplayName,
    LanguageTag, NewComment, Reason, Span,
};
pub use error::FieldViolation;
pub use ids::{CommentId, KeyId, ReviewId, TenantId, WebhookId};
pub use model::{Label, ModelKind};
pub use page::{PageSize, PageToken};
pub use report::{ReportDetail, ReportReason, ReporterId};
pub(crate) use report::{Requeue, report_consequence};
pub use review::{
    ModeratorId, REOPENED_PRIORITY, ReviewDecision, ReviewItem, SpamLabel, reopened_reason,
    toxicity_lesson,
};
pub use rule::{
    MAX_RULES_PER_TENANT, MAX_TENANT_WORDS, Rule, RuleAction, RuleChange, RuleFile, RuleKind,
    RuleRejection, check_rule_set,
};
pub(crate) use rule::{RuleStep, plan_rule_change};
pub use secret::{IP_HASH_PREFIX, IpHasher, Sealer, ServerSecret};
pub use tenant::{ModerationMode, TenantName, TenantSettings, TenantSettingsPatch};
pub use toxicity::{CategoryThresholds, ToxicityCategory, ToxicityScores, ToxicityThresholds};
pub use webhook::{
    DeliveryState, MAX_WEBHOOKS, Webhook, WebhookChange, WebhookCursor, WebhookDelivery,
    WebhookEventType, WebhookSettlement, WebhookSpec, WebhookUrl, webhook_description,
    webhook_message_id,
};
