//! The spam score through gRPC: explanations, author history, learning from
//! decisions and from `MarkSpam`/`MarkHam`, replicas sharing one model, and
//! the `train`/`eval` commands.

use std::time::{Duration, Instant};

use moderato::domain::Role;
use moderato::grpc::pb;
use tonic::Code;

use crate::backend_tests;
use crate::helpers::{TestApp, spawn_app, spawn_app_on, violated_field};

backend_tests!(
    every_score_is_explained,
    a_rejected_spam_is_scored_higher_afterwards,
    mark_spam_and_mark_ham_teach_once,
    a_decision_can_teach_nothing_or_the_opposite,
    repeated_texts_and_bursts_raise_the_score,
    a_model_learned_on_one_replica_scores_on_another,
    the_cli_trains_and_evaluates_on_a_labelled_file,
);

const OFFER: &str = "Gagnez 300 000 FCFA par semaine depuis chez vous, écrivez-moi sur WhatsApp";

async fn dry_run(app: &TestApp, body: &str) -> pb::TestRulesResponse {
    dry_run_as(app, &app.admin_key, body).await
}

async fn dry_run_as(app: &TestApp, key: &str, body: &str) -> pb::TestRulesResponse {
    app.admin(key)
        .await
        .test_rules(pb::TestRulesRequest { body: body.into() })
        .await
        .unwrap()
        .into_inner()
}

async fn submit(app: &TestApp, key: &str, author: &str, body: &str) -> pb::Comment {
    crate::helpers::submit_on(app, key, "a1", author, body).await
}

fn codes(c: &pb::Comment) -> Vec<&str> {
    c.reasons.iter().map(|r| r.code.as_str()).collect()
}

async fn every_score_is_explained(backend: crate::helpers::Backend) {
    let app = spawn_app(backend).await;
    let body = "Abonnez-vous à ma chaîne !!!! https://bit.ly/gains-rapides";
    let c = submit(&app, &app.admin_key, "promo", body).await;
    assert_ne!(c.status, pb::CommentStatus::Approved as i32, "{c:?}");
    let classifier = c
        .reasons
        .iter()
        .find(|r| r.code == "spam.classifier")
        .unwrap();
    // Rules that add to the score (the default pack has some) combine with
    // the classifier's probability as a noisy OR.
    let classifier_score = classifier.score.unwrap();
    assert!(classifier_score > 0.5 && classifier_score <= c.spam_score);
    for expected in [
        "spam.link",
        "spam.shortener",
        "spam.repeated_characters",
        "spam.first_comment",
    ] {
        assert!(
            codes(&c).contains(&expected),
            "{expected} in {:?}",
            codes(&c)
        );
    }
    let link = c.reasons.iter().find(|r| r.code == "spam.link").unwrap();
    assert_eq!(
        &body[link.start.unwrap() as usize..link.end.unwrap() as usize],
        "https://bit.ly/gains-rapides"
    );
    assert!(link.score.unwrap() > 0.0, "a link adds to the score");
    let word = c.reasons.iter().find(|r| r.code == "spam.word").unwrap();
    assert!(word.start.is_some() && word.score.unwrap() > 0.0);

    let clean = submit(
        &app,
        &app.admin_key,
        "lectrice",
        "Le gouvernement doit expliquer la hausse du prix du carburant.",
    )
    .await;
    assert_eq!(clean.status, pb::CommentStatus::Approved as i32);
    assert!(clean.spam_score < 0.5);
    assert_eq!(
        codes(&clean)[0],
        "spam.classifier",
        "approvals are explained too"
    );
}

/// Holds `body`, claims it and decides it with `label`.
async fn hold_and_decide(
    app: &TestApp,
    author: &str,
    body: &str,
    decision: pb::ReviewDecision,
    label: pb::SpamLabel,
) -> pb::Comment {
    crate::helpers::hold_and_decide(
        app,
        author,
        body,
        pb::DecideReviewRequest {
            decision: decision as i32,
            spam_label: label as i32,
            ..Default::default()
        },
    )
    .await
}

