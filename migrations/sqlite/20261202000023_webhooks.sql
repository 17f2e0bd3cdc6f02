-- Webhook endpoints (issue #15). The signing secret is sealed with a key
-- derived from the server secret (never stored as given); during a
-- rotation the previous one keeps signing until previous_secret_expire_time.
-- event_types: a JSON array of event type names, empty for all.
CREATE TABLE webhooks (
    tenant_id                   BLOB NOT NULL REFERENCES tenants (tenant_id),
    webhook_id                  BLOB NOT NULL,
    url                         TEXT NOT NULL,
    description                 TEXT NOT NULL,
    event_types                 TEXT NOT NULL,
    secret                      TEXT NOT NULL,
    previous_secret             TEXT,
    previous_secret_expire_time INTEGER,
    enabled                     INTEGER NOT NULL,
    disabled_reason             TEXT NOT NULL,
    create_time                 INTEGER NOT NULL,
    update_time                 INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, webhook_id)
);
