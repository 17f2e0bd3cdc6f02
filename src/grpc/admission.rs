//! Load shedding: a bound on the calls one replica works on at once.
//!
//! Past what the machine can serve, queueing only adds latency: every call
//! waits longer, callers time out and retry, and the work done for calls
//! nobody waits for any more is wasted. So a replica admits at most
//! `max_concurrent_calls`; a call that finds them all taken waits at most
//! [`QUEUE_WAIT`] for one to free up (a burst, or a closed loop of more
//! clients than places, is served a few milliseconds later instead of
//! refused), then is refused with `UNAVAILABLE` and a `RetryInfo` (gRPC
//! clients retry it with backoff, a load balancer sends it to another
//! replica). The calls admitted keep their latency, and under sustained
//! overload a served call has waited at most `QUEUE_WAIT` more.
//!
//! A bound that follows latency (a gradient limit, as in Netflix's
//! concurrency-limits) was tried and measured worse here: the group commit
//! needs concurrency for its throughput, so lowering the limit lowered what
//! was served without lowering latency (BENCHMARKS.md).
//!
//! Streaming calls hold their place only while they are set up, not while
//! they stream. Health checks and reflection do not pass through the gate:
//! a busy replica is still alive.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// What a refused caller is told to wait before retrying.
const RETRY_AFTER: Duration = Duration::from_millis(50);

/// How long a call waits for a place before it is refused.
pub const QUEUE_WAIT: Duration = Duration::from_millis(50);

/// The admission bound shared by every service of one replica.
#[derive(Clone)]
pub struct Gate {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl Gate {
    /// `limit` 0 admits everything.
    pub fn new(limit: usize) -> Self {
        let limit = if limit == 0 {
            Semaphore::MAX_PERMITS
        } else {
            limit
        };
        Gate {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// A place for one call, at once or within [`QUEUE_WAIT`], or the
    /// status that refuses it.
    pub(super) async fn admit(&self, rpc: &'static str) -> Result<OwnedSemaphorePermit, Status> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let waited = tokio::time::timeout(QUEUE_WAIT, self.permits.clone().acquire_owned()).await;
        waited.ok().and_then(Result::ok).ok_or_else(|| {
            metrics::counter!("moderato_rpc_shed_total", "rpc" => rpc).increment(1);
            Status::with_error_details(
                Code::Unavailable,
                format!(
                    "this replica is at its limit of {} concurrent calls; retry with backoff",
                    self.limit
                ),
                ErrorDetails::with_retry_info(Some(RETRY_AFTER)),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_call_waits_briefly_for_a_place_then_is_refused() {
        let gate = Gate::new(1);
        let held = gate.admit("Test").await.unwrap();
        let started = tokio::time::Instant::now();
        let refused = gate.admit("Test").await.expect_err("no place freed");
        assert_eq!(refused.code(), Code::Unavailable);
        assert!(
            refused.message().contains("limit of 1"),
            "{}",
            refused.message()
        );
        assert_eq!(
            started.elapsed(),
            QUEUE_WAIT,
            "refused when the wait ran out"
        );

        // A place that frees within the wait goes to the waiting call.
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.admit("Test").await.map(drop) }
        });
        tokio::time::sleep(QUEUE_WAIT / 5).await;
        drop(held);
        waiting.await.unwrap().expect("served once the place freed");
    }
}
