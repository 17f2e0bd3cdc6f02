//! Batching: concurrent `SubmitComment` calls share their database work.
//!
//! A submission makes two trips to the database: it reads the author's
//! history (the spam score needs it) and, once decided, writes the comment.
//! Each trip goes through a [`Batcher`]: the call hands its job to a worker
//! task and waits; the worker takes every job queued at that moment (up to
//! [`MAX_BATCH`]), runs them as one query or one transaction, and answers
//! each caller. No timer: while one batch is in the database the next one
//! fills up, so batches grow with the load and a lone request goes at once.
//!
//! Why: per-request statements spend the database's CPU and the round trips
//! on protocol handling, BEGIN/COMMIT and a WAL flush each; with SQLite, every
//! statement is also a hand-off to the connection's worker thread, and
//! concurrent writers serialise through a busy handler whose back-off sleeps
//! reach hundreds of milliseconds. Writes: a caller is answered only after
//! its batch committed; one writer for SQLite, two for Postgres (one commits
//! while the other gathers). When a batch fails, the store retries each item
//! alone, so one bad item never fails the others. A job whose caller went
//! away before its batch started (deadline passed, call cancelled) is
//! dropped: under overload, the database does not spend itself on answers
//! nobody waits for.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::sequencer::Sequencer;
use crate::domain::{Actor, CommentId, NewComment, TenantId};
use crate::pipeline::Verdict;
use crate::pipeline::spam::Fingerprint;
use crate::storage::{
    AuthorFacts, HistoryLookup, InsertOutcome, NewCommentRecord, Store, StoreError,
};

/// The most items one batch holds.
pub const MAX_BATCH: usize = 128;

/// Hands jobs to `workers` tasks that run them in batches.
struct Batcher<J, R> {
    jobs: mpsc::Sender<(J, oneshot::Sender<R>)>,
}

impl<J: Send + 'static, R: Send + 'static> Batcher<J, R> {
    /// `run` gets a batch and returns one result per job, in order. The
    /// workers stop when the batcher is dropped.
    fn start<F, Fut>(workers: usize, run: F) -> Self
    where
        F: Fn(Vec<J>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<R>> + Send,
    {
        let (jobs, queue) = mpsc::channel::<(J, oneshot::Sender<R>)>(MAX_BATCH * 16);
        let queue = Arc::new(Mutex::new(queue));
        let run = Arc::new(run);
        for _ in 0..workers.max(1) {
            let (queue, run) = (queue.clone(), run.clone());
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(MAX_BATCH);
                loop {
                    {
                        // Gather while holding the queue; another worker
                        // may be in the database meanwhile.
                        let mut queue = queue.lock().await;
                        if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
                            return; // Every sender is gone: shutting down.
                        }
                    }
                    // A caller that went away before its job started (its
                    // deadline passed, it cancelled) was never answered:
                    // its job is dropped, not run for nobody.
                    let gathered = batch.len();
                    batch.retain(|(_, reply)| !reply.is_closed());
                    if batch.len() < gathered {
                        metrics::counter!("moderato_abandoned_jobs_total")
                            .increment((gathered - batch.len()) as u64);
                    }
                    if batch.is_empty() {
                        continue;
                    }
                    let (items, replies): (Vec<J>, Vec<oneshot::Sender<R>>) =
                        batch.drain(..).unzip();
                    for (reply, result) in replies.into_iter().zip(run(items).await) {
                        // A caller that went away while its batch ran has
                        // nothing to be told; the work was still done.
                        let _ = reply.send(result);
                    }
                }
            });
        }
        Batcher { jobs }
    }

    /// Runs `job` in the next batch; `None` when the workers have stopped.
    async fn run(&self, job: J) -> Option<R> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send((job, reply)).await.ok()?;
        answer.await.ok()
    }
}

fn stopped() -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!("the batch workers have stopped"))
}

/// A decided comment on its way to the database.
pub(crate) struct PendingComment {
    pub tenant: TenantId,
    pub comment_id: CommentId,
    pub comment: NewComment,
    pub verdict: Verdict,
    pub fingerprint: Fingerprint,
    pub actor: Actor,
    pub now: DateTime<Utc>,
    pub ip_hash: Option<String>,
}

/// Group commit of new comments (`CommentStore::insert_comments`). The
/// writers share one queue: two batches holding comments of one author
/// then update its facts row one after the other (the second waits for the
/// first's commit), which measured better than giving each writer its own
/// authors (smaller batches, unevenly filled; BENCHMARKS.md, issue #12).
pub(crate) struct CommentWriter(Batcher<PendingComment, Result<InsertOutcome, StoreError>>);

