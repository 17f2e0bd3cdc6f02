use std::collections::HashSet;
use std::time::Duration;

use moderato::domain::Role;
use moderato::grpc::pb::{self, CommentStatus, ReviewDecision};
use tonic::Code;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, comment, spawn_app, violated_field};

backend_tests!(
    a_moderator_claims_and_decides_held_comments,
    claims_come_highest_priority_then_oldest_first,
    deciding_needs_the_claim_and_happens_once,
    twenty_concurrent_claimers_never_share_an_item,
    an_expired_lease_returns_the_item_to_the_queue,
    released_items_can_be_claimed_again,
    review_requests_are_validated,
    every_state_change_is_audited,
    the_queue_is_ordered_and_filtered_over_the_api,
    a_stale_decision_is_aborted_and_changes_nothing,
    bulk_decisions_answer_for_each_item,
    bulk_decisions_are_validated_as_a_whole,
    bulk_and_single_decisions_race_without_double_work,
    a_decision_is_reversed_and_the_comment_queued_again,
);

/// Tenant `default` in pre-moderation with `n` held comments; returns a moderator key.
async fn held_comments(app: &TestApp, n: usize) -> String {
    app.premoderate().await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let mut client = app.comments(&publisher).await;
    for i in 0..n {
        client
            .submit_comment(comment(
                &format!("article-{}", i % 3),
                // One author each: a burst from one author is a spam signal,
                // and these tests are about the queue.
                &format!("r{i}"),
                &format!("Le budget {i} doit être discuté à l'assemblée"),
            ))
            .await
            .unwrap();
    }
    app.key_for("default", Role::Moderator).await
}

fn claim(max_items: i32, moderator: &str) -> pb::ClaimReviewsRequest {
    pb::ClaimReviewsRequest {
        max_items,
        lease_seconds: 0,
        moderator_id: moderator.to_owned(),
        ..Default::default()
    }
}

fn decide(review_id: &str, decision: ReviewDecision, moderator: &str) -> pb::DecideReviewRequest {
    pb::DecideReviewRequest {
        review_id: review_id.to_owned(),
        decision: decision as i32,
        note: "vu".into(),
        moderator_id: moderator.to_owned(),
        spam_label: pb::SpamLabel::Unspecified as i32,
        ..Default::default()
    }
}

async fn a_moderator_claims_and_decides_held_comments(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = held_comments(&app, 2).await;
    let mut reviews = app.reviews(&moderator).await;

    let items = reviews
        .claim_reviews(claim(10, "awa"))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .all(|i| i.claimed_by == "awa" && i.lease_expire_time.is_some())
    );

    let approved = reviews
        .decide_review(decide(&items[0].review_id, ReviewDecision::Approve, "awa"))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    let rejected = reviews
        .decide_review(decide(&items[1].review_id, ReviewDecision::Reject, "awa"))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(approved.status, CommentStatus::Approved as i32);
    assert_eq!(rejected.status, CommentStatus::Rejected as i32);
    assert!(approved.reasons.iter().any(|r| r.code == "review.decision"));

    let published = app
        .comments(&moderator)
        .await
        .list_comments(pb::ListCommentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .comments;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].comment_id, approved.comment_id);
    let queue = reviews
        .list_review_queue(pb::ListReviewQueueRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(queue.items.is_empty(), "decided items leave the queue");
}

