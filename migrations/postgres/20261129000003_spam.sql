-- Spam score: fingerprints for author history, per-tenant model weights (as
-- offsets from the seed model shipped in the binary), and the labels learned.

ALTER TABLE comments ADD COLUMN text_hash bigint, ADD COLUMN simhash bigint;
-- Author history in one round trip: the author's latest comments…
CREATE INDEX comments_by_author ON comments (tenant_id, author_id, create_time DESC);
-- …and the same text by anyone recently.
CREATE INDEX comments_by_text_hash ON comments (tenant_id, text_hash, create_time)
    WHERE text_hash IS NOT NULL;

-- One row per tenant that has learned anything; `version` grows by one per
-- update, and the row lock serialises a tenant's updates.
CREATE TABLE spam_models (
    tenant_id     uuid PRIMARY KEY REFERENCES tenants (tenant_id),
    version       bigint NOT NULL CHECK (version > 0),
    bias          double precision NOT NULL,
    spam_examples bigint NOT NULL CHECK (spam_examples >= 0),
    ham_examples  bigint NOT NULL CHECK (ham_examples >= 0),
    update_time   timestamptz NOT NULL
);

-- Offsets added to the seed model's weights; `version` is the update that
-- last wrote the row, so replicas load only what changed.
CREATE TABLE spam_weights (
    tenant_id uuid NOT NULL REFERENCES tenants (tenant_id),
    feature   integer NOT NULL CHECK (feature >= 0),
    weight    double precision NOT NULL,
    version   bigint NOT NULL,
    PRIMARY KEY (tenant_id, feature)
);
CREATE INDEX spam_weights_by_version ON spam_weights (tenant_id, version);

-- The last label taught for a comment: the same label twice teaches once.
CREATE TABLE spam_labels (
    tenant_id   uuid NOT NULL,
    comment_id  uuid NOT NULL,
    spam        boolean NOT NULL,
    source      text NOT NULL CHECK (source IN ('review', 'mark')),
    actor       text NOT NULL,
    create_time timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, comment_id),
    FOREIGN KEY (tenant_id, comment_id) REFERENCES comments (tenant_id, comment_id)
);
