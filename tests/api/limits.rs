//! Every string field and list of every request is bounded: an oversized
//! value is `INVALID_ARGUMENT` naming the field, and nothing is written.

use moderato::grpc::pb;
use tonic::{Code, Status};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, comment, spawn_app, violated_field};

backend_tests!(every_oversized_field_is_refused_naming_it);

/// Longer than any bounded text field (the longest, a body, is checked
/// against its own ceiling below).
fn long() -> String {
    "x".repeat(10_000)
}

async fn expect_field(what: &str, result: Result<(), Status>, field: &str) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
    assert_eq!(violated_field(&status), field, "{what}");
}

async fn every_oversized_field_is_refused_naming_it(backend: Backend) {
    let app: TestApp = spawn_app(backend).await;
    let key = app.admin_key.clone();
    let mut comments = app.comments(&key).await;
    let mut reviews = app.reviews(&key).await;
    let mut admin = app.admin(&key).await;
    let some_id = "01a23409-c85c-71ec-b109-170655b1cb9d".to_owned();

    let submit = |f: &dyn Fn(&mut pb::SubmitCommentRequest)| {
        let mut request = comment("a-1", "r-1", "Bonjour.");
        f(&mut request);
        request
    };
    for (field, request) in [
        ("article_id", submit(&|r| r.article_id = long())),
        ("author_id", submit(&|r| r.author_id = long())),
        (
            "client_comment_id",
            submit(&|r| r.client_comment_id = long()),
        ),
        (
            "author_display_name",
            submit(&|r| r.author_display_name = long()),
        ),
        ("language", submit(&|r| r.language = long())),
        (
            "parent_comment_id",
            submit(&|r| r.parent_comment_id = long()),
        ),
        ("author_ip", submit(&|r| r.author_ip = long())),
        ("body", submit(&|r| r.body = "x".repeat(100_001))),
    ] {
        let result = comments.submit_comment(request).await.map(drop);
        expect_field("SubmitComment", result, field).await;
    }
    let result = comments
        .list_comments(pb::ListCommentsRequest {
            article_id: long(),
            ..Default::default()
        })
        .await
        .map(drop);
    expect_field("ListComments", result, "article_id").await;
    let result = comments
        .list_comments(pb::ListCommentsRequest {
            page_token: long(),
            ..Default::default()
        })
        .await
        .map(drop);
    expect_field("ListComments", result, "page_token").await;
    let result = comments
        .report_comment(pb::ReportCommentRequest {
            comment_id: some_id.clone(),
            reporter_id: long(),
            reason: pb::ReportReason::Spam as i32,
            detail: String::new(),
        })
        .await
        .map(drop);
    expect_field("ReportComment", result, "reporter_id").await;
    let result = comments
        .report_comment(pb::ReportCommentRequest {
            comment_id: some_id.clone(),
            reporter_id: "r".into(),
            reason: pb::ReportReason::Spam as i32,
            detail: long(),
        })
        .await
        .map(drop);
    expect_field("ReportComment", result, "detail").await;

    let result = reviews
        .claim_reviews(pb::ClaimReviewsRequest {
            moderator_id: long(),
            ..Default::default()
        })
        .await
        .map(drop);
    expect_field("ClaimReviews", result, "moderator_id").await;
    let result = reviews
        .claim_reviews(pb::ClaimReviewsRequest {
            article_id: long(),
            ..Default::default()
        })
        .await
        .map(drop);
    expect_field("ClaimReviews", result, "article_id").await;
    let result = reviews
        .claim_reviews(pb::ClaimReviewsRequest {
            reason_code: long(),
            ..Default::default()
        })
        .await
        .map(drop);
    expect_field("ClaimReviews", result, "reason_code").await;
    let result = reviews
        .list_review_queue(pb::ListReviewQueueRequest {
            page_token: long(),
            ..Default::default()
        })
        .await
        .map(drop);
    expect_field("ListReviewQueue", result, "page_token").await;
    let decide = |f: &dyn Fn(&mut pb::DecideReviewRequest)| {
        let mut request = pb::DecideReviewRequest {
            review_id: some_id.clone(),
            decision: pb::ReviewDecision::Approve as i32,
            ..Default::default()
        };
        f(&mut request);
        request
    };
    for (field, request) in [
        ("note", decide(&|r| r.note = long())),
        ("reason_code", decide(&|r| r.reason_code = long())),
        ("moderator_id", decide(&|r| r.moderator_id = long())),
    ] {
        let result = reviews.decide_review(request).await.map(drop);
        expect_field("DecideReview", result, field).await;
    }
    let result = reviews
        .decide_reviews(pb::DecideReviewsRequest {
            decisions: (0..10_000)
                .map(|_| pb::BulkDecision {
                    review_id: some_id.clone(),
                    decision: pb::ReviewDecision::Approve as i32,
                    ..Default::default()
                })
                .collect(),
            moderator_id: String::new(),
        })
        .await
        .map(drop);
    expect_field("DecideReviews", result, "decisions").await;
    let result = reviews
        .release_reviews(pb::ReleaseReviewsRequest {
            review_ids: vec![some_id.clone(); 10_000],
            moderator_id: String::new(),
        })
        .await
        .map(drop);
    expect_field("ReleaseReviews", result, "review_ids").await;
    let result = reviews
        .reopen_comment(pb::ReopenCommentRequest {
            comment_id: some_id.clone(),
            note: long(),
            ..Default::default()
        })
        .await
        .map(drop);
    expect_field("ReopenComment", result, "note").await;
    for (field, request) in [
        (
            "author_id",
            pb::SetAuthorStandingRequest {
                author_id: long(),
                standing: pb::AuthorStanding::Banned as i32,
                ..Default::default()
            },
        ),
        (
            "reason",
            pb::SetAuthorStandingRequest {
                author_id: "a".into(),
                standing: pb::AuthorStanding::Banned as i32,
                reason: long(),
                ..Default::default()
            },
        ),
    ] {
        let result = reviews.set_author_standing(request).await.map(drop);
        expect_field("SetAuthorStanding", result, field).await;
    }
    let result = reviews
        .get_author(pb::GetAuthorRequest {
            author_id: long(),
            page_size: 10,
        })
        .await
        .map(drop);
    expect_field("GetAuthor", result, "author_id").await;

    let result = admin
        .test_rules(pb::TestRulesRequest {
            body: "x".repeat(100_001),
        })
        .await
        .map(drop);
    expect_field("TestRules", result, "body").await;
    for (field, request) in [
        (
            "actor",
            pb::ListAuditEventsRequest {
                actor: long(),
                ..Default::default()
            },
        ),
        (
            "action",
            pb::ListAuditEventsRequest {
                action: long(),
                ..Default::default()
            },
        ),
        (
            "author_id",
            pb::ListAuditEventsRequest {
                author_id: long(),
                ..Default::default()
            },
        ),
        (
            "page_token",
            pb::ListAuditEventsRequest {
                page_token: long(),
                ..Default::default()
            },
        ),
    ] {
        let result = admin.list_audit_events(request).await.map(drop);
        expect_field("ListAuditEvents", result, field).await;
    }
    let result = admin
        .export_author(pb::ExportAuthorRequest { author_id: long() })
        .await
        .map(drop);
    expect_field("ExportAuthor", result, "author_id").await;
    let result = admin
        .erase_author(pb::EraseAuthorRequest { author_id: long() })
        .await
        .map(drop);
    expect_field("EraseAuthor", result, "author_id").await;

    // Nothing was written by any of them.
    let listed = comments
        .list_comments(pb::ListCommentsRequest {
            article_id: "a-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.comments.is_empty());
}
