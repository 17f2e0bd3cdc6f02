//! Wiring: open the store, build the services, bind the listeners, serve until
//! told to stop.
//!
//! `build` binds before `run_until_stopped` serves, so tests can bind port 0 and
//! read the real ports; the shutdown signal is an argument, so `main` and the
//! tests stop the server the same way.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Settings;
use crate::domain::{IpHasher, KeySpec, Role, ServerSecret, TenantName};
use crate::grpc::pb::admin_service_server::AdminServiceServer;
use crate::grpc::pb::comment_service_server::CommentServiceServer;
use crate::grpc::pb::review_service_server::ReviewServiceServer;
use crate::grpc::{self, AdminApi, CommentApi, Gate, MAX_MESSAGE_BYTES, ReviewApi};
use crate::moderation::delivery::{DeliveryOptions, WebhookDeliveries};
use crate::moderation::{self, Limits, Moderation};
use crate::pipeline::Pipeline;
use crate::storage::{self, Store};
use crate::tls::{Incoming, Protocol, ReloadingConfig};
use crate::webhooks::AddressPolicy;

pub struct Application {
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    grpc_tls: Option<Arc<ReloadingConfig>>,
    http_tls: Option<Arc<ReloadingConfig>>,
    gate: Gate,
    moderation: Moderation,
    deliveries: DeliveryOptions,
}

impl Application {
    /// Opens and migrates the database, bootstraps an empty one, binds both ports.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        crate::pipeline::toxicity::model::init()
            .map_err(|e| anyhow::anyhow!("loading the toxicity model: {e}"))?;
        let grpc_tls = match &settings.tls {
            Some(files) => Some(Arc::new(
                ReloadingConfig::load(files.clone(), Protocol::Grpc, true)
                    .context("loading the TLS files for the gRPC port")?,
            )),
            None => None,
        };
        let http_tls = match (&settings.tls, settings.http_tls) {
            (Some(files), true) => Some(Arc::new(
                ReloadingConfig::load(files.clone(), Protocol::Http1, false)
                    .context("loading the TLS files for the HTTP port")?,
            )),
            (None, true) => anyhow::bail!("HTTP over TLS needs a certificate and a key"),
            _ => None,
        };
        let store = storage::connect(&settings.database_url, &settings.db).await?;
        bootstrap(store.as_ref(), &settings.admin_key_file).await?;
        let secret = server_secret(&settings)?;
        hash_stored_addresses(store.as_ref(), &secret.ip_hasher()).await?;
        // Webhook receivers and classifiers: URLs the tenants chose.
        let outbound = if settings.webhooks.allow_private {
            AddressPolicy::AllowPrivate
        } else {
            AddressPolicy::PublicOnly
        };
        let grpc_listener = TcpListener::bind(settings.grpc_addr)
            .await
            .with_context(|| format!("binding gRPC on {}", settings.grpc_addr))?;
        let http_listener = TcpListener::bind(settings.http_addr)
            .await
            .with_context(|| format!("binding HTTP on {}", settings.http_addr))?;
        Ok(Application {
            grpc_listener,
            http_listener,
            grpc_tls,
            http_tls,
            gate: Gate::new(settings.max_concurrent_calls),
            deliveries: DeliveryOptions {
                lease: settings.webhooks.lease,
                backoff_scale: settings.webhooks.backoff_scale,
                ..DeliveryOptions::new(outbound)
            },
            moderation: Moderation::with_options(
                store,
                Pipeline::default(),
                Limits {
                    key_requests_per_second: settings.key_requests_per_second,
                },
                &secret,
            )
            .with_outbound_policy(outbound),
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.moderation.store().clone()
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight
    /// calls finish and closes the database pool.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let grpc_addr = self.grpc_addr();
        let http_addr = self.http_addr();
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<CommentServiceServer<CommentApi>>()
            .await;
        health_reporter
            .set_serving::<ReviewServiceServer<ReviewApi>>()
            .await;
        health_reporter
            .set_serving::<AdminServiceServer<AdminApi>>()
            .await;
        let reflection_v1 = reflection().build_v1().context("building reflection v1")?;
        let reflection_v1alpha = reflection()
            .build_v1alpha()
            .context("building reflection v1alpha")?;

        let m = &self.moderation;
        let grpc_server = grpc::server()
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(
                CommentServiceServer::new(CommentApi::new(m.clone(), self.gate.clone()))
                    .max_decoding_message_size(MAX_MESSAGE_BYTES),
            )
            .add_service(
                ReviewServiceServer::new(ReviewApi::new(m.clone(), self.gate.clone()))
                    .max_decoding_message_size(MAX_MESSAGE_BYTES),
            )
            .add_service(
                AdminServiceServer::new(AdminApi::new(m.clone(), self.gate.clone()))
                    .max_decoding_message_size(MAX_MESSAGE_BYTES),
            )
            .serve_with_incoming_shutdown(
                Incoming::new(self.grpc_listener, self.grpc_tls.clone()).into_stream(),
                stopped(stop_rx.clone()),
            );
        let http_server = axum::serve(
            Incoming::new(self.http_listener, self.http_tls.clone()),
            crate::http::router(m.clone()),
        )
        .with_graceful_shutdown(stopped(stop_rx.clone()));
        let tls_watchers: Vec<_> = [&self.grpc_tls, &self.http_tls]
            .into_iter()
            .flatten()
            .map(|config| tokio::spawn(config.clone().watch()))
            .collect();

        let rule_watcher = tokio::spawn(m.clone().watch_rule_changes());
        let model_watcher = tokio::spawn(m.clone().watch_model_changes());
        let revocation_watcher = tokio::spawn(m.clone().watch_key_revocations());
        let replica_watcher = tokio::spawn(m.clone().watch_replicas());
        let retention = tokio::spawn(m.clone().watch_retention());
        let deliveries =
            WebhookDeliveries::start(m.clone(), self.deliveries.clone(), grpc::webhook_payload);
        let metrics = crate::telemetry::metrics().clone();
        let store = self.moderation.store().clone();
        let upkeep = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                metrics.run_upkeep();
                if let Err(err) = store.analyze_new_tables().await {
                    tracing::warn!(error = %err, "analysing new tables failed; will retry");
                }
            }
        });

        tracing::info!(
            %grpc_addr,
            %http_addr,
            grpc_tls = match &self.grpc_tls {
                None => "off",
                Some(config) if config.mutual() => "mutual",
                Some(_) => "on",
            },
            http_tls = self.http_tls.is_some(),
            "moderato serving"
        );
        let signal = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        let (grpc_result, http_result, ()) = tokio::join!(grpc_server, http_server, signal);
        upkeep.abort();
        tls_watchers.iter().for_each(|w| w.abort());
        rule_watcher.abort();
        model_watcher.abort();
        revocation_watcher.abort();
        replica_watcher.abort();
        retention.abort();
        deliveries.stop().await;
        self.moderation.leave().await;
        self.moderation.store().close().await;
        grpc_result.context("gRPC server failed")?;
        http_result.context("HTTP server failed")?;
        tracing::info!("moderato stopped");
        Ok(())
    }
}

