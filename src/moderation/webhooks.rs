//! Webhook endpoints: what `AdminService`'s webhook calls do. A secret is
//! made here, shown once and stored sealed (bound to its tenant and
//! endpoint); a rotation keeps the replaced secret signing for
//! [`PREVIOUS_SECRET_GRACE`], so receivers can move to the new one without
//! missing a delivery. Changes to one endpoint are last-writer-wins.

use super::{Moderation, Page, now};
use crate::domain::{
    FieldViolation, MAX_WEBHOOKS, PageSize, PageToken, Principal, TenantId, Webhook, WebhookChange,
    WebhookDelivery, WebhookId, WebhookSpec,
};
use crate::storage::{StoreError, WebhookRecord};
use crate::webhooks::SigningSecret;

/// How long a replaced secret keeps signing.
pub const PREVIOUS_SECRET_GRACE: chrono::TimeDelta = chrono::TimeDelta::hours(24);

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Invalid(FieldViolation),
    #[error("webhook not found")]
    NotFound,
    #[error("webhook delivery not found")]
    DeliveryNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An endpoint with the secret just made for it (shown this once).
#[derive(Debug)]
pub struct WebhookWithSecret {
    pub webhook: Webhook,
    pub secret: SigningSecret,
}

/// What a sealed secret is bound to.
fn seal_context(tenant: TenantId, webhook: WebhookId) -> Vec<u8> {
    let mut context = b"webhook secret ".to_vec();
    context.extend_from_slice(tenant.as_uuid().as_bytes());
    context.extend_from_slice(webhook.as_uuid().as_bytes());
    context
}

