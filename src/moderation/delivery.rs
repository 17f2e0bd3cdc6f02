//! Webhook deliveries: every replica runs [`WebhookDeliveries`], which
//! leases endpoints (one replica per endpoint at a time), reads each
//! leased endpoint's events from the event log after its cursor, and sends
//! them one at a time, in log order.
//!
//! Why from the log, with a cursor: an event is in the log once its
//! transaction commits, so nothing acknowledged can be missed, and the
//! cursor moves in the same transaction as the delivery row of the event
//! it passes, so a crash at any point at worst sends an event again (with
//! the same `webhook-id`: at least once, receivers deduplicate). Why one
//! in flight per endpoint: receivers get events in order, and a failing
//! event holds back the ones after it until it is delivered or given up
//! (the retry schedule, `webhooks::schedule`), never reordering them. Why
//! a task per endpoint: a receiver that answers slowly (up to the 10 s
//! deadline) delays only itself, never another endpoint or a submission
//! (submissions never wait for deliveries: they only write the log).
//!
//! The lease lives on the endpoint's row (`lease_owner`,
//! `lease_expire_time`), renewed while the endpoint is worked on and given
//! back when the replica stops; a replica that dies holds it until it
//! lapses, then another takes the endpoint over from its cursor.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::{Moderation, now};
use crate::domain::{
    Comment, DeliveryState, TenantId, WebhookCursor, WebhookDelivery, WebhookEventType, WebhookId,
    WebhookSettlement, webhook_message_id,
};
use crate::storage::{LeasedWebhook, LoggedEvent, StoreError};
use crate::webhooks::{AddressPolicy, Outcome, Sender, schedule, sign};

/// Builds a delivery's JSON body (the gRPC layer's mapping of the comment).
pub type PayloadBuilder = fn(WebhookEventType, &LoggedEvent, Option<Comment>) -> serde_json::Value;

/// How a replica delivers.
#[derive(Clone)]
pub struct DeliveryOptions {
    pub sender: Sender,
    /// How long a lease lasts without renewal: how long an endpoint waits
    /// after its replica died before another takes it over.
    pub lease: Duration,
    /// Multiplies the retry schedule's delays: 1 in service; tests shorten
    /// the schedule with it.
    pub backoff_scale: f64,
    /// Endpoints one replica works on at once, at most.
    pub max_endpoints: u32,
}

/// The default lease.
pub const LEASE: Duration = Duration::from_secs(30);
/// The longest between two looks for endpoints nobody holds.
const SCAN: Duration = Duration::from_secs(1);
/// Events read from the log at once.
const BATCH: u32 = 100;
/// The longest an endpoint with nothing to send sleeps before looking at
/// the log again (numbering wakes it sooner).
const POLL: Duration = Duration::from_secs(1);

impl DeliveryOptions {
    pub fn new(policy: AddressPolicy) -> Self {
        DeliveryOptions {
            sender: Sender::new(policy),
            lease: LEASE,
            backoff_scale: 1.0,
            max_endpoints: 256,
        }
    }
}

/// This replica's deliveries; [`WebhookDeliveries::stop`] gives its
/// leases back.
pub struct WebhookDeliveries {
    task: tokio::task::JoinHandle<()>,
    held: Held,
    moderation: Moderation,
}

type Held = Arc<Mutex<HashSet<(TenantId, WebhookId)>>>;

impl WebhookDeliveries {
    pub fn start(
        moderation: Moderation,
        options: DeliveryOptions,
        payload: PayloadBuilder,
    ) -> Self {
        let held = Held::default();
        let worker = Worker {
            m: moderation.clone(),
            owner: moderation.inner.replica_id,
            options,
            payload,
            held: held.clone(),
        };
        WebhookDeliveries {
            task: tokio::spawn(worker.run()),
            held,
            moderation,
        }
    }