/// Reflection serves our services, health, and `google.rpc` (so tools such as
/// grpcurl can decode the `BadRequest` details of `INVALID_ARGUMENT` errors).
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(grpc::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// On an empty database: creates tenant `default` with an admin key, writes the
/// key to `key_file` (mode 0600) and logs the file's path, never the key.
/// Replicas starting together race on the tenant; only the one that created it
/// creates and writes the key.
async fn bootstrap(store: &dyn Store, key_file: &Path) -> anyhow::Result<()> {
    if store.count_tenants().await? > 0 {
        return Ok(());
    }
    let name = TenantName::parse("default").expect("valid tenant name");
    let (tenant, created) = moderation::create_tenant(store, &name).await?;
    if !created {
        return Ok(());
    }
    let key = moderation::create_key(
        store,
        tenant,
        KeySpec {
            name: "bootstrap admin key".to_owned(),
            ..KeySpec::role(Role::Admin)
        },
        &crate::domain::Actor::operator(),
    )
    .await?;
    write_secret_file(key_file, key.secret.expose())
        .with_context(|| format!("writing the bootstrap admin key to {}", key_file.display()))?;
    tracing::info!(
        path = %key_file.display(),
        "empty database: created tenant `default` and wrote its admin key to this file"
    );
    Ok(())
}

/// `MODERATO_SECRET_KEY`, else the secret file, created on first start.
/// Replicas must share it (each would otherwise hash addresses its own way):
/// set the variable, or give them the same file.
fn server_secret(settings: &Settings) -> anyhow::Result<ServerSecret> {
    if let Some(secret) = &settings.secret_key {
        return ServerSecret::new(secret)
            .map_err(|why| anyhow::anyhow!("MODERATO_SECRET_KEY: {why}"));
    }
    let path = &settings.secret_key_file;
    match std::fs::read_to_string(path) {
        Ok(secret) => {
            ServerSecret::new(&secret).map_err(|why| anyhow::anyhow!("{}: {why}", path.display()))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let secret = ServerSecret::generate();
            write_secret_file(path, &secret)
                .with_context(|| format!("writing the server secret to {}", path.display()))?;
            tracing::info!(
                path = %path.display(),
                "no MODERATO_SECRET_KEY: generated the server secret in this file \
                 (replicas must share one: set MODERATO_SECRET_KEY or copy the file)"
            );
            ServerSecret::new(&secret).map_err(anyhow::Error::msg)
        }
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Replaces addresses stored by releases before the keyed hash with their
/// hashes (a no-op once done: the index that finds them is then empty).
async fn hash_stored_addresses(store: &dyn Store, hasher: &IpHasher) -> anyhow::Result<()> {
    let mut replaced = 0;
    loop {
        let batch = store.plaintext_author_ips(1_000).await?;
        if batch.is_empty() {
            break;
        }
        let hashed: Vec<_> = batch
            .into_iter()
            .map(|(tenant, comment, stored)| {
                let hash = match stored.parse() {
                    Ok(ip) => hasher.hash(tenant, ip),
                    Err(_) => hasher.hash_text(tenant, &stored),
                };
                (tenant, comment, hash)
            })
            .collect();
        store.replace_author_ips(&hashed).await?;
        replaced += hashed.len();
    }
    if replaced > 0 {
        tracing::info!(
            replaced,
            "replaced stored IP addresses with their keyed hashes"
        );
    }
    Ok(())
}

fn write_secret_file(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    writeln!(file, "{secret}")?;
    file.sync_all()
}
