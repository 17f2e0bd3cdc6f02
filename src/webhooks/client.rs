//! One delivery attempt: `POST` the body to the endpoint and classify the
//! answer. The name is resolved and checked here ([`super::ssrf`]) and the
//! connection goes to an address that passed, so a DNS answer cannot
//! change between the check and the request; TLS verifies the certificate
//! for the URL's host. Redirects are answers like any other (a failure):
//! following one would send the event somewhere nobody checked. The whole
//! attempt, connection included, has one deadline.

use std::sync::Arc;
use std::time::Duration;

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

/// Sends deliveries under one address policy and trust store.
#[derive(Clone)]
pub struct Sender {
    policy: AddressPolicy,
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
}

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
        }
    }

    /// One attempt to deliver `body` (JSON) with `headers` to `url`.
    pub async fn send(&self, url: &str, headers: &[(&str, String)], body: Bytes) -> Outcome {
        match tokio::time::timeout(self.timeout, self.attempt(url, headers, body)).await {
            Ok(Ok(status)) if (200..300).contains(&status) => Outcome::Delivered(status),
            Ok(Ok(410)) => Outcome::Gone,
            Ok(Ok(status)) => Outcome::Failed {
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
    ) -> Result<u16, String> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|_| "the URL does not parse".to_owned())?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("the URL is not http(s)".into()),
        };
        let host = uri.host().ok_or("the URL has no host")?;
        // `[::1]` in a URL is `::1` to the resolver.
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
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
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let request = || {
            let mut builder = hyper::Request::post(path.as_str())
                .header(hyper::header::HOST, authority.as_str())
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .header(hyper::header::USER_AGENT, "moderato-webhooks/1");
            for (name, value) in headers {
                builder = builder.header(*name, value.as_str());
            }
            builder
                .body(Full::new(body.clone()))
                .map_err(|e| format!("building the request: {e}"))
        };
        if https {
            let name = rustls::pki_types::ServerName::try_from(bare_host.to_owned())
                .map_err(|_| "the host is not a valid TLS name".to_owned())?;
            let tls = self
                .tls
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            exchange(tls, request()?).await
        } else {
            exchange(stream, request()?).await
        }
    }
}

/// Sends `request` on `stream` and returns the answer's status (its body
/// is read and dropped, so the receiver is not cut off mid-answer).
async fn exchange<S>(stream: S, request: hyper::Request<Full<Bytes>>) -> Result<u16, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let connection = tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    connection.abort();
    Ok(status)
}
