//! The storage conformance suite: the same behaviour asked of every backend,
//! through the `Store` trait alone.

use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use moderato::domain::{
    Actor, ArticleId, AuthorId, AuthorStanding, CategoryThresholds, ClientCommentId, CommentBody,
    CommentId, CommentStatus, DisplayName, KeyHash, KeyId, Label, LanguageTag, ModelKind,
    ModerationMode, NewComment, Reason, ReportReason, ReviewDecision, Role, Span, StandingTerm,
    TenantId, TenantName, TenantSettingsPatch, ToxicityCategory, ToxicityThresholds,
};
use moderato::pipeline::Verdict;
use moderato::pipeline::spam::{Features, Update};
use moderato::storage::{
    AuditQuery, Claim, CommentQuery, DbOptions, DecideRejection, Decision, HistoryLookup,
    InsertOutcome, LabelSource, LearnOutcome, Lesson, NewApiKey, NewCommentRecord, NewReport,
    QueueFilter, QueueOrder, QueueQuery, ReleaseRejection, ReportOutcome, RuleChange,
    RuleRejection, StandingChange, Store, StoredModel,
};
use sqlx::{Connection as _, Executor as _};

use crate::backend_tests;
use crate::helpers::{Backend, database_url_for};

backend_tests!(
    tenants_are_created_once_and_found_by_name,
    decision_events_are_numbered_per_tenant_without_gaps,
    the_queue_is_ordered_and_filtered_for_listing_and_claiming,
    author_standing_is_stored_read_with_the_facts_and_audited,
    audit_links_are_filled_in_for_rows_written_before_them,
    spam_models_learned_before_model_kinds_are_kept,
    comments_round_trip_exactly,
    a_repeated_client_comment_id_returns_the_stored_comment,
    comments_list_newest_first_by_status_and_article,
    the_queue_orders_by_priority_then_age,
    claims_skip_held_items_and_take_expired_ones,
    a_decision_applies_once_and_only_with_the_claim,
    releases_are_all_or_nothing,
    settings_updates_are_validated,
    revoked_keys_do_not_authenticate,
    the_audit_trail_is_append_only,
    migrations_are_idempotent_and_safe_in_parallel,
    rule_changes_are_atomic_and_versioned,
    spam_models_accumulate_and_load_incrementally,
    a_comment_teaches_each_label_once,
    each_kind_of_model_learns_apart,
    author_histories_are_one_scoped_query,
    a_group_commit_stores_each_comment_as_alone,
    a_tenant_or_comment_with_rows_is_never_deleted,
    reasons_stored_as_sentences_read_as_before,
    the_stream_and_the_trail_carry_over_to_one_event_log,
    author_facts_follow_every_change_and_keep_the_latest,
    author_facts_are_carried_over_from_comments_written_before_them,
    a_cancelled_call_leaves_no_transaction_open,
);

struct Fixture {
    store: Arc<dyn Store>,
    tenant: TenantId,
    url: String,
    _dir: tempfile::TempDir,
}

async fn fixture(backend: Backend) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url_for(backend, &dir).await;
    let store = moderato::storage::connect(&url, &DbOptions::default())
        .await
        .unwrap();
    let (tenant, created) = store
        .ensure_tenant(&TenantName::parse("t1").unwrap(), now())
        .await
        .unwrap();
    assert!(created);
    Fixture {
        store,
        tenant,
        url,
        _dir: dir,
    }
}

pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub(crate) fn new_comment(article: &str, body: &str, client_id: Option<&str>) -> NewComment {
    NewComment {
        article_id: ArticleId::parse("a", article.into()).unwrap(),
        author_id: AuthorId::parse("a", "author-1".into()).unwrap(),
        body: CommentBody::parse("b", body.into()).unwrap(),
        client_comment_id: client_id.map(|c| ClientCommentId::parse("c", c.into()).unwrap()),
        author_display_name: DisplayName::parse("d", "Kofi".into()).unwrap(),
        author_ip: Some("203.0.113.9".parse().unwrap()),
        parent_comment_id: None,
        language: LanguageTag::parse("l", "fr".into()).unwrap(),
    }
}

pub(crate) fn verdict(status: CommentStatus, priority: i32) -> Verdict {
    Verdict {
        status,
        spam_score: 0.25,
        toxicity_score: 0.5,
        reasons: vec![Reason {
            code: "rule.words".into(),
            rule_id: "r-42".into(),
            rule_name: "Mots suspects".into(),
            action: "review".into(),
            message: "mot suspect « débile »".into(),
            span: Some(Span { start: 3, end: 10 }),
            target: None,
            score: Some(0.25),
        }],
        review_priority: priority,
        masked_body: None,
        detected_language: None,
    }
}

async fn insert(
    f: &Fixture,
    comment: &NewComment,
    verdict: &Verdict,
    at: DateTime<Utc>,
) -> InsertOutcome {
    f.store
        .insert_comment(
            f.tenant,
            &NewCommentRecord {
                comment_id: CommentId::generate(),
                comment,
                verdict,
                fingerprint: Features::extract(comment.body.as_str()).fingerprint,
                actor: &Actor::system(),
                now: at,
                ip_hash: None,
            },
        )
        .await
        .unwrap()
}

async fn held(
    f: &Fixture,
    body: &str,
    priority: i32,
    at: DateTime<Utc>,
) -> moderato::domain::Comment {
    match insert(
        f,
        &new_comment("a1", body, None),
        &verdict(CommentStatus::PendingReview, priority),
        at,
    )
    .await
    {
        InsertOutcome::Created(c) => c,
        other => panic!("{other:?}"),
    }
}

fn claim(actor: &str, max_items: u32, at: DateTime<Utc>, lease_secs: i64) -> Claim {
    Claim {
        actor: moderato::domain::ModeratorId::parse("m", actor.into())
            .unwrap()
            .map(Actor::from)
            .unwrap(),
        max_items,
        filter: QueueFilter::default(),
        order: QueueOrder::Priority,
        now: at,
        lease_until: at + Duration::seconds(lease_secs),
    }
}

fn queue_query() -> QueueQuery {
    QueueQuery {
        filter: QueueFilter::default(),
        order: QueueOrder::Priority,
        after: None,
        limit: 100,
    }
}

async fn tenants_are_created_once_and_found_by_name(backend: Backend) {
    let f = fixture(backend).await;
    let name = TenantName::parse("t1").unwrap();
    let (again, created) = f.store.ensure_tenant(&name, now()).await.unwrap();
    assert_eq!(again, f.tenant);
    assert!(!created);
    assert_eq!(f.store.find_tenant(&name).await.unwrap(), Some(f.tenant));
    assert_eq!(
        f.store
            .find_tenant(&TenantName::parse("nobody").unwrap())
            .await
            .unwrap(),
        None
    );
    assert_eq!(f.store.count_tenants().await.unwrap(), 1);
    let settings = f.store.tenant_settings(f.tenant).await.unwrap().unwrap();
    assert_eq!(settings.tenant_name, "t1");
    assert_eq!(settings.moderation_mode, ModerationMode::Post);
}

async fn comments_round_trip_exactly(backend: Backend) {
    let f = fixture(backend).await;
    let mut comment = new_comment("économie", "Ça c'est débile 🙄 — vraiment.", Some("k-1"));
    comment.parent_comment_id = Some(CommentId::generate());
    let stored = match insert(&f, &comment, &verdict(CommentStatus::Approved, 0), now()).await {
        InsertOutcome::Created(c) => c,
        other => panic!("{other:?}"),
    };
    let read = f
        .store
        .get_comment(f.tenant, stored.comment_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, stored);
    assert_eq!(read.toxicity_score, 0.5);
    assert_eq!(read.reasons[0].span, Some(Span { start: 3, end: 10 }));
    assert_eq!(read.parent_comment_id, comment.parent_comment_id);

    let (other, _) = f
        .store
        .ensure_tenant(&TenantName::parse("t2").unwrap(), now())
        .await
        .unwrap();
    assert_eq!(
        f.store.get_comment(other, stored.comment_id).await.unwrap(),
        None
    );
}