async fn claims_come_highest_priority_then_oldest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = held_comments(&app, 5).await;
    let mut reviews = app.reviews(&moderator).await;

    let listed = reviews
        .list_review_queue(pb::ListReviewQueueRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.items.len(), 2);
    assert!(!listed.next_page_token.is_empty());
    let mut all: Vec<pb::ReviewItem> = listed.items;
    let mut token = listed.next_page_token;
    while !token.is_empty() {
        let page = reviews
            .list_review_queue(pb::ListReviewQueueRequest {
                page_size: 2,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(page.items);
        token = page.next_page_token;
    }
    assert_eq!(all.len(), 5);
    // Priority (from the spam score) first, then age.
    let order: Vec<(i32, i64, i32)> = all
        .iter()
        .map(|i| {
            let t = i.enqueue_time.unwrap();
            (-i.priority, t.seconds, t.nanos)
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    let mut bodies: Vec<_> = all
        .iter()
        .map(|i| i.comment.as_ref().unwrap().body.clone())
        .collect();
    bodies.sort();
    let mut expected: Vec<_> = (0..5)
        .map(|i| format!("Le budget {i} doit être discuté à l'assemblée"))
        .collect();
    expected.sort();
    assert_eq!(bodies, expected);

    let claimed = reviews
        .claim_reviews(claim(3, ""))
        .await
        .unwrap()
        .into_inner()
        .items;
    let claimed_ids: Vec<_> = claimed.iter().map(|i| i.review_id.clone()).collect();
    let oldest: Vec<_> = all[..3].iter().map(|i| i.review_id.clone()).collect();
    assert_eq!(claimed_ids, oldest);
    assert!(
        claimed[0].claimed_by.starts_with("key:"),
        "without a moderator id the key holds the claim"
    );

    let article = reviews
        .list_review_queue(pb::ListReviewQueueRequest {
            article_id: "article-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(article.items.len(), 2);
    assert!(
        article
            .items
            .iter()
            .all(|i| i.comment.as_ref().unwrap().article_id == "article-1")
    );
}

async fn deciding_needs_the_claim_and_happens_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = held_comments(&app, 2).await;
    let mut reviews = app.reviews(&moderator).await;
    let queue = reviews
        .list_review_queue(pb::ListReviewQueueRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;

    let unclaimed = reviews
        .decide_review(decide(&queue[0].review_id, ReviewDecision::Approve, "awa"))
        .await
        .unwrap_err();
    assert_eq!(unclaimed.code(), Code::FailedPrecondition);

    let items = reviews
        .claim_reviews(claim(1, "awa"))
        .await
        .unwrap()
        .into_inner()
        .items;
    let someone_else = reviews
        .decide_review(decide(
            &items[0].review_id,
            ReviewDecision::Approve,
            "binta",
        ))
        .await
        .unwrap_err();
    assert_eq!(someone_else.code(), Code::FailedPrecondition);

    reviews
        .decide_review(decide(&items[0].review_id, ReviewDecision::Reject, "awa"))
        .await
        .unwrap();
    let twice = reviews
        .decide_review(decide(&items[0].review_id, ReviewDecision::Approve, "awa"))
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    let comment = app
        .comments(&moderator)
        .await
        .get_comment(pb::GetCommentRequest {
            comment_id: items[0].comment.as_ref().unwrap().comment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(
        comment.status,
        CommentStatus::Rejected as i32,
        "the second decision changed nothing"
    );

    let missing = reviews
        .decide_review(decide(
            &uuid::Uuid::now_v7().to_string(),
            ReviewDecision::Approve,
            "awa",
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

async fn twenty_concurrent_claimers_never_share_an_item(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = held_comments(&app, 60).await;
    let client = app.reviews(&moderator).await;

    let claimers = (0..20).map(|i| {
        let mut client = client.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let items = client
                    .claim_reviews(claim(2, &format!("moderator-{i}")))
                    .await
                    .expect("claims succeed under contention")
                    .into_inner()
                    .items;
                if items.is_empty() {
                    return mine;
                }
                mine.extend(items.into_iter().map(|item| item.review_id));
            }
        })
    });
    let mut all = Vec::new();
    for claimer in futures::future::join_all(claimers).await {
        all.extend(claimer.unwrap());
    }

    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 60, "every item was claimed exactly once");
    assert_eq!(distinct.len(), 60);
}

async fn an_expired_lease_returns_the_item_to_the_queue(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = held_comments(&app, 1).await;
    let mut reviews = app.reviews(&moderator).await;

    let first = reviews
        .claim_reviews(pb::ClaimReviewsRequest {
            max_items: 1,
            lease_seconds: 1,
            moderator_id: "awa".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(first.len(), 1);
    assert!(
        reviews
            .claim_reviews(claim(1, "binta"))
            .await
            .unwrap()
            .into_inner()
            .items
            .is_empty()
    );

    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let second = reviews
        .claim_reviews(claim(1, "binta"))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].review_id, first[0].review_id);

    let stale = reviews
        .decide_review(decide(&first[0].review_id, ReviewDecision::Approve, "awa"))
        .await
        .unwrap_err();
    assert_eq!(
        stale.code(),
        Code::FailedPrecondition,
        "a lost lease cannot decide"
    );
    reviews
        .decide_review(decide(
            &first[0].review_id,
            ReviewDecision::Approve,
            "binta",
        ))
        .await
        .unwrap();
}

async fn released_items_can_be_claimed_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = held_comments(&app, 2).await;
    let mut reviews = app.reviews(&moderator).await;
    let items = reviews
        .claim_reviews(claim(2, "awa"))
        .await
        .unwrap()
        .into_inner()
        .items;
    let ids: Vec<String> = items.iter().map(|i| i.review_id.clone()).collect();

    let not_mine = reviews
        .release_reviews(pb::ReleaseReviewsRequest {
            review_ids: ids.clone(),
            moderator_id: "binta".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(not_mine.code(), Code::FailedPrecondition);
    let unknown = reviews
        .release_reviews(pb::ReleaseReviewsRequest {
            review_ids: vec![ids[0].clone(), uuid::Uuid::now_v7().to_string()],
            moderator_id: "awa".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(
        reviews
            .claim_reviews(claim(2, "binta"))
            .await
            .unwrap()
            .into_inner()
            .items
            .is_empty(),
        "a refused release releases nothing"
    );

    let released = reviews
        .release_reviews(pb::ReleaseReviewsRequest {
            review_ids: ids.clone(),
            moderator_id: "awa".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .review_ids;
    assert_eq!(released.len(), 2);
    let again = reviews
        .claim_reviews(claim(2, "binta"))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(again.len(), 2);
}

async fn review_requests_are_validated(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = held_comments(&app, 1).await;
    let mut reviews = app.reviews(&moderator).await;

    let err = reviews.claim_reviews(claim(101, "")).await.unwrap_err();
    assert_eq!(violated_field(&err), "max_items");
    let err = reviews
        .claim_reviews(pb::ClaimReviewsRequest {
            lease_seconds: 7200,
            ..claim(1, "")
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "lease_seconds");
    let err = reviews
        .claim_reviews(claim(1, "key:forged"))
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "moderator_id");
    let items = reviews
        .claim_reviews(claim(1, "awa"))
        .await
        .unwrap()
        .into_inner()
        .items;
    let err = reviews
        .decide_review(decide(
            &items[0].review_id,
            ReviewDecision::Unspecified,
            "awa",
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "decision");
    let err = reviews
        .decide_review(decide("not-an-id", ReviewDecision::Approve, "awa"))
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "review_id");
    let err = reviews
        .release_reviews(pb::ReleaseReviewsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "review_ids");
}

async fn every_state_change_is_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = held_comments(&app, 1).await;
    let mut reviews = app.reviews(&moderator).await;
    let item = reviews
        .claim_reviews(claim(1, "awa"))
        .await
        .unwrap()
        .into_inner()
        .items
        .remove(0);
    reviews
        .release_reviews(pb::ReleaseReviewsRequest {
            review_ids: vec![item.review_id.clone()],
            moderator_id: "awa".into(),
        })
        .await
        .unwrap();
    reviews.claim_reviews(claim(1, "awa")).await.unwrap();
    reviews
        .decide_review(decide(&item.review_id, ReviewDecision::Approve, "awa"))
        .await
        .unwrap();

    let tenant = app
        .store
        .find_tenant(&moderato::domain::TenantName::parse("default").unwrap())
        .await
        .unwrap()
        .unwrap();
    let comment_id = item.comment.unwrap().comment_id;
    let comment_events = app
        .store
        .list_audit_events(tenant, &moderato::storage::AuditQuery::subject(&comment_id))
        .await
        .unwrap();
    let transitions: Vec<_> = comment_events
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.from_state.as_deref(),
                e.to_state.as_deref(),
                e.actor.as_str(),
            )
        })
        .collect();
    assert_eq!(transitions[0].0, "comment.created");
    assert_eq!(transitions[0].2, Some("pending_review"));
    assert!(transitions[0].3.starts_with("key:"));
    assert_eq!(
        transitions[1],
        (
            "comment.reviewed",
            Some("pending_review"),
            Some("approved"),
            "awa"
        )
    );
    assert_eq!(comment_events[1].detail["note"], "vu");

    let review_events: Vec<_> = app
        .store
        .list_audit_events(
            tenant,
            &moderato::storage::AuditQuery::subject(&item.review_id),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        review_events,
        ["review.claimed", "review.released", "review.claimed"]
    );
}

async fn the_queue_is_ordered_and_filtered_over_the_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = held_comments(&app, 4).await;
    let mut reviews = app.reviews(&moderator).await;
    let listed = |request: pb::ListReviewQueueRequest| {
        let app = &app;
        let moderator = moderator.clone();
        async move {
            app.reviews(&moderator)
                .await
                .list_review_queue(request)
                .await
                .unwrap()
                .into_inner()
        }
    };
    let oldest = listed(pb::ListReviewQueueRequest {
        order: pb::QueueOrder::OldestFirst as i32,
        ..Default::default()
    })
    .await
    .items;
    let newest = listed(pb::ListReviewQueueRequest {
        order: pb::QueueOrder::NewestFirst as i32,
        ..Default::default()
    })
    .await
    .items;
    assert_eq!(oldest.len(), 4);
    assert_eq!(
        oldest
            .iter()
            .rev()
            .map(|i| &i.review_id)
            .collect::<Vec<_>>(),
        newest.iter().map(|i| &i.review_id).collect::<Vec<_>>()
    );
    let premoderated = listed(pb::ListReviewQueueRequest {
        reason_code: "tenant.premoderation".into(),
        ..Default::default()
    })
    .await
    .items;
    assert_eq!(premoderated.len(), 4);
    assert!(
        listed(pb::ListReviewQueueRequest {
            reason_code: "report.illegal".into(),
            ..Default::default()
        })
        .await
        .items
        .is_empty()
    );
    assert!(
        listed(pb::ListReviewQueueRequest {
            reported_only: true,
            ..Default::default()
        })
        .await
        .items
        .is_empty()
    );

    let newest_claim = reviews
        .claim_reviews(pb::ClaimReviewsRequest {
            max_items: 1,
            order: pb::QueueOrder::NewestFirst as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(newest_claim[0].review_id, newest[0].review_id);

    let first = listed(pb::ListReviewQueueRequest {
        page_size: 1,
        ..Default::default()
    })
    .await;
    for (request, field) in [
        (
            pb::ListReviewQueueRequest {
                min_spam_score: 1.5,
                ..Default::default()
            },
            "min_spam_score",
        ),
        (
            pb::ListReviewQueueRequest {
                order: 99,
                ..Default::default()
            },
            "order",
        ),
        (
            pb::ListReviewQueueRequest {
                reason_code: "x".repeat(201),
                ..Default::default()
            },
            "reason_code",
        ),
        (
            pb::ListReviewQueueRequest {
                order: pb::QueueOrder::NewestFirst as i32,
                page_size: 1,
                page_token: first.next_page_token.clone(),
                ..Default::default()
            },
            "page_token",
        ),
    ] {
        let err = reviews.list_review_queue(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(violated_field(&err), field);
    }
    let err = reviews
        .claim_reviews(pb::ClaimReviewsRequest {
            min_spam_score: -0.1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "min_spam_score");
}

async fn a_stale_decision_is_aborted_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = held_comments(&app, 1).await;
    let mut reviews = app.reviews(&moderator).await;
    let item = reviews
        .claim_reviews(claim(1, "awa"))
        .await
        .unwrap()
        .into_inner()
        .items
        .remove(0);
    let seen = item.comment.as_ref().unwrap().version;
    assert_eq!(seen, 1);

    let stale = pb::DecideReviewRequest {
        expected_version: seen + 1,
        ..decide(&item.review_id, ReviewDecision::Reject, "awa")
    };
    let err = reviews.decide_review(stale).await.unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert!(err.message().contains("version 1"), "{}", err.message());
    let still = reviews
        .list_review_queue(pb::ListReviewQueueRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(still.len(), 1, "nothing was applied");
    assert_eq!(still[0].claimed_by, "awa");

    for (request, field) in [
        (
            pb::DecideReviewRequest {
                reason_code: "Off Topic".into(),
                ..decide(&item.review_id, ReviewDecision::Reject, "awa")
            },
            "reason_code",
        ),
        (
            pb::DecideReviewRequest {
                expected_version: -1,
                ..decide(&item.review_id, ReviewDecision::Reject, "awa")
            },
            "expected_version",
        ),
    ] {
        let err = reviews.decide_review(request).await.unwrap_err();
        assert_eq!(violated_field(&err), field);
    }

    let decided = reviews
        .decide_review(pb::DecideReviewRequest {
            expected_version: seen,
            reason_code: "off_topic".into(),
            ..decide(&item.review_id, ReviewDecision::Reject, "awa")
        })
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(decided.status, CommentStatus::Rejected as i32);
    assert_eq!(decided.version, 2);
    let reason = decided.reasons.last().unwrap();
    assert_eq!(reason.code, "review.decision");
    assert!(
        reason.message.ends_with("(off_topic)"),
        "{}",
        reason.message
    );
    let stored = app
        .comments(&moderator)
        .await
        .get_comment(pb::GetCommentRequest {
            comment_id: decided.comment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(stored, decided, "the answer is what was stored");
}

fn bulk(review_id: &str, decision: ReviewDecision) -> pb::BulkDecision {
    pb::BulkDecision {
        review_id: review_id.to_owned(),
        decision: decision as i32,
        ..Default::default()
    }
}

async fn bulk_decisions_answer_for_each_item(backend: Backend) {
    use pb::DecisionOutcome as O;
    let app = spawn_app(backend).await;
    let moderator = held_comments(&app, 6).await;
    let mut reviews = app.reviews(&moderator).await;
    let mine = reviews
        .claim_reviews(claim(4, "awa"))
        .await
        .unwrap()
        .into_inner()
        .items;
    let unclaimed = reviews
        .list_review_queue(pb::ListReviewQueueRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items
        .into_iter()
        .find(|item| item.claimed_by.is_empty())
        .unwrap();
    let decisions = vec![
        bulk(&mine[0].review_id, ReviewDecision::Approve),
        pb::BulkDecision {
            reason_code: "off_topic".into(),
            note: "hors sujet".into(),
            ..bulk(&mine[1].review_id, ReviewDecision::Reject)
        },
        pb::BulkDecision {
            expected_version: 5,
            ..bulk(&mine[2].review_id, ReviewDecision::Reject)
        },
        bulk(&unclaimed.review_id, ReviewDecision::Approve),
        bulk(&uuid::Uuid::now_v7().to_string(), ReviewDecision::Approve),
        pb::BulkDecision {
            expected_version: 1,
            ..bulk(&mine[3].review_id, ReviewDecision::Approve)
        },
    ];
    let results = reviews
        .decide_reviews(pb::DecideReviewsRequest {
            decisions: decisions.clone(),
            moderator_id: "awa".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    let outcomes: Vec<_> = results.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            O::Decided,
            O::Decided,
            O::Stale,
            O::NotClaimed,
            O::NotFound,
            O::Decided
        ]
        .map(|o| o as i32)
    );
    assert!(
        results
            .iter()
            .zip(&decisions)
            .all(|(r, d)| r.review_id == d.review_id),
        "in request order"
    );
    assert_eq!(
        results[1].comment.as_ref().unwrap().status,
        CommentStatus::Rejected as i32
    );
    assert!(results[2].comment.is_none() && results[2].message.contains("version 1"));
    let left = reviews
        .list_review_queue(pb::ListReviewQueueRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(
        left.len(),
        3,
        "the stale one, the unclaimed one and one more"
    );

    let again = reviews
        .decide_reviews(pb::DecideReviewsRequest {
            decisions: vec![bulk(&mine[0].review_id, ReviewDecision::Reject)],
            moderator_id: "awa".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(again[0].outcome, O::AlreadyDecided as i32);
}

async fn bulk_decisions_are_validated_as_a_whole(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = held_comments(&app, 1).await;
    let mut reviews = app.reviews(&moderator).await;
    let item = reviews
        .claim_reviews(claim(1, "awa"))
        .await
        .unwrap()
        .into_inner()
        .items
        .remove(0);
    let id = item.review_id.as_str();
    let too_many: Vec<_> = (0..501)
        .map(|_| bulk(&uuid::Uuid::now_v7().to_string(), ReviewDecision::Approve))
        .collect();
    for (decisions, field) in [
        (vec![], "decisions"),
        (too_many, "decisions"),
        (
            vec![
                bulk(id, ReviewDecision::Approve),
                bulk(id, ReviewDecision::Reject),
            ],
            "decisions[1].review_id",
        ),
        (
            vec![
                bulk(id, ReviewDecision::Approve),
                pb::BulkDecision {
                    decision: 0,
                    ..bulk(&uuid::Uuid::now_v7().to_string(), ReviewDecision::Approve)
                },
            ],
            "decisions[1].decision",
        ),
        (
            vec![pb::BulkDecision {
                review_id: "nope".into(),
                ..bulk(id, ReviewDecision::Approve)
            }],
            "decisions[0].review_id",
        ),
    ] {
        let err = reviews
            .decide_reviews(pb::DecideReviewsRequest {
                decisions,
                moderator_id: "awa".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(violated_field(&err), field);
    }
    let queue = reviews
        .list_review_queue(pb::ListReviewQueueRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(queue.len(), 1, "a refused call decides nothing");

    let publisher = app.key_for("default", Role::Publisher).await;
    let err = app
        .reviews(&publisher)
        .await
        .decide_reviews(pb::DecideReviewsRequest {
            decisions: vec![bulk(id, ReviewDecision::Approve)],
            moderator_id: "awa".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

async fn bulk_and_single_decisions_race_without_double_work(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = held_comments(&app, 30).await;
    let items = app
        .reviews(&moderator)
        .await
        .claim_reviews(claim(100, "awa"))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(items.len(), 30);
    let bulk_call = {
        let (app, moderator) = (&app, moderator.clone());
        let decisions: Vec<_> = items
            .iter()
            .map(|i| bulk(&i.review_id, ReviewDecision::Approve))
            .collect();
        async move {
            app.reviews(&moderator)
                .await
                .decide_reviews(pb::DecideReviewsRequest {
                    decisions,
                    moderator_id: "awa".into(),
                })
                .await
                .unwrap()
                .into_inner()
                .results
        }
    };
    let singles = futures::future::join_all(items.iter().map(|item| {
        let (app, moderator) = (&app, moderator.clone());
        let id = item.review_id.clone();
        async move {
            app.reviews(&moderator)
                .await
                .decide_review(decide(&id, ReviewDecision::Reject, "awa"))
                .await
        }
    }));
    let (bulk_results, single_results) = tokio::join!(bulk_call, singles);
    let mut statuses = Vec::new();
    for (b, s) in bulk_results.iter().zip(&single_results) {
        let bulk_won = b.outcome == pb::DecisionOutcome::Decided as i32;
        match s {
            Ok(_) => {
                assert_eq!(b.outcome, pb::DecisionOutcome::AlreadyDecided as i32);
                statuses.push(CommentStatus::Rejected as i32);
            }
            Err(err) => {
                assert_eq!(err.code(), Code::FailedPrecondition);
                assert!(bulk_won, "exactly one decision per item");
                statuses.push(CommentStatus::Approved as i32);
            }
        }
    }
    let audit = app
        .admin(&moderator)
        .await
        .list_audit_events(pb::ListAuditEventsRequest {
            action: "comment.reviewed".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    assert_eq!(audit.len(), 30, "one decision recorded per item");
    for (item, status) in items.iter().zip(statuses) {
        let stored = app
            .comments(&moderator)
            .await
            .get_comment(pb::GetCommentRequest {
                comment_id: item.comment.as_ref().unwrap().comment_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .comment
            .unwrap();
        assert_eq!(stored.status, status, "the winner's decision stands");
        assert_eq!(stored.version, 2);
    }
}

async fn a_decision_is_reversed_and_the_comment_queued_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = held_comments(&app, 1).await;
    let mut reviews = app.reviews(&moderator).await;
    let item = reviews
        .claim_reviews(claim(1, "awa"))
        .await
        .unwrap()
        .into_inner()
        .items
        .remove(0);
    let approved = reviews
        .decide_review(decide(&item.review_id, ReviewDecision::Approve, "awa"))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    let id = approved.comment_id.clone();
    let reopen = |expected_version: i64, note: &str| pb::ReopenCommentRequest {
        comment_id: id.clone(),
        note: note.into(),
        expected_version,
        moderator_id: "kofi".into(),
    };

    let err = reviews
        .reopen_comment(reopen(approved.version - 1, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    let reopened = reviews
        .reopen_comment(reopen(approved.version, "publié par erreur"))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(reopened.status, CommentStatus::PendingReview as i32);
    assert_eq!(reopened.version, approved.version + 1);
    let reason = reopened.reasons.last().unwrap();
    assert_eq!(reason.code, "review.reopened");
    assert_eq!(reason.message, "reopened by kofi: publié par erreur");
    let err = reviews.reopen_comment(reopen(0, "")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "in the queue already");

    // Back in the queue, decided again; the whole history stays.
    let again = reviews
        .claim_reviews(claim(1, "kofi"))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].review_id, item.review_id, "a new review item");
    let rejected = reviews
        .decide_review(decide(&again[0].review_id, ReviewDecision::Reject, "kofi"))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(rejected.status, CommentStatus::Rejected as i32);
    let history: Vec<_> = app
        .admin(&moderator)
        .await
        .list_audit_events(pb::ListAuditEventsRequest {
            comment_id: id.clone(),
            oldest_first: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events
        .into_iter()
        .filter(|e| !e.action.ends_with(".learned"))
        .map(|e| (e.action, e.from_state, e.to_state))
        .collect();
    let step = |a: &str, f: &str, t: &str| (a.to_owned(), f.to_owned(), t.to_owned());
    assert_eq!(
        history,
        [
            step("comment.created", "", "pending_review"),
            step("review.claimed", "open", "claimed"),
            step("comment.reviewed", "pending_review", "approved"),
            step("comment.reopened", "approved", "pending_review"),
            step("review.claimed", "open", "claimed"),
            step("comment.reviewed", "pending_review", "rejected"),
        ]
    );

    for (request, field) in [
        (
            pb::ReopenCommentRequest {
                comment_id: "nope".into(),
                ..reopen(0, "")
            },
            "comment_id",
        ),
        (reopen(0, &"x".repeat(2001)), "note"),
        (reopen(-1, ""), "expected_version"),
    ] {
        let err = reviews.reopen_comment(request).await.unwrap_err();
        assert_eq!(violated_field(&err), field);
    }
    let err = reviews
        .reopen_comment(pb::ReopenCommentRequest {
            comment_id: uuid::Uuid::now_v7().to_string(),
            ..reopen(0, "")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let elsewhere = app.key_for("elsewhere", Role::Moderator).await;
    let err = app
        .reviews(&elsewhere)
        .await
        .reopen_comment(reopen(0, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "another tenant's comment");
    let publisher = app.key_for("default", Role::Publisher).await;
    let err = app
        .reviews(&publisher)
        .await
        .reopen_comment(reopen(0, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}
