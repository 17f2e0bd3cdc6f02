//! `CommentService.WatchDecisions`: a resumable, gap-free stream of every
//! change of the tenant's comments.

use std::time::Duration;

use moderato::domain::Role;
use moderato::grpc::pb::{self, CommentStatus, ReviewDecision};
use tonic::{Code, Streaming};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, database_url_for, spawn_app, spawn_app_on};

backend_tests!(
    a_stream_resumes_exactly_after_its_cursor,
    replicas_stream_each_others_events,
    streams_are_per_tenant_and_checked,
    the_queue_stream_shows_comments_entering_and_leaving,
    a_stream_resumes_after_a_restart,
);

async fn watch(app: &TestApp, key: &str, after: i64) -> Streaming<pb::WatchDecisionsResponse> {
    app.comments(key)
        .await
        .watch_decisions(pb::WatchDecisionsRequest {
            after_sequence: after,
        })
        .await
        .unwrap()
        .into_inner()
}

async fn next(stream: &mut Streaming<pb::WatchDecisionsResponse>) -> pb::WatchDecisionsResponse {
    tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("an event within 5 s")
        .unwrap()
        .expect("the stream stays open")
}

async fn nothing_more(stream: &mut Streaming<pb::WatchDecisionsResponse>) {
    // Longer than the streams' polling period.
    let more = tokio::time::timeout(Duration::from_millis(1500), stream.message()).await;
    assert!(more.is_err(), "no further event: {more:?}");
}

async fn submit(app: &TestApp, key: &str, author: &str, body: &str) -> pb::Comment {
    crate::helpers::submit_on(app, key, "budget", author, body).await
}

