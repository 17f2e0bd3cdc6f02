-- One set of tables for every per-tenant classifier (spam, toxicity): the
-- spam tables gain a `kind` and generic names. A toxicity lesson is kept
-- exactly as a spam one: offsets from the shipped seed, a version per
-- tenant and kind, one label per comment and kind.

ALTER TABLE spam_models RENAME TO models;
ALTER TABLE models RENAME COLUMN spam_examples TO positive_examples;
ALTER TABLE models RENAME COLUMN ham_examples TO negative_examples;
ALTER TABLE models ADD COLUMN kind text NOT NULL DEFAULT 'spam'
    CHECK (kind IN ('spam', 'toxicity'));
ALTER TABLE models ALTER COLUMN kind DROP DEFAULT;
ALTER TABLE models DROP CONSTRAINT spam_models_pkey;
ALTER TABLE models ADD PRIMARY KEY (tenant_id, kind);

ALTER TABLE spam_weights RENAME TO model_weights;
ALTER TABLE model_weights ADD COLUMN kind text NOT NULL DEFAULT 'spam'
    CHECK (kind IN ('spam', 'toxicity'));
ALTER TABLE model_weights ALTER COLUMN kind DROP DEFAULT;
ALTER TABLE model_weights DROP CONSTRAINT spam_weights_pkey;
ALTER TABLE model_weights ADD PRIMARY KEY (tenant_id, kind, feature);
DROP INDEX spam_weights_by_version;
CREATE INDEX model_weights_by_version ON model_weights (tenant_id, kind, version);

-- `positive`: spam, or toxic; `category` names the toxicity category taught.
ALTER TABLE spam_labels RENAME TO model_labels;
ALTER TABLE model_labels RENAME COLUMN spam TO positive;
ALTER TABLE model_labels ADD COLUMN kind text NOT NULL DEFAULT 'spam'
    CHECK (kind IN ('spam', 'toxicity'));
ALTER TABLE model_labels ALTER COLUMN kind DROP DEFAULT;
ALTER TABLE model_labels ADD COLUMN category text
    CHECK (category IS NULL OR (kind = 'toxicity' AND positive));
ALTER TABLE model_labels DROP CONSTRAINT spam_labels_pkey;
ALTER TABLE model_labels ADD PRIMARY KEY (tenant_id, kind, comment_id);
