//! A tenant's filter rules with their revisions: every change bumps the
//! tenant's rules version, which replicas watch to reload their rules.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::{Actor, Rule, RuleChange, RuleRejection, TenantId};

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

/// The channel on which Postgres announces rule changes (payload: tenant id).
pub const RULES_CHANNEL: &str = "moderato_rules";
