//! Numbers decision-stream events after the transactions that wrote them
//! have committed (`EventStore::sequence_decision_events`).
//!
//! Why off the write path: a number handed out inside the writing
//! transaction needs a per-tenant counter row that every writer locks until
//! it commits, which serialised Postgres group commits (measured: SubmitComment
//! at c=50 fell from about 4k to 2–3k calls/s). Here writers only insert their
//! event; whoever commits kicks the sequencer, which runs a numbering round
//! soon after, coalescing kicks. Rounds exclude each other in the database,
//! so every replica runs one; the periodic round catches events whose writer
//! stopped before kicking.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::storage::Store;

/// The longest an event waits for its number when nobody kicks.
const POLL: Duration = Duration::from_secs(1);
/// The shortest time between two rounds: kicks arriving meanwhile are
/// served by one round.
const GAP: Duration = Duration::from_millis(20);

#[derive(Clone)]
pub(crate) struct Sequencer {
    kicks: mpsc::Sender<()>,
    /// Bumped whenever events were numbered, here or (Postgres) on another
    /// replica: streams wake up and read what is new.
    numbered: watch::Receiver<u64>,
}

impl Sequencer {
    /// Starts the numbering task; it stops when every handle is dropped.
    pub(crate) fn start(store: Arc<dyn Store>) -> Self {
        let (kicks, mut kicked) = mpsc::channel(1);
        let (announce, numbered) = watch::channel(0u64);
        let announce = Arc::new(announce);
        {
            // Other replicas' rounds, announced by the database.
            let (store, announce) = (store.clone(), announce.clone());
            tokio::spawn(async move {
                let (tx, mut rx) = mpsc::unbounded_channel();
                let listening = store.listen_decision_events(tx);
                let forwarding = async {
                    while rx.recv().await.is_some() {
                        announce.send_modify(|n| *n += 1);
                    }
                };
                tokio::select! {
                    () = listening => {}
                    () = forwarding => {}
                    () = announce.closed() => {}
                }
            });
        }
        tokio::spawn(async move {
            loop {
                if let Ok(None) = tokio::time::timeout(POLL, kicked.recv()).await {
                    return; // The service is gone.
                }
                let mut pause = GAP;
                loop {
                    match store.sequence_decision_events().await {
                        Ok(0) => break,
                        Ok(numbered) => {
                            announce.send_modify(|n| *n += 1);
                            // A full round: more may be waiting.
                            if numbered < u64::from(crate::storage::NUMBERING_ROUND) {
                                break;
                            }
                        }
                        Err(err) => {
                            // The database is down, or (Postgres) a writer
                            // held the round out: back off, so retries do not
                            // keep pausing the other writers.
                            tracing::warn!(error = %err, "numbering decision events failed; will retry");
                            pause = POLL;
                            break;
                        }
                    }
                }
                tokio::time::sleep(pause).await;
            }
        });
        Sequencer { kicks, numbered }
    }

    /// Changes whenever new events may have been numbered.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.numbered.clone()
    }

    /// Events were committed: number them soon.
    pub(crate) fn kick(&self) {
        let _ = self.kicks.try_send(());
    }
}
