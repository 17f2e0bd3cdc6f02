//! Per-tenant models on SQLite. Lessons add deltas under the model row's
//! lock, so concurrent lessons all count and versions follow commit order.

use async_trait::async_trait;

use super::{BEGIN_WRITE, SqliteStore, audit, to_micros};
use crate::domain::{ModelKind, TenantId};
use crate::storage::{LearnOutcome, Lesson, ModelStore, StoreError, StoredModel};

#[async_trait]
impl ModelStore for SqliteStore {
    async fn load_model(
        &self,
        tenant: TenantId,
        kind: ModelKind,
        after_version: i64,
    ) -> Result<StoredModel, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some((version, bias, positive_examples, negative_examples)) =
            sqlx::query_as::<_, (i64, f64, i64, i64)>(
                "SELECT version, bias, positive_examples, negative_examples FROM models \
                 WHERE tenant_id = ?1 AND kind = ?2",
            )
            .bind(tenant.as_uuid())
            .bind(kind.as_str())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(StoredModel::default());
        };
        let weights = sqlx::query_as::<_, (i64, f64)>(
            "SELECT feature, weight FROM model_weights \
             WHERE tenant_id = ?1 AND kind = ?2 AND version > ?3",
        )
        .bind(tenant.as_uuid())
        .bind(kind.as_str())
        .bind(after_version)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(f, w)| (f as u32, w))
        .collect();
        tx.commit().await?;
        Ok(StoredModel {
            version,
            bias,
            positive_examples,
            negative_examples,
            weights,
        })
    }

    async fn model_versions(&self) -> Result<Vec<(TenantId, ModelKind, i64)>, StoreError> {
        crate::storage::model_versions(
            sqlx::query_as("SELECT tenant_id, kind, version FROM models")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    #[tracing::instrument(skip_all, fields(%tenant, kind = lesson.kind.as_str()))]
    async fn learn(
        &self,
        tenant: TenantId,
        lesson: &Lesson<'_>,
    ) -> Result<LearnOutcome, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        if let Some((comment_id, label)) = lesson.comment {
            // Inserting or changing the label row locks it: two replicas
            // teaching the same label for one comment teach it once. A new
            // category for a comment already taught toxic teaches nothing.
            let changed = sqlx::query(
                "INSERT INTO model_labels \
                     (tenant_id, kind, comment_id, positive, category, source, actor, create_time) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (tenant_id, kind, comment_id) DO UPDATE \
                 SET positive = excluded.positive, category = excluded.category, source = excluded.source, \
                     actor = excluded.actor, create_time = excluded.create_time \
                 WHERE model_labels.positive <> excluded.positive",
            )
            .bind(tenant.as_uuid())
            .bind(lesson.kind.as_str())
            .bind(comment_id.as_uuid())
            .bind(label.positive())
            .bind(label.category().map(|c| c.name()))
            .bind(lesson.source.as_str())
            .bind(lesson.actor.as_str())
            .bind(to_micros(lesson.now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                return Ok(LearnOutcome::AlreadyLearned);
            }
        }
        // The model row's lock serialises the tenant's updates, so versions
        // are handed out in commit order.
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO models \
                 (tenant_id, kind, version, bias, positive_examples, negative_examples, update_time) \
             VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6) \
             ON CONFLICT (tenant_id, kind) DO UPDATE \
             SET version = models.version + 1, bias = models.bias + excluded.bias, \
                 positive_examples = models.positive_examples + excluded.positive_examples, \
                 negative_examples = models.negative_examples + excluded.negative_examples, \
                 update_time = excluded.update_time \
             RETURNING version",
        )
        .bind(tenant.as_uuid())
        .bind(lesson.kind.as_str())
        .bind(lesson.update.bias)
        .bind(lesson.positive_examples)
        .bind(lesson.negative_examples)
        .bind(to_micros(lesson.now))
        .fetch_one(&mut *tx)
        .await?;
        // One statement for any number of weights: the deltas travel as a
        // JSON array of [feature, delta] pairs.
        let deltas = serde_json::to_string(&lesson.update.weights)
            .map_err(|e| StoreError::Unexpected(anyhow::anyhow!("encoding weights: {e}")))?;
        sqlx::query(
            "INSERT INTO model_weights (tenant_id, kind, feature, weight, version) \
             SELECT ?1, ?2, json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?4 \
             FROM json_each(?3) WHERE true \
             ON CONFLICT (tenant_id, kind, feature) DO UPDATE \
             SET weight = model_weights.weight + excluded.weight, version = excluded.version",
        )
        .bind(tenant.as_uuid())
        .bind(lesson.kind.as_str())
        .bind(deltas)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        audit(&mut tx, tenant, lesson.now, lesson.audit_event(version)).await?;
        tx.commit().await?;
        Ok(LearnOutcome::Learned { version })
    }
}
