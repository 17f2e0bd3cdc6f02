//! A tenant's external classifier, asked for its opinion while a
//! submission reads the author's history (issue #15).
//!
//! Why it can never break or slow a submission beyond its own deadline:
//! the call has the tenant's `timeout_ms` (300 ms by default) and runs
//! concurrently with the history read, so a classifier that answers in
//! time costs what it takes beyond that read; one that does not is given
//! up at the deadline and the comment is decided without it
//! (`external.unavailable`). After [`FAILURES_TO_OPEN`] failures in a row
//! the circuit opens: for [`OPEN_FOR`] no submission waits for the
//! classifier at all, then one submission probes it (the others still
//! skip it) and a success closes the circuit. So a classifier that is down
//! costs the tenant's submissions a few deadlines per 30 s, not one each.
//! Opinions are cached per replica by the text's hash for a day (the same
//! text, typically a copy-paste campaign, costs one call).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::Moderation;
use super::auth::TtlCache;
use crate::classifiers::shapes;
use crate::domain::{ExternalClassifier, ExternalOpinion, TenantId};
use crate::webhooks::{AddressPolicy, Sender};

/// Failures in a row that open the circuit.
pub const FAILURES_TO_OPEN: u32 = 5;
/// How long an open circuit skips the classifier before one probe.
pub const OPEN_FOR: Duration = Duration::from_secs(30);
/// How long an opinion is reused for the same text.
pub const CACHE_FOR: Duration = Duration::from_secs(24 * 3600);

/// What a sealed API key is bound to.
pub(crate) fn key_context(tenant: TenantId) -> Vec<u8> {
    let mut context = b"classifier api key ".to_vec();
    context.extend_from_slice(tenant.as_uuid().as_bytes());
    context
}

/// Which classifier: its settings' fingerprint, so a changed URL or kind
/// neither reuses the old one's opinions nor inherits its circuit.
type Config = (TenantId, [u8; 32]);
/// An opinion cached for a classifier and a text (by its hash).
type Cached = TtlCache<(Config, [u8; 32]), Arc<Vec<(String, f64)>>>;

/// One replica's classifier client, cache and circuit breakers.
pub(crate) struct Classifiers {
    sender: Sender,
    cache: Cached,
    breakers: Mutex<HashMap<Config, Breaker>>,
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

/// Whether a call may go out.
#[derive(Debug, PartialEq)]
enum Gate {
    Call,
    /// Open: skip, with why.
    Skip(String),
}

impl Breaker {
    fn gate(&mut self, now: Instant) -> Gate {
        match self.open_until {
            Some(until) if now < until => Gate::Skip(format!(
                "skipped for {} s after {FAILURES_TO_OPEN} failures in a row",
                OPEN_FOR.as_secs()
            )),
            // Half-open: one probe at a time.
            Some(_) if self.probing => Gate::Skip("skipped while a probe is out".into()),
            Some(_) => {
                self.probing = true;
                Gate::Call
            }
            None => Gate::Call,
        }
    }

    fn record(&mut self, ok: bool, now: Instant) {
        if ok {
            *self = Breaker::default();
            return;
        }
        self.failures += 1;
        if self.probing || self.failures >= FAILURES_TO_OPEN {
            self.open_until = Some(now + OPEN_FOR);
            self.probing = false;
        }
    }
}

impl Classifiers {
    pub(crate) fn new(policy: AddressPolicy) -> Self {
        Classifiers {
            sender: Sender::new(policy),
            cache: TtlCache::new(CACHE_FOR),
            breakers: Mutex::default(),
        }
    }
}

fn config_of(tenant: TenantId, c: &ExternalClassifier) -> Config {
    let mut h = Sha256::new();
    h.update(c.kind.as_str());
    h.update([0]);
    h.update(&c.url);
    h.update([0]);
    h.update(&c.sealed_api_key);
    (tenant, h.finalize().into())
}

impl Moderation {
    /// Where classifier calls may go (the operator's webhook flag covers
    /// both: the URLs are the tenants'). Set before the service is shared.
    pub fn with_outbound_policy(mut self, policy: AddressPolicy) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("configured before the service is shared")
            .classifiers = Classifiers::new(policy);
        self
    }

