//! The production backend. Claims use `FOR UPDATE SKIP LOCKED`, so any number of
//! moderators and replicas can claim from one queue without waiting on each
//! other or ever sharing an item.

use std::collections::{HashMap, HashSet};
use std::str::FromStr as _;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Row as _, Transaction};
use uuid::Uuid;

use super::{
    AuditEvent, AuditQuery, AuditRecord, AuthorFacts, AuthorRecord, AuthorStore, Claim,
    CommentCursor, CommentQuery, CommentRows, CommentStore, DbOptions, DecideRejection, Decision,
    DecisionEvent, EventStore, HistoryLookup, InsertOutcome, LearnOutcome, Lesson, ModelStore,
    NewApiKey, NewCommentRecord, NewReport, QueueQuery, QueueStore, ReasonCodeSql,
    ReleaseRejection, Reopen, ReopenRejection, ReportOutcome, ReportStore, Requeue, RuleChange,
    RuleRecord, RuleRejection, RuleStore, StandingChange, Store, StoreError, StoredModel,
    TenantStore, decided_status, decision_reason, push_queue_conditions, standing_term,
};
use crate::domain::{
    Actor, ApiKeyInfo, Comment, CommentId, CommentStatus, FieldViolation, KeyHash, KeyId,
    ModelKind, ModerationMode, Principal, Reason, ReviewId, ReviewItem, Role, Rule, Standing,
    TenantId, TenantName, TenantSettings, TenantSettingsPatch,
};
use crate::pipeline::spam::history;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The advisory lock that makes decision-event numbering rounds exclusive
/// (an arbitrary constant: "moderato" in ASCII, truncated).
const SEQUENCER_LOCK: i64 = 0x6d6f_6465_7261_746f;

/// "The comment has a reason with this code", for queue filters.
const REASON_CODE_SQL: ReasonCodeSql = ReasonCodeSql {
    before: " AND c.reasons @> jsonb_build_array(jsonb_build_object('code', ",
    after: "::text))",
};

/// The columns `comment_from_row` reads, for `concat!` into static queries.
macro_rules! comment_columns {
    () => {
        "c.comment_id, c.article_id, c.author_id, c.body, c.original_body, c.status, \
         c.spam_score, c.reasons, c.create_time, c.update_time, c.client_comment_id, \
         c.author_display_name, c.parent_comment_id, c.language, c.version, c.toxicity_score"
    };
}

/// `SELECT … FROM` review items with their comment and the comment author's
/// standing (`review_item_from_row` reads it), for `concat!`.
macro_rules! review_items_from {
    () => {
        concat!(
            "SELECT r.review_id, r.priority, r.enqueue_time, r.lease_expire_time, r.claimed_by, \
             s.standing AS author_standing, s.until AS author_standing_until, ",
            comment_columns!(),
            " FROM review_items r \
             JOIN comments c ON c.tenant_id = r.tenant_id AND c.comment_id = r.comment_id \
             LEFT JOIN author_standings s \
                ON s.tenant_id = c.tenant_id AND s.author_id = c.author_id"
        )
    };
}

