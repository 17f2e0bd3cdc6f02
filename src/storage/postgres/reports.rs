//! Readers' reports on Postgres: the report, and the requeue it may
//! trigger, in one transaction.

use async_trait::async_trait;

use super::comments::comment_for_update;
use super::queue::{has_open_item, requeue_in};
use super::{PostgresStore, audit};
use crate::domain::TenantId;
use crate::storage::{
    NewReport, ReportOutcome, ReportRecord, ReportStore, StoreError, report_record,
};

#[async_trait]
impl ReportStore for PostgresStore {
    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn report_comment(
        &self,
        tenant: TenantId,
        report: &NewReport<'_>,
    ) -> Result<ReportOutcome, StoreError> {
        let mut tx = super::begin_appending(&self.pool).await?;
        let Some(mut comment) = comment_for_update(&mut tx, tenant, report.comment_id).await?
        else {
            return Ok(ReportOutcome::NotFound);
        };
        let duplicate: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM comment_reports \
             WHERE tenant_id = $1 AND comment_id = $2 AND reporter_id = $3",
        )
        .bind(tenant.as_uuid())
        .bind(report.comment_id.as_uuid())
        .bind(report.reporter)
        .fetch_optional(&mut *tx)
        .await?;
        if duplicate.is_some() {
            let reports: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM comment_reports WHERE tenant_id = $1 AND comment_id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(report.comment_id.as_uuid())
            .fetch_one(&mut *tx)
            .await?;
            return Ok(ReportOutcome::Duplicate { comment, reports });
        }
        let recent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM comment_reports \
             WHERE tenant_id = $1 AND reporter_id = $2 AND create_time >= $3",
        )
        .bind(tenant.as_uuid())
        .bind(report.reporter)
        .bind(report.recent_since)
        .fetch_one(&mut *tx)
        .await?;
        if recent >= i64::from(report.max_recent) {
            return Ok(ReportOutcome::RateLimited);
        }
        sqlx::query(
            "INSERT INTO comment_reports \
             (tenant_id, comment_id, reporter_id, reason, detail, create_time) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant.as_uuid())
        .bind(report.comment_id.as_uuid())
        .bind(report.reporter)
        .bind(report.reason.as_str())
        .bind(report.detail)
        .bind(report.now)
        .execute(&mut *tx)
        .await?;
        let counts: Vec<(String, i64)> = sqlx::query_as(
            "SELECT reason, count(*) FROM comment_reports \
             WHERE tenant_id = $1 AND comment_id = $2 GROUP BY reason",
        )
        .bind(tenant.as_uuid())
        .bind(report.comment_id.as_uuid())
        .fetch_all(&mut *tx)
        .await?;
        let reports: i64 = counts.iter().map(|(_, n)| n).sum();
        let open_item = has_open_item(&mut tx, tenant, report.comment_id).await?;
        audit(
            &mut tx,
            tenant,
            report.now,
            crate::storage::reported_event(report, reports),
        )
        .await?;
        let requeue = crate::domain::report_consequence(
            &comment,
            report.reason,
            report.threshold,
            report.hide,
            &counts,
            open_item,
        );
        if let Some(requeue) = &requeue {
            let from = comment.status;
            requeue_in(&mut tx, tenant, &mut comment, requeue.clone(), report.now).await?;
            audit(
                &mut tx,
                tenant,
                report.now,
                crate::storage::requeued_event(report, &comment, from, requeue, reports),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(ReportOutcome::Recorded {
            comment,
            reports,
            requeued: requeue.is_some(),
        })
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn reports_by(
        &self,
        tenant: TenantId,
        reporter: &str,
    ) -> Result<Vec<ReportRecord>, StoreError> {
        let rows: Vec<(uuid::Uuid, String, String, chrono::DateTime<chrono::Utc>)> =
            sqlx::query_as(
                "SELECT comment_id, reason, detail, create_time FROM comment_reports \
                 WHERE tenant_id = $1 AND reporter_id = $2 ORDER BY create_time, comment_id",
            )
            .bind(tenant.as_uuid())
            .bind(reporter)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|(id, reason, detail, at)| report_record(id, &reason, detail, at))
            .collect()
    }
}
