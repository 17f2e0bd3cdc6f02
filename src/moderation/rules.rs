//! Rules: the per-tenant compiled sets the submit path reads, and the use
//! cases that change them.
//!
//! **Hot path without locks:** compiled sets live in an `ArcSwap` map; a
//! submission loads the map (an atomic pointer read) and clones one `Arc`.
//! A change compiles the new set off the async threads and swaps the map.
//! Changes reach other replicas through `RuleStore::listen_rule_changes`
//! (Postgres `LISTEN/NOTIFY`) and, as a backstop and for SQLite, by polling
//! every tenant's rules version twice a second.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::{Moderation, now};
use crate::domain::{
    Actor, ArticleId, AuthorId, CommentBody, DisplayName, FieldViolation, ModelKind, NewComment,
    Principal, Rule, RuleFile, TenantId, TenantName,
};
use crate::pipeline::rules::DEFAULT_PACK;
use crate::pipeline::{CompiledRules, Verdict};
use crate::storage::{RuleChange, RuleRecord, RuleRejection, Store, StoreError};

/// How often a replica compares its compiled versions with the database's.
pub const RULES_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// A tenant's compiled rules at one version.
pub struct TenantRules {
    pub version: i64,
    pub compiled: CompiledRules,
}

#[derive(Default)]
pub(crate) struct RuleRegistry {
    tenants: ArcSwap<HashMap<TenantId, Arc<TenantRules>>>,
}

impl RuleRegistry {
    fn get(&self, tenant: TenantId) -> Option<Arc<TenantRules>> {
        self.tenants.load().get(&tenant).cloned()
    }

    /// Installs `rules` unless a newer version is already installed.
    fn install(&self, tenant: TenantId, rules: Arc<TenantRules>) {
        self.tenants.rcu(|current| {
            let mut next = HashMap::clone(current);
            if current
                .get(&tenant)
                .is_none_or(|installed| installed.version <= rules.version)
            {
                next.insert(tenant, rules.clone());
            }
            next
        });
    }

