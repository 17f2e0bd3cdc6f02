//! `CommentService.ReportComment`: reader reports send published comments
//! back to the review queue.

use moderato::domain::Role;
use moderato::grpc::pb::{self, CommentStatus, ReportReason};
use tonic::Code;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, comment, spawn_app, violated_field};

backend_tests!(
    reports_requeue_a_published_comment_at_the_threshold,
    reported_comments_are_withdrawn_when_the_tenant_says_so,
    illegal_content_goes_back_at_once_withdrawn,
    concurrent_reports_requeue_a_comment_once,
    bad_reports_are_refused_and_floods_limited,
);

async fn published(app: &TestApp, key: &str, author: &str, body: &str) -> pb::Comment {
    let stored = app
        .comments(key)
        .await
        .submit_comment(comment("elections", author, body))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(stored.status, CommentStatus::Approved as i32, "{stored:?}");
    stored
}

fn report(comment_id: &str, reporter: &str, reason: ReportReason) -> pb::ReportCommentRequest {
    pb::ReportCommentRequest {
        comment_id: comment_id.into(),
        reporter_id: reporter.into(),
        reason: reason as i32,
        detail: "propos déplacés".into(),
    }
}

async fn queue(app: &TestApp, key: &str) -> Vec<pb::ReviewItem> {
    app.reviews(key)
        .await
        .list_review_queue(pb::ListReviewQueueRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items
}

async fn reports_requeue_a_published_comment_at_the_threshold(backend: Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let moderator = app.key_for("default", Role::Moderator).await;
    let mut comments = app.comments(&publisher).await;
    let target = published(
        &app,
        &publisher,
        "ama",
        "La commission électorale a bien travaillé.",
    )
    .await;
    let id = target.comment_id.as_str();

    let first = comments
        .report_comment(report(id, "r1", ReportReason::Offensive))
        .await
        .unwrap()
        .into_inner();
    assert!(first.recorded && !first.requeued);
    assert_eq!(first.report_count, 1);
    let again = comments
        .report_comment(report(id, "r1", ReportReason::Spam))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.recorded, "one report per reader and comment");
    assert_eq!(again.report_count, 1);
    assert!(queue(&app, &moderator).await.is_empty());

    comments
        .report_comment(report(id, "r2", ReportReason::Spam))
        .await
        .unwrap();
    let third = comments
        .report_comment(report(id, "r3", ReportReason::Offensive))
        .await
        .unwrap()
        .into_inner();
    assert!(third.recorded && third.requeued);
    assert_eq!(third.report_count, 3);
    let after = third.comment.unwrap();
    assert_eq!(
        after.status,
        CommentStatus::Approved as i32,
        "stays published by default"
    );
    let reason = after.reasons.last().unwrap();
    assert_eq!(reason.code, "report.threshold");
    assert_eq!(
        reason.message,
        "3 readers reported it (offensive 2, spam 1)"
    );

    let items = queue(&app, &moderator).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].comment.as_ref().unwrap().comment_id, id);

    let fourth = comments
        .report_comment(report(id, "r4", ReportReason::Harassment))
        .await
        .unwrap()
        .into_inner();
    assert!(fourth.recorded && !fourth.requeued, "already in the queue");
    assert_eq!(queue(&app, &moderator).await.len(), 1);

    // The moderator decides; the decision is final for the reports.
    let mut reviews = app.reviews(&moderator).await;
    let claimed = reviews
        .claim_reviews(pb::ClaimReviewsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    let decided = reviews
        .decide_review(pb::DecideReviewRequest {
            review_id: claimed[0].review_id.clone(),
            decision: pb::ReviewDecision::Reject as i32,
            spam_label: pb::SpamLabel::Skip as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(decided.status, CommentStatus::Rejected as i32);

    let audit = app
        .admin(&moderator)
        .await
        .list_audit_events(pb::ListAuditEventsRequest {
            comment_id: id.into(),
            oldest_first: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    let actions: Vec<_> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "comment.created",
            "comment.reported",
            "comment.reported",
            "comment.reported",
            "comment.requeued",
            "comment.reported",
            "review.claimed",
            "comment.reviewed",
        ]
    );
    let requeued = &audit[4];
    assert_eq!(
        (requeued.from_state.as_str(), requeued.to_state.as_str()),
        ("approved", "approved")
    );
}

async fn reported_comments_are_withdrawn_when_the_tenant_says_so(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.admin_key).await;
    let err = admin
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            report_threshold: Some(0),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "report_threshold");
    let settings = admin
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            report_threshold: Some(2),
            hide_reported: Some(true),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(
        (settings.report_threshold, settings.hide_reported),
        (2, true)
    );

    let publisher = app.key_for("default", Role::Publisher).await;
    let target = published(
        &app,
        &publisher,
        "ama",
        "Le dépouillement a duré toute la nuit.",
    )
    .await;
    let mut comments = app.comments(&publisher).await;
    for reporter in ["r1", "r2"] {
        comments
            .report_comment(report(
                &target.comment_id,
                reporter,
                ReportReason::Offensive,
            ))
            .await
            .unwrap();
    }
    let published_now = comments
        .list_comments(pb::ListCommentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .comments;
    assert!(
        published_now
            .iter()
            .all(|c| c.comment_id != target.comment_id),
        "withdrawn until decided"
    );
    let stored = comments
        .get_comment(pb::GetCommentRequest {
            comment_id: target.comment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(stored.status, CommentStatus::PendingReview as i32);

    let moderator = app.key_for("default", Role::Moderator).await;
    let mut reviews = app.reviews(&moderator).await;
    let claimed = reviews
        .claim_reviews(pb::ClaimReviewsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    reviews
        .decide_review(pb::DecideReviewRequest {
            review_id: claimed[0].review_id.clone(),
            decision: pb::ReviewDecision::Approve as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    let published_again = comments
        .list_comments(pb::ListCommentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .comments;
    assert!(
        published_again
            .iter()
            .any(|c| c.comment_id == target.comment_id)
    );
}

async fn illegal_content_goes_back_at_once_withdrawn(backend: Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let moderator = app.key_for("default", Role::Moderator).await;
    app.premoderate().await;
    let held = app
        .comments(&publisher)
        .await
        .submit_comment(comment(
            "elections",
            "kofi",
            "Un avis tout à fait ordinaire.",
        ))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(held.status, CommentStatus::PendingReview as i32);
    app.admin(&app.admin_key)
        .await
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            moderation_mode: Some(pb::ModerationMode::Post as i32),
            ..Default::default()
        })
        .await
        .unwrap();
    let target = published(
        &app,
        &publisher,
        "ama",
        "Voici l'adresse personnelle du juge.",
    )
    .await;

    let reported = app
        .comments(&publisher)
        .await
        .report_comment(report(&target.comment_id, "r1", ReportReason::Illegal))
        .await
        .unwrap()
        .into_inner();
    assert!(reported.requeued);
    let after = reported.comment.unwrap();
    assert_eq!(after.status, CommentStatus::PendingReview as i32);
    assert_eq!(after.reasons.last().unwrap().code, "report.illegal");

    let items = queue(&app, &moderator).await;
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0].comment.as_ref().unwrap().comment_id,
        target.comment_id,
        "illegal content is reviewed first"
    );

    // A held comment is already in the queue: a report changes nothing.
    let on_held = app
        .comments(&publisher)
        .await
        .report_comment(report(&held.comment_id, "r1", ReportReason::Illegal))
        .await
        .unwrap()
        .into_inner();
    assert!(on_held.recorded && !on_held.requeued);
    assert_eq!(queue(&app, &moderator).await.len(), 2);
}

async fn concurrent_reports_requeue_a_comment_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let moderator = app.key_for("default", Role::Moderator).await;
    let target = published(
        &app,
        &publisher,
        "ama",
        "Les résultats provisoires sont tombés.",
    )
    .await;
    let calls = (0..12).map(|i| {
        let (app, publisher, id) = (&app, &publisher, target.comment_id.clone());
        async move {
            app.comments(publisher)
                .await
                .report_comment(report(&id, &format!("reader-{i}"), ReportReason::Offensive))
                .await
                .unwrap()
                .into_inner()
        }
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|r| r.recorded));
    assert_eq!(results.iter().filter(|r| r.requeued).count(), 1);
    let mut counts: Vec<_> = results.iter().map(|r| r.report_count).collect();
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=12).collect::<Vec<_>>(),
        "serialised per comment"
    );
    assert_eq!(queue(&app, &moderator).await.len(), 1);
}

