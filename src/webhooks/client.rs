//! Requests out of the service to URLs a tenant chose: webhook deliveries
//! (`POST` the body to the endpoint and classify the answer) and external
//! classifier calls (`POST` and read the answer). The name is resolved and
//! checked here ([`super::ssrf`]) and the connection goes to an address
//! that passed, so a DNS answer cannot change between the check and the
//! request; TLS verifies the certificate for the URL's host. Redirects are
//! answers like any other (a failure): following one would send the
//! request somewhere nobody checked. The whole attempt, connection
//! included, has one deadline. Connections are kept for reuse a short
//! while (a classifier call on a warm connection costs one round trip, not
//! a TCP and TLS handshake too); a connection is only ever reused for the
//! scheme and authority it was checked and opened for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::ssrf::{self, AddressPolicy};

/// How long a receiver has to answer (issue #15: 10 s).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer: delivered.
    Delivered(u16),
    /// 410 Gone: the receiver asks never to be sent anything again.
    Gone,
    /// Anything else; `status` when the receiver answered at all.
    Failed { status: Option<u16>, error: String },
}

/// Sends requests under one address policy and trust store.
#[derive(Clone)]
pub struct Sender {
    policy: AddressPolicy,
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
    idle: Arc<Mutex<Idle>>,
}

/// Open connections not in use, by `scheme://authority`.
type Idle = HashMap<
    String,
    Vec<(
        Instant,
        hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    )>,
>;

/// A connection unused this long is closed rather than reused (servers
/// close theirs after a few seconds to a minute).
const IDLE_FOR: Duration = Duration::from_secs(20);
/// Idle connections kept per destination, and destinations kept.
const IDLE_PER_DESTINATION: usize = 16;
const IDLE_DESTINATIONS: usize = 1_024;
/// The most of an answer read: classifier answers are small; a receiver's
/// answer to a delivery is read (up to this) and dropped.
const MAX_ANSWER_BYTES: usize = 1 << 20;

impl Sender {
    /// Trusting the web's public roots.
    pub fn new(policy: AddressPolicy) -> Self {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        Self::with_roots(policy, roots, DELIVERY_TIMEOUT)
    }

    /// Trusting `roots` (tests, private CAs).
    pub fn with_roots(
        policy: AddressPolicy,
        roots: rustls::RootCertStore,
        timeout: Duration,
    ) -> Self {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Sender {
            policy,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            timeout,
            idle: Arc::default(),
        }
    }

    /// `POST`s `body` (JSON) with `headers` to `url` and returns the
    /// answer's status and body; an error saying why there is none. No
    /// deadline of its own: the caller's.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<(u16, Bytes), String> {
        self.attempt(url, headers, body).await
    }

    /// One attempt to deliver `body` (JSON) with `headers` to `url`.
    pub async fn send(&self, url: &str, headers: &[(&str, String)], body: Bytes) -> Outcome {
        match tokio::time::timeout(self.timeout, self.attempt(url, headers, body)).await {
            Ok(Ok((status, _))) if (200..300).contains(&status) => Outcome::Delivered(status),
            Ok(Ok((410, _))) => Outcome::Gone,
            Ok(Ok((status, _))) => Outcome::Failed {
                status: Some(status),
                error: format!("the receiver answered {status}"),
            },
            Ok(Err(error)) => Outcome::Failed {
                status: None,
                error,
            },
            Err(_) => Outcome::Failed {
                status: None,
                error: format!("no answer within {} s", self.timeout.as_secs_f64()),
            },
        }
    }

    async fn attempt(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<(u16, Bytes), String> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|_| "the URL does not parse".to_owned())?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("the URL is not http(s)".into()),
        };
        let host = uri.host().ok_or("the URL has no host")?;
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let destination = format!("{}://{authority}", if https { "https" } else { "http" });
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let request = || {
            let mut builder = hyper::Request::post(path.as_str())
                .header(hyper::header::HOST, authority.as_str())
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .header(hyper::header::USER_AGENT, "moderato/1");
            for (name, value) in headers {
                builder = builder.header(*name, value.as_str());
            }
            builder
                .body(Full::new(body.clone()))
                .map_err(|e| format!("building the request: {e}"))
        };
        // A kept connection first; one the server closed meanwhile fails
        // before the request is written, and a new one is opened.
        if let Some(mut sender) = self.take_idle(&destination)
            && sender.ready().await.is_ok()
            && let Ok(answer) = self.exchange(&destination, sender, request()?).await
        {
            return Ok(answer);
        }
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let sender = self.connect(host, port, https).await?;
        self.exchange(&destination, sender, request()?).await
    }

    fn take_idle(
        &self,
        destination: &str,
    ) -> Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let kept = idle.get_mut(destination)?;
        while let Some((since, sender)) = kept.pop() {
            if since.elapsed() < IDLE_FOR && !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    /// Opens a connection to a checked address of `host`.
    async fn connect(
        &self,
        host: &str,
        port: u16,
        https: bool,
    ) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String> {
        // `[::1]` in a URL is `::1` to the resolver.
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs = ssrf::resolve(bare_host, port, self.policy)
            .await
            .map_err(|e| e.to_string())?;
        let mut last_error = String::from("no address to connect to");
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last_error = format!("connecting to {addr}: {e}"),
            }
        }
        let stream = stream.ok_or(last_error)?;
        let _ = stream.set_nodelay(true);
        if https {
            let name = rustls::pki_types::ServerName::try_from(bare_host.to_owned())
                .map_err(|_| "the host is not a valid TLS name".to_owned())?;
            let tls = self
                .tls
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            handshake(tls).await
        } else {
            handshake(stream).await
        }
    }

    /// Sends `request` and reads the answer; the connection is kept for
    /// the next request to `destination` unless the server closes it.
    async fn exchange(
        &self,
        destination: &str,
        mut sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        request: hyper::Request<Full<Bytes>>,
    ) -> Result<(u16, Bytes), String> {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let status = response.status().as_u16();
        let closing = response
            .headers()
            .get(hyper::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        if !closing {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() >= IDLE_DESTINATIONS && !idle.contains_key(destination) {
                idle.clear();
            }
            let kept = idle.entry(destination.to_owned()).or_default();
            if kept.len() < IDLE_PER_DESTINATION {
                kept.push((Instant::now(), sender));
            }
        }
        Ok((status, body))
    }
}

/// HTTP/1.1 over `stream`, its connection driven by a task of its own
/// (which ends when the connection closes or its last sender is dropped).
async fn handshake<S>(
    stream: S,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}
