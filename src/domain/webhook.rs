//! A tenant's webhook endpoints as the domain sees them: where events go,
//! which events, and whether the endpoint is on. The signing secret is
//! never part of these types (see `webhooks::SigningSecret`): it is shown
//! once, when made, and otherwise only read to sign.

use chrono::{DateTime, Utc};

use super::error::check_text;
use super::{FieldViolation, WebhookId};

/// Endpoints per tenant, at most.
pub const MAX_WEBHOOKS: usize = 20;

/// What an endpoint can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WebhookEventType {
    CommentApproved,
    CommentRejected,
    CommentHeld,
    CommentDecided,
    CommentReopened,
    CommentReported,
    AuthorStandingChanged,
}

impl WebhookEventType {
    pub const ALL: [WebhookEventType; 7] = [
        WebhookEventType::CommentApproved,
        WebhookEventType::CommentRejected,
        WebhookEventType::CommentHeld,
        WebhookEventType::CommentDecided,
        WebhookEventType::CommentReopened,
        WebhookEventType::CommentReported,
        WebhookEventType::AuthorStandingChanged,
    ];

    /// The payload's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEventType::CommentApproved => "comment.approved",
            WebhookEventType::CommentRejected => "comment.rejected",
            WebhookEventType::CommentHeld => "comment.held",
            WebhookEventType::CommentDecided => "comment.decided",
            WebhookEventType::CommentReopened => "comment.reopened",
            WebhookEventType::CommentReported => "comment.reported",
            WebhookEventType::AuthorStandingChanged => "author.standing_changed",
        }
    }

    pub fn from_db(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == value)
    }
}

/// An endpoint's URL: `https://` (or `http://`, for receivers on a private
/// network), a host, no credentials, at most 2,048 characters. Where it
/// may point is checked when delivering, after resolution
/// (`webhooks::ssrf`), since a name can change what it resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub const MAX_CHARS: usize = 2_048;

    pub fn parse(field: &str, value: String) -> Result<Self, FieldViolation> {
        check_text(field, &value, Self::MAX_CHARS, true)?;
        let invalid = |reason: &str| Err(FieldViolation::new(field, reason));
        if !(value.starts_with("https://") || value.starts_with("http://")) {
            return invalid("must start with https:// (or http://)");
        }
        let Ok(uri) = value.parse::<axum::http::Uri>() else {
            return invalid("is not a URL");
        };
        match uri.scheme_str() {
            Some("https" | "http") => {}
            _ => return invalid("must start with https:// (or http://)"),
        }
        let Some(authority) = uri.authority() else {
            return invalid("has no host");
        };
        if authority.as_str().contains('@') {
            return invalid("must not carry credentials (use the signature to authenticate)");
        }
        if authority.host().is_empty() {
            return invalid("has no host");
        }
        Ok(WebhookUrl(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSpec {
    pub url: WebhookUrl,
    /// Empty: every event type, including ones added later.
    pub event_types: Vec<WebhookEventType>,
    pub description: String,
}

/// The fields of an update that are set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookChange {
    pub url: Option<WebhookUrl>,
    pub event_types: Option<Vec<WebhookEventType>>,
    pub description: Option<String>,
    /// Turning an endpoint back on clears why it was off.
    pub enabled: Option<bool>,
}

/// The longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// Parses a description (may be empty).
pub fn webhook_description(field: &str, value: String) -> Result<String, FieldViolation> {
    check_text(field, &value, MAX_DESCRIPTION_CHARS, false)?;
    Ok(value)
}

/// An endpoint as stored and shown (never its secret).
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub webhook_id: WebhookId,
    pub url: String,
    pub event_types: Vec<WebhookEventType>,
    pub description: String,
    pub enabled: bool,
    /// Why the endpoint is off, when it is.
    pub disabled_reason: String,
    /// Until when the secret replaced by the last rotation still signs.
    pub previous_secret_expire_time: Option<DateTime<Utc>>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

impl Webhook {
    /// Whether the endpoint wants events of `kind`.
    pub fn wants(&self, kind: WebhookEventType) -> bool {
        self.event_types.is_empty() || self.event_types.contains(&kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_a_web_scheme_and_a_host_and_carry_no_credentials() {
        for good in [
            "https://cms.example.com/hooks/moderato",
            "http://10.0.0.7:8080/hook",
            "https://[2001:db8::1]/h?x=1",
        ] {
            assert!(WebhookUrl::parse("url", good.into()).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("", "is required"),
            ("cms.example.com/hook", "https://"),
            ("ftp://cms.example.com/", "https://"),
            ("https://user:pw@cms.example.com/", "credentials"),
            ("https:///path", "URL"),
        ] {
            let err = WebhookUrl::parse("url", bad.into()).unwrap_err();
            assert_eq!(err.field, "url");
            assert!(err.reason.contains(why), "{bad}: {}", err.reason);
        }
        let long = format!("https://h.example/{}", "a".repeat(WebhookUrl::MAX_CHARS));
        assert!(WebhookUrl::parse("url", long).is_err());
    }

    #[test]
    fn event_types_round_trip_and_empty_means_all() {
        for kind in WebhookEventType::ALL {
            assert_eq!(WebhookEventType::from_db(kind.as_str()), Some(kind));
        }
        assert_eq!(WebhookEventType::from_db("comment.deleted"), None);
        let at = chrono::Utc::now();
        let mut hook = Webhook {
            webhook_id: WebhookId::generate(),
            url: "https://h.example/".into(),
            event_types: Vec::new(),
            description: String::new(),
            enabled: true,
            disabled_reason: String::new(),
            previous_secret_expire_time: None,
            create_time: at,
            update_time: at,
        };
        assert!(hook.wants(WebhookEventType::CommentReported));
        hook.event_types = vec![WebhookEventType::CommentDecided];
        assert!(hook.wants(WebhookEventType::CommentDecided));
        assert!(!hook.wants(WebhookEventType::CommentApproved));
    }
}
