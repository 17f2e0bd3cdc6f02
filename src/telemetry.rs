//! Logs and metrics, set up in one place.
//!
//! Logs never carry comment bodies, API keys or IP addresses: handlers and
//! queries are instrumented with `skip_all` and name only ids and outcomes.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::domain::CommentStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global tracing subscriber; `RUST_LOG` overrides the default level.
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,h2=warn,tower=warn,hyper=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
    };
    // A second call (tests) keeps the first subscriber.
    drop(result);
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("moderato_rpc_duration_seconds".to_owned()),
                LATENCY_BUCKETS,
            )
            .expect("static buckets are valid")
            .install_recorder()
            .expect("no other metrics recorder is installed")
    })
}

/// Counts one RPC by name and status code and records its latency.
pub fn record_rpc(rpc: &'static str, code: tonic::Code, elapsed: Duration) {
    let code = format!("{code:?}");
    metrics::counter!("moderato_rpc_requests_total", "rpc" => rpc, "code" => code).increment(1);
    metrics::histogram!("moderato_rpc_duration_seconds", "rpc" => rpc)
        .record(elapsed.as_secs_f64());
}

/// Counts a comment reaching a status, by the pipeline or by a moderator.
pub fn record_decision(status: CommentStatus) {
    metrics::counter!("moderato_decisions_total", "status" => status.as_str()).increment(1);
}

/// A label taught to a tenant's spam model (`learned` false: already known).
pub fn record_label(
    label: crate::domain::Label,
    source: crate::storage::LabelSource,
    learned: bool,
) {
    metrics::counter!(
        "moderato_model_labels_total",
        "model" => label.kind().as_str(),
        "source" => source.as_str(),
        "label" => if label.positive() { "positive" } else { "negative" },
        "learned" => if learned { "true" } else { "false" },
    )
    .increment(1);
}

pub fn set_queue_depth(depth: i64) {
    metrics::gauge!("moderato_review_queue_depth").set(depth as f64);
}
