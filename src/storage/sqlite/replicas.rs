use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{BEGIN_WRITE, SqliteStore, to_micros};
use crate::storage::{ReplicaStore, StoreError};

#[async_trait]
impl ReplicaStore for SqliteStore {
    async fn replica_heartbeat(
        &self,
        replica: Uuid,
        now: DateTime<Utc>,
        live_since: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let now = to_micros(now);
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        sqlx::query(
            "INSERT INTO replicas (replica_id, start_time, seen_time) VALUES (?1, ?2, ?2) \
             ON CONFLICT (replica_id) DO UPDATE SET seen_time = excluded.seen_time",
        )
        .bind(replica)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM replicas WHERE seen_time < ?1 - 3600000000")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let live: i64 = sqlx::query_scalar("SELECT count(*) FROM replicas WHERE seen_time >= ?1")
            .bind(to_micros(live_since))
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(u32::try_from(live).unwrap_or(u32::MAX).max(1))
    }

    async fn replica_leave(&self, replica: Uuid) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        sqlx::query("DELETE FROM replicas WHERE replica_id = ?1")
            .bind(replica)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