    fn versions(&self) -> Vec<(TenantId, i64)> {
        self.tenants
            .load()
            .iter()
            .map(|(t, r)| (*t, r.version))
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error(transparent)]
    Invalid(FieldViolation),
    #[error("a rule with id {0:?} already exists")]
    AlreadyExists(String),
    #[error("no rule with id {0:?}")]
    NotFound(String),
    #[error("rule {rule_id:?} is at revision {current}, not the expected one")]
    RevisionMismatch { rule_id: String, current: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<RuleRejection> for RuleError {
    fn from(rejection: RuleRejection) -> Self {
        match rejection {
            RuleRejection::AlreadyExists(id) => RuleError::AlreadyExists(id),
            RuleRejection::NotFound(id) => RuleError::NotFound(id),
            RuleRejection::RevisionMismatch { rule_id, current } => {
                RuleError::RevisionMismatch { rule_id, current }
            }
        }
    }
}

/// Compiles on a blocking thread: large word lists take milliseconds to seconds.
async fn compile(rules: Vec<Rule>) -> Result<CompiledRules, FieldViolation> {
    tokio::task::spawn_blocking(move || CompiledRules::compile(&rules))
        .await
        .unwrap_or_else(|e| {
            Err(FieldViolation::new(
                "rules",
                format!("compilation failed: {e}"),
            ))
        })
}

/// Stored rules always compiled when they were written; if a later version
/// of moderato refuses one, the others keep working and the log says why.
pub(super) async fn compile_stored(tenant: TenantId, rules: Vec<Rule>) -> CompiledRules {
    match compile(rules.clone()).await {
        Ok(compiled) => compiled,
        Err(_) => {
            let mut usable = Vec::new();
            for rule in rules {
                match CompiledRules::compile(std::slice::from_ref(&rule)) {
                    Ok(_) => usable.push(rule),
                    Err(err) => {
                        tracing::error!(%tenant, rule = %rule.id, error = %err, "stored rule skipped")
                    }
                }
            }
            compile(usable)
                .await
                .unwrap_or_else(|_| CompiledRules::empty())
        }
    }
}

impl Moderation {
    /// The tenant's compiled rules, loading them on first use.
    pub(crate) async fn rules_for(&self, tenant: TenantId) -> Result<Arc<TenantRules>, StoreError> {
        match self.inner.rules.get(tenant) {
            Some(rules) => Ok(rules),
            None => self.reload_rules(tenant).await,
        }
    }

    async fn reload_rules(&self, tenant: TenantId) -> Result<Arc<TenantRules>, StoreError> {
        let (version, records) = self.store().load_rules(tenant).await?;
        let compiled = compile_stored(tenant, records.into_iter().map(|r| r.rule).collect()).await;
        let rules = Arc::new(TenantRules { version, compiled });
        self.inner.rules.install(tenant, rules.clone());
        tracing::debug!(%tenant, version, rules = rules.compiled.len(), "rules compiled");
        Ok(rules)
    }

    /// Keeps compiled rules in step with the database until the task is dropped.
    pub async fn watch_rule_changes(self) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let store = self.store().clone();
        let _listener = AbortOnDrop(tokio::spawn(
            async move { store.listen_rule_changes(tx).await },
        ));
        let mut poll = tokio::time::interval(RULES_POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Some(tenant) = rx.recv() => {
                    if self.inner.rules.get(tenant).is_some() {
                        self.reload_logged(tenant).await;
                    }
                }
                _ = poll.tick() => {
                    let cached = self.inner.rules.versions();
                    if cached.is_empty() {
                        continue;
                    }
                    match self.store().rules_versions().await {
                        Ok(stored) => {
                            let stored: HashMap<_, _> = stored.into_iter().collect();
                            for (tenant, version) in cached {
                                if stored.get(&tenant).is_some_and(|v| *v != version) {
                                    self.reload_logged(tenant).await;
                                }
                            }
                        }
                        Err(err) => tracing::debug!(error = %err, "rules version poll failed"),
                    }
                }
            }
        }
    }

    async fn reload_logged(&self, tenant: TenantId) {
        if let Err(err) = self.reload_rules(tenant).await {
            tracing::warn!(%tenant, error = %err, "could not reload rules; keeping the current set");
        }
    }

    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id))]
    pub async fn list_rules(
        &self,
        principal: &Principal,
    ) -> Result<(i64, Vec<RuleRecord>), RuleError> {
        Ok(self.store().load_rules(principal.tenant_id).await?)
    }

    /// Validates `change` by compiling the tenant's whole resulting set, so a
    /// rule that would not compile, alone or with the others, is refused
    /// before anything is written.
    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id))]
    pub async fn change_rules(
        &self,
        principal: &Principal,
        change: RuleChange,
    ) -> Result<Vec<RuleRecord>, RuleError> {
        let tenant = principal.tenant_id;
        let (_, current) = self.store().load_rules(tenant).await?;
        let resulting = resulting_set(current, &change);
        crate::domain::check_rule_set(&resulting).map_err(RuleError::Invalid)?;
        compile(resulting).await.map_err(RuleError::Invalid)?;
        let written = self
            .store()
            .change_rules(tenant, &change, &principal.actor(), now())
            .await??;
        // This replica applies the change before answering.
        self.reload_rules(tenant).await?;
        Ok(written)
    }

    /// What `SubmitComment` would decide for `body` now; nothing is stored.
    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id))]
    pub async fn test_rules(
        &self,
        principal: &Principal,
        body: CommentBody,
    ) -> Result<Verdict, RuleError> {
        let settings = self.settings(principal.tenant_id).await?;
        let rules = self.rules_for(principal.tenant_id).await?;
        let model = self.model_for(principal.tenant_id, ModelKind::Spam).await?;
        let toxicity = self
            .model_for(principal.tenant_id, ModelKind::Toxicity)
            .await?;
        let comment = probe_comment(body);
        let features = crate::pipeline::spam::Features::extract(comment.body.as_str());
        Ok(self.inner.pipeline.evaluate(
            &comment,
            &settings,
            &rules.compiled,
            crate::pipeline::spam::SpamInput {
                features: &features,
                model: &model.model,
                history: &crate::pipeline::spam::AuthorHistory::unknown(),
                now: now(),
            },
            &toxicity.model,
            // A text without an author: as a reader in normal standing.
            crate::domain::StandingTerm::default(),
        ))
    }
}

