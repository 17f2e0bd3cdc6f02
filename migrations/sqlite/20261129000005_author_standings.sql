-- Author standing (SetAuthorStanding): trusted, premoderated, suspended or
-- banned readers. No row means normal. `until` ends a standing by itself:
-- readers compare it with the clock, nothing has to run at that time.
CREATE TABLE author_standings (
    tenant_id   BLOB NOT NULL REFERENCES tenants (tenant_id),
    author_id   TEXT NOT NULL,
    standing    TEXT NOT NULL
        CHECK (standing IN ('trusted', 'normal', 'premoderated', 'suspended', 'banned')),
    until       INTEGER,
    reason      TEXT NOT NULL,
    set_by      TEXT NOT NULL,
    update_time INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, author_id)
) STRICT;
