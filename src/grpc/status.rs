//! The one place where errors become gRPC statuses.
//!
//! Clients get a code and a message meant for them; causes (SQL errors, I/O)
//! go to the log with their full chain and never to the client.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::domain::FieldViolation;
use crate::moderation::{
    AdminError, AuthError, AuthorError, DecideError, GetCommentError, ListAuditError,
    ListCommentsError, ListQueueError, MarkError, ReleaseError, ReopenError, ReportError,
    RuleError, SubmitError, WebhookError,
};
use crate::storage::StoreError;

impl From<FieldViolation> for Status {
    fn from(violation: FieldViolation) -> Self {
        Status::with_error_details(
            Code::InvalidArgument,
            violation.to_string(),
            ErrorDetails::with_bad_request_violation(violation.field, violation.reason),
        )
    }
}

impl From<StoreError> for Status {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = format!("{err:#}"), cause = ?std::error::Error::source(&err), "database unavailable");
                Status::unavailable("the database is unavailable; retry later")
            }
            StoreError::Corrupt(_) | StoreError::Unexpected(_) => {
                tracing::error!(error = format!("{err:#}"), cause = ?std::error::Error::source(&err), "internal error");
                Status::internal("internal error")
            }
        }
    }
}

impl From<AuthError> for Status {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Missing | AuthError::Malformed | AuthError::UnknownKey => {
                Status::unauthenticated(err.to_string())
            }
            AuthError::Forbidden { .. } => Status::permission_denied(err.to_string()),
            AuthError::RateLimited { retry_after, .. } => Status::with_error_details(
                Code::ResourceExhausted,
                err.to_string(),
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
            AuthError::Store(err) => err.into(),
        }
    }
}

impl From<SubmitError> for Status {
    fn from(err: SubmitError) -> Self {
        match err {
            SubmitError::Invalid(violation) => violation.into(),
            SubmitError::IdempotencyKeyReused => Status::already_exists(err.to_string()),
            SubmitError::RateLimited { retry_after, .. } => Status::with_error_details(
                Code::ResourceExhausted,
                err.to_string(),
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
            SubmitError::Store(err) => err.into(),
        }
    }
}

impl From<GetCommentError> for Status {
    fn from(err: GetCommentError) -> Self {
        match err {
            GetCommentError::NotFound => Status::not_found(err.to_string()),
            GetCommentError::Store(err) => err.into(),
        }
    }
}

impl From<MarkError> for Status {
    fn from(err: MarkError) -> Self {
        match err {
            MarkError::NotFound => Status::not_found(err.to_string()),
            MarkError::Store(err) => err.into(),
        }
    }
}

impl From<ListCommentsError> for Status {
    fn from(err: ListCommentsError) -> Self {
        match err {
            ListCommentsError::Invalid(violation) => violation.into(),
            ListCommentsError::StatusForbidden => Status::permission_denied(err.to_string()),
            ListCommentsError::Store(err) => err.into(),
        }
    }
}

impl From<ListQueueError> for Status {
    fn from(err: ListQueueError) -> Self {
        match err {
            ListQueueError::Invalid(violation) => violation.into(),
            ListQueueError::Store(err) => err.into(),
        }
    }
}

impl From<DecideError> for Status {
    fn from(err: DecideError) -> Self {
        match err {
            DecideError::NotFound => Status::not_found(err.to_string()),
            DecideError::AlreadyDecided | DecideError::NotClaimed => {
                Status::failed_precondition(err.to_string())
            }
            DecideError::Stale { .. } => Status::aborted(err.to_string()),
            DecideError::Store(err) => err.into(),
        }
    }
}

impl From<ReleaseError> for Status {
    fn from(err: ReleaseError) -> Self {
        match err {
            ReleaseError::NotFound(_) => Status::not_found(err.to_string()),
            ReleaseError::NotClaimed(_) => Status::failed_precondition(err.to_string()),
            ReleaseError::Store(err) => err.into(),
        }
    }
}

impl From<AdminError> for Status {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::Invalid(violation) => violation.into(),
            AdminError::KeyNotFound => Status::not_found(err.to_string()),
            AdminError::Store(err) => err.into(),
        }
    }
}

impl From<RuleError> for Status {
    fn from(err: RuleError) -> Self {
        match err {
            RuleError::Invalid(violation) => violation.into(),
            RuleError::AlreadyExists(_) => Status::already_exists(err.to_string()),
            RuleError::NotFound(_) => Status::not_found(err.to_string()),
            RuleError::RevisionMismatch { .. } => Status::aborted(err.to_string()),
            RuleError::Store(err) => err.into(),
        }
    }
}

impl From<ListAuditError> for Status {
    fn from(err: ListAuditError) -> Self {
        match err {
            ListAuditError::Invalid(violation) => violation.into(),
            ListAuditError::Store(err) => err.into(),
        }
    }
}

impl From<WebhookError> for Status {
    fn from(err: WebhookError) -> Self {
        match err {
            WebhookError::Invalid(violation) => violation.into(),
            WebhookError::NotFound | WebhookError::DeliveryNotFound => {
                Status::not_found(err.to_string())
            }
            WebhookError::Store(err) => err.into(),
        }
    }
}

impl From<AuthorError> for Status {
    fn from(err: AuthorError) -> Self {
        match err {
            AuthorError::Invalid(violation) => violation.into(),
            AuthorError::NotFound => Status::not_found(err.to_string()),
            AuthorError::Store(err) => err.into(),
        }
    }
}

impl From<ReportError> for Status {
    fn from(err: ReportError) -> Self {
        match err {
            ReportError::NotFound => Status::not_found(err.to_string()),
            ReportError::RateLimited => Status::resource_exhausted(err.to_string()),
            ReportError::Store(err) => err.into(),
        }
    }
}

impl From<ReopenError> for Status {
    fn from(err: ReopenError) -> Self {
        match err {
            ReopenError::NotFound => Status::not_found(err.to_string()),
            ReopenError::InQueue => Status::failed_precondition(err.to_string()),
            ReopenError::Stale { .. } => Status::aborted(err.to_string()),
            ReopenError::Store(err) => err.into(),
        }
    }
}
