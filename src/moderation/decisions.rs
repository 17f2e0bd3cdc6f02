//! The decision stream: every change of a tenant's comments, in sequence
//! order, from a cursor. The database is the source of truth: a stream reads
//! the backlog after its cursor, then reads again whenever the sequencer (of
//! this replica, or of another through `LISTEN/NOTIFY`) numbered events, and
//! at least every second. So a client that reconnects with the last sequence
//! it received gets every later event exactly once, whichever replica wrote
//! it, across restarts.

use std::time::Duration;

use tokio::sync::mpsc;

use super::Moderation;
use crate::domain::Principal;
use crate::storage::{DecisionEvent, StoreError};

/// What a decision event did to the review queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMove {
    Entered,
    Left,
}

impl QueueMove {
    /// A comment that now waits entered the queue; one that had a status
    /// before and does not wait any more was decided and left it; anything
    /// else (published or rejected on arrival) did not touch the queue.
    pub fn of(event: &DecisionEvent) -> Option<QueueMove> {
        match (event.queued, event.from_status) {
            (true, _) => Some(QueueMove::Entered),
            (false, Some(_)) => Some(QueueMove::Left),
            (false, None) => None,
        }
    }
}

/// Events read per query.
const PAGE: u32 = 500;
/// The longest a stream waits without reading, notification or not.
const POLL: Duration = Duration::from_secs(1);

impl Moderation {
    /// The tenant's last numbered event: a stream started after it carries
    /// only what happens from now on.
    pub async fn last_decision_sequence(&self, principal: &Principal) -> Result<i64, StoreError> {
        self.store()
            .last_decision_sequence(principal.tenant_id)
            .await
    }

    /// Events after `after_sequence`, then live ones, until the receiver is
    /// dropped. A database failure is sent once and ends the stream.
    pub fn watch_decisions(
        &self,
        principal: &Principal,
        after_sequence: i64,
    ) -> mpsc::Receiver<Result<DecisionEvent, StoreError>> {
        let (tx, rx) = mpsc::channel(PAGE as usize);
        let store = self.store().clone();
        let tenant = principal.tenant_id;
        let mut numbered = self.inner.sequencer.subscribe();
        tokio::spawn(async move {
            let mut cursor = after_sequence;
            loop {
                // Mark what we have seen before reading, so a round that
                // lands meanwhile wakes the next wait.
                numbered.mark_unchanged();
                let events = match store.list_decision_events(tenant, cursor, PAGE).await {
                    Ok(events) => events,
                    Err(err) => {
                        let _ = tx.send(Err(err)).await;
                        return;
                    }
                };
                let full = events.len() == PAGE as usize;
                for event in events {
                    cursor = event.sequence;
                    if tx.send(Ok(event)).await.is_err() {
                        return; // The client went away.
                    }
                }
                if full {
                    continue;
                }
                tokio::select! {
                    () = tx.closed() => return,
                    woken = tokio::time::timeout(POLL, numbered.changed()) => {
                        if let Ok(Err(_)) = woken {
                            // The sequencer is gone (shutting down): poll.
                            tokio::time::sleep(POLL).await;
                        }
                    }
                }
            }
        });
        rx
    }
}
