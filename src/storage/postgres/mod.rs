//! The production backend. Claims use `FOR UPDATE SKIP LOCKED`, so any number of
//! moderators and replicas can claim from one queue without waiting on each
//! other or ever sharing an item.

use std::str::FromStr as _;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Postgres, Row as _, Transaction};
use uuid::Uuid;

use crate::domain::{Comment, CommentId, CommentStatus, TenantId};
use crate::storage::{AuditEvent, DbOptions, Store, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

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

// Declared after the macros above, which are in scope only below their
// definition.
mod authors;
mod comments;
mod events;
mod models;
mod queue;
mod replicas;
mod reports;
mod rules;
mod tenants;
mod webhooks;

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
          detail, comment_id, author_id, article_id, queued, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, COALESCE($11, \
            (SELECT author_id FROM comments WHERE tenant_id = $1 AND comment_id = $10)), \
            $12, $13, $14)",
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
    .bind(event.stream.as_ref().map(|s| s.article_id.as_str()))
    .bind(event.stream.as_ref().map(|s| s.queued))
    .bind(event.stream.as_ref().map(|s| s.version))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn comment_from_row(row: &PgRow) -> Result<Comment, StoreError> {
    let status: String = row.try_get("status")?;
    let reasons = crate::storage::reasons::decode(row.try_get("reasons")?)?;
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

fn micros(t: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(t).ok_or_else(|| StoreError::Corrupt(format!("timestamp {t}")))
}

/// Begins a transaction, also when the caller goes away meanwhile. sqlx
/// sends `BEGIN` and counts the transaction only when the answer comes: a
/// future dropped in between (a client's deadline passing, a cancelled call)
/// hands the connection back to the pool inside a transaction nobody will
/// end, and the next autocommit statement on it, such as a group commit's
/// insert, succeeds without committing. `moderato-chaos` found an
/// acknowledged comment lost that way after a database restart (issue #16).
/// In its own task the begin runs to its end; a transaction nobody takes is
/// dropped there, which rolls it back.
async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, StoreError> {
    let pool = pool.clone();
    let tx = tokio::spawn(async move { pool.begin().await })
        .await
        .map_err(|err| StoreError::Unexpected(anyhow::Error::new(err)))??;
    Ok(tx)
}

/// Begins a transaction that may append decision-stream events (audit
/// rows with stream facts). It first takes
/// the numbering lock shared, before any row lock: a writer that waited for
/// it while holding a row another writer needs could deadlock with a round
/// (the migration's trigger would take it at the insert otherwise).
async fn begin_appending(pool: &PgPool) -> Result<Transaction<'static, Postgres>, StoreError> {
    let mut tx = begin(pool).await?;
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(events::NUMBERING_LOCK)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
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

    /// Why: until a table's first analyse, the planner knows only its size.
    /// Statements are prepared once per connection, and after five runs
    /// Postgres may keep a generic plan made while the table was tiny: the
    /// batched author query then counted other authors' copies of a text
    /// through `comments_by_article` (every comment of the tenant, filtered)
    /// instead of `comments_by_text_hash`, 0.3–3.6 s per batch, for the
    /// minute or two before autovacuum's first analyse of a new database
    /// (BENCHMARKS.md, issue #12). An analyse invalidates those plans.
    async fn analyze_new_tables(&self) -> Result<usize, StoreError> {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT relname::text FROM pg_stat_user_tables \
             WHERE relname IN ('comments', 'review_items', 'audit_events', 'decision_sequence', \
                'author_facts') \
               AND schemaname = current_schema() \
               AND last_analyze IS NULL AND last_autoanalyze IS NULL \
               AND n_mod_since_analyze >= $1",
        )
        .bind(NEW_TABLE_ROWS)
        .fetch_all(&self.pool)
        .await?;
        for table in &tables {
            // The names come from the fixed list above.
            sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}")))
                .execute(&self.pool)
                .await?;
        }
        Ok(tables.len())
    }
}

/// Rows written to a never-analysed table before moderato analyses it.
const NEW_TABLE_ROWS: i64 = 1000;
