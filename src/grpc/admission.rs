//! Load shedding: a bound on the calls one replica works on at once.
//!
//! Past what the machine can serve, queueing only adds latency: every call
//! waits longer, callers time out and retry, and the work done for calls
//! nobody waits for any more is wasted. So a replica admits at most
//! `max_concurrent_calls`; the next one is refused at once with
//! `UNAVAILABLE` and a `RetryInfo` (gRPC clients retry it with backoff, a
//! load balancer sends it to another replica), and the calls admitted keep
//! their latency. Streaming calls hold their place only while they are set
//! up, not while they stream. Health checks and reflection do not pass
//! through the gate: a busy replica is still alive.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// What a refused caller is told to wait before retrying.
const RETRY_AFTER: Duration = Duration::from_millis(50);

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

    /// A place for one call, or the status that refuses it.
    pub(super) fn admit(&self, rpc: &'static str) -> Result<OwnedSemaphorePermit, Status> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
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
