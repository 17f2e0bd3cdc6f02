//! Authors on Postgres. The author-facts query answers a whole batch of
//! look-ups in one round trip: two key look-ups and one short index scan
//! per look-up.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{PostgresStore, audit, begin, comment_from_row};
use crate::domain::{Standing, TenantId};
use crate::pipeline::spam::history;
use crate::storage::{
    AuthorFacts, AuthorRecord, AuthorStore, Erased, Erasure, HistoryLookup, RecentEntry,
    StandingChange, StoreError, erased_event, erased_reasons, exported_event, standing_term,
};

#[async_trait]
impl AuthorStore for PostgresStore {
    #[tracing::instrument(skip_all, fields(lookups = lookups.len()))]
    async fn author_facts(
        &self,
        lookups: &[HistoryLookup],
    ) -> Result<Vec<AuthorFacts>, StoreError> {
        // Per look-up, one row: the facts row and the standing by key, and
        // the count of the same text by others (comments_by_text_hash).
        let rows = sqlx::query(
            "SELECT q.ord - 1 AS ord, f.recent, \
                (SELECT count(*) FROM (SELECT 1 FROM comments c \
                    WHERE c.tenant_id = q.tenant_id AND c.text_hash = q.text_hash \
                      AND c.create_time >= q.since AND c.author_id <> q.author_id \
                    LIMIT $5) same_text) AS others, \
                s.standing, s.until AS standing_until \
             FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::timestamptz[]) \
                WITH ORDINALITY AS q(tenant_id, author_id, text_hash, since, ord) \
             LEFT JOIN author_facts f ON f.tenant_id = q.tenant_id AND f.author_id = q.author_id \
             LEFT JOIN author_standings s \
                ON s.tenant_id = q.tenant_id AND s.author_id = q.author_id \
             ORDER BY q.ord",
        )
        .bind(
            lookups
                .iter()
                .map(|l| l.tenant.as_uuid())
                .collect::<Vec<_>>(),
        )
        .bind(
            lookups
                .iter()
                .map(|l| l.author.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(lookups.iter().map(|l| l.exact).collect::<Vec<_>>())
        .bind(lookups.iter().map(|l| l.since).collect::<Vec<_>>())
        .bind(i64::from(history::SAME_TEXT_CAP))
        .fetch_all(&self.pool)
        .await?;
        let rows = rows
            .into_iter()
            .map(|row| {
                Ok(crate::storage::HistoryRow {
                    ord: row.try_get("ord")?,
                    recent: row.try_get("recent")?,
                    others: row.try_get("others")?,
                    standing: row.try_get("standing")?,
                    standing_until: row.try_get("standing_until")?,
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
        let mut tx = begin(&self.pool).await?;
        // The row lock orders concurrent changes of one author.
        let before: Option<(String, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT standing, until FROM author_standings \
             WHERE tenant_id = $1 AND author_id = $2 FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(author)
        .fetch_optional(&mut *tx)
        .await?;
        let from = standing_term(before)?.at(change.now);
        sqlx::query(
            "INSERT INTO author_standings \
             (tenant_id, author_id, standing, until, reason, set_by, update_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id, author_id) DO UPDATE SET standing = $3, until = $4, \
             reason = $5, set_by = $6, update_time = $7",
        )
        .bind(tenant.as_uuid())
        .bind(author)
        .bind(change.term.standing.as_str())
        .bind(change.term.until)
        .bind(change.reason)
        .bind(change.actor.as_str())
        .bind(change.now)
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
        // One snapshot for the three reads.
        let mut tx = begin(&self.pool).await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let standing = sqlx::query(
            "SELECT standing, until, reason, set_by, update_time FROM author_standings \
             WHERE tenant_id = $1 AND author_id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(author)
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| {
            Ok::<_, StoreError>(Standing {
                term: standing_term(Some((row.try_get("standing")?, row.try_get("until")?)))?,
                reason: row.try_get("reason")?,
                set_by: row.try_get("set_by")?,
                update_time: row.try_get("update_time")?,
            })
        })
        .transpose()?;
        let counts: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT approved, pending_review, rejected FROM author_facts \
             WHERE tenant_id = $1 AND author_id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(author)
        .fetch_optional(&mut *tx)
        .await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments c WHERE c.tenant_id = $1 AND c.author_id = $2 \
             ORDER BY c.create_time DESC, c.comment_id DESC LIMIT $3"
        ))
        .bind(tenant.as_uuid())
        .bind(author)
        .bind(i64::from(recent))
        .fetch_all(&mut *tx)
        .await?;
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
        let mut tx = begin(&self.pool).await?;
        // The row locks order this erasure after any decision in flight on
        // these comments (and a second erasure after this one).
        let rows: Vec<(uuid::Uuid, String)> = sqlx::query_as(
            "SELECT comment_id, reasons FROM comments \
             WHERE tenant_id = $1 AND author_id = $2 AND erase_time IS NULL FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(author)
        .fetch_all(&mut *tx)
        .await?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut reasons = Vec::with_capacity(rows.len());
        for (id, stored) in rows {
            ids.push(id);
            reasons.push(erased_reasons(&stored)?);
        }
        sqlx::query(
            "UPDATE comments c SET body = $3, original_body = NULL, author_display_name = '', \
                author_ip = NULL, text_hash = NULL, simhash = NULL, reasons = e.reasons, \
                erase_time = $4, purge_time = COALESCE(c.purge_time, $4), update_time = $4 \
             FROM UNNEST($2::uuid[], $5::text[]) AS e(comment_id, reasons) \
             WHERE c.tenant_id = $1 AND c.comment_id = e.comment_id",
        )
        .bind(tenant.as_uuid())
        .bind(&ids)
        .bind(erasure.marker)
        .bind(erasure.now)
        .bind(&reasons)
        .execute(&mut *tx)
        .await?;
        let reports = sqlx::query(
            "UPDATE comment_reports SET detail = '', erase_time = $3 \
             WHERE tenant_id = $1 AND erase_time IS NULL AND (reporter_id = $2 OR comment_id IN \
                (SELECT comment_id FROM comments WHERE tenant_id = $1 AND author_id = $2))",
        )
        .bind(tenant.as_uuid())
        .bind(author)
        .bind(erasure.now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let recent: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT recent FROM author_facts WHERE tenant_id = $1 AND author_id = $2 FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(author)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(recent) = recent {
            sqlx::query(
                "UPDATE author_facts SET recent = $3 WHERE tenant_id = $1 AND author_id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(author)
            .bind(RecentEntry::without_fingerprints(&recent))
            .execute(&mut *tx)
            .await?;
        }
        let erased = Erased {
            comments: ids.len() as u64,
            reports,
        };
        if erased.comments == 0 && erased.reports == 0 {
            let known: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM comments WHERE tenant_id = $1 AND author_id = $2) \
                    OR EXISTS (SELECT 1 FROM comment_reports \
                        WHERE tenant_id = $1 AND reporter_id = $2) \
                    OR EXISTS (SELECT 1 FROM author_standings \
                        WHERE tenant_id = $1 AND author_id = $2)",
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
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = begin(&self.pool).await?;
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
/// `from` to its current one, inside the transaction that changes it (the
/// comment's row lock is held; the facts row is locked here): the counts
/// by status, and the status byte of its entry when it is among the
/// author's latest.
pub(super) async fn restatus(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    tenant: TenantId,
    comment: &crate::domain::Comment,
    from: crate::domain::CommentStatus,
) -> Result<(), StoreError> {
    // Entries are 33 bytes (`RecentEntry`): the id tag at 0, the status
    // at 32; only entry starts are compared.
    sqlx::query(
        "UPDATE author_facts SET recent = COALESCE(set_byte(recent, \
            (SELECT i * 33 + 32 FROM generate_series(0, length(recent) / 33 - 1) AS i \
             WHERE substring(recent FROM i * 33 + 1 FOR 8) = $3 LIMIT 1), $4), recent), \
            approved = approved + ($5 = 'approved')::int - ($6 = 'approved')::int, \
            pending_review = pending_review + ($5 = 'pending_review')::int \
                - ($6 = 'pending_review')::int, \
            rejected = rejected + ($5 = 'rejected')::int - ($6 = 'rejected')::int \
         WHERE tenant_id = $1 AND author_id = $2",
    )
    .bind(tenant.as_uuid())
    .bind(&comment.author_id)
    .bind(&crate::storage::RecentEntry::id_tag(comment.comment_id)[..])
    .bind(i32::from(crate::storage::RecentEntry::status_byte(
        comment.status,
    )))
    .bind(comment.status.as_str())
    .bind(from.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
