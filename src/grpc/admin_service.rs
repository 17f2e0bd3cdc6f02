use tonic::{Request, Response, Status};

use super::pb::admin_service_server::AdminService;
use super::{Gate, auth::credentials, convert, observe, pb};
use crate::domain::{AuthorId, CommentBody, KeyId, PageSize, Permission, WebhookId};
use crate::moderation::Moderation;
use crate::storage::RuleChange;

pub struct AdminApi {
    moderation: Moderation,
    gate: Gate,
}

impl AdminApi {
    pub fn new(moderation: Moderation, gate: Gate) -> Self {
        AdminApi { moderation, gate }
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        observe(&self.gate, "CreateApiKey", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let spec = convert::key_spec(request.into_inner())?;
            let created = self.moderation.create_api_key(&principal, spec).await?;
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
        observe(&self.gate, "RevokeApiKey", async {
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
        observe(&self.gate, "ListApiKeys", async {
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
        observe(&self.gate, "GetTenantSettings", async {
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
        observe(&self.gate, "UpdateTenantSettings", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let (patch, classifier) = convert::settings_patch(request.into_inner())?;
            let settings = self
                .moderation
                .update_tenant_settings(&principal, patch, classifier)
                .await?;
            Ok(pb::UpdateTenantSettingsResponse {
                settings: Some(convert::settings(settings)),
            })
        })
        .await
    }

    async fn create_rule(
        &self,
        request: Request<pb::CreateRuleRequest>,
    ) -> Result<Response<pb::CreateRuleResponse>, Status> {
        observe(&self.gate, "CreateRule", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let rule = convert::rule(request.into_inner().rule)?;
            let written = self
                .moderation
                .change_rules(&principal, RuleChange::Create(rule))
                .await?;
            Ok(pb::CreateRuleResponse {
                rule: written.into_iter().next().map(convert::rule_record),
            })
        })
        .await
    }

    async fn update_rule(
        &self,
        request: Request<pb::UpdateRuleRequest>,
    ) -> Result<Response<pb::UpdateRuleResponse>, Status> {
        observe(&self.gate, "UpdateRule", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let request = request.into_inner();
            let rule = convert::rule(request.rule)?;
            let change = RuleChange::Update {
                rule,
                expected_revision: request.expected_revision,
            };
            let written = self.moderation.change_rules(&principal, change).await?;
            Ok(pb::UpdateRuleResponse {
                rule: written.into_iter().next().map(convert::rule_record),
            })
        })
        .await
    }

    async fn delete_rule(
        &self,
        request: Request<pb::DeleteRuleRequest>,
    ) -> Result<Response<pb::DeleteRuleResponse>, Status> {
        observe(&self.gate, "DeleteRule", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let rule_id = request.into_inner().rule_id;
            if rule_id.is_empty() {
                return Err(crate::domain::FieldViolation::new("rule_id", "is required").into());
            }
            self.moderation
                .change_rules(&principal, RuleChange::Delete { rule_id })
                .await?;
            Ok(pb::DeleteRuleResponse {})
        })
        .await
    }

    async fn list_rules(
        &self,
        request: Request<pb::ListRulesRequest>,
    ) -> Result<Response<pb::ListRulesResponse>, Status> {
        observe(&self.gate, "ListRules", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let (version, rules) = self.moderation.list_rules(&principal).await?;
            Ok(pb::ListRulesResponse {
                rules: rules.into_iter().map(convert::rule_record).collect(),
                rules_version: version,
            })
        })
        .await
    }

    async fn test_rules(
        &self,
        request: Request<pb::TestRulesRequest>,
    ) -> Result<Response<pb::TestRulesResponse>, Status> {
        observe(&self.gate, "TestRules", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let body = CommentBody::parse("body", request.into_inner().body)?;
            let text = body.as_str().to_owned();
            let verdict = self.moderation.test_rules(&principal, body).await?;
            Ok(convert::test_result(verdict, &text))
        })
        .await
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        observe(&self.gate, "ListAuditEvents", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::ReadAudit)
                .await?;
            let request = request.into_inner();
            let page_size = PageSize::parse("page_size", request.page_size, 100, 1000)?;
            let page_token = request.page_token.clone();
            let filter = convert::audit_filter(request)?;
            let page = self
                .moderation
                .list_audit_events(&principal, filter, page_size, &page_token)
                .await?;
            Ok(pb::ListAuditEventsResponse {
                audit_events: page.items.into_iter().map(convert::audit_event).collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn export_author(
        &self,
        request: Request<pb::ExportAuthorRequest>,
    ) -> Result<Response<pb::ExportAuthorResponse>, Status> {
        observe(&self.gate, "ExportAuthor", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let author = AuthorId::parse("author_id", request.into_inner().author_id)?;
            let export = self.moderation.export_author(&principal, author).await?;
            Ok(convert::author_export(export))
        })
        .await
    }

    async fn erase_author(
        &self,
        request: Request<pb::EraseAuthorRequest>,
    ) -> Result<Response<pb::EraseAuthorResponse>, Status> {
        observe(&self.gate, "EraseAuthor", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let author = AuthorId::parse("author_id", request.into_inner().author_id)?;
            let erased = self.moderation.erase_author(&principal, author).await?;
            Ok(pb::EraseAuthorResponse {
                erased_comments: erased.comments as i64,
                erased_reports: erased.reports as i64,
            })
        })
        .await
    }

    async fn create_webhook(
        &self,
        request: Request<pb::CreateWebhookRequest>,
    ) -> Result<Response<pb::CreateWebhookResponse>, Status> {
        observe(&self.gate, "CreateWebhook", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let request = request.into_inner();
            let spec = convert::webhook_spec(request)?;
            let made = self.moderation.create_webhook(&principal, spec).await?;
            Ok(pb::CreateWebhookResponse {
                webhook: Some(convert::webhook(made.webhook)),
                secret: made.secret.expose(),
            })
        })
        .await
    }

    async fn list_webhooks(
        &self,
        request: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        observe(&self.gate, "ListWebhooks", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let request = request.into_inner();
            let pb::ListWebhooksRequest {} = request;
            let webhooks = self.moderation.list_webhooks(&principal).await?;
            Ok(pb::ListWebhooksResponse {
                webhooks: webhooks.into_iter().map(convert::webhook).collect(),
            })
        })
        .await
    }

