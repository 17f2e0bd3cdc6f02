//! Tenants, their settings and API keys: what a caller is and may do.
//! Settings changes are audited with a before/after detail (see [`super::events`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::{
    Actor, ApiKeyInfo, ClassifierKind, ExternalClassifier, FieldViolation, KeyHash, KeyId, KeySpec,
    Principal, TenantId, TenantName, TenantSettings, TenantSettingsPatch, ToxicityCategory,
    ToxicityThresholds,
};

#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Creates the tenant unless it exists. `true` when this call created it.
    async fn ensure_tenant(
        &self,
        name: &TenantName,
        now: DateTime<Utc>,
    ) -> Result<(TenantId, bool), StoreError>;
    async fn find_tenant(&self, name: &TenantName) -> Result<Option<TenantId>, StoreError>;
    async fn count_tenants(&self) -> Result<i64, StoreError>;
    async fn tenant_settings(&self, tenant: TenantId)
    -> Result<Option<TenantSettings>, StoreError>;
    /// Applies `patch` atomically; the inner error names the offending field.
    async fn update_tenant_settings(
        &self,
        tenant: TenantId,
        patch: &TenantSettingsPatch,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Result<TenantSettings, FieldViolation>, StoreError>;
    async fn create_api_key(
        &self,
        tenant: TenantId,
        key: &NewApiKey,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyInfo, StoreError>;
    /// The active (unrevoked) key with this hash.
    async fn authenticate(&self, hash: &KeyHash) -> Result<Option<Principal>, StoreError>;
    async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKeyInfo>, StoreError>;
    /// `None` when the tenant has no such key. Revoking twice keeps the first time.
    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        key_id: KeyId,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<ApiKeyInfo>, StoreError>;
    /// Records a use of the key at `now`, unless one was recorded in the
    /// minute before (so a busy key costs one write a minute, whichever
    /// replica serves it).
    async fn touch_api_key(
        &self,
        tenant: TenantId,
        key_id: KeyId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Keys revoked at or after `since` (every replica polls this to drop
    /// them from its cache).
    async fn keys_revoked_since(&self, since: DateTime<Utc>) -> Result<Vec<KeyId>, StoreError>;
}

/// A new API key's stored form.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub key_id: KeyId,
    pub spec: KeySpec,
    pub hash: KeyHash,
    pub key_prefix: String,
}

/// A tenant's toxicity thresholds as stored: `None` while they are the
/// defaults, else every category's `[review, reject]` by name.
pub(crate) fn toxicity_thresholds_to_json(t: &ToxicityThresholds) -> Option<serde_json::Value> {
    (*t != ToxicityThresholds::default()).then(|| {
        ToxicityCategory::ALL
            .into_iter()
            .map(|c| {
                let (review, reject) = t.get(c);
                (c.name().to_owned(), serde_json::json!([review, reject]))
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    })
}

/// The thresholds a stored value holds; categories it does not name keep
/// the defaults.
pub(crate) fn toxicity_thresholds_from_json(
    value: Option<serde_json::Value>,
) -> Result<ToxicityThresholds, StoreError> {
    let mut thresholds = ToxicityThresholds::default();
    let Some(value) = value else {
        return Ok(thresholds);
    };
    let corrupt = |what: String| StoreError::Corrupt(format!("toxicity_thresholds: {what}"));
    let object = value
        .as_object()
        .ok_or_else(|| corrupt("not an object".into()))?;
    for (name, pair) in object {
        let category =
            ToxicityCategory::parse(name).ok_or_else(|| corrupt(format!("category {name:?}")))?;
        let pair: Vec<f64> = pair
            .as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
            .unwrap_or_default();
        let [review, reject] = pair[..] else {
            return Err(corrupt(format!("{name}: not [review, reject]")));
        };
        if !(0.0..=1.0).contains(&review) || !(review..=1.0).contains(&reject) {
            return Err(corrupt(format!("{name}: [{review}, {reject}]")));
        }
        thresholds.review[category.index()] = review;
        thresholds.reject[category.index()] = reject;
    }
    Ok(thresholds)
}

/// A tenant's external classifier as stored (JSON text; the key stays
/// sealed).
pub(crate) fn classifier_to_json(c: Option<&ExternalClassifier>) -> Option<String> {
    c.map(|c| {
        serde_json::json!({
            "kind": c.kind.as_str(),
            "url": c.url,
            "timeout_ms": c.timeout_ms,
            "api_key": c.sealed_api_key,
        })
        .to_string()
    })
}

pub(crate) fn classifier_from_json(
    value: Option<String>,
) -> Result<Option<ExternalClassifier>, StoreError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let corrupt = |what: &str| StoreError::Corrupt(format!("external_classifier: {what}"));
    let json: serde_json::Value = serde_json::from_str(&value).map_err(|_| corrupt("not JSON"))?;
    let text = |key: &str| {
        json.get(key)
            .and_then(|v| v.as_str())
            .ok_or_else(|| corrupt(key))
    };
    Ok(Some(ExternalClassifier {
        kind: ClassifierKind::from_db(text("kind")?).ok_or_else(|| corrupt("kind"))?,
        url: text("url")?.to_owned(),
        timeout_ms: json
            .get("timeout_ms")
            .and_then(|v| v.as_u64())
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| corrupt("timeout_ms"))?,
        sealed_api_key: text("api_key")?.to_owned(),
    }))
}