async fn a_repeated_client_comment_id_returns_the_stored_comment(backend: Backend) {
    let f = fixture(backend).await;
    let comment = new_comment("a1", "une fois", Some("same"));
    let first = insert(
        &f,
        &comment,
        &verdict(CommentStatus::PendingReview, 5),
        now(),
    )
    .await;
    let InsertOutcome::Created(first) = first else {
        panic!()
    };
    let second = insert(&f, &comment, &verdict(CommentStatus::Approved, 0), now()).await;
    assert_eq!(second, InsertOutcome::Existing(first));
    assert_eq!(
        f.store
            .list_review_queue(f.tenant, &queue_query())
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn comments_list_newest_first_by_status_and_article(backend: Backend) {
    let f = fixture(backend).await;
    let t0 = now();
    let mut ids = Vec::new();
    for i in 0..4 {
        let comment = new_comment(
            if i % 2 == 0 { "even" } else { "odd" },
            &format!("c{i}"),
            None,
        );
        let InsertOutcome::Created(c) = insert(
            &f,
            &comment,
            &verdict(CommentStatus::Approved, 0),
            t0 + Duration::seconds(i),
        )
        .await
        else {
            panic!()
        };
        ids.push(c.comment_id);
    }
    insert(
        &f,
        &new_comment("even", "held", None),
        &verdict(CommentStatus::PendingReview, 0),
        t0,
    )
    .await;

    let all = f
        .store
        .list_comments(
            f.tenant,
            &CommentQuery {
                article_id: None,
                status: CommentStatus::Approved,
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let listed: Vec<_> = all.iter().map(|c| c.comment_id).collect();
    assert_eq!(listed, ids.iter().rev().copied().collect::<Vec<_>>());

    let even = f
        .store
        .list_comments(
            f.tenant,
            &CommentQuery {
                article_id: Some("even".into()),
                status: CommentStatus::Approved,
                after: Some(moderato::storage::CommentCursor::after(&all[0])),
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        even.iter().map(|c| c.comment_id).collect::<Vec<_>>(),
        [ids[2], ids[0]]
    );
}

async fn the_queue_orders_by_priority_then_age(backend: Backend) {
    let f = fixture(backend).await;
    let t0 = now();
    held(&f, "old-low", 10, t0).await;
    held(&f, "new-high", 90, t0 + Duration::seconds(2)).await;
    held(&f, "old-high", 90, t0 + Duration::seconds(1)).await;
    held(&f, "new-low", 10, t0 + Duration::seconds(3)).await;

    let order: Vec<_> = f
        .store
        .list_review_queue(f.tenant, &queue_query())
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.comment.body)
        .collect();
    assert_eq!(order, ["old-high", "new-high", "old-low", "new-low"]);

    let first_page = f
        .store
        .list_review_queue(
            f.tenant,
            &QueueQuery {
                limit: 2,
                ..queue_query()
            },
        )
        .await
        .unwrap();
    let rest: Vec<_> = f
        .store
        .list_review_queue(
            f.tenant,
            &QueueQuery {
                after: Some(moderato::storage::QueueCursor::after(&first_page[1])),
                ..queue_query()
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.comment.body)
        .collect();
    assert_eq!(rest, ["old-low", "new-low"]);

    let claimed: Vec<_> = f
        .store
        .claim_reviews(f.tenant, &claim("awa", 3, now(), 60))
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.comment.body)
        .collect();
    assert_eq!(claimed, ["old-high", "new-high", "old-low"]);
}

async fn claims_skip_held_items_and_take_expired_ones(backend: Backend) {
    let f = fixture(backend).await;
    let t0 = now();
    held(&f, "one", 0, t0).await;
    held(&f, "two", 0, t0 + Duration::seconds(1)).await;

    let a = f
        .store
        .claim_reviews(f.tenant, &claim("awa", 1, t0, 30))
        .await
        .unwrap();
    assert_eq!(a[0].comment.body, "one");
    assert_eq!(a[0].claimed_by.as_deref(), Some("awa"));
    assert_eq!(a[0].lease_expire_time, Some(t0 + Duration::seconds(30)));
    let b = f
        .store
        .claim_reviews(f.tenant, &claim("binta", 5, t0, 30))
        .await
        .unwrap();
    assert_eq!(
        b.iter()
            .map(|i| i.comment.body.as_str())
            .collect::<Vec<_>>(),
        ["two"]
    );
    assert!(
        f.store
            .claim_reviews(f.tenant, &claim("chidi", 5, t0, 30))
            .await
            .unwrap()
            .is_empty()
    );

    let later = t0 + Duration::seconds(31);
    let c = f
        .store
        .claim_reviews(f.tenant, &claim("chidi", 5, later, 30))
        .await
        .unwrap();
    assert_eq!(c.len(), 2, "both leases expired");
    assert!(c.iter().all(|i| i.claimed_by.as_deref() == Some("chidi")));
}

async fn a_decision_applies_once_and_only_with_the_claim(backend: Backend) {
    let f = fixture(backend).await;
    let t0 = now();
    let comment = held(&f, "à juger", 0, t0).await;
    let item = f
        .store
        .claim_reviews(f.tenant, &claim("awa", 1, t0, 60))
        .await
        .unwrap()
        .remove(0);
    let decision = |actor: &str, decision| Decision {
        review_id: item.review_id,
        decision,
        reason_code: None,
        expected_version: None,
        note: "note".into(),
        actor: moderato::domain::ModeratorId::parse("m", actor.into())
            .unwrap()
            .map(Actor::from)
            .unwrap(),
        now: t0 + Duration::seconds(5),
    };

    let wrong = f
        .store
        .decide_review(f.tenant, &decision("binta", ReviewDecision::Approve))
        .await
        .unwrap();
    assert_eq!(wrong, Err(DecideRejection::NotClaimedByCaller));
    let decided = f
        .store
        .decide_review(f.tenant, &decision("awa", ReviewDecision::Approve))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(decided.status, CommentStatus::Approved);
    assert_eq!(decided.update_time, t0 + Duration::seconds(5));
    assert_eq!(decided.reasons.last().unwrap().code, "review.decision");
    assert_eq!(
        f.store
            .get_comment(f.tenant, comment.comment_id)
            .await
            .unwrap()
            .unwrap(),
        decided
    );

    let twice = f
        .store
        .decide_review(f.tenant, &decision("awa", ReviewDecision::Reject))
        .await
        .unwrap();
    assert_eq!(twice, Err(DecideRejection::AlreadyDecided));
    let (other, _) = f
        .store
        .ensure_tenant(&TenantName::parse("t2").unwrap(), now())
        .await
        .unwrap();
    let foreign = f
        .store
        .decide_review(other, &decision("awa", ReviewDecision::Reject))
        .await
        .unwrap();
    assert_eq!(foreign, Err(DecideRejection::NotFound));
    assert!(
        f.store
            .list_review_queue(f.tenant, &queue_query())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn releases_are_all_or_nothing(backend: Backend) {
    let f = fixture(backend).await;
    let t0 = now();
    held(&f, "one", 0, t0).await;
    held(&f, "two", 0, t0 + Duration::seconds(1)).await;
    let mine = f
        .store
        .claim_reviews(f.tenant, &claim("awa", 1, t0, 60))
        .await
        .unwrap();
    let theirs = f
        .store
        .claim_reviews(f.tenant, &claim("binta", 1, t0, 60))
        .await
        .unwrap();
    let awa = mine[0]
        .claimed_by
        .clone()
        .map(|a| {
            moderato::domain::ModeratorId::parse("m", a)
                .unwrap()
                .map(Actor::from)
                .unwrap()
        })
        .unwrap();
    let ids = [mine[0].review_id, theirs[0].review_id];

    let refused = f
        .store
        .release_reviews(f.tenant, &ids, &awa, t0)
        .await
        .unwrap();
    assert_eq!(
        refused,
        Err(ReleaseRejection::NotClaimedByCaller(theirs[0].review_id))
    );
    let still: Vec<_> = f
        .store
        .list_review_queue(f.tenant, &queue_query())
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.claimed_by)
        .collect();
    assert_eq!(still, [Some("awa".to_owned()), Some("binta".to_owned())]);

    let released = f
        .store
        .release_reviews(f.tenant, &ids[..1], &awa, t0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(released, [mine[0].review_id]);
    let again = f
        .store
        .claim_reviews(f.tenant, &claim("chidi", 5, t0, 60))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].review_id, mine[0].review_id);
}

async fn settings_updates_are_validated(backend: Backend) {
    let f = fixture(backend).await;
    let bad = f
        .store
        .update_tenant_settings(
            f.tenant,
            &TenantSettingsPatch {
                review_threshold: Some(0.99),
                ..Default::default()
            },
            &Actor::system(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(bad.unwrap_err().field, "review_threshold");
    let good = f
        .store
        .update_tenant_settings(
            f.tenant,
            &TenantSettingsPatch {
                moderation_mode: Some(ModerationMode::Pre),
                max_body_chars: Some(300),
                ..Default::default()
            },
            &Actor::system(),
            now(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        f.store.tenant_settings(f.tenant).await.unwrap().unwrap(),
        good
    );
    assert_eq!(good.max_body_chars, 300);
    assert_eq!(good.review_threshold, 0.5);
    assert_eq!(good.toxicity, ToxicityThresholds::default());

    // Toxicity thresholds per category are kept, and come back to the
    // defaults' storage when set back to them.
    let set = |category, review, reject| TenantSettingsPatch {
        toxicity: vec![CategoryThresholds {
            category,
            review,
            reject,
        }],
        ..Default::default()
    };
    let tuned = f
        .store
        .update_tenant_settings(
            f.tenant,
            &set(ToxicityCategory::Threat, 0.3, 0.8),
            &Actor::system(),
            now(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tuned.toxicity.get(ToxicityCategory::Threat), (0.3, 0.8));
    let read = f.store.tenant_settings(f.tenant).await.unwrap().unwrap();
    assert_eq!(read, tuned);
    assert_eq!(read.moderation_mode, ModerationMode::Pre, "the rest kept");
    let refused = f
        .store
        .update_tenant_settings(
            f.tenant,
            &set(ToxicityCategory::Insult, 0.9, 0.2),
            &Actor::system(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        refused.unwrap_err().field,
        "toxicity_thresholds[0].review_threshold"
    );
    let (review, reject) = ToxicityThresholds::default().get(ToxicityCategory::Threat);
    let back = f
        .store
        .update_tenant_settings(
            f.tenant,
            &set(ToxicityCategory::Threat, review, reject),
            &Actor::system(),
            now(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.toxicity, ToxicityThresholds::default());
    assert_eq!(
        f.store.tenant_settings(f.tenant).await.unwrap().unwrap(),
        back
    );
}

async fn revoked_keys_do_not_authenticate(backend: Backend) {
    let f = fixture(backend).await;
    let hash = KeyHash::of("mdr_test-key");
    let key = NewApiKey {
        key_id: KeyId::generate(),
        spec: moderato::domain::KeySpec::role(Role::Moderator),
        hash,
        key_prefix: "mdr_te".into(),
    };
    f.store
        .create_api_key(f.tenant, &key, &Actor::system(), now())
        .await
        .unwrap();
    let principal = f.store.authenticate(&hash).await.unwrap().unwrap();
    assert_eq!(
        (principal.tenant_id, principal.key_id, principal.role),
        (f.tenant, key.key_id, Role::Moderator)
    );
    assert_eq!(
        f.store
            .authenticate(&KeyHash::of("mdr_other"))
            .await
            .unwrap(),
        None
    );

    let t1 = now();
    let revoked = f
        .store
        .revoke_api_key(f.tenant, key.key_id, &Actor::system(), t1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoke_time, Some(t1));
    let again = f
        .store
        .revoke_api_key(
            f.tenant,
            key.key_id,
            &Actor::system(),
            t1 + Duration::seconds(9),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.revoke_time,
        Some(t1),
        "the first revocation time is kept"
    );
    assert_eq!(f.store.authenticate(&hash).await.unwrap(), None);
    let (other, _) = f
        .store
        .ensure_tenant(&TenantName::parse("t2").unwrap(), now())
        .await
        .unwrap();
    assert_eq!(
        f.store
            .revoke_api_key(other, key.key_id, &Actor::system(), t1)
            .await
            .unwrap(),
        None
    );
}

async fn the_audit_trail_is_append_only(backend: Backend) {
    let f = fixture(backend).await;
    held(&f, "audité", 0, now()).await;
    let events = f
        .store
        .list_audit_events(f.tenant, &AuditQuery::all())
        .await
        .unwrap();
    assert!(
        events.len() >= 2,
        "tenant creation and comment creation: {events:?}"
    );

    let attempts = [
        "UPDATE audit_events SET actor = 'mallory'",
        "DELETE FROM audit_events",
    ];
    for sql in attempts {
        let refused = match backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&f.url).await.unwrap();
                conn.execute(sql).await.is_err()
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&f.url).await.unwrap();
                conn.execute(sql).await.is_err()
            }
        };
        assert!(refused, "{sql} must be refused");
    }
    assert_eq!(
        f.store
            .list_audit_events(f.tenant, &AuditQuery::all())
            .await
            .unwrap(),
        events
    );
}

async fn migrations_are_idempotent_and_safe_in_parallel(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url_for(backend, &dir).await;
    let options = DbOptions::default();
    let (a, b) = tokio::join!(
        moderato::storage::connect(&url, &options),
        moderato::storage::connect(&url, &options)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    a.migrate().await.unwrap();
    b.ping().await.unwrap();
    assert_eq!(b.count_tenants().await.unwrap(), 0);
}

fn rule(id: &str, word: &str) -> moderato::domain::Rule {
    moderato::domain::Rule {
        id: id.into(),
        name: id.into(),
        description: String::new(),
        enabled: true,
        action: moderato::domain::RuleAction::Review,
        kind: moderato::domain::RuleKind::Words {
            words: vec![word.into()],
        },
    }
}

async fn rule_changes_are_atomic_and_versioned(backend: Backend) {
    let f = fixture(backend).await;
    let actor = Actor::system();
    let (v0, none) = f.store.load_rules(f.tenant).await.unwrap();
    assert!(none.is_empty());

    let created = f
        .store
        .change_rules(
            f.tenant,
            &RuleChange::Create(rule("a", "alpha")),
            &actor,
            now(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(created[0].revision, 1);
    let again = f
        .store
        .change_rules(f.tenant, &RuleChange::Create(rule("a", "x")), &actor, now())
        .await
        .unwrap();
    assert_eq!(again, Err(RuleRejection::AlreadyExists("a".into())));
    let stale = f
        .store
        .change_rules(
            f.tenant,
            &RuleChange::Update {
                rule: rule("a", "beta"),
                expected_revision: Some(7),
            },
            &actor,
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        stale,
        Err(RuleRejection::RevisionMismatch {
            rule_id: "a".into(),
            current: 1
        })
    );
    let updated = f
        .store
        .change_rules(
            f.tenant,
            &RuleChange::Update {
                rule: rule("a", "beta"),
                expected_revision: Some(1),
            },
            &actor,
            now(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated[0].revision, 2);
    assert_eq!(updated[0].create_time, created[0].create_time);

    let imported = f
        .store
        .change_rules(
            f.tenant,
            &RuleChange::Import {
                rules: vec![rule("b", "gamma"), rule("c", "delta")],
                replace: true,
            },
            &actor,
            now(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(imported.len(), 2);
    let (version, rules) = f.store.load_rules(f.tenant).await.unwrap();
    assert_eq!(
        rules.iter().map(|r| r.rule.id.as_str()).collect::<Vec<_>>(),
        ["b", "c"]
    );
    assert_eq!(
        version,
        v0 + 3,
        "one version per applied change, none for refused ones"
    );
    let deleted = f
        .store
        .list_audit_events(f.tenant, &AuditQuery::subject("a"))
        .await
        .unwrap();
    assert_eq!(
        deleted
            .iter()
            .map(|e| e.action.as_str())
            .collect::<Vec<_>>(),
        ["rule.created", "rule.updated", "rule.deleted"]
    );
    assert_eq!(
        f.store
            .change_rules(
                f.tenant,
                &RuleChange::Delete {
                    rule_id: "a".into()
                },
                &actor,
                now()
            )
            .await
            .unwrap(),
        Err(RuleRejection::NotFound("a".into()))
    );
    let versions = f.store.rules_versions().await.unwrap();
    assert!(versions.contains(&(f.tenant, version)));
}

fn update(weights: &[(u32, f64)], bias: f64) -> Update {
    Update {
        weights: weights.to_vec(),
        bias,
    }
}

fn import<'a>(update: &'a Update, actor: &'a Actor) -> Lesson<'a> {
    import_as(ModelKind::Spam, update, actor)
}

fn import_as<'a>(kind: ModelKind, update: &'a Update, actor: &'a Actor) -> Lesson<'a> {
    Lesson {
        kind,
        source: LabelSource::Import,
        comment: None,
        positive_examples: 2,
        negative_examples: 3,
        update,
        actor,
        now: now(),
    }
}

fn sorted(mut weights: Vec<(u32, f64)>) -> Vec<(u32, f64)> {
    weights.sort_by_key(|w| w.0);
    weights
}

async fn spam_models_accumulate_and_load_incrementally(backend: Backend) {
    let f = fixture(backend).await;
    let actor = Actor::operator();
    assert_eq!(
        f.store
            .load_model(f.tenant, ModelKind::Spam, 0)
            .await
            .unwrap(),
        StoredModel::default(),
        "a tenant that learned nothing has version 0"
    );
    assert!(f.store.model_versions().await.unwrap().is_empty());

    let first = update(&[(5, 0.5), (7, -0.25), (262_150, 1.5)], 0.1);
    assert_eq!(
        f.store
            .learn(f.tenant, &import(&first, &actor))
            .await
            .unwrap(),
        LearnOutcome::Learned { version: 1 }
    );
    let second = update(&[(7, 0.25), (9, 1.0)], -0.3);
    assert_eq!(
        f.store
            .learn(f.tenant, &import(&second, &actor))
            .await
            .unwrap(),
        LearnOutcome::Learned { version: 2 }
    );

    let all = f
        .store
        .load_model(f.tenant, ModelKind::Spam, 0)
        .await
        .unwrap();
    assert_eq!(all.version, 2);
    assert!((all.bias - -0.2).abs() < 1e-12);
    assert_eq!((all.positive_examples, all.negative_examples), (4, 6));
    assert_eq!(
        sorted(all.weights),
        [(5, 0.5), (7, 0.0), (9, 1.0), (262_150, 1.5)],
        "deltas add up"
    );
    let since_first = f
        .store
        .load_model(f.tenant, ModelKind::Spam, 1)
        .await
        .unwrap();
    assert_eq!(
        sorted(since_first.weights),
        [(7, 0.0), (9, 1.0)],
        "only what changed after version 1"
    );
    assert!(
        f.store
            .load_model(f.tenant, ModelKind::Spam, 2)
            .await
            .unwrap()
            .weights
            .is_empty()
    );
    assert_eq!(
        f.store.model_versions().await.unwrap(),
        [(f.tenant, ModelKind::Spam, 2)]
    );

    // Concurrent lessons all count and get distinct versions.
    let lessons = (0..8).map(|i| {
        let store = f.store.clone();
        let tenant = f.tenant;
        tokio::spawn(async move {
            let u = update(&[(100, 0.125), (101 + i, 1.0)], 0.0);
            store
                .learn(tenant, &import(&u, &Actor::operator()))
                .await
                .unwrap()
        })
    });
    let mut versions: Vec<i64> = futures::future::join_all(lessons)
        .await
        .into_iter()
        .map(|r| match r.unwrap() {
            LearnOutcome::Learned { version } => version,
            other => panic!("{other:?}"),
        })
        .collect();
    versions.sort();
    assert_eq!(versions, (3..=10).collect::<Vec<_>>());
    let after = f
        .store
        .load_model(f.tenant, ModelKind::Spam, 0)
        .await
        .unwrap();
    assert!(after.weights.contains(&(100, 1.0)), "no lost update");

    // Tenants never share a model.
    let (other, _) = f
        .store
        .ensure_tenant(&TenantName::parse("t2").unwrap(), now())
        .await
        .unwrap();
    assert_eq!(
        f.store
            .load_model(other, ModelKind::Spam, 0)
            .await
            .unwrap()
            .version,
        0
    );
    let audit = f
        .store
        .list_audit_events(f.tenant, &AuditQuery::subject("import"))
        .await
        .unwrap();
    assert_eq!(audit.len(), 10);
    assert_eq!(audit[0].action, "spam.learned");
    assert_eq!(audit[0].detail["features"], 3);
}

async fn a_comment_teaches_each_label_once(backend: Backend) {
    let f = fixture(backend).await;
    let stored = match insert(
        &f,
        &new_comment("a1", "Gagnez de l'argent facilement", None),
        &verdict(CommentStatus::Approved, 0),
        now(),
    )
    .await
    {
        InsertOutcome::Created(c) => c,
        other => panic!("{other:?}"),
    };
    let actor = Actor::operator();
    let u = update(&[(3, 0.5)], 0.05);
    let lesson = |spam: bool| Lesson {
        kind: ModelKind::Spam,
        source: LabelSource::Mark,
        comment: Some((stored.comment_id, Label::spam(spam))),
        positive_examples: i64::from(spam),
        negative_examples: i64::from(!spam),
        update: &u,
        actor: &actor,
        now: now(),
    };
    assert_eq!(
        f.store.learn(f.tenant, &lesson(true)).await.unwrap(),
        LearnOutcome::Learned { version: 1 }
    );
    assert_eq!(
        f.store.learn(f.tenant, &lesson(true)).await.unwrap(),
        LearnOutcome::AlreadyLearned
    );
    let model = f
        .store
        .load_model(f.tenant, ModelKind::Spam, 0)
        .await
        .unwrap();
    assert_eq!((model.version, model.weights), (1, vec![(3, 0.5)]));
    assert_eq!(
        f.store.learn(f.tenant, &lesson(false)).await.unwrap(),
        LearnOutcome::Learned { version: 2 },
        "a different label is learned"
    );
    let model = f
        .store
        .load_model(f.tenant, ModelKind::Spam, 0)
        .await
        .unwrap();
    assert_eq!((model.positive_examples, model.negative_examples), (1, 1));
    let audit = f
        .store
        .list_audit_events(
            f.tenant,
            &AuditQuery::subject(&stored.comment_id.to_string()),
        )
        .await
        .unwrap();
    let learned: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "spam.learned")
        .map(|e| e.to_state.as_deref())
        .collect();
    assert_eq!(learned, [Some("spam"), Some("ham")]);
}

async fn each_kind_of_model_learns_apart(backend: Backend) {
    let f = fixture(backend).await;
    let actor = Actor::operator();
    let spam = update(&[(3, 0.5)], 0.1);
    let toxic = update(&[(3, -1.0), (4, 2.0)], -0.2);
    f.store
        .learn(f.tenant, &import_as(ModelKind::Spam, &spam, &actor))
        .await
        .unwrap();
    assert_eq!(
        f.store
            .learn(f.tenant, &import_as(ModelKind::Toxicity, &toxic, &actor))
            .await
            .unwrap(),
        LearnOutcome::Learned { version: 1 },
        "each kind has its own versions"
    );
    let spam_model = f
        .store
        .load_model(f.tenant, ModelKind::Spam, 0)
        .await
        .unwrap();
    assert_eq!((spam_model.weights, spam_model.bias), (vec![(3, 0.5)], 0.1));
    let toxicity = f
        .store
        .load_model(f.tenant, ModelKind::Toxicity, 0)
        .await
        .unwrap();
    assert_eq!(sorted(toxicity.weights), [(3, -1.0), (4, 2.0)]);
    let mut versions = f.store.model_versions().await.unwrap();
    versions.sort_by_key(|v| v.1);
    assert_eq!(
        versions,
        [
            (f.tenant, ModelKind::Spam, 1),
            (f.tenant, ModelKind::Toxicity, 1)
        ]
    );

    // One comment carries one label per model.
    let stored = match insert(
        &f,
        &new_comment("a1", "Espèce d'abruti, tais-toi", None),
        &verdict(CommentStatus::Approved, 0),
        now(),
    )
    .await
    {
        InsertOutcome::Created(c) => c,
        other => panic!("{other:?}"),
    };
    let u = update(&[(9, 0.25)], 0.0);
    let lesson = |label: Label| Lesson {
        kind: label.kind(),
        source: LabelSource::Mark,
        comment: Some((stored.comment_id, label)),
        positive_examples: i64::from(label.positive()),
        negative_examples: i64::from(!label.positive()),
        update: &u,
        actor: &actor,
        now: now(),
    };
    let learn = |label| {
        let lesson = lesson(label);
        let store = f.store.clone();
        let tenant = f.tenant;
        async move { store.learn(tenant, &lesson).await.unwrap() }
    };
    assert_eq!(
        learn(Label::Ham).await,
        LearnOutcome::Learned { version: 2 }
    );
    assert_eq!(
        learn(Label::Toxic(ToxicityCategory::Insult)).await,
        LearnOutcome::Learned { version: 2 },
        "a ham comment can still be toxic"
    );
    assert_eq!(
        learn(Label::Toxic(ToxicityCategory::Threat)).await,
        LearnOutcome::AlreadyLearned,
        "toxic in another category teaches nothing more"
    );
    assert_eq!(
        learn(Label::NotToxic).await,
        LearnOutcome::Learned { version: 3 }
    );
    let toxicity = f
        .store
        .load_model(f.tenant, ModelKind::Toxicity, 0)
        .await
        .unwrap();
    assert_eq!(
        (toxicity.positive_examples, toxicity.negative_examples),
        (2 + 1, 3 + 1)
    );
    let audit = f
        .store
        .list_audit_events(
            f.tenant,
            &AuditQuery::subject(&stored.comment_id.to_string()),
        )
        .await
        .unwrap();
    let learned: Vec<_> = audit
        .iter()
        .filter(|e| e.action.ends_with(".learned"))
        .map(|e| (e.action.as_str(), e.to_state.as_deref()))
        .collect();
    assert_eq!(
        learned,
        [
            ("spam.learned", Some("ham")),
            ("toxicity.learned", Some("insult")),
            ("toxicity.learned", Some("not_toxic")),
        ]
    );
    let import_audit = f
        .store
        .list_audit_events(f.tenant, &AuditQuery::subject("import"))
        .await
        .unwrap();
    assert!(
        import_audit
            .iter()
            .any(|e| e.subject_type == "toxicity_model" && e.detail["toxic_examples"] == 2)
    );
}

async fn author_histories_are_one_scoped_query(backend: Backend) {
    let f = fixture(backend).await;
    let t0 = now() - Duration::hours(2);
    let text = "Rejoignez mon groupe pour des conseils en investissement";
    let fingerprint = Features::extract(text).fingerprint;
    let put = |author: &str, body: &str, minutes: i64, status: CommentStatus| {
        let f = &f;
        let comment = NewComment {
            author_id: AuthorId::parse("a", author.into()).unwrap(),
            ..new_comment("a1", body, None)
        };
        async move {
            insert(
                f,
                &comment,
                &verdict(status, 0),
                t0 + Duration::minutes(minutes),
            )
            .await;
        }
    };
    put("spammer", text, 0, CommentStatus::Approved).await;
    put("spammer", "Autre chose", 30, CommentStatus::Rejected).await;
    put("spammer", text, 60, CommentStatus::PendingReview).await;
    put("echo", text, 90, CommentStatus::Approved).await;
    put("echo", text, 100, CommentStatus::Approved).await;
    put("old-echo", text, -2000, CommentStatus::Approved).await;

    let since = now() - Duration::hours(24);
    let (other, _) = f
        .store
        .ensure_tenant(&TenantName::parse("t2").unwrap(), now())
        .await
        .unwrap();
    let lookup = |tenant, author: &str| HistoryLookup {
        tenant,
        author: author.into(),
        exact: fingerprint.exact,
        since,
    };
    let one = |tenant, author: &str| {
        let (f, lookup) = (&f, lookup(tenant, author));
        async move {
            let mut facts = f.store.author_facts(&[lookup]).await.unwrap();
            assert_eq!(facts.len(), 1);
            facts.pop().unwrap().history
        }
    };

    let history = one(f.tenant, "spammer").await;
    assert!(history.known);
    let times: Vec<_> = history.recent.iter().map(|c| c.create_time).collect();
    assert_eq!(
        times,
        [t0 + Duration::minutes(60), t0 + Duration::minutes(30), t0],
        "newest first"
    );
    assert_eq!(history.recent[0].exact, fingerprint.exact);
    assert_eq!(history.recent[0].simhash, fingerprint.simhash);
    assert_eq!(history.recent[1].status, CommentStatus::Rejected);
    assert_eq!(
        history.same_text_by_others, 2,
        "other authors, within the window"
    );

    let newcomer = one(f.tenant, "nobody").await;
    assert!(newcomer.known && newcomer.recent.is_empty());
    assert_eq!(
        newcomer.same_text_by_others, 3,
        "everyone else's (4) within the window, counted up to the cap"
    );

    let elsewhere = one(other, "spammer").await;
    assert!(elsewhere.recent.is_empty() && elsewhere.same_text_by_others == 0);

    // One query for many look-ups, across tenants and with repeats: each
    // answer is the one it gets alone, in the order asked.
    let batch = [
        lookup(f.tenant, "nobody"),
        lookup(other, "spammer"),
        lookup(f.tenant, "spammer"),
        lookup(f.tenant, "echo"),
        lookup(f.tenant, "spammer"),
    ];
    let together: Vec<_> = f
        .store
        .author_facts(&batch)
        .await
        .unwrap()
        .into_iter()
        .map(|facts| facts.history)
        .collect();
    let mut alone = Vec::new();
    for l in &batch {
        alone.push(one(l.tenant, &l.author).await);
    }
    assert_eq!(together, alone);
    assert_eq!(together[2], history);
    assert_eq!(together[3].recent.len(), 2);
    assert!(
        f.store.author_facts(&[]).await.unwrap().is_empty(),
        "nothing asked, nothing read"
    );
}

pub(crate) fn record_of<'a>(
    comment: &'a NewComment,
    verdict: &'a Verdict,
    actor: &'a Actor,
    now: DateTime<Utc>,
) -> NewCommentRecord<'a> {
    NewCommentRecord {
        comment_id: CommentId::generate(),
        comment,
        verdict,
        fingerprint: Features::extract(comment.body.as_str()).fingerprint,
        actor,
        now,
        ip_hash: None,
    }
}

async fn a_group_commit_stores_each_comment_as_alone(backend: Backend) {
    let f = fixture(backend).await;
    let (other, _) = f
        .store
        .ensure_tenant(&TenantName::parse("t2").unwrap(), now())
        .await
        .unwrap();
    let at = now();
    let first = new_comment("a1", "Premier avis sur le budget", Some("k-1"));
    let retry = new_comment("a1", "Premier avis sur le budget", Some("k-1"));
    let held = new_comment("a2", "Avis à relire", None);
    let elsewhere = new_comment("a1", "Même clé, autre éditeur", Some("k-1"));
    let approved = verdict(CommentStatus::Approved, 0);
    let pending = verdict(CommentStatus::PendingReview, 5);
    let actor = Actor::system();
    let record = |comment, verdict| record_of(comment, verdict, &actor, at);
    let batch = vec![
        (f.tenant, record(&first, &approved)),
        (f.tenant, record(&retry, &approved)),
        (f.tenant, record(&held, &pending)),
        (other, record(&elsewhere, &approved)),
    ];
    let outcomes: Vec<InsertOutcome> = f
        .store
        .insert_comments(&batch)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let InsertOutcome::Created(stored_first) = &outcomes[0] else {
        panic!("{:?}", outcomes[0]);
    };
    assert_eq!(
        outcomes[1],
        InsertOutcome::Existing(stored_first.clone()),
        "a retry inside the same batch finds the first"
    );
    assert!(matches!(outcomes[2], InsertOutcome::Created(_)));
    assert!(
        matches!(&outcomes[3], InsertOutcome::Created(c) if c.body == "Même clé, autre éditeur"),
        "idempotency keys are per tenant"
    );
    let queue = f
        .store
        .list_review_queue(
            f.tenant,
            &QueueQuery {
                limit: 10,
                ..queue_query()
            },
        )
        .await
        .unwrap();
    assert_eq!(queue.len(), 1, "the held comment has its queue item");
    let audit = f
        .store
        .list_audit_events(f.tenant, &AuditQuery::all())
        .await
        .unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "comment.created")
            .count(),
        2
    );
}

/// The tenant row of an older release (tenant `$1`, created at `time`, a
/// placeholder).
fn old_tenant_row(time: &str) -> String {
    format!(
        "INSERT INTO tenants (tenant_id, name, moderation_mode, review_threshold, \
         reject_threshold, max_body_chars, create_time, update_time) \
         VALUES ($1, 'old', 'post', 0.5, 0.9, 5000, {time}, {time})"
    )
}

/// A database with only its first `count` migrations applied, to write
/// rows as an older release did.
enum OldPool {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

/// A value of an old row, bound as that backend stores it.
enum Old<'a> {
    Id(uuid::Uuid),
    Time(DateTime<Utc>),
    Text(&'a str),
    Int(i64),
}

impl OldPool {
    /// Writes `rows` (written with Postgres placeholders; `postgres` and
    /// `sqlite` adapt each statement to its backend) with `values` bound in
    /// order, then closes the pool.
    async fn write(
        self,
        rows: &[&str],
        postgres: impl Fn(&str) -> String,
        sqlite: impl Fn(&str) -> String,
        values: &[Old<'_>],
    ) {
        match self {
            OldPool::Postgres(pool) => {
                for sql in rows {
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(postgres(sql)));
                    for value in values {
                        query = match value {
                            Old::Id(id) => query.bind(*id),
                            Old::Time(t) => query.bind(*t),
                            Old::Text(text) => query.bind(*text),
                            Old::Int(n) => query.bind(*n),
                        };
                    }
                    query.execute(&pool).await.unwrap();
                }
                pool.close().await;
            }
            OldPool::Sqlite(pool) => {
                for sql in rows {
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sqlite(sql)));
                    for value in values {
                        query = match value {
                            Old::Id(id) => query.bind(*id),
                            Old::Time(t) => query.bind(t.timestamp_micros()),
                            Old::Text(text) => query.bind(*text),
                            Old::Int(n) => query.bind(*n),
                        };
                    }
                    query.execute(&pool).await.unwrap();
                }
                pool.close().await;
            }
        }
    }
}

async fn migrated_to(backend: Backend, url: &str, count: usize) -> OldPool {
    match backend {
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let mut migrator = sqlx::migrate!("./migrations/postgres");
            migrator.migrations = migrator.migrations[..count].to_vec().into();
            migrator.run(&pool).await.unwrap();
            OldPool::Postgres(pool)
        }
        Backend::Sqlite => {
            let options = url.parse::<sqlx::sqlite::SqliteConnectOptions>().unwrap();
            let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
                .await
                .unwrap();
            let mut migrator = sqlx::migrate!("./migrations/sqlite");
            migrator.migrations = migrator.migrations[..count].to_vec().into();
            migrator.run(&pool).await.unwrap();
            OldPool::Sqlite(pool)
        }
    }
}

/// Migration 10 moves the spam tables to tables for every kind of model:
/// a tenant's spam model, its weights and labels come through.
async fn spam_models_learned_before_model_kinds_are_kept(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url_for(backend, &dir).await;
    let (tenant, comment) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let old_rows = [
        &old_tenant_row("$3"),
        "INSERT INTO comments (tenant_id, comment_id, article_id, author_id, \
         author_display_name, language, body, status, spam_score, reasons, create_time, \
         update_time) VALUES ($1, $2, 'a1', 'ama', '', 'fr', 'Gagnez', 'approved', 0.1, \
         '[]', $3, $3)",
        "INSERT INTO spam_models (tenant_id, version, bias, spam_examples, ham_examples, \
         update_time) VALUES ($1, 4, 0.25, 3, 5, $3)",
        "INSERT INTO spam_weights (tenant_id, feature, weight, version) VALUES \
         ($1, 7, 0.5, 2), ($1, 9, -1.5, 4)",
        "INSERT INTO spam_labels (tenant_id, comment_id, spam, source, actor, create_time) \
         VALUES ($1, $2, true, 'mark', 'key:k', $3)",
    ];
    migrated_to(backend, &url, 9)
        .await
        .write(
            &old_rows,
            |sql| sql.replace("'[]'", "'[]'::jsonb"),
            |sql| sql.replace('$', "?").replace("true", "1"),
            &[Old::Id(tenant), Old::Id(comment), Old::Time(now())],
        )
        .await;

    let store = moderato::storage::connect(&url, &DbOptions::default())
        .await
        .unwrap();
    let tenant = TenantId::from_uuid(tenant);
    let spam = store.load_model(tenant, ModelKind::Spam, 0).await.unwrap();
    assert_eq!(
        (
            spam.version,
            spam.bias,
            spam.positive_examples,
            spam.negative_examples
        ),
        (4, 0.25, 3, 5)
    );
    assert_eq!(sorted(spam.weights), [(7, 0.5), (9, -1.5)]);
    assert_eq!(
        store
            .load_model(tenant, ModelKind::Spam, 2)
            .await
            .unwrap()
            .weights,
        [(9, -1.5)],
        "weight versions kept"
    );
    assert_eq!(
        store
            .load_model(tenant, ModelKind::Toxicity, 0)
            .await
            .unwrap(),
        StoredModel::default()
    );
    let actor = Actor::operator();
    let u = update(&[(1, 1.0)], 0.0);
    let relabel = |label: Label| Lesson {
        kind: ModelKind::Spam,
        source: LabelSource::Mark,
        comment: Some((CommentId::from_uuid(comment), label)),
        positive_examples: 1,
        negative_examples: 0,
        update: &u,
        actor: &actor,
        now: now(),
    };
    assert_eq!(
        store.learn(tenant, &relabel(Label::Spam)).await.unwrap(),
        LearnOutcome::AlreadyLearned,
        "the old label still counts"
    );
    assert_eq!(
        store.learn(tenant, &relabel(Label::Ham)).await.unwrap(),
        LearnOutcome::Learned { version: 5 }
    );
}

/// Migration 4 adds `comment_id` and `author_id` to audit events; events
/// written by an older version get them from their comment or review item,
/// and the trail stays append-only.
async fn audit_links_are_filled_in_for_rows_written_before_them(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url_for(backend, &dir).await;
    let (tenant, comment, review) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    let old_rows = [
        &old_tenant_row("$4"),
        "INSERT INTO comments (tenant_id, comment_id, article_id, author_id, \
         author_display_name, language, body, status, spam_score, reasons, create_time, \
         update_time) VALUES ($1, $2, 'a1', 'ama', '', 'fr', 'Bonjour', 'pending_review', 0.1, \
         '[]', $4, $4)",
        "INSERT INTO review_items (tenant_id, review_id, comment_id, article_id, priority, state, \
         enqueue_time) VALUES ($1, $3, $2, 'a1', 0, 'open', $4)",
        "INSERT INTO audit_events (tenant_id, create_time, actor, action, subject_type, \
         subject_id, detail) VALUES \
         ($1, $4, 'operator', 'tenant.created', 'tenant', $1::text, '{}'), \
         ($1, $4, 'system', 'comment.created', 'comment', $2::text, '{}'), \
         ($1, $4, 'key:k', 'review.claimed', 'review', $3::text, '{}')",
    ];
    let ids = [tenant.to_string(), comment.to_string(), review.to_string()];
    migrated_to(backend, &url, 3)
        .await
        .write(
            &old_rows,
            |sql| {
                sql.replace("'{}'", "'{}'::jsonb")
                    .replace("'[]'", "'[]'::jsonb")
            },
            // Ids are blobs, written in events as hyphenated text.
            |sql| {
                sql.replace("$1::text", "?5")
                    .replace("$2::text", "?6")
                    .replace("$3::text", "?7")
                    .replace('$', "?")
            },
            &[
                Old::Id(tenant),
                Old::Id(comment),
                Old::Id(review),
                Old::Time(now()),
                Old::Text(&ids[0]),
                Old::Text(&ids[1]),
                Old::Text(&ids[2]),
            ],
        )
        .await;

    let store = moderato::storage::connect(&url, &DbOptions::default())
        .await
        .unwrap();
    let tenant = TenantId::from_uuid(tenant);
    let about_comment = store
        .list_audit_events(
            tenant,
            &AuditQuery {
                comment_id: Some(CommentId::from_uuid(comment)),
                ..AuditQuery::all()
            },
        )
        .await
        .unwrap();
    let actions: Vec<_> = about_comment.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["comment.created", "review.claimed"]);
    assert!(
        about_comment
            .iter()
            .all(|e| e.author_id.as_deref() == Some("ama"))
    );
    let by_author = store
        .list_audit_events(
            tenant,
            &AuditQuery {
                author_id: Some("ama".into()),
                ..AuditQuery::all()
            },
        )
        .await
        .unwrap();
    assert_eq!(by_author, about_comment);
    let everything = store
        .list_audit_events(tenant, &AuditQuery::all())
        .await
        .unwrap();
    assert_eq!(everything.len(), 3);
    assert_eq!(
        everything[0].comment_id, None,
        "the tenant event is about no comment"
    );

    // Append-only again once migrated.
    let update = "UPDATE audit_events SET actor = 'mallory'";
    let refused = match backend {
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query(update).execute(&pool).await.is_err()
        }
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query(update).execute(&pool).await.is_err()
        }
    };
    assert!(refused, "audit events cannot be updated");
}

async fn author_standing_is_stored_read_with_the_facts_and_audited(backend: Backend) {
    let f = fixture(backend).await;
    let moderator = Actor::from(
        moderato::domain::ModeratorId::parse("m", "awa".into())
            .unwrap()
            .unwrap(),
    );
    let t0 = now();
    let facts_of = |tenant, author: &str| {
        let (f, lookup) = (
            &f,
            HistoryLookup {
                tenant,
                author: author.into(),
                exact: 1,
                since: t0 - Duration::hours(24),
            },
        );
        async move {
            f.store
                .author_facts(&[lookup])
                .await
                .unwrap()
                .pop()
                .unwrap()
        }
    };
    assert_eq!(
        facts_of(f.tenant, "ama").await.standing,
        StandingTerm::default()
    );
    assert_eq!(f.store.get_author(f.tenant, "ama", 10).await.unwrap(), None);

    // A term that has already ended counts as normal when the next change
    // is audited.
    let ended = StandingTerm {
        standing: AuthorStanding::Premoderated,
        until: Some(t0 - Duration::seconds(1)),
    };
    let suspended = StandingTerm {
        standing: AuthorStanding::Suspended,
        until: Some(t0 + Duration::hours(2)),
    };
    let banned = StandingTerm {
        standing: AuthorStanding::Banned,
        until: None,
    };
    for (term, reason) in [
        (ended, "relecture"),
        (suspended, "insultes répétées"),
        (banned, "menaces"),
    ] {
        let stored = f
            .store
            .set_author_standing(
                f.tenant,
                "ama",
                &StandingChange {
                    term,
                    reason,
                    actor: &moderator,
                    now: t0,
                },
            )
            .await
            .unwrap();
        assert_eq!((stored.term, stored.reason.as_str()), (term, reason));
        assert_eq!(facts_of(f.tenant, "ama").await.standing, term);
    }

    let (other, _) = f
        .store
        .ensure_tenant(&TenantName::parse("t2").unwrap(), now())
        .await
        .unwrap();
    assert_eq!(
        facts_of(other, "ama").await.standing,
        StandingTerm::default(),
        "standings are per tenant"
    );
    assert_eq!(f.store.get_author(other, "ama", 10).await.unwrap(), None);

    let record = f
        .store
        .get_author(f.tenant, "ama", 10)
        .await
        .unwrap()
        .unwrap();
    let standing = record.standing.unwrap();
    assert_eq!(
        (
            standing.term,
            standing.reason.as_str(),
            standing.set_by.as_str()
        ),
        (banned, "menaces", moderator.as_str())
    );
    assert!(record.recent.is_empty() && record.approved == 0);

    let audit = f
        .store
        .list_audit_events(
            f.tenant,
            &AuditQuery {
                author_id: Some("ama".into()),
                ..AuditQuery::all()
            },
        )
        .await
        .unwrap();
    let changes: Vec<_> = audit
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.from_state.as_deref().unwrap(),
                e.to_state.as_deref().unwrap(),
                e.actor.as_str(),
            )
        })
        .collect();
    let by = moderator.as_str();
    assert_eq!(
        changes,
        [
            ("author.standing_changed", "normal", "premoderated", by),
            ("author.standing_changed", "normal", "suspended", by),
            ("author.standing_changed", "suspended", "banned", by),
        ]
    );
    assert_eq!(audit[1].detail["reason"], "insultes répétées");
}

