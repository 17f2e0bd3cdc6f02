//! Reader reports: what readers flag, for moderators to look at again.

use super::FieldViolation;
use super::error::check_text;

/// Why a reader reported a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportReason {
    Offensive,
    Spam,
    Harassment,
    /// Sends the comment back to the queue at once, hidden.
    Illegal,
    Other,
}

impl ReportReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportReason::Offensive => "offensive",
            ReportReason::Spam => "spam",
            ReportReason::Harassment => "harassment",
            ReportReason::Illegal => "illegal",
            ReportReason::Other => "other",
        }
    }
}

/// The platform's id for the reader who reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReporterId(String);

impl ReporterId {
    pub const MAX_CHARS: usize = 256;

    pub fn parse(field: &str, value: String) -> Result<Self, FieldViolation> {
        check_text(field, &value, Self::MAX_CHARS, true)?;
        Ok(ReporterId(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the reader wrote with the report; may be empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportDetail(String);

impl ReportDetail {
    pub const MAX_CHARS: usize = 2_000;

    pub fn parse(field: &str, value: String) -> Result<Self, FieldViolation> {
        check_text(field, &value, Self::MAX_CHARS, false)?;
        Ok(ReportDetail(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
