-- A tenant's external classifier (issue #15): JSON text
-- {"kind", "url", "timeout_ms", "api_key"} with the API key sealed with a
-- key derived from the server secret (never stored as given); NULL: none.
ALTER TABLE tenants ADD COLUMN external_classifier TEXT;
