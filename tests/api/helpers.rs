//! `spawn_app`: a real server on port 0 with a fresh database, and typed
//! clients for it. One fresh database per test, SQLite or Postgres.

use std::net::SocketAddr;
use std::sync::Arc;

use moderato::config::Settings;
use moderato::domain::{Role, TenantName};
use moderato::grpc::pb;
use moderato::grpc::pb::admin_service_client::AdminServiceClient;
use moderato::grpc::pb::comment_service_client::CommentServiceClient;
use moderato::grpc::pb::review_service_client::ReviewServiceClient;
use moderato::startup::Application;
use moderato::storage::{DbOptions, Store};
use sqlx::{Connection as _, Executor as _};
use tokio::sync::{OnceCell, oneshot};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each listed async test once per backend:
/// `backend_tests!(name, …)` expands to `mod sqlite { … }` and `mod postgres { … }`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// The Postgres server tests run against: `TEST_DATABASE_URL`, else the local one.
pub fn postgres_base_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .or_else(|| {
            std::env::var("DATABASE_URL")
                .ok()
                .filter(|u| u.starts_with("postgres"))
        })
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `base` with its database name replaced.
pub fn with_database(base: &str, database: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (base, None),
    };
    let authority_start = head.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match head[authority_start..].find('/') {
        Some(slash) => &head[..authority_start + slash],
        None => head,
    };
    match query {
        Some(query) => format!("{root}/{database}?{query}"),
        None => format!("{root}/{database}"),
    }
}

/// Creates an empty database for one test. The first call of a run drops the
/// databases earlier runs left behind.
pub async fn fresh_postgres_database() -> String {
    static SWEPT: OnceCell<()> = OnceCell::const_new();
    let base = postgres_base_url();
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .expect("tests need Postgres: set TEST_DATABASE_URL or run ./scripts/test");
    SWEPT
        .get_or_init(|| async {
            let stale: Vec<String> = sqlx::query_scalar(
                "SELECT datname FROM pg_database WHERE datname LIKE 'moderato\\_test\\_%' \
                 AND datname NOT LIKE $1",
            )
            .bind(format!("moderato\\_test\\_{}\\_%", std::process::id()))
            .fetch_all(&mut admin)
            .await
            .unwrap();
            for name in stale {
                let _ = admin
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .await;
            }
        })
        .await;
    let name = format!(
        "moderato_test_{}_{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .await
        .expect("create test database");
    with_database(&base, &name)
}

pub struct TestApp {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub database_url: String,
    /// The bootstrap admin key of tenant `default`.
    pub admin_key: String,
    pub store: Arc<dyn Store>,
    pub dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn database_url_for(backend: Backend, dir: &tempfile::TempDir) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("moderato.db").display()),
        Backend::Postgres => fresh_postgres_database().await,
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let database_url = database_url_for(backend, &dir).await;
    spawn_app_on(dir, database_url).await
}

/// A server on an existing database (a second replica, a restart).
pub async fn spawn_app_on(dir: tempfile::TempDir, database_url: String) -> TestApp {
    spawn_app_configured(dir, database_url, |_| {}).await
}

