-- Webhook deliveries (issue #15): where each endpoint is in the event log,
-- which replica delivers to it, and what became of each event sent. See
-- the Postgres migration of the same number for what the columns mean.
ALTER TABLE webhooks ADD COLUMN cursor_event_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN cursor_sequence INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN lease_owner BLOB;
ALTER TABLE webhooks ADD COLUMN lease_expire_time INTEGER;
ALTER TABLE webhooks ADD COLUMN failing_since INTEGER;

CREATE TABLE webhook_deliveries (
    tenant_id          BLOB NOT NULL,
    webhook_id         BLOB NOT NULL,
    event_id           INTEGER NOT NULL,
    sequence           INTEGER,
    message_id         TEXT NOT NULL,
    event_type         TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'retrying')),
    attempts           INTEGER NOT NULL,
    last_status        INTEGER,
    last_error         TEXT NOT NULL,
    event_time         INTEGER NOT NULL,
    first_attempt_time INTEGER NOT NULL,
    last_attempt_time  INTEGER NOT NULL,
    next_attempt_time  INTEGER,
    PRIMARY KEY (tenant_id, webhook_id, event_id),
    FOREIGN KEY (tenant_id, webhook_id) REFERENCES webhooks (tenant_id, webhook_id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX webhook_deliveries_open ON webhook_deliveries (tenant_id, webhook_id, event_id)
    WHERE state IN ('pending', 'retrying');
