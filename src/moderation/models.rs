//! Per-tenant models (spam and toxicity): the models the submit path scores
//! with, and the use cases that teach them (moderator decisions,
//! `MarkSpam`/`MarkHam`/`MarkToxic`/`MarkNotToxic`, `moderato train`) or
//! measure them (`moderato eval`).
//!
//! **Hot path without locks**, as for rules: models live in an `ArcSwap` map
//! and a submission clones one `Arc` per model. A tenant that never learned
//! anything shares the seed model; one that did holds its own copy (1 MiB).
//!
//! **Every replica scores with the same model:** the database holds each
//! tenant's offsets from the seed model and a version per kind. The replica
//! that learns applies the change before answering; the others poll the
//! versions twice a second and load only the weights written since theirs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::{Moderation, now};
use crate::domain::{
    Actor, Comment, CommentBody, CommentId, Label, ModelKind, Principal, TenantId, TenantSettings,
};
use crate::pipeline::spam::{self, AuthorHistory, Features, Model, model};
use crate::pipeline::{CompiledRules, Pipeline, Verdict, toxicity};
use crate::storage::{LabelSource, LearnOutcome, Lesson, Store, StoreError};

/// How often a replica compares its models' versions with the database's.
pub const MODEL_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The model every tenant of `kind` starts from.
fn seed(kind: ModelKind) -> &'static Arc<Model> {
    match kind {
        ModelKind::Spam => spam::seed_model(),
        ModelKind::Toxicity => toxicity::model::seed_model(),
    }
}

/// What the model of `kind` reads of a text: the spam score the plain
/// features, the toxicity head the same with group names masked and the
/// lexicons' cues added.
fn features(kind: ModelKind, text: &str) -> Features {
    match kind {
        ModelKind::Spam => Features::extract(text),
        ModelKind::Toxicity => toxicity::training_features(text),
    }
}

/// A tenant's model at one version.
pub struct TenantModel {
    /// 0 while the tenant has learned nothing (the seed model).
    pub version: i64,
    pub model: Arc<Model>,
    /// Spam (or toxic) examples learned.
    pub positive_examples: i64,
    /// Ham (or clean) examples learned.
    pub negative_examples: i64,
}

#[derive(Default)]
pub(crate) struct ModelRegistry {
    tenants: ArcSwap<HashMap<(TenantId, ModelKind), Arc<TenantModel>>>,
}

impl ModelRegistry {
    fn get(&self, tenant: TenantId, kind: ModelKind) -> Option<Arc<TenantModel>> {
        self.tenants.load().get(&(tenant, kind)).cloned()
    }

    /// Installs `model` unless a newer version is already installed.
    fn install(&self, tenant: TenantId, kind: ModelKind, model: Arc<TenantModel>) {
        self.tenants.rcu(|current| {
            let mut next = HashMap::clone(current);
            if current
                .get(&(tenant, kind))
                .is_none_or(|installed| installed.version <= model.version)
            {
                next.insert((tenant, kind), model.clone());
            }
            next
        });
    }

    fn versions(&self) -> Vec<((TenantId, ModelKind), i64)> {
        self.tenants
            .load()
            .iter()
            .map(|(key, m)| (*key, m.version))
            .collect()
    }
}