    /// Stops delivering (an attempt in flight is dropped: it will be made
    /// again) and releases the leases, so another replica, or this one
    /// restarted, goes on at once.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        let owner = self.moderation.inner.replica_id;
        let held: Vec<_> = self.held.lock().expect("not poisoned").drain().collect();
        for (tenant, id) in held {
            if let Err(err) = self
                .moderation
                .store()
                .release_webhook_lease(tenant, id, owner)
                .await
            {
                tracing::warn!(error = %err, %id, "releasing a webhook lease failed; it will lapse");
            }
        }
    }
}

#[derive(Clone)]
struct Worker {
    m: Moderation,
    owner: Uuid,
    options: DeliveryOptions,
    payload: PayloadBuilder,
    held: Held,
}

fn lease_delta(lease: Duration) -> TimeDelta {
    TimeDelta::from_std(lease).expect("a lease of sane length")
}

impl Worker {
    async fn run(self) {
        let mut tasks = JoinSet::new();
        // Looks for endpoints nobody holds (new, released by a stopping
        // replica, or whose holder died) every second, or more often for
        // short leases: a statement that writes nothing when there is none.
        let mut tick = tokio::time::interval((self.options.lease / 3).min(SCAN));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                Some(_) = tasks.join_next() => continue,
            }
            let room = (self.options.max_endpoints as usize).saturating_sub(tasks.len());
            if room == 0 {
                continue;
            }
            let at = now();
            let leased = match self
                .m
                .store()
                .lease_webhooks(
                    self.owner,
                    at,
                    at + lease_delta(self.options.lease),
                    room as u32,
                )
                .await
            {
                Ok(leased) => leased,
                Err(err) => {
                    tracing::warn!(error = %err, "leasing webhook endpoints failed; will retry");
                    continue;
                }
            };
            for endpoint in leased {
                let key = (endpoint.tenant_id, endpoint.record.webhook.webhook_id);
                self.held.lock().expect("not poisoned").insert(key);
                let worker = self.clone();
                tasks.spawn(async move {
                    worker.endpoint(endpoint).await;
                    worker.held.lock().expect("not poisoned").remove(&key);
                });
            }
        }
    }

    /// Works on one endpoint for as long as this replica holds it (returns
    /// when the lease is no longer ours, or the endpoint is gone or off).
    async fn endpoint(&self, mut leased: LeasedWebhook) {
        let (tenant, id) = (leased.tenant_id, leased.record.webhook.webhook_id);
        let mut wake = self.m.inner.sequencer.subscribe();
        let renew_every = self.options.lease / 3;
        let mut renewed = tokio::time::Instant::now();
        loop {
            if renewed.elapsed() >= renew_every {
                let until = now() + lease_delta(self.options.lease);
                match self
                    .m
                    .store()
                    .renew_webhook_lease(tenant, id, self.owner, until)
                    .await
                {
                    Ok(Some(fresh)) => {
                        leased = fresh;
                        renewed = tokio::time::Instant::now();
                    }
                    Ok(None) => return,
                    Err(err) => {
                        tracing::warn!(error = %err, %id, "renewing a webhook lease failed");
                        tokio::time::sleep(POLL).await;
                        continue;
                    }
                }
            }
            let wait = match self.step(&mut leased).await {
                Ok(Step::More) => continue,
                Ok(Step::LeaseLost) => return,
                Ok(Step::Idle(due)) => {
                    let until_due = due
                        .map(|d| (d - now()).to_std().unwrap_or(Duration::ZERO))
                        .unwrap_or(POLL);
                    until_due
                        .min(POLL)
                        .min(renew_every.saturating_sub(renewed.elapsed()))
                }
                Err(err) => {
                    tracing::warn!(error = %err, %id, "webhook delivery step failed; will retry");
                    POLL
                }
            };
            // Numbering announces new events; otherwise poll.
            let _ = tokio::time::timeout(wait, wake.changed()).await;
        }
    }

    /// Does the next thing the endpoint needs: a retry an admin asked for,
    /// its pending head when due, or the next events of the log.
    async fn step(&self, leased: &mut LeasedWebhook) -> Result<Step, StoreError> {
        let (tenant, id) = (leased.tenant_id, leased.record.webhook.webhook_id);
        let store = self.m.store();
        let open = store.open_webhook_deliveries(tenant, id).await?;
        let at = now();
        let mut due: Option<DateTime<Utc>> = None;
        for delivery in open {
            let next = delivery.next_attempt_time.unwrap_or(at);
            if next > at {
                due = Some(due.map_or(next, |d| d.min(next)));
                continue;
            }
            let event = store
                .webhook_events(tenant, cursor_before(&delivery), 1)
                .await?
                .into_iter()
                .find(|e| e.audit.event_id == delivery.event_id);
            let Some(event) = event else {
                return Err(StoreError::Corrupt(format!(
                    "webhook delivery of event {} has no event",
                    delivery.event_id
                )));
            };
            let kind = delivery.event_type;
            return self
                .attempt(leased, &event, kind, Some(delivery), None)
                .await;
        }
        if due.is_some() {
            // The head waits for its retry; later events wait behind it.
            return Ok(Step::Idle(due));
        }
        let events = store.webhook_events(tenant, leased.cursor, BATCH).await?;
        if events.is_empty() {
            return Ok(Step::Idle(None));
        }
        let mut cursor = leased.cursor;
        for event in &events {
            let passed = WebhookCursor {
                event_id: event.audit.event_id,
                sequence: event.sequence.unwrap_or(cursor.sequence),
            };
            let Some(kind) =
                WebhookEventType::of_logged(&event.audit.action, event.audit.to_state.as_deref())
                    .filter(|kind| leased.record.webhook.wants(*kind))
            else {
                cursor = passed;
                continue;
            };
            // Sends it; the settlement moves the cursor past it and the
            // skipped events before it.
            return self.attempt(leased, event, kind, None, Some(passed)).await;
        }
        // Nothing subscribed to in this batch: move past it.
        let settled = WebhookSettlement {
            delivery: None,
            cursor: Some(cursor),
            failing_since: leased.failing_since,
            disable: None,
            now: at,
        };
        if !store
            .settle_webhook(tenant, id, self.owner, &settled)
            .await?
        {
            return Ok(Step::LeaseLost);
        }
        leased.cursor = cursor;
        Ok(Step::More)
    }

    /// One attempt of `event`, of type `kind`: a new event (`passed`:
    /// where the cursor goes) or an open delivery (`delivery`).
    async fn attempt(
        &self,
        leased: &mut LeasedWebhook,
        event: &LoggedEvent,
        kind: WebhookEventType,
        delivery: Option<WebhookDelivery>,
        passed: Option<WebhookCursor>,
    ) -> Result<Step, StoreError> {
        let (tenant, id) = (leased.tenant_id, leased.record.webhook.webhook_id);
        let store = self.m.store();
        let comment = match event.audit.comment_id {
            Some(comment_id) => store.get_comment(tenant, comment_id).await?,
            None => None,
        };
        let body = serde_json::to_vec(&(self.payload)(kind, event, comment))
            .expect("a JSON value serialises");
        let message_id = webhook_message_id(event.sequence, event.audit.event_id);
        let started = now();
        let secrets = self.m.signing_secrets(tenant, &leased.record, started)?;
        let signature = sign(
            &secrets.iter().collect::<Vec<_>>(),
            &message_id,
            started.timestamp(),
            &body,
        );
        let headers = [
            ("webhook-id", message_id.clone()),
            ("webhook-timestamp", started.timestamp().to_string()),
            ("webhook-signature", signature),
        ];
        let outcome = self
            .options
            .sender
            .send(&leased.record.webhook.url, &headers, Bytes::from(body))
            .await;
        let at = now();
        let mut record = delivery.unwrap_or_else(|| WebhookDelivery {
            event_id: event.audit.event_id,
            sequence: event.sequence,
            message_id,
            event_type: kind,
            state: DeliveryState::Pending,
            attempts: 0,
            last_status: None,
            last_error: String::new(),
            event_time: event.audit.create_time,
            first_attempt_time: started,
            last_attempt_time: started,
            next_attempt_time: None,
        });
        let judged = judge(
            &mut record,
            &outcome,
            leased.failing_since,
            at,
            |first, failed| self.next_attempt(first, failed, at),
        );
        if judged.label == "delivered" {
            metrics::histogram!("moderato_webhook_delivery_lag_seconds")
                .record((at - record.event_time).as_seconds_f64().max(0.0));
        }
        let (failing_since, disable, label) = (judged.failing_since, judged.disable, judged.label);
        metrics::counter!("moderato_webhook_deliveries_total", "outcome" => label).increment(1);
        let settlement = WebhookSettlement {
            delivery: Some(record),
            cursor: passed,
            failing_since,
            disable: disable.clone(),
            now: at,
        };
        if !store
            .settle_webhook(tenant, id, self.owner, &settlement)
            .await?
        {
            return Ok(Step::LeaseLost);
        }
        if let Some(reason) = disable {
            tracing::warn!(%id, %reason, "webhook endpoint disabled");
            return Ok(Step::LeaseLost);
        }
        if let Some(cursor) = passed {
            leased.cursor = cursor;
        }
        leased.failing_since = failing_since;
        Ok(Step::More)
    }

    /// The retry schedule, scaled by the options.
    fn next_attempt(
        &self,
        first: DateTime<Utc>,
        failed: u32,
        at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let jitter = rand::random::<f64>();
        let due = schedule::next_attempt(first, failed, at, jitter)?;
        let scale = self.options.backoff_scale;
        if scale == 1.0 {
            return Some(due);
        }
        let delay = TimeDelta::microseconds(((due - at).num_microseconds()? as f64 * scale) as i64);
        Some(at + delay)
    }
}

