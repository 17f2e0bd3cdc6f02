-- The decision stream (WatchDecisions, WatchQueue): every change of a
-- comment's status or queue membership, numbered per tenant without gaps and
-- written in the transaction that makes the change (an outbox). SQLite has
-- one writer at a time, so numbers follow commit order.
CREATE TABLE event_sequences (
    tenant_id     BLOB PRIMARY KEY REFERENCES tenants (tenant_id),
    last_sequence INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO event_sequences (tenant_id) SELECT tenant_id FROM tenants;

CREATE TABLE decision_events (
    tenant_id   BLOB NOT NULL,
    sequence    INTEGER NOT NULL,
    comment_id  BLOB NOT NULL,
    article_id  TEXT NOT NULL,
    author_id   TEXT NOT NULL,
    -- NULL when the comment was just created.
    from_status TEXT,
    to_status   TEXT NOT NULL,
    -- Whether the comment has an open review item after the change.
    queued      INTEGER NOT NULL CHECK (queued IN (0, 1)),
    version     INTEGER NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, sequence)
) STRICT;
