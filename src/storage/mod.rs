//! Persistence: one trait per aggregate (tenants, comments, queue, rules,
//! models, events, authors, reports, webhooks) composed into [`Store`], two backends.
//! An aggregate's trait and record types are in `<aggregate>.rs`, its SQL in
//! `sqlite/<aggregate>.rs` and `postgres/<aggregate>.rs`.
//!
//! SQLite is the embedded default (no setup); Postgres is the production store.
//! Both implement the same traits and pass the same conformance suite
//! (`tests/api/storage.rs`). Database error codes are translated into
//! [`StoreError`] here, so nothing above this module knows which backend runs.
//!
//! **Invariants** kept by every backend:
//! - a write that returns `Ok` is committed (SQLite runs `synchronous=FULL`);
//! - every state change writes its audit row in the same transaction;
//! - every query is scoped by `tenant_id`, which leads every key and index
//!   (the one exception is the key-hash index used to find a caller's tenant);
//! - a review item is held by at most one actor at a time.

mod authors;
mod comments;
mod error;
mod events;
mod models;
mod postgres;
mod queue;
mod reasons;
mod replicas;
mod reports;
mod rules;
mod sqlite;
mod tenants;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;

pub use authors::{
    AuthorFacts, AuthorRecord, AuthorStore, Erased, Erasure, HistoryLookup, StandingChange,
};
pub(crate) use authors::{
    HistoryRow, RecentEntry, author_facts_from_rows, author_record, erased_reasons, standing_term,
};
pub use comments::{CommentCursor, CommentQuery, CommentStore, InsertOutcome, NewCommentRecord};
pub(crate) use comments::{CommentRow, CommentRows, retry_alone};
pub use error::StoreError;
pub(crate) use events::{
    AuditEvent, comment_created_event, decision_event, erased_event, exported_event, purge_event,
    reopened_event, reported_event, requeued_event, settings_change_detail, standing_event,
    status_column,
};
pub use events::{
    AuditQuery, AuditRecord, DECISIONS_CHANNEL, DecisionEvent, EventStore, NUMBERING_ROUND,
};
pub(crate) use models::model_versions;
pub use models::{LabelSource, LearnOutcome, Lesson, ModelStore, StoredModel};
pub use postgres::PostgresStore;
pub use queue::{
    Claim, DecideRejection, Decision, QueueCursor, QueueFilter, QueueOrder, QueueQuery, QueueStore,
    ReleaseRejection, Reopen, ReopenRejection,
};
pub(crate) use queue::{ReasonCodeSql, count_queue_sql, push_queue_conditions};
pub use replicas::ReplicaStore;
pub(crate) use reports::report_record;
pub use reports::{NewReport, ReportOutcome, ReportRecord, ReportStore};
pub use rules::{RULES_CHANNEL, RuleRecord, RuleStore};
pub use sqlite::SqliteStore;
pub use tenants::{NewApiKey, TenantStore};
// Rule changes are decided in the domain; storage applies them.
pub use crate::domain::{RuleChange, RuleRejection};
pub(crate) use tenants::{
    classifier_from_json, classifier_to_json, toxicity_thresholds_from_json,
    toxicity_thresholds_to_json,
};
pub use webhooks::{
    LeasedWebhook, LoggedEvent, WEBHOOK_AUDIT_ACTIONS, WebhookRecord, WebhookStore,
};
pub(crate) use webhooks::{
    delivery_retried_event, delivery_state_column, event_type_column, event_types_from_json,
    event_types_to_json, logged_events, webhook_disabled_event, webhook_event,
};

/// Connection settings shared by both backends.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    /// How long a request waits for a connection before the call fails with
    /// `UNAVAILABLE`: short, so a dead database is reported, not queued behind.
    pub acquire_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// Opens the store named by `url` (`sqlite://…` or `postgres://…`) and migrates it.
pub async fn connect(url: &str, options: &DbOptions) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(SqliteStore::connect(url, options).await?)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Arc::new(PostgresStore::connect(url, options).await?)
    } else {
        anyhow::bail!("database url must start with sqlite:// or postgres://");
    };
    store.migrate().await.context("migrating the database")?;
    Ok(store)
}

/// Every aggregate's storage, plus the lifecycle of the connection pool.
#[async_trait]
pub trait Store:
    TenantStore
    + CommentStore
    + QueueStore
    + RuleStore
    + ModelStore
    + EventStore
    + AuthorStore
    + ReportStore
    + ReplicaStore
    + WebhookStore
    + Send
    + Sync
    + 'static
{
    /// Applies pending migrations; safe when several replicas start at once.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// One round trip, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Closes the pool, waiting for connections in use to come back.
    async fn close(&self);
    /// Gathers planner statistics for the hot tables that have grown but
    /// were never analysed; returns how many it analysed. Called
    /// periodically (see the Postgres backend for why); a no-op where the
    /// planner needs none.
    async fn analyze_new_tables(&self) -> Result<usize, StoreError> {
        Ok(0)
    }
}