/// Brings `current` up to what the store holds, reading only what changed.
async fn load(
    store: &dyn Store,
    tenant: TenantId,
    kind: ModelKind,
    current: Option<&TenantModel>,
) -> Result<TenantModel, StoreError> {
    let after = current.map_or(0, |c| c.version);
    let stored = store.load_model(tenant, kind, after).await?;
    let seed = seed(kind);
    if stored.version == 0 {
        return Ok(TenantModel {
            version: 0,
            model: seed.clone(),
            positive_examples: 0,
            negative_examples: 0,
        });
    }
    let mut model = match current {
        Some(c) if c.version > 0 => Model::clone(&c.model),
        _ => Model::clone(seed),
    };
    for (feature, offset) in stored.weights {
        if (feature as usize) < spam::features::DIMENSIONS {
            model.set(feature, seed.weight(feature) + offset);
        }
    }
    model.set_bias(seed.bias() + stored.bias);
    Ok(TenantModel {
        version: stored.version,
        model: Arc::new(model),
        positive_examples: stored.positive_examples,
        negative_examples: stored.negative_examples,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum MarkError {
    #[error("comment not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a `Mark*` call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marked {
    /// `false` when the comment already carried this label.
    pub learned: bool,
    /// The tenant's model version after the call.
    pub model_version: i64,
}

impl Moderation {
    /// The tenant's model of `kind`, loading it on first use.
    pub(crate) async fn model_for(
        &self,
        tenant: TenantId,
        kind: ModelKind,
    ) -> Result<Arc<TenantModel>, StoreError> {
        match self.inner.models.get(tenant, kind) {
            Some(model) => Ok(model),
            None => self.reload_model(tenant, kind).await,
        }
    }

    async fn reload_model(
        &self,
        tenant: TenantId,
        kind: ModelKind,
    ) -> Result<Arc<TenantModel>, StoreError> {
        let current = self.inner.models.get(tenant, kind);
        let model = Arc::new(load(self.store().as_ref(), tenant, kind, current.as_deref()).await?);
        self.inner.models.install(tenant, kind, model.clone());
        tracing::debug!(%tenant, kind = kind.as_str(), version = model.version, "model loaded");
        Ok(model)
    }

    /// Keeps models in step with the database until the task is dropped.
    pub async fn watch_model_changes(self) {
        let mut poll = tokio::time::interval(MODEL_POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            poll.tick().await;
            let cached = self.inner.models.versions();
            if cached.is_empty() {
                continue;
            }
            match self.store().model_versions().await {
                Ok(stored) => {
                    let stored: HashMap<_, _> =
                        stored.into_iter().map(|(t, k, v)| ((t, k), v)).collect();
                    for ((tenant, kind), version) in cached {
                        if stored.get(&(tenant, kind)).copied().unwrap_or(0) != version
                            && let Err(err) = self.reload_model(tenant, kind).await
                        {
                            tracing::warn!(%tenant, kind = kind.as_str(), error = %err, "could not reload a model");
                        }
                    }
                }
                Err(err) => tracing::debug!(error = %err, "model version poll failed"),
            }
        }
    }

    /// Teaches the tenant's model of the label's kind what `comment` is,
    /// once per comment and label, and applies the change on this replica
    /// at once.
    pub(crate) async fn learn_comment(
        &self,
        tenant: TenantId,
        comment: &Comment,
        label: Label,
        source: LabelSource,
        actor: &Actor,
    ) -> Result<Marked, StoreError> {
        let kind = label.kind();
        let current = self.model_for(tenant, kind).await?;
        let text = comment.original_body.as_deref().unwrap_or(&comment.body);
        let positive = label.positive();
        let features = features(kind, text);
        let update = match kind {
            ModelKind::Spam => current.model.step(&features, positive, model::ONLINE_RATE),
            ModelKind::Toxicity => current.model.step_with_bias_rate(
                &features,
                positive,
                model::ONLINE_RATE,
                toxicity::model::ONLINE_BIAS_RATE,
            ),
        };
        let outcome = self
            .store()
            .learn(
                tenant,
                &Lesson {
                    kind,
                    source,
                    comment: Some((comment.comment_id, label)),
                    positive_examples: i64::from(positive),
                    negative_examples: i64::from(!positive),
                    update: &update,
                    actor,
                    now: now(),
                },
            )
            .await?;
        crate::telemetry::record_label(label, source, outcome != LearnOutcome::AlreadyLearned);
        let model_version = match outcome {
            LearnOutcome::Learned { .. } => self.reload_model(tenant, kind).await?.version,
            LearnOutcome::AlreadyLearned => current.version,
        };
        Ok(Marked {
            learned: outcome != LearnOutcome::AlreadyLearned,
            model_version,
        })
    }

    /// `MarkSpam` / `MarkHam` / `MarkToxic` / `MarkNotToxic`: teaches the
    /// model, changes nothing else.
    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id, %id, label = label.as_str()))]
    pub async fn mark_comment(
        &self,
        principal: &Principal,
        id: CommentId,
        label: Label,
    ) -> Result<Marked, MarkError> {
        let comment = self
            .store()
            .get_comment(principal.tenant_id, id)
            .await?
            .ok_or(MarkError::NotFound)?;
        Ok(self
            .learn_comment(
                principal.tenant_id,
                &comment,
                label,
                LabelSource::Mark,
                &principal.actor(),
            )
            .await?)
    }
}

