//! The tenant's submission rates per author and per IP address.

use std::time::Duration;

use moderato::grpc::pb;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, comment, spawn_app, violated_field};

backend_tests!(
    an_author_past_the_tenant_rate_is_refused_and_retries_still_get_their_comment,
    an_ip_address_past_the_tenant_rate_is_refused,
    submission_rates_are_bounded,
);

async fn set_rates(
    app: &TestApp,
    author: Option<u32>,
    ip: Option<u32>,
) -> Result<(), tonic::Status> {
    app.admin(&app.admin_key)
        .await
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            max_comments_per_author_per_minute: author,
            max_comments_per_ip_per_minute: ip,
            ..Default::default()
        })
        .await
        .map(|_| ())
}

fn from(author: &str, ip: &str, client_id: &str) -> pb::SubmitCommentRequest {
    pb::SubmitCommentRequest {
        author_ip: ip.to_owned(),
        client_comment_id: client_id.to_owned(),
        ..comment(
            "a-1",
            author,
            &format!("Merci pour cet article ({client_id})."),
        )
    }
}

async fn an_author_past_the_tenant_rate_is_refused_and_retries_still_get_their_comment(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    set_rates(&app, Some(3), None).await.unwrap();
    let mut client = app.comments(&app.admin_key).await;
    let mut stored = Vec::new();
    for i in 0..3 {
        stored.push(
            client
                .submit_comment(from("prolific", "", &format!("c-{i}")))
                .await
                .unwrap()
                .into_inner()
                .comment
                .unwrap(),
        );
    }
    let refused = client
        .submit_comment(from("prolific", "", "c-3"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("author"),
        "{}",
        refused.message()
    );
    let delay = refused
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("a RetryInfo delay");
    assert!(
        delay > Duration::from_secs(50) && delay <= Duration::from_secs(60),
        "{delay:?}"
    );

    // A retry of a comment that was stored is answered with it.
    let retried = client
        .submit_comment(from("prolific", "", "c-1"))
        .await
        .expect("a retry is not a new comment")
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(retried.comment_id, stored[1].comment_id);
    // Other authors are not affected; turning the limit off lifts it.
    client
        .submit_comment(from("someone-else", "", "o-1"))
        .await
        .unwrap();
    set_rates(&app, Some(0), None).await.unwrap();
    client
        .submit_comment(from("prolific", "", "c-3"))
        .await
        .expect("0 means no limit");
}

async fn an_ip_address_past_the_tenant_rate_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    set_rates(&app, None, Some(2)).await.unwrap();
    let mut client = app.comments(&app.admin_key).await;
    for (i, author) in ["a", "b"].into_iter().enumerate() {
        client
            .submit_comment(from(author, "203.0.113.7", &format!("i-{i}")))
            .await
            .unwrap();
    }
    let refused = client
        .submit_comment(from("c", "203.0.113.7", "i-2"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(refused.message().contains("IP address"));
    assert!(
        !refused.message().contains("203.0.113.7"),
        "addresses never appear in errors"
    );
    client
        .submit_comment(from("c", "198.51.100.1", "i-3"))
        .await
        .expect("another address has its own budget");
    client
        .submit_comment(from("d", "", "i-4"))
        .await
        .expect("comments without an address are not counted");
}

async fn submission_rates_are_bounded(backend: Backend) {
    let app = spawn_app(backend).await;
    let refused = set_rates(&app, Some(51), None).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        violated_field(&refused),
        "max_comments_per_author_per_minute"
    );
    let refused = set_rates(&app, None, Some(100_001)).await.unwrap_err();
    assert_eq!(violated_field(&refused), "max_comments_per_ip_per_minute");
    let settings = app
        .admin(&app.admin_key)
        .await
        .get_tenant_settings(pb::GetTenantSettingsRequest {})
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(
        (
            settings.max_comments_per_author_per_minute,
            settings.max_comments_per_ip_per_minute
        ),
        (0, 0),
        "off by default, and refused changes change nothing"
    );
}
