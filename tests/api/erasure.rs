//! `AdminService.ExportAuthor` and `EraseAuthor`: a data-subject access
//! request gets everything held about the author; an erasure removes what
//! identifies them and keeps the record of moderation.

use moderato::grpc::pb;
use sqlx::{Connection as _, Row as _};
use tonic::Code;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, comment, spawn_app, violated_field};

backend_tests!(
    an_export_holds_everything_about_the_author_and_nothing_else,
    an_erasure_removes_what_identifies_the_author_and_keeps_the_record,
);

const AUTHOR: &str = "lectrice-awa";
const NAME: &str = "Awa Diallo-Traoré";
const IP: &str = "198.51.100.23";
const LINKED: &str = "Voyez https://arnaque-a-la-bourse.example/offre avant le vote du budget.";
const HELD: &str = "Je maintiens que la réforme fiscale ruine les petits commerçants.";
const REPORT_DETAIL: &str = "Ce commentaire de Moussa m'insulte personnellement.";
const REPORT_ON_HER: &str = "Awa a écrit un lien douteux vers une arnaque.";

struct Scene {
    linked: pb::Comment,
    held: pb::Comment,
    other: pb::Comment,
}

async fn submit(app: &TestApp, author: &str, name: &str, body: &str) -> pb::Comment {
    app.comments(&app.admin_key)
        .await
        .submit_comment(pb::SubmitCommentRequest {
            author_display_name: name.into(),
            author_ip: IP.into(),
            ..comment("budget-2027", author, body)
        })
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap()
}

async fn report(app: &TestApp, comment_id: &str, reporter: &str, detail: &str) {
    app.comments(&app.admin_key)
        .await
        .report_comment(pb::ReportCommentRequest {
            comment_id: comment_id.into(),
            reporter_id: reporter.into(),
            reason: pb::ReportReason::Harassment as i32,
            detail: detail.into(),
        })
        .await
        .unwrap();
}