/// What `moderato train` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainReport {
    pub positive_examples: i64,
    pub negative_examples: i64,
    pub features_changed: usize,
    pub version: i64,
}

/// Trains the tenant's current model of `kind` on labelled texts (`true`:
/// spam, or toxic) and stores the result as one update (`moderato train`;
/// successive imports accumulate).
pub async fn train(
    store: &dyn Store,
    tenant: TenantId,
    kind: ModelKind,
    examples: Vec<(String, bool)>,
) -> Result<TrainReport, StoreError> {
    let current = load(store, tenant, kind, None).await?;
    let positive_examples = examples.iter().filter(|e| e.1).count() as i64;
    let negative_examples = examples.len() as i64 - positive_examples;
    let update = tokio::task::spawn_blocking(move || {
        let features: Vec<(Features, bool)> = examples
            .iter()
            .map(|(text, label)| (features(kind, text), *label))
            .collect();
        let mut model = Model::clone(&current.model);
        model.fit(&features)
    })
    .await
    .map_err(|e| StoreError::Unexpected(anyhow::anyhow!("training failed: {e}")))?;
    let outcome = store
        .learn(
            tenant,
            &Lesson {
                kind,
                source: LabelSource::Import,
                comment: None,
                positive_examples,
                negative_examples,
                update: &update,
                actor: &Actor::operator(),
                now: now(),
            },
        )
        .await?;
    let LearnOutcome::Learned { version } = outcome else {
        return Err(StoreError::Corrupt(
            "an import was refused as already learned".into(),
        ));
    };
    Ok(TrainReport {
        positive_examples,
        negative_examples,
        features_changed: update.weights.len(),
        version,
    })
}

/// What `SubmitComment` would decide for each text with `settings` and the
/// tenant's current models (and rules, unless `with_rules` is false), without
/// author history (a labelled file has none) and without storing anything
/// (`moderato eval`).
pub async fn evaluate(
    store: &dyn Store,
    tenant: TenantId,
    settings: &TenantSettings,
    with_rules: bool,
    texts: Vec<CommentBody>,
) -> Result<Vec<Verdict>, StoreError> {
    let settings = settings.clone();
    let rules = if with_rules {
        let (_, rules) = store.load_rules(tenant).await?;
        super::rules::compile_stored(tenant, rules.into_iter().map(|r| r.rule).collect()).await
    } else {
        CompiledRules::empty()
    };
    let model = load(store, tenant, ModelKind::Spam, None).await?;
    let toxicity = load(store, tenant, ModelKind::Toxicity, None).await?;
    let verdicts = tokio::task::spawn_blocking(move || {
        let pipeline = Pipeline::default();
        let history = AuthorHistory::unknown();
        let at = now();
        texts
            .into_iter()
            .map(|body| {
                let comment = super::rules::probe_comment(body);
                let features = Features::extract(comment.body.as_str());
                pipeline.evaluate(
                    &comment,
                    &settings,
                    &rules,
                    spam::SpamInput {
                        features: &features,
                        model: &model.model,
                        history: &history,
                        now: at,
                    },
                    &toxicity.model,
                    crate::domain::StandingTerm::default(),
                )
            })
            .collect()
    })
    .await
    .map_err(|e| StoreError::Unexpected(anyhow::anyhow!("evaluation failed: {e}")))?;
    Ok(verdicts)
}
