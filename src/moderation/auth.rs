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
    #[error("unknown or revoked API key")]
    UnknownKey,
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
        if !principal.can(permission) {
            return Err(AuthError::Forbidden {
                role: principal.role,
                action: describe(permission),
            });
        }
        Ok(principal)
    }
}

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
