-- Key lifecycle and per-key rates (issue #14): a name to tell keys apart,
-- an optional expiry, the last use (written at most once a minute per key),
-- and an optional rate that overrides the server's default.
ALTER TABLE api_keys
    ADD COLUMN name text NOT NULL DEFAULT '',
    ADD COLUMN expire_time timestamptz,
    ADD COLUMN last_use_time timestamptz,
    ADD COLUMN requests_per_second integer CHECK (requests_per_second > 0);
-- Every replica polls for keys revoked in the last seconds, so a revocation
-- applies everywhere within a second without waiting for cache expiry.
CREATE INDEX api_keys_revoked ON api_keys (revoke_time) WHERE revoke_time IS NOT NULL;

-- Live replicas, each refreshing its row every 2 s: rates enforced in
-- memory are split by their number, so the shares add up to the rate.
CREATE TABLE replicas (
    replica_id uuid PRIMARY KEY,
    start_time timestamptz NOT NULL,
    seen_time  timestamptz NOT NULL
);