async fn the_queue_is_ordered_and_filtered_for_listing_and_claiming(backend: Backend) {
    let f = fixture(backend).await;
    let t0 = now() - Duration::hours(1);
    // (article, priority, minutes after t0, spam score, reason code)
    let specs = [
        ("a1", 10, 0, 0.2, "rule.words"),
        ("a2", 90, 5, 0.9, "spam.score"),
        ("a1", 90, 10, 0.6, "spam.score"),
        ("a2", 10, 15, 0.1, "tenant.premoderation"),
        ("a1", 50, 20, 0.7, "rule.regex"),
    ];
    let mut ids = Vec::new();
    for (i, (article, priority, minutes, score, code)) in specs.iter().enumerate() {
        let mut held = verdict(CommentStatus::PendingReview, *priority);
        held.spam_score = *score;
        held.reasons[0].code = code.to_string();
        let comment = new_comment(article, &format!("Commentaire en attente {i}"), None);
        let InsertOutcome::Created(stored) =
            insert(&f, &comment, &held, t0 + Duration::minutes(*minutes)).await
        else {
            panic!("created");
        };
        ids.push(stored.comment_id);
    }
    let list = |filter: QueueFilter, order: QueueOrder, limit: u32| {
        let f = &f;
        async move {
            f.store
                .list_review_queue(
                    f.tenant,
                    &QueueQuery {
                        filter,
                        order,
                        after: None,
                        limit,
                    },
                )
                .await
                .unwrap()
        }
    };
    let order_of = |items: &[moderato::domain::ReviewItem]| -> Vec<usize> {
        items
            .iter()
            .map(|item| {
                ids.iter()
                    .position(|id| *id == item.comment.comment_id)
                    .unwrap()
            })
            .collect()
    };
    let all = QueueFilter::default();
    assert_eq!(
        order_of(&list(all.clone(), QueueOrder::Priority, 10).await),
        [1, 2, 4, 0, 3]
    );
    assert_eq!(
        order_of(&list(all.clone(), QueueOrder::OldestFirst, 10).await),
        [0, 1, 2, 3, 4]
    );
    assert_eq!(
        order_of(&list(all.clone(), QueueOrder::NewestFirst, 10).await),
        [4, 3, 2, 1, 0]
    );

    // Keyset pages in each order give the same sequence as one page.
    for order in [
        QueueOrder::Priority,
        QueueOrder::OldestFirst,
        QueueOrder::NewestFirst,
    ] {
        let whole = list(all.clone(), order, 10).await;
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = f
                .store
                .list_review_queue(
                    f.tenant,
                    &QueueQuery {
                        filter: all.clone(),
                        order,
                        after,
                        limit: 2,
                    },
                )
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            after = Some(moderato::storage::QueueCursor::after(page.last().unwrap()));
            paged.extend(page);
        }
        assert_eq!(paged, whole, "{order:?}");
    }

    let only = |filter: QueueFilter| {
        let list = &list;
        async move { list(filter, QueueOrder::OldestFirst, 10).await }
    };
    let article = QueueFilter {
        article_id: Some("a2".into()),
        ..QueueFilter::default()
    };
    assert_eq!(order_of(&only(article).await), [1, 3]);
    let code = QueueFilter {
        reason_code: Some("spam.score".into()),
        ..QueueFilter::default()
    };
    assert_eq!(order_of(&only(code).await), [1, 2]);
    let score = QueueFilter {
        min_spam_score: Some(0.6),
        ..QueueFilter::default()
    };
    assert_eq!(order_of(&only(score).await), [1, 2, 4]);
    let combined = QueueFilter {
        article_id: Some("a1".into()),
        min_spam_score: Some(0.5),
        ..QueueFilter::default()
    };
    assert_eq!(order_of(&only(combined.clone()).await), [2, 4]);
    // Counts follow the same filters, up to their cap.
    let count = |filter: QueueFilter, cap: u32| {
        let f = &f;
        async move {
            f.store
                .count_review_queue(f.tenant, &filter, cap)
                .await
                .unwrap()
        }
    };
    assert_eq!(count(QueueFilter::default(), 100).await, 5);
    assert_eq!(count(QueueFilter::default(), 3).await, 3, "capped");
    assert_eq!(count(combined, 100).await, 2);
    assert_eq!(
        count(
            QueueFilter {
                reason_code: Some("spam.score".into()),
                ..QueueFilter::default()
            },
            100
        )
        .await,
        2
    );
    let reported = QueueFilter {
        reported_only: true,
        ..QueueFilter::default()
    };
    assert!(only(reported.clone()).await.is_empty());
    let reporter = Actor::system();
    let outcome = f
        .store
        .report_comment(
            f.tenant,
            &NewReport {
                comment_id: ids[3],
                reporter: "r1",
                reason: ReportReason::Spam,
                detail: "",
                actor: &reporter,
                now: now(),
                max_recent: 20,
                recent_since: now() - Duration::hours(1),
                threshold: 3,
                hide: false,
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        ReportOutcome::Recorded {
            requeued: false,
            ..
        }
    ));
    assert_eq!(order_of(&only(reported).await), [3]);

    // Claims take the same filters and order.
    let mut newest_a1 = claim("awa", 1, now(), 60);
    newest_a1.filter.article_id = Some("a1".into());
    newest_a1.order = QueueOrder::NewestFirst;
    let claimed = f.store.claim_reviews(f.tenant, &newest_a1).await.unwrap();
    assert_eq!(order_of(&claimed), [4]);
    let mut scored = claim("kofi", 10, now(), 60);
    scored.filter.min_spam_score = Some(0.5);
    let claimed = f.store.claim_reviews(f.tenant, &scored).await.unwrap();
    assert_eq!(order_of(&claimed), [1, 2], "item 4 is leased to awa");
}

