-- Publisher rules, their history, masking, and the version replicas watch.

ALTER TABLE comments ADD COLUMN original_body text;

ALTER TABLE tenants ADD COLUMN rules_version bigint NOT NULL DEFAULT 0;

CREATE TABLE rules (
    tenant_id   uuid NOT NULL REFERENCES tenants (tenant_id),
    rule_id     text NOT NULL,
    revision    bigint NOT NULL,
    definition  jsonb NOT NULL,
    create_time timestamptz NOT NULL,
    update_time timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, rule_id)
);

-- Every version of every rule, deletions included (definition NULL).
CREATE TABLE rule_revisions (
    tenant_id   uuid NOT NULL,
    rule_id     text NOT NULL,
    revision    bigint NOT NULL,
    definition  jsonb,
    actor       text NOT NULL,
    create_time timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, rule_id, revision)
);
