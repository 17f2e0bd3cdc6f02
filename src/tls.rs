//! Accepting connections, with or without TLS, for both ports.
//!
//! Certificates rotate without a restart: cert-manager, certbot and
//! Kubernetes secret mounts all replace the files in place, so a watcher
//! stats them every second and, when one changed, builds a new rustls
//! configuration and swaps it in. New connections use the new files;
//! established ones keep the session they negotiated. A bad replacement (a
//! half-written file, a key that does not match) is logged and the previous
//! configuration stays, so a botched rotation never takes the service down.
//!
//! Handshakes run in their own tasks with a timeout: one slow or silent
//! client must not hold up the accept loop for everyone else.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

/// How often the watcher looks at the certificate files.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);
/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The PEM files a TLS listener serves from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by one of these
    /// CAs (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// Which application protocol a listener speaks, offered through ALPN.
#[derive(Debug, Clone, Copy)]
pub enum Protocol {
    /// gRPC: HTTP/2 only.
    Grpc,
    /// The console, health and metrics: HTTP/1.1 (axum is built without h2).
    Http1,
}

/// A rustls configuration that follows its files.
pub struct ReloadingConfig {
    files: TlsFiles,
    protocol: Protocol,
    /// False for a listener that does not ask for client certificates even
    /// when the files name a client CA (the HTTP port: browsers and probes).
    client_auth: bool,
    current: ArcSwap<ServerConfig>,
    stamp: std::sync::Mutex<Vec<Stamp>>,
}

/// What the watcher compares: a file's modification time and length.
type Stamp = Option<(SystemTime, u64)>;

impl ReloadingConfig {
    /// Loads the files now; an error here stops the start (a typo in a path
    /// must not come up as a plaintext or a broken server).
    pub fn load(files: TlsFiles, protocol: Protocol, client_auth: bool) -> anyhow::Result<Self> {
        let stamp = stamps(&files);
        let config = build_config(&files, protocol, client_auth)?;
        Ok(ReloadingConfig {
            files,
            protocol,
            client_auth,
            current: ArcSwap::from_pointee(config),
            stamp: std::sync::Mutex::new(stamp),
        })
    }

    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.client_auth && self.files.client_ca.is_some()
    }

    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// Rebuilds the configuration if a file changed since the last look.
    /// Returns whether a new configuration is now in use.
    pub fn reload_if_changed(&self) -> bool {
        let now = stamps(&self.files);
        {
            let mut seen = self.stamp.lock().expect("stamp lock");
            if *seen == now {
                return false;
            }
            *seen = now;
        }
        match build_config(&self.files, self.protocol, self.client_auth) {
            Ok(config) => {
                self.current.store(Arc::new(config));
                tracing::info!(cert = %self.files.cert.display(), "TLS certificates reloaded");
                true
            }
            Err(err) => {
                tracing::warn!(
                    error = %format!("{err:#}"),
                    cert = %self.files.cert.display(),
                    "the TLS files changed but do not load; still serving the previous ones"
                );
                false
            }
        }
    }

    /// Looks at the files every `RELOAD_INTERVAL` until dropped (abort the task).
    pub async fn watch(self: Arc<Self>) {
        let mut tick = tokio::time::interval(RELOAD_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let me = self.clone();
            // Reading files blocks; keep it off the runtime's workers.
            let _ = tokio::task::spawn_blocking(move || me.reload_if_changed()).await;
        }
    }
}

fn stamps(files: &TlsFiles) -> Vec<Stamp> {
    let stamp = |path: &Path| {
        std::fs::metadata(path)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
    };
    let mut all = vec![stamp(&files.cert), stamp(&files.key)];
    if let Some(ca) = &files.client_ca {
        all.push(stamp(ca));
    }
    all
}

fn build_config(
    files: &TlsFiles,
    protocol: Protocol,
    client_auth: bool,
) -> anyhow::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading a PEM private key from {}", files.key.display()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .context("TLS protocol versions")?;
    let builder = match (&files.client_ca, client_auth) {
        (Some(ca), true) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca)? {
                roots
                    .add(cert)
                    .with_context(|| format!("a CA certificate in {}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .with_context(|| format!("the client CA in {}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).with_context(|| {
        format!(
            "the certificate in {} with the key in {}",
            files.cert.display(),
            files.key.display()
        )
    })?;
    config.alpn_protocols = match protocol {
        Protocol::Grpc => vec![b"h2".to_vec()],
        Protocol::Http1 => vec![b"http/1.1".to_vec()],
    };
    Ok(config)
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("a PEM certificate in {}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", path.display());
    Ok(certs)
}

/// An accepted connection, plaintext or after its TLS handshake.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(tcp) => tcp,
            Conn::Tls(tls) => tls.get_ref().0,
        }
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        tonic::transport::server::TcpConnectInfo {
            local_addr: self.tcp().local_addr().ok(),
            remote_addr: self.tcp().peer_addr().ok(),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Connections accepted on one listener, ready to serve: TCP with Nagle's
/// algorithm off (`Server::tcp_nodelay` only applies when tonic binds the
/// socket itself, and small responses would otherwise wait for the peer's
/// delayed ACK, up to 40 ms), through the TLS handshake when configured.
/// The accept loop stops when this is dropped.
pub struct Incoming {
    local_addr: SocketAddr,
    accepted: mpsc::Receiver<(Conn, SocketAddr)>,
}

impl Incoming {
    pub fn new(listener: TcpListener, tls: Option<Arc<ReloadingConfig>>) -> Self {
        let local_addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let (tx, accepted) = mpsc::channel(256);
        tokio::spawn(accept_loop(listener, tls, tx));
        Incoming {
            local_addr,
            accepted,
        }
    }

    /// The connections as a stream, for tonic's `serve_with_incoming`.
    pub fn into_stream(
        self,
    ) -> impl tokio_stream::Stream<Item = std::io::Result<Conn>> + Send + 'static {
        use tokio_stream::StreamExt as _;
        tokio_stream::wrappers::ReceiverStream::new(self.accepted).map(|(conn, _)| Ok(conn))
    }
}

impl axum::serve::Listener for Incoming {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends once we are dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<Arc<ReloadingConfig>>,
    tx: mpsc::Sender<(Conn, SocketAddr)>,
) {
    loop {
        let accepted = tokio::select! {
            () = tx.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: pause instead of
                // spinning, as hyper and axum do.
                tracing::warn!(error = %err, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "setting TCP_NODELAY failed");
        }
        match &tls {
            None => {
                if tx.send((Conn::Plain(tcp), peer)).await.is_err() {
                    return;
                }
            }
            Some(tls) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((Conn::Tls(Box::new(stream)), peer)).await;
                        }
                        // A plaintext client, an unknown CA, a missing
                        // client certificate: the client sees the alert;
                        // debug only, scanners would flood the log.
                        Ok(Err(err)) => {
                            tracing::debug!(%peer, error = %err, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}