#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &str, options: &DbOptions) -> anyhow::Result<Self> {
        let connect = PgConnectOptions::from_str(url).context("parsing the Postgres url")?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .context("connecting to Postgres")?;
        Ok(PostgresStore { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

async fn audit(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    now: DateTime<Utc>,
    event: AuditEvent<'_>,
) -> Result<(), StoreError> {
    // The author of the comment, unless the event names one itself.
    sqlx::query(
        "INSERT INTO audit_events \
         (tenant_id, create_time, actor, action, subject_type, subject_id, from_state, to_state, \
          detail, comment_id, author_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, COALESCE($11, \
            (SELECT author_id FROM comments WHERE tenant_id = $1 AND comment_id = $10)))",
    )
    .bind(tenant.as_uuid())
    .bind(now)
    .bind(event.actor.as_str())
    .bind(event.action)
    .bind(event.subject_type)
    .bind(event.subject_id)
    .bind(event.from_state)
    .bind(event.to_state)
    .bind(Json(event.detail))
    .bind(event.comment_id.map(|id| id.as_uuid()))
    .bind(event.author_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn comment_from_row(row: &PgRow) -> Result<Comment, StoreError> {
    let status: String = row.try_get("status")?;
    let Json(reasons): Json<Vec<Reason>> = row.try_get("reasons")?;
    Ok(Comment {
        comment_id: CommentId::from_uuid(row.try_get("comment_id")?),
        article_id: row.try_get("article_id")?,
        author_id: row.try_get("author_id")?,
        body: row.try_get("body")?,
        original_body: row.try_get("original_body")?,
        status: CommentStatus::from_db(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("comment status {status:?}")))?,
        spam_score: row.try_get("spam_score")?,
        toxicity_score: row.try_get("toxicity_score")?,
        reasons,
        create_time: row.try_get("create_time")?,
        update_time: row.try_get("update_time")?,
        client_comment_id: row.try_get("client_comment_id")?,
        author_display_name: row.try_get("author_display_name")?,
        parent_comment_id: row
            .try_get::<Option<Uuid>, _>("parent_comment_id")?
            .map(CommentId::from_uuid),
        language: row.try_get("language")?,
        version: row.try_get("version")?,
    })
}

fn review_item_from_row(row: &PgRow) -> Result<ReviewItem, StoreError> {
    Ok(ReviewItem {
        review_id: ReviewId::from_uuid(row.try_get("review_id")?),
        comment: comment_from_row(row)?,
        priority: row.try_get("priority")?,
        enqueue_time: row.try_get("enqueue_time")?,
        lease_expire_time: row.try_get("lease_expire_time")?,
        claimed_by: row.try_get("claimed_by")?,
        author_standing: standing_term(
            row.try_get::<Option<String>, _>("author_standing")?
                .map(|s| Ok::<_, StoreError>((s, row.try_get("author_standing_until")?)))
                .transpose()?,
        )?,
    })
}

fn rule_from_row(row: &PgRow) -> Result<RuleRecord, StoreError> {
    let Json(rule): Json<Rule> = row.try_get("definition")?;
    Ok(RuleRecord {
        rule,
        revision: row.try_get("revision")?,
        create_time: row.try_get("create_time")?,
        update_time: row.try_get("update_time")?,
    })
}

fn settings_from_row(row: &PgRow) -> Result<TenantSettings, StoreError> {
    let mode: String = row.try_get("moderation_mode")?;
    let max_body_chars: i32 = row.try_get("max_body_chars")?;
    Ok(TenantSettings {
        tenant_name: row.try_get("name")?,
        moderation_mode: ModerationMode::from_db(&mode)
            .ok_or_else(|| StoreError::Corrupt(format!("moderation mode {mode:?}")))?,
        review_threshold: row.try_get("review_threshold")?,
        reject_threshold: row.try_get("reject_threshold")?,
        max_body_chars: u32::try_from(max_body_chars)
            .map_err(|_| StoreError::Corrupt(format!("max_body_chars {max_body_chars}")))?,
        report_threshold: u32::try_from(row.try_get::<i32, _>("report_threshold")?)
            .map_err(|_| StoreError::Corrupt("report_threshold".into()))?,
        hide_reported: row.try_get("hide_reported")?,
        toxicity: super::toxicity_thresholds_from_json(
            row.try_get::<Option<Json<serde_json::Value>>, _>("toxicity_thresholds")?
                .map(|json| json.0),
        )?,
    })
}

fn key_from_row(row: &PgRow) -> Result<ApiKeyInfo, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(ApiKeyInfo {
        key_id: KeyId::from_uuid(row.try_get("key_id")?),
        role: Role::parse("role", &role)
            .map_err(|_| StoreError::Corrupt(format!("role {role:?}")))?,
        key_prefix: row.try_get("key_prefix")?,
        create_time: row.try_get("create_time")?,
        revoke_time: row.try_get("revoke_time")?,
    })
}

fn micros(t: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(t).ok_or_else(|| StoreError::Corrupt(format!("timestamp {t}")))
}

/// Writes comments, the queue items of the held ones, their audit rows and
/// their decision-stream events with one statement
/// (one round trip, atomic without an explicit transaction): the batch is
/// passed as arrays and unnested, and the rows `ON CONFLICT DO NOTHING`
/// skipped are idempotent retries, read back after.
async fn write_comments(
    pool: &PgPool,
    batch: &[(TenantId, NewCommentRecord<'_>)],
) -> Result<Vec<InsertOutcome>, StoreError> {
    let rows = CommentRows::new(batch)?;
    let column = |f: &dyn Fn(&super::CommentRow<'_>) -> Option<String>| -> Vec<Option<String>> {
        rows.rows.iter().map(f).collect()
    };
    let r = &rows.rows;
    let created: Vec<Uuid> = sqlx::query_scalar(
        "WITH input AS ( \
            SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], \
                $6::text[], $7::text[], $8::uuid[], $9::text[], $10::text[], $11::text[], \
                $12::float8[], $13::text[], $14::timestamptz[], $15::text[], $16::int8[], \
                $17::int8[], $18::uuid[], $19::int4[], $20::text[], $21::text[], $22::float8[]) \
            WITH ORDINALITY AS t(tenant_id, comment_id, client_comment_id, article_id, author_id, \
                author_display_name, author_ip, parent_comment_id, language, body, status, \
                spam_score, reasons, create_time, original_body, text_hash, simhash, review_id, \
                priority, actor, audit_detail, toxicity_score, ord)), \
         inserted AS ( \
            INSERT INTO comments (tenant_id, comment_id, client_comment_id, article_id, author_id, \
                author_display_name, author_ip, parent_comment_id, language, body, status, \
                spam_score, reasons, create_time, update_time, original_body, text_hash, simhash, \
                toxicity_score) \
            SELECT tenant_id, comment_id, client_comment_id, article_id, author_id, \
                author_display_name, author_ip, parent_comment_id, language, body, status, \
                spam_score, reasons::jsonb, create_time, create_time, original_body, text_hash, \
                simhash, toxicity_score \
            FROM input ORDER BY ord \
            ON CONFLICT (tenant_id, client_comment_id) WHERE client_comment_id IS NOT NULL \
            DO NOTHING \
            RETURNING tenant_id, comment_id), \
         queued AS ( \
            INSERT INTO review_items (tenant_id, review_id, comment_id, article_id, priority, \
                state, enqueue_time) \
            SELECT i.tenant_id, i.review_id, i.comment_id, i.article_id, i.priority, 'open', \
                i.create_time \
            FROM input i JOIN inserted USING (tenant_id, comment_id) \
            WHERE i.review_id IS NOT NULL ORDER BY i.ord), \
         audited AS ( \
            INSERT INTO audit_events (tenant_id, create_time, actor, action, subject_type, \
                subject_id, from_state, to_state, detail, comment_id, author_id) \
            SELECT i.tenant_id, i.create_time, i.actor, 'comment.created', 'comment', \
                i.comment_id::text, NULL, i.status, i.audit_detail::jsonb, \
                i.comment_id, i.author_id \
            FROM input i JOIN inserted USING (tenant_id, comment_id) ORDER BY i.ord), \
         streamed AS ( \
            INSERT INTO decision_events (tenant_id, comment_id, article_id, author_id, \
                from_status, to_status, queued, version, create_time) \
            SELECT i.tenant_id, i.comment_id, i.article_id, i.author_id, NULL, i.status, \
                i.review_id IS NOT NULL, 1, i.create_time \
            FROM input i JOIN inserted USING (tenant_id, comment_id) ORDER BY i.ord) \
         SELECT comment_id FROM inserted",
    )
    .bind(r.iter().map(|r| r.tenant.as_uuid()).collect::<Vec<_>>())
    .bind(
        r.iter()
            .map(|r| r.comment.comment_id.as_uuid())
            .collect::<Vec<_>>(),
    )
    .bind(column(&|r| r.comment.client_comment_id.clone()))
    .bind(
        r.iter()
            .map(|r| r.comment.article_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        r.iter()
            .map(|r| r.comment.author_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        r.iter()
            .map(|r| r.comment.author_display_name.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(column(&|r| r.author_ip.clone()))
    .bind(
        r.iter()
            .map(|r| r.comment.parent_comment_id.map(|id| id.as_uuid()))
            .collect::<Vec<_>>(),
    )
    .bind(
        r.iter()
            .map(|r| r.comment.language.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        r.iter()
            .map(|r| r.comment.body.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        r.iter()
            .map(|r| r.comment.status.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(r.iter().map(|r| r.comment.spam_score).collect::<Vec<_>>())
    .bind(
        r.iter()
            .map(|r| r.reasons_json.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(r.iter().map(|r| r.now).collect::<Vec<_>>())
    .bind(column(&|r| r.comment.original_body.clone()))
    .bind(r.iter().map(|r| r.fingerprint.exact).collect::<Vec<_>>())
    .bind(r.iter().map(|r| r.fingerprint.simhash).collect::<Vec<_>>())
    .bind(
        r.iter()
            .map(|r| r.review.map(|(id, _)| id.as_uuid()))
            .collect::<Vec<_>>(),
    )
    .bind(
        r.iter()
            .map(|r| r.review.map_or(0, |(_, priority)| priority))
            .collect::<Vec<_>>(),
    )
    .bind(r.iter().map(|r| r.audit.actor.as_str()).collect::<Vec<_>>())
    .bind(
        r.iter()
            .map(|r| r.audit.detail.to_string())
            .collect::<Vec<_>>(),
    )
    .bind(
        r.iter()
            .map(|r| r.comment.toxicity_score)
            .collect::<Vec<_>>(),
    )
    .fetch_all(pool)
    .await?;
    let created: HashSet<Uuid> = created.into_iter().collect();
    let mut existing = Vec::new();
    for (tenant, client_id) in rows.retries(&created) {
        // Committed, by this statement or an earlier one.
        let row = sqlx::query(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments c WHERE c.tenant_id = $1 AND c.client_comment_id = $2"
        ))
        .bind(tenant.as_uuid())
        .bind(client_id)
        .fetch_one(pool)
        .await?;
        existing.push(comment_from_row(&row)?);
    }
    Ok(rows.outcomes(&created, existing))
}

/// The comment, read inside `tx` locked until `tx` ends; `None` when the tenant has
/// no such comment.
async fn comment_for_update(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    comment_id: CommentId,
) -> Result<Option<Comment>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        comment_columns!(),
        " FROM comments c WHERE c.tenant_id = $1 AND c.comment_id = $2 FOR UPDATE"
    ))
    .bind(tenant.as_uuid())
    .bind(comment_id.as_uuid())
    .fetch_optional(&mut **tx)
    .await?
    .as_ref()
    .map(comment_from_row)
    .transpose()
}

/// Appends the decision-stream event of a change to `comment` (already
/// applied) inside `tx`; the sequencer numbers it once `tx` has committed.
async fn append_event(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    comment: &Comment,
    from: Option<CommentStatus>,
    queued: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO decision_events (tenant_id, comment_id, article_id, author_id, \
         from_status, to_status, queued, version, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(tenant.as_uuid())
    .bind(comment.comment_id.as_uuid())
    .bind(&comment.article_id)
    .bind(&comment.author_id)
    .bind(from.map(CommentStatus::as_str))
    .bind(comment.status.as_str())
    .bind(queued)
    .bind(comment.version)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Follows `channel` for as long as `deliver` accepts payloads and the pool
/// is open, reconnecting after a lost connection.
async fn listen(pool: &PgPool, channel: &str, what: &str, mut deliver: impl FnMut(&str) -> bool) {
    loop {
        // `Ok` once `deliver` has had enough.
        let result: Result<(), sqlx::Error> = async {
            let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
            listener.listen(channel).await?;
            loop {
                let notification = listener.recv().await?;
                if !deliver(notification.payload()) {
                    return Ok(());
                }
            }
        }
        .await;
        match result {
            Ok(()) => return,
            Err(_) if pool.is_closed() => return,
            Err(err) => {
                tracing::warn!(error = %err, "{what} listener lost its connection; retrying");
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Whether the comment has an open review item (held, or sent back).
async fn has_open_item(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    comment_id: CommentId,
) -> Result<bool, StoreError> {
    let open: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM review_items \
         WHERE tenant_id = $1 AND comment_id = $2 AND state = 'open'",
    )
    .bind(tenant.as_uuid())
    .bind(comment_id.as_uuid())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(open.is_some())
}

/// Queues `comment` again inside `tx`: a new open review item, the new
/// status, the reason appended and the version bumped, stored and applied
/// to `comment`. Returns the new item's id.
async fn requeue_in(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    comment: &mut Comment,
    requeue: Requeue,
    now: DateTime<Utc>,
) -> Result<ReviewId, StoreError> {
    let review_id = ReviewId::generate();
    sqlx::query(
        "INSERT INTO review_items (tenant_id, review_id, comment_id, article_id, priority, \
         state, enqueue_time) VALUES ($1, $2, $3, $4, $5, 'open', $6)",
    )
    .bind(tenant.as_uuid())
    .bind(review_id.as_uuid())
    .bind(comment.comment_id.as_uuid())
    .bind(&comment.article_id)
    .bind(requeue.priority)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let from = comment.status;
    comment.status = requeue.status;
    comment.reasons.push(requeue.reason);
    comment.update_time = now;
    comment.version += 1;
    sqlx::query(
        "UPDATE comments SET status = $3, reasons = $4, update_time = $5, \
         version = version + 1 WHERE tenant_id = $1 AND comment_id = $2",
    )
    .bind(tenant.as_uuid())
    .bind(comment.comment_id.as_uuid())
    .bind(comment.status.as_str())
    .bind(Json(&comment.reasons))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    append_event(tx, tenant, comment, Some(from), true, now).await?;
    Ok(review_id)
}

/// The `(tenant, version)` rows of a query replicas poll for changes.
async fn versions(pool: &PgPool, sql: &'static str) -> Result<Vec<(TenantId, i64)>, StoreError> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(sql).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(t, v)| (TenantId::from_uuid(t), v))
        .collect())
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        // The migrator holds a Postgres advisory lock while it runs, so replicas
        // starting together apply each migration once.
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl TenantStore for PostgresStore {
    #[tracing::instrument(skip_all)]
    async fn ensure_tenant(
        &self,
        name: &TenantName,
        now: DateTime<Utc>,
    ) -> Result<(TenantId, bool), StoreError> {
        let defaults = TenantSettings::defaults(name);
        let mut tx = self.pool.begin().await?;
        let created: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO tenants (tenant_id, name, moderation_mode, review_threshold, \
             reject_threshold, max_body_chars, report_threshold, hide_reported, create_time, \
             update_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $8, $9, $7, $7) \
             ON CONFLICT (name) DO NOTHING RETURNING tenant_id",
        )
        .bind(TenantId::generate().as_uuid())
        .bind(name.as_str())
        .bind(defaults.moderation_mode.as_str())
        .bind(defaults.review_threshold)
        .bind(defaults.reject_threshold)
        .bind(defaults.max_body_chars as i32)
        .bind(now)
        .bind(defaults.report_threshold as i32)
        .bind(defaults.hide_reported)
        .fetch_optional(&mut *tx)
        .await?;
        let result = match created {
            Some(id) => {
                let tenant = TenantId::from_uuid(id);
                audit(
                    &mut tx,
                    tenant,
                    now,
                    AuditEvent {
                        actor: &Actor::operator(),
                        action: "tenant.created",
                        subject_type: "tenant",
                        subject_id: tenant.to_string(),
                        from_state: None,
                        to_state: None,
                        detail: serde_json::json!({ "name": name.as_str() }),
                        comment_id: None,
                        author_id: None,
                    },
                )
                .await?;
                (tenant, true)
            }
            None => {
                let id: Uuid = sqlx::query_scalar("SELECT tenant_id FROM tenants WHERE name = $1")
                    .bind(name.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                (TenantId::from_uuid(id), false)
            }
        };
        tx.commit().await?;
        Ok(result)
    }

    async fn find_tenant(&self, name: &TenantName) -> Result<Option<TenantId>, StoreError> {
        let id: Option<Uuid> = sqlx::query_scalar("SELECT tenant_id FROM tenants WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(id.map(TenantId::from_uuid))
    }

    async fn count_tenants(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM tenants")
            .fetch_one(&self.pool)
            .await?)
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn tenant_settings(
        &self,
        tenant: TenantId,
    ) -> Result<Option<TenantSettings>, StoreError> {
        let row = sqlx::query(
            "SELECT name, moderation_mode, review_threshold, reject_threshold, max_body_chars, \
             report_threshold, hide_reported, toxicity_thresholds \
             FROM tenants WHERE tenant_id = $1",
        )
        .bind(tenant.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(settings_from_row).transpose()
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn update_tenant_settings(
        &self,
        tenant: TenantId,
        patch: &TenantSettingsPatch,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Result<TenantSettings, FieldViolation>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT name, moderation_mode, review_threshold, reject_threshold, max_body_chars, \
             report_threshold, hide_reported, toxicity_thresholds \
             FROM tenants WHERE tenant_id = $1 FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .fetch_one(&mut *tx)
        .await?;
        let current = settings_from_row(&row)?;
        let next = match current.apply(patch) {
            Ok(next) => next,
            Err(violation) => return Ok(Err(violation)),
        };
        sqlx::query(
            "UPDATE tenants SET moderation_mode = $2, review_threshold = $3, reject_threshold = $4, \
             max_body_chars = $5, update_time = $6, report_threshold = $7, hide_reported = $8, \
             toxicity_thresholds = $9 \
             WHERE tenant_id = $1",
        )
        .bind(tenant.as_uuid())
        .bind(next.moderation_mode.as_str())
        .bind(next.review_threshold)
        .bind(next.reject_threshold)
        .bind(next.max_body_chars as i32)
        .bind(now)
        .bind(next.report_threshold as i32)
        .bind(next.hide_reported)
        .bind(super::toxicity_thresholds_to_json(&next.toxicity).map(Json))
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            tenant,
            now,
            AuditEvent {
                actor,
                action: "tenant.settings_updated",
                subject_type: "tenant",
                subject_id: tenant.to_string(),
                from_state: None,
                to_state: None,
                detail: super::settings_change_detail(&current, &next),
                comment_id: None,
                author_id: None,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(next))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn create_api_key(
        &self,
        tenant: TenantId,
        key: &NewApiKey,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyInfo, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO api_keys (tenant_id, key_id, key_hash, key_prefix, role, create_time) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant.as_uuid())
        .bind(key.key_id.as_uuid())
        .bind(key.hash.as_bytes().as_slice())
        .bind(&key.key_prefix)
        .bind(key.role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            tenant,
            now,
            AuditEvent {
                actor,
                action: "api_key.created",
                subject_type: "api_key",
                subject_id: key.key_id.to_string(),
                from_state: None,
                to_state: Some("active"),
                detail: serde_json::json!({ "role": key.role.as_str() }),
                comment_id: None,
                author_id: None,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(ApiKeyInfo {
            key_id: key.key_id,
            role: key.role,
            key_prefix: key.key_prefix.clone(),
            create_time: now,
            revoke_time: None,
        })
    }

    async fn authenticate(&self, hash: &KeyHash) -> Result<Option<Principal>, StoreError> {
        let row = sqlx::query(
            "SELECT tenant_id, key_id, role FROM api_keys \
             WHERE key_hash = $1 AND revoke_time IS NULL",
        )
        .bind(hash.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let role: String = row.try_get("role")?;
        Ok(Some(Principal {
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            key_id: KeyId::from_uuid(row.try_get("key_id")?),
            role: Role::parse("role", &role)
                .map_err(|_| StoreError::Corrupt(format!("role {role:?}")))?,
        }))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKeyInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_id, role, key_prefix, create_time, revoke_time FROM api_keys \
             WHERE tenant_id = $1 ORDER BY create_time, key_id",
        )
        .bind(tenant.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(%tenant, %key_id))]
    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        key_id: KeyId,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<ApiKeyInfo>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let revoked = sqlx::query(
            "UPDATE api_keys SET revoke_time = $3 \
             WHERE tenant_id = $1 AND key_id = $2 AND revoke_time IS NULL",
        )
        .bind(tenant.as_uuid())
        .bind(key_id.as_uuid())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if revoked {
            audit(
                &mut tx,
                tenant,
                now,
                AuditEvent {
                    actor,
                    action: "api_key.revoked",
                    subject_type: "api_key",
                    subject_id: key_id.to_string(),
                    from_state: Some("active"),
                    to_state: Some("revoked"),
                    detail: serde_json::json!({}),
                    comment_id: None,
                    author_id: None,
                },
            )
            .await?;
        }
        let row = sqlx::query(
            "SELECT key_id, role, key_prefix, create_time, revoke_time FROM api_keys \
             WHERE tenant_id = $1 AND key_id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(key_id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(key_from_row).transpose()
    }
}

#[async_trait]
impl CommentStore for PostgresStore {
    fn concurrent_writers(&self) -> usize {
        2
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn insert_comment(
        &self,
        tenant: TenantId,
        record: &NewCommentRecord<'_>,
    ) -> Result<InsertOutcome, StoreError> {
        let mut outcomes = write_comments(&self.pool, &[(tenant, *record)]).await?;
        outcomes
            .pop()
            .ok_or_else(|| StoreError::Corrupt("no outcome for a comment".into()))
    }

    #[tracing::instrument(skip_all, fields(comments = batch.len()))]
    async fn insert_comments(
        &self,
        batch: &[(TenantId, NewCommentRecord<'_>)],
    ) -> Vec<Result<InsertOutcome, StoreError>> {
        match write_comments(&self.pool, batch).await {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(err) => super::retry_alone(self, batch, err).await,
        }
    }

    #[tracing::instrument(skip_all, fields(%tenant, %id))]
    async fn get_comment(
        &self,
        tenant: TenantId,
        id: CommentId,
    ) -> Result<Option<Comment>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments c WHERE c.tenant_id = $1 AND c.comment_id = $2"
        ))
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(comment_from_row).transpose()
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_comments(
        &self,
        tenant: TenantId,
        query: &CommentQuery,
    ) -> Result<Vec<Comment>, StoreError> {
        let (after_time, after_id) = match query.after {
            Some(CommentCursor {
                create_time_micros,
                comment_id,
            }) => (Some(micros(create_time_micros)?), Some(comment_id)),
            None => (None, None),
        };
        let rows = sqlx::query(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments c \
             WHERE c.tenant_id = $1 AND c.status = $2 \
               AND ($3::text IS NULL OR c.article_id = $3) \
               AND ($4::timestamptz IS NULL OR (c.create_time, c.comment_id) < ($4, $5)) \
             ORDER BY c.create_time DESC, c.comment_id DESC LIMIT $6"
        ))
        .bind(tenant.as_uuid())
        .bind(query.status.as_str())
        .bind(query.article_id.as_deref())
        .bind(after_time)
        .bind(after_id)
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(comment_from_row).collect()
    }
}

#[async_trait]
impl QueueStore for PostgresStore {
    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_review_queue(
        &self,
        tenant: TenantId,
        query: &QueueQuery,
    ) -> Result<Vec<ReviewItem>, StoreError> {
        let after = query
            .after
            .map(|c| Ok::<_, StoreError>((c.priority, micros(c.enqueue_time_micros)?, c.review_id)))
            .transpose()?;
        let mut sql = QueryBuilder::new(concat!(
            review_items_from!(),
            " \
             WHERE r.state = 'open' AND r.tenant_id = "
        ));
        sql.push_bind(tenant.as_uuid());
        push_queue_conditions(
            &mut sql,
            &query.filter,
            query.order,
            after,
            query.limit,
            REASON_CODE_SQL,
        );
        let rows = sql.build().fetch_all(&self.pool).await?;
        rows.iter().map(review_item_from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn claim_reviews(
        &self,
        tenant: TenantId,
        claim: &Claim,
    ) -> Result<Vec<ReviewItem>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // SKIP LOCKED: rows another transaction is claiming right now are passed
        // over, not waited for and never double-claimed.
        let mut sql = QueryBuilder::new(
            "WITH picked AS ( \
                SELECT r.review_id FROM review_items r \
                JOIN comments c ON c.tenant_id = r.tenant_id AND c.comment_id = r.comment_id \
                WHERE r.state = 'open' AND r.tenant_id = ",
        );
        sql.push_bind(tenant.as_uuid())
            .push(" AND (r.lease_expire_time IS NULL OR r.lease_expire_time <= ")
            .push_bind(claim.now)
            .push(")");
        push_queue_conditions::<_, DateTime<Utc>>(
            &mut sql,
            &claim.filter,
            claim.order,
            None,
            claim.max_items,
            REASON_CODE_SQL,
        );
        sql.push(" FOR UPDATE OF r SKIP LOCKED) UPDATE review_items r SET claimed_by = ")
            .push_bind(claim.actor.as_str().to_owned())
            .push(", lease_expire_time = ")
            .push_bind(claim.lease_until)
            .push(" FROM picked WHERE r.tenant_id = ")
            .push_bind(tenant.as_uuid())
            .push(" AND r.review_id = picked.review_id RETURNING r.review_id");
        let claimed: Vec<Uuid> = sql.build_query_scalar().fetch_all(&mut *tx).await?;
        if claimed.is_empty() {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        sqlx::query(
            "INSERT INTO audit_events \
             (tenant_id, create_time, actor, action, subject_type, subject_id, from_state, to_state, \
              detail, comment_id, author_id) \
             SELECT $1, $2, $3, 'review.claimed', 'review', r.review_id::text, 'open', 'claimed', \
                $5, r.comment_id, c.author_id \
             FROM review_items r \
             JOIN comments c ON c.tenant_id = r.tenant_id AND c.comment_id = r.comment_id \
             WHERE r.tenant_id = $1 AND r.review_id = ANY($4) ORDER BY r.review_id",
        )
        .bind(tenant.as_uuid())
        .bind(claim.now)
        .bind(claim.actor.as_str())
        .bind(&claimed)
        .bind(Json(serde_json::json!({ "lease_expire_time": claim.lease_until })))
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(concat!(
            review_items_from!(),
            " \
             WHERE r.tenant_id = $1 AND r.review_id = ANY($2)"
        ))
        .bind(tenant.as_uuid())
        .bind(&claimed)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut items = rows
            .iter()
            .map(review_item_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        claim.order.sort(&mut items);
        Ok(items)
    }

    #[tracing::instrument(skip_all, fields(%tenant, review_id = %decision.review_id))]
    async fn decide_review(
        &self,
        tenant: TenantId,
        decision: &Decision,
    ) -> Result<Result<Comment, DecideRejection>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let item = sqlx::query(
            "SELECT comment_id, state, claimed_by FROM review_items \
             WHERE tenant_id = $1 AND review_id = $2 FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(decision.review_id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(item) = item else {
            return Ok(Err(DecideRejection::NotFound));
        };
        let state: String = item.try_get("state")?;
        let claimed_by: Option<String> = item.try_get("claimed_by")?;
        if state != "open" {
            return Ok(Err(DecideRejection::AlreadyDecided));
        }
        if claimed_by.as_deref() != Some(decision.actor.as_str()) {
            return Ok(Err(DecideRejection::NotClaimedByCaller));
        }
        let comment_id: Uuid = item.try_get("comment_id")?;
        let row = sqlx::query(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments c \
             WHERE c.tenant_id = $1 AND c.comment_id = $2 FOR UPDATE"
        ))
        .bind(tenant.as_uuid())
        .bind(comment_id)
        .fetch_one(&mut *tx)
        .await?;
        let mut comment = comment_from_row(&row)?;
        if let Some(expected) = decision.expected_version
            && expected != comment.version
        {
            return Ok(Err(DecideRejection::Stale {
                current: comment.version,
            }));
        }
        let from = comment.status;
        comment.status = decided_status(decision.decision);
        comment.reasons.push(decision_reason(decision));
        comment.update_time = decision.now;
        comment.version += 1;

        sqlx::query(
            "UPDATE comments SET status = $3, reasons = $4, update_time = $5, version = version + 1 \
             WHERE tenant_id = $1 AND comment_id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(comment_id)
        .bind(comment.status.as_str())
        .bind(Json(&comment.reasons))
        .bind(decision.now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE review_items SET state = 'decided', decided_by = $3, decision = $4, note = $5, \
             decide_time = $6, lease_expire_time = NULL, decision_code = $7 \
             WHERE tenant_id = $1 AND review_id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(decision.review_id.as_uuid())
        .bind(decision.actor.as_str())
        .bind(decision.decision.as_str())
        .bind(&decision.note)
        .bind(decision.now)
        .bind(decision.reason_code.as_deref())
        .execute(&mut *tx)
        .await?;
        append_event(&mut tx, tenant, &comment, Some(from), false, decision.now).await?;
        audit(
            &mut tx,
            tenant,
            decision.now,
            super::decision_event(decision, &comment, from),
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(comment))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn release_reviews(
        &self,
        tenant: TenantId,
        ids: &[ReviewId],
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Result<Vec<ReviewId>, ReleaseRejection>, StoreError> {
        let uuids: Vec<Uuid> = ids.iter().map(ReviewId::as_uuid).collect();
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT review_id, state, claimed_by FROM review_items \
             WHERE tenant_id = $1 AND review_id = ANY($2) FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(&uuids)
        .fetch_all(&mut *tx)
        .await?;
        let mut held = std::collections::HashMap::new();
        for row in &rows {
            let id: Uuid = row.try_get("review_id")?;
            let state: String = row.try_get("state")?;
            let claimed_by: Option<String> = row.try_get("claimed_by")?;
            held.insert(
                id,
                state == "open" && claimed_by.as_deref() == Some(actor.as_str()),
            );
        }
        for id in ids {
            match held.get(&id.as_uuid()) {
                None => return Ok(Err(ReleaseRejection::NotFound(*id))),
                Some(false) => return Ok(Err(ReleaseRejection::NotClaimedByCaller(*id))),
                Some(true) => {}
            }
        }
        sqlx::query(
            "UPDATE review_items SET claimed_by = NULL, lease_expire_time = NULL \
             WHERE tenant_id = $1 AND review_id = ANY($2)",
        )
        .bind(tenant.as_uuid())
        .bind(&uuids)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO audit_events \
             (tenant_id, create_time, actor, action, subject_type, subject_id, from_state, to_state, \
              detail, comment_id, author_id) \
             SELECT $1, $2, $3, 'review.released', 'review', r.review_id::text, 'claimed', 'open', \
                '{}'::jsonb, r.comment_id, c.author_id \
             FROM review_items r \
             JOIN comments c ON c.tenant_id = r.tenant_id AND c.comment_id = r.comment_id \
             WHERE r.tenant_id = $1 AND r.review_id = ANY($4) ORDER BY r.review_id",
        )
        .bind(tenant.as_uuid())
        .bind(now)
        .bind(actor.as_str())
        .bind(&uuids)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(ids.to_vec()))
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn reopen_comment(
        &self,
        tenant: TenantId,
        reopen: &Reopen<'_>,
    ) -> Result<Result<Comment, ReopenRejection>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(mut comment) = comment_for_update(&mut tx, tenant, reopen.comment_id).await?
        else {
            return Ok(Err(ReopenRejection::NotFound));
        };
        if let Some(expected) = reopen.expected_version
            && expected != comment.version
        {
            return Ok(Err(ReopenRejection::Stale {
                current: comment.version,
            }));
        }
        // Held, or published with an open item (sent back by reports).
        if comment.status == CommentStatus::PendingReview
            || has_open_item(&mut tx, tenant, reopen.comment_id).await?
        {
            return Ok(Err(ReopenRejection::InQueue));
        }
        let from = comment.status;
        let review_id = requeue_in(
            &mut tx,
            tenant,
            &mut comment,
            Requeue {
                status: CommentStatus::PendingReview,
                reason: super::reopened_reason(reopen),
                priority: super::REOPENED_PRIORITY,
            },
            reopen.now,
        )
        .await?;
        audit(
            &mut tx,
            tenant,
            reopen.now,
            super::reopened_event(reopen, from, review_id),
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(comment))
    }

    async fn queue_depth(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM review_items WHERE state = 'open'")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

#[async_trait]
impl RuleStore for PostgresStore {
    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn load_rules(&self, tenant: TenantId) -> Result<(i64, Vec<RuleRecord>), StoreError> {
        let mut tx = self.pool.begin().await?;
        let version: i64 =
            sqlx::query_scalar("SELECT rules_version FROM tenants WHERE tenant_id = $1")
                .bind(tenant.as_uuid())
                .fetch_one(&mut *tx)
                .await?;
        let rows = sqlx::query(
            "SELECT rule_id, revision, definition, create_time, update_time FROM rules \
             WHERE tenant_id = $1 ORDER BY rule_id",
        )
        .bind(tenant.as_uuid())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let rules = rows.iter().map(rule_from_row).collect::<Result<_, _>>()?;
        Ok((version, rules))
    }

    async fn rules_versions(&self) -> Result<Vec<(TenantId, i64)>, StoreError> {
        versions(&self.pool, "SELECT tenant_id, rules_version FROM tenants").await
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn change_rules(
        &self,
        tenant: TenantId,
        change: &RuleChange,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Result<Vec<RuleRecord>, RuleRejection>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // One writer per tenant's rules at a time: revisions stay gap-free.
        sqlx::query("SELECT 1 FROM tenants WHERE tenant_id = $1 FOR UPDATE")
            .bind(tenant.as_uuid())
            .execute(&mut *tx)
            .await?;
        let existing: HashMap<String, (i64, DateTime<Utc>)> =
            sqlx::query_as::<_, (String, i64, DateTime<Utc>)>(
                "SELECT rule_id, revision, create_time FROM rules WHERE tenant_id = $1",
            )
            .bind(tenant.as_uuid())
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(id, revision, created)| (id, (revision, created)))
            .collect();
        let plan = match super::plan_rule_change(change, &existing) {
            Ok(plan) => plan,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let mut written = Vec::new();
        for step in &plan {
            match step {
                super::RuleStep::Put {
                    rule,
                    revision,
                    create_time,
                } => {
                    sqlx::query(
                        "INSERT INTO rules (tenant_id, rule_id, revision, definition, create_time, update_time) \
                         VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (tenant_id, rule_id) DO UPDATE \
                         SET revision = EXCLUDED.revision, definition = EXCLUDED.definition, \
                             update_time = EXCLUDED.update_time",
                    )
                    .bind(tenant.as_uuid())
                    .bind(&rule.id)
                    .bind(revision)
                    .bind(Json(rule))
                    .bind(create_time.unwrap_or(now))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    written.push(RuleRecord {
                        rule: (*rule).clone(),
                        revision: *revision,
                        create_time: create_time.unwrap_or(now),
                        update_time: now,
                    });
                }
                super::RuleStep::Delete { rule_id, .. } => {
                    sqlx::query("DELETE FROM rules WHERE tenant_id = $1 AND rule_id = $2")
                        .bind(tenant.as_uuid())
                        .bind(rule_id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            let (rule_id, revision, definition) = step.history();
            sqlx::query(
                "INSERT INTO rule_revisions (tenant_id, rule_id, revision, definition, actor, create_time) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(tenant.as_uuid())
            .bind(rule_id)
            .bind(revision)
            .bind(definition.map(Json))
            .bind(actor.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            audit(&mut tx, tenant, now, step.audit_event(actor)).await?;
        }
        sqlx::query("UPDATE tenants SET rules_version = rules_version + 1 WHERE tenant_id = $1")
            .bind(tenant.as_uuid())
            .execute(&mut *tx)
            .await?;
        // Delivered to every listening replica when (and only if) this commits.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(super::RULES_CHANNEL)
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(written))
    }

    async fn listen_rule_changes(&self, changes: tokio::sync::mpsc::UnboundedSender<TenantId>) {
        listen(
            &self.pool,
            super::RULES_CHANNEL,
            "rule change",
            |payload| match Uuid::try_parse(payload) {
                Ok(id) => changes.send(TenantId::from_uuid(id)).is_ok(),
                Err(_) => !changes.is_closed(),
            },
        )
        .await
    }
}

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
        super::model_versions(
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
        let mut tx = self.pool.begin().await?;
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

#[async_trait]
impl EventStore for PostgresStore {
    async fn sequence_decision_events(&self) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        // One round at a time across replicas; the statement below takes its
        // snapshot after the lock, so it sees the previous round's numbers.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SEQUENCER_LOCK)
            .execute(&mut *tx)
            .await?;
        let numbered = sqlx::query(
            "WITH pending AS ( \
                SELECT event_id, tenant_id FROM decision_events WHERE sequence IS NULL \
                ORDER BY event_id LIMIT 10000), \
             bases AS ( \
                SELECT t.tenant_id, COALESCE((SELECT max(d.sequence) FROM decision_events d \
                    WHERE d.tenant_id = t.tenant_id AND d.sequence IS NOT NULL), 0) AS base \
                FROM (SELECT DISTINCT tenant_id FROM pending) t), \
             numbered AS ( \
                SELECT p.event_id, \
                    b.base + row_number() OVER (PARTITION BY p.tenant_id ORDER BY p.event_id) AS seq \
                FROM pending p JOIN bases b ON b.tenant_id = p.tenant_id) \
             UPDATE decision_events SET sequence = numbered.seq FROM numbered \
             WHERE decision_events.event_id = numbered.event_id",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if numbered > 0 {
            // Delivered at commit, to every replica's streams.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(super::DECISIONS_CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(numbered)
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_decision_events(
        &self,
        tenant: TenantId,
        after_sequence: i64,
        limit: u32,
    ) -> Result<Vec<DecisionEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT sequence, comment_id, article_id, author_id, from_status, to_status, queued, \
             version, create_time FROM decision_events \
             WHERE tenant_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3",
        )
        .bind(tenant.as_uuid())
        .bind(after_sequence)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(DecisionEvent {
                    sequence: row.try_get("sequence")?,
                    comment_id: CommentId::from_uuid(row.try_get("comment_id")?),
                    article_id: row.try_get("article_id")?,
                    author_id: row.try_get("author_id")?,
                    from_status: super::status_column(row.try_get("from_status")?)?,
                    to_status: super::status_column(Some(row.try_get("to_status")?))?
                        .ok_or_else(|| StoreError::Corrupt("event without status".into()))?,
                    queued: row.try_get("queued")?,
                    version: row.try_get("version")?,
                    create_time: row.try_get("create_time")?,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn list_audit_events(
        &self,
        tenant: TenantId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut sql = QueryBuilder::new("");
        query.build(&mut sql, tenant, |t| t);
        let rows = sql.build().fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|row| {
                let Json(detail): Json<serde_json::Value> = row.try_get("detail")?;
                Ok(AuditRecord {
                    event_id: row.try_get("event_id")?,
                    create_time: row.try_get("create_time")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    subject_type: row.try_get("subject_type")?,
                    subject_id: row.try_get("subject_id")?,
                    from_state: row.try_get("from_state")?,
                    to_state: row.try_get("to_state")?,
                    detail,
                    comment_id: row
                        .try_get::<Option<Uuid>, _>("comment_id")?
                        .map(CommentId::from_uuid),
                    author_id: row.try_get("author_id")?,
                })
            })
            .collect()
    }

    async fn listen_decision_events(&self, numbered: tokio::sync::mpsc::UnboundedSender<()>) {
        listen(
            &self.pool,
            super::DECISIONS_CHANNEL,
            "decision event",
            |_| numbered.send(()).is_ok(),
        )
        .await
    }
}

#[async_trait]
impl AuthorStore for PostgresStore {
    #[tracing::instrument(skip_all, fields(lookups = lookups.len()))]
    async fn author_facts(
        &self,
        lookups: &[HistoryLookup],
        limit: u32,
    ) -> Result<Vec<AuthorFacts>, StoreError> {
        // Per look-up: the author's rows (kind 0), then one row carrying the
        // count and the standing (kind 1); index scans (comments_by_author,
        // comments_by_text_hash) and a primary-key look-up.
        let rows = sqlx::query(
            "SELECT q.ord - 1 AS ord, h.kind, h.text_hash, h.simhash, h.create_time, h.status, \
                h.others, h.standing, h.standing_until \
             FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::timestamptz[]) \
                WITH ORDINALITY AS q(tenant_id, author_id, text_hash, since, ord) \
             CROSS JOIN LATERAL ( \
                SELECT 0 AS kind, text_hash, simhash, create_time, status, 0::bigint AS others, \
                    NULL::text AS standing, NULL::timestamptz AS standing_until \
                FROM (SELECT c.text_hash, c.simhash, c.create_time, c.status FROM comments c \
                      WHERE c.tenant_id = q.tenant_id AND c.author_id = q.author_id \
                      ORDER BY c.create_time DESC LIMIT $5) recent \
                UNION ALL \
                SELECT 1, NULL, NULL, NULL, NULL, \
                    (SELECT count(*) FROM (SELECT 1 FROM comments c \
                        WHERE c.tenant_id = q.tenant_id AND c.text_hash = q.text_hash \
                          AND c.create_time >= q.since AND c.author_id <> q.author_id \
                        LIMIT $6) same_text), \
                    s.standing, s.until \
                FROM (SELECT 1) one \
                LEFT JOIN author_standings s \
                    ON s.tenant_id = q.tenant_id AND s.author_id = q.author_id) h \
             ORDER BY q.ord, h.kind, h.create_time DESC",
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
        .bind(i64::from(limit))
        .bind(i64::from(history::SAME_TEXT_CAP))
        .fetch_all(&self.pool)
        .await?;
        let rows = rows
            .into_iter()
            .map(|row| {
                let count_row = row.try_get::<i32, _>("kind")? == 1;
                Ok(super::HistoryRow {
                    ord: row.try_get("ord")?,
                    others: if count_row {
                        Some(row.try_get("others")?)
                    } else {
                        None
                    },
                    text_hash: row.try_get("text_hash")?,
                    simhash: row.try_get("simhash")?,
                    create_time: row.try_get("create_time")?,
                    status: row.try_get("status")?,
                    standing: row.try_get("standing")?,
                    standing_until: row.try_get("standing_until")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        super::author_facts_from_rows(lookups.len(), rows)
    }

    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn set_author_standing(
        &self,
        tenant: TenantId,
        author: &str,
        change: &StandingChange<'_>,
    ) -> Result<Standing, StoreError> {
        let mut tx = self.pool.begin().await?;
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
            super::standing_event(author, from, change),
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
        let mut tx = self.pool.begin().await?;
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
        let counts: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, count(*) FROM comments WHERE tenant_id = $1 AND author_id = $2 \
             GROUP BY status",
        )
        .bind(tenant.as_uuid())
        .bind(author)
        .fetch_all(&mut *tx)
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
        Ok(super::author_record(standing, recent, counts))
    }
}

#[async_trait]
impl ReportStore for PostgresStore {
    #[tracing::instrument(skip_all, fields(%tenant))]
    async fn report_comment(
        &self,
        tenant: TenantId,
        report: &NewReport<'_>,
    ) -> Result<ReportOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
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
            super::reported_event(report, reports),
        )
        .await?;
        let requeue = super::report_consequence(&comment, report, &counts, open_item);
        if let Some(requeue) = &requeue {
            let from = comment.status;
            requeue_in(&mut tx, tenant, &mut comment, requeue.clone(), report.now).await?;
            audit(
                &mut tx,
                tenant,
                report.now,
                super::requeued_event(report, from, requeue, reports),
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
}