    /// The opinion of the tenant's classifier on `body`, within its
    /// deadline; `None` when the tenant has none.
    pub(crate) async fn external_opinion(
        &self,
        tenant: TenantId,
        classifier: Option<&ExternalClassifier>,
        body: &str,
        language: Option<&str>,
    ) -> Option<ExternalOpinion> {
        let c = classifier?;
        let classifiers = &self.inner.classifiers;
        let config = config_of(tenant, c);
        let text: [u8; 32] = Sha256::digest(body.as_bytes()).into();
        let outcome = |label: &'static str| {
            metrics::counter!("moderato_external_classifier_calls_total", "outcome" => label)
                .increment(1);
        };
        if let Some(scores) = classifiers.cache.get(&(config, text)) {
            outcome("cached");
            return Some(ExternalOpinion::Scores {
                kind: c.kind,
                scores: scores.as_ref().clone(),
            });
        }
        let gate = classifiers
            .breakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(config)
            .or_default()
            .gate(Instant::now());
        if let Gate::Skip(why) = gate {
            outcome("circuit_open");
            return Some(ExternalOpinion::Unavailable { why });
        }
        let started = Instant::now();
        let result = self.call_classifier(tenant, c, body, language).await;
        metrics::histogram!("moderato_external_classifier_seconds")
            .record(started.elapsed().as_secs_f64());
        classifiers
            .breakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(config)
            .or_default()
            .record(result.is_ok(), Instant::now());
        match result {
            Ok(scores) => {
                outcome("ok");
                classifiers
                    .cache
                    .insert((config, text), Arc::new(scores.clone()));
                Some(ExternalOpinion::Scores {
                    kind: c.kind,
                    scores,
                })
            }
            Err((label, why)) => {
                outcome(label);
                tracing::debug!(%tenant, %why, "external classifier unavailable");
                Some(ExternalOpinion::Unavailable { why })
            }
        }
    }

    async fn call_classifier(
        &self,
        tenant: TenantId,
        c: &ExternalClassifier,
        body: &str,
        language: Option<&str>,
    ) -> Result<Vec<(String, f64)>, (&'static str, String)> {
        let key = if c.sealed_api_key.is_empty() {
            String::new()
        } else {
            self.inner
                .sealer
                .open(&c.sealed_api_key, &key_context(tenant))
                .ok_or((
                    "error",
                    "its API key does not open with this server secret".into(),
                ))?
        };
        let headers: Vec<(&str, String)> = shapes::auth_header(c.kind, &key).into_iter().collect();
        let request = shapes::request_body(c.kind, body, language);
        let deadline = Duration::from_millis(u64::from(c.timeout_ms));
        let answer = tokio::time::timeout(
            deadline,
            self.inner
                .classifiers
                .sender
                .post(&c.url, &headers, request.into()),
        )
        .await
        .map_err(|_| ("timeout", format!("no answer within {} ms", c.timeout_ms)))?
        .map_err(|e| ("error", e))?;
        match answer {
            (status, body) if (200..300).contains(&status) => {
                shapes::parse_response(c.kind, &body).map_err(|e| ("error", e))
            }
            (status, _) => Err(("error", format!("it answered {status}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_circuit_opens_after_failures_in_a_row_and_one_probe_closes_it() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        for _ in 0..FAILURES_TO_OPEN - 1 {
            assert_eq!(b.gate(t0), Gate::Call);
            b.record(false, t0);
        }
        b.record(true, t0);
        assert_eq!(b.failures, 0, "a success ends the run");
        for _ in 0..FAILURES_TO_OPEN {
            assert_eq!(b.gate(t0), Gate::Call);
            b.record(false, t0);
        }
        assert!(matches!(b.gate(t0), Gate::Skip(_)), "open");
        assert!(matches!(b.gate(t0 + OPEN_FOR / 2), Gate::Skip(_)));
        // Half-open: one probe; the others still skip.
        let later = t0 + OPEN_FOR;
        assert_eq!(b.gate(later), Gate::Call);
        assert!(matches!(b.gate(later), Gate::Skip(why) if why.contains("probe")));
        // A failed probe opens it again at once.
        b.record(false, later);
        assert!(matches!(
            b.gate(later + Duration::from_secs(1)),
            Gate::Skip(_)
        ));
        let again = later + OPEN_FOR;
        assert_eq!(b.gate(again), Gate::Call);
        b.record(true, again);
        assert_eq!(b.gate(again), Gate::Call, "closed");
        assert_eq!(b.gate(again), Gate::Call);
    }
}
