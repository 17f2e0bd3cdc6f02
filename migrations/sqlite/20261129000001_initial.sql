-- Moderato's initial schema (SQLite). Same tables as Postgres; ids are 16-byte
-- BLOBs, times are INTEGER microseconds since the Unix epoch (UTC), JSON is TEXT.

CREATE TABLE tenants (
    tenant_id        BLOB PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    moderation_mode  TEXT NOT NULL CHECK (moderation_mode IN ('post', 'pre')),
    review_threshold REAL NOT NULL CHECK (review_threshold BETWEEN 0 AND 1),
    reject_threshold REAL NOT NULL CHECK (reject_threshold BETWEEN 0 AND 1),
    max_body_chars   INTEGER NOT NULL CHECK (max_body_chars > 0),
    create_time      INTEGER NOT NULL,
    update_time      INTEGER NOT NULL,
    CHECK (review_threshold <= reject_threshold)
) STRICT;

CREATE TABLE api_keys (
    tenant_id   BLOB NOT NULL REFERENCES tenants (tenant_id),
    key_id      BLOB NOT NULL,
    key_hash    BLOB NOT NULL,
    key_prefix  TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('publisher', 'moderator', 'admin')),
    create_time INTEGER NOT NULL,
    revoke_time INTEGER,
    PRIMARY KEY (tenant_id, key_id)
) STRICT;
CREATE UNIQUE INDEX api_keys_by_hash ON api_keys (key_hash);

CREATE TABLE comments (
    tenant_id           BLOB NOT NULL REFERENCES tenants (tenant_id),
    comment_id          BLOB NOT NULL,
    client_comment_id   TEXT,
    article_id          TEXT NOT NULL,
    author_id           TEXT NOT NULL,
    author_display_name TEXT NOT NULL,
    author_ip           TEXT,
    parent_comment_id   BLOB,
    language            TEXT NOT NULL,
    body                TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('approved', 'pending_review', 'rejected')),
    spam_score          REAL NOT NULL CHECK (spam_score BETWEEN 0 AND 1),
    reasons             TEXT NOT NULL,
    create_time         INTEGER NOT NULL,
    update_time         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, comment_id)
) STRICT;
CREATE UNIQUE INDEX comments_by_client_id ON comments (tenant_id, client_comment_id)
    WHERE client_comment_id IS NOT NULL;
CREATE INDEX comments_by_status ON comments (tenant_id, status, create_time DESC, comment_id DESC);
CREATE INDEX comments_by_article ON comments (tenant_id, article_id, status, create_time DESC, comment_id DESC);

CREATE TABLE review_items (
    tenant_id         BLOB NOT NULL,
    review_id         BLOB NOT NULL,
    comment_id        BLOB NOT NULL,
    article_id        TEXT NOT NULL,
    priority          INTEGER NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('open', 'decided')),
    enqueue_time      INTEGER NOT NULL,
    claimed_by        TEXT,
    lease_expire_time INTEGER,
    decided_by        TEXT,
    decision          TEXT CHECK (decision IN ('approve', 'reject')),
    note              TEXT,
    decide_time       INTEGER,
    PRIMARY KEY (tenant_id, review_id),
    FOREIGN KEY (tenant_id, comment_id) REFERENCES comments (tenant_id, comment_id)
) STRICT;
CREATE INDEX review_items_open ON review_items (tenant_id, priority DESC, enqueue_time, review_id)
    WHERE state = 'open';
CREATE INDEX review_items_open_by_article ON review_items (tenant_id, article_id, priority DESC, enqueue_time, review_id)
    WHERE state = 'open';
CREATE UNIQUE INDEX review_items_one_open_per_comment ON review_items (tenant_id, comment_id)
    WHERE state = 'open';

-- SQLite's AUTOINCREMENT needs a single-column key, so here (unlike Postgres)
-- the key is event_id alone and tenant_id leads the secondary indexes.
CREATE TABLE audit_events (
    event_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    BLOB NOT NULL,
    create_time  INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    from_state   TEXT,
    to_state     TEXT,
    detail       TEXT NOT NULL
);
CREATE INDEX audit_events_by_tenant ON audit_events (tenant_id, event_id);
CREATE INDEX audit_events_by_subject ON audit_events (tenant_id, subject_type, subject_id, event_id);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