async fn decision_events_are_numbered_per_tenant_without_gaps(backend: Backend) {
    let f = fixture(backend).await;
    let (other, _) = f
        .store
        .ensure_tenant(&TenantName::parse("t2").unwrap(), now())
        .await
        .unwrap();
    let actor = Actor::system();
    let comments: Vec<NewComment> = (0..40)
        .map(|i| new_comment("a1", &format!("Avis numéro {i} sur le budget"), None))
        .collect();
    let held = verdict(CommentStatus::PendingReview, 0);
    let approved = verdict(CommentStatus::Approved, 0);
    // Five concurrent group commits of eight, each mixing both tenants.
    let batches = comments.chunks(8).map(|chunk| {
        let (f, actor, held, approved) = (&f, &actor, &held, &approved);
        async move {
            let batch: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let tenant = if i % 2 == 0 { f.tenant } else { other };
                    let verdict = if i % 4 < 2 { held } else { approved };
                    (tenant, record_of(c, verdict, actor, now()))
                })
                .collect();
            for outcome in f.store.insert_comments(&batch).await {
                outcome.unwrap();
            }
        }
    });
    futures::future::join_all(batches).await;
    assert!(
        f.store
            .list_decision_events(f.tenant, 0, 1000)
            .await
            .unwrap()
            .is_empty(),
        "numbered after the commit, by the sequencer"
    );
    assert_eq!(f.store.sequence_decision_events().await.unwrap(), 40);
    assert_eq!(f.store.sequence_decision_events().await.unwrap(), 0, "once");

    for tenant in [f.tenant, other] {
        let events = f.store.list_decision_events(tenant, 0, 1000).await.unwrap();
        let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
        assert_eq!(
            sequences,
            (1..=20).collect::<Vec<_>>(),
            "no gaps, per tenant"
        );
        for event in &events {
            assert_eq!(event.from_status, None);
            assert_eq!(event.version, 1);
            assert_eq!(
                event.queued,
                event.to_status == CommentStatus::PendingReview
            );
            let stored = f
                .store
                .get_comment(tenant, event.comment_id)
                .await
                .unwrap()
                .expect("the event's comment is the tenant's");
            assert_eq!(stored.status, event.to_status);
        }
    }

    // A decision and a reopening append the next numbers.
    let items = f
        .store
        .claim_reviews(f.tenant, &claim("awa", 1, now(), 60))
        .await
        .unwrap();
    let awa = claim("awa", 1, now(), 60).actor;
    let decided = f
        .store
        .decide_review(
            f.tenant,
            &Decision {
                review_id: items[0].review_id,
                decision: ReviewDecision::Approve,
                reason_code: None,
                expected_version: None,
                note: String::new(),
                actor: awa.clone(),
                now: now(),
            },
        )
        .await
        .unwrap()
        .unwrap();
    let reopened = f
        .store
        .reopen_comment(
            f.tenant,
            &moderato::storage::Reopen {
                comment_id: decided.comment_id,
                expected_version: Some(decided.version),
                note: "",
                actor: &awa,
                now: now(),
            },
        )
        .await
        .unwrap()
        .unwrap();
    // Rounds from several replicas at once exclude each other.
    let rounds =
        futures::future::join_all((0..4).map(|_| f.store.sequence_decision_events())).await;
    assert_eq!(rounds.into_iter().map(Result::unwrap).sum::<u64>(), 2);
    let later = f
        .store
        .list_decision_events(f.tenant, 20, 10)
        .await
        .unwrap();
    let changes: Vec<_> = later
        .iter()
        .map(|e| (e.sequence, e.from_status, e.to_status, e.queued, e.version))
        .collect();
    assert_eq!(
        changes,
        [
            (
                21,
                Some(CommentStatus::PendingReview),
                CommentStatus::Approved,
                false,
                2
            ),
            (
                22,
                Some(CommentStatus::Approved),
                CommentStatus::PendingReview,
                true,
                3
            ),
        ]
    );
    assert!(later.iter().all(|e| e.comment_id == reopened.comment_id));
    assert_eq!(
        f.store
            .list_decision_events(f.tenant, 21, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        f.store.list_decision_events(other, 20, 10).await.unwrap(),
        []
    );
}