async fn a_rejected_spam_is_scored_higher_afterwards(backend: crate::helpers::Backend) {
    let app = spawn_app(backend).await;
    let before = dry_run(&app, OFFER).await.spam_score;
    hold_and_decide(
        &app,
        "r1",
        OFFER,
        pb::ReviewDecision::Reject,
        pb::SpamLabel::Unspecified,
    )
    .await;
    let after = dry_run(&app, OFFER).await.spam_score;
    assert!(after > before, "{before} -> {after}");

    let approved = "Merci pour ce reportage sur les inondations à Abidjan";
    let before = dry_run(&app, approved).await.spam_score;
    hold_and_decide(
        &app,
        "r2",
        approved,
        pb::ReviewDecision::Approve,
        pb::SpamLabel::Unspecified,
    )
    .await;
    let after = dry_run(&app, approved).await.spam_score;
    assert!(after < before, "{before} -> {after}");

    let audit = app
        .store
        .list_audit_events(
            app.store
                .find_tenant(&moderato::domain::TenantName::parse("default").unwrap())
                .await
                .unwrap()
                .unwrap(),
            &moderato::storage::AuditQuery::all(),
        )
        .await
        .unwrap();
    let learned: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "spam.learned")
        .collect();
    assert_eq!(learned.len(), 2);
    assert_eq!(learned[0].to_state.as_deref(), Some("spam"));
    assert_eq!(learned[0].actor, "mod-1");
    assert_eq!(learned[1].to_state.as_deref(), Some("ham"));
}