impl CommentWriter {
    /// `sequencer` is kicked after each batch, which writes one
    /// decision-stream event per new comment.
    pub(crate) fn start(store: Arc<dyn Store>, sequencer: Sequencer) -> Self {
        let writers = store.concurrent_writers();
        CommentWriter(Batcher::start(
            writers,
            move |batch: Vec<PendingComment>| {
                let (store, sequencer) = (store.clone(), sequencer.clone());
                async move {
                    let records: Vec<(TenantId, NewCommentRecord<'_>)> = batch
                        .iter()
                        .map(|p| {
                            let record = NewCommentRecord {
                                comment_id: p.comment_id,
                                comment: &p.comment,
                                verdict: &p.verdict,
                                fingerprint: p.fingerprint,
                                actor: &p.actor,
                                now: p.now,
                                ip_hash: p.ip_hash.as_deref(),
                            };
                            (p.tenant, record)
                        })
                        .collect();
                    metrics::histogram!("moderato_group_commit_size").record(records.len() as f64);
                    let outcomes = store.insert_comments(&records).await;
                    sequencer.kick();
                    outcomes
                }
            },
        ))
    }

    /// Stores `pending`; returns once its transaction has committed.
    pub(crate) async fn insert(
        &self,
        pending: PendingComment,
    ) -> Result<InsertOutcome, StoreError> {
        self.0.run(pending).await.unwrap_or_else(|| Err(stopped()))
    }
}

/// Batched author look-ups: history and standing (`AuthorStore::author_facts`).
pub(crate) struct HistoryReader(Batcher<HistoryLookup, Result<AuthorFacts, StoreError>>);

/// Each look-up in its own query, after a batch failed.
async fn one_by_one(
    store: &dyn Store,
    lookups: &[HistoryLookup],
) -> Vec<Result<AuthorFacts, StoreError>> {
    let mut results = Vec::with_capacity(lookups.len());
    for lookup in lookups {
        let one = store
            .author_facts(std::slice::from_ref(lookup))
            .await
            .and_then(|mut one| {
                one.pop()
                    .ok_or_else(|| StoreError::Corrupt("no answer for a look-up".into()))
            });
        results.push(one);
    }
    results
}

/// Readers running at once: a batch is one query on one pooled connection.
const READERS: usize = 2;

impl HistoryReader {
    pub(crate) fn start(store: Arc<dyn Store>) -> Self {
        HistoryReader(Batcher::start(
            READERS,
            move |lookups: Vec<HistoryLookup>| {
                let store = store.clone();
                async move {
                    metrics::histogram!("moderato_history_batch_size").record(lookups.len() as f64);
                    match store.author_facts(&lookups).await {
                        Ok(facts) => facts.into_iter().map(Ok).collect(),
                        Err(err) if lookups.len() == 1 => vec![Err(err)],
                        Err(err) => match err.unavailable_for_each(lookups.len()) {
                            Some(errors) => errors,
                            // Each alone, so the errors are each look-up's own.
                            None => one_by_one(store.as_ref(), &lookups).await,
                        },
                    }
                }
            },
        ))
    }

    /// The author's history for the spam score, and standing.
    pub(crate) async fn read(&self, lookup: HistoryLookup) -> Result<AuthorFacts, StoreError> {
        self.0.run(lookup).await.unwrap_or_else(|| Err(stopped()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use super::*;

    #[tokio::test]
    async fn every_caller_gets_its_own_result_and_waiting_jobs_share_a_batch() {
        let sizes = Arc::new(StdMutex::new(Vec::new()));
        let (release, released) = tokio::sync::watch::channel(false);
        let batcher = {
            let sizes = sizes.clone();
            Batcher::start(1, move |jobs: Vec<u32>| {
                let (sizes, mut released) = (sizes.clone(), released.clone());
                async move {
                    sizes.lock().unwrap().push(jobs.len());
                    // The first batch waits, so the others queue behind it.
                    released.wait_for(|go| *go).await.unwrap();
                    jobs.into_iter().map(|j| j * 10).collect()
                }
            })
        };
        let batcher = Arc::new(batcher);
        let first = tokio::spawn({
            let batcher = batcher.clone();
            async move { batcher.run(0).await }
        });
        while sizes.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let rest: Vec<_> = (1..=40)
            .map(|j| {
                let batcher = batcher.clone();
                tokio::spawn(async move { (j, batcher.run(j).await) })
            })
            .collect();
        tokio::task::yield_now().await;
        release.send(true).unwrap();
        assert_eq!(first.await.unwrap(), Some(0));
        for task in rest {
            let (j, result) = task.await.unwrap();
            assert_eq!(result, Some(j * 10));
        }
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 41);
        assert!(
            sizes.len() < 41,
            "jobs queued behind a batch go together: {sizes:?}"
        );
    }

    #[tokio::test]
    async fn a_job_left_without_a_result_gets_none() {
        let batcher: Batcher<u32, u32> = Batcher::start(1, |_jobs: Vec<u32>| async move {
            Vec::new() // answers nobody
        });
        assert_eq!(batcher.run(1).await, None);
    }
}
