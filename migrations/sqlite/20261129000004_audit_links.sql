-- Audit trail queryable by comment and by author (ListAuditEvents): every
-- event about a comment, or about the review item of a comment, carries the
-- comment and its author; events about an author (standing changes) carry
-- the author.
ALTER TABLE audit_events ADD COLUMN comment_id BLOB;
ALTER TABLE audit_events ADD COLUMN author_id TEXT;

-- Rows written before these columns existed get their links. This fills in
-- derived columns only; what the events record is left as it was, and the
-- trail is append-only again before the migration commits. Ids are stored as
-- 16-byte blobs and written in events as hyphenated text; `unhex` turns the
-- text back into the key, so each row is one primary-key look-up.
DROP TRIGGER audit_events_no_update;
UPDATE audit_events SET (comment_id, author_id) = (
    SELECT c.comment_id, c.author_id FROM comments c
    WHERE c.tenant_id = audit_events.tenant_id
      AND c.comment_id = unhex(replace(audit_events.subject_id, '-', '')))
WHERE subject_type = 'comment';
UPDATE audit_events SET (comment_id, author_id) = (
    SELECT c.comment_id, c.author_id FROM review_items r
    JOIN comments c ON c.tenant_id = r.tenant_id AND c.comment_id = r.comment_id
    WHERE r.tenant_id = audit_events.tenant_id
      AND r.review_id = unhex(replace(audit_events.subject_id, '-', '')))
WHERE subject_type = 'review';
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

-- The subject index only served look-ups that now go by comment or author.
DROP INDEX audit_events_by_subject;
CREATE INDEX audit_events_by_comment ON audit_events (tenant_id, comment_id, event_id)
    WHERE comment_id IS NOT NULL;
CREATE INDEX audit_events_by_author ON audit_events (tenant_id, author_id, event_id)
    WHERE author_id IS NOT NULL;
