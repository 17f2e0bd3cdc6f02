-- Retention of comment bodies, tenant settings (issue #14); 0 = keep.
ALTER TABLE tenants ADD COLUMN retain_rejected_bodies_days INTEGER NOT NULL DEFAULT 0
    CHECK (retain_rejected_bodies_days >= 0);
ALTER TABLE tenants ADD COLUMN retain_bodies_days INTEGER NOT NULL DEFAULT 0
    CHECK (retain_bodies_days >= 0);
-- When the body was replaced by the retention marker; NULL while kept.
ALTER TABLE comments ADD COLUMN purge_time INTEGER;