/// Reasons are stored as codes, spans, scores and the numbers their
/// messages print (`storage::reasons`); rows an earlier release wrote, with
/// the rendered sentences, read as they did, the queue's filter by reason
/// code finds them, and a decision appends to them in the new form.
async fn reasons_stored_as_sentences_read_as_before(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url_for(backend, &dir).await;
    let (tenant, comment, review) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    let old_reasons = r#"[{"code": "rule.words", "span": {"end": 11, "start": 6},
        "action": "review", "message": "Insultes: matched the word list entry \"con\"",
        "rule_id": "insults", "rule_name": "Insultes"},
        {"code": "spam.word", "span": {"end": 4, "start": 0}, "score": 0.0014,
        "message": "this word points to spam (+0.80 log-odds)"}]"#;
    let old_rows = [
        &old_tenant_row("$4"),
        "INSERT INTO comments (tenant_id, comment_id, article_id, author_id, \
         author_display_name, language, body, status, spam_score, reasons, create_time, \
         update_time) VALUES ($1, $2, 'a1', 'ama', '', 'fr', 'Quel con ce type', \
         'pending_review', 0.1, $5, $4, $4)",
        "INSERT INTO review_items (tenant_id, review_id, comment_id, article_id, priority, state, \
         enqueue_time) VALUES ($1, $3, $2, 'a1', 0, 'open', $4)",
    ];
    migrated_to(backend, &url, 11)
        .await
        .write(
            &old_rows,
            |sql| sql.replace("$5", "$5::jsonb"),
            |sql| sql.replace('$', "?"),
            &[
                Old::Id(tenant),
                Old::Id(comment),
                Old::Id(review),
                Old::Time(now()),
                Old::Text(old_reasons),
            ],
        )
        .await;

    let store = moderato::storage::connect(&url, &DbOptions::default())
        .await
        .unwrap();
    let tenant = TenantId::from_uuid(tenant);
    let stored = store
        .get_comment(tenant, CommentId::from_uuid(comment))
        .await
        .unwrap()
        .unwrap();
    let read: Vec<_> = stored
        .reasons
        .iter()
        .map(|r| {
            (
                r.code.as_str(),
                r.message.as_str(),
                r.span,
                r.rule_name.as_str(),
            )
        })
        .collect();
    let insult = Span { start: 6, end: 11 };
    assert_eq!(
        read,
        [
            (
                "rule.words",
                r#"Insultes: matched the word list entry "con""#,
                Some(insult),
                "Insultes"
            ),
            (
                "spam.word",
                "this word points to spam (+0.80 log-odds)",
                Some(Span { start: 0, end: 4 }),
                ""
            ),
        ]
    );
    let filtered = store
        .list_review_queue(
            tenant,
            &QueueQuery {
                filter: QueueFilter {
                    reason_code: Some("rule.words".into()),
                    ..QueueFilter::default()
                },
                ..queue_query()
            },
        )
        .await
        .unwrap();
    assert_eq!(filtered.len(), 1, "the reason filter reads old rows");

    let items = store
        .claim_reviews(tenant, &claim("awa", 1, now(), 60))
        .await
        .unwrap();
    let decided = store
        .decide_review(
            tenant,
            &Decision {
                review_id: items[0].review_id,
                decision: ReviewDecision::Reject,
                reason_code: Some("insult".into()),
                expected_version: None,
                note: String::new(),
                actor: claim("awa", 1, now(), 60).actor,
                now: now(),
            },
        )
        .await
        .unwrap()
        .unwrap();
    let again = store
        .get_comment(tenant, decided.comment_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.reasons, decided.reasons,
        "old and new forms side by side"
    );
    assert_eq!(again.reasons[..2], stored.reasons[..]);
    assert_eq!(again.reasons.len(), 3);
}

