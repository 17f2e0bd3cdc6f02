//! Retention: comment text past the tenant's retention is replaced by a
//! marker; the comment, its decision and the audit trail stay.

use moderato::grpc::pb;
use moderato::moderation::retention::{RETENTION_MARKER, purge_expired_bodies};
use sqlx::Connection as _;
use tonic::Code;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, comment, spawn_app, violated_field};

backend_tests!(text_past_retention_is_replaced_and_the_record_stays);

/// Moves a comment `days` into the past, as if it had been stored then.
async fn age(app: &TestApp, comment_id: &str, days: i64) {
    let id = uuid::Uuid::parse_str(comment_id).unwrap();
    if app.database_url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
            .await
            .unwrap();
        sqlx::query("UPDATE comments SET create_time = create_time - ?1 * 86400000000 WHERE comment_id = ?2")
            .bind(days)
            .bind(id)
            .execute(&mut conn)
            .await
            .unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(&app.database_url)
            .await
            .unwrap();
        sqlx::query("UPDATE comments SET create_time = create_time - make_interval(days => $1::int) WHERE comment_id = $2")
            .bind(days as i32)
            .bind(id)
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

async fn text_past_retention_is_replaced_and_the_record_stays(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.admin_key).await;
    let refused = admin
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            retain_bodies_days: Some(36_501),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violated_field(&refused), "retain_bodies_days");
    admin
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            retain_rejected_bodies_days: Some(30),
            retain_bodies_days: Some(365),
            ..Default::default()
        })
        .await
        .unwrap();

    let mut comments = app.comments(&app.admin_key).await;
    let mut submit = async |author: &str, body: &str| {
        comments
            .submit_comment(comment("a-1", author, body))
            .await
            .unwrap()
            .into_inner()
            .comment
            .unwrap()
    };
    let recent_rejected = submit("r1", "Espèce de connard, ferme ta gueule.").await;
    let old_rejected = submit("r2", "Sale connard, ta gueule.").await;
    let old_approved = submit("r3", "Très bonne analyse du budget, merci.").await;
    let ancient_approved = submit("r4", "Le prix du riz a encore augmenté à Bouaké.").await;
    for c in [&recent_rejected, &old_rejected] {
        assert_eq!(c.status, pb::CommentStatus::Rejected as i32, "{c:?}");
    }
    age(&app, &recent_rejected.comment_id, 10).await;
    age(&app, &old_rejected.comment_id, 40).await;
    age(&app, &old_approved.comment_id, 40).await;
    age(&app, &ancient_approved.comment_id, 400).await;

    let now = chrono::Utc::now();
    assert_eq!(
        purge_expired_bodies(app.store.as_ref(), now).await.unwrap(),
        2
    );
    assert_eq!(
        purge_expired_bodies(app.store.as_ref(), now).await.unwrap(),
        0,
        "a purged comment is not purged again"
    );

    let mut reader = app.comments(&app.admin_key).await;
    for (c, purged) in [
        (&recent_rejected, false),
        (&old_rejected, true),
        (&old_approved, false),
        (&ancient_approved, true),
    ] {
        let stored = reader
            .get_comment(pb::GetCommentRequest {
                comment_id: c.comment_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .comment
            .unwrap();
        assert_eq!(stored.status, c.status, "the decision stays");
        assert_eq!(stored.reasons.len(), c.reasons.len(), "the reasons stay");
        if purged {
            assert_eq!(stored.body, RETENTION_MARKER);
            assert_eq!(stored.original_body, "");
        } else {
            assert_eq!(stored.body, c.body);
        }
    }
    let trail = admin
        .list_audit_events(pb::ListAuditEventsRequest {
            action: "comments.purged".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    assert_eq!(trail.len(), 1, "one purge, audited once");
    let created = admin
        .list_audit_events(pb::ListAuditEventsRequest {
            comment_id: old_rejected.comment_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    assert!(!created.is_empty(), "the comment's own trail stays");
}
