//! Running it: health, reflection, HTTP endpoints, replicas, the CLI, shutdown,
//! and what happens when the database goes away.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moderato::domain::Role;
use moderato::grpc::pb::{self, CommentStatus};
use tokio::io::AsyncBufReadExt as _;
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tonic::Code;

use crate::backend_tests;
use crate::helpers::{
    Backend, comment, fresh_postgres_database, postgres_base_url, spawn_app, spawn_app_on,
};

backend_tests!(
    health_and_reflection_are_open,
    http_endpoints_report_health_readiness_and_metrics,
    two_replicas_on_one_database_never_share_a_claim,
    two_replicas_share_standings_reports_and_decisions,
    the_service_numbers_decision_events_soon_after_commit,
    the_cli_creates_keys_while_the_server_runs,
    shutdown_stops_the_server_cleanly,
);

async fn health_and_reflection_are_open(backend: Backend) {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let app = spawn_app(backend).await;
    let mut health = HealthClient::new(app.channel().await);
    for service in [
        "",
        "moderato.v1.CommentService",
        "moderato.v1.ReviewService",
        "moderato.v1.AdminService",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service}");
    }

    let mut reflection = ServerReflectionClient::new(app.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list");
    };
    let names: HashSet<_> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "moderato.v1.CommentService",
        "moderato.v1.ReviewService",
        "moderato.v1.AdminService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }
}

async fn http_endpoints_report_health_readiness_and_metrics(backend: Backend) {
    let app = spawn_app(backend).await;
    app.comments(&app.admin_key)
        .await
        .submit_comment(comment("a", "r", "salut"))
        .await
        .unwrap();
    let _ = app
        .comments(&app.admin_key)
        .await
        .get_comment(pb::GetCommentRequest {
            comment_id: uuid::Uuid::now_v7().to_string(),
        })
        .await;

    assert_eq!(app.http_get("/healthz").await.0, 200);
    assert_eq!(app.http_get("/readyz").await.0, 200);
    let (status, metrics) = app.http_get("/metrics").await;
    assert_eq!(status, 200);
    for expected in [
        r#"moderato_rpc_requests_total{rpc="SubmitComment",code="Ok"}"#,
        r#"moderato_rpc_requests_total{rpc="GetComment",code="NotFound"}"#,
        r#"moderato_rpc_duration_seconds_bucket{rpc="SubmitComment""#,
        r#"moderato_decisions_total{status="approved"}"#,
        "moderato_review_queue_depth",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from:\n{metrics}"
        );
    }
}

async fn two_replicas_on_one_database_never_share_a_claim(backend: Backend) {
    let first = spawn_app(backend).await;
    first.premoderate().await;
    let second_dir = tempfile::tempdir().unwrap();
    let second = spawn_app_on(second_dir, first.database_url.clone()).await;
    assert!(
        second.admin_key.is_empty(),
        "only the first start bootstraps"
    );

    let publisher = first.key_for("default", Role::Publisher).await;
    let moderator = first.key_for("default", Role::Moderator).await;
    let mut submit = second.comments(&publisher).await;
    for i in 0..40 {
        let held = submit
            .submit_comment(comment("a", &format!("r{i}"), &format!("n° {i}")))
            .await
            .unwrap()
            .into_inner()
            .comment
            .unwrap();
        assert_eq!(
            held.status,
            CommentStatus::PendingReview as i32,
            "settings are shared"
        );
    }

    let mut claimers = Vec::new();
    for (i, app) in [&first, &second, &first, &second, &first, &second]
        .into_iter()
        .enumerate()
    {
        let mut client = app.reviews(&moderator).await;
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let items = client
                    .claim_reviews(pb::ClaimReviewsRequest {
                        max_items: 3,
                        lease_seconds: 60,
                        moderator_id: format!("m{i}"),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .items;
                if items.is_empty() {
                    return mine;
                }
                mine.extend(items.into_iter().map(|i| i.review_id));
            }
        }));
    }
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 40);
    assert_eq!(distinct.len(), 40);
}

