//! The HTTP side: liveness, readiness and Prometheus metrics for operators,
//! and the moderator console (`crate::console`).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::moderation::Moderation;
use crate::telemetry;

pub fn router(moderation: Moderation) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(moderation.clone())
        .merge(crate::console::router(moderation))
}

/// Ready when the database answers; a load balancer then routes around a
/// replica that lost its database instead of sending it doomed requests.
async fn readyz(State(moderation): State<Moderation>) -> (StatusCode, &'static str) {
    match moderation.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready\n"),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
    }
}

async fn metrics(State(moderation): State<Moderation>) -> String {
    match moderation.store().queue_depth().await {
        Ok(depth) => telemetry::set_queue_depth(depth),
        Err(err) => tracing::warn!(error = %err, "could not read the queue depth"),
    }
    telemetry::metrics().render()
}
