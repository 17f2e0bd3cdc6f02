//! Webhooks: signatures checked by the Standard Webhooks reference
//! library (`standardwebhooks` on PyPI, installed by `./scripts/test`).

use std::io::Write as _;
use std::process::{Command, Stdio};

use moderato::grpc::pb;
use moderato::webhooks::{SigningSecret, sign};
use tonic::Code;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, spawn_app, submit_on, tool, violated_field};

backend_tests!(
    endpoints_are_created_listed_changed_rotated_and_deleted,
    endpoint_input_is_validated_and_bounded,
    deliveries_carry_the_log_in_order_retried_and_signed,
    a_receiver_answering_410_disables_its_endpoint,
    a_reference_receiver_gets_every_event_once_in_order_across_a_kill,
    endpoint_leases_are_exclusive_and_lapse,
    a_stopping_replica_hands_its_endpoints_over,
    a_slow_receiver_delays_only_itself,
    a_report_is_delivered_without_waiting_for_a_later_comment,
);

/// Runs the reference verifier on one delivery; its answer (the parsed
/// payload's type, or the error it raised).
fn reference_verify(
    secrets: &[&str],
    id: &str,
    timestamp: i64,
    signature: &str,
    body: &str,
) -> String {
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
request = json.load(sys.stdin)
answers = []
for secret in request["secrets"]:
    try:
        payload = Webhook(secret).verify(request["body"], request["headers"])
        answers.append("ok:" + payload["type"])
    except Exception as error:
        answers.append("refused:" + type(error).__name__)
print(" ".join(answers))
"#;
    let mut child = Command::new(tool("TEST_PYTHON", "python3"))
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
    let request = serde_json::json!({
        "secrets": secrets,
        "body": body,
        "headers": {
            "webhook-id": id,
            "webhook-timestamp": timestamp.to_string(),
            "webhook-signature": signature,
        },
    });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the verifier failed to run");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn the_reference_library_verifies_our_signatures_and_refuses_tampering() {
    let old = SigningSecret::generate();
    let new = SigningSecret::generate();
    let stranger = SigningSecret::generate();
    let body = r#"{"type":"comment.approved","timestamp":"2026-12-02T05:00:00Z","data":{"comment":{"body":"Très bonne analyse — merci 👍"}}}"#;
    let now = chrono::Utc::now().timestamp();
    let id = "evt_01JDX3R2K5";

    // During a rotation both secrets sign; a receiver holding either verifies.
    let signature = sign(&[&new, &old], id, now, body.as_bytes());
    let secrets = [new.expose(), old.expose(), stranger.expose()];
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_eq!(
        reference_verify(&secrets, id, now, &signature, body),
        "ok:comment.approved ok:comment.approved refused:WebhookVerificationError"
    );

    // A changed body, id or timestamp, or an old delivery, is refused.
    let one = [secrets[0]];
    let tampered = body.replace("merci", "merde");
    assert_eq!(
        reference_verify(&one, id, now, &signature, &tampered),
        "refused:WebhookVerificationError"
    );
    assert_eq!(
        reference_verify(&one, "evt_other", now, &signature, body),
        "refused:WebhookVerificationError"
    );
    assert_eq!(
        reference_verify(&one, id, now + 1, &signature, body),
        "refused:WebhookVerificationError"
    );
    let stale = now - 3_600;
    let signed_stale = sign(&[&new], id, stale, body.as_bytes());
    assert_eq!(
        reference_verify(&one, id, stale, &signed_stale, body),
        "refused:WebhookVerificationError"
    );
}

const URL: &str = "https://cms.example.com/hooks/moderato";

fn create(url: &str, types: &[pb::WebhookEventType]) -> pb::CreateWebhookRequest {
    pb::CreateWebhookRequest {
        url: url.into(),
        event_types: types.iter().map(|t| *t as i32).collect(),
        description: "CMS de la rédaction".into(),
    }
}

/// The service's view of an endpoint's signing secrets, through a second
/// `Moderation` on the same store and server secret (what a delivering
/// replica does).
async fn signing_secrets(
    app: &TestApp,
    webhook_id: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Vec<String> {
    let secret = std::fs::read_to_string(app.dir.path().join("secret.key")).unwrap();
    let moderation = moderato::moderation::Moderation::with_options(
        app.store.clone(),
        moderato::pipeline::Pipeline::default(),
        moderato::moderation::Limits::default(),
        &moderato::domain::ServerSecret::new(&secret).unwrap(),
    );
    let tenant = app.default_tenant().await;
    let record = app
        .store
        .list_webhooks(tenant)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.webhook.webhook_id.to_string() == webhook_id)
        .unwrap();
    assert!(
        !record.sealed_secret.contains("whsec_"),
        "sealed, not as given"
    );
    moderation
        .signing_secrets(tenant, &record, at)
        .unwrap()
        .iter()
        .map(SigningSecret::expose)
        .collect()
}