async fn bad_reports_are_refused_and_floods_limited(backend: Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let target = published(
        &app,
        &publisher,
        "ama",
        "Bravo aux observateurs de la société civile.",
    )
    .await;
    let id = target.comment_id.as_str();
    let mut comments = app.comments(&publisher).await;
    let with = |f: &dyn Fn(&mut pb::ReportCommentRequest)| {
        let mut request = report(id, "r1", ReportReason::Spam);
        f(&mut request);
        request
    };
    for (request, field) in [
        (with(&|r| r.comment_id = "nope".into()), "comment_id"),
        (with(&|r| r.reporter_id.clear()), "reporter_id"),
        (with(&|r| r.reason = 0), "reason"),
        (with(&|r| r.reason = 99), "reason"),
        (with(&|r| r.detail = "x".repeat(2001)), "detail"),
    ] {
        let err = comments.report_comment(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(violated_field(&err), field);
    }
    let err = comments
        .report_comment(report(
            &uuid::Uuid::now_v7().to_string(),
            "r1",
            ReportReason::Spam,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let elsewhere = app.key_for("elsewhere", Role::Publisher).await;
    let err = app
        .comments(&elsewhere)
        .await
        .report_comment(report(id, "r1", ReportReason::Spam))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "another tenant's comment");
    let moderator = app.key_for("default", Role::Moderator).await;
    let err = app
        .comments(&moderator)
        .await
        .report_comment(report(id, "r1", ReportReason::Spam))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = app
        .comments_without_key()
        .await
        .report_comment(report(id, "r1", ReportReason::Spam))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // One reader, twenty reports an hour at most (on twenty comments).
    let mut ids = vec![target.comment_id.clone()];
    for i in 1..21 {
        // Whatever their status: reports are limited per reader, not per comment.
        ids.push(
            comments
                .submit_comment(comment(
                    "elections",
                    &format!("reader-{i}"),
                    &format!("Le bureau de vote numéro {i} a fermé à l'heure."),
                ))
                .await
                .unwrap()
                .into_inner()
                .comment
                .unwrap()
                .comment_id,
        );
    }
    for id in &ids[..20] {
        comments
            .report_comment(report(id, "troll", ReportReason::Other))
            .await
            .unwrap();
    }
    let err = comments
        .report_comment(report(&ids[20], "troll", ReportReason::Other))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    let other_reader = comments
        .report_comment(report(&ids[20], "someone-else", ReportReason::Other))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        other_reader.report_count, 1,
        "the refused report was not stored"
    );
}
