-- Key lifecycle and per-key rates (issue #14); replicas announce themselves
-- so per-replica shares of a rate add up to the rate.
ALTER TABLE api_keys ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN expire_time INTEGER;
ALTER TABLE api_keys ADD COLUMN last_use_time INTEGER;
ALTER TABLE api_keys ADD COLUMN requests_per_second INTEGER CHECK (requests_per_second > 0);
-- Every replica polls for keys revoked in the last seconds.
CREATE INDEX api_keys_revoked ON api_keys (revoke_time) WHERE revoke_time IS NOT NULL;

CREATE TABLE replicas (
    replica_id BLOB PRIMARY KEY,
    start_time INTEGER NOT NULL,
    seen_time  INTEGER NOT NULL
) STRICT;
