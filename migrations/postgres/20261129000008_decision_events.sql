-- The decision stream (WatchDecisions, WatchQueue): every change of a
-- comment's status or queue membership, numbered per tenant without gaps and
-- written in the transaction that makes the change (an outbox). The counter
-- row is locked by each writing transaction until it commits, so sequence
-- numbers follow commit order: a reader that has seen N has seen everything
-- before N.
CREATE TABLE event_sequences (
    tenant_id     uuid PRIMARY KEY REFERENCES tenants (tenant_id),
    last_sequence bigint NOT NULL DEFAULT 0
);
INSERT INTO event_sequences (tenant_id) SELECT tenant_id FROM tenants;

CREATE TABLE decision_events (
    tenant_id   uuid NOT NULL,
    sequence    bigint NOT NULL,
    comment_id  uuid NOT NULL,
    article_id  text NOT NULL,
    author_id   text NOT NULL,
    -- NULL when the comment was just created.
    from_status text,
    to_status   text NOT NULL,
    -- Whether the comment has an open review item after the change.
    queued      boolean NOT NULL,
    version     bigint NOT NULL,
    create_time timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, sequence)
);
