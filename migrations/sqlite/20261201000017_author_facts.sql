-- Author facts maintained, not scanned (issue #12; the Postgres migration
-- of the same name says why and what an entry holds).
CREATE TABLE author_facts (
    tenant_id BLOB NOT NULL,
    author_id TEXT NOT NULL,
    recent    BLOB NOT NULL,
    -- The author's comments by current status (GetAuthor).
    approved       INTEGER NOT NULL,
    pending_review INTEGER NOT NULL,
    rejected       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, author_id)
) STRICT, WITHOUT ROWID;

-- Carried forward: each author's latest 50 comments and counts. Integers
-- are written as 16 hex digits (printf's %x prints a negative value's two's
-- complement).
INSERT INTO author_facts (tenant_id, author_id, recent, approved, pending_review, rejected)
SELECT tenant_id, author_id,
    CAST(group_concat(entry, '' ORDER BY create_time DESC, comment_id DESC)
        FILTER (WHERE latest <= 50) AS BLOB),
    count(*) FILTER (WHERE status = 'approved'),
    count(*) FILTER (WHERE status = 'pending_review'),
    count(*) FILTER (WHERE status = 'rejected')
FROM (
    SELECT tenant_id, author_id, create_time, comment_id, status, latest,
        substr(comment_id, 9, 8)
            || unhex(printf('%016x', COALESCE(text_hash, 0)))
            || unhex(printf('%016x', COALESCE(simhash, 0)))
            || unhex(printf('%016x', create_time))
            || CASE status WHEN 'approved' THEN 'a' WHEN 'pending_review' THEN 'p' ELSE 'r' END
            AS entry
    FROM (
        SELECT *, row_number() OVER (PARTITION BY tenant_id, author_id
                                     ORDER BY create_time DESC, comment_id DESC) AS latest
        FROM comments
    )
)
GROUP BY tenant_id, author_id;
