//! Authors on SQLite. The author-facts query is two key look-ups and one
//! short index search per look-up.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row as _, Sqlite};

use super::{
    BEGIN_WRITE, SqliteStore, audit, comment_from_row, from_micros, optional_time_column,
    time_column, to_micros,
};
use crate::domain::{Standing, TenantId};
use crate::pipeline::spam::history;
use crate::storage::{
    AuthorFacts, AuthorRecord, AuthorStore, Erased, Erasure, HistoryLookup, RecentEntry,
    StandingChange, StoreError, erased_event, erased_reasons, exported_event, standing_term,
};

#[async_trait]
impl AuthorStore for SqliteStore {
    #[tracing::instrument(skip_all, fields(lookups = lookups.len()))]
    async fn author_facts(
        &self,
        lookups: &[HistoryLookup],
    ) -> Result<Vec<AuthorFacts>, StoreError> {
        if lookups.is_empty() {
            return Ok(Vec::new());
        }
        // Per look-up, one row: the facts row and the standing by key, and
        // the count of the same text by others. No LATERAL in SQLite: a
        // correlated `rowid IN` subquery keeps the count an index search
        // with its own LIMIT.
        let mut query =
            QueryBuilder::<Sqlite>::new("WITH q(ord, tenant_id, author_id, text_hash, since) AS (");
        query.push_values(lookups.iter().enumerate(), |mut values, (ord, l)| {
            values
                .push_bind(ord as i64)
                .push_bind(l.tenant.as_uuid())
                .push_bind(l.author.clone())
                .push_bind(l.exact)
                .push_bind(to_micros(l.since));
        });
        query
            .push(
                ") SELECT q.ord, f.recent, ( \
                    SELECT count(*) FROM comments WHERE rowid IN ( \
                        SELECT rowid FROM comments \
                        WHERE tenant_id = q.tenant_id AND text_hash = q.text_hash \
                          AND create_time >= q.since AND author_id <> q.author_id LIMIT ",
            )
            .push(history::SAME_TEXT_CAP)
            .push(
                ")) AS others, s.standing, s.until AS standing_until FROM q \
                 LEFT JOIN author_facts f ON f.tenant_id = q.tenant_id AND f.author_id = q.author_id \
                 LEFT JOIN author_standings s \
                    ON s.tenant_id = q.tenant_id AND s.author_id = q.author_id \
                 ORDER BY q.ord",
            );
        let rows = query.build().fetch_all(&self.pool).await?;
        let rows = rows
            .into_iter()
            .map(|row| {
                Ok(crate::storage::HistoryRow {
                    ord: row.try_get("ord")?,
                    recent: row.try_get("recent")?,
                    others: row.try_get("others")?,
                    standing: row.try_get("standing")?,
                    standing_until: row
                        .try_get::<Option<i64>, _>("standing_until")?
                        .map(from_micros)
                        .transpose()?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        crate::storage::author_facts_from_rows(lookups.len(), rows)
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn set_author_standing(
        &self,
        tenant: TenantId,
        author: &str,
        change: &StandingChange<'_>,
    ) -> Result<Standing, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let before: Option<(String, Option<i64>)> = sqlx::query_as(
            "SELECT standing, until FROM author_standings WHERE tenant_id = ?1 AND author_id = ?2",
        )
        .bind(tenant.as_uuid())
        .bind(author)
        .fetch_optional(&mut *tx)
        .await?;
        let before = before
            .map(|(standing, until)| {
                Ok::<_, StoreError>((standing, until.map(from_micros).transpose()?))
            })
            .transpose()?;
        let from = standing_term(before)?.at(change.now);
        sqlx::query(
            "INSERT INTO author_standings \
             (tenant_id, author_id, standing, until, reason, set_by, update_time) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (tenant_id, author_id) DO UPDATE SET standing = ?3, until = ?4, \
             reason = ?5, set_by = ?6, update_time = ?7",
        )
        .bind(tenant.as_uuid())
        .bind(author)
        .bind(change.term.standing.as_str())
        .bind(change.term.until.map(to_micros))
        .bind(change.reason)
        .bind(change.actor.as_str())
        .bind(to_micros(change.now))
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            tenant,
            change.now,
            crate::storage::standing_event(author, from, change),
        )
        .await?;
        tx.commit().await?;
        Ok(Standing {
            term: change.term,
            reason: change.reason.to_owned(),
            set_by: change.actor.as_str().to_owned(),
            update_time: change.now,
        })
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn get_author(
        &self,
        tenant: TenantId,
        author: &str,
        recent: u32,
    ) -> Result<Option<AuthorRecord>, StoreError> {
        // One read transaction: one snapshot for the three reads.
        let mut tx = self.pool.begin().await?;
        let standing = sqlx::query(
            "SELECT standing, until, reason, set_by, update_time FROM author_standings \
             WHERE tenant_id = ?1 AND author_id = ?2",
        )
        .bind(tenant.as_uuid())
        .bind(author)
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| {
            let until = optional_time_column(&row, "until")?;
            Ok::<_, StoreError>(Standing {
                term: standing_term(Some((row.try_get("standing")?, until)))?,
                reason: row.try_get("reason")?,
                set_by: row.try_get("set_by")?,
                update_time: time_column(&row, "update_time")?,
            })
        })
        .transpose()?;
        let counts: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT approved, pending_review, rejected FROM author_facts \
             WHERE tenant_id = ?1 AND author_id = ?2",
        )
        .bind(tenant.as_uuid())
        .bind(author)
        .fetch_optional(&mut *tx)
        .await?;
        let mut query = QueryBuilder::<Sqlite>::new(concat!("SELECT ", comment_columns!()));
        query
            .push(" FROM comments c WHERE c.tenant_id = ")
            .push_bind(tenant.as_uuid())
            .push(" AND c.author_id = ")
            .push_bind(author.to_owned())
            // A literal: a bound LIMIT re-prepares the statement every run.
            .push(" ORDER BY c.create_time DESC, c.comment_id DESC LIMIT ")
            .push(recent);
        let rows = query.build().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let recent = rows
            .iter()
            .map(comment_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::storage::author_record(standing, recent, counts))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn erase_author(
        &self,
        tenant: TenantId,
        author: &str,
        erasure: &Erasure<'_>,
    ) -> Result<Option<Erased>, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let now = to_micros(erasure.now);
        let rows: Vec<(uuid::Uuid, String)> = sqlx::query_as(
            "SELECT comment_id, reasons FROM comments \
             WHERE tenant_id = ?1 AND author_id = ?2 AND erase_time IS NULL",
        )
        .bind(tenant.as_uuid())
        .bind(author)
        .fetch_all(&mut *tx)
        .await?;
        for (id, stored) in &rows {
            sqlx::query(
                "UPDATE comments SET body = ?3, original_body = NULL, author_display_name = '', \
                    author_ip = NULL, text_hash = NULL, simhash = NULL, reasons = ?4, \
                    erase_time = ?5, purge_time = COALESCE(purge_time, ?5), update_time = ?5 \
                 WHERE tenant_id = ?1 AND comment_id = ?2",
            )
            .bind(tenant.as_uuid())
            .bind(id)
            .bind(erasure.marker)
            .bind(erased_reasons(stored)?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let reports = sqlx::query(
            "UPDATE comment_reports SET detail = '', erase_time = ?3 \
             WHERE tenant_id = ?1 AND erase_time IS NULL AND (reporter_id = ?2 OR comment_id IN \
                (SELECT comment_id FROM comments WHERE tenant_id = ?1 AND author_id = ?2))",
        )
        .bind(tenant.as_uuid())
        .bind(author)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let recent: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT recent FROM author_facts WHERE tenant_id = ?1 AND author_id = ?2",
        )
        .bind(tenant.as_uuid())
        .bind(author)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(recent) = recent {
            sqlx::query(
                "UPDATE author_facts SET recent = ?3 WHERE tenant_id = ?1 AND author_id = ?2",
            )
            .bind(tenant.as_uuid())
            .bind(author)
            .bind(RecentEntry::without_fingerprints(&recent))
            .execute(&mut *tx)
            .await?;
        }
        let erased = Erased {
            comments: rows.len() as u64,
            reports,
        };
        if erased.comments == 0 && erased.reports == 0 {
            let known: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM comments WHERE tenant_id = ?1 AND author_id = ?2) \
                    OR EXISTS (SELECT 1 FROM comment_reports \
                        WHERE tenant_id = ?1 AND reporter_id = ?2) \
                    OR EXISTS (SELECT 1 FROM author_standings \
                        WHERE tenant_id = ?1 AND author_id = ?2)",
            )
            .bind(tenant.as_uuid())
            .bind(author)
            .fetch_one(&mut *tx)
            .await?;
            if !known {
                return Ok(None);
            }
        }
        audit(
            &mut tx,
            tenant,
            erasure.now,
            erased_event(erasure.actor, author, &erased),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(erased))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn audit_author_export(
        &self,
        tenant: TenantId,
        author: &str,
        (comments, reports): (usize, usize),
        actor: &crate::domain::Actor,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        audit(
            &mut tx,
            tenant,
            now,
            exported_event(actor, author, comments, reports),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Records in its author's facts row that `comment` went from status
/// `from` to its current one, inside the write transaction that changes
/// it: the counts by status, and the status byte of its entry when it is
/// among the author's latest.
pub(super) async fn restatus(
    tx: &mut sqlx::Transaction<'static, Sqlite>,
    tenant: TenantId,
    comment: &crate::domain::Comment,
    from: crate::domain::CommentStatus,
) -> Result<(), StoreError> {
    let recent: Option<Vec<u8>> = sqlx::query_scalar(
        "SELECT recent FROM author_facts WHERE tenant_id = ?1 AND author_id = ?2",
    )
    .bind(tenant.as_uuid())
    .bind(&comment.author_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(recent) = recent else {
        return Ok(());
    };
    let recent = crate::storage::RecentEntry::restatus(&recent, comment.comment_id, comment.status)
        .unwrap_or(recent);
    sqlx::query(
        "UPDATE author_facts SET recent = ?3, \
            approved = approved + (?4 = 'approved') - (?5 = 'approved'), \
            pending_review = pending_review + (?4 = 'pending_review') - (?5 = 'pending_review'), \
            rejected = rejected + (?4 = 'rejected') - (?5 = 'rejected') \
         WHERE tenant_id = ?1 AND author_id = ?2",
    )
    .bind(tenant.as_uuid())
    .bind(&comment.author_id)
    .bind(recent)
    .bind(comment.status.as_str())
    .bind(from.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
