//! The embedded backend: one file, no setup. Writers are serialised by SQLite
//! itself; every writing transaction starts with `BEGIN IMMEDIATE`, so it takes
//! the write lock up front and waits (busy timeout) instead of failing half-way
//! when another writer, such as the CLI, got there first.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::types::Json;
use sqlx::{Row as _, Sqlite, Transaction};
use uuid::Uuid;

use crate::domain::{Comment, CommentId, CommentStatus, TenantId};
use crate::storage::{AuditEvent, DbOptions, Store, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

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

const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The database file, for the migration lock; `None` in memory.
    path: Option<PathBuf>,
}

impl SqliteStore {
    pub async fn connect(url: &str, options: &DbOptions) -> anyhow::Result<Self> {
        let connect = SqliteConnectOptions::from_str(url)
            .context("parsing the SQLite url")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before the caller is told so, also on
            // power loss, not only on a process crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let filename = connect.get_filename();
        let in_memory =
            filename.as_os_str().is_empty() || filename.to_string_lossy().starts_with(":memory:");
        let path = (!in_memory).then(|| filename.to_path_buf());
        if let Some(parent) = Path::new(connect.get_filename()).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        // The first connection switches a new file to WAL, which SQLite
        // refuses (SQLITE_BUSY, no busy wait) while another process or pool
        // opens it at the same moment: open under the migration lock.
        let _lock = match &path {
            Some(path) => Some(lock_file(path.with_extension("migrate-lock")).await?),
            None => None,
        };
        let pool = pool_options(options)
            .connect_with(connect)
            .await
            .context("opening the SQLite database")?;
        Ok(SqliteStore { pool, path })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// The pool, with a check that no connection is handed out still inside
/// a transaction. When a commit fails with the disk full, SQLite rolls the
/// transaction back by itself; sqlx's rollback on drop then finds none and
/// leaves the connection counting one open, so every later `BEGIN
/// IMMEDIATE` on it fails and the service never recovers (found by
/// `moderato-chaos`, issue #16). Such a connection is closed instead.
fn pool_options(options: &DbOptions) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .before_acquire(|conn, _| {
            Box::pin(async move {
                use sqlx::Connection as _;
                if conn.is_in_transaction() {
                    // A rollback queued by a dropped transaction runs first.
                    conn.ping().await?;
                }
                if conn.is_in_transaction() {
                    tracing::warn!("closing a database connection left inside a transaction");
                    return Ok(false);
                }
                Ok(true)
            })
        })
}

/// Opens `path` and waits for an exclusive lock on it; unlocked when dropped.
async fn lock_file(path: PathBuf) -> Result<std::fs::File, StoreError> {
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        Ok::<_, anyhow::Error>(file)
    })
    .await
    .context("migration lock task")?
    .map_err(StoreError::Unexpected)
}

fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(t: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(t).ok_or_else(|| StoreError::Corrupt(format!("timestamp {t}")))
}

fn time_column(row: &SqliteRow, column: &str) -> Result<DateTime<Utc>, StoreError> {
    from_micros(row.try_get(column)?)
}

fn optional_time_column(
    row: &SqliteRow,
    column: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    row.try_get::<Option<i64>, _>(column)?
        .map(from_micros)
        .transpose()
}

async fn audit(
    tx: &mut Transaction<'static, Sqlite>,
    tenant: TenantId,
    now: DateTime<Utc>,
    event: AuditEvent<'_>,
) -> Result<(), StoreError> {
    // The author of the comment, unless the event names one itself.
    sqlx::query(
        "INSERT INTO audit_events \
         (tenant_id, create_time, actor, action, subject_type, subject_id, from_state, to_state, \
          detail, comment_id, author_id, article_id, queued, version) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, COALESCE(?11, \
            (SELECT author_id FROM comments WHERE tenant_id = ?1 AND comment_id = ?10)), \
            ?12, ?13, ?14)",
    )
    .bind(tenant.as_uuid())
    .bind(to_micros(now))
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

fn comment_from_row(row: &SqliteRow) -> Result<Comment, StoreError> {
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
        create_time: time_column(row, "create_time")?,
        update_time: time_column(row, "update_time")?,
        client_comment_id: row.try_get("client_comment_id")?,
        author_display_name: row.try_get("author_display_name")?,
        parent_comment_id: row
            .try_get::<Option<Uuid>, _>("parent_comment_id")?
            .map(CommentId::from_uuid),
        language: row.try_get("language")?,
        version: row.try_get("version")?,
    })
}

/// The `(tenant, version)` rows of a query replicas poll for changes.
async fn versions(
    pool: &SqlitePool,
    sql: &'static str,
) -> Result<Vec<(TenantId, i64)>, StoreError> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(sql).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(t, v)| (TenantId::from_uuid(t), v))
        .collect())
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        // sqlx takes no lock on SQLite, so two processes opening a new file at
        // once (server and CLI) would both apply migration 1. An exclusive lock
        // on a file beside the database serialises them; the second then finds
        // everything applied.
        let _lock = match &self.path {
            Some(path) => Some(lock_file(path.with_extension("migrate-lock")).await?),
            None => None,
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A transaction SQLite rolled back by itself (the database full) does
    /// not poison its connection: the next write transaction begins.
    #[tokio::test]
    async fn a_full_database_does_not_poison_the_pool() {
        let dir = std::env::temp_dir().join(format!("moderato-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // max_page_count: the database is full at 40 pages, as on a full disk.
        let connect = SqliteConnectOptions::new()
            .filename(dir.join("full.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("max_page_count", "40");
        let options = DbOptions {
            max_connections: 1,
            ..DbOptions::default()
        };
        let pool = pool_options(&options).connect_with(connect).await.unwrap();
        sqlx::query("CREATE TABLE t (b BLOB)")
            .execute(&pool)
            .await
            .unwrap();
        let mut full = None;
        for _ in 0..100 {
            let mut tx = pool.begin_with(BEGIN_WRITE).await.unwrap();
            let insert = sqlx::query("INSERT INTO t VALUES (zeroblob(8192))")
                .execute(&mut *tx)
                .await;
            match insert {
                Ok(_) => tx.commit().await.unwrap(),
                Err(err) => {
                    full = Some(err);
                    break;
                }
            }
        }
        let full = full.expect("the database filled up");
        assert!(matches!(StoreError::from(full), StoreError::Unavailable(_)));
        // The one connection (or its replacement) begins a write again.
        let mut tx = pool.begin_with(BEGIN_WRITE).await.unwrap();
        sqlx::query("DELETE FROM t")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        pool.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
