use moderato::domain::Role;
use moderato::grpc::pb::{self, ApiKeyRole, CommentStatus};
use tonic::Code;

use crate::backend_tests;
use crate::helpers::{Backend, comment, spawn_app};

backend_tests!(
    calls_without_a_valid_key_are_unauthenticated,
    a_revoked_key_stops_working,
    roles_limit_what_a_key_can_do,
    tenants_never_see_each_other,
    the_bootstrap_admin_key_is_private_and_works,
);

async fn calls_without_a_valid_key_are_unauthenticated(backend: Backend) {
    let app = spawn_app(backend).await;

    let err = app
        .comments_without_key()
        .await
        .submit_comment(comment("a1", "r1", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = app
        .comments("mdr_not-a-real-key")
        .await
        .submit_comment(comment("a1", "r1", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        !err.message().contains("mdr_not-a-real-key"),
        "keys are never echoed"
    );
}

async fn a_revoked_key_stops_working(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.admin_key).await;
    let created = admin
        .create_api_key(pb::CreateApiKeyRequest {
            role: ApiKeyRole::Publisher as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut publisher = app.comments(&created.key).await;
    publisher
        .submit_comment(comment("a1", "r1", "avant"))
        .await
        .unwrap();

    let revoked = admin
        .revoke_api_key(pb::RevokeApiKeyRequest {
            key_id: created.api_key.unwrap().key_id,
        })
        .await
        .unwrap()
        .into_inner()
        .api_key
        .unwrap();
    assert!(revoked.revoke_time.is_some());

    let err = publisher
        .submit_comment(comment("a1", "r1", "après"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

async fn roles_limit_what_a_key_can_do(backend: Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let moderator = app.key_for("default", Role::Moderator).await;

    let err = app
        .reviews(&publisher)
        .await
        .claim_reviews(pb::ClaimReviewsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = app
        .admin(&publisher)
        .await
        .list_api_keys(pb::ListApiKeysRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = app
        .comments(&moderator)
        .await
        .submit_comment(comment("a1", "r1", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = app
        .admin(&moderator)
        .await
        .get_tenant_settings(pb::GetTenantSettingsRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Moderators read comments; admins do everything.
    app.comments(&moderator)
        .await
        .list_comments(pb::ListCommentsRequest::default())
        .await
        .unwrap();
    app.comments(&app.admin_key)
        .await
        .submit_comment(comment("a1", "r1", "x"))
        .await
        .unwrap();
    app.reviews(&app.admin_key)
        .await
        .claim_reviews(pb::ClaimReviewsRequest::default())
        .await
        .unwrap();
}

async fn tenants_never_see_each_other(backend: Backend) {
    let app = spawn_app(backend).await;
    app.premoderate().await;
    let publisher_a = app.key_for("default", Role::Publisher).await;
    let publisher_b = app.key_for("other-paper", Role::Publisher).await;
    let moderator_b = app.key_for("other-paper", Role::Moderator).await;
    let held = app
        .comments(&publisher_a)
        .await
        .submit_comment(comment("shared-article-id", "r1", "chez A"))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(held.status, CommentStatus::PendingReview as i32);

    let err = app
        .comments(&publisher_b)
        .await
        .get_comment(pb::GetCommentRequest {
            comment_id: held.comment_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let listed = app
        .comments(&moderator_b)
        .await
        .list_comments(pb::ListCommentsRequest {
            article_id: "shared-article-id".into(),
            status: CommentStatus::PendingReview as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.comments.is_empty());

    let mut reviews_b = app.reviews(&moderator_b).await;
    let queue_b = reviews_b
        .list_review_queue(pb::ListReviewQueueRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(queue_b.items.is_empty());
    assert!(
        reviews_b
            .claim_reviews(pb::ClaimReviewsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .items
            .is_empty()
    );
    let queue_a = app
        .reviews(&app.admin_key)
        .await
        .list_review_queue(pb::ListReviewQueueRequest::default())
        .await
        .unwrap()
        .into_inner();
    let err = reviews_b
        .decide_review(pb::DecideReviewRequest {
            review_id: queue_a.items[0].review_id.clone(),
            decision: pb::ReviewDecision::Approve as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Same idempotency key in two tenants: two different comments.
    let request = pb::SubmitCommentRequest {
        client_comment_id: "k1".into(),
        ..comment("a", "r", "même clé")
    };
    let a = app
        .comments(&publisher_a)
        .await
        .submit_comment(request.clone())
        .await
        .unwrap();
    let b = app
        .comments(&publisher_b)
        .await
        .submit_comment(request)
        .await
        .unwrap();
    assert_ne!(
        a.into_inner().comment.unwrap().comment_id,
        b.into_inner().comment.unwrap().comment_id
    );
}

async fn the_bootstrap_admin_key_is_private_and_works(backend: Backend) {
    let app = spawn_app(backend).await;
    let path = app.dir.path().join("admin.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(app.admin_key.starts_with("mdr_"));

    let keys = app
        .admin(&app.admin_key)
        .await
        .list_api_keys(pb::ListApiKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .api_keys;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].role, ApiKeyRole::Admin as i32);
    assert!(app.admin_key.starts_with(&keys[0].key_prefix));
    assert!(keys[0].key_prefix.len() < 16, "listings never show the key");
}
