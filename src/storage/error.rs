use std::borrow::Cow;

/// A storage failure, classified so callers can answer correctly: the database
/// being unreachable is `UNAVAILABLE` for the client, anything else is internal.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("a stored row is not what this version of moderato expects: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl StoreError {
    /// When the database is unavailable, the same error for each of `n`
    /// batched callers (retrying them one by one would only wait `n` times
    /// for a connection); `None` for any other error.
    pub(crate) fn unavailable_for_each<T>(&self, n: usize) -> Option<Vec<Result<T, StoreError>>> {
        let StoreError::Unavailable(cause) = self else {
            return None;
        };
        let cause = cause.to_string();
        Some(
            (0..n)
                .map(|_| {
                    Err(StoreError::Unavailable(sqlx::Error::Io(
                        std::io::Error::other(cause.clone()),
                    )))
                })
                .collect(),
        )
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if is_unavailable(&err) {
            StoreError::Unavailable(err)
        } else {
            StoreError::Unexpected(anyhow::Error::new(err))
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        match err {
            sqlx::migrate::MigrateError::Execute(inner) => inner.into(),
            other => StoreError::Unexpected(anyhow::Error::new(other)),
        }
    }
}

/// Connection-level failures, and the database codes that mean "not now":
/// Postgres class 08 (connection exception), 57P01–57P03 (shutting down,
/// starting up), 53300 (too many connections), 53100 (disk full); SQLite
/// BUSY, LOCKED and FULL. A full disk is the operator's to fix and the
/// client's to retry, as an outage is: nothing was written.
fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or(Cow::Borrowed(""));
            code.starts_with("08")
                || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300" | "53100")
                // SQLite primary result codes (extended codes keep them in the low byte).
                || code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 13))
        }
        _ => false,
    }
}
