//! Spam models: the per-tenant model the submit path scores with, and the use
//! cases that teach it (moderator decisions, `MarkSpam`/`MarkHam`,
//! `moderato train`) or measure it (`moderato eval`).
//!
//! **Hot path without locks**, as for rules: models live in an `ArcSwap` map
//! and a submission clones one `Arc`. A tenant that never learned anything
//! shares the seed model; one that did holds its own copy (1 MiB).
//!
//! **Every replica scores with the same model:** the database holds each
//! tenant's offsets from the seed model and a version. The replica that
//! learns applies the change before answering; the others poll the versions
//! twice a second and load only the weights written since their version.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::{Moderation, now};
use crate::domain::{Actor, Comment, CommentBody, CommentId, Principal, TenantId, TenantSettings};
use crate::pipeline::spam::{self, AuthorHistory, Features, Model, model};
use crate::pipeline::{CompiledRules, Pipeline, Verdict};
use crate::storage::{LabelSource, LearnOutcome, SpamLesson, Store, StoreError};

/// How often a replica compares its models' versions with the database's.
pub const SPAM_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// A tenant's model at one version.
pub struct TenantModel {
    /// 0 while the tenant has learned nothing (the seed model).
    pub version: i64,
    pub model: Arc<Model>,
    pub spam_examples: i64,
    pub ham_examples: i64,
}

#[derive(Default)]
pub(crate) struct SpamRegistry {
    tenants: ArcSwap<HashMap<TenantId, Arc<TenantModel>>>,
}

impl SpamRegistry {
    fn get(&self, tenant: TenantId) -> Option<Arc<TenantModel>> {
        self.tenants.load().get(&tenant).cloned()
    }

    /// Installs `model` unless a newer version is already installed.
    fn install(&self, tenant: TenantId, model: Arc<TenantModel>) {
        self.tenants.rcu(|current| {
            let mut next = HashMap::clone(current);
            if current
                .get(&tenant)
                .is_none_or(|installed| installed.version <= model.version)
            {
                next.insert(tenant, model.clone());
            }
            next
        });
    }

    fn versions(&self) -> Vec<(TenantId, i64)> {
        self.tenants
            .load()
            .iter()
            .map(|(t, m)| (*t, m.version))
            .collect()
    }
}

