use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::PostgresStore;
use crate::storage::{ReplicaStore, StoreError};

#[async_trait]
impl ReplicaStore for PostgresStore {
    async fn replica_heartbeat(
        &self,
        replica: Uuid,
        now: DateTime<Utc>,
        live_since: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        // One statement: upsert our row, drop rows silent for an hour,
        // count the live ones (our own row counts from the snapshot's view
        // plus the one we wrote).
        let live: i64 = sqlx::query_scalar(
            "WITH seen AS ( \
                 INSERT INTO replicas (replica_id, start_time, seen_time) VALUES ($1, $2, $2) \
                 ON CONFLICT (replica_id) DO UPDATE SET seen_time = excluded.seen_time \
                 RETURNING replica_id \
             ), gone AS ( \
                 DELETE FROM replicas WHERE seen_time < $2 - interval '1 hour' \
             ) \
             SELECT 1 + count(*) FROM replicas \
             WHERE seen_time >= $3 AND replica_id <> $1",
        )
        .bind(replica)
        .bind(now)
        .bind(live_since)
        .fetch_one(&self.pool)
        .await?;
        Ok(u32::try_from(live).unwrap_or(u32::MAX).max(1))
    }

    async fn replica_leave(&self, replica: Uuid) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM replicas WHERE replica_id = $1")
            .bind(replica)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
