-- One event log: the audit row of a change to a comment's status or queue
-- membership is also its decision-stream event (issue #12; the Postgres
-- migration of the same name says why).
--
-- A row is a stream event exactly when `queued` is set; `from_state` and
-- `to_state` are the statuses. Numbering appends one row per event to
-- `decision_sequence`. Events written before this migration stay in
-- `decision_events_before_16`, all numbered here, and the stream reads
-- them before the new ones.

ALTER TABLE audit_events ADD COLUMN article_id TEXT;
ALTER TABLE audit_events ADD COLUMN queued INTEGER CHECK (queued IN (0, 1));
ALTER TABLE audit_events ADD COLUMN version INTEGER;
-- Numbering rounds: the stream events after the watermark.
CREATE INDEX audit_events_stream ON audit_events (event_id) WHERE queued IS NOT NULL;

-- Number what the last round had not numbered yet (a migration holds the
-- write lock, so nothing is being written).
WITH pending AS (
    SELECT event_id, tenant_id FROM decision_events WHERE sequence IS NULL),
bases AS (
    SELECT tenant_id, COALESCE(max(sequence), 0) AS base FROM decision_events GROUP BY tenant_id),
numbered AS (
    SELECT p.event_id,
        b.base + row_number() OVER (PARTITION BY p.tenant_id ORDER BY p.event_id) AS seq
    FROM pending p JOIN bases b ON b.tenant_id = p.tenant_id)
UPDATE decision_events SET sequence = numbered.seq FROM numbered
WHERE decision_events.event_id = numbered.event_id;

DROP INDEX decision_events_unnumbered;
ALTER TABLE decision_events RENAME TO decision_events_before_16;

-- The number of each stream event, per tenant, without gaps.
CREATE TABLE decision_sequence (
    tenant_id BLOB NOT NULL,
    sequence  INTEGER NOT NULL,
    event_id  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, sequence)
) STRICT, WITHOUT ROWID;

-- The last audit event a round has looked at: every stream event at or
-- below it is numbered. One row.
CREATE TABLE decision_numbering (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    event_id  INTEGER NOT NULL
) STRICT;
INSERT INTO decision_numbering (singleton, event_id)
SELECT 1, COALESCE(max(event_id), 0) FROM audit_events;
