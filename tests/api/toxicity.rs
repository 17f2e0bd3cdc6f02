//! The toxicity stage through gRPC and the CLI: hateful constructions held
//! with the spans of the group and of the attack, the toxicity score stored
//! and returned, `TestRules` showing toxicity reasons, and
//! `moderato eval --model toxicity` / `moderato eval-suite`; the language
//! detected when a comment comes without one.

use moderato::grpc::pb;

use crate::backend_tests;
use crate::helpers::{TestApp, spawn_app};

backend_tests!(
    hate_is_held_with_the_group_and_the_attack_pointed_at,
    neutral_mentions_and_counter_speech_are_published,
    test_rules_shows_toxicity_reasons,
    the_cli_evaluates_toxicity_and_the_functional_suite,
);

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