/// What an attempt's outcome makes of a delivery and its endpoint.
#[derive(Debug, PartialEq)]
struct Judged {
    /// The endpoint's run of failures after the attempt.
    failing_since: Option<DateTime<Utc>>,
    /// Why the endpoint is turned off, when it is.
    disable: Option<String>,
    /// The outcome's metric label.
    label: &'static str,
}

/// Applies an attempt's `outcome`, ended at `at`, to `record` (its
/// attempts, answer, state and next attempt, from `next_attempt(first
/// attempt, failed attempts)`), and says what it does to the endpoint
/// failing since `failing_since`: a 2xx ends the run of failures; 410
/// gives the event up and disables the endpoint; another failure is
/// retried on the schedule (a retry an admin asked for is tried once) and
/// disables the endpoint once it has failed for `DISABLE_AFTER`.
fn judge(
    record: &mut WebhookDelivery,
    outcome: &Outcome,
    failing_since: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
    next_attempt: impl FnOnce(DateTime<Utc>, u32) -> Option<DateTime<Utc>>,
) -> Judged {
    let manual = record.state == DeliveryState::Retrying;
    record.attempts += 1;
    record.last_attempt_time = at;
    match outcome {
        Outcome::Delivered(status) => {
            record.state = DeliveryState::Delivered;
            record.last_status = Some(*status);
            record.last_error.clear();
            record.next_attempt_time = None;
            Judged {
                failing_since: None,
                disable: None,
                label: "delivered",
            }
        }
        Outcome::Gone => {
            record.state = DeliveryState::Failed;
            record.last_status = Some(410);
            record.last_error = "the receiver answered 410 Gone".into();
            record.next_attempt_time = None;
            Judged {
                failing_since,
                disable: Some(
                    "the receiver answered 410 Gone: it asked to be sent nothing more".into(),
                ),
                label: "gone",
            }
        }
        Outcome::Failed { status, error } => {
            record.last_status = *status;
            record.last_error = error.clone();
            let since = failing_since.unwrap_or(record.last_attempt_time);
            record.next_attempt_time = if manual {
                None
            } else {
                next_attempt(record.first_attempt_time, record.attempts)
            };
            record.state = if record.next_attempt_time.is_some() {
                DeliveryState::Pending
            } else {
                DeliveryState::Failed
            };
            let disable = schedule::to_disable(since, at).then(|| {
                format!(
                    "every delivery attempt failed for {} days, since {}; the last: {error}",
                    schedule::DISABLE_AFTER.num_days(),
                    since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                )
            });
            Judged {
                failing_since: Some(since),
                disable,
                label: "failed",
            }
        }
    }
}