    async fn update_webhook(
        &self,
        request: Request<pb::UpdateWebhookRequest>,
    ) -> Result<Response<pb::UpdateWebhookResponse>, Status> {
        observe(&self.gate, "UpdateWebhook", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let request = request.into_inner();
            let (id, change) = convert::webhook_change(request)?;
            let webhook = self
                .moderation
                .update_webhook(&principal, id, change)
                .await?;
            Ok(pb::UpdateWebhookResponse {
                webhook: Some(convert::webhook(webhook)),
            })
        })
        .await
    }

    async fn delete_webhook(
        &self,
        request: Request<pb::DeleteWebhookRequest>,
    ) -> Result<Response<pb::DeleteWebhookResponse>, Status> {
        observe(&self.gate, "DeleteWebhook", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let request = request.into_inner();
            let id = WebhookId::parse("webhook_id", &request.webhook_id)?;
            self.moderation.delete_webhook(&principal, id).await?;
            Ok(pb::DeleteWebhookResponse {})
        })
        .await
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<pb::RotateWebhookSecretResponse>, Status> {
        observe(&self.gate, "RotateWebhookSecret", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let request = request.into_inner();
            let id = WebhookId::parse("webhook_id", &request.webhook_id)?;
            let made = self
                .moderation
                .rotate_webhook_secret(&principal, id)
                .await?;
            Ok(pb::RotateWebhookSecretResponse {
                webhook: Some(convert::webhook(made.webhook)),
                secret: made.secret.expose(),
            })
        })
        .await
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<pb::ListWebhookDeliveriesRequest>,
    ) -> Result<Response<pb::ListWebhookDeliveriesResponse>, Status> {
        observe(&self.gate, "ListWebhookDeliveries", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let request = request.into_inner();
            let id = WebhookId::parse("webhook_id", &request.webhook_id)?;
            let page_size = PageSize::parse("page_size", request.page_size, 50, 500)?;
            let page = self
                .moderation
                .list_webhook_deliveries(&principal, id, page_size, &request.page_token)
                .await?;
            Ok(pb::ListWebhookDeliveriesResponse {
                deliveries: page
                    .items
                    .into_iter()
                    .map(convert::webhook_delivery)
                    .collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn retry_webhook_delivery(
        &self,
        request: Request<pb::RetryWebhookDeliveryRequest>,
    ) -> Result<Response<pb::RetryWebhookDeliveryResponse>, Status> {
        observe(&self.gate, "RetryWebhookDelivery", async {
            let principal = self
                .moderation
                .authorize(credentials(&request), Permission::Administer)
                .await?;
            let request = request.into_inner();
            let id = WebhookId::parse("webhook_id", &request.webhook_id)?;
            let message_id = convert::webhook_message_id(request.message_id)?;
            let delivery = self
                .moderation
                .retry_webhook_delivery(&principal, id, &message_id)
                .await?;
            Ok(pb::RetryWebhookDeliveryResponse {
                delivery: Some(convert::webhook_delivery(delivery)),
            })
        })
        .await
    }
}
