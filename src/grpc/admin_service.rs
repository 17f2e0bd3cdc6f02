use tonic::{Request, Response, Status};

use super::pb::admin_service_server::AdminService;
use super::{auth::credentials, convert, observe, pb};
use crate::domain::{KeyId, Permission};
use crate::moderation::Moderation;

pub struct AdminApi {
    moderation: Moderation,
}

impl AdminApi {
    pub fn new(moderation: Moderation) -> Self {
        AdminApi { moderation }
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        observe("CreateApiKey", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let role = convert::role(request.get_ref().role)?;
            let created = self.moderation.create_api_key(&principal, role).await?;
            Ok(pb::CreateApiKeyResponse {
                key: created.secret.expose().to_owned(),
                api_key: Some(convert::api_key(created.info)),
            })
        })
        .await
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        observe("RevokeApiKey", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let key_id = KeyId::parse("key_id", &request.get_ref().key_id)?;
            let info = self.moderation.revoke_api_key(&principal, key_id).await?;
            Ok(pb::RevokeApiKeyResponse {
                api_key: Some(convert::api_key(info)),
            })
        })
        .await
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        observe("ListApiKeys", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let keys = self.moderation.list_api_keys(&principal).await?;
            Ok(pb::ListApiKeysResponse {
                api_keys: keys.into_iter().map(convert::api_key).collect(),
            })
        })
        .await
    }

    async fn get_tenant_settings(
        &self,
        request: Request<pb::GetTenantSettingsRequest>,
    ) -> Result<Response<pb::GetTenantSettingsResponse>, Status> {
        observe("GetTenantSettings", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let settings = self.moderation.get_tenant_settings(&principal).await?;
            Ok(pb::GetTenantSettingsResponse {
                settings: Some(convert::settings(settings)),
            })
        })
        .await
    }

    async fn update_tenant_settings(
        &self,
        request: Request<pb::UpdateTenantSettingsRequest>,
    ) -> Result<Response<pb::UpdateTenantSettingsResponse>, Status> {
        observe("UpdateTenantSettings", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let patch = convert::settings_patch(request.into_inner())?;
            let settings = self
                .moderation
                .update_tenant_settings(&principal, patch)
                .await?;
            Ok(pb::UpdateTenantSettingsResponse {
                settings: Some(convert::settings(settings)),
            })
        })
        .await
    }
}
