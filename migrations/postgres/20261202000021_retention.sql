-- Retention of comment bodies, tenant settings (issue #14); 0 = keep. The
-- purge walks each retaining tenant's comments older than its cutoff; no
-- index is added to the comments table for it (every submission would pay
-- for it, the purge runs hourly and only where a tenant asked for it).
ALTER TABLE tenants
    ADD COLUMN retain_rejected_bodies_days integer NOT NULL DEFAULT 0
        CHECK (retain_rejected_bodies_days >= 0),
    ADD COLUMN retain_bodies_days integer NOT NULL DEFAULT 0
        CHECK (retain_bodies_days >= 0);
-- When the body was replaced by the retention marker; NULL while kept.
ALTER TABLE comments ADD COLUMN purge_time timestamptz;
