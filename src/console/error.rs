//! Every console error becomes an HTTP status and a JSON body
//! `{"error": {"code", "message", "field"?}}` here, in one place, as
//! `grpc/status.rs` does for gRPC. Messages are the use cases' own, written
//! for the caller; causes of internal errors go to the log only.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::FieldViolation;
use crate::moderation::{
    AdminError, AuthError, AuthorError, DecideError, ListAuditError, ListQueueError, ReopenError,
    RuleError,
};
use crate::storage::StoreError;

#[derive(Debug)]
pub enum ConsoleError {
    Auth(AuthError),
    Invalid(FieldViolation),
    /// A body or query string that is not the JSON or form the call takes.
    Malformed(String),
    Decide(DecideError),
    Reopen(ReopenError),
    NotFound(String),
    Store(StoreError),
}

impl From<AuthorError> for ConsoleError {
    fn from(err: AuthorError) -> Self {
        match err {
            AuthorError::Invalid(violation) => ConsoleError::Invalid(violation),
            err @ AuthorError::NotFound => ConsoleError::NotFound(err.to_string()),
            AuthorError::Store(err) => ConsoleError::Store(err),
        }
    }
}

impl From<ReopenError> for ConsoleError {
    fn from(err: ReopenError) -> Self {
        ConsoleError::Reopen(err)
    }
}

impl From<RuleError> for ConsoleError {
    fn from(err: RuleError) -> Self {
        match err {
            RuleError::Invalid(violation) => ConsoleError::Invalid(violation),
            RuleError::Store(err) => ConsoleError::Store(err),
            // The console only reads and tests rules.
            other => ConsoleError::NotFound(other.to_string()),
        }
    }
}

impl From<AdminError> for ConsoleError {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::Invalid(violation) => ConsoleError::Invalid(violation),
            AdminError::Store(err) => ConsoleError::Store(err),
            err @ AdminError::KeyNotFound => ConsoleError::NotFound(err.to_string()),
        }
    }
}

impl From<ListAuditError> for ConsoleError {
    fn from(err: ListAuditError) -> Self {
        match err {
            ListAuditError::Invalid(violation) => ConsoleError::Invalid(violation),
            ListAuditError::Store(err) => ConsoleError::Store(err),
        }
    }
}

impl From<AuthError> for ConsoleError {
    fn from(err: AuthError) -> Self {
        ConsoleError::Auth(err)
    }
}

impl From<FieldViolation> for ConsoleError {
    fn from(err: FieldViolation) -> Self {
        ConsoleError::Invalid(err)
    }
}

impl From<DecideError> for ConsoleError {
    fn from(err: DecideError) -> Self {
        ConsoleError::Decide(err)
    }
}

impl From<StoreError> for ConsoleError {
    fn from(err: StoreError) -> Self {
        ConsoleError::Store(err)
    }
}

impl From<ListQueueError> for ConsoleError {
    fn from(err: ListQueueError) -> Self {
        match err {
            ListQueueError::Invalid(violation) => ConsoleError::Invalid(violation),
            ListQueueError::Store(err) => ConsoleError::Store(err),
        }
    }
}

fn body(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// A refusal because the comment changed: the version it is at now.
fn stale(message: String, current: i64) -> Response {
    (
        StatusCode::CONFLICT,
        Json(json!({ "error": {
            "code": "stale",
            "message": message,
            "current_version": current,
        } })),
    )
        .into_response()
}

fn store(err: StoreError) -> Response {
    match err {
        StoreError::Unavailable(_) => body(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database is unavailable; try again".into(),
        ),
        other => {
            tracing::error!(error = %other, "console request failed");
            body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error".into(),
            )
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            ConsoleError::Auth(AuthError::Store(err)) | ConsoleError::Store(err) => store(err),
            ConsoleError::Decide(DecideError::Store(err))
            | ConsoleError::Reopen(ReopenError::Store(err)) => store(err),
            ConsoleError::Reopen(err @ ReopenError::NotFound) => {
                body(StatusCode::NOT_FOUND, "not_found", err.to_string())
            }
            ConsoleError::Reopen(err @ ReopenError::InQueue) => {
                body(StatusCode::CONFLICT, "in_queue", err.to_string())
            }
            ConsoleError::Reopen(err @ ReopenError::Stale { current }) => {
                stale(err.to_string(), current)
            }
            ConsoleError::Auth(err @ AuthError::RateLimited { retry_after, .. }) => {
                let mut response = body(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    err.to_string(),
                );
                let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(seconds),
                );
                response
            }
            ConsoleError::Auth(err @ AuthError::Forbidden { .. }) => {
                body(StatusCode::FORBIDDEN, "forbidden", err.to_string())
            }
            ConsoleError::Auth(err) => {
                body(StatusCode::UNAUTHORIZED, "unauthenticated", err.to_string())
            }
            ConsoleError::Invalid(violation) => (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": {
                    "code": "invalid_argument",
                    "message": format!("{}: {}", violation.field, violation.reason),
                    "field": violation.field,
                } })),
            )
                .into_response(),
            ConsoleError::Malformed(why) => body(StatusCode::BAD_REQUEST, "invalid_argument", why),
            ConsoleError::NotFound(why) => body(StatusCode::NOT_FOUND, "not_found", why),
            ConsoleError::Decide(err @ DecideError::NotFound) => {
                body(StatusCode::NOT_FOUND, "not_found", err.to_string())
            }
            ConsoleError::Decide(err @ DecideError::Stale { current }) => {
                stale(err.to_string(), current)
            }
            ConsoleError::Decide(err @ DecideError::AlreadyDecided) => {
                body(StatusCode::CONFLICT, "already_decided", err.to_string())
            }
            ConsoleError::Decide(err @ DecideError::NotClaimed) => {
                body(StatusCode::CONFLICT, "not_claimed", err.to_string())
            }
        }
    }
}