/// The migrations of `backend` before `version`.
fn migrations_before(backend: Backend, version: i64) -> usize {
    let migrator = match backend {
        Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
    };
    migrator
        .migrations
        .iter()
        .take_while(|m| m.version < version)
        .count()
}

/// Migration 16 makes the audit row of a change its stream event. Events
/// written before it (one numbered, one not yet) stay readable, numbered,
/// in order and before the new ones, whose numbers continue the tenant's
/// sequence; the old audit rows read as before and are not stream events.
async fn the_stream_and_the_trail_carry_over_to_one_event_log(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url_for(backend, &dir).await;
    let (tenant, first, second) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    let old_rows = [
        &old_tenant_row("$4"),
        "INSERT INTO comments (tenant_id, comment_id, article_id, author_id, \
         author_display_name, language, body, status, spam_score, reasons, create_time, \
         update_time) VALUES ($1, $2, 'a1', 'ama', '', 'fr', 'Bonne analyse', 'approved', \
         0.1, '[]', $4, $4)",
        "INSERT INTO comments (tenant_id, comment_id, article_id, author_id, \
         author_display_name, language, body, status, spam_score, reasons, create_time, \
         update_time) VALUES ($1, $3, 'a1', 'ama', '', 'fr', 'Merci pour cet article', \
         'approved', 0.1, '[]', $4, $4)",
        "INSERT INTO audit_events (tenant_id, create_time, actor, action, subject_type, \
         subject_id, to_state, detail, comment_id, author_id) \
         VALUES ($1, $4, 'system', 'comment.created', 'comment', $5, 'approved', '{}', $2, 'ama')",
        "INSERT INTO decision_events (tenant_id, sequence, comment_id, article_id, author_id, \
         to_status, queued, version, create_time) \
         VALUES ($1, 1, $2, 'a1', 'ama', 'approved', false, 1, $4)",
        "INSERT INTO decision_events (tenant_id, sequence, comment_id, article_id, author_id, \
         to_status, queued, version, create_time) \
         VALUES ($1, NULL, $3, 'a1', 'ama', 'approved', false, 1, $4)",
    ];
    let first_text = first.to_string();
    migrated_to(backend, &url, migrations_before(backend, 20261201000016))
        .await
        .write(
            &old_rows,
            |sql| sql.to_owned(),
            |sql| sql.replace('$', "?"),
            &[
                Old::Id(tenant),
                Old::Id(first),
                Old::Id(second),
                Old::Time(now()),
                Old::Text(&first_text),
            ],
        )
        .await;

    let store = moderato::storage::connect(&url, &DbOptions::default())
        .await
        .unwrap();
    let tenant = TenantId::from_uuid(tenant);
    let order = |events: Vec<moderato::storage::DecisionEvent>| -> Vec<(i64, uuid::Uuid)> {
        events
            .iter()
            .map(|e| (e.sequence, e.comment_id.as_uuid()))
            .collect()
    };
    assert_eq!(
        store.sequence_decision_events().await.unwrap(),
        0,
        "the migration numbered what was left"
    );
    assert_eq!(
        order(store.list_decision_events(tenant, 0, 10).await.unwrap()),
        [(1, first), (2, second)]
    );

    let comment = new_comment("a1", "Un avis sur le budget", None);
    let (held, actor) = (verdict(CommentStatus::PendingReview, 0), Actor::system());
    let Ok(InsertOutcome::Created(third)) = store
        .insert_comments(&[(tenant, record_of(&comment, &held, &actor, now()))])
        .await
        .pop()
        .unwrap()
    else {
        panic!("a new comment is created")
    };
    assert_eq!(store.sequence_decision_events().await.unwrap(), 1);
    let after_old = store.list_decision_events(tenant, 2, 10).await.unwrap();
    assert_eq!(after_old.len(), 1, "a cursor among the old events");
    let created = &after_old[0];
    assert_eq!(
        (
            created.sequence,
            created.comment_id,
            created.article_id.as_str(),
            created.author_id.as_str(),
            created.from_status,
            created.to_status,
            created.queued,
            created.version,
            created.create_time,
        ),
        (
            3,
            third.comment_id,
            "a1",
            "author-1",
            None,
            CommentStatus::PendingReview,
            true,
            1,
            third.create_time,
        )
    );

    let items = store
        .claim_reviews(tenant, &claim("awa", 1, now(), 60))
        .await
        .unwrap();
    store
        .decide_review(
            tenant,
            &Decision {
                review_id: items[0].review_id,
                decision: ReviewDecision::Reject,
                reason_code: None,
                expected_version: None,
                note: String::new(),
                actor: claim("awa", 1, now(), 60).actor,
                now: now(),
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.sequence_decision_events().await.unwrap(), 1);
    let all = store.list_decision_events(tenant, 0, 10).await.unwrap();
    let decided = all.last().unwrap();
    assert_eq!(
        (
            decided.sequence,
            decided.from_status,
            decided.to_status,
            decided.queued,
            decided.version
        ),
        (
            4,
            Some(CommentStatus::PendingReview),
            CommentStatus::Rejected,
            false,
            2
        )
    );
    assert_eq!(
        order(all)[..3],
        [(1, first), (2, second), (3, third.comment_id.as_uuid())]
    );
    assert_eq!(
        order(store.list_decision_events(tenant, 1, 2).await.unwrap()),
        [(2, second), (3, third.comment_id.as_uuid())],
        "a page across the migration"
    );

    let trail: Vec<(String, Option<uuid::Uuid>)> = store
        .list_audit_events(tenant, &AuditQuery::all())
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.comment_id.map(|id| id.as_uuid())))
        .collect();
    let third = Some(third.comment_id.as_uuid());
    assert_eq!(
        trail,
        [
            ("comment.created".to_owned(), Some(first)),
            ("comment.created".to_owned(), third),
            ("review.claimed".to_owned(), third),
            ("comment.reviewed".to_owned(), third),
        ]
    );
}

