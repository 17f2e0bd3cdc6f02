//! `ReviewService.SetAuthorStanding` and `GetAuthor`: standings change how
//! the author's next comment is decided, end by themselves, and are audited.

use moderato::domain::Role;
use moderato::grpc::pb::{self, AuthorStanding, CommentStatus};
use tonic::Code;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, spawn_app, violated_field};

backend_tests!(
    standing_decides_the_authors_next_comment,
    a_suspension_ends_by_itself,
    get_author_shows_standing_counts_and_latest_comments,
    bad_standing_requests_are_refused,
);

const CLEAN: &str = "Merci pour ce reportage sur la campagne cacaoyère.";

fn standing(
    author: &str,
    standing: AuthorStanding,
    until_seconds: Option<i64>,
) -> pb::SetAuthorStandingRequest {
    pb::SetAuthorStandingRequest {
        author_id: author.into(),
        standing: standing as i32,
        until: until_seconds.map(|s| prost_types::Timestamp {
            seconds: chrono::Utc::now().timestamp() + s,
            nanos: 0,
        }),
        reason: "décision de modération".into(),
        moderator_id: String::new(),
    }
}

async fn submit(app: &TestApp, key: &str, author: &str, body: &str) -> pb::Comment {
    crate::helpers::submit_on(app, key, "cacao", author, body).await
}

fn codes(comment: &pb::Comment) -> Vec<&str> {
    comment.reasons.iter().map(|r| r.code.as_str()).collect()
}

