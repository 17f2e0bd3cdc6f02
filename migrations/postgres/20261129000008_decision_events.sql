-- The decision stream (WatchDecisions, WatchQueue): every change of a
-- comment's status or queue membership, written in the transaction that
-- makes the change (an outbox). The writer leaves `sequence` empty; a
-- sequencer numbers committed rows per tenant afterwards, in rounds that
-- take one advisory lock, so numbers have no gaps and a reader that has
-- seen N never sees a number below N appear later. Numbering off the write
-- path keeps concurrent group commits from queueing on a counter row.
CREATE TABLE decision_events (
    event_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    -- NULL until the sequencer numbers the event.
    sequence    bigint,
    comment_id  uuid NOT NULL,
    article_id  text NOT NULL,
    author_id   text NOT NULL,
    -- NULL when the comment was just created.
    from_status text,
    to_status   text NOT NULL,
    -- Whether the comment has an open review item after the change.
    queued      boolean NOT NULL,
    version     bigint NOT NULL,
    create_time timestamptz NOT NULL
);
CREATE UNIQUE INDEX decision_events_by_sequence ON decision_events (tenant_id, sequence)
    WHERE sequence IS NOT NULL;
CREATE INDEX decision_events_unnumbered ON decision_events (event_id)
    WHERE sequence IS NULL;
