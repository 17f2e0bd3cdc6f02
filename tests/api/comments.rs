use std::collections::HashSet;

use moderato::domain::Role;
use moderato::grpc::pb::{self, CommentStatus};
use tonic::Code;

use crate::backend_tests;
use crate::helpers::{Backend, comment, spawn_app, violated_field};

backend_tests!(
    a_clean_comment_is_approved_stored_and_explained,
    premoderation_holds_every_comment_in_the_queue,
    retrying_with_the_same_client_comment_id_returns_the_original,
    concurrent_retries_store_one_comment,
    list_comments_is_newest_first_and_paginates,
    only_moderators_list_comments_that_are_not_approved,
    bad_input_is_invalid_argument_naming_the_field,
    unknown_comments_are_not_found,
);

async fn a_clean_comment_is_approved_stored_and_explained(backend: Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let mut client = app.comments(&publisher).await;

    let submitted = client
        .submit_comment(pb::SubmitCommentRequest {
            client_comment_id: "c-1".into(),
            author_display_name: "Awa".into(),
            author_ip: "2001:db8::1".into(),
            language: "fr".into(),
            ..comment(
                "budget-2027",
                "reader-1",
                "Très bonne analyse de la coopération régionale.",
            )
        })
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();

    assert_eq!(submitted.status, CommentStatus::Approved as i32);
    assert_eq!(submitted.article_id, "budget-2027");
    assert_eq!(
        submitted.body,
        "Très bonne analyse de la coopération régionale."
    );
    assert_eq!(submitted.client_comment_id, "c-1");
    assert_eq!(submitted.language, "fr");
    assert!(!submitted.reasons.is_empty(), "every decision is explained");
    assert!(submitted.create_time.is_some() && submitted.update_time.is_some());

    let fetched = client
        .get_comment(pb::GetCommentRequest {
            comment_id: submitted.comment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(
        fetched, submitted,
        "what was acknowledged is what is stored"
    );
}

async fn premoderation_holds_every_comment_in_the_queue(backend: Backend) {
    let app = spawn_app(backend).await;
    app.premoderate().await;
    let publisher = app.key_for("default", Role::Publisher).await;

    let held = app
        .comments(&publisher)
        .await
        .submit_comment(comment("a1", "r1", "Bonjour à tous"))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();

    assert_eq!(held.status, CommentStatus::PendingReview as i32);
    assert!(
        held.reasons
            .iter()
            .any(|r| r.code == "tenant.premoderation")
    );
    let queue = app
        .reviews(&app.admin_key)
        .await
        .list_review_queue(pb::ListReviewQueueRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(queue.items.len(), 1);
    assert_eq!(
        queue.items[0].comment.as_ref().unwrap().comment_id,
        held.comment_id
    );
    assert!(queue.items[0].claimed_by.is_empty());
}

async fn retrying_with_the_same_client_comment_id_returns_the_original(backend: Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let mut client = app.comments(&publisher).await;
    let request = pb::SubmitCommentRequest {
        client_comment_id: "retry-me".into(),
        ..comment("a1", "r1", "Premier message")
    };

    let first = client
        .submit_comment(request.clone())
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    let second = client
        .submit_comment(request.clone())
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(first, second);

    let reused = client
        .submit_comment(pb::SubmitCommentRequest {
            body: "Un tout autre message".into(),
            ..request
        })
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists);
}

async fn concurrent_retries_store_one_comment(backend: Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let client = app.comments(&publisher).await;
    let request = pb::SubmitCommentRequest {
        client_comment_id: "storm".into(),
        ..comment("a1", "r1", "Envoyé vingt fois")
    };

    let attempts = (0..20).map(|_| {
        let mut client = client.clone();
        let request = request.clone();
        tokio::spawn(async move { client.submit_comment(request).await })
    });
    let mut ids = HashSet::new();
    for attempt in futures::future::join_all(attempts).await {
        let response = attempt.unwrap().expect("every retry succeeds");
        ids.insert(response.into_inner().comment.unwrap().comment_id);
    }

    assert_eq!(ids.len(), 1, "all retries answer with one comment");
    let listed = app
        .comments(&publisher)
        .await
        .list_comments(pb::ListCommentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.comments.len(), 1);
}

async fn list_comments_is_newest_first_and_paginates(backend: Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let mut client = app.comments(&publisher).await;
    let mut submitted = Vec::new();
    for i in 0..7 {
        let c = client
            .submit_comment(comment(
                "a1",
                &format!("r{i}"),
                &format!("Le gouvernement doit répondre, point {i}"),
            ))
            .await
            .unwrap()
            .into_inner()
            .comment
            .unwrap();
        submitted.push(c.comment_id);
    }
    client
        .submit_comment(comment("other-article", "r1", "ailleurs"))
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_comments(pb::ListCommentsRequest {
                article_id: "a1".into(),
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        seen.extend(page.comments.into_iter().map(|c| c.comment_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    submitted.reverse();
    assert_eq!(seen, submitted, "newest first, each comment once");
    assert_eq!(pages, 3);

    // A token only continues the listing it came from.
    let first = client
        .list_comments(pb::ListCommentsRequest {
            article_id: "a1".into(),
            page_size: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let err = client
        .list_comments(pb::ListCommentsRequest {
            article_id: "other-article".into(),
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "page_token");
    let err = client
        .list_comments(pb::ListCommentsRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "page_token");
}

async fn only_moderators_list_comments_that_are_not_approved(backend: Backend) {
    let app = spawn_app(backend).await;
    app.premoderate().await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let moderator = app.key_for("default", Role::Moderator).await;
    let mut client = app.comments(&publisher).await;
    client
        .submit_comment(comment("a1", "r1", "en attente"))
        .await
        .unwrap();

    let public = client
        .list_comments(pb::ListCommentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        public.comments.is_empty(),
        "held comments are not published"
    );

    let pending = pb::ListCommentsRequest {
        status: CommentStatus::PendingReview as i32,
        ..Default::default()
    };
    let err = client.list_comments(pending.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let held = app
        .comments(&moderator)
        .await
        .list_comments(pending)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(held.comments.len(), 1);
}

async fn bad_input_is_invalid_argument_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let mut client = app.comments(&publisher).await;
    app.admin(&app.admin_key)
        .await
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            max_body_chars: Some(20),
            ..Default::default()
        })
        .await
        .unwrap();

    let cases = [
        (comment("a1", "r1", "   "), "body"),
        (comment("a1", "r1", &"é".repeat(21)), "body"),
        (comment("", "r1", "ok"), "article_id"),
        (comment("a1", "", "ok"), "author_id"),
        (
            pb::SubmitCommentRequest {
                author_ip: "999.1.1.1".into(),
                ..comment("a1", "r1", "ok")
            },
            "author_ip",
        ),
        (
            pb::SubmitCommentRequest {
                parent_comment_id: "not-an-id".into(),
                ..comment("a1", "r1", "ok")
            },
            "parent_comment_id",
        ),
        (
            pb::SubmitCommentRequest {
                language: "fr_FR".into(),
                ..comment("a1", "r1", "ok")
            },
            "language",
        ),
    ];
    for (request, field) in cases {
        let err = client.submit_comment(request).await.unwrap_err();
        assert_eq!(violated_field(&err), field, "{err:?}");
    }
    // Exactly at the limit is fine: the limit counts characters, not bytes.
    client
        .submit_comment(comment("a1", "r1", &"é".repeat(20)))
        .await
        .unwrap();

    let err = client
        .list_comments(pb::ListCommentsRequest {
            status: 42,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "status");
    let err = client
        .list_comments(pb::ListCommentsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "page_size");
    let err = client
        .get_comment(pb::GetCommentRequest {
            comment_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "comment_id");
}

async fn unknown_comments_are_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let err = app
        .comments(&publisher)
        .await
        .get_comment(pb::GetCommentRequest {
            comment_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}