/// Brings `current` up to what the store holds, reading only what changed.
async fn load(
    store: &dyn Store,
    tenant: TenantId,
    current: Option<&TenantModel>,
) -> Result<TenantModel, StoreError> {
    let after = current.map_or(0, |c| c.version);
    let stored = store.load_spam_model(tenant, after).await?;
    if stored.version == 0 {
        return Ok(TenantModel {
            version: 0,
            model: spam::seed_model().clone(),
            spam_examples: 0,
            ham_examples: 0,
        });
    }
    let seed = spam::seed_model();
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
        spam_examples: stored.spam_examples,
        ham_examples: stored.ham_examples,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum MarkError {
    #[error("comment not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `MarkSpam`/`MarkHam` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marked {
    /// `false` when the comment already carried this label.
    pub learned: bool,
    /// The tenant's model version after the call.
    pub model_version: i64,
}

impl Moderation {
    /// The tenant's spam model, loading it on first use.
    pub(crate) async fn spam_model_for(
        &self,
        tenant: TenantId,
    ) -> Result<Arc<TenantModel>, StoreError> {
        match self.inner.spam.get(tenant) {
            Some(model) => Ok(model),
            None => self.reload_spam(tenant).await,
        }
    }

    async fn reload_spam(&self, tenant: TenantId) -> Result<Arc<TenantModel>, StoreError> {
        let current = self.inner.spam.get(tenant);
        let model = Arc::new(load(self.store().as_ref(), tenant, current.as_deref()).await?);
        self.inner.spam.install(tenant, model.clone());
        tracing::debug!(%tenant, version = model.version, "spam model loaded");
        Ok(model)
    }

    /// Keeps spam models in step with the database until the task is dropped.
    pub async fn watch_spam_changes(self) {
        let mut poll = tokio::time::interval(SPAM_POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            poll.tick().await;
            let cached = self.inner.spam.versions();
            if cached.is_empty() {
                continue;
            }
            match self.store().spam_versions().await {
                Ok(stored) => {
                    let stored: HashMap<_, _> = stored.into_iter().collect();
                    for (tenant, version) in cached {
                        if stored.get(&tenant).copied().unwrap_or(0) != version
                            && let Err(err) = self.reload_spam(tenant).await
                        {
                            tracing::warn!(%tenant, error = %err, "could not reload the spam model");
                        }
                    }
                }
                Err(err) => tracing::debug!(error = %err, "spam model version poll failed"),
            }
        }
    }

    /// Teaches the tenant's model that `comment` is (or is not) spam, once per
    /// comment and label, and applies the change on this replica at once.
    pub(crate) async fn learn_comment(
        &self,
        tenant: TenantId,
        comment: &Comment,
        is_spam: bool,
        source: LabelSource,
        actor: &Actor,
    ) -> Result<Marked, StoreError> {
        let current = self.spam_model_for(tenant).await?;
        let text = comment.original_body.as_deref().unwrap_or(&comment.body);
        let update = current
            .model
            .step(&Features::extract(text), is_spam, model::ONLINE_RATE);
        let outcome = self
            .store()
            .learn_spam(
                tenant,
                &SpamLesson {
                    source,
                    comment: Some((comment.comment_id, is_spam)),
                    spam_examples: i64::from(is_spam),
                    ham_examples: i64::from(!is_spam),
                    update: &update,
                    actor,
                    now: now(),
                },
            )
            .await?;
        crate::telemetry::record_label(source, is_spam, outcome != LearnOutcome::AlreadyLearned);
        let model_version = match outcome {
            LearnOutcome::Learned { .. } => self.reload_spam(tenant).await?.version,
            LearnOutcome::AlreadyLearned => current.version,
        };
        Ok(Marked {
            learned: outcome != LearnOutcome::AlreadyLearned,
            model_version,
        })
    }

    /// `MarkSpam` / `MarkHam`: teaches the model, changes nothing else.
    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id, %id))]
    pub async fn mark_comment(
        &self,
        principal: &Principal,
        id: CommentId,
        is_spam: bool,
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
                is_spam,
                LabelSource::Mark,
                &principal.actor(),
            )
            .await?)
    }
}

/// What `moderato train` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainReport {
    pub spam_examples: i64,
    pub ham_examples: i64,
    pub features_changed: usize,
    pub version: i64,
}

/// Trains the tenant's current model on labelled texts and stores the
/// result as one update (`moderato train`; successive imports accumulate).
pub async fn train(
    store: &dyn Store,
    tenant: TenantId,
    examples: Vec<(String, bool)>,
) -> Result<TrainReport, StoreError> {
    let current = load(store, tenant, None).await?;
    let spam_examples = examples.iter().filter(|e| e.1).count() as i64;
    let ham_examples = examples.len() as i64 - spam_examples;
    let update = tokio::task::spawn_blocking(move || {
        let features: Vec<(Features, bool)> = examples
            .iter()
            .map(|(text, label)| (Features::extract(text), *label))
            .collect();
        let mut model = Model::clone(&current.model);
        model.fit(&features)
    })
    .await
    .map_err(|e| StoreError::Unexpected(anyhow::anyhow!("training failed: {e}")))?;
    let outcome = store
        .learn_spam(
            tenant,
            &SpamLesson {
                source: LabelSource::Import,
                comment: None,
                spam_examples,
                ham_examples,
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
        spam_examples,
        ham_examples,
        features_changed: update.weights.len(),
        version,
    })
}

/// What `SubmitComment` would decide for each text with `settings` and the
/// tenant's current model (and rules, unless `with_rules` is false), without
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
    let model = load(store, tenant, None).await?;
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
                    crate::domain::StandingTerm::default(),
                )
            })
            .collect()
    })
    .await
    .map_err(|e| StoreError::Unexpected(anyhow::anyhow!("evaluation failed: {e}")))?;
    Ok(verdicts)
}
