//! A tenant's filter rules with their revisions: every change bumps the
//! tenant's rules version, which replicas watch to reload their rules.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::{Actor, Rule, TenantId};

#[async_trait]
pub trait RuleStore: Send + Sync {
    /// The tenant's rules, in id order, with the tenant's rules version.
    async fn load_rules(&self, tenant: TenantId) -> Result<(i64, Vec<RuleRecord>), StoreError>;
    /// Every tenant's rules version, for replicas polling for changes.
    async fn rules_versions(&self) -> Result<Vec<(TenantId, i64)>, StoreError>;
    /// Applies `change`; returns the rules it wrote (none for a deletion).
    async fn change_rules(
        &self,
        tenant: TenantId,
        change: &RuleChange,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Result<Vec<RuleRecord>, RuleRejection>, StoreError>;
    /// Sends the tenant of every rule change announced by other replicas, for
    /// as long as the store lives. Backends without notifications never send
    /// (replicas then rely on polling [`RuleStore::rules_versions`]).
    async fn listen_rule_changes(&self, changes: tokio::sync::mpsc::UnboundedSender<TenantId>);
}

/// A stored rule with its revision (1 on creation, +1 on every update).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRecord {
    pub rule: Rule,
    pub revision: i64,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

/// A change to a tenant's rules, applied atomically with its history rows,
/// its audit rows and a bump of the tenant's rules version.
#[derive(Debug, Clone)]
pub enum RuleChange {
    Create(Rule),
    /// `expected_revision`: refuse the update unless the rule is at it.
    Update {
        rule: Rule,
        expected_revision: Option<i64>,
    },
    Delete {
        rule_id: String,
    },
    /// Upserts every rule; with `replace`, also deletes the rules not listed.
    Import {
        rules: Vec<Rule>,
        replace: bool,
    },
}

/// Why a rule change was not applied (nothing was).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleRejection {
    AlreadyExists(String),
    NotFound(String),
    RevisionMismatch { rule_id: String, current: i64 },
}

/// The channel on which Postgres announces rule changes (payload: tenant id).
pub const RULES_CHANNEL: &str = "moderato_rules";

/// One write a rule change makes.
pub(crate) enum RuleStep<'a> {
    Put {
        rule: &'a Rule,
        revision: i64,
        /// `None` for a new rule.
        create_time: Option<DateTime<Utc>>,
    },
    Delete {
        rule_id: String,
        revision: i64,
    },
}

impl RuleStep<'_> {
    /// The `rule_revisions` row: id, revision, definition (`None` = deleted).
    pub(crate) fn history(&self) -> (&str, i64, Option<&Rule>) {
        match self {
            RuleStep::Put { rule, revision, .. } => (&rule.id, *revision, Some(rule)),
            RuleStep::Delete { rule_id, revision } => (rule_id, *revision, None),
        }
    }
}

/// Decides the writes of `change` given the stored `(revision, create_time)`
/// of each rule id, or why it cannot apply. Shared by both backends.
pub(crate) fn plan_rule_change<'a>(
    change: &'a RuleChange,
    existing: &std::collections::HashMap<String, (i64, DateTime<Utc>)>,
) -> Result<Vec<RuleStep<'a>>, RuleRejection> {
    match change {
        RuleChange::Create(rule) => {
            if existing.contains_key(&rule.id) {
                return Err(RuleRejection::AlreadyExists(rule.id.clone()));
            }
            Ok(vec![RuleStep::Put {
                rule,
                revision: 1,
                create_time: None,
            }])
        }
        RuleChange::Update {
            rule,
            expected_revision,
        } => {
            let Some(&(current, created)) = existing.get(&rule.id) else {
                return Err(RuleRejection::NotFound(rule.id.clone()));
            };
            if expected_revision.is_some_and(|expected| expected != current) {
                return Err(RuleRejection::RevisionMismatch {
                    rule_id: rule.id.clone(),
                    current,
                });
            }
            Ok(vec![RuleStep::Put {
                rule,
                revision: current + 1,
                create_time: Some(created),
            }])
        }
        RuleChange::Delete { rule_id } => {
            let Some(&(current, _)) = existing.get(rule_id) else {
                return Err(RuleRejection::NotFound(rule_id.clone()));
            };
            Ok(vec![RuleStep::Delete {
                rule_id: rule_id.clone(),
                revision: current + 1,
            }])
        }
        RuleChange::Import { rules, replace } => {
            let mut steps: Vec<RuleStep<'a>> = rules
                .iter()
                .map(|rule| match existing.get(&rule.id) {
                    Some(&(current, created)) => RuleStep::Put {
                        rule,
                        revision: current + 1,
                        create_time: Some(created),
                    },
                    None => RuleStep::Put {
                        rule,
                        revision: 1,
                        create_time: None,
                    },
                })
                .collect();
            if *replace {
                let listed: std::collections::HashSet<&str> =
                    rules.iter().map(|r| r.id.as_str()).collect();
                let mut doomed: Vec<_> = existing
                    .iter()
                    .filter(|(id, _)| !listed.contains(id.as_str()))
                    .map(|(id, (current, _))| RuleStep::Delete {
                        rule_id: id.clone(),
                        revision: current + 1,
                    })
                    .collect();
                doomed.sort_by(|a, b| a.history().0.cmp(b.history().0));
                steps.extend(doomed);
            }
            Ok(steps)
        }
    }
}
