-- A tenant's review and reject thresholds per toxicity category:
-- `{"insult": [review, reject], ...}`, NULL while they are the defaults
-- (so a better default in a new release reaches the tenant).
ALTER TABLE tenants ADD COLUMN toxicity_thresholds TEXT
    CHECK (toxicity_thresholds IS NULL OR json_type(toxicity_thresholds) = 'object');
