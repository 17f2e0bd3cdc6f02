//! `AdminService.ListAuditEvents`: the audit trail, filtered and paged.

use moderato::domain::Role;
use moderato::grpc::pb::{self, ReviewDecision};
use tonic::Code;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, comment, spawn_app, violated_field};

backend_tests!(
    audit_trail_is_filtered_by_comment_author_actor_action_and_time,
    audit_trail_pages_in_both_orders,
    audit_trail_refuses_bad_input_and_other_roles,
    audit_trail_is_per_tenant,
);

/// Three held comments (two by `ama`), all claimed by a moderator, one of
/// `ama`'s approved (which also teaches the spam and toxicity models). Returns the comment
/// ids in submission order.
async fn moderated_history(app: &TestApp, moderator: &str) -> Vec<String> {
    app.premoderate().await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let mut comments = app.comments(&publisher).await;
    let mut ids = Vec::new();
    for (author, body) in [
        ("ama", "Le budget de la santé baisse encore cette année."),
        (
            "kofi",
            "Les routes du nord attendent toujours leurs travaux.",
        ),
        ("ama", "Merci pour cet article sur la dette publique."),
    ] {
        let stored = comments
            .submit_comment(comment("budget", author, body))
            .await
            .unwrap()
            .into_inner()
            .comment
            .unwrap();
        ids.push(stored.comment_id);
    }
    let mut reviews = app.reviews(moderator).await;
    let claimed = reviews
        .claim_reviews(pb::ClaimReviewsRequest {
            max_items: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(claimed.len(), 3);
    let first = claimed
        .iter()
        .find(|item| item.comment.as_ref().unwrap().comment_id == ids[0])
        .unwrap();
    reviews
        .decide_review(pb::DecideReviewRequest {
            review_id: first.review_id.clone(),
            decision: ReviewDecision::Approve as i32,
            note: "Rien à redire.".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    ids
}

async fn list(
    app: &TestApp,
    key: &str,
    request: pb::ListAuditEventsRequest,
) -> Vec<pb::AuditEvent> {
    app.admin(key)
        .await
        .list_audit_events(request)
        .await
        .unwrap()
        .into_inner()
        .audit_events
}

fn actions(events: &[pb::AuditEvent]) -> Vec<&str> {
    events.iter().map(|e| e.action.as_str()).collect()
}

async fn audit_trail_is_filtered_by_comment_author_actor_action_and_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = app.key_for("default", Role::Moderator).await;
    let ids = moderated_history(&app, &moderator).await;

    // Moderators read the trail; newest first by default. The approval
    // taught the spam and toxicity models after the decision committed.
    let all = list(&app, &moderator, Default::default()).await;
    assert_eq!(
        actions(&all[..3]),
        ["toxicity.learned", "spam.learned", "comment.reviewed"]
    );
    assert!(all.windows(2).all(|w| w[0].event_id > w[1].event_id));

    let about_first = list(
        &app,
        &moderator,
        pb::ListAuditEventsRequest {
            comment_id: ids[0].clone(),
            oldest_first: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        actions(&about_first),
        [
            "comment.created",
            "review.claimed",
            "comment.reviewed",
            "spam.learned",
            "toxicity.learned"
        ],
        "the comment and its review item"
    );
    assert!(
        about_first
            .iter()
            .all(|e| e.comment_id == ids[0] && e.author_id == "ama")
    );
    let created = &about_first[0];
    assert_eq!(created.subject_type, "comment");
    assert_eq!(created.to_state, "pending_review");
    assert!(created.from_state.is_empty());
    let detail = &created.detail.as_ref().unwrap().fields;
    assert!(detail.contains_key("spam_score") && detail.contains_key("reasons"));
    let reviewed = &about_first[2];
    assert_eq!(
        (reviewed.from_state.as_str(), reviewed.to_state.as_str()),
        ("pending_review", "approved")
    );

    let by_ama = list(
        &app,
        &moderator,
        pb::ListAuditEventsRequest {
            author_id: "ama".into(),
            oldest_first: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_ama.len(), 7, "{:?}", actions(&by_ama));
    assert!(by_ama.iter().all(|e| e.author_id == "ama"));
    assert!(!by_ama.iter().any(|e| e.comment_id == ids[1]));

    let claims = list(
        &app,
        &moderator,
        pb::ListAuditEventsRequest {
            action: "review.claimed".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(claims.len(), 3);
    let moderator_actor = claims[0].actor.clone();
    assert!(moderator_actor.starts_with("key:"));
    let by_moderator = list(
        &app,
        &moderator,
        pb::ListAuditEventsRequest {
            actor: moderator_actor.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        actions(&by_moderator),
        [
            "toxicity.learned",
            "spam.learned",
            "comment.reviewed",
            "review.claimed",
            "review.claimed",
            "review.claimed"
        ]
    );

    // Time range: [start, end).
    let created_at = created.create_time.unwrap();
    let at = |seconds: i64| prost_types::Timestamp {
        seconds: created_at.seconds + seconds,
        nanos: 0,
    };
    let later = list(
        &app,
        &moderator,
        pb::ListAuditEventsRequest {
            start_time: Some(at(3600)),
            ..Default::default()
        },
    )
    .await;
    assert!(later.is_empty());
    let window = list(
        &app,
        &moderator,
        pb::ListAuditEventsRequest {
            author_id: "ama".into(),
            start_time: Some(at(-3600)),
            end_time: Some(at(3600)),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(window.len(), 7);
    let before = list(
        &app,
        &moderator,
        pb::ListAuditEventsRequest {
            end_time: Some(at(-3600)),
            ..Default::default()
        },
    )
    .await;
    assert!(
        before.iter().all(|e| e.action != "comment.created"),
        "nothing about comments before they existed"
    );
}

async fn audit_trail_pages_in_both_orders(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = app.key_for("default", Role::Moderator).await;
    moderated_history(&app, &moderator).await;
    let mut admin = app.admin(&app.admin_key).await;

    for oldest_first in [false, true] {
        let whole = list(
            &app,
            &app.admin_key,
            pb::ListAuditEventsRequest {
                author_id: "ama".into(),
                oldest_first,
                ..Default::default()
            },
        )
        .await;
        let mut paged = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let page = admin
                .list_audit_events(pb::ListAuditEventsRequest {
                    author_id: "ama".into(),
                    oldest_first,
                    page_size: 2,
                    page_token: token,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            assert!(page.audit_events.len() <= 2);
            paged.extend(page.audit_events);
            pages += 1;
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        assert_eq!(pages, 4, "7 events in pages of 2");
        assert_eq!(paged, whole);
    }

    let first = admin
        .list_audit_events(pb::ListAuditEventsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let err = admin
        .list_audit_events(pb::ListAuditEventsRequest {
            action: "comment.created".into(),
            page_size: 1,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_field(&err),
        "page_token",
        "a token is for its filters"
    );
}

async fn audit_trail_refuses_bad_input_and_other_roles(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.admin_key).await;
    let mut call = async |request: pb::ListAuditEventsRequest| {
        admin.list_audit_events(request).await.unwrap_err()
    };
    let invalid = [
        (
            pb::ListAuditEventsRequest {
                comment_id: "not-a-uuid".into(),
                ..Default::default()
            },
            "comment_id",
        ),
        (
            pb::ListAuditEventsRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
        (
            pb::ListAuditEventsRequest {
                page_token: "garbage".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            pb::ListAuditEventsRequest {
                actor: "x".repeat(201),
                ..Default::default()
            },
            "actor",
        ),
        (
            pb::ListAuditEventsRequest {
                start_time: Some(prost_types::Timestamp {
                    seconds: 1_800_000_000,
                    nanos: 0,
                }),
                end_time: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            },
            "end_time",
        ),
        (
            pb::ListAuditEventsRequest {
                start_time: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: -1,
                }),
                ..Default::default()
            },
            "start_time",
        ),
    ];
    for (request, field) in invalid {
        let err = call(request).await;
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(violated_field(&err), field);
    }

    let publisher = app.key_for("default", Role::Publisher).await;
    let err = app
        .admin(&publisher)
        .await
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = app
        .admin("mdr_not_a_key")
        .await
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

async fn audit_trail_is_per_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = app.key_for("default", Role::Moderator).await;
    let ids = moderated_history(&app, &moderator).await;
    let elsewhere = app.key_for("elsewhere", Role::Admin).await;

    let theirs = list(&app, &elsewhere, Default::default()).await;
    assert!(
        theirs.iter().all(|e| ["tenant.", "api_key.", "rule."]
            .iter()
            .any(|kind| e.action.starts_with(kind))),
        "{:?}",
        actions(&theirs)
    );
    for request in [
        pb::ListAuditEventsRequest {
            comment_id: ids[0].clone(),
            ..Default::default()
        },
        pb::ListAuditEventsRequest {
            author_id: "ama".into(),
            ..Default::default()
        },
    ] {
        assert!(list(&app, &elsewhere, request).await.is_empty());
    }
}
