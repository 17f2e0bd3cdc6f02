//! Every RPC, called with another tenant's ids (never data: `NOT_FOUND` or
//! an answer without any of the first tenant's data), with no key, a
//! garbled key, a revoked key, an expired key, and with each role that may
//! not call it.

use std::time::Duration;

use moderato::domain::Role;
use moderato::grpc::pb::admin_service_client::AdminServiceClient;
use moderato::grpc::pb::comment_service_client::CommentServiceClient;
use moderato::grpc::pb::review_service_client::ReviewServiceClient;
use moderato::grpc::pb::{self, ReviewDecision};
use tonic::{Code, Status};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, comment, spawn_app};

backend_tests!(every_rpc_keeps_tenants_apart_and_refuses_bad_keys);

/// What tenant A owns; none of it may reach tenant B.
struct Ids {
    approved: String,
    held: String,
    review: String,
    rule: String,
    key: String,
    webhook: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rpc {
    SubmitComment,
    GetComment,
    ListComments,
    MarkSpam,
    MarkHam,
    MarkToxic,
    MarkNotToxic,
    ReportComment,
    WatchDecisions,
    ListReviewQueue,
    ClaimReviews,
    DecideReview,
    DecideReviews,
    ReopenComment,
    ReleaseReviews,
    SetAuthorStanding,
    GetAuthor,
    WatchQueue,
    CreateApiKey,
    RevokeApiKey,
    ListApiKeys,
    GetTenantSettings,
    UpdateTenantSettings,
    CreateRule,
    UpdateRule,
    DeleteRule,
    ListRules,
    TestRules,
    ListAuditEvents,
    ExportAuthor,
    EraseAuthor,
    CreateWebhook,
    ListWebhooks,
    UpdateWebhook,
    DeleteWebhook,
    RotateWebhookSecret,
    ListWebhookDeliveries,
    RetryWebhookDelivery,
}

const ALL: [Rpc; 38] = [
    Rpc::SubmitComment,
    Rpc::GetComment,
    Rpc::ListComments,
    Rpc::MarkSpam,
    Rpc::MarkHam,
    Rpc::MarkToxic,
    Rpc::MarkNotToxic,
    Rpc::ReportComment,
    Rpc::WatchDecisions,
    Rpc::ListReviewQueue,
    Rpc::ClaimReviews,
    Rpc::DecideReview,
    Rpc::DecideReviews,
    Rpc::ReopenComment,
    Rpc::ReleaseReviews,
    Rpc::SetAuthorStanding,
    Rpc::GetAuthor,
    Rpc::WatchQueue,
    Rpc::CreateApiKey,
    Rpc::RevokeApiKey,
    Rpc::ListApiKeys,
    Rpc::GetTenantSettings,
    Rpc::UpdateTenantSettings,
    Rpc::CreateRule,
    Rpc::UpdateRule,
    Rpc::DeleteRule,
    Rpc::ListRules,
    Rpc::TestRules,
    Rpc::ListAuditEvents,
    Rpc::ExportAuthor,
    Rpc::EraseAuthor,
    Rpc::CreateWebhook,
    Rpc::ListWebhooks,
    Rpc::UpdateWebhook,
    Rpc::DeleteWebhook,
    Rpc::RotateWebhookSecret,
    Rpc::ListWebhookDeliveries,
    Rpc::RetryWebhookDelivery,
];

const ROLES: [Role; 3] = [Role::Publisher, Role::Moderator, Role::Admin];

const BODY_APPROVED: &str = "Analyse de A, marqueur-a-approuve-41.";
const BODY_HELD: &str = "Analyse de A, marqueur-a-retenu-42.";
const RULE_WORD: &str = "mot-regle-de-a-43";
const WEBHOOK_URL: &str = "https://cms-de-a.example/hook-a-44";

impl Rpc {
    fn allowed(self) -> &'static [Role] {
        use Rpc::*;
        match self {
            SubmitComment | ReportComment => &[Role::Publisher, Role::Admin],
            GetComment | ListComments | MarkSpam | MarkHam | MarkToxic | MarkNotToxic
            | WatchDecisions => &ROLES,
            ListReviewQueue | ClaimReviews | DecideReview | DecideReviews | ReopenComment
            | ReleaseReviews | SetAuthorStanding | GetAuthor | WatchQueue | ListAuditEvents => {
                &[Role::Moderator, Role::Admin]
            }
            CreateApiKey
            | RevokeApiKey
            | ListApiKeys
            | GetTenantSettings
            | UpdateTenantSettings
            | CreateRule
            | UpdateRule
            | DeleteRule
            | ListRules
            | TestRules
            | ExportAuthor
            | EraseAuthor
            | CreateWebhook
            | ListWebhooks
            | UpdateWebhook
            | DeleteWebhook
            | RotateWebhookSecret
            | ListWebhookDeliveries
            | RetryWebhookDelivery => &[Role::Admin],
        }
    }

