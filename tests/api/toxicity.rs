//! The toxicity stage through gRPC and the CLI: hateful constructions held
//! with the spans of the group and of the attack, the toxicity score stored
//! and returned, `TestRules` showing toxicity reasons, and
//! `moderato eval --model toxicity` / `moderato eval-suite`; the language
//! detected when a comment comes without one; the tenant's toxicity model
//! taught by `MarkToxic`/`MarkNotToxic`, by review decisions and by
//! `moderato train --model toxicity`, on every replica.

use std::time::{Duration, Instant};

use moderato::domain::Role;
use moderato::grpc::pb;
use tonic::Code;

use crate::backend_tests;
use crate::helpers::{TestApp, spawn_app, spawn_app_on, violated_field};

backend_tests!(
    hate_is_held_with_the_group_and_the_attack_pointed_at,
    neutral_mentions_and_counter_speech_are_published,
    test_rules_shows_toxicity_reasons,
    the_cli_evaluates_toxicity_and_the_functional_suite,
    mark_toxic_and_mark_not_toxic_teach_once,
    review_decisions_teach_the_toxicity_model,
    a_toxicity_lesson_reaches_another_replica_within_a_second,
    the_cli_trains_the_toxicity_model,
    thresholds_are_set_per_category,
);

/// Abuse no lexicon names: only the classifier can learn it.
const JIBE: &str = "Retourne jouer aux billes au lieu de commenter, gamin sans cervelle";

/// `TestRules` as `key`: the classifier's probability (the `toxicity.classifier`
/// reason) and the spam score.
async fn scores(app: &TestApp, key: &str, body: &str) -> (f64, f64) {
    let dry = app
        .admin(key)
        .await
        .test_rules(pb::TestRulesRequest { body: body.into() })
        .await
        .unwrap()
        .into_inner();
    let classifier = dry
        .reasons
        .iter()
        .find(|r| r.code == "toxicity.classifier")
        .and_then(|r| r.score)
        .unwrap_or_else(|| panic!("{:?}", dry.reasons));
    (classifier, dry.spam_score)
}

async fn submit(app: &TestApp, author: &str, body: &str) -> pb::Comment {
    crate::helpers::submit_on(app, &app.admin_key, "a1", author, body).await
}

