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

impl WebhookEventType {
    /// The type of the logged event with audit `action` that moved a
    /// comment to `to_state`; `None` for events webhooks do not carry. A
    /// comment requeued by reports is held again (`comment.held`, with
    /// `queued` set and its status, which may stay approved).
    pub fn of_logged(action: &str, to_state: Option<&str>) -> Option<Self> {
        Some(match (action, to_state) {
            ("comment.created", Some("approved")) => WebhookEventType::CommentApproved,
            ("comment.created", Some("rejected")) => WebhookEventType::CommentRejected,
            ("comment.created", Some("pending_review")) | ("comment.requeued", _) => {
                WebhookEventType::CommentHeld
            }
            ("comment.reviewed", _) => WebhookEventType::CommentDecided,
            ("comment.reopened", _) => WebhookEventType::CommentReopened,
            ("comment.reported", _) => WebhookEventType::CommentReported,
            ("author.standing_changed", _) => WebhookEventType::AuthorStandingChanged,
            _ => return None,
        })
    }
}

/// The `webhook-id` of an event, the same on every attempt and every
/// replica: a decision-stream event is named by its number (the one
/// `WatchDecisions` gives it, unique in the tenant), the other events by
/// their place in the audit log.
pub fn webhook_message_id(sequence: Option<i64>, event_id: i64) -> String {
    match sequence {
        Some(sequence) => format!("msg_seq_{sequence}"),
        None => format!("msg_evt_{event_id}"),
    }
}

/// Where an endpoint is in the event log: every event up to `event_id` is
/// settled (delivered, given up, pending as the head, or not subscribed
/// to), and `sequence` is the number of the last stream event among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WebhookCursor {
    pub event_id: i64,
    pub sequence: i64,
}

/// What became of an event sent to an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not delivered yet: the endpoint's head, tried again at
    /// `next_attempt_time` (later events wait behind it).
    Pending,
    Delivered,
    /// Given up (the retry schedule ran out, or the receiver answered 410).
    Failed,
    /// An admin asked for one more attempt.
    Retrying,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Retrying => "retrying",
        }
    }

    pub fn from_db(value: &str) -> Option<Self> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
            DeliveryState::Retrying,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }
}

/// One event sent (or being sent) to one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookDelivery {
    /// The event's place in the audit log.
    pub event_id: i64,
    /// Its decision-stream number, for stream events.
    pub sequence: Option<i64>,
    /// The `webhook-id` header.
    pub message_id: String,
    pub event_type: WebhookEventType,
    pub state: DeliveryState,
    pub attempts: u32,
    /// The receiver's last HTTP status; `None` when no answer came.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, empty after a success.
    pub last_error: String,
    pub event_time: DateTime<Utc>,
    pub first_attempt_time: DateTime<Utc>,
    pub last_attempt_time: DateTime<Utc>,
    /// When the next attempt is due (pending and retrying deliveries).
    pub next_attempt_time: Option<DateTime<Utc>>,
}

/// What one step of an endpoint's delivery settled, written at once.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSettlement {
    /// The delivery row to write (replacing the event's row, if any).
    pub delivery: Option<WebhookDelivery>,
    /// Where the endpoint's cursor moves (past the event and the events
    /// before it that it does not subscribe to); `None` leaves it.
    pub cursor: Option<WebhookCursor>,
    /// The endpoint's run of failures after this step.
    pub failing_since: Option<DateTime<Utc>>,
    /// Set when the endpoint is turned off, with why.
    pub disable: Option<String>,
    pub now: DateTime<Utc>,
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

    #[test]
    fn logged_events_map_to_the_issue_s_types() {
        use WebhookEventType as T;
        for (action, to, kind) in [
            (
                "comment.created",
                Some("approved"),
                Some(T::CommentApproved),
            ),
            (
                "comment.created",
                Some("rejected"),
                Some(T::CommentRejected),
            ),
            (
                "comment.created",
                Some("pending_review"),
                Some(T::CommentHeld),
            ),
            ("comment.requeued", Some("approved"), Some(T::CommentHeld)),
            (
                "comment.reviewed",
                Some("rejected"),
                Some(T::CommentDecided),
            ),
            (
                "comment.reopened",
                Some("pending_review"),
                Some(T::CommentReopened),
            ),
            ("comment.reported", None, Some(T::CommentReported)),
            (
                "author.standing_changed",
                Some("banned"),
                Some(T::AuthorStandingChanged),
            ),
            ("rule.created", Some("active"), None),
            ("webhook.created", Some("enabled"), None),
        ] {
            assert_eq!(WebhookEventType::of_logged(action, to), kind, "{action}");
        }
        assert_eq!(webhook_message_id(Some(7), 99), "msg_seq_7");
        assert_eq!(webhook_message_id(None, 99), "msg_evt_99");
        for state in [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
            DeliveryState::Retrying,
        ] {
            assert_eq!(DeliveryState::from_db(state.as_str()), Some(state));
        }
    }
}