    /// Calls the RPC with tenant A's ids; the answer as text.
    async fn call(self, app: &TestApp, key: Option<&str>, a: &Ids) -> Result<String, Status> {
        let show = |r: &dyn std::fmt::Debug| format!("{r:?}");
        let mut comments = CommentServiceClient::new(app.authed(key).await);
        let mut reviews = ReviewServiceClient::new(app.authed(key).await);
        let mut admin = AdminServiceClient::new(app.authed(key).await);
        let decide = |review: &str| pb::DecideReviewRequest {
            review_id: review.to_owned(),
            decision: ReviewDecision::Approve as i32,
            moderator_id: "mod-b".into(),
            ..Default::default()
        };
        let neutral_rule = |id: &str| pb::Rule {
            rule_id: id.to_owned(),
            name: "B's rule".into(),
            enabled: true,
            action: pb::RuleAction::Review as i32,
            kind: Some(pb::rule::Kind::Words(pb::WordsRule {
                words: vec!["neutre".into()],
            })),
            ..Default::default()
        };
        match self {
            Rpc::SubmitComment => comments
                .submit_comment(comment("article-a", "author-a", "Un avis de B."))
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::GetComment => comments
                .get_comment(pb::GetCommentRequest {
                    comment_id: a.approved.clone(),
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::ListComments => comments
                .list_comments(pb::ListCommentsRequest {
                    article_id: "article-a".into(),
                    ..Default::default()
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::MarkSpam => comments
                .mark_spam(pb::MarkSpamRequest {
                    comment_id: a.approved.clone(),
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::MarkHam => comments
                .mark_ham(pb::MarkHamRequest {
                    comment_id: a.approved.clone(),
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::MarkToxic => comments
                .mark_toxic(pb::MarkToxicRequest {
                    comment_id: a.approved.clone(),
                    category: pb::ToxicityCategory::Insult as i32,
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::MarkNotToxic => comments
                .mark_not_toxic(pb::MarkNotToxicRequest {
                    comment_id: a.approved.clone(),
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::ReportComment => comments
                .report_comment(pb::ReportCommentRequest {
                    comment_id: a.approved.clone(),
                    reporter_id: "reader-b".into(),
                    reason: pb::ReportReason::Spam as i32,
                    detail: String::new(),
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::WatchDecisions => {
                let mut stream = comments
                    .watch_decisions(pb::WatchDecisionsRequest { after_sequence: 0 })
                    .await?
                    .into_inner();
                Ok(first_events(&mut stream).await)
            }
            Rpc::ListReviewQueue => reviews
                .list_review_queue(pb::ListReviewQueueRequest::default())
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::ClaimReviews => reviews
                .claim_reviews(pb::ClaimReviewsRequest {
                    max_items: 10,
                    moderator_id: "mod-b".into(),
                    ..Default::default()
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::DecideReview => reviews
                .decide_review(decide(&a.review))
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::DecideReviews => reviews
                .decide_reviews(pb::DecideReviewsRequest {
                    decisions: vec![pb::BulkDecision {
                        review_id: a.review.clone(),
                        decision: ReviewDecision::Approve as i32,
                        ..Default::default()
                    }],
                    moderator_id: "mod-b".into(),
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::ReopenComment => reviews
                .reopen_comment(pb::ReopenCommentRequest {
                    comment_id: a.approved.clone(),
                    moderator_id: "mod-b".into(),
                    ..Default::default()
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::ReleaseReviews => reviews
                .release_reviews(pb::ReleaseReviewsRequest {
                    review_ids: vec![a.review.clone()],
                    moderator_id: "mod-b".into(),
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::SetAuthorStanding => reviews
                .set_author_standing(pb::SetAuthorStandingRequest {
                    author_id: "author-a".into(),
                    standing: pb::AuthorStanding::Banned as i32,
                    reason: "test".into(),
                    moderator_id: "mod-b".into(),
                    ..Default::default()
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::GetAuthor => reviews
                .get_author(pb::GetAuthorRequest {
                    author_id: "author-a".into(),
                    page_size: 50,
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::WatchQueue => {
                let mut stream = reviews
                    .watch_queue(pb::WatchQueueRequest { after_sequence: 0 })
                    .await?
                    .into_inner();
                Ok(first_events(&mut stream).await)
            }
            Rpc::CreateApiKey => admin
                .create_api_key(pb::CreateApiKeyRequest {
                    role: pb::ApiKeyRole::Publisher as i32,
                    ..Default::default()
                })
                .await
                .map(|r| show(&r.into_inner().api_key)),
            Rpc::RevokeApiKey => admin
                .revoke_api_key(pb::RevokeApiKeyRequest {
                    key_id: a.key.clone(),
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::ListApiKeys => admin
                .list_api_keys(pb::ListApiKeysRequest {})
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::GetTenantSettings => admin
                .get_tenant_settings(pb::GetTenantSettingsRequest {})
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::UpdateTenantSettings => admin
                .update_tenant_settings(pb::UpdateTenantSettingsRequest {
                    max_comments_per_author_per_minute: Some(0),
                    ..Default::default()
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::CreateRule => admin
                .create_rule(pb::CreateRuleRequest {
                    rule: Some(neutral_rule("made-by-b")),
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::UpdateRule => admin
                .update_rule(pb::UpdateRuleRequest {
                    rule: Some(neutral_rule(&a.rule)),
                    expected_revision: None,
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::DeleteRule => admin
                .delete_rule(pb::DeleteRuleRequest {
                    rule_id: a.rule.clone(),
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::ListRules => admin
                .list_rules(pb::ListRulesRequest {})
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::TestRules => admin
                .test_rules(pb::TestRulesRequest {
                    body: "Un texte neutre.".into(),
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::ListAuditEvents => admin
                .list_audit_events(pb::ListAuditEventsRequest {
                    page_size: 1_000,
                    ..Default::default()
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::ExportAuthor => admin
                .export_author(pb::ExportAuthorRequest {
                    author_id: "author-a".into(),
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::EraseAuthor => admin
                .erase_author(pb::EraseAuthorRequest {
                    author_id: "author-a".into(),
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::CreateWebhook => admin
                .create_webhook(pb::CreateWebhookRequest {
                    url: "https://cms-de-b.example/hook".into(),
                    ..Default::default()
                })
                .await
                .map(|r| show(&r.into_inner().webhook)),
            Rpc::ListWebhooks => admin
                .list_webhooks(pb::ListWebhooksRequest {})
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::UpdateWebhook => admin
                .update_webhook(pb::UpdateWebhookRequest {
                    webhook_id: a.webhook.clone(),
                    enabled: Some(false),
                    ..Default::default()
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::DeleteWebhook => admin
                .delete_webhook(pb::DeleteWebhookRequest {
                    webhook_id: a.webhook.clone(),
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::RotateWebhookSecret => admin
                .rotate_webhook_secret(pb::RotateWebhookSecretRequest {
                    webhook_id: a.webhook.clone(),
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::ListWebhookDeliveries => admin
                .list_webhook_deliveries(pb::ListWebhookDeliveriesRequest {
                    webhook_id: a.webhook.clone(),
                    ..Default::default()
                })
                .await
                .map(|r| show(&r.into_inner())),
            Rpc::RetryWebhookDelivery => admin
                .retry_webhook_delivery(pb::RetryWebhookDeliveryRequest {
                    webhook_id: a.webhook.clone(),
                    message_id: "msg_seq_1".into(),
                })
                .await
                .map(|r| show(&r.into_inner())),
        }
    }
}

/// What a stream delivers in its first 300 ms.
async fn first_events<T: std::fmt::Debug>(stream: &mut tonic::Streaming<T>) -> String {
    let mut seen = String::new();
    let until = tokio::time::Instant::now() + Duration::from_millis(300);
    while let Ok(Ok(Some(event))) = tokio::time::timeout_at(until, stream.message()).await {
        seen.push_str(&format!("{event:?}\n"));
    }
    seen
}

async fn every_rpc_keeps_tenants_apart_and_refuses_bad_keys(backend: Backend) {
    let app = spawn_app(backend).await;
    // Tenant A ("default"): an approved comment, a held one with its review
    // item, a rule, a key.
    let publisher_a = app.key_for("default", Role::Publisher).await;
    let approved = app
        .comments(&publisher_a)
        .await
        .submit_comment(comment("article-a", "author-a", BODY_APPROVED))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(approved.status, pb::CommentStatus::Approved as i32);
    app.premoderate().await;
    let held = app
        .comments(&publisher_a)
        .await
        .submit_comment(comment("article-a", "author-a", BODY_HELD))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    let mut admin_a = app.admin(&app.admin_key).await;
    let rule = admin_a
        .create_rule(pb::CreateRuleRequest {
            rule: Some(pb::Rule {
                rule_id: "rule-of-a".into(),
                name: "A's rule".into(),
                enabled: true,
                action: pb::RuleAction::Review as i32,
                kind: Some(pb::rule::Kind::Words(pb::WordsRule {
                    words: vec![RULE_WORD.into()],
                })),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap();
    let review = app
        .reviews(&app.admin_key)
        .await
        .list_review_queue(pb::ListReviewQueueRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items
        .into_iter()
        .find(|i| i.comment.as_ref().unwrap().comment_id == held.comment_id)
        .unwrap();
    let keys_a = admin_a
        .list_api_keys(pb::ListApiKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .api_keys;
    let webhook = admin_a
        .create_webhook(pb::CreateWebhookRequest {
            url: WEBHOOK_URL.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .webhook
        .unwrap();
    let a = Ids {
        approved: approved.comment_id.clone(),
        held: held.comment_id.clone(),
        review: review.review_id.clone(),
        rule: rule.rule_id.clone(),
        key: keys_a.last().unwrap().key_id.clone(),
        webhook: webhook.webhook_id.clone(),
    };
    let markers = [
        a.approved.as_str(),
        a.held.as_str(),
        a.key.as_str(),
        a.webhook.as_str(),
        WEBHOOK_URL,
        BODY_APPROVED,
        BODY_HELD,
        RULE_WORD,
        "marqueur-a",
    ];

    // Tenant B, every role: never A's data.
    for role in ROLES {
        let key_b = app.key_for("tenant-b", role).await;
        for rpc in ALL {
            let result = rpc.call(&app, Some(&key_b), &a).await;
            if !rpc.allowed().contains(&role) {
                let code = result.as_ref().map_err(Status::code);
                assert_eq!(code, Err(Code::PermissionDenied), "{rpc:?} as {role}");
                continue;
            }
            match result {
                Ok(answer) => {
                    for marker in markers {
                        assert!(
                            !answer.contains(marker),
                            "{rpc:?} as B's {role} showed A's {marker:?}: {answer}"
                        );
                    }
                    // Decisions on A's review item report it as not found.
                    if matches!(rpc, Rpc::DecideReviews | Rpc::ReleaseReviews) {
                        assert!(
                            !answer.contains(&a.review)
                                || answer.contains("NotFound")
                                || answer.contains("not found"),
                            "{rpc:?}: {answer}"
                        );
                    }
                }
                Err(status) => assert_eq!(
                    status.code(),
                    Code::NotFound,
                    "{rpc:?} as {role}: {status:?}"
                ),
            }
        }
    }

    // Bad keys: every RPC is UNAUTHENTICATED.
    let revoked = app.key_for("tenant-b", Role::Admin).await;
    let expiring = app
        .admin(&revoked)
        .await
        .create_api_key(pb::CreateApiKeyRequest {
            role: pb::ApiKeyRole::Admin as i32,
            expire_time: Some(crate::helpers::timestamp_in(1.5)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .key;
    let mut admin_b = app.admin(&revoked).await;
    let revoked_id = admin_b
        .list_api_keys(pb::ListApiKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .api_keys
        .into_iter()
        .find(|k| revoked.starts_with(&k.key_prefix))
        .unwrap()
        .key_id;
    admin_b
        .revoke_api_key(pb::RevokeApiKeyRequest { key_id: revoked_id })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let garbled = format!("{}x", &publisher_a[..publisher_a.len() - 1]);
    for (what, key) in [
        ("no key", None),
        ("a garbled key", Some(garbled.as_str())),
        ("a revoked key", Some(revoked.as_str())),
        ("an expired key", Some(expiring.as_str())),
    ] {
        for rpc in ALL {
            let code = rpc.call(&app, key, &a).await.map_err(|s| s.code());
            assert_eq!(code, Err(Code::Unauthenticated), "{rpc:?} with {what}");
        }
    }

    // Tenant A is as it was.
    let mut comments_a = app.comments(&app.admin_key).await;
    for (id, status, body) in [
        (&a.approved, pb::CommentStatus::Approved, BODY_APPROVED),
        (&a.held, pb::CommentStatus::PendingReview, BODY_HELD),
    ] {
        let stored = comments_a
            .get_comment(pb::GetCommentRequest {
                comment_id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .comment
            .unwrap();
        assert_eq!(stored.status, status as i32);
        assert_eq!(
            stored.body, body,
            "B's EraseAuthor of its own author-a left A's alone"
        );
    }
    let rules = admin_a
        .list_rules(pb::ListRulesRequest {})
        .await
        .unwrap()
        .into_inner()
        .rules;
    assert!(rules.iter().any(|r| r.rule_id == a.rule && r.revision == 1));
    let hooks = admin_a
        .list_webhooks(pb::ListWebhooksRequest {})
        .await
        .unwrap()
        .into_inner()
        .webhooks;
    assert_eq!(hooks.len(), 1, "B's creations are B's");
    assert!(
        hooks[0].enabled && hooks[0].previous_secret_expire_time.is_none(),
        "{hooks:?}"
    );
    app.comments(&publisher_a)
        .await
        .get_comment(pb::GetCommentRequest {
            comment_id: a.approved.clone(),
        })
        .await
        .expect("A's key still works");
}