/// A comment with `body` and placeholder ids, for dry runs and evaluation
/// (no author history applies to it).
pub(super) fn probe_comment(body: CommentBody) -> NewComment {
    NewComment {
        article_id: ArticleId::parse("article_id", "probe".into()).expect("valid"),
        author_id: AuthorId::parse("author_id", "probe".into()).expect("valid"),
        body,
        client_comment_id: None,
        author_display_name: DisplayName::parse("author_display_name", String::new())
            .expect("valid"),
        author_ip: None,
        parent_comment_id: None,
        language: None,
    }
}

/// The rules a tenant would have after `change` (for validation only).
fn resulting_set(current: Vec<RuleRecord>, change: &RuleChange) -> Vec<Rule> {
    let mut rules: Vec<Rule> = current.into_iter().map(|r| r.rule).collect();
    match change {
        RuleChange::Create(rule) => rules.push(rule.clone()),
        RuleChange::Update { rule, .. } => {
            rules.retain(|r| r.id != rule.id);
            rules.push(rule.clone());
        }
        RuleChange::Delete { rule_id } => rules.retain(|r| &r.id != rule_id),
        RuleChange::Import {
            rules: imported,
            replace,
        } => {
            if *replace {
                rules.clear();
            } else {
                rules.retain(|r| imported.iter().all(|i| i.id != r.id));
            }
            rules.extend(imported.iter().cloned());
        }
    }
    rules
}

/// Creates a tenant unless it exists; a new tenant starts with the default
/// rule pack. `true` when this call created it.
pub async fn create_tenant(
    store: &dyn Store,
    name: &TenantName,
) -> Result<(TenantId, bool), StoreError> {
    let (tenant, created) = store.ensure_tenant(name, now()).await?;
    if created {
        let pack = RuleFile::from_toml(DEFAULT_PACK).expect("the default pack parses (tested)");
        store
            .change_rules(
                tenant,
                &RuleChange::Import {
                    rules: pack.rules,
                    replace: false,
                },
                &Actor::operator(),
                now(),
            )
            .await?
            .map_err(|r| StoreError::Corrupt(format!("seeding default rules: {r:?}")))?;
    }
    Ok((tenant, created))
}

/// Imports a rule file for the operator (`moderato rules import`).
pub async fn import_rules(
    store: &dyn Store,
    tenant: TenantId,
    file: RuleFile,
    replace: bool,
) -> Result<Vec<RuleRecord>, RuleError> {
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = file.rules.iter().find(|r| !seen.insert(r.id.as_str())) {
        return Err(RuleError::Invalid(FieldViolation::new(
            "rule.id",
            format!("{:?} appears twice", dup.id),
        )));
    }
    let (_, current) = store.load_rules(tenant).await?;
    let change = RuleChange::Import {
        rules: file.rules,
        replace,
    };
    let resulting = resulting_set(current, &change);
    crate::domain::check_rule_set(&resulting).map_err(RuleError::Invalid)?;
    compile(resulting).await.map_err(RuleError::Invalid)?;
    Ok(store
        .change_rules(tenant, &change, &Actor::operator(), now())
        .await??)
}

/// The tenant's rules as a rule file (`moderato rules export`).
pub async fn export_rules(store: &dyn Store, tenant: TenantId) -> Result<RuleFile, StoreError> {
    let (_, records) = store.load_rules(tenant).await?;
    Ok(RuleFile {
        rules: records.into_iter().map(|r| r.rule).collect(),
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
