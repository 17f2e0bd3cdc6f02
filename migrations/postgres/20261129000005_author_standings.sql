-- Author standing (SetAuthorStanding): trusted, premoderated, suspended or
-- banned readers. No row means normal. `until` ends a standing by itself:
-- readers compare it with the clock, nothing has to run at that time.
CREATE TABLE author_standings (
    tenant_id   uuid NOT NULL REFERENCES tenants (tenant_id),
    author_id   text NOT NULL,
    standing    text NOT NULL
        CHECK (standing IN ('trusted', 'normal', 'premoderated', 'suspended', 'banned')),
    until       timestamptz,
    reason      text NOT NULL,
    set_by      text NOT NULL,
    update_time timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, author_id)
);
