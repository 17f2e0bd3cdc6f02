//! Replicas announcing themselves: each refreshes its row every few seconds,
//! and the number of rows seen recently is how many replicas share the
//! limits that are enforced in memory (per-key and per-IP rates).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;

#[async_trait]
pub trait ReplicaStore: Send + Sync {
    /// Records that `replica` is alive at `now` and returns how many
    /// replicas were seen since `live_since` (itself included). Rows not
    /// seen for an hour are removed on the way.
    async fn replica_heartbeat(
        &self,
        replica: Uuid,
        now: DateTime<Utc>,
        live_since: DateTime<Utc>,
    ) -> Result<u32, StoreError>;
    /// A replica stopping: the others stop counting it at once.
    async fn replica_leave(&self, replica: Uuid) -> Result<(), StoreError>;
}