/// A server on an existing database with settings changed by `configure`
/// (the addresses stay on port 0).
pub async fn spawn_app_configured(
    dir: tempfile::TempDir,
    database_url: String,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    moderato::telemetry::init_tracing(moderato::telemetry::LogFormat::Text);
    let admin_key_file = dir.path().join("admin.key");
    let mut settings = Settings {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.clone(),
        db: DbOptions::default(),
        admin_key_file: admin_key_file.clone(),
        tls: None,
        http_tls: false,
        max_concurrent_calls: moderato::config::DEFAULT_MAX_CONCURRENT_CALLS,
        key_requests_per_second: 0,
        secret_key: None,
        secret_key_file: admin_key_file.with_file_name("secret.key"),
        webhooks: Default::default(),
    };
    configure(&mut settings);
    let app = Application::build(settings)
        .await
        .expect("application builds");
    let grpc_addr = app.grpc_addr();
    let http_addr = app.http_addr();
    let store = app.store();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let admin_key = std::fs::read_to_string(&admin_key_file)
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    TestApp {
        grpc_addr,
        http_addr,
        database_url,
        admin_key,
        store,
        dir,
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// Adds `authorization: Bearer <key>` to every call.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    pub fn key(key: &str) -> Bearer {
        Bearer(Some(format!("Bearer {key}").parse().unwrap()))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub type Authed = InterceptedService<Channel, Bearer>;

impl TestApp {
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc_addr))
            .unwrap()
            .connect()
            .await
            .expect("connect to the test server")
    }

    async fn bearer(&self, key: Option<&str>) -> (Channel, Bearer) {
        let value = key.map(|k| format!("Bearer {k}").parse().unwrap());
        (self.channel().await, Bearer(value))
    }

    /// A channel sending `key` (none when `None`), for any client.
    pub async fn authed(&self, key: Option<&str>) -> Authed {
        let (channel, bearer) = self.bearer(key).await;
        InterceptedService::new(channel, bearer)
    }

    pub async fn comments(&self, key: &str) -> CommentServiceClient<Authed> {
        let (channel, bearer) = self.bearer(Some(key)).await;
        CommentServiceClient::with_interceptor(channel, bearer)
    }

    pub async fn comments_without_key(&self) -> CommentServiceClient<Authed> {
        let (channel, bearer) = self.bearer(None).await;
        CommentServiceClient::with_interceptor(channel, bearer)
    }

    pub async fn reviews(&self, key: &str) -> ReviewServiceClient<Authed> {
        let (channel, bearer) = self.bearer(Some(key)).await;
        ReviewServiceClient::with_interceptor(channel, bearer)
    }

    pub async fn admin(&self, key: &str) -> AdminServiceClient<Authed> {
        let (channel, bearer) = self.bearer(Some(key)).await;
        AdminServiceClient::with_interceptor(channel, bearer)
    }

    /// A key for tenant `tenant`, created the operator's way (creating the tenant).
    pub async fn key_for(&self, tenant: &str, role: Role) -> String {
        let tenant = TenantName::parse(tenant).unwrap();
        moderato::moderation::create_tenant_key(
            self.store.as_ref(),
            &tenant,
            moderato::domain::KeySpec::role(role),
        )
        .await
        .unwrap()
        .secret
        .expose()
        .to_owned()
    }

    /// The id of tenant `default`, created at the first start.
    pub async fn default_tenant(&self) -> moderato::domain::TenantId {
        self.store
            .find_tenant(&TenantName::parse("default").unwrap())
            .await
            .unwrap()
            .expect("tenant default exists")
    }

    /// Switches tenant `default` to pre-moderation, so every comment is held.
    pub async fn premoderate(&self) {
        self.admin(&self.admin_key)
            .await
            .update_tenant_settings(pb::UpdateTenantSettingsRequest {
                moderation_mode: Some(pb::ModerationMode::Pre as i32),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    pub async fn http_get(&self, path: &str) -> (u16, String) {
        http_get(self.http_addr, path).await
    }

    /// Stops the server as SIGTERM would and waits for it to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.server.take().unwrap().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// An external tool the tests run: `$ENV` if set, else the copy
/// `./scripts/test` installs under `target/test-tools/bin`, else `PATH`.
pub fn tool(env: &str, name: &str) -> std::path::PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return path.into();
    }
    let installed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-tools/bin")
        .join(name);
    if installed.exists() {
        return installed;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.exists())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "no {name}: run ./scripts/test (it installs tests/tools/requirements.txt) or set {env}"
        )
    })
}

/// A protobuf timestamp `seconds` from now (negative: in the past).
pub fn timestamp_in(seconds: f64) -> prost_types::Timestamp {
    let at = chrono::Utc::now() + chrono::Duration::milliseconds((seconds * 1000.0) as i64);
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

/// A comment request with sensible defaults.
pub fn comment(article: &str, author: &str, body: &str) -> pb::SubmitCommentRequest {
    pb::SubmitCommentRequest {
        article_id: article.to_owned(),
        author_id: author.to_owned(),
        body: body.to_owned(),
        ..Default::default()
    }
}

/// Submits `body` by `author` on `article` with `key` and returns the stored comment.
pub async fn submit_on(
    app: &TestApp,
    key: &str,
    article: &str,
    author: &str,
    body: &str,
) -> pb::Comment {
    app.comments(key)
        .await
        .submit_comment(comment(article, author, body))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap()
}

/// Minimal HTTP/1.1 GET, enough for /healthz, /readyz and /metrics.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// An HTTP/1.1 response as the tests read it.
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Minimal HTTP/1.1 request (`Connection: close`, bodies sent with a
/// length and read to the end), enough for the console's calls.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> HttpResponse {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// The field named in an `INVALID_ARGUMENT` status's `BadRequest` details.
pub fn violated_field(status: &Status) -> String {
    use tonic_types::StatusExt as _;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let bad_request = details.bad_request().expect("BadRequest details");
    bad_request.field_violations[0].field.clone()
}

/// Holds `body` by `author` on tenant `default` (pre-moderation, nothing
/// rejected outright), claims it as `mod-1` and decides it with `decision`
/// (its `review_id` and `moderator_id` filled in). Returns the decided comment.
pub async fn hold_and_decide(
    app: &TestApp,
    author: &str,
    body: &str,
    decision: pb::DecideReviewRequest,
) -> pb::Comment {
    app.admin(&app.admin_key)
        .await
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            moderation_mode: Some(pb::ModerationMode::Pre as i32),
            reject_threshold: Some(1.0),
            ..Default::default()
        })
        .await
        .unwrap();
    let held = submit_on(app, &app.admin_key, "a1", author, body).await;
    assert_eq!(held.status, pb::CommentStatus::PendingReview as i32);
    let mut reviews = app.reviews(&app.admin_key).await;
    let items = reviews
        .claim_reviews(pb::ClaimReviewsRequest {
            max_items: 1,
            moderator_id: "mod-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(
        items[0].comment.as_ref().unwrap().comment_id,
        held.comment_id
    );
    reviews
        .decide_review(pb::DecideReviewRequest {
            review_id: items[0].review_id.clone(),
            moderator_id: "mod-1".into(),
            ..decision
        })
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap()
}
