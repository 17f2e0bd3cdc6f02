//! Use cases: what each RPC does, independent of gRPC.
//!
//! Each use case authenticates nothing and parses nothing (the gRPC edge did),
//! runs the pure pipeline where it applies, talks to the store, and reports
//! failures through its own error enum, which `grpc::status` maps to a status
//! code in one place.

mod admin;
mod audit;
mod auth;
mod authors;
mod batch;
mod classify;
mod comments;
mod decisions;
pub mod delivery;
mod limits;
mod models;
pub mod parse;
pub mod privacy;
mod reports;
pub mod retention;
mod review;
mod rules;
mod sequencer;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, Utc};

pub use admin::{AdminError, CreatedKey, create_key, create_tenant_key};
pub use audit::{AuditFilter, ListAuditError};
pub use auth::{AuthError, Credentials};
pub use authors::{AuthorError, AuthorView};
pub use comments::{GetCommentError, ListCommentsError, Page, SubmitError};
pub use decisions::QueueMove;
pub use models::{MarkError, Marked, TenantModel, TrainReport, evaluate, train};
pub use reports::{ReportError, Reported};
pub use review::{
    BulkOutcome, ClaimRequest, DecideError, DecideRequest, ListQueueError, MAX_BULK_DECISIONS,
    ReleaseError, ReopenError, ReviewActor,
};
pub use rules::{RuleError, TenantRules, create_tenant, export_rules, import_rules};
pub use webhooks::{PREVIOUS_SECRET_GRACE, WebhookError, WebhookWithSecret};

use crate::pipeline::Pipeline;
use crate::storage::Store;
use auth::TtlCache;

/// How long a replica trusts what it cached about a key or a tenant's settings.
/// Changes made through this replica apply at once; through another replica or
/// the CLI, within this delay.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// A key's last use is written at most this often (per replica; the
/// statement also skips the write when another replica wrote within it).
pub const KEY_USE_INTERVAL: Duration = Duration::from_secs(60);

/// Limits set by the operator for the whole server.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Requests per second of a key without a rate of its own; 0: no limit.
    pub key_requests_per_second: u32,
}

/// The moderation service: store, pipeline and caches, cheap to clone.
#[derive(Clone)]
pub struct Moderation {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    limits: Limits,
    key_buckets: limits::Buckets<crate::domain::KeyId>,
    ip_buckets: limits::Buckets<(crate::domain::TenantId, std::net::IpAddr)>,
    ip_hasher: crate::domain::IpHasher,
    sealer: crate::domain::Sealer,
    replicas: limits::ReplicaCount,
    replica_id: uuid::Uuid,
    /// When this replica last recorded each key's use.
    key_uses: TtlCache<crate::domain::KeyId, ()>,
    pipeline: Pipeline,
    keys: TtlCache<crate::domain::KeyHash, crate::domain::Principal>,
    settings: TtlCache<crate::domain::TenantId, Arc<crate::domain::TenantSettings>>,
    rules: rules::RuleRegistry,
    models: models::ModelRegistry,
    writer: batch::CommentWriter,
    history: batch::HistoryReader,
    sequencer: sequencer::Sequencer,
    classifiers: classify::Classifiers,
}

impl Moderation {
    /// Needs a Tokio runtime: it starts the batch workers.
    /// With no limits and a throwaway secret (commands that store no IP).
    pub fn new(store: Arc<dyn Store>, pipeline: Pipeline) -> Self {
        let secret = crate::domain::ServerSecret::new(&crate::domain::ServerSecret::generate())
            .expect("a generated secret is long enough");
        Self::with_options(store, pipeline, Limits::default(), &secret)
    }

    pub fn with_options(
        store: Arc<dyn Store>,
        pipeline: Pipeline,
        limits: Limits,
        secret: &crate::domain::ServerSecret,
    ) -> Self {
        let sequencer = sequencer::Sequencer::start(store.clone());
        Moderation {
            inner: Arc::new(Inner {
                limits,
                key_buckets: limits::Buckets::new(),
                ip_buckets: limits::Buckets::new(),
                ip_hasher: secret.ip_hasher(),
                sealer: secret.sealer(),
                replicas: limits::ReplicaCount::default(),
                replica_id: uuid::Uuid::new_v4(),
                key_uses: TtlCache::new(KEY_USE_INTERVAL),
                writer: batch::CommentWriter::start(store.clone(), sequencer.clone()),
                sequencer,
                history: batch::HistoryReader::start(store.clone()),
                store,
                pipeline,
                keys: TtlCache::new(CACHE_TTL),
                settings: TtlCache::new(CACHE_TTL),
                rules: rules::RuleRegistry::default(),
                models: models::ModelRegistry::default(),
                classifiers: classify::Classifiers::new(crate::webhooks::AddressPolicy::PublicOnly),
            }),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }
}

/// The current time at the precision both backends store (microseconds), so a
/// comment returned on submit is identical to the one read back later.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
