use moderato::grpc::pb::{self, ApiKeyRole, CommentStatus, ModerationMode};
use tonic::Code;

use crate::backend_tests;
use crate::helpers::{Backend, comment, spawn_app, violated_field};

backend_tests!(
    api_keys_are_created_listed_and_revoked,
    tenant_settings_are_read_and_updated,
    invalid_settings_are_refused_and_change_nothing,
    thresholds_apply_to_later_submissions,
);

async fn api_keys_are_created_listed_and_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.admin_key).await;

    let created = admin
        .create_api_key(pb::CreateApiKeyRequest {
            role: ApiKeyRole::Moderator as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let info = created.api_key.unwrap();
    assert!(created.key.starts_with(&info.key_prefix));
    assert_eq!(info.role, ApiKeyRole::Moderator as i32);

    let listed = admin
        .list_api_keys(pb::ListApiKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .api_keys;
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .any(|k| k.key_id == info.key_id && k.revoke_time.is_none())
    );

    admin
        .revoke_api_key(pb::RevokeApiKeyRequest {
            key_id: info.key_id.clone(),
        })
        .await
        .unwrap();
    let listed = admin
        .list_api_keys(pb::ListApiKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .api_keys;
    assert!(
        listed
            .iter()
            .any(|k| k.key_id == info.key_id && k.revoke_time.is_some())
    );

    let err = admin
        .revoke_api_key(pb::RevokeApiKeyRequest {
            key_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = admin
        .create_api_key(pb::CreateApiKeyRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "role");
}

async fn tenant_settings_are_read_and_updated(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.admin_key).await;

    let settings = admin
        .get_tenant_settings(pb::GetTenantSettingsRequest {})
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(settings.tenant_name, "default");
    assert_eq!(settings.moderation_mode, ModerationMode::Post as i32);

    let updated = admin
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            moderation_mode: Some(ModerationMode::Pre as i32),
            review_threshold: Some(0.3),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(updated.moderation_mode, ModerationMode::Pre as i32);
    assert_eq!(updated.review_threshold, 0.3);
    assert_eq!(
        updated.reject_threshold, settings.reject_threshold,
        "unset fields keep their value"
    );
    assert_eq!(updated.max_body_chars, settings.max_body_chars);

    let reread = admin
        .get_tenant_settings(pb::GetTenantSettingsRequest {})
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(reread, updated);
}

async fn invalid_settings_are_refused_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.admin_key).await;
    let before = admin
        .get_tenant_settings(pb::GetTenantSettingsRequest {})
        .await
        .unwrap()
        .into_inner()
        .settings;

    let cases = [
        (
            pb::UpdateTenantSettingsRequest {
                review_threshold: Some(0.95),
                ..Default::default()
            },
            "review_threshold",
        ),
        (
            pb::UpdateTenantSettingsRequest {
                reject_threshold: Some(-0.1),
                ..Default::default()
            },
            "reject_threshold",
        ),
        (
            pb::UpdateTenantSettingsRequest {
                max_body_chars: Some(0),
                ..Default::default()
            },
            "max_body_chars",
        ),
        (
            pb::UpdateTenantSettingsRequest {
                moderation_mode: Some(9),
                ..Default::default()
            },
            "moderation_mode",
        ),
    ];
    for (request, field) in cases {
        let err = admin.update_tenant_settings(request).await.unwrap_err();
        assert_eq!(violated_field(&err), field);
    }
    let after = admin
        .get_tenant_settings(pb::GetTenantSettingsRequest {})
        .await
        .unwrap()
        .into_inner()
        .settings;
    assert_eq!(before, after);
}

async fn thresholds_apply_to_later_submissions(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.admin_key).await;
    let mut comments = app.comments(&app.admin_key).await;
    let approved = comments
        .submit_comment(comment("a", "r", "un"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        approved.comment.unwrap().status,
        CommentStatus::Approved as i32
    );

    // With no filter scoring yet, every score is 0: a zero review threshold holds everything.
    admin
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            review_threshold: Some(0.0),
            ..Default::default()
        })
        .await
        .unwrap();
    let held = comments
        .submit_comment(comment("a", "r", "deux"))
        .await
        .unwrap()
        .into_inner();
    let held = held.comment.unwrap();
    assert_eq!(held.status, CommentStatus::PendingReview as i32);
    assert!(held.reasons.iter().any(|r| r.code == "spam.score"));

    admin
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            reject_threshold: Some(0.0),
            ..Default::default()
        })
        .await
        .unwrap();
    let rejected = comments
        .submit_comment(comment("a", "r", "trois"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        rejected.comment.unwrap().status,
        CommentStatus::Rejected as i32
    );
}