/// The author's facts as a submission reads them.
async fn recent_of(
    store: &Arc<dyn Store>,
    tenant: TenantId,
    author: &str,
) -> Vec<moderato::pipeline::spam::RecentComment> {
    let lookup = HistoryLookup {
        tenant,
        author: author.into(),
        exact: 0,
        since: now(),
    };
    let mut facts = store.author_facts(&[lookup]).await.unwrap();
    facts.pop().unwrap().history.recent
}

/// An author's facts row holds the latest 50 comments, newest first, with
/// the fingerprints and times they were stored with and the status they
/// have now: group commits of any size (several comments of the author in
/// one) prepend, and decisions and reopens change the status; a decision on
/// a comment older than the latest 50 leaves the row as it was.
async fn author_facts_follow_every_change_and_keep_the_latest(backend: Backend) {
    let f = fixture(backend).await;
    let t0 = now() - Duration::hours(3);
    let author = "author-1"; // new_comment's
    let actor = Actor::system();
    let comments: Vec<NewComment> = (0..55)
        .map(|i| {
            new_comment(
                "a1",
                &format!("Avis numéro {i} sur le budget de l'État"),
                None,
            )
        })
        .collect();
    let (held, approved) = (
        verdict(CommentStatus::PendingReview, 0),
        verdict(CommentStatus::Approved, 0),
    );
    let mut ids = Vec::new();
    let mut at = 0;
    for size in [1, 7, 20, 3, 24] {
        let batch: Vec<_> = comments[at..at + size]
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let i = at + k;
                let verdict = if i == 0 || i == 54 { &held } else { &approved };
                (
                    f.tenant,
                    record_of(c, verdict, &actor, t0 + Duration::seconds(i as i64)),
                )
            })
            .collect();
        for outcome in f.store.insert_comments(&batch).await {
            let Ok(InsertOutcome::Created(c)) = outcome else {
                panic!("created")
            };
            ids.push(c.comment_id);
        }
        at += size;
    }
    let expected = |statuses: &dyn Fn(usize) -> CommentStatus| {
        (5..55)
            .rev()
            .map(|i| {
                let fingerprint = Features::extract(comments[i].body.as_str()).fingerprint;
                moderato::pipeline::spam::RecentComment {
                    exact: fingerprint.exact,
                    simhash: fingerprint.simhash,
                    create_time: t0 + Duration::seconds(i as i64),
                    status: statuses(i),
                }
            })
            .collect::<Vec<_>>()
    };
    let as_stored = |i: usize| {
        if i == 54 {
            CommentStatus::PendingReview
        } else {
            CommentStatus::Approved
        }
    };
    let before = recent_of(&f.store, f.tenant, author).await;
    assert_eq!(before, expected(&as_stored), "the latest 50, newest first");

    let moderator = claim("awa", 1, now(), 60).actor;
    let decide = |decision: ReviewDecision| {
        let (f, moderator) = (&f, moderator.clone());
        async move {
            let items = f
                .store
                .claim_reviews(f.tenant, &claim("awa", 1, now(), 60))
                .await
                .unwrap();
            f.store
                .decide_review(
                    f.tenant,
                    &Decision {
                        review_id: items[0].review_id,
                        decision,
                        reason_code: None,
                        expected_version: None,
                        note: String::new(),
                        actor: moderator,
                        now: now(),
                    },
                )
                .await
                .unwrap()
                .unwrap()
        }
    };
    // The oldest item first: comment 0, no longer among the latest 50.
    let oldest = decide(ReviewDecision::Reject).await;
    assert_eq!(oldest.comment_id, ids[0]);
    assert_eq!(recent_of(&f.store, f.tenant, author).await, before);

    let newest = decide(ReviewDecision::Reject).await;
    assert_eq!(newest.comment_id, ids[54]);
    let rejected = |i: usize| {
        if i == 54 {
            CommentStatus::Rejected
        } else {
            CommentStatus::Approved
        }
    };
    assert_eq!(
        recent_of(&f.store, f.tenant, author).await,
        expected(&rejected)
    );

    f.store
        .reopen_comment(
            f.tenant,
            &moderato::storage::Reopen {
                comment_id: ids[54],
                expected_version: None,
                note: "",
                actor: &moderator,
                now: now(),
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        recent_of(&f.store, f.tenant, author).await,
        expected(&as_stored)
    );
    let mut counted = [0; 3];
    for (i, id) in ids.iter().enumerate() {
        let stored = f.store.get_comment(f.tenant, *id).await.unwrap().unwrap();
        if i >= 5 {
            assert_eq!(
                stored.status,
                as_stored(i),
                "the facts agree with the comments"
            );
        }
        counted[match stored.status {
            CommentStatus::Approved => 0,
            CommentStatus::PendingReview => 1,
            CommentStatus::Rejected => 2,
        }] += 1;
    }
    assert_eq!(counted, [53, 1, 1], "comment 0 rejected, 54 reopened");
    let record = f
        .store
        .get_author(f.tenant, author, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        [record.approved, record.pending_review, record.rejected],
        counted,
        "the counts follow every change, also of comments older than the latest 50"
    );
}

/// Migration 17 builds each author's facts row from the comments already
/// stored (the latest 50, newest first, fingerprints of either sign, a
/// comment stored before fingerprints as 0); the next comment is prepended.
async fn author_facts_are_carried_over_from_comments_written_before_them(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url_for(backend, &dir).await;
    let tenant = uuid::Uuid::new_v4();
    let ids: Vec<uuid::Uuid> = (0..4).map(|_| uuid::Uuid::now_v7()).collect();
    let t0 = now() - Duration::hours(2);
    let times: Vec<DateTime<Utc>> = (0..4).map(|i| t0 + Duration::seconds(i)).collect();
    let (hash_a, sim_a, hash_b, sim_b) = (
        -7_425_123_456_789_012_345_i64,
        42_i64,
        9_000_000_000_000_000_001_i64,
        -1_i64,
    );
    let comment = |id: &str, author: &str, time: &str, status: &str, hashes: &str| {
        format!(
            "INSERT INTO comments (tenant_id, comment_id, article_id, author_id, \
             author_display_name, language, body, status, spam_score, reasons, create_time, \
             update_time, text_hash, simhash) VALUES ($1, {id}, 'a1', '{author}', '', 'fr', \
             'Un avis', '{status}', 0.1, '[]', {time}, {time}, {hashes})"
        )
    };
    let old_rows = [
        old_tenant_row("$6"),
        comment("$2", "ama", "$6", "approved", "$10, $11"),
        comment("$3", "ama", "$7", "pending_review", "$12, $13"),
        comment("$4", "ama", "$8", "rejected", "$10, $13"),
        comment("$5", "kofi", "$9", "approved", "NULL, NULL"),
    ];
    let old_rows: Vec<&str> = old_rows.iter().map(String::as_str).collect();
    migrated_to(backend, &url, migrations_before(backend, 20261201000017))
        .await
        .write(
            &old_rows,
            |sql| sql.to_owned(),
            |sql| sql.replace('$', "?"),
            &[
                Old::Id(tenant),
                Old::Id(ids[0]),
                Old::Id(ids[1]),
                Old::Id(ids[2]),
                Old::Id(ids[3]),
                Old::Time(times[0]),
                Old::Time(times[1]),
                Old::Time(times[2]),
                Old::Time(times[3]),
                Old::Int(hash_a),
                Old::Int(sim_a),
                Old::Int(hash_b),
                Old::Int(sim_b),
            ],
        )
        .await;

    let store = moderato::storage::connect(&url, &DbOptions::default())
        .await
        .unwrap();
    let tenant = TenantId::from_uuid(tenant);
    let entry = |exact, simhash, create_time, status| moderato::pipeline::spam::RecentComment {
        exact,
        simhash,
        create_time,
        status,
    };
    let carried = [
        entry(hash_a, sim_b, times[2], CommentStatus::Rejected),
        entry(hash_b, sim_b, times[1], CommentStatus::PendingReview),
        entry(hash_a, sim_a, times[0], CommentStatus::Approved),
    ];
    assert_eq!(recent_of(&store, tenant, "ama").await, carried);
    assert_eq!(
        recent_of(&store, tenant, "kofi").await,
        [entry(0, 0, times[3], CommentStatus::Approved)]
    );

    let next = NewComment {
        author_id: AuthorId::parse("a", "ama".into()).unwrap(),
        ..new_comment("a1", "Un autre avis sur le budget", None)
    };
    let approved = verdict(CommentStatus::Approved, 0);
    let at = now();
    store
        .insert_comments(&[(tenant, record_of(&next, &approved, &Actor::system(), at))])
        .await
        .pop()
        .unwrap()
        .unwrap();
    let fingerprint = Features::extract(next.body.as_str()).fingerprint;
    let recent = recent_of(&store, tenant, "ama").await;
    assert_eq!(
        recent[0],
        entry(
            fingerprint.exact,
            fingerprint.simhash,
            at,
            CommentStatus::Approved
        )
    );
    assert_eq!(recent[1..], carried);
    let counts = |author: &'static str| {
        let store = &store;
        async move {
            let r = store.get_author(tenant, author, 1).await.unwrap().unwrap();
            [r.approved, r.pending_review, r.rejected]
        }
    };
    assert_eq!(counts("ama").await, [2, 1, 1]);
    assert_eq!(counts("kofi").await, [1, 0, 0]);
}

