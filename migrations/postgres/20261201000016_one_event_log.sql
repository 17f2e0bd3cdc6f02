-- One event log: the audit row of a change to a comment's status or queue
-- membership is also its decision-stream event (issue #12).
--
-- Before: every such change wrote an audit row and a `decision_events` row
-- describing the same thing, and numbering updated the second one (a new
-- row version and two new index entries per event, left for vacuum).
--
-- Now: the audit row carries what the stream needs besides what it already
-- has (`article_id`, `queued`, `version`; `from_state`/`to_state` are the
-- statuses), and a row is a stream event exactly when `queued` is set.
-- Numbering appends one narrow row per event to `decision_sequence`
-- (tenant, number → audit event) instead of updating the event, so the
-- write path writes one row per change and numbering touches no row it
-- wrote.
--
-- Events written before this migration stay where they were written, in
-- `decision_events_before_16`, all numbered here; the stream reads them
-- before the new ones (numbers continue per tenant). An older binary still
-- running after the upgrade fails to write (the table it appends to is
-- gone) instead of writing events nobody would number.

ALTER TABLE audit_events
    ADD COLUMN article_id text,
    -- Set on stream events only: whether the comment has an open review
    -- item after the change.
    ADD COLUMN queued boolean,
    ADD COLUMN version bigint;
-- The key of audit_events leads with the tenant; rounds read across tenants.
CREATE INDEX audit_events_stream ON audit_events (event_id) WHERE queued IS NOT NULL;
COMMENT ON INDEX audit_events_stream IS
    'Numbering rounds: the stream events after the watermark (decision_numbering); partial: stream events only';

-- Number what the old scheme had not numbered yet, with new writers kept
-- out (they take this lock shared) and in the order of the old scheme.
SELECT pg_advisory_xact_lock(7885631859422491759);
WITH pending AS (
    SELECT event_id, tenant_id FROM decision_events WHERE sequence IS NULL),
bases AS (
    SELECT tenant_id, COALESCE(max(sequence), 0) AS base FROM decision_events GROUP BY tenant_id),
numbered AS (
    SELECT p.event_id,
        b.base + row_number() OVER (PARTITION BY p.tenant_id ORDER BY p.event_id) AS sequence
    FROM pending p JOIN bases b USING (tenant_id))
UPDATE decision_events d SET sequence = n.sequence FROM numbered n WHERE d.event_id = n.event_id;

DROP TRIGGER decision_events_numbering_lock ON decision_events;
DROP FUNCTION decision_events_numbering_lock();
ALTER TABLE decision_events RENAME TO decision_events_before_16;
ALTER INDEX decision_events_pkey RENAME TO decision_events_before_16_pkey;
ALTER INDEX decision_events_by_sequence RENAME TO decision_events_before_16_by_sequence;
COMMENT ON INDEX decision_events_before_16_pkey IS
    'None since migration 16: the table is read by sequence only';
COMMENT ON INDEX decision_events_before_16_by_sequence IS
    'WatchDecisions and WatchQueue: the events written before migration 16 after a cursor; a tenant''s last number before it';

-- The number of each stream event, per tenant, without gaps.
CREATE TABLE decision_sequence (
    tenant_id uuid NOT NULL,
    sequence  bigint NOT NULL,
    event_id  bigint NOT NULL,
    PRIMARY KEY (tenant_id, sequence)
);
COMMENT ON INDEX decision_sequence_pkey IS
    'WatchDecisions and WatchQueue: the events after a cursor; a round''s next number per tenant (max); one event per number';

-- The watermark now counts audit events: every stream event at or below it
-- is numbered (there is none yet).
UPDATE decision_numbering SET event_id = (SELECT COALESCE(max(event_id), 0) FROM audit_events);

-- Every transaction appending audit events holds the numbering lock shared
-- (writers take it first, explicitly; this is the guarantee), so a round
-- holding it exclusively sees every event below its watermark committed.
-- Audit events that are not stream events do not need it; the trigger takes
-- it for them too, which can only make them wait for a running round (at
-- most the round's lock wait, 200 ms).
CREATE FUNCTION audit_events_numbering_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(7885631859422491759);
    RETURN NULL;
END
$$;
CREATE TRIGGER audit_events_numbering_lock
    BEFORE INSERT ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_numbering_lock();
