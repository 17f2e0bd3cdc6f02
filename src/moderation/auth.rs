use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::Moderation;
use crate::domain::{KeyHash, Permission, Principal};
use crate::storage::StoreError;

/// What the caller presented, taken from the `authorization` metadata.
pub enum Credentials {
    Missing,
    Malformed,
    Bearer(KeyHash),
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing `authorization: Bearer <key>` metadata")]
    Missing,
    #[error("malformed authorization metadata; expected `Bearer <key>`")]
    Malformed,
    #[error("unknown, revoked or expired API key")]
    UnknownKey,
    #[error(
        "this API key is over its rate of {rate} requests per second; retry after the RetryInfo delay"
    )]
    RateLimited { rate: u32, retry_after: Duration },
    #[error("this API key's role ({role}) may not {action}")]
    Forbidden {
        role: crate::domain::Role,
        action: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Moderation {
    /// Resolves credentials to a principal allowed to do `permission`.
    pub async fn authorize(
        &self,
        credentials: Credentials,
        permission: Permission,
    ) -> Result<Principal, AuthError> {
        let hash = match credentials {
            Credentials::Missing => return Err(AuthError::Missing),
            Credentials::Malformed => return Err(AuthError::Malformed),
            Credentials::Bearer(hash) => hash,
        };
        let principal = match self.inner.keys.get(&hash) {
            Some(principal) => principal,
            None => {
                let principal = self
                    .inner
                    .store
                    .authenticate(&hash)
                    .await?
                    .ok_or(AuthError::UnknownKey)?;
                self.inner.keys.insert(hash, principal);
                principal
            }
        };
        let now = chrono::Utc::now();
        if principal.expired_at(now) {
            return Err(AuthError::UnknownKey);
        }
        let rate = principal
            .requests_per_second
            .unwrap_or(self.inner.limits.key_requests_per_second);
        if rate > 0 {
            let (per_second, burst) =
                super::limits::share(f64::from(rate), self.inner.replicas.get());
            self.inner
                .key_buckets
                .take(&principal.key_id, per_second, burst, Instant::now())
                .map_err(|retry_after| AuthError::RateLimited { rate, retry_after })?;
        }
        self.record_use(&principal, now);
        if !principal.can(permission) {
            return Err(AuthError::Forbidden {
                role: principal.role,
                action: describe(permission),
            });
        }
        Ok(principal)
    }
}

impl Moderation {
    /// Writes the key's last use, at most once a `KEY_USE_INTERVAL` per key
    /// on this replica, off the call's path.
    fn record_use(&self, principal: &Principal, now: chrono::DateTime<chrono::Utc>) {
        if self.inner.key_uses.get(&principal.key_id).is_some() {
            return;
        }
        self.inner.key_uses.insert(principal.key_id, ());
        let (store, tenant, key) = (self.store().clone(), principal.tenant_id, principal.key_id);
        tokio::spawn(async move {
            if let Err(err) = store.touch_api_key(tenant, key, now).await {
                tracing::debug!(error = %err, "recording a key's last use failed");
            }
        });
    }

    /// Drops keys revoked through any replica (or the CLI) from this
    /// replica's cache, polling every `REVOCATION_POLL`, so a revocation
    /// applies everywhere within a second. Runs until aborted.
    pub async fn watch_key_revocations(self) {
        let mut tick = tokio::time::interval(REVOCATION_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // A window, not a watermark: revocations written by a replica
            // whose clock lags ours still fall inside it.
            let since = chrono::Utc::now() - REVOCATION_WINDOW;
            match self.store().keys_revoked_since(since).await {
                Ok(revoked) if !revoked.is_empty() => {
                    self.inner
                        .keys
                        .remove_where(|_, p| revoked.contains(&p.key_id));
                }
                Ok(_) => {}
                Err(err) => tracing::debug!(error = %err, "polling for revoked keys failed"),
            }
        }
    }

    /// Announces this replica every `HEARTBEAT` and keeps the count of live
    /// replicas that the in-memory rates are split by. Runs until aborted;
    /// call `leave` when stopping.
    pub async fn watch_replicas(self) {
        let mut tick = tokio::time::interval(super::limits::HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = chrono::Utc::now();
            let live_since = now
                - chrono::Duration::from_std(super::limits::LIVE_FOR).expect("a short duration");
            match self
                .store()
                .replica_heartbeat(self.inner.replica_id, now, live_since)
                .await
            {
                Ok(live) => self.inner.replicas.set(live),
                Err(err) => tracing::debug!(error = %err, "replica heartbeat failed"),
            }
        }
    }

    /// Stops counting this replica (at shutdown).
    pub async fn leave(&self) {
        if let Err(err) = self.store().replica_leave(self.inner.replica_id).await {
            tracing::debug!(error = %err, "leaving the replica list failed");
        }
    }
}

/// How often every replica looks for revoked keys, and how far back.
pub const REVOCATION_POLL: Duration = Duration::from_millis(250);
const REVOCATION_WINDOW: chrono::Duration = chrono::Duration::seconds(30);

fn describe(permission: Permission) -> &'static str {
    match permission {
        Permission::SubmitComments => "submit comments",
        Permission::ReadComments => "read comments",
        Permission::ReadAnyStatus => "list comments that are not approved",
        Permission::Review => "work the review queue",
        Permission::LabelComments => "teach the spam and toxicity models",
        Permission::ReadAudit => "read the audit trail",
        Permission::ReportComments => "report comments",
        Permission::Administer => "administer the tenant",
    }
}

/// A small map whose entries expire. Bounded: when full it is emptied, which
/// costs a few extra lookups and never serves a stale entry.
pub(crate) struct TtlCache<K, V> {
    ttl: Duration,
    entries: RwLock<HashMap<K, (V, Instant)>>,
}

const MAX_ENTRIES: usize = 10_000;

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub(crate) fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(value, _)| value.clone())
    }

    pub(crate) fn insert(&self, key: K, value: V) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now()));
    }

    pub(crate) fn remove_where(&self, mut doomed: impl FnMut(&K, &V) -> bool) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.retain(|k, (v, _)| !doomed(k, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let cache = TtlCache::new(Duration::from_millis(0));
        cache.insert(1, "a");
        assert_eq!(cache.get(&1), None);
        let cache = TtlCache::new(Duration::from_secs(60));
        cache.insert(1, "a");
        assert_eq!(cache.get(&1), Some("a"));
        cache.remove_where(|_, v| *v == "a");
        assert_eq!(cache.get(&1), None);
    }
}
