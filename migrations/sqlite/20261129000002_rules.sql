-- Publisher rules, their history, masking, and the version replicas watch.

ALTER TABLE comments ADD COLUMN original_body TEXT;

ALTER TABLE tenants ADD COLUMN rules_version INTEGER NOT NULL DEFAULT 0;

CREATE TABLE rules (
    tenant_id   BLOB NOT NULL REFERENCES tenants (tenant_id),
    rule_id     TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    definition  TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, rule_id)
) STRICT;

CREATE TABLE rule_revisions (
    tenant_id   BLOB NOT NULL,
    rule_id     TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    definition  TEXT,
    actor       TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, rule_id, revision)
) STRICT;
