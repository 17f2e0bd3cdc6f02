-- The decision stream (WatchDecisions, WatchQueue): every change of a
-- comment's status or queue membership, written in the transaction that
-- makes the change (an outbox). The writer leaves `sequence` empty; a
-- sequencer numbers committed rows per tenant afterwards, one write
-- transaction per round, so numbers have no gaps and follow commit order.
CREATE TABLE decision_events (
    event_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   BLOB NOT NULL,
    -- NULL until the sequencer numbers the event.
    sequence    INTEGER,
    comment_id  BLOB NOT NULL,
    article_id  TEXT NOT NULL,
    author_id   TEXT NOT NULL,
    -- NULL when the comment was just created.
    from_status TEXT,
    to_status   TEXT NOT NULL,
    -- Whether the comment has an open review item after the change.
    queued      INTEGER NOT NULL CHECK (queued IN (0, 1)),
    version     INTEGER NOT NULL,
    create_time INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX decision_events_by_sequence ON decision_events (tenant_id, sequence)
    WHERE sequence IS NOT NULL;
CREATE INDEX decision_events_unnumbered ON decision_events (event_id)
    WHERE sequence IS NULL;
