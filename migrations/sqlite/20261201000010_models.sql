-- One set of tables for every per-tenant classifier (spam, toxicity): the
-- spam tables gain a `kind` and generic names. A toxicity lesson is kept
-- exactly as a spam one: offsets from the shipped seed, a version per
-- tenant and kind, one label per comment and kind. SQLite cannot change a
-- primary key in place: the tables are rebuilt and their rows copied.

CREATE TABLE models (
    tenant_id         BLOB NOT NULL REFERENCES tenants (tenant_id),
    kind              TEXT NOT NULL CHECK (kind IN ('spam', 'toxicity')),
    version           INTEGER NOT NULL CHECK (version > 0),
    bias              REAL NOT NULL,
    positive_examples INTEGER NOT NULL CHECK (positive_examples >= 0),
    negative_examples INTEGER NOT NULL CHECK (negative_examples >= 0),
    update_time       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind)
) STRICT;
INSERT INTO models
    SELECT tenant_id, 'spam', version, bias, spam_examples, ham_examples, update_time
    FROM spam_models;
DROP TABLE spam_models;

CREATE TABLE model_weights (
    tenant_id BLOB NOT NULL REFERENCES tenants (tenant_id),
    kind      TEXT NOT NULL CHECK (kind IN ('spam', 'toxicity')),
    feature   INTEGER NOT NULL CHECK (feature >= 0),
    weight    REAL NOT NULL,
    version   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind, feature)
) STRICT;
INSERT INTO model_weights
    SELECT tenant_id, 'spam', feature, weight, version FROM spam_weights;
DROP TABLE spam_weights;
CREATE INDEX model_weights_by_version ON model_weights (tenant_id, kind, version);

-- `positive`: spam, or toxic; `category` names the toxicity category taught.
CREATE TABLE model_labels (
    tenant_id   BLOB NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('spam', 'toxicity')),
    comment_id  BLOB NOT NULL,
    positive    INTEGER NOT NULL CHECK (positive IN (0, 1)),
    category    TEXT CHECK (category IS NULL OR (kind = 'toxicity' AND positive = 1)),
    source      TEXT NOT NULL CHECK (source IN ('review', 'mark')),
    actor       TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind, comment_id),
    FOREIGN KEY (tenant_id, comment_id) REFERENCES comments (tenant_id, comment_id)
) STRICT;
INSERT INTO model_labels
    SELECT tenant_id, 'spam', comment_id, spam, NULL, source, actor, create_time
    FROM spam_labels;
DROP TABLE spam_labels;
