use std::fmt;

/// A request field that could not be parsed: the field's name and why.
///
/// Becomes `INVALID_ARGUMENT` with a `BadRequest` field violation at the gRPC edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub reason: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for FieldViolation {}

/// Checks a free-text identifier: not blank, bounded, no control characters.
pub(crate) fn check_text(
    field: &str,
    value: &str,
    max_chars: usize,
    required: bool,
) -> Result<(), FieldViolation> {
    if value.trim().is_empty() {
        if required {
            return Err(FieldViolation::new(field, "is required"));
        }
        if !value.is_empty() {
            return Err(FieldViolation::new(field, "must not be blank"));
        }
        return Ok(());
    }
    if value.chars().count() > max_chars {
        return Err(FieldViolation::new(
            field,
            format!("is longer than {max_chars} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldViolation::new(field, "contains control characters"));
    }
    Ok(())
}