/// The author: a comment held by a link rule (its reason quotes the
/// host), a comment held by a word rule, a report she made on another
/// author's comment, a report on her comment, a standing.
async fn scene(app: &TestApp) -> Scene {
    let mut admin = app.admin(&app.admin_key).await;
    for (id, kind) in [
        (
            "liens-douteux",
            pb::rule::Kind::Links(pb::LinksRule {
                deny_domains: vec!["arnaque-a-la-bourse.example".into()],
                ..Default::default()
            }),
        ),
        (
            "fiscalite",
            pb::rule::Kind::Words(pb::WordsRule {
                words: vec!["ruine".into()],
            }),
        ),
    ] {
        admin
            .create_rule(pb::CreateRuleRequest {
                rule: Some(pb::Rule {
                    rule_id: id.into(),
                    name: id.into(),
                    enabled: true,
                    action: pb::RuleAction::Review as i32,
                    kind: Some(kind),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    let linked = submit(app, AUTHOR, NAME, LINKED).await;
    assert_eq!(linked.status, pb::CommentStatus::PendingReview as i32);
    assert!(
        linked
            .reasons
            .iter()
            .any(|r| r.message.contains("arnaque-a-la-bourse")),
        "the link reason quotes the host: {:?}",
        linked.reasons
    );
    let held = submit(app, AUTHOR, NAME, HELD).await;
    assert_eq!(held.status, pb::CommentStatus::PendingReview as i32);
    let other = submit(
        app,
        "lecteur-moussa",
        "Moussa",
        "Un avis mesuré sur la dette publique.",
    )
    .await;
    report(app, &other.comment_id, AUTHOR, REPORT_DETAIL).await;
    report(app, &linked.comment_id, "lecteur-ibrahim", REPORT_ON_HER).await;
    app.reviews(&app.admin_key)
        .await
        .set_author_standing(pb::SetAuthorStandingRequest {
            author_id: AUTHOR.into(),
            standing: pb::AuthorStanding::Premoderated as i32,
            reason: "liens répétés".into(),
            moderator_id: "mod-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    Scene {
        linked,
        held,
        other,
    }
}

async fn try_export(
    app: &TestApp,
    author: &str,
) -> Result<pb::ExportAuthorResponse, tonic::Status> {
    app.admin(&app.admin_key)
        .await
        .export_author(pb::ExportAuthorRequest {
            author_id: author.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn erase(app: &TestApp, author: &str) -> Result<pb::EraseAuthorResponse, tonic::Status> {
    app.admin(&app.admin_key)
        .await
        .erase_author(pb::EraseAuthorRequest {
            author_id: author.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn an_export_holds_everything_about_the_author_and_nothing_else(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = scene(&app).await;

    let export = export_of(&app, AUTHOR).await;
    let author = export.author.unwrap();
    assert_eq!(author.author_id, AUTHOR);
    assert_eq!(author.standing, pb::AuthorStanding::Premoderated as i32);
    assert_eq!(author.pending_review_count, 2);
    let ids: Vec<_> = export
        .comments
        .iter()
        .map(|c| c.comment_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [s.held.comment_id.as_str(), s.linked.comment_id.as_str()],
        "newest first"
    );
    assert_eq!(export.comments[1].body, LINKED);
    assert_eq!(export.comments[1].author_display_name, NAME);
    assert_eq!(export.reports.len(), 1);
    let made = &export.reports[0];
    assert_eq!(
        (made.comment_id.as_str(), made.detail.as_str()),
        (s.other.comment_id.as_str(), REPORT_DETAIL)
    );
    assert_eq!(made.reason, pb::ReportReason::Harassment as i32);

    let events: Vec<(&str, &str)> = export
        .audit_events
        .iter()
        .map(|e| (e.action.as_str(), e.comment_id.as_str()))
        .collect();
    for expected in [
        ("comment.created", s.linked.comment_id.as_str()),
        ("comment.created", s.held.comment_id.as_str()),
        ("comment.reported", s.other.comment_id.as_str()),
        ("comment.reported", s.linked.comment_id.as_str()),
        ("author.standing_changed", ""),
    ] {
        assert!(events.contains(&expected), "{expected:?} in {events:?}");
    }
    assert!(
        !events.contains(&("comment.created", s.other.comment_id.as_str())),
        "another author's comment is not hers: {events:?}"
    );
    let ordered: Vec<i64> = export.audit_events.iter().map(|e| e.event_id).collect();
    assert!(
        ordered.windows(2).all(|w| w[0] < w[1]),
        "oldest first, once each: {ordered:?}"
    );

    // The export itself is in the trail: who asked, how much was given.
    let again = export_of(&app, AUTHOR).await;
    let exported: Vec<_> = again
        .audit_events
        .iter()
        .filter(|e| e.action == "author.exported")
        .collect();
    assert_eq!(exported.len(), 1, "the first export, seen by the second");
    assert_eq!(exported[0].author_id, AUTHOR);
    assert!(
        exported[0].actor.starts_with("key:"),
        "{}",
        exported[0].actor
    );
    let detail = format!("{:?}", exported[0].detail);
    assert!(
        detail.contains("comments") && detail.contains("2.0"),
        "{detail}"
    );

    // A reader who only reported is known too.
    let reporter = export_of(&app, "lecteur-ibrahim").await;
    assert_eq!(reporter.comments.len(), 0);
    assert_eq!(reporter.reports[0].detail, REPORT_ON_HER);

    let unknown = try_export(&app, "jamais-vu").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let blank = try_export(&app, "").await.unwrap_err();
    assert_eq!(violated_field(&blank), "author_id");
}

async fn export_of(app: &TestApp, author: &str) -> pb::ExportAuthorResponse {
    try_export(app, author).await.unwrap()
}

/// Every column an erasure clears, as stored, for the author's comments.
async fn stored_identity(
    url: &str,
) -> Vec<(String, String, Option<String>, Option<i64>, Option<i64>)> {
    let sql = "SELECT body, author_display_name, author_ip, text_hash, simhash FROM comments \
               WHERE author_id = 'lectrice-awa' ORDER BY create_time";
    if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(sql)
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(sql)
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect()
    }
}

async fn report_details(url: &str) -> Vec<String> {
    let sql = "SELECT detail FROM comment_reports ORDER BY create_time";
    if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
    }
}

async fn an_erasure_removes_what_identifies_the_author_and_keeps_the_record(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = scene(&app).await;
    let before = stored_identity(&app.database_url).await;
    assert!(before.iter().all(|row| row.2.is_some() && row.3.is_some()));

    let erased = erase(&app, AUTHOR).await.unwrap();
    assert_eq!((erased.erased_comments, erased.erased_reports), (2, 2));

    // The API shows the marker, no name, no quote of the text; the
    // decision stays explained.
    let mut comments = app.comments(&app.admin_key).await;
    for original in [&s.linked, &s.held] {
        let now = comments
            .get_comment(pb::GetCommentRequest {
                comment_id: original.comment_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .comment
            .unwrap();
        assert_eq!(now.body, moderato::moderation::privacy::ERASURE_MARKER);
        assert_eq!(
            (now.author_display_name.as_str(), now.original_body.as_str()),
            ("", "")
        );
        assert_eq!(now.status, original.status);
        assert_eq!(now.version, original.version);
        let codes = |c: &pb::Comment| c.reasons.iter().map(|r| r.code.clone()).collect::<Vec<_>>();
        assert_eq!(codes(&now), codes(original));
        for reason in &now.reasons {
            assert_eq!((reason.start, reason.end), (None, None), "{reason:?}");
            assert!(!reason.message.contains("arnaque"), "{reason:?}");
        }
    }
    // The database holds none of it either.
    for (body, name, ip, text_hash, simhash) in stored_identity(&app.database_url).await {
        assert_eq!(body, moderato::moderation::privacy::ERASURE_MARKER);
        assert_eq!(
            (name.as_str(), ip, text_hash, simhash),
            ("", None, None, None)
        );
    }
    let details = report_details(&app.database_url).await;
    assert_eq!(details, ["", ""], "her report and the report quoting her");

    // Counts, standing and the trail stay; the trail holds no content.
    let export = export_of(&app, AUTHOR).await;
    let author = export.author.unwrap();
    assert_eq!(author.pending_review_count, 2);
    assert_eq!(author.standing, pb::AuthorStanding::Premoderated as i32);
    assert_eq!(export.reports[0].detail, "");
    let trail = format!("{:?}", export.audit_events);
    for secret in [
        LINKED,
        HELD,
        NAME,
        IP,
        REPORT_DETAIL,
        REPORT_ON_HER,
        "arnaque-a-la-bourse",
    ] {
        assert!(!trail.contains(secret), "{secret:?} in the trail");
    }
    let erasures: Vec<_> = export
        .audit_events
        .iter()
        .filter(|e| e.action == "author.erased")
        .collect();
    assert_eq!(erasures.len(), 1);
    assert_eq!(erasures[0].author_id, AUTHOR);

    // Idempotent: nothing more to erase, said so, audited again.
    let again = erase(&app, AUTHOR).await.unwrap();
    assert_eq!((again.erased_comments, again.erased_reports), (0, 0));
    let export = export_of(&app, AUTHOR).await;
    assert_eq!(
        export
            .audit_events
            .iter()
            .filter(|e| e.action == "author.erased")
            .count(),
        2
    );

    // Another author's comment is untouched; an erased held comment can
    // still be decided.
    let other = comments
        .get_comment(pb::GetCommentRequest {
            comment_id: s.other.comment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(other.body, s.other.body);
    assert_eq!(other.author_display_name, "Moussa");
    let mut reviews = app.reviews(&app.admin_key).await;
    let items = reviews
        .claim_reviews(pb::ClaimReviewsRequest {
            max_items: 10,
            moderator_id: "mod-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    let item = items
        .iter()
        .find(|i| i.comment.as_ref().unwrap().comment_id == s.held.comment_id)
        .expect("the erased comment is still in the queue");
    let decided = reviews
        .decide_review(pb::DecideReviewRequest {
            review_id: item.review_id.clone(),
            decision: pb::ReviewDecision::Reject as i32,
            moderator_id: "mod-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(decided.status, pb::CommentStatus::Rejected as i32);
    assert_eq!(decided.body, moderato::moderation::privacy::ERASURE_MARKER);

    assert_eq!(
        erase(&app, "jamais-vu").await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        violated_field(&erase(&app, "").await.unwrap_err()),
        "author_id"
    );
}
