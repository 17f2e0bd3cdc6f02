-- Numbering decision events by a watermark instead of a partial index.
--
-- Before: rounds found unnumbered events through `decision_events_unnumbered`
-- (WHERE sequence IS NULL). Numbering an event updates it, which leaves the
-- old version's entry in that index until vacuum; under load a round scanned
-- tens of thousands of dead entries to find a few dozen events (13 ms per
-- round with 50k dead entries, a third of a core at 2.5k comments/s).
--
-- Now: every transaction that appends decision events holds the numbering
-- lock in shared mode (taken by the writer before it writes anything, and by
-- the trigger below as a guarantee), and a round holds it exclusively. While
-- a round holds it, every event whose id has been drawn is committed or rolled
-- back, so the events after the watermark are exactly the committed ones not
-- yet seen: a range scan of the primary key, then the watermark moves to the
-- last one. The lock is the advisory lock rounds already took
-- (7885631859422491759, "moderato" in ASCII).

CREATE FUNCTION decision_events_numbering_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(7885631859422491759);
    RETURN NULL;
END
$$;
CREATE TRIGGER decision_events_numbering_lock
    BEFORE INSERT ON decision_events
    FOR EACH STATEMENT EXECUTE FUNCTION decision_events_numbering_lock();

-- The last event id a round has looked at: every event at or below it is
-- numbered. One row.
CREATE TABLE decision_numbering (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    event_id  bigint NOT NULL
);
-- Carried forward: the events a round of the old scheme had not numbered yet
-- lie after the watermark (the few numbered ones among them are skipped).
INSERT INTO decision_numbering (event_id)
SELECT COALESCE(
    (SELECT min(event_id) - 1 FROM decision_events WHERE sequence IS NULL),
    (SELECT max(event_id) FROM decision_events),
    0);

DROP INDEX decision_events_unnumbered;
