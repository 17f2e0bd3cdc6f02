//! The moderator console: the review queue in a browser, served by the
//! binary itself on the HTTP port at `/console`.
//!
//! Why a JSON adapter rather than gRPC-Web: the page is plain ES modules
//! with no build step and no npm at run time, and JSON needs no protobuf
//! runtime in the browser. The adapter is thin: each call parses its input
//! into domain values (`moderation::parse`, shared with the gRPC services)
//! and calls the same `moderation` use case, with the same keys, roles and
//! key cache, so the console can do nothing the API could not.
//!
//! Why the key travels in a header: the page keeps the key in the tab's
//! session storage and sends it as `Authorization: Bearer` from its script.
//! No cookie is ever set, so another site cannot make the browser act with
//! it (no CSRF), and it is never logged. Every console response carries a
//! strict Content-Security-Policy: scripts, styles and connections from this
//! origin only, no inline script, no frames.

mod api;
mod error;
mod view;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::moderation::Moderation;

/// The page's files, embedded at build time.
const INDEX_HTML: &str = include_str!("assets/index.html");
const CONSOLE_JS: &str = include_str!("assets/console.js");
const CONSOLE_CSS: &str = include_str!("assets/console.css");

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

pub fn router(moderation: Moderation) -> Router {
    Router::new()
        .route(
            "/console",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/console.js",
            get(|| async { asset(CONSOLE_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/console.css",
            get(|| async { asset(CONSOLE_CSS, "text/css; charset=utf-8") }),
        )
        .route("/console/api/session", get(api::session))
        .route("/console/api/queue", get(api::queue))
        .route("/console/api/queue/events", get(api::queue_events))
        .route("/console/api/claims", post(api::claim))
        .route("/console/api/decisions", post(api::decide))
        .route("/console/api/authors/{author_id}", get(api::author))
        .route(
            "/console/api/authors/{author_id}/standing",
            post(api::set_standing),
        )
        .route("/console/api/comments/{comment_id}/trail", get(api::trail))
        .route(
            "/console/api/comments/{comment_id}/reopen",
            post(api::reopen),
        )
        .route("/console/api/rules", get(api::rules))
        .route("/console/api/rules/test", post(api::test_rules))
        .route(
            "/console/api/settings",
            get(api::settings).post(api::update_settings),
        )
        .layer(axum::middleware::map_response(secure))
        .with_state(moderation)
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            // Revalidated on each load, so a new release is picked up at once.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The headers every console response carries.
async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
