//! Per-tenant models on Postgres. Lessons add deltas under the model row's
//! lock, so lessons from several replicas all count and versions follow
//! commit order.

use async_trait::async_trait;

use super::{PostgresStore, audit, begin};
use crate::domain::{ModelKind, TenantId};
use crate::storage::{LearnOutcome, Lesson, ModelStore, StoreError, StoredModel};

#[async_trait]
impl ModelStore for PostgresStore {
    async fn load_model(
        &self,
        tenant: TenantId,
        kind: ModelKind,
        after_version: i64,
    ) -> Result<StoredModel, StoreError> {
        // The model row first: weights read afterwards may be newer than its
        // version, never older, and are read again at the next load.
        let Some((version, bias, positive_examples, negative_examples)) =
            sqlx::query_as::<_, (i64, f64, i64, i64)>(
                "SELECT version, bias, positive_examples, negative_examples FROM models \
                 WHERE tenant_id = $1 AND kind = $2",
            )
            .bind(tenant.as_uuid())
            .bind(kind.as_str())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(StoredModel::default());
        };
        let weights = sqlx::query_as::<_, (i32, f64)>(
            "SELECT feature, weight FROM model_weights \
             WHERE tenant_id = $1 AND kind = $2 AND version > $3",
        )
        .bind(tenant.as_uuid())
        .bind(kind.as_str())
        .bind(after_version)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|(f, w)| (f as u32, w))
        .collect();
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
        let mut tx = begin(&self.pool).await?;
        if let Some((comment_id, label)) = lesson.comment {
            // Inserting or changing the label row locks it: two replicas
            // teaching the same label for one comment teach it once. A new
            // category for a comment already taught toxic teaches nothing.
            let changed = sqlx::query(
                "INSERT INTO model_labels \
                     (tenant_id, kind, comment_id, positive, category, source, actor, create_time) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (tenant_id, kind, comment_id) DO UPDATE \
                 SET positive = EXCLUDED.positive, category = EXCLUDED.category, source = EXCLUDED.source, \
                     actor = EXCLUDED.actor, create_time = EXCLUDED.create_time \
                 WHERE model_labels.positive <> EXCLUDED.positive",
            )
            .bind(tenant.as_uuid())
            .bind(lesson.kind.as_str())
            .bind(comment_id.as_uuid())
            .bind(label.positive())
            .bind(label.category().map(|c| c.name()))
            .bind(lesson.source.as_str())
            .bind(lesson.actor.as_str())
            .bind(lesson.now)
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
             VALUES ($1, $2, 1, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, kind) DO UPDATE \
             SET version = models.version + 1, bias = models.bias + EXCLUDED.bias, \
                 positive_examples = models.positive_examples + EXCLUDED.positive_examples, \
                 negative_examples = models.negative_examples + EXCLUDED.negative_examples, \
                 update_time = EXCLUDED.update_time \
             RETURNING version",
        )
        .bind(tenant.as_uuid())
        .bind(lesson.kind.as_str())
        .bind(lesson.update.bias)
        .bind(lesson.positive_examples)
        .bind(lesson.negative_examples)
        .bind(lesson.now)
        .fetch_one(&mut *tx)
        .await?;
        let (features, deltas): (Vec<i32>, Vec<f64>) = lesson
            .update
            .weights
            .iter()
            .map(|&(f, d)| (f as i32, d))
            .unzip();
        sqlx::query(
            "INSERT INTO model_weights (tenant_id, kind, feature, weight, version) \
             SELECT $1, $2, f, d, $5 FROM UNNEST($3::int4[], $4::float8[]) AS t(f, d) \
             ON CONFLICT (tenant_id, kind, feature) DO UPDATE \
             SET weight = model_weights.weight + EXCLUDED.weight, version = EXCLUDED.version",
        )
        .bind(tenant.as_uuid())
        .bind(lesson.kind.as_str())
        .bind(&features)
        .bind(&deltas)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        audit(&mut tx, tenant, lesson.now, lesson.audit_event(version)).await?;
        tx.commit().await?;
        Ok(LearnOutcome::Learned { version })
    }
}