/// Postgres checks no foreign key when a comment or its review item is
/// written (migration 13; the rows' parents are guaranteed by the code that
/// writes them), SQLite still does; on both, a parent that still has rows
/// cannot be deleted, whoever connects.
async fn a_tenant_or_comment_with_rows_is_never_deleted(backend: Backend) {
    let f = fixture(backend).await;
    let comment = new_comment("a1", "Un avis sur le budget", None);
    let (held, actor) = (verdict(CommentStatus::PendingReview, 0), Actor::system());
    let Ok(InsertOutcome::Created(stored)) = f
        .store
        .insert_comments(&[(f.tenant, record_of(&comment, &held, &actor, now()))])
        .await
        .pop()
        .unwrap()
    else {
        panic!("a new comment is created")
    };
    let (tenant, comment_id) = (f.tenant.as_uuid(), stored.comment_id.as_uuid());
    let deletes = [
        "DELETE FROM tenants WHERE tenant_id = $1",
        "DELETE FROM comments WHERE tenant_id = $1 AND comment_id = $2",
    ];
    for sql in deletes {
        let refused = match backend {
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&f.url).await.unwrap();
                sqlx::query(sql)
                    .bind(tenant)
                    .bind(comment_id)
                    .execute(&mut conn)
                    .await
                    .map(drop)
            }
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&f.url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(sql.replace('$', "?")))
                    .bind(tenant)
                    .bind(comment_id)
                    .execute(&mut conn)
                    .await
                    .map(drop)
            }
        };
        // Refused as a broken reference, not for any other reason.
        let err = refused.expect_err(sql);
        let code = err
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert!(
            matches!(code.as_deref(), Some("23503" | "787")),
            "{sql}: {err}"
        );
    }
    let kept = f
        .store
        .get_comment(f.tenant, stored.comment_id)
        .await
        .unwrap();
    assert_eq!(kept, Some(stored));
}

/// Postgres alone: several writers commit at once there (SQLite has one
/// writer at a time, so an event cannot commit behind a later one), and its
/// catalog holds what each index is for.
mod postgres_only {
    use super::*;

    /// Every index of a table each submission writes says which query it
    /// serves (migration 15): a new one without a purpose fails here.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_index_on_a_hot_table_names_its_query() {
        let f = fixture(Backend::Postgres).await;
        let mut conn = sqlx::PgConnection::connect(&f.url).await.unwrap();
        let unexplained: Vec<String> = sqlx::query_scalar(
            "SELECT i.indexrelid::regclass::text FROM pg_index i \
             WHERE i.indrelid IN ('comments'::regclass, 'review_items'::regclass, \
                'audit_events'::regclass, 'decision_sequence'::regclass, \
                'author_facts'::regclass) \
               AND obj_description(i.indexrelid, 'pg_class') IS NULL",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(unexplained, Vec::<String>::new());
    }

    /// A round never moves its watermark past an event whose transaction is
    /// still open: it waits for it (and gives up), and once it has committed
    /// numbers it first (it drew the lower id). Without the numbering lock
    /// the round would number the later event alone and never see the
    /// earlier one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_event_committed_late_is_numbered_not_skipped() {
        let f = fixture(Backend::Postgres).await;
        let early = uuid::Uuid::new_v4();
        let mut open = sqlx::PgConnection::connect(&f.url).await.unwrap();
        open.execute("BEGIN").await.unwrap();
        // A stream event, as another tool might write it: the trigger takes
        // the numbering lock.
        sqlx::query(
            "INSERT INTO audit_events (tenant_id, create_time, actor, action, subject_type, \
             subject_id, to_state, detail, comment_id, author_id, article_id, queued, version) \
             VALUES ($1, now(), 'system', 'comment.created', 'comment', $2::text, 'approved', \
             '{}', $2, 'ama', 'a1', false, 1)",
        )
        .bind(f.tenant.as_uuid())
        .bind(early)
        .execute(&mut open)
        .await
        .unwrap();

        let comment = new_comment("a1", "Un avis sur le budget", None);
        let (approved, actor) = (verdict(CommentStatus::Approved, 0), Actor::system());
        let Ok(InsertOutcome::Created(later)) = f
            .store
            .insert_comments(&[(f.tenant, record_of(&comment, &approved, &actor, now()))])
            .await
            .pop()
            .unwrap()
        else {
            panic!("a new comment is created")
        };
        // A round while the transaction is open waits for it, gives up after
        // its bounded wait, and numbers nothing.
        assert!(f.store.sequence_decision_events().await.is_err());
        assert_eq!(
            f.store.list_decision_events(f.tenant, 0, 10).await.unwrap(),
            []
        );
        open.execute("COMMIT").await.unwrap();
        assert_eq!(f.store.sequence_decision_events().await.unwrap(), 2);

        let events = f.store.list_decision_events(f.tenant, 0, 10).await.unwrap();
        let order: Vec<_> = events
            .iter()
            .map(|e| (e.sequence, e.comment_id.as_uuid()))
            .collect();
        assert_eq!(order, [(1, early), (2, later.comment_id.as_uuid())]);
    }

    /// A writer stuck inside its transaction holds the numbering lock
    /// shared: a round gives up after a bounded wait instead of queueing
    /// every other writer behind it, writes go on meanwhile, and the next
    /// round after the stuck transaction ends numbers everything.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_writer_delays_numbering_not_writes() {
        let f = fixture(Backend::Postgres).await;
        let mut stuck = sqlx::PgConnection::connect(&f.url).await.unwrap();
        stuck.execute("BEGIN").await.unwrap();
        sqlx::query("SELECT pg_advisory_xact_lock_shared(7885631859422491759)")
            .execute(&mut stuck)
            .await
            .unwrap();

        let comment = new_comment("a1", "Un avis sur le budget", None);
        let (approved, actor) = (verdict(CommentStatus::Approved, 0), Actor::system());
        let store = f.store.clone();
        let round = tokio::spawn(async move { store.sequence_decision_events().await });
        let written = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            f.store
                .insert_comments(&[(f.tenant, record_of(&comment, &approved, &actor, now()))]),
        )
        .await
        .expect("a write is not held behind the waiting round");
        assert!(matches!(written[..], [Ok(InsertOutcome::Created(_))]));
        let gave_up = tokio::time::timeout(std::time::Duration::from_secs(5), round)
            .await
            .expect("the round gives up")
            .unwrap();
        assert!(gave_up.is_err(), "no round while a writer holds the lock");

        stuck.execute("COMMIT").await.unwrap();
        assert_eq!(f.store.sequence_decision_events().await.unwrap(), 1);
    }

    /// A hot table that grew without statistics is analysed once by the
    /// service (not only by autovacuum's first pass, up to a minute or two
    /// later), and only once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hot_tables_that_grew_without_statistics_are_analysed_once() {
        let f = fixture(Backend::Postgres).await;
        let comments: Vec<NewComment> = (0..1100)
            .map(|i| new_comment("a1", &format!("Avis numéro {i} sur le budget"), None))
            .collect();
        let (approved, actor) = (verdict(CommentStatus::Approved, 0), Actor::system());
        for chunk in comments.chunks(128) {
            let batch: Vec<_> = chunk
                .iter()
                .map(|c| (f.tenant, record_of(c, &approved, &actor, now())))
                .collect();
            for outcome in f.store.insert_comments(&batch).await {
                outcome.unwrap();
            }
        }
        // Statistics reach pg_stat_user_tables within about a second.
        let mut analysed = 0;
        for _ in 0..50 {
            analysed += f.store.analyze_new_tables().await.unwrap();
            if analysed > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(analysed >= 2, "comments and their events: {analysed}");
        let mut conn = sqlx::PgConnection::connect(&f.url).await.unwrap();
        let analysed_at: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'comments'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert!(analysed_at.is_some());
        assert_eq!(f.store.analyze_new_tables().await.unwrap(), 0, "once");
    }

    /// Migration 12 numbers by a watermark. Events a release before it had
    /// not numbered yet (one of them behind a numbered one, as its rounds
    /// allowed) are numbered by the time the service runs (by migration 16,
    /// which numbers what is left before moving to one event log),
    /// continuing the tenant's sequence; numbered ones keep their numbers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_left_unnumbered_before_the_watermark_are_numbered_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let url = database_url_for(Backend::Postgres, &dir).await;
        let tenant = uuid::Uuid::new_v4();
        let comments: Vec<uuid::Uuid> = (0..4).map(|_| uuid::Uuid::new_v4()).collect();
        let OldPool::Postgres(pool) = migrated_to(Backend::Postgres, &url, 11).await else {
            unreachable!()
        };
        for (comment, sequence) in comments.iter().zip([Some(1i64), None, Some(2), None]) {
            sqlx::query(
                "INSERT INTO decision_events (tenant_id, sequence, comment_id, article_id, \
                 author_id, to_status, queued, version, create_time) \
                 VALUES ($1, $2, $3, 'a1', 'ama', 'approved', false, 1, now())",
            )
            .bind(tenant)
            .bind(sequence)
            .bind(comment)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;

        let store = moderato::storage::connect(&url, &DbOptions::default())
            .await
            .unwrap();
        assert_eq!(store.sequence_decision_events().await.unwrap(), 0);
        let tenant = TenantId::from_uuid(tenant);
        let events = store.list_decision_events(tenant, 0, 10).await.unwrap();
        let order: Vec<_> = events
            .iter()
            .map(|e| (e.sequence, e.comment_id.as_uuid()))
            .collect();
        assert_eq!(
            order,
            [
                (1, comments[0]),
                (2, comments[2]),
                (3, comments[1]),
                (4, comments[3])
            ]
        );
    }
}

/// A call dropped at any point (a client's deadline passing mid-call) leaves
/// no transaction open on its connection. With one connection in the pool,
/// claims are cut off after 0 to 2 ms, each followed by an insert (one
/// autocommit statement on Postgres), which a second store must then see.
/// Before the fix, a claim cut between sqlx's `BEGIN` and its answer left
/// the connection inside that transaction, and the insert "succeeded"
/// uncommitted: `moderato-chaos` lost an acknowledged comment so (issue #16).
async fn a_cancelled_call_leaves_no_transaction_open(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url_for(backend, &dir).await;
    let one = DbOptions {
        max_connections: 1,
        ..DbOptions::default()
    };
    let store = moderato::storage::connect(&url, &one).await.unwrap();
    let reader = moderato::storage::connect(&url, &DbOptions::default())
        .await
        .unwrap();
    let (tenant, _) = store
        .ensure_tenant(&TenantName::parse("t1").unwrap(), now())
        .await
        .unwrap();
    let actor = Actor::system();
    let approved = verdict(CommentStatus::Approved, 0);
    let mut cut_short = 0;
    for i in 0..300u64 {
        let at = now();
        let cut = std::time::Duration::from_micros(i % 3 * 1000);
        let claim = claim("m-1", 1, at, 60);
        if tokio::time::timeout(cut, store.claim_reviews(tenant, &claim))
            .await
            .is_err()
        {
            cut_short += 1;
        }
        let comment = new_comment("a1", "Un avis sur le budget", Some(&format!("k-{i}")));
        let record = record_of(&comment, &approved, &actor, at);
        let InsertOutcome::Created(created) = store.insert_comment(tenant, &record).await.unwrap()
        else {
            panic!("k-{i} not created");
        };
        assert!(
            reader
                .get_comment(tenant, created.comment_id)
                .await
                .unwrap()
                .is_some(),
            "k-{i}: inserted after a claim cut short, not committed"
        );
    }
    assert!(cut_short > 0, "no claim was cut short");
}