async fn standing_decides_the_authors_next_comment(backend: Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let moderator = app.key_for("default", Role::Moderator).await;
    let mut reviews = app.reviews(&moderator).await;
    assert_eq!(
        submit(&app, &publisher, "ama", CLEAN).await.status,
        CommentStatus::Approved as i32
    );

    let set = reviews
        .set_author_standing(standing("ama", AuthorStanding::Banned, None))
        .await
        .unwrap()
        .into_inner()
        .author
        .unwrap();
    assert_eq!(set.standing, AuthorStanding::Banned as i32);
    assert_eq!((set.approved_count, set.until), (1, None));
    let banned = submit(&app, &publisher, "ama", CLEAN).await;
    assert_eq!(banned.status, CommentStatus::Rejected as i32);
    assert_eq!(codes(&banned)[0], "author.banned");
    assert_eq!(
        submit(&app, &publisher, "kofi", CLEAN).await.status,
        CommentStatus::Approved as i32,
        "only that author"
    );

    reviews
        .set_author_standing(standing("ama", AuthorStanding::Suspended, Some(3600)))
        .await
        .unwrap();
    let suspended = submit(&app, &publisher, "ama", CLEAN).await;
    assert_eq!(suspended.status, CommentStatus::Rejected as i32);
    assert_eq!(codes(&suspended)[0], "author.suspended");
    assert!(suspended.reasons[0].message.contains("until"));

    reviews
        .set_author_standing(standing("ama", AuthorStanding::Premoderated, None))
        .await
        .unwrap();
    let held = submit(&app, &publisher, "ama", CLEAN).await;
    assert_eq!(held.status, CommentStatus::PendingReview as i32);
    assert!(codes(&held).contains(&"author.premoderated"));

    // Trusted: no spam score, but the rules still apply.
    let spam = "Gagnez 300 000 FCFA par semaine depuis chez vous, écrivez-moi vite";
    let untrusted = submit(&app, &publisher, "kofi", spam).await;
    assert!(untrusted.spam_score > 0.5, "{untrusted:?}");
    reviews
        .set_author_standing(standing("ama", AuthorStanding::Trusted, None))
        .await
        .unwrap();
    let trusted = submit(&app, &publisher, "ama", spam).await;
    assert_eq!(trusted.spam_score, 0.0);
    assert_eq!(
        trusted.status,
        CommentStatus::Approved as i32,
        "{trusted:?}"
    );
    assert!(codes(&trusted).contains(&"author.trusted"));
    let abusive = submit(&app, &publisher, "ama", "Ce ministre est un vrai connard.").await;
    assert_ne!(
        abusive.status,
        CommentStatus::Approved as i32,
        "{abusive:?}"
    );
    assert!(codes(&abusive).iter().any(|c| c.starts_with("rule.")));

    reviews
        .set_author_standing(standing("ama", AuthorStanding::Normal, None))
        .await
        .unwrap();
    // Back to the spam score and history alone (which by now weigh this
    // author's burst of comments).
    let normal = submit(
        &app,
        &publisher,
        "ama",
        "Le port de San Pedro exporte davantage.",
    )
    .await;
    assert!(normal.spam_score > 0.0);
    assert!(
        !codes(&normal).iter().any(|c| c.starts_with("author.")),
        "{normal:?}"
    );

    // Every change is in the audit trail, by the moderator.
    let audit = app
        .admin(&moderator)
        .await
        .list_audit_events(pb::ListAuditEventsRequest {
            action: "author.standing_changed".into(),
            oldest_first: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    let moves: Vec<_> = audit
        .iter()
        .map(|e| (e.from_state.as_str(), e.to_state.as_str()))
        .collect();
    assert_eq!(
        moves,
        [
            ("normal", "banned"),
            ("banned", "suspended"),
            ("suspended", "premoderated"),
            ("premoderated", "trusted"),
            ("trusted", "normal"),
        ]
    );
    assert!(audit.iter().all(|e| e.author_id == "ama"
        && e.subject_type == "author"
        && e.actor.starts_with("key:")));
}

async fn a_suspension_ends_by_itself(backend: Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let moderator = app.key_for("default", Role::Moderator).await;
    let mut reviews = app.reviews(&moderator).await;
    let mut request = standing("ama", AuthorStanding::Suspended, Some(2));
    request.moderator_id = "awa".into();
    let set = reviews
        .set_author_standing(request)
        .await
        .unwrap()
        .into_inner()
        .author
        .unwrap();
    assert_eq!(set.standing, AuthorStanding::Suspended as i32);
    assert!(set.until.is_some());
    assert_eq!(set.set_by, "awa", "the platform's moderator id");
    assert_eq!(
        submit(&app, &publisher, "ama", CLEAN).await.status,
        CommentStatus::Rejected as i32
    );

    let until = set.until.unwrap();
    let wait = until.seconds - chrono::Utc::now().timestamp() + 1;
    tokio::time::sleep(std::time::Duration::from_secs(wait.max(0) as u64)).await;

    let after = submit(&app, &publisher, "ama", "Les planteurs méritent mieux.").await;
    assert_eq!(
        after.status,
        CommentStatus::Approved as i32,
        "nothing had to run for the suspension to end: {after:?}"
    );
    let author = reviews
        .get_author(pb::GetAuthorRequest {
            author_id: "ama".into(),
            page_size: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .author
        .unwrap();
    assert_eq!(author.standing, AuthorStanding::Normal as i32);
    assert_eq!(author.until, None);
    assert_eq!(
        author.reason, "décision de modération",
        "the last change is still shown"
    );
}

async fn get_author_shows_standing_counts_and_latest_comments(backend: Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let moderator = app.key_for("default", Role::Moderator).await;
    let mut reviews = app.reviews(&moderator).await;
    let mut ids = Vec::new();
    for body in [
        "Le prix du cacao bord champ doit suivre le cours mondial.",
        "Les coopératives de Soubré attendent toujours leurs primes.",
        "Bonne nouvelle pour les transformateurs locaux de fèves.",
        "Et les routes de desserte agricole, quand seront-elles refaites ?",
    ] {
        ids.push(submit(&app, &publisher, "ama", body).await.comment_id);
    }
    reviews
        .set_author_standing(standing("ama", AuthorStanding::Premoderated, None))
        .await
        .unwrap();
    submit(&app, &publisher, "ama", CLEAN).await;

    let got = reviews
        .get_author(pb::GetAuthorRequest {
            author_id: "ama".into(),
            page_size: 3,
        })
        .await
        .unwrap()
        .into_inner();
    let author = got.author.unwrap();
    assert_eq!(author.standing, AuthorStanding::Premoderated as i32);
    assert_eq!(
        (
            author.approved_count,
            author.pending_review_count,
            author.rejected_count
        ),
        (4, 1, 0)
    );
    assert!(author.update_time.is_some() && author.set_by.starts_with("key:"));
    assert_eq!(got.recent_comments.len(), 3);
    let queue = reviews
        .list_review_queue(pb::ListReviewQueueRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(queue.len(), 1);
    assert_eq!(
        (queue[0].author_standing, queue[0].author_standing_until),
        (AuthorStanding::Premoderated as i32, None),
        "moderators see the standing with the item"
    );
    assert_eq!(
        got.recent_comments[0].status,
        CommentStatus::PendingReview as i32
    );
    assert_eq!(got.recent_comments[1].comment_id, ids[3], "newest first");

    // Publishers learn nothing about authors; other tenants neither.
    let err = app
        .reviews(&publisher)
        .await
        .get_author(pb::GetAuthorRequest {
            author_id: "ama".into(),
            page_size: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let elsewhere = app.key_for("elsewhere", Role::Moderator).await;
    let err = app
        .reviews(&elsewhere)
        .await
        .get_author(pb::GetAuthorRequest {
            author_id: "ama".into(),
            page_size: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = reviews
        .get_author(pb::GetAuthorRequest {
            author_id: "nobody".into(),
            page_size: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

async fn bad_standing_requests_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = app.key_for("default", Role::Moderator).await;
    let mut reviews = app.reviews(&moderator).await;
    let with = |f: &dyn Fn(&mut pb::SetAuthorStandingRequest)| {
        let mut request = standing("ama", AuthorStanding::Banned, None);
        f(&mut request);
        request
    };
    let cases = [
        (with(&|r| r.author_id.clear()), "author_id"),
        (with(&|r| r.standing = 0), "standing"),
        (with(&|r| r.standing = 42), "standing"),
        (with(&|r| r.reason = "  ".into()), "reason"),
        (with(&|r| r.reason = "x".repeat(501)), "reason"),
        (standing("ama", AuthorStanding::Suspended, None), "until"),
        (standing("ama", AuthorStanding::Normal, Some(3600)), "until"),
        (standing("ama", AuthorStanding::Banned, Some(-60)), "until"),
        (
            with(&|r| {
                r.until = Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: 2_000_000_000,
                })
            }),
            "until",
        ),
    ];
    for (request, field) in cases {
        let err = reviews.set_author_standing(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert_eq!(violated_field(&err), field);
    }
    let err = reviews
        .get_author(pb::GetAuthorRequest {
            author_id: "ama".into(),
            page_size: -1,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "page_size");

    // Nothing was stored by the refused calls.
    let err = reviews
        .get_author(pb::GetAuthorRequest {
            author_id: "ama".into(),
            page_size: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let publisher = app.key_for("default", Role::Publisher).await;
    let err = app
        .reviews(&publisher)
        .await
        .set_author_standing(standing("ama", AuthorStanding::Banned, None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = app
        .reviews("mdr_not_a_key")
        .await
        .set_author_standing(standing("ama", AuthorStanding::Banned, None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}
