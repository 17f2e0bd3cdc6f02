-- Webhook deliveries (issue #15): where each endpoint is in the event log,
-- which replica delivers to it, and what became of each event sent.
--
-- An endpoint reads the tenant's audit events after cursor_event_id (up to
-- the numbering watermark, below which every event is committed) and the
-- decision stream after cursor_sequence, so stream events carry the numbers
-- WatchDecisions gives them. Both cursors move together, in the same
-- transaction as the delivery row of the event they pass. A new endpoint
-- starts at the log's end (set by the insert).
--
-- The lease: the replica named by lease_owner delivers until
-- lease_expire_time and renews it while it works; when it lapses another
-- replica takes the endpoint over. failing_since: the first failed attempt
-- of the current run of failures (NULL after a success).
ALTER TABLE webhooks
    ADD COLUMN cursor_event_id   bigint NOT NULL DEFAULT 0,
    ADD COLUMN cursor_sequence   bigint NOT NULL DEFAULT 0,
    ADD COLUMN lease_owner       uuid,
    ADD COLUMN lease_expire_time timestamptz,
    ADD COLUMN failing_since     timestamptz;

-- One row per event sent to an endpoint (events an endpoint does not
-- subscribe to have none). state: 'pending' (the endpoint's head, retried
-- at next_attempt_time; at most one per endpoint), 'delivered', 'failed'
-- (given up after the retry schedule, or refused with 410), 'retrying' (an
-- admin asked for one more attempt). message_id is the webhook-id header.
CREATE TABLE webhook_deliveries (
    tenant_id         uuid NOT NULL,
    webhook_id        uuid NOT NULL,
    event_id          bigint NOT NULL,
    sequence          bigint,
    message_id        text NOT NULL,
    event_type        text NOT NULL,
    state             text NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'retrying')),
    attempts          integer NOT NULL,
    last_status       integer,
    last_error        text NOT NULL,
    event_time        timestamptz NOT NULL,
    first_attempt_time timestamptz NOT NULL,
    last_attempt_time timestamptz NOT NULL,
    next_attempt_time timestamptz,
    PRIMARY KEY (tenant_id, webhook_id, event_id),
    FOREIGN KEY (tenant_id, webhook_id) REFERENCES webhooks (tenant_id, webhook_id) ON DELETE CASCADE
);
COMMENT ON INDEX webhook_deliveries_pkey IS
    'ListWebhookDeliveries (newest first, by event); a delivery by its event';
CREATE INDEX webhook_deliveries_open ON webhook_deliveries (tenant_id, webhook_id, event_id)
    WHERE state IN ('pending', 'retrying');
COMMENT ON INDEX webhook_deliveries_open IS
    'The delivering replica: an endpoint''s head and the retries asked for; partial: open rows only';