/// A cursor from which the log's next event is `delivery`'s: its number
/// (stream events) and its place in the log, each one back; an audit-only
/// event has no number and no stream event is read before it.
fn cursor_before(delivery: &WebhookDelivery) -> WebhookCursor {
    WebhookCursor {
        event_id: delivery.event_id - 1,
        sequence: delivery.sequence.map_or(i64::MAX, |s| s - 1),
    }
}

/// What a step left to do.
enum Step {
    /// Go on at once.
    More,
    /// Nothing to do before `due` (or before new events, when `None`).
    Idle(Option<DateTime<Utc>>),
    LeaseLost,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_000_000 + seconds, 0).unwrap()
    }

    fn pending() -> WebhookDelivery {
        WebhookDelivery {
            event_id: 7,
            sequence: Some(3),
            message_id: "msg_seq_3".into(),
            event_type: WebhookEventType::CommentHeld,
            state: DeliveryState::Pending,
            attempts: 0,
            last_status: None,
            last_error: String::new(),
            event_time: at(0),
            first_attempt_time: at(1),
            last_attempt_time: at(1),
            next_attempt_time: None,
        }
    }

    fn failed(status: u16) -> Outcome {
        Outcome::Failed {
            status: Some(status),
            error: format!("the receiver answered {status}"),
        }
    }

    #[test]
    fn a_failure_is_retried_on_the_schedule_and_a_success_ends_the_run() {
        let mut d = pending();
        let judged = judge(&mut d, &failed(500), None, at(2), |first, failed| {
            assert_eq!((first, failed), (at(1), 1));
            Some(at(7))
        });
        assert_eq!(judged.failing_since, Some(at(2)), "the run starts");
        assert_eq!(judged.disable, None);
        assert_eq!(
            (d.state, d.attempts, d.last_status),
            (DeliveryState::Pending, 1, Some(500))
        );
        assert_eq!(d.next_attempt_time, Some(at(7)));

        let judged = judge(&mut d, &failed(503), judged.failing_since, at(8), |_, n| {
            assert_eq!(n, 2);
            None
        });
        assert_eq!(
            d.state,
            DeliveryState::Failed,
            "the schedule ran out: given up"
        );
        assert_eq!(judged.failing_since, Some(at(2)), "the run goes on");

        let mut next = pending();
        let judged = judge(
            &mut next,
            &Outcome::Delivered(204),
            judged.failing_since,
            at(9),
            |_, _| unreachable!("no retry after a success"),
        );
        assert_eq!(judged.failing_since, None);
        assert_eq!(
            (next.state, next.last_status),
            (DeliveryState::Delivered, Some(204))
        );
        assert!(next.last_error.is_empty() && next.next_attempt_time.is_none());
    }

    #[test]
    fn gone_and_five_days_of_failures_disable_the_endpoint_with_why() {
        let mut d = pending();
        let judged = judge(&mut d, &Outcome::Gone, None, at(2), |_, _| unreachable!());
        assert_eq!(d.state, DeliveryState::Failed);
        assert!(judged.disable.unwrap().contains("410"));

        let since = at(0);
        let almost = since + schedule::DISABLE_AFTER - TimeDelta::seconds(1);
        let judged = judge(&mut pending(), &failed(500), Some(since), almost, |_, _| {
            None
        });
        assert_eq!(judged.disable, None);
        let judged = judge(
            &mut pending(),
            &failed(502),
            Some(since),
            since + schedule::DISABLE_AFTER,
            |_, _| None,
        );
        let why = judged.disable.expect("disabled after 5 days");
        assert!(why.contains("5 days") && why.contains("502"), "{why}");
    }

    #[test]
    fn a_retry_asked_for_is_tried_once() {
        let mut d = WebhookDelivery {
            state: DeliveryState::Retrying,
            attempts: 12,
            ..pending()
        };
        judge(&mut d, &failed(500), None, at(5), |_, _| {
            unreachable!("not rescheduled")
        });
        assert_eq!(
            (d.state, d.attempts, d.next_attempt_time),
            (DeliveryState::Failed, 13, None)
        );
    }
}
