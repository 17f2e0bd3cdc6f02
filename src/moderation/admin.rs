use super::{Moderation, now};
use crate::domain::{
    Actor, ApiKeyInfo, ApiKeySecret, FieldViolation, KeyId, KeySpec, Principal, TenantId,
    TenantName, TenantSettings, TenantSettingsPatch,
};
use crate::storage::{NewApiKey, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Invalid(FieldViolation),
    #[error("API key not found")]
    KeyNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A key just created: its metadata and, this once, the key itself.
#[derive(Debug)]
pub struct CreatedKey {
    pub info: ApiKeyInfo,
    pub secret: ApiKeySecret,
}

impl Moderation {
    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id, role = %spec.role))]
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        spec: KeySpec,
    ) -> Result<CreatedKey, AdminError> {
        Ok(create_key(
            self.store().as_ref(),
            principal.tenant_id,
            spec,
            &principal.actor(),
        )
        .await?)
    }

    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id, %key_id))]
    pub async fn revoke_api_key(
        &self,
        principal: &Principal,
        key_id: KeyId,
    ) -> Result<ApiKeyInfo, AdminError> {
        let info = self
            .store()
            .revoke_api_key(principal.tenant_id, key_id, &principal.actor(), now())
            .await?
            .ok_or(AdminError::KeyNotFound)?;
        // This replica stops honouring the key at once; others within CACHE_TTL.
        self.inner.keys.remove_where(|_, p| p.key_id == key_id);
        Ok(info)
    }

    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id))]
    pub async fn list_api_keys(
        &self,
        principal: &Principal,
    ) -> Result<Vec<ApiKeyInfo>, AdminError> {
        Ok(self.store().list_api_keys(principal.tenant_id).await?)
    }

    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id))]
    pub async fn get_tenant_settings(
        &self,
        principal: &Principal,
    ) -> Result<TenantSettings, AdminError> {
        // Read through: an admin asking wants the stored value, not a cached one.
        let settings = self
            .store()
            .tenant_settings(principal.tenant_id)
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt(format!("missing tenant {}", principal.tenant_id))
            })?;
        Ok(settings)
    }

    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id))]
    /// Applies `patch`, and `classifier` (`Some(None)` removes it; a new
    /// API key is sealed here, bound to the tenant).
    pub async fn update_tenant_settings(
        &self,
        principal: &Principal,
        mut patch: TenantSettingsPatch,
        classifier: Option<Option<crate::domain::ClassifierSpec>>,
    ) -> Result<TenantSettings, AdminError> {
        let tenant = principal.tenant_id;
        patch.external_classifier = classifier.map(|spec| {
            spec.map(|spec| crate::domain::ClassifierChange {
                kind: spec.kind,
                url: spec.url.as_str().to_owned(),
                timeout_ms: spec.timeout_ms,
                sealed_api_key: spec.api_key.map(|key| {
                    self.inner
                        .sealer
                        .seal(&key, &super::classify::key_context(tenant))
                }),
            })
        });
        let updated = self
            .store()
            .update_tenant_settings(tenant, &patch, &principal.actor(), now())
            .await?
            .map_err(AdminError::Invalid)?;
        self.inner.settings.remove_where(|t, _| *t == tenant);
        Ok(updated)
    }
}

/// Creates a key for `tenant`; shared by the API and the operator's CLI.
pub async fn create_key(
    store: &dyn crate::storage::Store,
    tenant: TenantId,
    spec: KeySpec,
    actor: &Actor,
) -> Result<CreatedKey, StoreError> {
    let secret = ApiKeySecret::generate();
    let info = store
        .create_api_key(
            tenant,
            &NewApiKey {
                key_id: KeyId::generate(),
                spec,
                hash: secret.hash(),
                key_prefix: secret.display_prefix(),
            },
            actor,
            now(),
        )
        .await?;
    Ok(CreatedKey { info, secret })
}

/// Creates the tenant if needed, then a key for it (the operator's path).
pub async fn create_tenant_key(
    store: &dyn crate::storage::Store,
    tenant: &TenantName,
    spec: KeySpec,
) -> Result<CreatedKey, StoreError> {
    let (tenant_id, _) = super::rules::create_tenant(store, tenant).await?;
    create_key(store, tenant_id, spec, &Actor::operator()).await
}
