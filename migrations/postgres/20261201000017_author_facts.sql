-- Author facts maintained, not scanned (issue #12).
--
-- Before: every submission read the author's latest 50 comments through
-- comments_by_author, 50 heap fetches for a prolific author (a spammer is
-- one), decoded as 50 rows.
--
-- Now: one row per author holds the latest 50 as fixed 33-byte entries,
-- newest first (`storage::authors::RecentEntry`): the last 8 bytes of the
-- comment id, the exact and simhash fingerprints, the creation time in
-- microseconds since the epoch (all big-endian) and a status byte (a, p,
-- r). The group commit prepends the new entries in the statement that
-- stores the comments; a status change sets the entry's status byte in its
-- transaction, with the counts by status. A submission reads the row by
-- key, and so does GetAuthor for the counts (it counted every comment of
-- the author before).
CREATE TABLE author_facts (
    tenant_id uuid NOT NULL,
    author_id text NOT NULL,
    recent    bytea NOT NULL,
    -- The author's comments by current status (GetAuthor).
    approved       bigint NOT NULL,
    pending_review bigint NOT NULL,
    rejected       bigint NOT NULL,
    PRIMARY KEY (tenant_id, author_id)
);
-- 1.65 kB at most: kept in the row, never compressed or moved out of line.
ALTER TABLE author_facts ALTER COLUMN recent SET STORAGE PLAIN;
COMMENT ON INDEX author_facts_pkey IS
    'SubmitComment: the author''s facts by key; the group commit''s upsert; a status change; GetAuthor''s counts';
COMMENT ON INDEX comments_by_author IS
    'GetAuthor''s recent comments (the spam history reads author_facts since migration 17)';

-- Carried forward: each author's latest 50 comments and counts.
INSERT INTO author_facts (tenant_id, author_id, recent, approved, pending_review, rejected)
SELECT tenant_id, author_id,
    string_agg(entry, ''::bytea ORDER BY create_time DESC, comment_id DESC)
        FILTER (WHERE latest <= 50),
    count(*) FILTER (WHERE status = 'approved'),
    count(*) FILTER (WHERE status = 'pending_review'),
    count(*) FILTER (WHERE status = 'rejected')
FROM (
    SELECT tenant_id, author_id, create_time, comment_id, status,
        substring(uuid_send(comment_id) FROM 9 FOR 8)
            || int8send(COALESCE(text_hash, 0))
            || int8send(COALESCE(simhash, 0))
            || int8send((extract(epoch FROM create_time) * 1000000)::bigint)
            || CASE status WHEN 'approved' THEN '\x61'::bytea
                           WHEN 'pending_review' THEN '\x70'::bytea
                           ELSE '\x72'::bytea END AS entry,
        row_number() OVER (PARTITION BY tenant_id, author_id
                           ORDER BY create_time DESC, comment_id DESC) AS latest
    FROM comments
) c
GROUP BY tenant_id, author_id;