async fn hate_is_held_with_the_group_and_the_attack_pointed_at(backend: crate::helpers::Backend) {
    let app = spawn_app(backend).await;
    let body = "Franchement, les Peuls sont des cafards.";
    let held = submit(&app, "r1", body).await;
    assert_eq!(
        held.status,
        pb::CommentStatus::PendingReview as i32,
        "{held:?}"
    );
    let hate = held
        .reasons
        .iter()
        .find(|r| r.code == "hate.dehumanisation")
        .unwrap_or_else(|| panic!("{:?}", held.reasons));
    let text = |start: Option<u32>, end: Option<u32>| {
        &body[start.unwrap() as usize..end.unwrap() as usize]
    };
    assert_eq!(text(hate.start, hate.end), "cafards");
    assert_eq!(text(hate.target_start, hate.target_end), "Peuls");
    assert!(held.toxicity_score >= 0.9, "{}", held.toxicity_score);
    assert!(
        held.reasons
            .iter()
            .any(|r| r.code == "toxicity.identity_attack")
    );

    let read = app
        .comments(&app.admin_key)
        .await
        .get_comment(pb::GetCommentRequest {
            comment_id: held.comment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(
        read.toxicity_score, held.toxicity_score,
        "stored with the comment"
    );
    assert_eq!(read.language, "fr", "detected when not given");
    let english = submit(
        &app,
        "r3",
        "Thank you for this very clear article about the budget.",
    )
    .await;
    assert_eq!(english.language, "en");

    let threat = submit(&app, "r2", "Il faut exterminer les musulmans.").await;
    assert_ne!(threat.status, pb::CommentStatus::Approved as i32);
    assert!(
        threat.reasons.iter().any(|r| r.code == "hate.threat"),
        "{:?}",
        threat.reasons
    );
}

async fn neutral_mentions_and_counter_speech_are_published(backend: crate::helpers::Backend) {
    let app = spawn_app(backend).await;
    for (i, body) in [
        "Les éleveurs peuls et les agriculteurs dogons ont signé un accord de paix.",
        "Dire que les migrants sont des parasites, c'est du racisme.",
        "Je ne déteste pas les musulmans, ce sont mes voisins.",
        "Putain, quel match des Lions hier soir !",
    ]
    .into_iter()
    .enumerate()
    {
        let c = submit(&app, &format!("n{i}"), body).await;
        assert_eq!(
            c.status,
            pb::CommentStatus::Approved as i32,
            "{body}: {:?}",
            c.reasons
        );
    }
    let quoted = submit(
        &app,
        "q",
        "Dire que les Touaregs sont des rats, c'est de la haine.",
    )
    .await;
    assert!(
        quoted
            .reasons
            .iter()
            .any(|r| r.code == "hate.counter_speech"),
        "counter-speech is explained: {:?}",
        quoted.reasons
    );
}

async fn test_rules_shows_toxicity_reasons(backend: crate::helpers::Backend) {
    let app = spawn_app(backend).await;
    let dry = app
        .admin(&app.admin_key)
        .await
        .test_rules(pb::TestRulesRequest {
            body: "Je hais les réfugiés.".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dry.status, pb::CommentStatus::PendingReview as i32);
    assert!(
        dry.reasons.iter().any(|r| r.code == "hate.contempt"),
        "{:?}",
        dry.reasons
    );
    assert!(dry.reasons.iter().any(|r| r.code == "toxicity.classifier"));
    assert!(dry.toxicity_score >= 0.85);
}

async fn the_cli_evaluates_toxicity_and_the_functional_suite(backend: crate::helpers::Backend) {
    let app = spawn_app(backend).await;
    let run = |args: Vec<&'static str>| {
        let url = app.database_url.clone();
        async move {
            let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_moderato"))
                .args(args)
                .env("DATABASE_URL", url)
                .env("RUST_LOG", "warn")
                .output()
                .await
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).unwrap()
        }
    };
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/toxic.csv");
    let report: serde_json::Value = serde_json::from_str(
        &run(vec![
            "eval", "--tenant", "default", "--model", "toxicity", "--csv", fixture, "--json",
        ])
        .await,
    )
    .unwrap();
    assert_eq!(report["examples"], 8);
    assert_eq!(report["confusion"]["true_positives"], 4, "{report}");
    assert_eq!(report["confusion"]["false_positives"], 0, "{report}");

    let suite = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/functional/hate.toml");
    let report: serde_json::Value = serde_json::from_str(
        &run(vec![
            "eval-suite",
            "--tenant",
            "default",
            "--suite",
            suite,
            "--json",
        ])
        .await,
    )
    .unwrap();
    let fr = report["languages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["lang"] == "fr")
        .unwrap();
    assert!(fr["hateful_cases"].as_u64().unwrap() > 1000);
    assert!(fr["hateful_flagged"].as_f64().unwrap() > 0.5, "{fr}");
}

async fn mark_toxic_and_mark_not_toxic_teach_once(backend: crate::helpers::Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let c = crate::helpers::submit_on(&app, &publisher, "a1", "r1", JIBE).await;
    let mut client = app.comments(&publisher).await;
    let (before, spam_before) = scores(&app, &app.admin_key, JIBE).await;

    let first = client
        .mark_toxic(pb::MarkToxicRequest {
            comment_id: c.comment_id.clone(),
            category: pb::ToxicityCategory::Insult as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(first.learned);
    assert_eq!(first.model_version, 1);
    let (toxic, spam_after) = scores(&app, &app.admin_key, JIBE).await;
    assert!(toxic > before, "{before} -> {toxic}");
    assert_eq!(spam_after, spam_before, "the spam model learned nothing");

    let again = client
        .mark_toxic(pb::MarkToxicRequest {
            comment_id: c.comment_id.clone(),
            category: pb::ToxicityCategory::Threat as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !again.learned,
        "toxic twice teaches once, whatever the category"
    );
    assert_eq!(again.model_version, 1);
    assert_eq!(scores(&app, &app.admin_key, JIBE).await.0, toxic);

    let corrected = client
        .mark_not_toxic(pb::MarkNotToxicRequest {
            comment_id: c.comment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(corrected.learned);
    assert_eq!(corrected.model_version, 2);
    assert!(scores(&app, &app.admin_key, JIBE).await.0 < toxic);

    let unspecified = client
        .mark_toxic(pb::MarkToxicRequest {
            comment_id: c.comment_id.clone(),
            category: pb::ToxicityCategory::Unspecified as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(unspecified.code(), Code::InvalidArgument);
    assert_eq!(violated_field(&unspecified), "category");
    let unknown = client
        .mark_toxic(pb::MarkToxicRequest {
            comment_id: c.comment_id.clone(),
            category: 42,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&unknown), "category");
    let invalid = client
        .mark_not_toxic(pb::MarkNotToxicRequest {
            comment_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert_eq!(violated_field(&invalid), "comment_id");
    let missing = client
        .mark_not_toxic(pb::MarkNotToxicRequest {
            comment_id: "01937c5e-0000-7000-8000-000000000000".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let other = app.key_for("other-paper", Role::Admin).await;
    let foreign = app
        .comments(&other)
        .await
        .mark_toxic(pb::MarkToxicRequest {
            comment_id: c.comment_id.clone(),
            category: pb::ToxicityCategory::Insult as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(
        foreign.code(),
        Code::NotFound,
        "tenants never see each other's comments"
    );
    assert_eq!(
        scores(&app, &other, JIBE).await.0,
        before,
        "nor each other's models"
    );
}

/// Holds `body`, claims it and decides it with `reason_code`.
async fn hold_and_decide(
    app: &TestApp,
    author: &str,
    body: &str,
    decision: pb::ReviewDecision,
    reason_code: &str,
) {
    crate::helpers::hold_and_decide(
        app,
        author,
        body,
        pb::DecideReviewRequest {
            decision: decision as i32,
            reason_code: reason_code.into(),
            ..Default::default()
        },
    )
    .await;
}

async fn review_decisions_teach_the_toxicity_model(backend: crate::helpers::Backend) {
    let app = spawn_app(backend).await;
    let (before, spam_before) = scores(&app, &app.admin_key, JIBE).await;
    hold_and_decide(
        &app,
        "r1",
        JIBE,
        pb::ReviewDecision::Reject,
        "toxicity.insult",
    )
    .await;
    let (after, spam_after) = scores(&app, &app.admin_key, JIBE).await;
    assert!(after > before, "{before} -> {after}");
    assert_eq!(
        spam_after, spam_before,
        "a rejection for abuse is not a spam lesson"
    );

    let harsh = "Ce gouvernement est une honte absolue, une bande d'incompétents";
    let before = scores(&app, &app.admin_key, harsh).await.0;
    hold_and_decide(&app, "r2", harsh, pb::ReviewDecision::Approve, "").await;
    let after = scores(&app, &app.admin_key, harsh).await.0;
    assert!(
        after < before,
        "approving teaches not toxic: {before} -> {after}"
    );

    // A rejection for another reason teaches the toxicity model nothing.
    let off_topic = "Quelqu'un connaît un bon garagiste à Bamako ?";
    let before = scores(&app, &app.admin_key, off_topic).await.0;
    hold_and_decide(
        &app,
        "r3",
        off_topic,
        pb::ReviewDecision::Reject,
        "off_topic",
    )
    .await;
    assert_eq!(scores(&app, &app.admin_key, off_topic).await.0, before);

    let tenant = app
        .store
        .find_tenant(&moderato::domain::TenantName::parse("default").unwrap())
        .await
        .unwrap()
        .unwrap();
    let audit = app
        .store
        .list_audit_events(tenant, &moderato::storage::AuditQuery::all())
        .await
        .unwrap();
    let learned: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "toxicity.learned")
        .map(|e| (e.actor.as_str(), e.to_state.as_deref()))
        .collect();
    assert_eq!(
        learned,
        [("mod-1", Some("insult")), ("mod-1", Some("not_toxic"))]
    );
}

async fn a_toxicity_lesson_reaches_another_replica_within_a_second(
    backend: crate::helpers::Backend,
) {
    let first = spawn_app(backend).await;
    let second = spawn_app_on(tempfile::tempdir().unwrap(), first.database_url.clone()).await;
    let key = &first.admin_key;
    let before_on_second = scores(&second, key, JIBE).await.0;
    let c = crate::helpers::submit_on(&first, key, "a1", "r1", JIBE).await;
    first
        .comments(key)
        .await
        .mark_toxic(pb::MarkToxicRequest {
            comment_id: c.comment_id,
            category: pb::ToxicityCategory::Insult as i32,
        })
        .await
        .unwrap();
    let learned_on_first = scores(&first, key, JIBE).await.0;
    assert!(learned_on_first > before_on_second);
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let now_on_second = scores(&second, key, JIBE).await.0;
        if now_on_second == learned_on_first {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second replica still scores {now_on_second}, not {learned_on_first}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn the_cli_trains_the_toxicity_model(backend: crate::helpers::Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("labels.csv");
    // Category names and 0/1 both read as labels.
    std::fs::write(
        &file,
        format!(
            "comment,kind\n\"{JIBE}\",insult\n\"Va jouer aux billes, gamin\",1\n\
             Merci pour ce dossier sur la dette publique,0\n\
             Bon article sur la saison des pluies,not_toxic\n"
        ),
    )
    .unwrap();
    let before = scores(&app, &app.admin_key, JIBE).await.0;
    let run = |args: Vec<String>| {
        let url = app.database_url.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_moderato"))
                .args(args)
                .env("DATABASE_URL", url)
                .env("RUST_LOG", "warn")
                .output()
                .await
                .unwrap()
        }
    };
    let args = |label_column: &str| {
        [
            "train",
            "--model",
            "toxicity",
            "--tenant",
            "default",
            "--csv",
            file.to_str().unwrap(),
            "--text-column",
            "comment",
            "--label-column",
            label_column,
        ]
        .map(String::from)
        .to_vec()
    };
    let trained = run(args("kind")).await;
    let said = String::from_utf8_lossy(&trained.stderr);
    assert!(trained.status.success(), "{said}");
    assert!(said.contains("2 toxic and 2 clean"), "{said}");
    assert!(said.contains("model version 1"), "{said}");
    let deadline = Instant::now() + Duration::from_secs(2);
    while scores(&app, &app.admin_key, JIBE).await.0 <= before {
        assert!(Instant::now() < deadline, "the server did not pick it up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let bad = run(args("comment")).await;
    assert!(!bad.status.success());
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(said.contains("is not 1/0, toxic/not_toxic"), "{said}");
}

async fn thresholds_are_set_per_category(backend: crate::helpers::Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.admin_key).await;
    let settings = admin
        .get_tenant_settings(pb::GetTenantSettingsRequest {})
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    let of = |s: &pb::TenantSettings, c: pb::ToxicityCategory| {
        let t = s
            .toxicity_thresholds
            .iter()
            .find(|t| t.category == c as i32)
            .unwrap();
        (t.review_threshold, t.reject_threshold)
    };
    assert_eq!(settings.toxicity_thresholds.len(), 5, "every category");
    assert_eq!(of(&settings, pb::ToxicityCategory::Insult), (0.7, 0.97));
    assert_eq!(
        of(&settings, pb::ToxicityCategory::Obscene),
        (0.85, 1.0),
        "obscenity alone is never rejected"
    );

    let insult = "Ferme ta gueule, espèce de sale connard.";
    let held = submit(&app, "r1", insult).await;
    assert_ne!(held.status, pb::CommentStatus::Approved as i32);
    let threshold =
        |category: pb::ToxicityCategory, review: f64, reject: f64| pb::ToxicityThreshold {
            category: category as i32,
            review_threshold: review,
            reject_threshold: reject,
        };
    let updated = admin
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            toxicity_thresholds: vec![
                threshold(pb::ToxicityCategory::Insult, 0.5, 0.6),
                threshold(pb::ToxicityCategory::Obscene, 1.0, 1.0),
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(of(&updated, pb::ToxicityCategory::Insult), (0.5, 0.6));
    assert_eq!(
        of(&updated, pb::ToxicityCategory::Threat),
        (0.7, 0.97),
        "categories not named keep theirs"
    );
    let rejected = submit(&app, "r2", insult).await;
    assert_eq!(
        rejected.status,
        pb::CommentStatus::Rejected as i32,
        "{:?}",
        rejected.reasons
    );
    let reason = rejected
        .reasons
        .iter()
        .find(|r| r.code == "toxicity.insult")
        .unwrap();
    assert!(
        reason.message.contains("reject threshold 0.60"),
        "{}",
        reason.message
    );
    assert!(
        !rejected
            .reasons
            .iter()
            .any(|r| r.code == "toxicity.obscene"),
        "a threshold of 1 turns the category off"
    );
    let read = admin
        .get_tenant_settings(pb::GetTenantSettingsRequest {})
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(read, updated, "stored");

    for (bad, field) in [
        (
            vec![threshold(pb::ToxicityCategory::Unspecified, 0.5, 0.6)],
            "toxicity_thresholds[0].category",
        ),
        (
            vec![threshold(pb::ToxicityCategory::Threat, 0.5, 1.5)],
            "toxicity_thresholds[0].reject_threshold",
        ),
        (
            vec![threshold(pb::ToxicityCategory::Threat, 0.9, 0.5)],
            "toxicity_thresholds[0].review_threshold",
        ),
        (
            vec![
                threshold(pb::ToxicityCategory::Threat, 0.5, 0.9),
                threshold(pb::ToxicityCategory::Threat, 0.5, 0.9),
            ],
            "toxicity_thresholds[1].category",
        ),
    ] {
        let err = admin
            .update_tenant_settings(pb::UpdateTenantSettingsRequest {
                toxicity_thresholds: bad,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(violated_field(&err), field);
    }
    let unchanged = admin
        .get_tenant_settings(pb::GetTenantSettingsRequest {})
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(unchanged, updated, "a refused update changes nothing");
}