async fn a_stream_resumes_exactly_after_its_cursor(backend: Backend) {
    let app = spawn_app(backend).await;
    app.premoderate().await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let moderator = app.key_for("default", Role::Moderator).await;

    let mut stream = watch(&app, &publisher, 0).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            submit(
                &app,
                &publisher,
                &format!("r{i}"),
                &format!("Avis {i} sur la dette."),
            )
            .await
            .comment_id,
        );
    }
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(next(&mut stream).await);
    }
    assert_eq!(
        first.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let mut seen: Vec<_> = first.iter().map(|e| e.comment_id.clone()).collect();
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
    assert!(
        first
            .iter()
            .all(|e| e.status == CommentStatus::PendingReview as i32
                && e.previous_status == CommentStatus::Unspecified as i32
                && e.queued
                && e.version == 1)
    );
    drop(stream);

    // While disconnected: a decision and a new comment.
    let mut reviews = app.reviews(&moderator).await;
    let item = reviews
        .claim_reviews(pb::ClaimReviewsRequest {
            max_items: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .items
        .remove(0);
    reviews
        .decide_review(pb::DecideReviewRequest {
            review_id: item.review_id.clone(),
            decision: ReviewDecision::Approve as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    let later = submit(&app, &publisher, "r9", "Et les salaires des enseignants ?").await;

    let mut stream = watch(&app, &publisher, 3).await;
    let decided = next(&mut stream).await;
    assert_eq!(decided.sequence, 4);
    assert_eq!(decided.comment_id, item.comment.unwrap().comment_id);
    assert_eq!(
        (
            decided.previous_status,
            decided.status,
            decided.queued,
            decided.version
        ),
        (
            CommentStatus::PendingReview as i32,
            CommentStatus::Approved as i32,
            false,
            2
        )
    );
    let created = next(&mut stream).await;
    assert_eq!(
        (created.sequence, created.comment_id.as_str()),
        (5, later.comment_id.as_str())
    );
    nothing_more(&mut stream).await;

    // Live, on the same stream.
    let live = submit(
        &app,
        &publisher,
        "r10",
        "Le budget de l'éducation suit-il ?",
    )
    .await;
    let event = next(&mut stream).await;
    assert_eq!((event.sequence, event.comment_id), (6, live.comment_id));
}

async fn replicas_stream_each_others_events(backend: Backend) {
    let first = spawn_app(backend).await;
    let second = spawn_app_on(tempfile::tempdir().unwrap(), first.database_url.clone()).await;
    let publisher = first.key_for("default", Role::Publisher).await;
    let mut on_first = watch(&first, &publisher, 0).await;
    let mut on_second = watch(&second, &publisher, 0).await;
    for i in 0..6 {
        let app = if i % 2 == 0 { &first } else { &second };
        submit(
            app,
            &publisher,
            &format!("r{i}"),
            &format!("Remarque {i} sur le budget."),
        )
        .await;
    }
    let mut a = Vec::new();
    let mut b = Vec::new();
    for _ in 0..6 {
        a.push(next(&mut on_first).await);
        b.push(next(&mut on_second).await);
    }
    assert_eq!(
        a.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        (1..=6).collect::<Vec<_>>()
    );
    assert_eq!(
        a, b,
        "every replica streams the same events in the same order"
    );
}

async fn streams_are_per_tenant_and_checked(backend: Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let elsewhere = app.key_for("elsewhere", Role::Publisher).await;
    let mut theirs = watch(&app, &elsewhere, 0).await;
    submit(&app, &publisher, "r1", "Un avis pour le premier éditeur.").await;
    nothing_more(&mut theirs).await;
    let own = submit(&app, &elsewhere, "r1", "Un avis pour le second éditeur.").await;
    let event = next(&mut theirs).await;
    assert_eq!(
        (event.sequence, event.comment_id),
        (1, own.comment_id),
        "its own numbering"
    );

    let err = app
        .comments(&publisher)
        .await
        .watch_decisions(pb::WatchDecisionsRequest { after_sequence: -1 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(crate::helpers::violated_field(&err), "after_sequence");
    let err = app
        .comments_without_key()
        .await
        .watch_decisions(pb::WatchDecisionsRequest { after_sequence: 0 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

async fn the_queue_stream_shows_comments_entering_and_leaving(backend: Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let moderator = app.key_for("default", Role::Moderator).await;
    let mut queue = app
        .reviews(&moderator)
        .await
        .watch_queue(pb::WatchQueueRequest { after_sequence: 0 })
        .await
        .unwrap()
        .into_inner();
    let next_move = async |queue: &mut Streaming<pb::WatchQueueResponse>| {
        tokio::time::timeout(Duration::from_secs(5), queue.message())
            .await
            .expect("a queue change within 5 s")
            .unwrap()
            .expect("the stream stays open")
    };

    // Published on arrival (event 1): not a queue change.
    let published = submit(
        &app,
        &publisher,
        "ama",
        "Bonne analyse des comptes publics.",
    )
    .await;
    app.comments(&publisher)
        .await
        .report_comment(pb::ReportCommentRequest {
            comment_id: published.comment_id.clone(),
            reporter_id: "r1".into(),
            reason: pb::ReportReason::Illegal as i32,
            detail: String::new(),
        })
        .await
        .unwrap();
    let entered = next_move(&mut queue).await;
    assert_eq!(
        (
            entered.sequence,
            entered.r#move,
            entered.comment_id.as_str()
        ),
        (
            2,
            pb::QueueMove::Entered as i32,
            published.comment_id.as_str()
        )
    );
    assert_eq!(entered.status, CommentStatus::PendingReview as i32);

    let mut reviews = app.reviews(&moderator).await;
    let item = reviews
        .claim_reviews(pb::ClaimReviewsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items
        .remove(0);
    reviews
        .decide_review(pb::DecideReviewRequest {
            review_id: item.review_id,
            decision: ReviewDecision::Reject as i32,
            spam_label: pb::SpamLabel::Skip as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    let left = next_move(&mut queue).await;
    assert_eq!(
        (left.sequence, left.r#move, left.status),
        (
            3,
            pb::QueueMove::Left as i32,
            CommentStatus::Rejected as i32
        )
    );

    let publisher_err = app
        .reviews(&publisher)
        .await
        .watch_queue(pb::WatchQueueRequest { after_sequence: 0 })
        .await
        .unwrap_err();
    assert_eq!(publisher_err.code(), Code::PermissionDenied);
    let err = reviews
        .watch_queue(pb::WatchQueueRequest { after_sequence: -5 })
        .await
        .unwrap_err();
    assert_eq!(crate::helpers::violated_field(&err), "after_sequence");
}

async fn a_stream_resumes_after_a_restart(backend: Backend) {
    let database = tempfile::tempdir().unwrap();
    let url = database_url_for(backend, &database).await;
    let before = spawn_app_on(tempfile::tempdir().unwrap(), url.clone()).await;
    let publisher = before.key_for("default", Role::Publisher).await;
    let mut stream = watch(&before, &publisher, 0).await;
    submit(
        &before,
        &publisher,
        "r1",
        "Premier avis avant le redémarrage.",
    )
    .await;
    let seen = next(&mut stream).await;
    let missed = submit(
        &before,
        &publisher,
        "r2",
        "Second avis juste avant l'arrêt.",
    )
    .await;
    drop(stream);
    before.stop().await.unwrap();

    let after = spawn_app_on(tempfile::tempdir().unwrap(), url).await;
    let mut stream = watch(&after, &publisher, seen.sequence).await;
    let event = next(&mut stream).await;
    assert_eq!(
        (event.sequence, event.comment_id),
        (seen.sequence + 1, missed.comment_id),
        "committed before the stop, numbered and delivered after the restart"
    );
    let live = submit(&after, &publisher, "r3", "Un avis après le redémarrage.").await;
    let event = next(&mut stream).await;
    assert_eq!(
        (event.sequence, event.comment_id),
        (seen.sequence + 2, live.comment_id)
    );
}
