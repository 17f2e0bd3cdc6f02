//! Numbers decision-stream events after the transactions that wrote them
//! have committed (`Store::sequence_decision_events`).
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

use tokio::sync::mpsc;

use crate::storage::Store;

/// The longest an event waits for its number when nobody kicks.
const POLL: Duration = Duration::from_secs(1);
/// The shortest time between two rounds: kicks arriving meanwhile are
/// served by one round.
const GAP: Duration = Duration::from_millis(20);

#[derive(Clone)]
pub(crate) struct Sequencer {
    kicks: mpsc::Sender<()>,
}

impl Sequencer {
    /// Starts the numbering task; it stops when every handle is dropped.
    pub(crate) fn start(store: Arc<dyn Store>) -> Self {
        let (kicks, mut kicked) = mpsc::channel(1);
        tokio::spawn(async move {
            loop {
                if let Ok(None) = tokio::time::timeout(POLL, kicked.recv()).await {
                    return; // The service is gone.
                }
                loop {
                    match store.sequence_decision_events().await {
                        // A full round: more may be waiting.
                        Ok(numbered) if numbered >= 10_000 => continue,
                        Ok(_) => break,
                        Err(err) => {
                            tracing::warn!(error = %err, "numbering decision events failed; will retry");
                            break;
                        }
                    }
                }
                tokio::time::sleep(GAP).await;
            }
        });
        Sequencer { kicks }
    }

    /// Events were committed: number them soon.
    pub(crate) fn kick(&self) {
        let _ = self.kicks.try_send(());
    }
}
