//! Retention: the text of comments past their tenant's retention is
//! replaced by a marker. The comment row, its decisions, its reasons (with
//! their spans, which then point into text that is gone) and the audit
//! trail stay: what was decided, when and why remains answerable; what the
//! reader wrote does not outlive the publisher's policy.

use std::time::Duration;

use super::Moderation;
use crate::storage::{Store, StoreError};

/// What a purged comment's `body` reads.
pub const RETENTION_MARKER: &str = "[removed after the retention period]";

/// How often a replica looks for comments to purge (one replica at a time
/// purges; the others find the work done or skip the round).
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

const BATCH: u32 = 1_000;

/// Purges everything past retention at `now`, in batches; returns how many
/// comments lost their text.
pub async fn purge_expired_bodies(
    store: &dyn Store,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let purged: u64 = store
            .purge_expired_bodies(now, RETENTION_MARKER, BATCH)
            .await?
            .iter()
            .map(|(_, n)| n)
            .sum();
        total += purged;
        if purged < u64::from(BATCH) {
            return Ok(total);
        }
    }
}

impl Moderation {
    /// Purges at start and every `RETENTION_INTERVAL` until aborted.
    pub async fn watch_retention(self) {
        let mut tick = tokio::time::interval(RETENTION_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match purge_expired_bodies(self.store().as_ref(), super::now()).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "removed the text of comments past retention"),
                Err(err) => tracing::warn!(error = %err, "retention purge failed; will retry"),
            }
        }
    }
}
