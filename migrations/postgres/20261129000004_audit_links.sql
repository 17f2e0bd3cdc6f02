-- Audit trail queryable by comment and by author (ListAuditEvents): every
-- event about a comment, or about the review item of a comment, carries the
-- comment and its author; events about an author (standing changes) carry
-- the author.
ALTER TABLE audit_events ADD COLUMN comment_id uuid, ADD COLUMN author_id text;

-- Rows written before these columns existed get their links. This fills in
-- derived columns only; what the events record is left as it was, and the
-- trail is append-only again before the migration commits.
ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
UPDATE audit_events a SET comment_id = c.comment_id, author_id = c.author_id
FROM comments c
WHERE a.subject_type = 'comment' AND c.tenant_id = a.tenant_id
  AND c.comment_id::text = a.subject_id;
UPDATE audit_events a SET comment_id = c.comment_id, author_id = c.author_id
FROM review_items r
JOIN comments c ON c.tenant_id = r.tenant_id AND c.comment_id = r.comment_id
WHERE a.subject_type = 'review' AND r.tenant_id = a.tenant_id
  AND r.review_id::text = a.subject_id;
ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;

-- The subject index only served look-ups that now go by comment or author.
DROP INDEX audit_events_by_subject;
CREATE INDEX audit_events_by_comment ON audit_events (tenant_id, comment_id, event_id)
    WHERE comment_id IS NOT NULL;
CREATE INDEX audit_events_by_author ON audit_events (tenant_id, author_id, event_id)
    WHERE author_id IS NOT NULL;