impl Moderation {
    fn seal_secret(&self, tenant: TenantId, webhook: WebhookId, secret: &SigningSecret) -> String {
        self.inner
            .sealer
            .seal(&secret.expose(), &seal_context(tenant, webhook))
    }

    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id))]
    pub async fn create_webhook(
        &self,
        principal: &Principal,
        spec: WebhookSpec,
    ) -> Result<WebhookWithSecret, WebhookError> {
        let at = now();
        let tenant = principal.tenant_id;
        let webhook = Webhook {
            webhook_id: WebhookId::generate(),
            url: spec.url.as_str().to_owned(),
            event_types: spec.event_types,
            description: spec.description,
            enabled: true,
            disabled_reason: String::new(),
            previous_secret_expire_time: None,
            create_time: at,
            update_time: at,
        };
        let secret = SigningSecret::generate();
        let record = WebhookRecord {
            sealed_secret: self.seal_secret(tenant, webhook.webhook_id, &secret),
            sealed_previous_secret: None,
            webhook,
        };
        self.store()
            .create_webhook(tenant, &record, MAX_WEBHOOKS, &principal.actor())
            .await?
            .ok_or_else(|| {
                WebhookError::Invalid(FieldViolation::new(
                    "url",
                    format!(
                        "the tenant has {MAX_WEBHOOKS} webhooks, the most allowed: delete one first"
                    ),
                ))
            })?;
        Ok(WebhookWithSecret {
            webhook: record.webhook,
            secret,
        })
    }

    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id))]
    pub async fn list_webhooks(&self, principal: &Principal) -> Result<Vec<Webhook>, WebhookError> {
        Ok(self
            .store()
            .list_webhooks(principal.tenant_id)
            .await?
            .into_iter()
            .map(|r| r.webhook)
            .collect())
    }

    async fn stored_webhook(
        &self,
        tenant: TenantId,
        id: WebhookId,
    ) -> Result<WebhookRecord, WebhookError> {
        self.store()
            .list_webhooks(tenant)
            .await?
            .into_iter()
            .find(|r| r.webhook.webhook_id == id)
            .ok_or(WebhookError::NotFound)
    }

    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id, %id))]
    pub async fn update_webhook(
        &self,
        principal: &Principal,
        id: WebhookId,
        change: WebhookChange,
    ) -> Result<Webhook, WebhookError> {
        let tenant = principal.tenant_id;
        let mut record = self.stored_webhook(tenant, id).await?;
        let w = &mut record.webhook;
        if let Some(url) = change.url {
            w.url = url.as_str().to_owned();
        }
        if let Some(types) = change.event_types {
            w.event_types = types;
        }
        if let Some(description) = change.description {
            w.description = description;
        }
        if let Some(enabled) = change.enabled {
            w.enabled = enabled;
            w.disabled_reason = if enabled {
                String::new()
            } else {
                "disabled by an admin".into()
            };
        }
        w.update_time = now();
        self.store()
            .replace_webhook(tenant, &record, "webhook.updated", &principal.actor())
            .await?
            .ok_or(WebhookError::NotFound)?;
        Ok(record.webhook)
    }

    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id, %id))]
    pub async fn rotate_webhook_secret(
        &self,
        principal: &Principal,
        id: WebhookId,
    ) -> Result<WebhookWithSecret, WebhookError> {
        let tenant = principal.tenant_id;
        let mut record = self.stored_webhook(tenant, id).await?;
        let at = now();
        let secret = SigningSecret::generate();
        record.sealed_previous_secret = Some(std::mem::replace(
            &mut record.sealed_secret,
            self.seal_secret(tenant, id, &secret),
        ));
        record.webhook.previous_secret_expire_time = Some(at + PREVIOUS_SECRET_GRACE);
        record.webhook.update_time = at;
        self.store()
            .replace_webhook(
                tenant,
                &record,
                "webhook.secret_rotated",
                &principal.actor(),
            )
            .await?
            .ok_or(WebhookError::NotFound)?;
        Ok(WebhookWithSecret {
            webhook: record.webhook,
            secret,
        })
    }

    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id, %id))]
    pub async fn delete_webhook(
        &self,
        principal: &Principal,
        id: WebhookId,
    ) -> Result<(), WebhookError> {
        if self
            .store()
            .delete_webhook(principal.tenant_id, id, &principal.actor(), now())
            .await?
        {
            Ok(())
        } else {
            Err(WebhookError::NotFound)
        }
    }

    /// The endpoint's deliveries, newest event first.
    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id, %id))]
    pub async fn list_webhook_deliveries(
        &self,
        principal: &Principal,
        id: WebhookId,
        page_size: PageSize,
        page_token: &str,
    ) -> Result<Page<WebhookDelivery>, WebhookError> {
        let scope = format!("webhook-deliveries|{id}");
        let before: Option<i64> =
            PageToken::decode("page_token", page_token, &scope).map_err(WebhookError::Invalid)?;
        let limit = page_size.get();
        let deliveries = self
            .store()
            .list_webhook_deliveries(principal.tenant_id, id, before, limit + 1)
            .await?
            .ok_or(WebhookError::NotFound)?;
        Ok(Page::from_overfetch(deliveries, limit, &scope, |d| {
            d.event_id
        }))
    }

    /// One more attempt of a delivery, as soon as the delivering replica
    /// gets to it (within about a second).
    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id, %id))]
    pub async fn retry_webhook_delivery(
        &self,
        principal: &Principal,
        id: WebhookId,
        message_id: &str,
    ) -> Result<WebhookDelivery, WebhookError> {
        let tenant = principal.tenant_id;
        // The endpoint first: an unknown endpoint is NOT_FOUND as such.
        self.stored_webhook(tenant, id).await?;
        self.store()
            .retry_webhook_delivery(tenant, id, message_id, &principal.actor(), now())
            .await?
            .ok_or(WebhookError::DeliveryNotFound)
    }

    /// The secrets that sign a delivery to `record` at `at`: the current
    /// one, and the one a rotation replaced until its grace ends.
    pub fn signing_secrets(
        &self,
        tenant: TenantId,
        record: &WebhookRecord,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<SigningSecret>, StoreError> {
        let context = seal_context(tenant, record.webhook.webhook_id);
        let open = |sealed: &str| {
            self.inner
                .sealer
                .open(sealed, &context)
                .and_then(|s| SigningSecret::parse(&s))
                .ok_or_else(|| {
                    StoreError::Corrupt(
                        "a webhook secret does not open with this server secret".into(),
                    )
                })
        };
        let mut secrets = vec![open(&record.sealed_secret)?];
        if let (Some(previous), Some(until)) = (
            &record.sealed_previous_secret,
            record.webhook.previous_secret_expire_time,
        ) && at < until
        {
            secrets.push(open(previous)?);
        }
        Ok(secrets)
    }
}
