-- Moderato's initial schema (Postgres). tenant_id leads every key and index, so
-- the tables can later be partitioned or sharded by tenant.

CREATE TABLE tenants (
    tenant_id        uuid PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    moderation_mode  text NOT NULL CHECK (moderation_mode IN ('post', 'pre')),
    review_threshold double precision NOT NULL CHECK (review_threshold BETWEEN 0 AND 1),
    reject_threshold double precision NOT NULL CHECK (reject_threshold BETWEEN 0 AND 1),
    max_body_chars   integer NOT NULL CHECK (max_body_chars > 0),
    create_time      timestamptz NOT NULL,
    update_time      timestamptz NOT NULL,
    CHECK (review_threshold <= reject_threshold)
);

CREATE TABLE api_keys (
    tenant_id   uuid NOT NULL REFERENCES tenants (tenant_id),
    key_id      uuid NOT NULL,
    key_hash    bytea NOT NULL,
    key_prefix  text NOT NULL,
    role        text NOT NULL CHECK (role IN ('publisher', 'moderator', 'admin')),
    create_time timestamptz NOT NULL,
    revoke_time timestamptz,
    PRIMARY KEY (tenant_id, key_id)
);
-- Authentication looks a key up before it knows the tenant: the one index not
-- led by tenant_id.
CREATE UNIQUE INDEX api_keys_by_hash ON api_keys (key_hash);

CREATE TABLE comments (
    tenant_id           uuid NOT NULL REFERENCES tenants (tenant_id),
    comment_id          uuid NOT NULL,
    client_comment_id   text,
    article_id          text NOT NULL,
    author_id           text NOT NULL,
    author_display_name text NOT NULL,
    author_ip           text,
    parent_comment_id   uuid,
    language            text NOT NULL,
    body                text NOT NULL,
    status              text NOT NULL CHECK (status IN ('approved', 'pending_review', 'rejected')),
    spam_score          double precision NOT NULL CHECK (spam_score BETWEEN 0 AND 1),
    reasons             jsonb NOT NULL,
    create_time         timestamptz NOT NULL,
    update_time         timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, comment_id)
);
CREATE UNIQUE INDEX comments_by_client_id ON comments (tenant_id, client_comment_id)
    WHERE client_comment_id IS NOT NULL;
CREATE INDEX comments_by_status ON comments (tenant_id, status, create_time DESC, comment_id DESC);
CREATE INDEX comments_by_article ON comments (tenant_id, article_id, status, create_time DESC, comment_id DESC);

CREATE TABLE review_items (
    tenant_id         uuid NOT NULL,
    review_id         uuid NOT NULL,
    comment_id        uuid NOT NULL,
    article_id        text NOT NULL,
    priority          integer NOT NULL,
    state             text NOT NULL CHECK (state IN ('open', 'decided')),
    enqueue_time      timestamptz NOT NULL,
    claimed_by        text,
    lease_expire_time timestamptz,
    decided_by        text,
    decision          text CHECK (decision IN ('approve', 'reject')),
    note              text,
    decide_time       timestamptz,
    PRIMARY KEY (tenant_id, review_id),
    FOREIGN KEY (tenant_id, comment_id) REFERENCES comments (tenant_id, comment_id)
);
CREATE INDEX review_items_open ON review_items (tenant_id, priority DESC, enqueue_time, review_id)
    WHERE state = 'open';
CREATE INDEX review_items_open_by_article ON review_items (tenant_id, article_id, priority DESC, enqueue_time, review_id)
    WHERE state = 'open';
CREATE UNIQUE INDEX review_items_one_open_per_comment ON review_items (tenant_id, comment_id)
    WHERE state = 'open';

CREATE TABLE audit_events (
    tenant_id    uuid NOT NULL,
    event_id     bigint GENERATED ALWAYS AS IDENTITY,
    create_time  timestamptz NOT NULL,
    actor        text NOT NULL,
    action       text NOT NULL,
    subject_type text NOT NULL,
    subject_id   text NOT NULL,
    from_state   text,
    to_state     text,
    detail       jsonb NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX audit_events_by_subject ON audit_events (tenant_id, subject_type, subject_id, event_id);

-- The audit trail is append-only, whoever connects.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END
$$;
CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
