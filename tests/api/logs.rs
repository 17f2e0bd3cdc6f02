//! Nothing secret or personal reaches the log: a real `moderato` process
//! at debug level goes through a scripted session (keys, submissions with
//! addresses, a held comment decided, a report, bad input, a garbled key),
//! and its whole log is searched for what the session sent.

use std::process::Stdio;
use std::time::Duration;

use moderato::grpc::pb;
use moderato::grpc::pb::admin_service_client::AdminServiceClient;
use moderato::grpc::pb::comment_service_client::CommentServiceClient;
use moderato::grpc::pb::review_service_client::ReviewServiceClient;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::helpers::{Bearer, comment};

fn authed(channel: &Channel, key: &str) -> InterceptedService<Channel, Bearer> {
    InterceptedService::new(channel.clone(), Bearer::key(key))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_session_logs_no_body_key_or_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_moderato"))
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/m.db", dir.path().display()),
        )
        .env("MODERATO_ADMIN_KEY_FILE", dir.path().join("admin.key"))
        .env("RUST_LOG", "debug")
        .env("MODERATO_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("moderato starts");
    let mut stderr = BufReader::new(server.stderr.take().unwrap());
    let mut log = String::new();
    let grpc_addr = loop {
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(60), stderr.read_line(&mut line))
            .await
            .expect("the server logs its address")
            .unwrap();
        assert!(read > 0, "the server exited: {log}");
        log.push_str(&line);
        if line.contains("moderato serving") {
            let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
            break entry["fields"]["grpc_addr"].as_str().unwrap().to_owned();
        }
    };
    // Drained while the session runs: at debug the server writes more than a
    // pipe holds, and a full pipe would block it mid-call.
    let rest = tokio::spawn(async move {
        let mut rest = String::new();
        stderr.read_to_string(&mut rest).await.map(|_| rest)
    });
    let channel = Channel::from_shared(format!("http://{grpc_addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let admin_key = std::fs::read_to_string(dir.path().join("admin.key"))
        .unwrap()
        .trim()
        .to_owned();

    let mut admin = AdminServiceClient::new(authed(&channel, &admin_key));
    let publisher_key = admin
        .create_api_key(pb::CreateApiKeyRequest {
            role: pb::ApiKeyRole::Publisher as i32,
            name: "CMS".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .key;
    admin
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            moderation_mode: Some(pb::ModerationMode::Pre as i32),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut comments = CommentServiceClient::new(authed(&channel, &publisher_key));
    let bodies = [
        "Le ministre Kouassi-zx81 a menti sur la dette, honte à lui.",
        "Mon numéro secret-qr52 est le 07 00 11 22 33, appelez-moi.",
    ];
    let addresses = ["203.0.113.91", "2001:db8::91"];
    let mut stored = Vec::new();
    for (body, ip) in bodies.iter().zip(addresses) {
        stored.push(
            comments
                .submit_comment(pb::SubmitCommentRequest {
                    author_ip: ip.to_owned(),
                    author_display_name: "Awa-pn33".into(),
                    ..comment("budget-2027", "reader-9", body)
                })
                .await
                .unwrap()
                .into_inner()
                .comment
                .unwrap(),
        );
    }
    // Bad input, a garbled key and a key that was never issued.
    let too_long = format!("{} trop-long-kw77", "x".repeat(6_000));
    comments
        .submit_comment(comment("budget-2027", "reader-9", &too_long))
        .await
        .unwrap_err();
    let garbled = "mdr_garbled-key-that-leaks-9f3k";
    CommentServiceClient::new(authed(&channel, garbled))
        .submit_comment(comment("a", "r", bodies[0]))
        .await
        .unwrap_err();
    comments
        .report_comment(pb::ReportCommentRequest {
            comment_id: stored[0].comment_id.clone(),
            reporter_id: "reporter-1".into(),
            reason: pb::ReportReason::Harassment as i32,
            detail: "signalement-detail-hh20".into(),
        })
        .await
        .unwrap();
    let mut reviews = ReviewServiceClient::new(authed(&channel, &admin_key));
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
    assert!(!items.is_empty());
    reviews
        .decide_review(pb::DecideReviewRequest {
            review_id: items[0].review_id.clone(),
            decision: pb::ReviewDecision::Reject as i32,
            moderator_id: "mod-1".into(),
            note: "note-du-moderateur-tt61".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    // Stop it as an operator would and read everything it wrote.
    let pid = server.id().unwrap().to_string();
    let term = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(term.success());
    let rest = tokio::time::timeout(Duration::from_secs(30), rest)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
    log.push_str(&rest);
    server.wait().await.unwrap();

    assert!(
        log.contains("SubmitComment") || log.contains("submit_comment"),
        "the log is empty: {log}"
    );
    let secrets = [
        admin_key.as_str(),
        &admin_key[4..20],
        publisher_key.as_str(),
        &publisher_key[4..20],
        garbled,
        "Kouassi-zx81",
        "secret-qr52",
        "trop-long-kw77",
        "Awa-pn33",
        "signalement-detail-hh20",
        "note-du-moderateur-tt61",
        addresses[0],
        addresses[1],
    ];
    for secret in secrets {
        assert!(!log.contains(secret), "{secret:?} is in the log");
    }
}