async fn two_replicas_share_standings_reports_and_decisions(backend: Backend) {
    let first = spawn_app(backend).await;
    let second = spawn_app_on(tempfile::tempdir().unwrap(), first.database_url.clone()).await;
    let publisher = first.key_for("default", Role::Publisher).await;
    let moderator = first.key_for("default", Role::Moderator).await;

    // A ban set through one replica applies to the next comment through the
    // other: standings are read with the author's history, not cached.
    first
        .reviews(&moderator)
        .await
        .set_author_standing(pb::SetAuthorStandingRequest {
            author_id: "troll".into(),
            standing: pb::AuthorStanding::Banned as i32,
            reason: "menaces".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let banned = second
        .comments(&publisher)
        .await
        .submit_comment(comment("a", "troll", "Encore moi, sur un autre serveur."))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(banned.status, CommentStatus::Rejected as i32);
    assert_eq!(banned.reasons[0].code, "author.banned");

    // Reports through both replicas at once requeue the comment once.
    let target = first
        .comments(&publisher)
        .await
        .submit_comment(comment("a", "ama", "Un avis mesuré sur le scrutin."))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    let reports = (0..8).map(|i| {
        let app = if i % 2 == 0 { &first } else { &second };
        let (publisher, id) = (publisher.clone(), target.comment_id.clone());
        async move {
            app.comments(&publisher)
                .await
                .report_comment(pb::ReportCommentRequest {
                    comment_id: id,
                    reporter_id: format!("reader-{i}"),
                    reason: pb::ReportReason::Offensive as i32,
                    detail: String::new(),
                })
                .await
                .unwrap()
                .into_inner()
        }
    });
    let results = futures::future::join_all(reports).await;
    assert_eq!(results.iter().filter(|r| r.requeued).count(), 1);
    let queue = second
        .reviews(&moderator)
        .await
        .list_review_queue(pb::ListReviewQueueRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(queue.len(), 1);

    // A bulk decision through one replica and a single one through the
    // other: the item is decided once.
    let item = first
        .reviews(&moderator)
        .await
        .claim_reviews(pb::ClaimReviewsRequest {
            max_items: 1,
            moderator_id: "awa".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .items
        .remove(0);
    let (bulk, single) = tokio::join!(
        async {
            first
                .reviews(&moderator)
                .await
                .decide_reviews(pb::DecideReviewsRequest {
                    decisions: vec![pb::BulkDecision {
                        review_id: item.review_id.clone(),
                        decision: pb::ReviewDecision::Reject as i32,
                        ..Default::default()
                    }],
                    moderator_id: "awa".into(),
                })
                .await
                .unwrap()
                .into_inner()
                .results
                .remove(0)
        },
        async {
            second
                .reviews(&moderator)
                .await
                .decide_review(pb::DecideReviewRequest {
                    review_id: item.review_id.clone(),
                    decision: pb::ReviewDecision::Approve as i32,
                    moderator_id: "awa".into(),
                    ..Default::default()
                })
                .await
        }
    );
    let bulk_won = bulk.outcome == pb::DecisionOutcome::Decided as i32;
    assert_ne!(bulk_won, single.is_ok(), "exactly one of them decides");
}

async fn the_service_numbers_decision_events_soon_after_commit(backend: Backend) {
    let first = spawn_app(backend).await;
    let second = spawn_app_on(tempfile::tempdir().unwrap(), first.database_url.clone()).await;
    let publisher = first.key_for("default", Role::Publisher).await;
    let tenant = first
        .store
        .find_tenant(&moderato::domain::TenantName::parse("default").unwrap())
        .await
        .unwrap()
        .unwrap();
    // Both replicas write and number at once.
    let writes = (0..20).map(|i| {
        let app = if i % 2 == 0 { &first } else { &second };
        let publisher = publisher.clone();
        async move {
            app.comments(&publisher)
                .await
                .submit_comment(comment("a", &format!("r{i}"), &format!("Avis numéro {i}.")))
                .await
                .unwrap()
                .into_inner()
                .comment
                .unwrap()
                .comment_id
        }
    });
    let mut written: Vec<String> = futures::future::join_all(writes).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let events = loop {
        let events = first
            .store
            .list_decision_events(tenant, 0, 100)
            .await
            .unwrap();
        if events.len() == 20 || Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=20).collect::<Vec<_>>());
    let mut streamed: Vec<String> = events.iter().map(|e| e.comment_id.to_string()).collect();
    written.sort();
    streamed.sort();
    assert_eq!(streamed, written, "every comment once");
}

async fn the_cli_creates_keys_while_the_server_runs(backend: Backend) {
    let app = spawn_app(backend).await;

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_moderato"))
        .args([
            "keys",
            "create",
            "--tenant",
            "le-quotidien",
            "--role",
            "publisher",
        ])
        .env("DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<_> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "only the key is printed: {stdout:?}");
    let key = lines[0];
    assert!(key.starts_with("mdr_"));
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains(key),
        "the key is never logged"
    );

    let submitted = app
        .comments(key)
        .await
        .submit_comment(comment("a", "r", "via la CLI"))
        .await;
    assert!(submitted.is_ok(), "{submitted:?}");

    let bad = tokio::process::Command::new(env!("CARGO_BIN_EXE_moderato"))
        .args([
            "keys",
            "create",
            "--tenant",
            "Bad Name",
            "--role",
            "publisher",
        ])
        .env("DATABASE_URL", &app.database_url)
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success());
    let listed = tokio::process::Command::new(env!("CARGO_BIN_EXE_moderato"))
        .args(["keys", "list", "--tenant", "le-quotidien"])
        .env("DATABASE_URL", &app.database_url)
        .output()
        .await
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert_eq!(listed.lines().count(), 1);
    assert!(!listed.contains(key));
}

async fn shutdown_stops_the_server_cleanly(backend: Backend) {
    let app = spawn_app(backend).await;
    app.comments(&app.admin_key)
        .await
        .submit_comment(comment("a", "r", "x"))
        .await
        .unwrap();
    let grpc_addr = app.grpc_addr;
    let http_addr = app.http_addr;

    app.stop().await.expect("run_until_stopped returns Ok");

    assert!(
        TcpStream::connect(grpc_addr).await.is_err(),
        "gRPC port closed"
    );
    assert!(
        TcpStream::connect(http_addr).await.is_err(),
        "HTTP port closed"
    );
}

#[tokio::test]
async fn sigterm_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_moderato"))
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/m.db", dir.path().display()),
        )
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let serving = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("moderato serving") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(serving);

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}

/// A TCP proxy in front of Postgres that the test can cut and restore.
struct Proxy {
    addr: SocketAddr,
    accept: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(addr: SocketAddr, upstream: SocketAddr) -> Proxy {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(addr).unwrap();
        let listener = socket.listen(128).unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let tracked = connections.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tracked.lock().unwrap().push(task);
            }
        });
        Proxy {
            addr,
            accept,
            connections,
        }
    }

    /// Refuses new connections and cuts the open ones, as a database crash would.
    fn cut(&self) {
        self.accept.abort();
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// `url` with its host and port replaced by `addr`.
fn via(url: &str, addr: SocketAddr) -> String {
    let start = url.find("://").unwrap() + 3;
    let end = url[start..]
        .find('/')
        .map(|i| start + i)
        .unwrap_or(url.len());
    let authority = &url[start..end];
    let userinfo = authority
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    format!("{}{userinfo}{addr}{}", &url[..start], &url[end..])
}

fn upstream_of(url: &str) -> SocketAddr {
    use std::net::ToSocketAddrs as _;
    use std::str::FromStr as _;
    let options = sqlx::postgres::PgConnectOptions::from_str(url).unwrap();
    (options.get_host(), options.get_port())
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap()
}

/// Postgres only: SQLite is a file in the process and cannot go away like this.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_is_unavailable_and_recovers_by_itself() {
    let direct = fresh_postgres_database().await;
    let upstream = upstream_of(&postgres_base_url());
    let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), upstream).await;
    let app = spawn_app_on(tempfile::tempdir().unwrap(), via(&direct, proxy.addr)).await;
    let mut client = app.comments(&app.admin_key).await;
    let before = client
        .submit_comment(pb::SubmitCommentRequest {
            client_comment_id: "before".into(),
            ..comment("a", "r", "avant la panne")
        })
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();

    proxy.cut();
    let started = Instant::now();
    let err = client
        .submit_comment(comment("a", "r", "pendant la panne"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "fails fast, not after a long hang"
    );
    assert!(
        !err.message().contains("127.0.0.1"),
        "no internals in client messages"
    );
    assert_eq!(app.http_get("/readyz").await.0, 503);
    assert_eq!(
        app.http_get("/healthz").await.0,
        200,
        "the process stays up"
    );

    let _restored = Proxy::start(proxy.addr, upstream).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        match client
            .submit_comment(comment("a", "r", "après la panne"))
            .await
        {
            Ok(response) => break response.into_inner().comment.unwrap(),
            Err(status) if status.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => panic!("did not recover: {status:?}"),
        }
    };
    assert_eq!(after.status, CommentStatus::Approved as i32);
    assert_eq!(app.http_get("/readyz").await.0, 200);
    let again = client
        .get_comment(pb::GetCommentRequest {
            comment_id: before.comment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(again, before, "acknowledged data survived the outage");
}
