//! TLS and mutual TLS on both ports, with certificates generated here.
//! Transport does not touch storage, so these run on SQLite only.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use moderato::config::Settings;
use moderato::domain::Role;
use moderato::grpc::pb;
use moderato::grpc::pb::comment_service_client::CommentServiceClient;
use moderato::tls::TlsFiles;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::helpers::{Bearer, TestApp, comment, database_url_for, spawn_app_configured};

/// A certificate authority made for one test.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf certificate and its key, both PEM.
    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn server_cert(&self) -> (String, String) {
        self.issue(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn client_cert(&self, name: &str) -> (String, String) {
        self.issue(&[name], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// The server's files in the test's directory.
struct Files {
    cert: PathBuf,
    key: PathBuf,
    client_ca: PathBuf,
}

impl Files {
    fn in_dir(dir: &Path) -> Files {
        Files {
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
            client_ca: dir.join("clients-ca.crt"),
        }
    }

    /// Replaces the server's certificate and key the way rotation tools do:
    /// write beside, then rename over (each file changes atomically).
    fn install(&self, (cert, key): &(String, String)) {
        for (path, content) in [(&self.key, key), (&self.cert, cert)] {
            let tmp = path.with_extension("new");
            std::fs::write(&tmp, content).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
    }

    fn tls(&self, mutual: bool) -> TlsFiles {
        TlsFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
            client_ca: mutual.then(|| self.client_ca.clone()),
        }
    }
}

/// A server on SQLite serving `server_ca`'s certificate; with `client_ca`,
/// it requires client certificates signed by it.
async fn spawn_tls_app(server_ca: &Ca, client_ca: Option<&Ca>, http_tls: bool) -> (TestApp, Files) {
    let dir = tempfile::tempdir().unwrap();
    let files = Files::in_dir(dir.path());
    files.install(&server_ca.server_cert());
    if let Some(ca) = client_ca {
        std::fs::write(&files.client_ca, &ca.pem).unwrap();
    }
    let tls = files.tls(client_ca.is_some());
    let url = database_url_for(crate::helpers::Backend::Sqlite, &dir).await;
    let app = spawn_app_configured(dir, url, move |s: &mut Settings| {
        s.tls = Some(tls);
        s.http_tls = http_tls;
    })
    .await;
    (app, files)
}

/// A TLS channel to the app trusting `ca`, presenting `identity` if given.
async fn tls_channel(
    app: &TestApp,
    ca: &Ca,
    identity: Option<&(String, String)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca.pem))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        config = config.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(format!("https://{}", app.grpc_addr))
        .unwrap()
        .tls_config(config)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

/// Submits one comment over `channel`; the error when the call fails.
async fn submit(channel: Channel, key: &str) -> Result<pb::Comment, String> {
    let mut client = CommentServiceClient::with_interceptor(channel, Bearer::key(key));
    client
        .submit_comment(comment("a-1", "reader", "Merci pour cet article."))
        .await
        .map(|r| r.into_inner().comment.unwrap())
        .map_err(|status| format!("{status:?}"))
}

/// A TLS client trusting `ca` gets its comment stored; any failure (at
/// connect or at the call) is `Err`.
async fn submit_over_tls(
    app: &TestApp,
    ca: &Ca,
    identity: Option<&(String, String)>,
    key: &str,
) -> Result<pb::Comment, String> {
    let channel = tls_channel(app, ca, identity)
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    submit(channel, key).await
}

async fn plaintext_channel(app: &TestApp) -> Result<Channel, tonic::transport::Error> {
    Channel::from_shared(format!("http://{}", app.grpc_addr))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_port_serves_tls_to_clients_that_trust_its_ca() {
    let ca = Ca::new("moderato test CA");
    let (app, _files) = spawn_tls_app(&ca, None, false).await;
    let key = app.key_for("default", Role::Publisher).await;

    let stored = submit_over_tls(&app, &ca, None, &key).await.unwrap();
    assert!(!stored.comment_id.is_empty());

    // A client that trusts another CA does not get through the handshake.
    let stranger = Ca::new("another CA");
    let refused = submit_over_tls(&app, &stranger, None, &key).await;
    assert!(
        refused.is_err(),
        "a server certificate from an untrusted CA was accepted"
    );

    // Neither does a plaintext client.
    let plaintext = match plaintext_channel(&app).await {
        Ok(channel) => submit(channel, &key).await,
        Err(e) => Err(format!("{e:?}")),
    };
    assert!(
        plaintext.is_err(),
        "a plaintext call was served on the TLS port"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_client_certificate_from_the_client_ca() {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let (app, _files) = spawn_tls_app(&server_ca, Some(&client_ca), false).await;
    let key = app.key_for("default", Role::Publisher).await;

    let cms = client_ca.client_cert("cms.example");
    submit_over_tls(&app, &server_ca, Some(&cms), &key)
        .await
        .expect("a client with a certificate from the client CA is served");

    let without = submit_over_tls(&app, &server_ca, None, &key).await;
    assert!(
        without.is_err(),
        "a client without a certificate was served"
    );

    let forged = Ca::new("client CA").client_cert("cms.example");
    let forged = submit_over_tls(&app, &server_ca, Some(&forged), &key).await;
    assert!(
        forged.is_err(),
        "a client certificate from another CA was accepted"
    );

    // A server certificate is not a client certificate, even from the right CA.
    let wrong_usage = client_ca.issue(&["cms.example"], ExtendedKeyUsagePurpose::ServerAuth);
    let wrong_usage = submit_over_tls(&app, &server_ca, Some(&wrong_usage), &key).await;
    assert!(
        wrong_usage.is_err(),
        "a certificate without clientAuth was accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_certificates_are_served_without_a_restart() {
    let old_ca = Ca::new("old CA");
    let (app, files) = spawn_tls_app(&old_ca, None, false).await;
    let key = app.key_for("default", Role::Publisher).await;
    let established = tls_channel(&app, &old_ca, None).await.unwrap();
    submit(established.clone(), &key).await.unwrap();

    let new_ca = Ca::new("new CA");
    files.install(&new_ca.server_cert());
    let mut waited = Duration::ZERO;
    while submit_over_tls(&app, &new_ca, None, &key).await.is_err() {
        assert!(
            waited < Duration::from_secs(10),
            "the new certificate was not served within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
    assert!(
        submit_over_tls(&app, &old_ca, None, &key).await.is_err(),
        "new connections still get the replaced certificate"
    );
    // Connections opened before the rotation keep their session.
    submit(established, &key)
        .await
        .expect("an established connection survives the rotation");

    // A broken replacement is refused and the last good certificate stays.
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    tokio::time::sleep(moderato::tls::RELOAD_INTERVAL * 3).await;
    submit_over_tls(&app, &new_ca, None, &key)
        .await
        .expect("a half-written certificate took the service down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_connects_with_the_ca_and_plaintext_grpcurl_is_refused() {
    let grpcurl = crate::helpers::tool("GRPCURL", "grpcurl");
    let ca = Ca::new("moderato test CA");
    let (app, files) = spawn_tls_app(&ca, None, false).await;
    let ca_file = files.cert.with_file_name("ca.crt");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let address = format!("localhost:{}", app.grpc_addr.port());
    let key = app.key_for("default", Role::Publisher).await;

    let run = |args: Vec<String>| {
        let grpcurl = grpcurl.clone();
        async move {
            tokio::process::Command::new(&grpcurl)
                .args(&args)
                .output()
                .await
                .expect("grpcurl runs")
        }
    };
    let with_ca = run(vec![
        "-cacert".into(),
        ca_file.display().to_string(),
        "-H".into(),
        format!("authorization: Bearer {key}"),
        "-d".into(),
        r#"{"article_id": "a-1", "author_id": "reader", "body": "Bonjour à tous."}"#.into(),
        address.clone(),
        "moderato.v1.CommentService/SubmitComment".into(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&with_ca.stdout);
    assert!(
        with_ca.status.success(),
        "grpcurl with the CA failed: {}",
        String::from_utf8_lossy(&with_ca.stderr)
    );
    assert!(
        stdout.contains("\"commentId\""),
        "no stored comment in {stdout}"
    );

    let without_ca = run(vec![address.clone(), "list".into()]).await;
    assert!(
        !without_ca.status.success(),
        "grpcurl trusted a certificate from a CA it does not know"
    );
    let plaintext = run(vec!["-plaintext".into(), address, "list".into()]).await;
    assert!(
        !plaintext.status.success(),
        "plaintext grpcurl was served on the TLS port"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_port_serves_tls_with_the_same_certificate() {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    // mTLS on gRPC does not extend to the HTTP port: probes and browsers
    // connect there without client certificates.
    let (app, _files) = spawn_tls_app(&server_ca, Some(&client_ca), true).await;

    let (status, body) = https_get(&app, &server_ca, "/healthz").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _) = https_get(&app, &server_ca, "/console").await.unwrap();
    assert_eq!(status, 200);

    let plaintext = tokio::time::timeout(Duration::from_secs(5), async {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut tcp = tokio::net::TcpStream::connect(app.http_addr).await.unwrap();
        let _ = tcp
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .await;
        let mut raw = Vec::new();
        // The server answers with a TLS alert or a reset; either ends this.
        let _ = tcp.read_to_end(&mut raw).await;
        raw
    })
    .await
    .expect("the server closes a plaintext connection");
    assert!(
        !plaintext.starts_with(b"HTTP/"),
        "plaintext HTTP was served on the TLS port"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_unreadable_tls_files_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let files = Files::in_dir(dir.path());
    let ca = Ca::new("CA");
    let (cert, _) = ca.server_cert();
    let (_, other_key) = ca.server_cert();
    files.install(&(cert, other_key));
    let settings = |tls: TlsFiles| Settings {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        database_url: format!("sqlite://{}", dir.path().join("m.db").display()),
        db: Default::default(),
        admin_key_file: dir.path().join("admin.key"),
        tls: Some(tls),
        http_tls: false,
        max_concurrent_calls: moderato::config::DEFAULT_MAX_CONCURRENT_CALLS,
        key_requests_per_second: 0,
        secret_key: None,
        secret_key_file: dir.path().join("secret.key"),
        webhooks: Default::default(),
    };

    let mismatched = moderato::startup::Application::build(settings(files.tls(false)))
        .await
        .err()
        .expect("a key that does not match the certificate is refused");
    assert!(
        format!("{mismatched:#}").contains("server.crt"),
        "{mismatched:#}"
    );
    let missing = moderato::startup::Application::build(settings(TlsFiles {
        client_ca: Some(dir.path().join("missing-ca.crt")),
        ..files.tls(false)
    }))
    .await
    .err()
    .expect("a missing client CA is refused");
    assert!(
        format!("{missing:#}").contains("missing-ca.crt"),
        "{missing:#}"
    );
}

/// GET over HTTPS/1.1, trusting `ca`.
async fn https_get(app: &TestApp, ca: &Ca, path: &str) -> std::io::Result<(u16, String)> {
    use rustls::pki_types::pem::PemObject as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(app.http_addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut stream = connector.connect(name, tcp).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut raw = Vec::new();
    // Servers may close without close_notify after `Connection: close`.
    let _ = stream.read_to_end(&mut raw).await;
    let raw = String::from_utf8_lossy(&raw);
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderato_bench_measures_over_mutual_tls() {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let (app, files) = spawn_tls_app(&server_ca, Some(&client_ca), false).await;
    let dir = files.cert.parent().unwrap();
    let (cert, key) = client_ca.client_cert("bench");
    for (name, content) in [
        ("ca.crt", &server_ca.pem),
        ("bench.crt", &cert),
        ("bench.key", &key),
    ] {
        std::fs::write(dir.join(name), content).unwrap();
    }
    let publisher = app.key_for("default", Role::Publisher).await;
    let metadata = format!(r#"{{"authorization":"Bearer {publisher}"}}"#);
    let host = app.grpc_addr.to_string();
    let path = |name: &str| dir.join(name).display().to_string();
    let bench = |extra: Vec<String>| {
        let mut args = vec![
            "--call".to_owned(),
            "moderato.v1.CommentService.SubmitComment".into(),
            "-d".into(),
            r#"{"article_id":"a1","author_id":"r{{.RequestNumber}}","body":"Le budget {{.RequestNumber}}"}"#.into(),
            "-m".into(),
            metadata.clone(),
            "-n".into(),
            "40".into(),
            "-c".into(),
            "4".into(),
            "-O".into(),
            "json".into(),
            "--cacert".into(),
            path("ca.crt"),
            "--cname".into(),
            "localhost".into(),
        ];
        args.extend(extra);
        args.push(host.clone());
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_moderato-bench"))
                .args(&args)
                .output()
                .await
                .unwrap()
        }
    };

    let output = bench(vec![
        "--cert".into(),
        path("bench.crt"),
        "--key".into(),
        path("bench.key"),
    ])
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["statusCodeDistribution"]["OK"], 40, "{report}");

    // Without the client certificate the server refuses the connection.
    let output = bench(Vec::new()).await;
    let served = serde_json::from_slice::<serde_json::Value>(&output.stdout)
        .ok()
        .and_then(|r| r["statusCodeDistribution"]["OK"].as_u64())
        .unwrap_or(0);
    assert_eq!(served, 0, "calls were served without a client certificate");
}

/// A webhook delivery to an HTTPS receiver: the certificate is checked
/// for the URL's host against the delivering side's roots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_deliveries_verify_the_receivers_certificate() {
    use moderato::webhooks::{AddressPolicy, Outcome, Sender};
    let server_ca = Ca::new("receiver CA");
    let (app, _files) = spawn_tls_app(&server_ca, None, true).await;
    let url = format!("https://localhost:{}/healthz", app.http_addr.port());
    let roots = |ca: &Ca| {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile_certs(&ca.pem) {
            roots.add(cert).unwrap();
        }
        roots
    };
    let trusting = Sender::with_roots(
        AddressPolicy::AllowPrivate,
        roots(&server_ca),
        Duration::from_secs(5),
    );
    // The HTTP port takes no POST on /healthz: an answer, so TLS worked.
    let answered = trusting.send(&url, &[], "{}".into()).await;
    assert!(
        matches!(
            answered,
            Outcome::Failed {
                status: Some(405),
                ..
            }
        ),
        "{answered:?}"
    );
    let stranger = Sender::with_roots(
        AddressPolicy::AllowPrivate,
        roots(&Ca::new("other CA")),
        Duration::from_secs(5),
    );
    let refused = stranger.send(&url, &[], "{}".into()).await;
    assert!(
        matches!(&refused, Outcome::Failed { status: None, error } if error.starts_with("TLS")),
        "{refused:?}"
    );
}

fn rustls_pemfile_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}
