//! Per-tenant spam and toxicity models, stored as offsets from the seed
//! model so lessons from several replicas add up instead of overwriting.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;
use crate::domain::{Actor, CommentId, Label, ModelKind, TenantId};
use crate::pipeline::spam::Update;

#[async_trait]
pub trait ModelStore: Send + Sync {
    /// The tenant's model row of `kind` and the weights written after
    /// `after_version`.
    async fn load_model(
        &self,
        tenant: TenantId,
        kind: ModelKind,
        after_version: i64,
    ) -> Result<StoredModel, StoreError>;
    /// Every tenant's model versions, for replicas polling for changes.
    async fn model_versions(&self) -> Result<Vec<(TenantId, ModelKind, i64)>, StoreError>;
    /// Adds `lesson` to the tenant's model of its kind (`weight = weight +
    /// delta`, so concurrent lessons from several replicas all count).
    async fn learn(
        &self,
        tenant: TenantId,
        lesson: &Lesson<'_>,
    ) -> Result<LearnOutcome, StoreError>;
}

/// A tenant's stored model of one kind: offsets from the seed model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredModel {
    /// 0 while the tenant has learned nothing.
    pub version: i64,
    pub bias: f64,
    /// Spam (or toxic) examples learned.
    pub positive_examples: i64,
    /// Ham (or clean) examples learned.
    pub negative_examples: i64,
    /// `(feature, offset)` for every feature written after the version asked
    /// for (absolute offsets, so loading twice is harmless).
    pub weights: Vec<(u32, f64)>,
}

/// Where a label came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelSource {
    /// A moderator's decision on a held comment.
    Review,
    /// `MarkSpam` / `MarkHam` / `MarkToxic` / `MarkNotToxic`.
    Mark,
    /// `moderato train`.
    Import,
}

impl LabelSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LabelSource::Review => "review",
            LabelSource::Mark => "mark",
            LabelSource::Import => "import",
        }
    }
}

/// Something a tenant's model learns, applied atomically: the weight
/// deltas, the example counts, the label (a comment teaches each model
/// spam/ham or toxic/not toxic once) and an audit row.
#[derive(Debug, Clone)]
pub struct Lesson<'a> {
    pub kind: ModelKind,
    pub source: LabelSource,
    /// The labelled comment and its label (of `kind`); `None` for an import.
    pub comment: Option<(CommentId, Label)>,
    pub positive_examples: i64,
    pub negative_examples: i64,
    pub update: &'a Update,
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
}

/// What a lesson did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearnOutcome {
    /// Applied; the tenant's model is now at `version`.
    Learned { version: i64 },
    /// The comment already carried this label: nothing changed.
    AlreadyLearned,
}

/// `(tenant, kind, version)` rows of `models`, read.
pub(crate) fn model_versions(
    rows: Vec<(Uuid, String, i64)>,
) -> Result<Vec<(TenantId, ModelKind, i64)>, StoreError> {
    rows.into_iter()
        .map(|(tenant, kind, version)| {
            let kind = ModelKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown model kind {kind}")))?;
            Ok((TenantId::from_uuid(tenant), kind, version))
        })
        .collect()
}
