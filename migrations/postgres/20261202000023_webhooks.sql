-- Webhook endpoints (issue #15). The signing secret is sealed with a key
-- derived from the server secret (never stored as given); during a
-- rotation the previous one keeps signing until previous_secret_expire_time.
-- event_types: a JSON array of event type names, empty for all.
CREATE TABLE webhooks (
    tenant_id                   uuid NOT NULL REFERENCES tenants (tenant_id),
    webhook_id                  uuid NOT NULL,
    url                         text NOT NULL,
    description                 text NOT NULL,
    event_types                 text NOT NULL,
    secret                      text NOT NULL,
    previous_secret             text,
    previous_secret_expire_time timestamptz,
    enabled                     boolean NOT NULL,
    disabled_reason             text NOT NULL,
    create_time                 timestamptz NOT NULL,
    update_time                 timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, webhook_id)
);
COMMENT ON INDEX webhooks_pkey IS 'A tenant''s endpoints, by id and in creation order (ids are UUIDv7)';