async fn endpoints_are_created_listed_changed_rotated_and_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.admin_key).await;
    let made = admin
        .create_webhook(create(
            URL,
            &[
                pb::WebhookEventType::CommentDecided,
                pb::WebhookEventType::CommentHeld,
                pb::WebhookEventType::CommentDecided,
            ],
        ))
        .await
        .unwrap()
        .into_inner();
    let hook = made.webhook.unwrap();
    assert!(
        SigningSecret::parse(&made.secret).is_some(),
        "{}",
        made.secret.len()
    );
    assert_eq!(hook.url, URL);
    assert_eq!(
        hook.event_types,
        [
            pb::WebhookEventType::CommentHeld as i32,
            pb::WebhookEventType::CommentDecided as i32
        ],
        "deduplicated"
    );
    assert!(hook.enabled);
    assert_eq!(hook.previous_secret_expire_time, None);
    assert_eq!(
        signing_secrets(&app, &hook.webhook_id, chrono::Utc::now()).await,
        std::slice::from_ref(&made.secret)
    );

    let listed = admin
        .list_webhooks(pb::ListWebhooksRequest {})
        .await
        .unwrap()
        .into_inner()
        .webhooks;
    assert_eq!(listed, std::slice::from_ref(&hook));
    assert!(!format!("{listed:?}").contains(&made.secret));

    // Off, then on again; the event types replaced with "all".
    let off = admin
        .update_webhook(pb::UpdateWebhookRequest {
            webhook_id: hook.webhook_id.clone(),
            enabled: Some(false),
            description: Some("en pause".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .webhook
        .unwrap();
    assert!(!off.enabled && !off.disabled_reason.is_empty());
    assert_eq!(
        (off.url.as_str(), off.description.as_str()),
        (URL, "en pause")
    );
    let on = admin
        .update_webhook(pb::UpdateWebhookRequest {
            webhook_id: hook.webhook_id.clone(),
            enabled: Some(true),
            event_types: Some(pb::WebhookEventTypes { values: vec![] }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .webhook
        .unwrap();
    assert!(on.enabled && on.disabled_reason.is_empty() && on.event_types.is_empty());

    // Rotation: the new secret signs, and the old one too for 24 hours.
    let rotated = admin
        .rotate_webhook_secret(pb::RotateWebhookSecretRequest {
            webhook_id: hook.webhook_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(rotated.secret, made.secret);
    let until = rotated
        .webhook
        .unwrap()
        .previous_secret_expire_time
        .unwrap();
    let until = chrono::DateTime::from_timestamp(until.seconds, until.nanos as u32).unwrap();
    let grace = until - chrono::Utc::now();
    assert!(
        grace > chrono::TimeDelta::hours(23) && grace <= chrono::TimeDelta::hours(24),
        "{grace}"
    );
    let now = chrono::Utc::now();
    assert_eq!(
        signing_secrets(&app, &hook.webhook_id, now).await,
        [rotated.secret.clone(), made.secret.clone()]
    );
    assert_eq!(
        signing_secrets(&app, &hook.webhook_id, now + chrono::TimeDelta::hours(25)).await,
        std::slice::from_ref(&rotated.secret)
    );

    // The trail records every change, never a secret.
    let trail = admin
        .list_audit_events(pb::ListAuditEventsRequest {
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    let actions: Vec<_> = trail
        .iter()
        .filter(|e| e.subject_id == hook.webhook_id)
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "webhook.secret_rotated",
            "webhook.updated",
            "webhook.updated",
            "webhook.created"
        ]
    );
    let shown = format!("{trail:?}");
    assert!(!shown.contains(&made.secret) && !shown.contains(&rotated.secret));

    admin
        .delete_webhook(pb::DeleteWebhookRequest {
            webhook_id: hook.webhook_id.clone(),
        })
        .await
        .unwrap();
    assert!(
        admin
            .list_webhooks(pb::ListWebhooksRequest {})
            .await
            .unwrap()
            .into_inner()
            .webhooks
            .is_empty()
    );
    let gone = admin
        .delete_webhook(pb::DeleteWebhookRequest {
            webhook_id: hook.webhook_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let gone = admin
        .rotate_webhook_secret(pb::RotateWebhookSecretRequest {
            webhook_id: hook.webhook_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
}

async fn endpoint_input_is_validated_and_bounded(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.admin_key).await;
    for (request, field) in [
        (create("", &[]), "url"),
        (create("ftp://cms.example.com/", &[]), "url"),
        (create("https://user:pw@cms.example.com/", &[]), "url"),
        (
            create(&format!("https://h.example/{}", "a".repeat(2_048)), &[]),
            "url",
        ),
        (
            create(URL, &[pb::WebhookEventType::Unspecified]),
            "event_types",
        ),
        (
            pb::CreateWebhookRequest {
                event_types: vec![99],
                ..create(URL, &[])
            },
            "event_types",
        ),
        (
            pb::CreateWebhookRequest {
                description: "d".repeat(501),
                ..create(URL, &[])
            },
            "description",
        ),
    ] {
        let status = admin.create_webhook(request).await.unwrap_err();
        assert_eq!(violated_field(&status), field);
    }
    for (id, code) in [
        ("", Code::InvalidArgument),
        ("not-an-id", Code::InvalidArgument),
        ("0190a5c8-0000-7000-8000-000000000000", Code::NotFound),
    ] {
        let status = admin
            .update_webhook(pb::UpdateWebhookRequest {
                webhook_id: id.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{id:?}");
    }
    // At most 20 per tenant.
    for i in 0..20 {
        admin
            .create_webhook(create(&format!("{URL}/{i}"), &[]))
            .await
            .unwrap();
    }
    let status = admin.create_webhook(create(URL, &[])).await.unwrap_err();
    assert_eq!(violated_field(&status), "url");
    assert!(status.message().contains("20"), "{}", status.message());
    assert_eq!(
        admin
            .list_webhooks(pb::ListWebhooksRequest {})
            .await
            .unwrap()
            .into_inner()
            .webhooks
            .len(),
        20
    );
}

/// What a test receiver got: path, headers, body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, axum::http::HeaderMap, String)>>>;

/// A receiver on loopback: `/ok` answers 204, `/gone` 410, `/fail` 500,
/// `/slow` after 2 s, `/moved` redirects to `/ok`.
async fn receiver() -> (std::net::SocketAddr, Received) {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let received: Received = Default::default();
    let record = received.clone();
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let path = uri.path().to_owned();
                record.lock().unwrap().push((path.clone(), headers, body));
                match path.as_str() {
                    "/ok" => StatusCode::NO_CONTENT.into_response(),
                    "/gone" => StatusCode::GONE.into_response(),
                    "/slow" => {
                        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                        StatusCode::OK.into_response()
                    }
                    "/moved" => (StatusCode::FOUND, [("location", "/ok")]).into_response(),
                    _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_attempt_posts_signed_json_and_classifies_the_answer() {
    use moderato::webhooks::{AddressPolicy, Outcome, Sender};
    let (addr, received) = receiver().await;
    let base = format!("http://{addr}");
    let roots = rustls::RootCertStore::empty();
    let private = Sender::with_roots(
        AddressPolicy::AllowPrivate,
        roots.clone(),
        std::time::Duration::from_millis(500),
    );
    let body = r#"{"type":"comment.held","timestamp":"2026-12-02T06:00:00Z","data":{}}"#;
    let headers = [
        ("webhook-id", "evt_1".to_owned()),
        ("webhook-timestamp", "1796191200".to_owned()),
        ("webhook-signature", "v1,abc".to_owned()),
    ];

    assert_eq!(
        private
            .send(&format!("{base}/ok"), &headers, body.into())
            .await,
        Outcome::Delivered(204)
    );
    {
        let got = received.lock().unwrap();
        let (path, seen, text) = &got[0];
        assert_eq!((path.as_str(), text.as_str()), ("/ok", body));
        assert_eq!(seen["webhook-id"], "evt_1");
        assert_eq!(seen["webhook-signature"], "v1,abc");
        assert_eq!(seen["content-type"], "application/json");
    }
    assert_eq!(
        private
            .send(&format!("{base}/gone"), &headers, body.into())
            .await,
        Outcome::Gone
    );
    assert!(matches!(
        private
            .send(&format!("{base}/fail"), &headers, body.into())
            .await,
        Outcome::Failed {
            status: Some(500),
            ..
        }
    ));
    // A redirect is an answer, not a new destination.
    let before = received.lock().unwrap().len();
    assert!(matches!(
        private
            .send(&format!("{base}/moved"), &headers, body.into())
            .await,
        Outcome::Failed {
            status: Some(302),
            ..
        }
    ));
    assert_eq!(
        received.lock().unwrap().len(),
        before + 1,
        "the redirect target was not called"
    );
    // A receiver slower than the deadline is given up on.
    let slow = private
        .send(&format!("{base}/slow"), &headers, body.into())
        .await;
    assert!(
        matches!(&slow, Outcome::Failed { status: None, error } if error.contains("no answer")),
        "{slow:?}"
    );

    // By default nothing is sent inside the network: not by address, not by name.
    let public = Sender::with_roots(
        AddressPolicy::PublicOnly,
        roots,
        std::time::Duration::from_millis(500),
    );
    let count = received.lock().unwrap().len();
    for url in [
        format!("{base}/ok"),
        format!("http://localhost:{}/ok", addr.port()),
        "http://[::1]/ok".to_owned(),
    ] {
        let refused = public.send(&url, &headers, body.into()).await;
        assert!(
            matches!(&refused, Outcome::Failed { status: None, error } if error.contains("inside the service's network")),
            "{url}: {refused:?}"
        );
    }
    assert_eq!(
        received.lock().unwrap().len(),
        count,
        "refused before connecting"
    );
}

/// Everything a scripted receiver was sent, in arrival order.
#[derive(Debug, Clone)]
struct Delivery {
    path: String,
    id: String,
    timestamp: i64,
    signature: String,
    body: String,
}

impl Delivery {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
    fn kind(&self) -> String {
        self.json()["type"].as_str().unwrap().to_owned()
    }
}

type Deliveries = std::sync::Arc<std::sync::Mutex<Vec<Delivery>>>;

/// A receiver on loopback that answers 500 to the first two attempts of
/// every `comment.held` event, 410 on `/gone`, and 204 otherwise (on
/// `/slow`, after 2 s).
async fn scripted_receiver() -> (std::net::SocketAddr, Deliveries) {
    use axum::http::StatusCode;
    let got: Deliveries = Default::default();
    let record = got.clone();
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default()
                };
                let delivery = Delivery {
                    path: uri.path().to_owned(),
                    id: header("webhook-id"),
                    timestamp: header("webhook-timestamp").parse().unwrap_or(0),
                    signature: header("webhook-signature"),
                    body,
                };
                if delivery.path == "/slow" {
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
                let mut got = record.lock().unwrap();
                let earlier = got
                    .iter()
                    .filter(|d| d.path == delivery.path && d.id == delivery.id)
                    .count();
                let status = if delivery.path == "/gone" {
                    StatusCode::GONE
                } else if delivery.kind() == "comment.held" && earlier < 2 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                };
                got.push(delivery);
                status
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, got)
}

/// Waits (at most 30 s) until `done` holds for what the receiver got.
async fn wait_for(got: &Deliveries, what: &str, done: impl Fn(&[Delivery]) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if done(&got.lock().unwrap()) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; got {:#?}",
            got.lock()
                .unwrap()
                .iter()
                .map(|d| (&d.path, &d.id))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The first arrival of each id at `path`, in arrival order.
fn firsts(got: &[Delivery], path: &str) -> Vec<Delivery> {
    let mut seen = std::collections::HashSet::new();
    got.iter()
        .filter(|d| d.path == path && seen.insert(d.id.clone()))
        .cloned()
        .collect()
}

/// Deliveries on loopback with a short retry schedule and lease.
async fn spawn_delivering(backend: Backend) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::helpers::database_url_for(backend, &dir).await;
    spawn_delivering_on(dir, url).await
}

async fn spawn_delivering_on(dir: tempfile::TempDir, url: String) -> TestApp {
    crate::helpers::spawn_app_configured(dir, url, |s| s.webhooks = delivering(3)).await
}

/// Deliveries to loopback, a lease of `lease` seconds, retries 1,000 times
/// sooner than in service.
fn delivering(lease: u64) -> moderato::config::WebhookSettings {
    moderato::config::WebhookSettings {
        allow_private: true,
        lease: std::time::Duration::from_secs(lease),
        backoff_scale: 0.001,
    }
}

async fn deliveries_carry_the_log_in_order_retried_and_signed(backend: Backend) {
    let app = spawn_delivering(backend).await;
    let (addr, got) = scripted_receiver().await;
    let mut admin = app.admin(&app.admin_key).await;
    let all = admin
        .create_webhook(create(&format!("http://{addr}/all"), &[]))
        .await
        .unwrap()
        .into_inner();
    let decided_only = admin
        .create_webhook(create(
            &format!("http://{addr}/decided"),
            &[pb::WebhookEventType::CommentDecided],
        ))
        .await
        .unwrap()
        .into_inner();

    // A scripted session: published, held then approved, reported, an
    // author premoderated, the approved one reopened.
    let key = app.admin_key.clone();
    let published = submit_on(
        &app,
        &key,
        "a1",
        "alice",
        "Merci pour cet article très clair.",
    )
    .await;
    let decided = crate::helpers::hold_and_decide(
        &app,
        "bob",
        "Je ne suis pas d'accord avec l'éditorial.",
        pb::DecideReviewRequest {
            decision: pb::ReviewDecision::Approve as i32,
            note: "argumenté".into(),
            ..Default::default()
        },
    )
    .await;
    app.comments(&key)
        .await
        .report_comment(pb::ReportCommentRequest {
            comment_id: published.comment_id.clone(),
            reporter_id: "reader-9".into(),
            reason: pb::ReportReason::Spam as i32,
            detail: String::new(),
        })
        .await
        .unwrap();
    let mut reviews = app.reviews(&key).await;
    reviews
        .set_author_standing(pb::SetAuthorStandingRequest {
            author_id: "carol".into(),
            standing: pb::AuthorStanding::Premoderated as i32,
            reason: "relances".into(),
            moderator_id: "mod-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    reviews
        .reopen_comment(pb::ReopenCommentRequest {
            comment_id: decided.comment_id.clone(),
            note: "à revoir".into(),
            moderator_id: "mod-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    let expected = [
        "comment.approved",
        "comment.held",
        "comment.decided",
        "comment.reported",
        "author.standing_changed",
        "comment.reopened",
    ];
    wait_for(&got, "six events on /all and one on /decided", |got| {
        firsts(got, "/all").len() == expected.len() && !firsts(got, "/decided").is_empty()
    })
    .await;
    let log = got.lock().unwrap().clone();
    let on_all = firsts(&log, "/all");
    assert_eq!(
        on_all.iter().map(Delivery::kind).collect::<Vec<_>>(),
        expected,
        "every event once, in log order"
    );
    // Ids: the decision stream's numbers for status events (the same as
    // WatchDecisions), the log's for the others.
    let tenant = app.default_tenant().await;
    let stream = app
        .store
        .list_decision_events(tenant, 0, 100)
        .await
        .unwrap();
    assert_eq!(stream.len(), 4);
    let status_ids: Vec<String> = on_all
        .iter()
        .filter(|d| d.id.starts_with("msg_seq_"))
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(
        status_ids,
        stream
            .iter()
            .map(|e| format!("msg_seq_{}", e.sequence))
            .collect::<Vec<_>>()
    );
    for d in &on_all {
        let data = &d.json()["data"];
        if let Some(sequence) = data["sequence"].as_i64() {
            assert_eq!(d.id, format!("msg_seq_{sequence}"));
        }
    }
    // Payloads: the comment as the API returns it, and what happened.
    let first = on_all[0].json();
    assert_eq!(
        first["data"]["comment"]["body"],
        "Merci pour cet article très clair."
    );
    assert_eq!(first["data"]["comment"]["comment_id"], published.comment_id);
    assert_eq!(first["data"]["to_status"], "COMMENT_STATUS_APPROVED");
    let decision = &on_all[2].json()["data"]["decision"];
    assert_eq!(decision["decision"], "approve");
    assert_eq!(decision["moderator_id"], "mod-1");
    assert_eq!(on_all[3].json()["data"]["reporter_id"], "reader-9");
    assert_eq!(
        on_all[4].json()["data"]["to_standing"],
        "AUTHOR_STANDING_PREMODERATED"
    );
    assert!(
        on_all
            .iter()
            .all(|d| !d.json()["timestamp"].as_str().unwrap().is_empty())
    );

    // The held event failed twice, then arrived; nothing after it came first.
    let held_id = &on_all[1].id;
    let attempts: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, d)| d.path == "/all" && &d.id == held_id)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(attempts.len(), 3, "two failures and the success");
    let next = log
        .iter()
        .position(|d| d.path == "/all" && d.id == on_all[2].id)
        .unwrap();
    assert!(next > attempts[2], "the next event waited for the retries");

    // Every delivery verifies with the reference library.
    for d in log.iter().filter(|d| d.path == "/all") {
        assert_eq!(
            reference_verify(&[&all.secret], &d.id, d.timestamp, &d.signature, &d.body),
            format!("ok:{}", d.kind())
        );
    }
    // The subscribed-to-one endpoint got that one only.
    let on_decided = firsts(&log, "/decided");
    assert_eq!(
        on_decided.iter().map(Delivery::kind).collect::<Vec<_>>(),
        ["comment.decided"]
    );
    assert_eq!(
        on_decided[0].id, on_all[2].id,
        "the same id on every endpoint"
    );
    assert_eq!(
        reference_verify(
            &[&decided_only.secret],
            &on_decided[0].id,
            on_decided[0].timestamp,
            &on_decided[0].signature,
            &on_decided[0].body
        ),
        "ok:comment.decided"
    );

    // What the admins see per delivery.
    let all_id = all.webhook.unwrap().webhook_id;
    let listed = admin
        .list_webhook_deliveries(pb::ListWebhookDeliveriesRequest {
            webhook_id: all_id.clone(),
            page_size: 4,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.deliveries.len(), 4, "a page");
    assert!(!listed.next_page_token.is_empty());
    let rest = admin
        .list_webhook_deliveries(pb::ListWebhookDeliveriesRequest {
            webhook_id: all_id.clone(),
            page_size: 4,
            page_token: listed.next_page_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rest.next_page_token.is_empty());
    let deliveries: Vec<_> = listed.deliveries.iter().chain(&rest.deliveries).collect();
    assert_eq!(
        deliveries
            .iter()
            .map(|d| d.message_id.clone())
            .rev()
            .collect::<Vec<_>>(),
        on_all.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
        "newest first"
    );
    for d in &deliveries {
        assert_eq!(d.state, pb::WebhookDeliveryState::Delivered as i32);
        assert_eq!(d.last_status, 204);
        assert!(d.next_attempt_time.is_none());
        let expected = if &d.message_id == held_id { 3 } else { 1 };
        assert_eq!(d.attempts, expected, "{}", d.message_id);
    }

    // One more attempt on request, with the same id.
    let before = log.len();
    let retried = admin
        .retry_webhook_delivery(pb::RetryWebhookDeliveryRequest {
            webhook_id: all_id.clone(),
            message_id: on_all[0].id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .delivery
        .unwrap();
    assert_eq!(retried.state, pb::WebhookDeliveryState::Retrying as i32);
    let again = on_all[0].id.clone();
    wait_for(&got, "the retried delivery", |got| {
        got[before..]
            .iter()
            .any(|d| d.path == "/all" && d.id == again)
    })
    .await;
    let listed = admin
        .list_webhook_deliveries(pb::ListWebhookDeliveriesRequest {
            webhook_id: all_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first_delivery = listed.deliveries.last().unwrap();
    assert_eq!(first_delivery.message_id, again);
    assert_eq!(first_delivery.attempts, 2);
    assert_eq!(
        first_delivery.state,
        pb::WebhookDeliveryState::Delivered as i32
    );
    for (message_id, code) in [
        ("msg_seq_999", Code::NotFound),
        ("seq_1", Code::InvalidArgument),
        ("", Code::InvalidArgument),
    ] {
        let err = admin
            .retry_webhook_delivery(pb::RetryWebhookDeliveryRequest {
                webhook_id: all_id.clone(),
                message_id: message_id.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{message_id:?}");
    }
    let err = admin
        .list_webhook_deliveries(pb::ListWebhookDeliveriesRequest {
            webhook_id: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let audited = app
        .store
        .list_audit_events(
            tenant,
            &moderato::storage::AuditQuery {
                action: Some("webhook.delivery_retried".into()),
                ..moderato::storage::AuditQuery::all()
            },
        )
        .await
        .unwrap();
    assert_eq!(audited.len(), 1);
    app.stop().await.unwrap();
}

async fn a_receiver_answering_410_disables_its_endpoint(backend: Backend) {
    let app = spawn_delivering(backend).await;
    let (addr, got) = scripted_receiver().await;
    let mut admin = app.admin(&app.admin_key).await;
    let gone = admin
        .create_webhook(create(&format!("http://{addr}/gone"), &[]))
        .await
        .unwrap()
        .into_inner()
        .webhook
        .unwrap();
    submit_on(&app, &app.admin_key, "a1", "alice", "Bonjour à tous.").await;
    submit_on(&app, &app.admin_key, "a1", "alice", "Encore un mot.").await;
    wait_for(&got, "the first delivery", |got| !got.is_empty()).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let listed = loop {
        let listed = admin
            .list_webhooks(pb::ListWebhooksRequest {})
            .await
            .unwrap()
            .into_inner()
            .webhooks
            .remove(0);
        if !listed.enabled || std::time::Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(!listed.enabled);
    assert!(
        listed.disabled_reason.contains("410"),
        "{}",
        listed.disabled_reason
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(got.lock().unwrap().len(), 1, "nothing more was sent");
    let deliveries = admin
        .list_webhook_deliveries(pb::ListWebhookDeliveriesRequest {
            webhook_id: gone.webhook_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].state, pb::WebhookDeliveryState::Failed as i32);
    assert_eq!(deliveries[0].last_status, 410);
    let tenant = app.default_tenant().await;
    let audited = app
        .store
        .list_audit_events(
            tenant,
            &moderato::storage::AuditQuery {
                action: Some("webhook.disabled".into()),
                ..moderato::storage::AuditQuery::all()
            },
        )
        .await
        .unwrap();
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].actor, "system");
    app.stop().await.unwrap();
}

/// A `moderato` server process (so it can be killed), delivering to
/// loopback with a short lease and retry schedule.
struct Server {
    child: tokio::process::Child,
    grpc_addr: String,
    log: tokio::task::JoinHandle<String>,
}

impl Server {
    async fn start(dir: &std::path::Path, database_url: &str) -> Server {
        use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_moderato"))
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .env("DATABASE_URL", database_url)
            .env("MODERATO_ADMIN_KEY_FILE", dir.join("admin.key"))
            .env("MODERATO_WEBHOOK_ALLOW_PRIVATE", "true")
            .env("MODERATO_WEBHOOK_LEASE_SECONDS", "3")
            .env("MODERATO_WEBHOOK_BACKOFF_SCALE", "0.001")
            .env("MODERATO_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("moderato starts");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        let grpc_addr = loop {
            let mut line = String::new();
            let read = tokio::time::timeout(
                std::time::Duration::from_secs(60),
                stderr.read_line(&mut line),
            )
            .await
            .expect("the server logs its address")
            .unwrap();
            assert!(read > 0, "the server exited: {seen}");
            seen.push_str(&line);
            if line.contains("moderato serving") {
                let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
                break entry["fields"]["grpc_addr"].as_str().unwrap().to_owned();
            }
        };
        // Drained while it runs: a full pipe would block the server.
        let log = tokio::spawn(async move {
            let mut rest = String::new();
            let _ = stderr.read_to_string(&mut rest).await;
            seen + &rest
        });
        Server {
            child,
            grpc_addr,
            log,
        }
    }

    async fn channel(&self, key: &str) -> crate::helpers::Authed {
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", self.grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        tonic::service::interceptor::InterceptedService::new(
            channel,
            crate::helpers::Bearer::key(key),
        )
    }

    /// SIGKILL: no graceful stop, the lease is left to lapse.
    async fn kill(mut self) -> String {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
        self.log.await.unwrap()
    }
}

/// One line of the reference receiver's log.
#[derive(Debug, Clone, serde::Deserialize)]
struct Receipt {
    id: String,
    attempt: u32,
    valid: bool,
    status: u16,
    #[serde(rename = "type")]
    kind: String,
}

fn read_receiver_log(path: &std::path::Path) -> Vec<Receipt> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The ids the tenant's log holds, in log order, as webhooks name them.
async fn logged_ids(database_url: &str) -> Vec<String> {
    let store = moderato::storage::connect(database_url, &Default::default())
        .await
        .unwrap();
    let tenant = store
        .find_tenant(&moderato::domain::TenantName::parse("default").unwrap())
        .await
        .unwrap()
        .unwrap();
    let trail = store
        .list_audit_events(tenant, &moderato::storage::AuditQuery::all())
        .await
        .unwrap();
    let is_stream = |action: &str| {
        matches!(
            action,
            "comment.created" | "comment.reviewed" | "comment.reopened" | "comment.requeued"
        )
    };
    // Numbering follows the commits by a moment.
    let in_trail = trail.iter().filter(|e| is_stream(&e.action)).count();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let stream = loop {
        let stream = store.list_decision_events(tenant, 0, 10_000).await.unwrap();
        if stream.len() >= in_trail || std::time::Instant::now() > deadline {
            break stream;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let mut sequences = stream.iter().map(|e| e.sequence);
    let mut ids = Vec::new();
    for event in trail {
        match event.action.as_str() {
            action if is_stream(action) => {
                ids.push(format!("msg_seq_{}", sequences.next().unwrap()));
            }
            "comment.reported" | "author.standing_changed" => {
                ids.push(format!("msg_evt_{}", event.event_id));
            }
            _ => {}
        }
    }
    assert!(
        sequences.next().is_none(),
        "every stream event accounted for"
    );
    store.close().await;
    ids
}

async fn a_reference_receiver_gets_every_event_once_in_order_across_a_kill(backend: Backend) {
    use pb::admin_service_client::AdminServiceClient;
    use pb::comment_service_client::CommentServiceClient;
    use pb::review_service_client::ReviewServiceClient;
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

    let dir = tempfile::tempdir().unwrap();
    let database_url = crate::helpers::database_url_for(backend, &dir).await;
    let log_path = dir.path().join("received.jsonl");
    let mut receiver = tokio::process::Command::new(tool("TEST_PYTHON", "python3"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tools/webhook_receiver.py"
        ))
        .arg(&log_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the receiver starts");
    let mut port = String::new();
    tokio::io::BufReader::new(receiver.stdout.take().unwrap())
        .read_line(&mut port)
        .await
        .unwrap();
    let port: u16 = port.trim().parse().expect("the receiver prints its port");

    let server = Server::start(dir.path(), &database_url).await;
    let key = std::fs::read_to_string(dir.path().join("admin.key"))
        .unwrap()
        .trim()
        .to_owned();
    let mut admin = AdminServiceClient::new(server.channel(&key).await);
    let made = admin
        .create_webhook(create(&format!("http://127.0.0.1:{port}/moderato"), &[]))
        .await
        .unwrap()
        .into_inner();
    let mut stdin = receiver.stdin.take().unwrap();
    stdin
        .write_all(format!("{}\n", made.secret).as_bytes())
        .await
        .unwrap();
    stdin.flush().await.unwrap();

    // The scripted session, first part: published comments, held ones
    // decided, reports, a standing change, a reopening.
    let mut comments = CommentServiceClient::new(server.channel(&key).await);
    let mut reviews = ReviewServiceClient::new(server.channel(&key).await);
    let mut published = Vec::new();
    for i in 0..12 {
        let c = comments
            .submit_comment(crate::helpers::comment(
                "article-1",
                &format!("auteur-{}", i % 4),
                &format!("Commentaire numéro {i} sur la réforme budgétaire."),
            ))
            .await
            .unwrap()
            .into_inner()
            .comment
            .unwrap();
        published.push(c.comment_id);
    }
    admin
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            moderation_mode: Some(pb::ModerationMode::Pre as i32),
            ..Default::default()
        })
        .await
        .unwrap();
    for i in 0..6 {
        comments
            .submit_comment(crate::helpers::comment(
                "article-2",
                &format!("lecteur-{i}"),
                &format!("Avis {i} : la coopération régionale avance."),
            ))
            .await
            .unwrap();
    }
    let claim = |n: i32| pb::ClaimReviewsRequest {
        max_items: n,
        moderator_id: "mod-1".into(),
        ..Default::default()
    };
    let items = reviews
        .claim_reviews(claim(6))
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(items.len(), 6);
    let mut decided = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let decision = if i % 2 == 0 {
            pb::ReviewDecision::Approve
        } else {
            pb::ReviewDecision::Reject
        };
        let c = reviews
            .decide_review(pb::DecideReviewRequest {
                review_id: item.review_id.clone(),
                decision: decision as i32,
                moderator_id: "mod-1".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .comment
            .unwrap();
        decided.push(c.comment_id);
    }
    for id in &published[..2] {
        comments
            .report_comment(pb::ReportCommentRequest {
                comment_id: id.clone(),
                reporter_id: "lecteur-vigilant".into(),
                reason: pb::ReportReason::Harassment as i32,
                detail: String::new(),
            })
            .await
            .unwrap();
    }
    reviews
        .set_author_standing(pb::SetAuthorStandingRequest {
            author_id: "auteur-1".into(),
            standing: pb::AuthorStanding::Premoderated as i32,
            reason: "à surveiller".into(),
            moderator_id: "mod-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    reviews
        .reopen_comment(pb::ReopenCommentRequest {
            comment_id: decided[0].clone(),
            moderator_id: "mod-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    // Killed mid-delivery: once some, not all, events have arrived.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while read_receiver_log(&log_path)
        .iter()
        .filter(|r| r.status == 204)
        .count()
        < 8
    {
        assert!(std::time::Instant::now() < deadline, "no deliveries");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let before_kill = read_receiver_log(&log_path).len();
    let killed_log = server.kill().await;

    // Restarted on the same database; the session goes on.
    let server = Server::start(dir.path(), &database_url).await;
    let mut comments = CommentServiceClient::new(server.channel(&key).await);
    let mut reviews = ReviewServiceClient::new(server.channel(&key).await);
    for i in 0..4 {
        comments
            .submit_comment(crate::helpers::comment(
                "article-3",
                &format!("lecteur-{i}"),
                &format!("Après le redémarrage, avis {i}."),
            ))
            .await
            .unwrap();
    }
    let items = reviews
        .claim_reviews(claim(2))
        .await
        .unwrap()
        .into_inner()
        .items;
    for item in &items {
        reviews
            .decide_review(pb::DecideReviewRequest {
                review_id: item.review_id.clone(),
                decision: pb::ReviewDecision::Approve as i32,
                moderator_id: "mod-1".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    let expected = logged_ids(&database_url).await;
    assert_eq!(expected.len(), 12 + 6 + 6 + 2 + 1 + 1 + 4 + 2);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let received = loop {
        let received = read_receiver_log(&log_path);
        let delivered: std::collections::HashSet<_> = received
            .iter()
            .filter(|r| r.status == 204)
            .map(|r| r.id.clone())
            .collect();
        if expected.iter().all(|id| delivered.contains(id)) {
            break received;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not every event arrived: {} of {}; server log before the kill:\n{killed_log}",
            delivered.len(),
            expected.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // Quiet for a moment: nothing more arrives.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let received_after = read_receiver_log(&log_path);
    assert_eq!(
        received_after.len(),
        received.len(),
        "nothing after the last event"
    );
    let log = server.kill().await;

    assert!(
        received.iter().all(|r| r.valid),
        "every delivery verified with the reference library"
    );
    // Every event accepted once per id, in log order; the one in flight at
    // the kill may have been accepted twice (at least once: same id).
    let firsts: Vec<String> = {
        let mut seen = std::collections::HashSet::new();
        received
            .iter()
            .filter(|r| r.status == 204 && seen.insert(r.id.clone()))
            .map(|r| r.id.clone())
            .collect()
    };
    assert_eq!(firsts, expected, "each event accepted, in log order");
    let twice: Vec<_> = expected
        .iter()
        .filter(|id| {
            received
                .iter()
                .filter(|r| r.status == 204 && &r.id == *id)
                .count()
                > 1
        })
        .collect();
    assert!(
        twice.len() <= 1,
        "only the delivery in flight at the kill may repeat: {twice:?}"
    );
    // The receiver refused the first two attempts of every third event;
    // each was retried until it was accepted.
    for id in &expected {
        let number: u64 = id.rsplit('_').next().unwrap().parse().unwrap();
        let attempts: Vec<_> = received.iter().filter(|r| &r.id == id).collect();
        if number.is_multiple_of(3) {
            assert!(
                attempts.len() >= 3
                    && attempts[0].status == 500
                    && attempts[1].status == 500
                    && attempts[2].status == 204,
                "{id}: {attempts:?}"
            );
        }
        assert!(
            attempts
                .iter()
                .all(|r| r.attempt >= 1 && !r.kind.is_empty())
        );
    }
    assert!(
        before_kill < received.len(),
        "deliveries went on after the restart"
    );
    eprintln!(
        "{backend:?}: {} events, {} requests ({} before the kill, {} refused with 500), \
         accepted twice: {}",
        expected.len(),
        received.len(),
        before_kill,
        received.iter().filter(|r| r.status == 500).count(),
        twice.len()
    );
    assert!(!log.contains(&made.secret), "the secret is never logged");
    assert!(!killed_log.contains(&made.secret));
    receiver.start_kill().unwrap();
}

async fn endpoint_leases_are_exclusive_and_lapse(backend: Backend) {
    use moderato::domain::{Webhook, WebhookCursor, WebhookId, WebhookSettlement};
    let dir = tempfile::tempdir().unwrap();
    let url = crate::helpers::database_url_for(backend, &dir).await;
    // The store alone: no replica's deliveries lease anything meanwhile.
    let store = moderato::storage::connect(&url, &Default::default())
        .await
        .unwrap();
    let (tenant, _) = moderato::moderation::create_tenant(
        store.as_ref(),
        &moderato::domain::TenantName::parse("lease-test").unwrap(),
    )
    .await
    .unwrap();
    let actor = moderato::domain::Actor::system();
    let now = chrono::Utc::now();
    let mut ids = Vec::new();
    for i in 0..10 {
        let webhook = Webhook {
            webhook_id: WebhookId::generate(),
            url: format!("https://h{i}.example/"),
            event_types: Vec::new(),
            description: String::new(),
            enabled: true,
            disabled_reason: String::new(),
            previous_secret_expire_time: None,
            create_time: now,
            update_time: now,
        };
        ids.push(webhook.webhook_id);
        store
            .create_webhook(
                tenant,
                &moderato::storage::WebhookRecord {
                    webhook,
                    sealed_secret: "s1:sealed".into(),
                    sealed_previous_secret: None,
                },
                20,
                &actor,
            )
            .await
            .unwrap()
            .unwrap();
    }
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let until = now + chrono::TimeDelta::seconds(30);
    // Two replicas leasing at once share the endpoints without overlap.
    let (to_a, to_b) = tokio::join!(
        store.lease_webhooks(a, now, until, 10),
        store.lease_webhooks(b, now, until, 10)
    );
    let (to_a, to_b) = (to_a.unwrap(), to_b.unwrap());
    let mut all: Vec<_> = to_a
        .iter()
        .chain(&to_b)
        .map(|l| l.record.webhook.webhook_id)
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 10, "each endpoint once");
    assert_eq!(to_a.len() + to_b.len(), 10, "no endpoint twice");
    assert!(
        store
            .lease_webhooks(b, now, until, 10)
            .await
            .unwrap()
            .is_empty(),
        "all held"
    );

    // Only the holder renews and settles.
    let held = to_a.first().or(to_b.first()).unwrap();
    let (holder, other) = if to_a.is_empty() { (b, a) } else { (a, b) };
    let id = held.record.webhook.webhook_id;
    assert_eq!(held.cursor, WebhookCursor::default(), "an empty log's end");
    assert!(
        store
            .renew_webhook_lease(tenant, id, other, until)
            .await
            .unwrap()
            .is_none()
    );
    let moved = WebhookSettlement {
        delivery: None,
        cursor: Some(WebhookCursor {
            event_id: 5,
            sequence: 2,
        }),
        failing_since: None,
        disable: None,
        now,
    };
    assert!(
        !store
            .settle_webhook(tenant, id, other, &moved)
            .await
            .unwrap()
    );
    let renewed = store
        .renew_webhook_lease(tenant, id, holder, until)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        renewed.cursor,
        WebhookCursor::default(),
        "the stranger wrote nothing"
    );
    assert!(
        store
            .settle_webhook(tenant, id, holder, &moved)
            .await
            .unwrap()
    );

    // A lapsed lease goes to whoever asks next, with the cursor as left.
    let lapsed = now - chrono::TimeDelta::seconds(1);
    assert!(
        store
            .renew_webhook_lease(tenant, id, holder, lapsed)
            .await
            .unwrap()
            .is_some()
    );
    let taken = store.lease_webhooks(other, now, until, 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].record.webhook.webhook_id, id);
    assert_eq!(
        taken[0].cursor,
        WebhookCursor {
            event_id: 5,
            sequence: 2
        }
    );
    assert!(
        !store
            .settle_webhook(tenant, id, holder, &moved)
            .await
            .unwrap(),
        "no longer its own"
    );

    // Released: free at once. Disabled (by settling): nobody leases it.
    store
        .release_webhook_lease(tenant, id, other)
        .await
        .unwrap();
    let again = store.lease_webhooks(holder, now, until, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    let off = WebhookSettlement {
        disable: Some("test".into()),
        ..moved.clone()
    };
    assert!(
        store
            .settle_webhook(tenant, id, holder, &off)
            .await
            .unwrap()
    );
    store
        .release_webhook_lease(tenant, id, holder)
        .await
        .unwrap();
    assert!(
        store
            .lease_webhooks(holder, now, until, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let listed = store.list_webhooks(tenant).await.unwrap();
    let stored = listed.iter().find(|r| r.webhook.webhook_id == id).unwrap();
    assert!(!stored.webhook.enabled);
    assert_eq!(stored.webhook.disabled_reason, "test");
    store.close().await;
}

async fn a_stopping_replica_hands_its_endpoints_over(backend: Backend) {
    // Leases far longer than the waits below: the second replica can only
    // go on because the first gave its lease back.
    let dir = tempfile::tempdir().unwrap();
    let url = crate::helpers::database_url_for(backend, &dir).await;
    let mut first =
        crate::helpers::spawn_app_configured(dir, url, |s| s.webhooks = delivering(120)).await;
    let secret = std::fs::read_to_string(first.dir.path().join("secret.key")).unwrap();
    let (addr, got) = scripted_receiver().await;
    first
        .admin(&first.admin_key)
        .await
        .create_webhook(create(&format!("http://{addr}/all"), &[]))
        .await
        .unwrap();
    submit_on(&first, &first.admin_key, "a1", "alice", "Premier avis.").await;
    wait_for(&got, "the first event", |got| !got.is_empty()).await;
    let second = crate::helpers::spawn_app_configured(
        tempfile::tempdir().unwrap(),
        first.database_url.clone(),
        |s| {
            s.secret_key = Some(secret.trim().to_owned());
            s.webhooks = delivering(120);
        },
    )
    .await;
    let key = first.admin_key.clone();
    // The SQLite file outlives the first replica.
    let _database = std::mem::replace(&mut first.dir, tempfile::tempdir().unwrap());
    first.stop().await.unwrap();
    submit_on(&second, &key, "a1", "bob", "Deuxième avis.").await;
    wait_for(&got, "the second event, from the second replica", |got| {
        firsts(got, "/all").len() == 2
    })
    .await;
    second.stop().await.unwrap();
}

async fn a_slow_receiver_delays_only_itself(backend: Backend) {
    let app = spawn_delivering(backend).await;
    let (addr, got) = scripted_receiver().await;
    let mut admin = app.admin(&app.admin_key).await;
    for path in ["/slow", "/all"] {
        admin
            .create_webhook(create(&format!("http://{addr}{path}"), &[]))
            .await
            .unwrap();
    }
    for i in 0..3 {
        submit_on(&app, &app.admin_key, "a1", "alice", &format!("Avis {i}.")).await;
    }
    // Three answers from /slow take 6 s; /all does not wait for them.
    wait_for(&got, "every event on /all", |got| {
        firsts(got, "/all").len() == 3
    })
    .await;
    let slow_done = firsts(&got.lock().unwrap(), "/slow").len();
    assert!(slow_done < 3, "/all finished first ({slow_done} on /slow)");
    wait_for(&got, "every event on /slow, in order", |got| {
        firsts(got, "/slow").len() == 3
    })
    .await;
    let order = |path: &str| -> Vec<String> {
        firsts(&got.lock().unwrap(), path)
            .iter()
            .map(|d| d.id.clone())
            .collect()
    };
    assert_eq!(order("/slow"), order("/all"));
    let (_, metrics) = app.http_get("/metrics").await;
    assert!(
        metrics.contains("moderato_webhook_deliveries_total{outcome=\"delivered\"}"),
        "deliveries are counted"
    );
    assert!(metrics.contains("moderato_webhook_delivery_lag_seconds"));
    app.stop().await.unwrap();
}

async fn a_report_is_delivered_without_waiting_for_a_later_comment(backend: Backend) {
    let app = spawn_delivering(backend).await;
    let (addr, got) = scripted_receiver().await;
    app.admin(&app.admin_key)
        .await
        .create_webhook(create(
            &format!("http://{addr}/reports"),
            &[pb::WebhookEventType::CommentReported],
        ))
        .await
        .unwrap();
    let c = submit_on(&app, &app.admin_key, "a1", "alice", "Un avis tranché.").await;
    // The last event of the log is audit-only: numbering rounds move the
    // watermark past it although they number nothing.
    app.comments(&app.admin_key)
        .await
        .report_comment(pb::ReportCommentRequest {
            comment_id: c.comment_id.clone(),
            reporter_id: "reader-1".into(),
            reason: pb::ReportReason::Other as i32,
            detail: String::new(),
        })
        .await
        .unwrap();
    wait_for(&got, "the report", |got| !got.is_empty()).await;
    let report = got.lock().unwrap()[0].clone();
    assert_eq!(report.kind(), "comment.reported");
    assert!(report.id.starts_with("msg_evt_"));
    assert_eq!(report.json()["data"]["comment"]["comment_id"], c.comment_id);
    app.stop().await.unwrap();
}