async fn mark_spam_and_mark_ham_teach_once(backend: crate::helpers::Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let c = submit(&app, &publisher, "r1", OFFER).await;
    let mut client = app.comments(&publisher).await;
    let before = dry_run(&app, OFFER).await.spam_score;

    let first = client
        .mark_spam(pb::MarkSpamRequest {
            comment_id: c.comment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(first.learned);
    assert_eq!(first.model_version, 1);
    let spammier = dry_run(&app, OFFER).await.spam_score;
    assert!(spammier > before, "{before} -> {spammier}");

    let again = client
        .mark_spam(pb::MarkSpamRequest {
            comment_id: c.comment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!again.learned, "the same label twice teaches once");
    assert_eq!(again.model_version, 1);
    assert_eq!(dry_run(&app, OFFER).await.spam_score, spammier);

    let corrected = client
        .mark_ham(pb::MarkHamRequest {
            comment_id: c.comment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(corrected.learned, "a different label is learned");
    assert_eq!(corrected.model_version, 2);
    assert!(dry_run(&app, OFFER).await.spam_score < spammier);
    let unchanged = client
        .get_comment(pb::GetCommentRequest {
            comment_id: c.comment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(unchanged.status, c.status, "marking changes no status");

    let missing = client
        .mark_spam(pb::MarkSpamRequest {
            comment_id: "01937c5e-0000-7000-8000-000000000000".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let invalid = client
        .mark_ham(pb::MarkHamRequest {
            comment_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert_eq!(violated_field(&invalid), "comment_id");

    let other = app.key_for("other-paper", Role::Admin).await;
    let foreign = app
        .comments(&other)
        .await
        .mark_spam(pb::MarkSpamRequest {
            comment_id: c.comment_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        foreign.code(),
        Code::NotFound,
        "tenants never see each other's comments"
    );
}

async fn a_decision_can_teach_nothing_or_the_opposite(backend: crate::helpers::Backend) {
    let app = spawn_app(backend).await;
    let insult = "Ce ministre est un incapable et un voleur, honte à lui";
    let before = dry_run(&app, insult).await.spam_score;
    hold_and_decide(
        &app,
        "r1",
        insult,
        pb::ReviewDecision::Reject,
        pb::SpamLabel::Skip,
    )
    .await;
    assert_eq!(
        dry_run(&app, insult).await.spam_score,
        before,
        "nothing learned"
    );

    let reject_but_ham = "Hors sujet mais je voulais dire bonjour à tous les lecteurs";
    let before = dry_run(&app, reject_but_ham).await.spam_score;
    hold_and_decide(
        &app,
        "r2",
        reject_but_ham,
        pb::ReviewDecision::Reject,
        pb::SpamLabel::Ham,
    )
    .await;
    assert!(dry_run(&app, reject_but_ham).await.spam_score < before);

    let bad = app
        .reviews(&app.admin_key)
        .await
        .decide_review(pb::DecideReviewRequest {
            review_id: "01937c5e-0000-7000-8000-000000000000".into(),
            decision: pb::ReviewDecision::Approve as i32,
            spam_label: 42,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(violated_field(&bad), "spam_label");
}

async fn repeated_texts_and_bursts_raise_the_score(backend: crate::helpers::Backend) {
    let app = spawn_app(backend).await;
    let text = "Le prix du carburant a encore augmenté ce mois-ci dans tout le pays";
    let first = submit(&app, &app.admin_key, "r1", text).await;
    assert!(!codes(&first).contains(&"spam.repeated_text"));
    let again = submit(&app, &app.admin_key, "r1", text).await;
    assert!(
        codes(&again).contains(&"spam.repeated_text"),
        "{:?}",
        codes(&again)
    );
    assert!(again.spam_score > first.spam_score);
    let near = submit(
        &app,
        &app.admin_key,
        "r1",
        "Le prix du carburant a encore augmenté ce mois-ci dans tout le pays !!",
    )
    .await;
    assert!(
        codes(&near).contains(&"spam.repeated_text"),
        "normalised copies are exact copies"
    );
    let nearly = submit(
        &app,
        &app.admin_key,
        "r1",
        "Le prix du carburant a encore augmenté ce mois-ci dans tout le pays, hélas",
    )
    .await;
    assert!(
        codes(&nearly).contains(&"spam.near_duplicate"),
        "{:?}",
        codes(&nearly)
    );
    let elsewhere = submit(&app, &app.admin_key, "r2", text).await;
    assert!(
        codes(&elsewhere).contains(&"spam.text_elsewhere"),
        "{:?}",
        codes(&elsewhere)
    );
    assert!(codes(&elsewhere).contains(&"spam.first_comment"));

    // r1 has posted 4 comments within the minute; a fifth one is not yet a
    // burst (and fresh approvals make no record), a sixth is.
    let fifth = submit(
        &app,
        &app.admin_key,
        "r1",
        "La saison des pluies commence tôt cette année",
    )
    .await;
    let quiet = ["spam.velocity", "spam.author_record", "spam.first_comment"];
    assert!(
        !codes(&fifth).iter().any(|c| quiet.contains(c)),
        "{:?}",
        codes(&fifth)
    );
    let sixth = submit(
        &app,
        &app.admin_key,
        "r1",
        "Les écoles rouvrent lundi prochain selon le ministère",
    )
    .await;
    assert!(
        codes(&sixth).contains(&"spam.velocity"),
        "{:?}",
        codes(&sixth)
    );

    // Short texts are never duplicates: many readers write "Bravo !".
    let bravo_1 = submit(&app, &app.admin_key, "r3", "Bravo !").await;
    let bravo_2 = submit(&app, &app.admin_key, "r4", "Bravo !").await;
    assert!(!codes(&bravo_2).contains(&"spam.text_elsewhere"));
    assert_eq!(bravo_1.spam_score, bravo_2.spam_score);
}

async fn a_model_learned_on_one_replica_scores_on_another(backend: crate::helpers::Backend) {
    let first = spawn_app(backend).await;
    let second = spawn_app_on(tempfile::tempdir().unwrap(), first.database_url.clone()).await;
    let key = &first.admin_key;
    let before_on_second = dry_run_as(&second, key, OFFER).await.spam_score;
    let c = submit(&first, &first.admin_key, "r1", OFFER).await;
    first
        .comments(&first.admin_key)
        .await
        .mark_spam(pb::MarkSpamRequest {
            comment_id: c.comment_id,
        })
        .await
        .unwrap();
    let learned_on_first = dry_run(&first, OFFER).await.spam_score;
    assert!(learned_on_first > before_on_second);
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let now_on_second = dry_run_as(&second, key, OFFER).await.spam_score;
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

async fn moderato(app: &TestApp, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_moderato"))
        .args(args)
        .env("DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap()
}

async fn the_cli_trains_and_evaluates_on_a_labelled_file(backend: crate::helpers::Backend) {
    let app = spawn_app(backend).await;
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/labelled.csv");
    let eval = |app: &TestApp| {
        let app_url = app.database_url.clone();
        async move {
            let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_moderato"))
                .args(["eval", "--tenant", "default", "--csv", fixture])
                .args([
                    "--text-column",
                    "comment",
                    "--label-column",
                    "is_spam",
                    "--json",
                ])
                .env("DATABASE_URL", app_url)
                .env("RUST_LOG", "warn")
                .output()
                .await
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
        }
    };
    let before = eval(&app).await;
    assert_eq!(before["examples"], 12);
    assert_eq!(before["spam"], 6);
    assert_eq!(before["curve"].as_array().unwrap().len(), 19);
    for field in [
        "accuracy",
        "precision",
        "recall",
        "f1",
        "mcc",
        "ham_auto_rejected",
        "spam_auto_approved",
        "review_share",
    ] {
        let value = before[field].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&value), "{field} = {value}");
    }

    let probe =
        "Investissez 50 000 FCFA et recevez 500 000 FCFA en une semaine, contactez Mme Diallo";
    let untrained = dry_run(&app, probe).await.spam_score;
    let trained = moderato(
        &app,
        &[
            "train",
            "--tenant",
            "default",
            "--csv",
            fixture,
            "--text-column",
            "comment",
            "--label-column",
            "is_spam",
        ],
    )
    .await;
    assert!(
        trained.status.success(),
        "{}",
        String::from_utf8_lossy(&trained.stderr)
    );
    let said = String::from_utf8_lossy(&trained.stderr);
    assert!(said.contains("6 spam and 6 ham"), "{said}");
    assert!(said.contains("model version 1"), "{said}");
    let after = eval(&app).await;
    assert!(
        after["mcc"].as_f64().unwrap() >= before["mcc"].as_f64().unwrap(),
        "training on a file does not make it worse on that file: {before} -> {after}"
    );
    assert_eq!(
        after["mcc"], 1.0,
        "a training set this small is learned exactly"
    );

    // The running server picks the new statistics up by itself.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let scored = dry_run(&app, probe).await.spam_score;
        if scored > untrained {
            break;
        }
        assert!(Instant::now() < deadline, "still {scored}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let wrong_column = moderato(
        &app,
        &[
            "train",
            "--tenant",
            "default",
            "--csv",
            fixture,
            "--text-column",
            "CONTENT",
            "--label-column",
            "is_spam",
        ],
    )
    .await;
    assert!(!wrong_column.status.success());
    assert!(
        String::from_utf8_lossy(&wrong_column.stderr).contains("no column \"CONTENT\""),
        "{}",
        String::from_utf8_lossy(&wrong_column.stderr)
    );
    let no_tenant = moderato(
        &app,
        &[
            "eval",
            "--tenant",
            "nobody",
            "--csv",
            fixture,
            "--text-column",
            "comment",
            "--label-column",
            "is_spam",
        ],
    )
    .await;
    assert!(!no_tenant.status.success());
}
