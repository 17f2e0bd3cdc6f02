use std::time::{Duration, Instant};

use moderato::domain::Role;
use moderato::grpc::pb::{self, CommentStatus, RuleAction};
use tonic::Code;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, comment, spawn_app, spawn_app_on, violated_field};

backend_tests!(
    a_new_tenant_starts_from_the_default_pack,
    rules_are_created_updated_and_deleted_with_revisions,
    invalid_rules_are_refused_and_never_go_live,
    test_rules_is_a_dry_run_with_spans,
    a_tenant_cannot_grow_past_its_rule_limit,
    masked_words_are_published_as_stars,
    rules_belong_to_one_tenant,
    a_change_reaches_another_replica_within_a_second,
    the_cli_imports_and_exports_rule_files,
);

fn words_rule(id: &str, action: RuleAction, words: &[&str]) -> pb::Rule {
    pb::Rule {
        rule_id: id.into(),
        name: format!("Rule {id}"),
        enabled: true,
        action: action as i32,
        kind: Some(pb::rule::Kind::Words(pb::WordsRule {
            words: words.iter().map(|w| w.to_string()).collect(),
        })),
        ..Default::default()
    }
}

async fn submit(app: &TestApp, key: &str, body: &str) -> pb::Comment {
    app.comments(key)
        .await
        .submit_comment(comment("a1", "r1", body))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap()
}

