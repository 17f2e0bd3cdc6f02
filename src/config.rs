//! Runtime settings, built from flags and environment variables by `cli`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::storage::DbOptions;
use crate::tls::TlsFiles;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/moderato.db";

#[derive(Debug, Clone)]
pub struct Settings {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub database_url: String,
    pub db: DbOptions,
    /// Where the first start writes the bootstrap admin key (mode 0600).
    pub admin_key_file: PathBuf,
    /// TLS on the gRPC port (and mutual TLS when it names a client CA).
    pub tls: Option<TlsFiles>,
    /// Also serve the HTTP port over TLS, with the same certificate (never
    /// asking for a client certificate: browsers and probes connect there).
    pub http_tls: bool,
    /// Calls one replica works on at once before refusing more (0: no bound).
    pub max_concurrent_calls: usize,
    /// Requests per second of an API key without a rate of its own, shared
    /// by the live replicas (0: no limit).
    pub key_requests_per_second: u32,
    /// The server secret (`MODERATO_SECRET_KEY`); when unset, read from
    /// `secret_key_file`, which the first start creates.
    pub secret_key: Option<String>,
    pub secret_key_file: PathBuf,
    pub webhooks: WebhookSettings,
}

/// How this replica delivers webhooks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WebhookSettings {
    /// Deliver to loopback, private, link-local and metadata addresses
    /// too (tests, private deployments); refused by default (SSRF).
    pub allow_private: bool,
    /// How long an endpoint's lease lasts without renewal: how long its
    /// deliveries wait after the replica holding it died.
    pub lease: std::time::Duration,
    /// Multiplies the retry schedule's delays (1; tests shorten it).
    pub backoff_scale: f64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allow_private: false,
            lease: crate::moderation::delivery::LEASE,
            backoff_scale: 1.0,
        }
    }
}

/// `secret.key` beside the admin key file.
pub fn default_secret_key_file(admin_key_file: &Path) -> PathBuf {
    admin_key_file.with_file_name("secret.key")
}

/// See `Settings::max_concurrent_calls` and BENCHMARKS.md (issue #14).
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 128;

/// Beside the SQLite file when there is one, else `data/admin.key`.
pub fn default_admin_key_file(database_url: &str) -> PathBuf {
    let sqlite_path = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|path| !path.is_empty() && !path.starts_with(":memory:"));
    match sqlite_path.and_then(|p| Path::new(p).parent()) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("admin.key"),
        Some(_) => PathBuf::from("admin.key"),
        None => PathBuf::from("data/admin.key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_key_sits_beside_the_sqlite_file() {
        assert_eq!(
            default_admin_key_file(DEFAULT_DATABASE_URL),
            PathBuf::from("data/admin.key")
        );
        assert_eq!(
            default_admin_key_file("sqlite:///var/lib/moderato/m.db?mode=rwc"),
            PathBuf::from("/var/lib/moderato/admin.key")
        );
        assert_eq!(
            default_admin_key_file("sqlite:m.db"),
            PathBuf::from("admin.key")
        );
        assert_eq!(
            default_admin_key_file("postgres://localhost/moderato"),
            PathBuf::from("data/admin.key")
        );
    }
}
