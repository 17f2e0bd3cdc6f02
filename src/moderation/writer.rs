//! Group commit: concurrent `SubmitComment` calls share one transaction.
//!
//! A submission hands its decided comment to a writer task and waits. Each
//! writer takes every submission queued at that moment (up to
//! [`MAX_BATCH`]), stores them with `Store::insert_comments` in one
//! transaction, and answers each caller only after that commit. No timer:
//! while one batch commits, the next one fills up, so batches grow with the
//! load and a lone request is written at once.
//!
//! Why: per-request transactions spend the database's CPU and round trips on
//! BEGIN/COMMIT and a WAL flush each; SQLite additionally serialises writers
//! through its busy handler, whose back-off sleeps reach hundreds of
//! milliseconds under contention. One writer for SQLite, two for Postgres
//! (one commits while the other gathers).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::domain::{Actor, CommentId, NewComment, TenantId};
use crate::pipeline::Verdict;
use crate::pipeline::spam::Fingerprint;
use crate::storage::{InsertOutcome, NewCommentRecord, Store, StoreError};

/// The most comments one transaction writes.
pub const MAX_BATCH: usize = 128;

/// A decided comment on its way to the database.
pub(crate) struct PendingComment {
    pub tenant: TenantId,
    pub comment_id: CommentId,
    pub comment: NewComment,
    pub verdict: Verdict,
    pub fingerprint: Fingerprint,
    pub actor: Actor,
    pub now: DateTime<Utc>,
}

struct Job {
    pending: PendingComment,
    reply: oneshot::Sender<Result<InsertOutcome, StoreError>>,
}

pub(crate) struct CommentWriter {
    jobs: mpsc::Sender<Job>,
}

impl CommentWriter {
    /// Starts `writers` writer tasks; they stop when the writer is dropped.
    pub(crate) fn start(store: Arc<dyn Store>, writers: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>(MAX_BATCH * 16);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..writers.max(1) {
            tokio::spawn(write_batches(store.clone(), queue.clone()));
        }
        CommentWriter { jobs }
    }

    /// Stores `pending`; returns once its transaction has committed.
    pub(crate) async fn insert(
        &self,
        pending: PendingComment,
    ) -> Result<InsertOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unexpected(anyhow::anyhow!("the comment writer has stopped"));
        self.jobs
            .send(Job { pending, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn write_batches(store: Arc<dyn Store>, queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            // Gather while holding the queue; the other writer may be
            // committing meanwhile.
            let mut queue = queue.lock().await;
            if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return; // Every sender is gone: shutting down.
            }
        }
        let records: Vec<(TenantId, NewCommentRecord<'_>)> = batch
            .iter()
            .map(|job| {
                let p = &job.pending;
                (
                    p.tenant,
                    NewCommentRecord {
                        comment_id: p.comment_id,
                        comment: &p.comment,
                        verdict: &p.verdict,
                        fingerprint: p.fingerprint,
                        actor: &p.actor,
                        now: p.now,
                    },
                )
            })
            .collect();
        let outcomes = store.insert_comments(&records).await;
        drop(records);
        metrics::histogram!("moderato_group_commit_size").record(batch.len() as f64);
        for (job, outcome) in batch.drain(..).zip(outcomes) {
            // A caller that went away (cancelled) still had its comment
            // written; nothing to tell it.
            let _ = job.reply.send(outcome);
        }
    }
}