async fn a_new_tenant_starts_from_the_default_pack(backend: Backend) {
    let app = spawn_app(backend).await;
    let listed = app
        .admin(&app.admin_key)
        .await
        .list_rules(pb::ListRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = listed.rules.iter().map(|r| r.rule_id.as_str()).collect();
    assert!(
        ids.contains(&"fr-insults-severe") && ids.contains(&"links-shorteners"),
        "{ids:?}"
    );
    assert!(listed.rules_version > 0);

    let rejected = submit(&app, &app.admin_key, "Espèce de c.o.n.n.a.r.d, dégage").await;
    assert_eq!(rejected.status, CommentStatus::Rejected as i32);
    let reason = rejected
        .reasons
        .iter()
        .find(|r| r.rule_id == "fr-insults-severe")
        .unwrap();
    assert_eq!(reason.code, "rule.words");
    assert_eq!(reason.action, "reject");
    assert!(!reason.rule_name.is_empty());
    let (start, end) = (reason.start.unwrap() as usize, reason.end.unwrap() as usize);
    assert_eq!(&rejected.body[start..end], "c.o.n.n.a.r.d");

    let clean = submit(
        &app,
        &app.admin_key,
        "La coopération régionale et la convergence des politiques",
    )
    .await;
    assert_eq!(
        clean.status,
        CommentStatus::Approved as i32,
        "{:?}",
        clean.reasons
    );
}

async fn rules_are_created_updated_and_deleted_with_revisions(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.admin_key).await;

    let created = admin
        .create_rule(pb::CreateRuleRequest {
            rule: Some(words_rule("custom", RuleAction::Review, &["ouaga-gate"])),
        })
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap();
    assert_eq!(created.revision, 1);
    let held = submit(&app, &app.admin_key, "Encore le scandale Ouaga-Gate").await;
    assert_eq!(held.status, CommentStatus::PendingReview as i32);
    assert!(
        held.reasons
            .iter()
            .any(|r| r.rule_id == "custom" && r.action == "review")
    );

    let duplicate = admin
        .create_rule(pb::CreateRuleRequest {
            rule: Some(words_rule("custom", RuleAction::Reject, &["x"])),
        })
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);

    let updated = admin
        .update_rule(pb::UpdateRuleRequest {
            rule: Some(words_rule("custom", RuleAction::Reject, &["ouaga-gate"])),
            expected_revision: Some(1),
        })
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap();
    assert_eq!(updated.revision, 2);
    let stale = admin
        .update_rule(pb::UpdateRuleRequest {
            rule: Some(words_rule("custom", RuleAction::Review, &["ouaga-gate"])),
            expected_revision: Some(1),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    let rejected = submit(&app, &app.admin_key, "Encore le scandale Ouaga-Gate").await;
    assert_eq!(rejected.status, CommentStatus::Rejected as i32);

    admin
        .delete_rule(pb::DeleteRuleRequest {
            rule_id: "custom".into(),
        })
        .await
        .unwrap();
    let approved = submit(&app, &app.admin_key, "Encore le scandale Ouaga-Gate").await;
    assert_eq!(approved.status, CommentStatus::Approved as i32);
    let missing = admin
        .delete_rule(pb::DeleteRuleRequest {
            rule_id: "custom".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let tenant = app
        .store
        .find_tenant(&moderato::domain::TenantName::parse("default").unwrap())
        .await
        .unwrap()
        .unwrap();
    let history: Vec<_> = app
        .store
        .list_audit_events(tenant, &moderato::storage::AuditQuery::subject("custom"))
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.detail["revision"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        history,
        [
            ("rule.created".to_owned(), 1),
            ("rule.updated".to_owned(), 2),
            ("rule.deleted".to_owned(), 3)
        ]
    );
}

async fn invalid_rules_are_refused_and_never_go_live(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.admin_key).await;
    let before = admin
        .list_rules(pb::ListRulesRequest {})
        .await
        .unwrap()
        .into_inner();

    let regex = |id: &str, pattern: &str| pb::Rule {
        kind: Some(pb::rule::Kind::Regex(pb::RegexRule {
            pattern: pattern.into(),
            normalized: false,
        })),
        ..words_rule(id, RuleAction::Reject, &[])
    };
    let err = admin
        .create_rule(pb::CreateRuleRequest {
            rule: Some(regex("broken", "(?i)gagne(z")),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "rule broken: pattern");
    assert!(
        err.message().contains("unclosed group"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains('^'),
        "the position is shown: {}",
        err.message()
    );

    let err = admin
        .create_rule(pb::CreateRuleRequest {
            rule: Some(regex("huge", r"\w{500}\w{500}\w{500}\w{500}")),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "rule huge: pattern");
    let err = admin
        .create_rule(pb::CreateRuleRequest {
            rule: Some(words_rule("empty", RuleAction::Reject, &[" ", "*"])),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "rule empty: words");
    let err = admin
        .create_rule(pb::CreateRuleRequest {
            rule: Some(pb::Rule {
                kind: None,
                ..words_rule("nokind", RuleAction::Reject, &[])
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "rule.kind");
    let err = admin
        .create_rule(pb::CreateRuleRequest {
            rule: Some(words_rule("Bad Id", RuleAction::Reject, &["x"])),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "rule.id");
    let err = admin
        .update_rule(pb::UpdateRuleRequest {
            rule: Some(regex("fr-insults-severe", "(")),
            expected_revision: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let after = admin
        .list_rules(pb::ListRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before, after, "nothing was written");
    let still = submit(&app, &app.admin_key, "quel connard").await;
    assert_eq!(
        still.status,
        CommentStatus::Rejected as i32,
        "the live set is intact"
    );
}

async fn test_rules_is_a_dry_run_with_spans(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.admin_key).await;
    let body = "Franchement, tu es un vrai c0nn4rd et ça c'est de la merde";
    let result = admin
        .test_rules(pb::TestRulesRequest { body: body.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(result.status, CommentStatus::Rejected as i32);
    let spans: Vec<&str> = result
        .reasons
        .iter()
        .filter(|r| r.start.is_some())
        .map(|r| &body[r.start.unwrap() as usize..r.end.unwrap() as usize])
        .collect();
    assert!(
        spans.contains(&"c0nn4rd") && spans.contains(&"merde"),
        "{spans:?}"
    );

    let listed = app
        .comments(&app.admin_key)
        .await
        .list_comments(pb::ListCommentsRequest {
            status: CommentStatus::Rejected as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.comments.is_empty(), "a dry run stores nothing");

    let err = admin
        .test_rules(pb::TestRulesRequest { body: "  ".into() })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "body");
}

async fn masked_words_are_published_as_stars(backend: Backend) {
    let app = spawn_app(backend).await;
    app.admin(&app.admin_key)
        .await
        .create_rule(pb::CreateRuleRequest {
            rule: Some(words_rule("soft", RuleAction::Mask, &["zut", "flûte"])),
        })
        .await
        .unwrap();
    let request = pb::SubmitCommentRequest {
        client_comment_id: "m-1".into(),
        ..comment("a1", "r1", "Zut alors, FLÛTE !")
    };
    let mut client = app.comments(&app.admin_key).await;
    let stored = client
        .submit_comment(request.clone())
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(stored.status, CommentStatus::Approved as i32);
    assert_eq!(stored.body, "*** alors, *** !");
    assert_eq!(stored.original_body, "Zut alors, FLÛTE !");
    let span = stored.reasons.iter().find(|r| r.action == "mask").unwrap();
    assert_eq!(
        &stored.original_body[span.start.unwrap() as usize..span.end.unwrap() as usize],
        "Zut"
    );

    let retried = client
        .submit_comment(request)
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(
        retried, stored,
        "a retry of a masked comment is still the same comment"
    );
    let fetched = client
        .get_comment(pb::GetCommentRequest {
            comment_id: stored.comment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(fetched, stored);
}

async fn rules_belong_to_one_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    let other_admin = app.key_for("other-paper", Role::Admin).await;
    app.admin(&other_admin)
        .await
        .create_rule(pb::CreateRuleRequest {
            rule: Some(words_rule("b-only", RuleAction::Reject, &["ouaga"])),
        })
        .await
        .unwrap();

    assert_eq!(
        submit(&app, &other_admin, "vive ouaga").await.status,
        CommentStatus::Rejected as i32
    );
    let elsewhere = submit(&app, &app.admin_key, "vive ouaga").await;
    assert_ne!(elsewhere.status, CommentStatus::Rejected as i32);
    assert!(elsewhere.reasons.iter().all(|r| r.rule_id != "b-only"));
    let mine = app
        .admin(&app.admin_key)
        .await
        .list_rules(pb::ListRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(mine.rules.iter().all(|r| r.rule_id != "b-only"));
    let err = app
        .admin(&app.admin_key)
        .await
        .delete_rule(pb::DeleteRuleRequest {
            rule_id: "b-only".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

async fn a_change_reaches_another_replica_within_a_second(backend: Backend) {
    let first = spawn_app(backend).await;
    let second = spawn_app_on(tempfile::tempdir().unwrap(), first.database_url.clone()).await;
    // The second replica compiles the tenant's rules before the change.
    assert_eq!(
        submit(&second, &first.admin_key, "le mot sesame")
            .await
            .status,
        CommentStatus::Approved as i32
    );

    first
        .admin(&first.admin_key)
        .await
        .create_rule(pb::CreateRuleRequest {
            rule: Some(words_rule("sesame", RuleAction::Reject, &["sésame"])),
        })
        .await
        .unwrap();
    let changed = Instant::now();

    let mut client = second.admin(&first.admin_key).await;
    loop {
        let result = client
            .test_rules(pb::TestRulesRequest {
                body: "le mot sesame".into(),
            })
            .await
            .unwrap()
            .into_inner();
        if result.status == CommentStatus::Rejected as i32 {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "the change did not reach the other replica within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn the_cli_imports_and_exports_rule_files(backend: Backend) {
    let app = spawn_app(backend).await;
    let run = |args: Vec<String>| {
        let url = app.database_url.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_moderato"))
                .args(&args)
                .env("DATABASE_URL", url)
                .env("RUST_LOG", "warn")
                .output()
                .await
                .unwrap()
        }
    };
    let exported = app.dir.path().join("rules.toml");
    let out = run(vec![
        "rules".into(),
        "export".into(),
        "--tenant".into(),
        "default".into(),
        exported.display().to_string(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(text.contains("id = \"fr-insults-severe\""));

    let extra = app.dir.path().join("extra.toml");
    std::fs::write(
        &extra,
        "[[rule]]\nid = \"cli-rule\"\nname = \"Ajoutée par la CLI\"\naction = \"reject\"\nkind = \"words\"\nwords = [\"abracadabra\"]\n",
    )
    .unwrap();
    let out = run(vec![
        "rules".into(),
        "import".into(),
        "--tenant".into(),
        "default".into(),
        extra.display().to_string(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The running server picks the import up by itself.
    let deadline = Instant::now() + Duration::from_secs(5);
    while submit(&app, &app.admin_key, "abracadabra").await.status != CommentStatus::Rejected as i32
    {
        assert!(
            Instant::now() < deadline,
            "the server never saw the imported rule"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let broken = app.dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        "[[rule]]\nid = \"ok\"\nname = \"ok\"\naction = \"review\"\nkind = \"words\"\nwords = [\"ok\"]\n\n[[rule]]\nid = \"bad\"\nname = \"bad\"\naction = \"reject\"\nkind = \"regex\"\npattern = \"(\"\n",
    )
    .unwrap();
    let out = run(vec![
        "rules".into(),
        "import".into(),
        "--tenant".into(),
        "default".into(),
        broken.display().to_string(),
    ])
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rule bad: pattern"));

    let out = run(vec![
        "rules".into(),
        "import".into(),
        "--tenant".into(),
        "default".into(),
        "--replace".into(),
        extra.display().to_string(),
    ])
    .await;
    assert!(out.status.success());
    let listed = app
        .admin(&app.admin_key)
        .await
        .list_rules(pb::ListRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = listed.rules.iter().map(|r| r.rule_id.as_str()).collect();
    assert_eq!(
        ids,
        ["cli-rule"],
        "the broken file changed nothing; --replace kept only the file's rules"
    );
}

/// A tenant has at most `MAX_RULES_PER_TENANT` rules: an import that would
/// pass it is refused before anything is written, and so is one more rule
/// over the API once the tenant is at the limit.
async fn a_tenant_cannot_grow_past_its_rule_limit(backend: Backend) {
    use moderato::domain::{MAX_RULES_PER_TENANT, RuleFile};
    let app = spawn_app(backend).await;
    let tenant = app.default_tenant().await;
    let file = |n: usize| {
        let text: String = (0..n)
            .map(|i| {
                format!(
                    "[[rule]]\nid = \"r{i}\"\nname = \"Règle {i}\"\naction = \"review\"\n\
                     kind = \"words\"\nwords = [\"mot{i}\"]\n\n"
                )
            })
            .collect();
        RuleFile::from_toml(&text).unwrap()
    };
    let (_, before) = app.store.load_rules(tenant).await.unwrap();
    let refused = moderato::moderation::import_rules(
        app.store.as_ref(),
        tenant,
        file(MAX_RULES_PER_TENANT + 1),
        true,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&refused, moderato::moderation::RuleError::Invalid(v) if v.field == "rule"),
        "{refused:?}"
    );
    let (_, after) = app.store.load_rules(tenant).await.unwrap();
    assert_eq!(after, before, "nothing written");

    moderato::moderation::import_rules(
        app.store.as_ref(),
        tenant,
        file(MAX_RULES_PER_TENANT),
        true,
    )
    .await
    .unwrap();
    let err = app
        .admin(&app.admin_key)
        .await
        .create_rule(pb::CreateRuleRequest {
            rule: Some(words_rule("one-more", RuleAction::Review, &["encore"])),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "rule");
    assert!(
        err.message().contains("at most 500 rules"),
        "{}",
        err.message()
    );
}
