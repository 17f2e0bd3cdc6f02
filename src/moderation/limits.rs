//! Rates enforced in memory: per API key (and, through tenant settings, per
//! IP address). Each replica holds its own token buckets and grants its
//! share of a rate, the rate divided by the number of live replicas (they
//! announce themselves in the database every 2 s). With requests spread
//! evenly the shares add up to the rate; with an uneven spread a client
//! gets less than its rate, never more (beyond the one-second burst each
//! replica allows). Why not a shared counter: it would cost a database
//! write on every call, the one thing the submission path is built to
//! avoid. When a replica dies, the others count it for up to 10 s more,
//! so for that long clients get a little less than their rate.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How often a replica announces itself, and how long it counts as live
/// after its last announcement.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
pub const LIVE_FOR: Duration = Duration::from_secs(10);

/// Buckets idle for this long are forgotten (they would be full anyway).
const IDLE: Duration = Duration::from_secs(60);
/// Past this many buckets, idle ones are swept on the next take.
const SWEEP_AT: usize = 100_000;

/// Token buckets keyed by `K`, each refilled at its own rate.
pub(crate) struct Buckets<K> {
    buckets: Mutex<HashMap<K, Bucket>>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl<K: Eq + Hash + Clone> Buckets<K> {
    pub(crate) fn new() -> Self {
        Buckets {
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `key`'s bucket, which holds up to `burst`
    /// tokens and refills at `per_second`; when it is empty, how long
    /// until a token is back.
    pub(crate) fn take(
        &self,
        key: &K,
        per_second: f64,
        burst: f64,
        now: Instant,
    ) -> Result<(), Duration> {
        let burst = burst.max(1.0);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, b| now.duration_since(b.last) < IDLE);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

/// How many replicas share the in-memory rates; at least 1.
#[derive(Default)]
pub(crate) struct ReplicaCount(AtomicU32);

impl ReplicaCount {
    pub(crate) fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed).max(1)
    }

    pub(crate) fn set(&self, live: u32) {
        self.0.store(live.max(1), Ordering::Relaxed);
    }
}

/// A rate of `per_second` shared by `replicas`: this replica's refill rate
/// and burst (one second's worth, at least one call).
pub(crate) fn share(per_second: f64, replicas: u32) -> (f64, f64) {
    let mine = per_second / f64::from(replicas.max(1));
    (mine, mine.max(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let buckets = Buckets::new();
        let t0 = Instant::now();
        for _ in 0..10 {
            buckets.take(&"k", 10.0, 10.0, t0).unwrap();
        }
        let wait = buckets.take(&"k", 10.0, 10.0, t0).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        // 100 ms later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(100);
        buckets.take(&"k", 10.0, 10.0, t1).unwrap();
        assert!(buckets.take(&"k", 10.0, 10.0, t1).is_err());
        // Other keys have their own bucket.
        buckets.take(&"other", 10.0, 10.0, t1).unwrap();
    }

    #[test]
    fn replicas_split_a_rate_and_never_refuse_everything() {
        assert_eq!(share(100.0, 4), (25.0, 25.0));
        assert_eq!(share(2.0, 4), (0.5, 1.0));
        assert_eq!(share(100.0, 0), (100.0, 100.0));
    }
}
